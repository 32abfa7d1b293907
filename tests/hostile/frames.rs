//! A tiny raw HTTP/2 peer (RFC 9113 §4): frames written by hand, frames read and sorted per
//! stream, header blocks decoded with [`super::hpack`].
//!
//! A frame is a 9-byte header — 24-bit payload length, type, flags, 31-bit stream id — and its
//! payload. Nothing here checks that what we send is valid: that is the point.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::hpack;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// SETTINGS identifiers.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// The name of an error code, for messages.
pub fn reason(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        _ => "?",
    }
}

/// One frame, encoded.
pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "frame payload too long");
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in values {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &payload)
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn ping(opaque: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &opaque)
}

pub fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    frame(
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
        payload,
    )
}

/// A HEADERS frame carrying a whole block (END_HEADERS).
pub fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, block)
}

/// A request's HEADERS for a gRPC call to `path`.
pub fn grpc_request(stream: u32, path: &str, end_stream: bool) -> Vec<u8> {
    headers(
        stream,
        &hpack::block_of(&hpack::grpc_request_fields(path)),
        end_stream,
    )
}

/// A header block split over HEADERS and CONTINUATION frames of at most `max` bytes each.
pub fn split_block(stream: u32, block: &[u8], max: usize, end_stream: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = block.chunks(max).collect();
    let n = chunks.len().max(1);
    for i in 0..n {
        let chunk = chunks.get(i).copied().unwrap_or(&[]);
        let mut flags = if i + 1 == n { END_HEADERS } else { 0 };
        let ty = if i == 0 {
            if end_stream {
                flags |= END_STREAM;
            }
            HEADERS
        } else {
            CONTINUATION
        };
        out.extend(frame(ty, flags, stream, chunk));
    }
    out
}

/// A gRPC message: the 5-byte prefix, then `payload`.
pub fn grpc_message(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// Reads frames off a socket.
pub struct FrameReader {
    read: OwnedReadHalf,
    buf: BytesMut,
}

impl FrameReader {
    pub fn new(read: OwnedReadHalf) -> Self {
        FrameReader {
            read,
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// The next frame; `None` once the server closed (EOF or reset).
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head = self.buf.split_to(9);
                    let payload = self.buf.split_to(len).to_vec();
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    return Some(Frame {
                        ty: head[3],
                        flags: head[4],
                        stream,
                        payload,
                    });
                }
            }
            match self.read.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads and discards everything until the server closes or `limit` passes; returns how
    /// many bytes came and whether the server closed.
    pub async fn drain_until_closed(&mut self, limit: Duration) -> (usize, bool) {
        let mut total = self.buf.len();
        self.buf.clear();
        let outcome = tokio::time::timeout(limit, async {
            loop {
                match self.read.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        total += n;
                        self.buf.clear();
                    }
                }
            }
        })
        .await;
        (total, outcome.is_ok())
    }
}

/// What the server said on one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamState {
    /// Each header block (response headers, trailers), decoded.
    pub blocks: Vec<Vec<hpack::Field>>,
    pub data: Vec<u8>,
    /// The RST_STREAM error code, if the server reset the stream.
    pub reset: Option<u32>,
    /// END_STREAM seen.
    pub ended: bool,
}

impl StreamState {
    fn header(&self, block: usize, name: &str) -> Option<&str> {
        self.blocks
            .get(block)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The response's `:status`.
    pub fn http_status(&self) -> Option<&str> {
        self.header(0, ":status")
    }

    /// `grpc-status` from the trailers, or from the headers (Trailers-Only).
    pub fn grpc_status(&self) -> Option<&str> {
        let last = self.blocks.len().checked_sub(1)?;
        self.header(last, "grpc-status")
    }

    /// Any header of any block.
    pub fn any_header(&self, name: &str) -> Option<&str> {
        (0..self.blocks.len()).find_map(|i| self.header(i, name))
    }

    /// The server is done with this stream.
    pub fn done(&self) -> bool {
        self.ended || self.reset.is_some()
    }
}

/// A GOAWAY frame.
#[derive(Debug, Clone)]
pub struct GoAway {
    pub last_stream: u32,
    pub code: u32,
    pub debug: String,
}

/// The reading side of a raw connection: sorts what the server sends.
pub struct Observer {
    reader: FrameReader,
    hpack: hpack::Decoder,
    /// A header block still waiting for CONTINUATION: (stream, END_STREAM, bytes).
    partial: Option<(u32, bool, Vec<u8>)>,
    pub streams: BTreeMap<u32, StreamState>,
    pub goaway: Option<GoAway>,
    pub closed: bool,
    pub settings_acks: usize,
    pub settings: usize,
    pub ping_acks: usize,
    pub frames: usize,
}

impl Observer {
    pub fn new(read: OwnedReadHalf) -> Self {
        Observer {
            reader: FrameReader::new(read),
            hpack: hpack::Decoder::default(),
            partial: None,
            streams: BTreeMap::new(),
            goaway: None,
            closed: false,
            settings_acks: 0,
            settings: 0,
            ping_acks: 0,
            frames: 0,
        }
    }

    pub fn stream(&self, id: u32) -> StreamState {
        self.streams.get(&id).cloned().unwrap_or_default()
    }

    /// Reads frames until `done` holds (true), the server closes or `limit` passes (false).
    pub async fn until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Observer) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.closed {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.reader.next()).await {
                Err(_) => return done(self),
                Ok(None) => self.closed = true,
                Ok(Some(f)) => self.handle(f),
            }
        }
    }

    /// Reads until the server closes the connection; false if it did not within `limit`.
    pub async fn until_closed(&mut self, limit: Duration) -> bool {
        self.until(limit, |_| false).await;
        self.closed
    }

    fn handle(&mut self, f: Frame) {
        self.frames += 1;
        match f.ty {
            HEADERS => {
                let mut p = &f.payload[..];
                let mut pad = 0;
                if f.flags & PADDED != 0 {
                    pad = usize::from(p[0]);
                    p = &p[1..];
                }
                if f.flags & PRIORITY_FLAG != 0 {
                    p = &p[5..];
                }
                let block = p[..p.len() - pad].to_vec();
                self.partial = Some((f.stream, f.flags & END_STREAM != 0, block));
                if f.flags & END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            CONTINUATION => {
                if let Some((_, _, block)) = &mut self.partial {
                    block.extend_from_slice(&f.payload);
                }
                if f.flags & END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            DATA => {
                let mut p = &f.payload[..];
                if f.flags & PADDED != 0 {
                    let pad = usize::from(p[0]);
                    p = &p[1..p.len() - pad];
                }
                let s = self.streams.entry(f.stream).or_default();
                s.data.extend_from_slice(p);
                s.ended |= f.flags & END_STREAM != 0;
            }
            RST_STREAM => {
                let code = u32::from_be_bytes(f.payload[..4].try_into().expect("4 bytes"));
                self.streams.entry(f.stream).or_default().reset = Some(code);
            }
            GOAWAY => {
                let p = &f.payload;
                self.goaway = Some(GoAway {
                    last_stream: u32::from_be_bytes(p[..4].try_into().expect("4 bytes"))
                        & 0x7fff_ffff,
                    code: u32::from_be_bytes(p[4..8].try_into().expect("4 bytes")),
                    debug: String::from_utf8_lossy(&p[8..]).into_owned(),
                });
            }
            SETTINGS if f.flags & ACK != 0 => self.settings_acks += 1,
            SETTINGS => self.settings += 1,
            PING if f.flags & ACK != 0 => self.ping_acks += 1,
            _ => {}
        }
    }

    fn finish_block(&mut self) {
        let Some((stream, end, block)) = self.partial.take() else {
            return;
        };
        let fields = self
            .hpack
            .decode(&block)
            .unwrap_or_else(|e| panic!("server sent an undecodable header block: {e}"));
        let s = self.streams.entry(stream).or_default();
        s.blocks.push(fields);
        s.ended |= end;
    }
}

/// A raw HTTP/2 connection: a writer we drive by hand and an [`Observer`] for the replies.
pub struct RawConn {
    pub write: OwnedWriteHalf,
    pub observer: Observer,
}

impl RawConn {
    /// TCP only, nothing sent.
    pub async fn tcp(addr: SocketAddr) -> (OwnedWriteHalf, Observer) {
        let socket = TcpStream::connect(addr).await.expect("connect");
        let _ = socket.set_nodelay(true);
        let (read, write) = socket.into_split();
        (write, Observer::new(read))
    }

    /// The client preface, our SETTINGS (`settings`) and an ACK of the server's SETTINGS.
    pub async fn open_with(addr: SocketAddr, settings_values: &[(u16, u32)]) -> RawConn {
        let (mut write, observer) = RawConn::tcp(addr).await;
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(settings_values));
        // The server's SETTINGS come first thing on the connection; acknowledging them at once
        // is what every client does.
        hello.extend(settings_ack());
        write.write_all(&hello).await.expect("preface");
        RawConn { write, observer }
    }

    pub async fn open(addr: SocketAddr) -> RawConn {
        RawConn::open_with(addr, &[]).await
    }

    /// Writes `bytes`; false if the server has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.write.write_all(bytes).await.is_ok()
    }
}
