//! The wire tracer: every HTTP/2 frame of a connection, both directions, as text.
//!
//! gRPC is a mapping onto HTTP/2 ([PROTOCOL-HTTP2.md]), so the clearest way to see a call is
//! to watch the frames: a HEADERS frame with `:path` and `content-type: application/grpc`,
//! DATA frames carrying length-prefixed messages, and a final HEADERS frame with
//! `grpc-status`. Loggers show events ("call started"); this shows bytes. Turn it on with
//! `rawgrpc serve --trace-wire` or `rawgrpc get-user --trace-wire …`; in code, set
//! [`ServerConfig::wire_trace`](crate::server::ServerConfig::wire_trace) or
//! [`ChannelConfig::wire_trace`](crate::client::channel::ChannelConfig::wire_trace).
//!
//! ## Where it sits
//!
//! [`TracedIo`] wraps the socket (after TLS, before h2) and copies every byte read and written
//! into a [`WireTracer`]. So the trace is what is really on the wire — not what the code meant
//! to send — and h2 does not know it is watched. The tracer parses passively, with code of its
//! own, never touching the connection:
//!
//! * [`http2`] cuts each direction into frames;
//! * [`hpack`] decodes header blocks (h2's decoder is private, and the trace shows *how* each
//!   header was encoded: from the static table, the dynamic table, or as a literal);
//! * DATA payloads are cut into gRPC's length-prefixed messages (5-byte prefix: compressed
//!   flag, 4-byte big-endian length) and [`message_text`] prints each message with its field
//!   names, found by the stream's `:path`.
//!
//! ## Reading the output
//!
//! ```text
//! [c1] C→S #3 HEADERS stream=1 len=60 flags=END_HEADERS
//!         :method: POST                                [indexed: static #3]
//! ```
//!
//! `[c1]` is the connection, `C→S` the direction (client to server, whichever end is
//! tracing), `#3` the frame's number in that direction; then the frame header (RFC 9113 §4.1)
//! and, indented, what the payload means.
//!
//! ## Cost
//!
//! Off by default, and when off the socket is not wrapped at all: the server and client pick
//! the wrapped or the plain socket once per connection. When on, it formats text for every
//! frame: a debugging tool, not something to leave on under load. Its memory is bounded per
//! connection: frames over [`http2::MAX_BUFFERED_PAYLOAD`], header blocks over
//! [`MAX_HEADER_BLOCK`] and messages over [`MAX_SHOWN_MESSAGE`] are summarised, and at most
//! [`MAX_TRACKED_STREAMS`] streams are followed at once.
//!
//! [PROTOCOL-HTTP2.md]: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md

pub mod hpack;
pub mod http2;
pub mod message_text;

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use self::hpack::{HpackDecoder, Representation};
use self::http2::{flags, frame_type, Event, FrameHeader, FrameReader};
use self::message_text::MethodSchema;
use crate::wire::compression::{self, Encoding};
use crate::wire::frame::PREFIX_LEN;
use crate::wire::status::Code;

/// Largest header block (HEADERS plus CONTINUATION payloads) the tracer joins to decode. h2
/// refuses header lists over 16 KiB by default (`max_header_list_size`); a block beyond this
/// is summarised, and header decoding on that direction stops, since the HPACK state can no
/// longer be followed.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// Largest gRPC message shown decoded; longer ones are summarised by their length. Bounds the
/// bytes held per stream.
pub const MAX_SHOWN_MESSAGE: usize = 64 * 1024;

/// Streams followed at once per connection (for their `:path`, `grpc-encoding` and partial
/// messages). The server allows 200 concurrent streams; streams beyond this are still shown,
/// frame by frame, without their messages decoded.
pub const MAX_TRACKED_STREAMS: usize = 1024;

/// Largest dynamic table the tracer's HPACK decoders accept. The default is 4096 bytes
/// (RFC 7541 §4.2); neither h2 nor common peers raise it, and a cap bounds the memory a peer
/// can make the tracer hold.
const MAX_HPACK_TABLE: usize = 64 * 1024;

/// Message bytes shown in hex after the prefix.
const HEX_SHOWN: usize = 32;

/// Indentation of the lines that explain a frame.
const BODY: &str = "        ";

/// Where trace text goes, shared by every traced connection of a server or channel.
#[derive(Clone)]
pub struct WireTrace {
    sink: Arc<dyn Fn(&str) + Send + Sync>,
    connections: Arc<AtomicU64>,
}

impl WireTrace {
    /// Writes the trace to standard error.
    pub fn stderr() -> WireTrace {
        WireTrace::to_fn(|text| {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        })
    }

    /// Hands the trace to `sink`, a block of whole lines at a time (one frame's lines are
    /// never split between calls, so connections traced concurrently do not interleave
    /// inside a frame).
    pub fn to_fn(sink: impl Fn(&str) + Send + Sync + 'static) -> WireTrace {
        WireTrace {
            sink: Arc::new(sink),
            connections: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A tracer for a new connection, announced with `peer`; `side` is which end this is.
    pub fn connection(&self, side: Side, peer: impl fmt::Display) -> WireTracer {
        let id = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let tracer = WireTracer::new(id, side, Arc::clone(&self.sink));
        let what = match side {
            Side::Server => "accepted from",
            Side::Client => "opened to",
        };
        (tracer.sink)(&format!("[c{id}] connection {what} {peer}\n"));
        tracer
    }
}

impl fmt::Debug for WireTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WireTrace")
    }
}

/// Which end of the connection the tracer sits at: it decides whether bytes read travel
/// client-to-server or server-to-client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The tracer wraps a server's socket.
    Server,
    /// The tracer wraps a client's socket.
    Client,
}

/// A direction of travel; indexes the per-direction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ClientToServer = 0,
    ServerToClient = 1,
}

impl Dir {
    fn arrow(self) -> &'static str {
        match self {
            Dir::ClientToServer => "C→S",
            Dir::ServerToClient => "S→C",
        }
    }
}

/// The tracer of one connection: feed it the bytes each way, it writes the frames as text.
/// Sans-IO: [`TracedIo`] does the feeding for a socket; tests and the fuzz target feed it
/// directly.
pub struct WireTracer {
    id: u64,
    side: Side,
    sink: Arc<dyn Fn(&str) + Send + Sync>,
    directions: [Direction; 2],
    streams: HashMap<u32, StreamState>,
    bytes: [u64; 2],
}

/// Per-direction parsing state: HTTP/2 framing and HPACK are both per direction.
struct Direction {
    reader: FrameReader,
    hpack: HpackDecoder,
    /// Header decoding stopped after an error: the HPACK state can no longer be followed.
    hpack_lost: bool,
    frames: u64,
    /// A header block waiting for its CONTINUATION frames.
    pending: Option<PendingBlock>,
}

struct PendingBlock {
    stream_id: u32,
    end_stream: bool,
    block: Vec<u8>,
}

/// What the tracer remembers about a stream to show its messages.
#[derive(Default)]
struct StreamState {
    method: Option<&'static MethodSchema>,
    /// `grpc-encoding` of each direction's messages.
    encoding: [Option<Encoding>; 2],
    messages: [MessageAssembly; 2],
    ended: [bool; 2],
}

/// One direction's gRPC messages being cut out of DATA payloads.
#[derive(Default)]
struct MessageAssembly {
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// Bytes of the current message still to come, once its prefix is complete.
    remaining: usize,
    compressed: bool,
    length: usize,
    /// The message's bytes, up to [`MAX_SHOWN_MESSAGE`].
    body: Vec<u8>,
    count: u64,
}

impl WireTracer {
    fn new(id: u64, side: Side, sink: Arc<dyn Fn(&str) + Send + Sync>) -> WireTracer {
        let direction = |client_side| Direction {
            reader: FrameReader::new(client_side),
            hpack: HpackDecoder::new(MAX_HPACK_TABLE),
            hpack_lost: false,
            frames: 0,
            pending: None,
        };
        WireTracer {
            id,
            side,
            sink,
            directions: [direction(true), direction(false)],
            streams: HashMap::new(),
            bytes: [0; 2],
        }
    }

    /// A tracer that hands its text to `sink`, for tests and fuzzing.
    pub fn with_sink(side: Side, sink: impl Fn(&str) + Send + Sync + 'static) -> WireTracer {
        WireTracer::new(1, side, Arc::new(sink))
    }

    /// Bytes this end read from the socket.
    pub fn received(&mut self, bytes: &[u8]) {
        let dir = match self.side {
            Side::Server => Dir::ClientToServer,
            Side::Client => Dir::ServerToClient,
        };
        self.feed(dir, bytes);
    }

    /// Bytes this end wrote to the socket.
    pub fn sent(&mut self, bytes: &[u8]) {
        let dir = match self.side {
            Side::Server => Dir::ServerToClient,
            Side::Client => Dir::ClientToServer,
        };
        self.feed(dir, bytes);
    }

    fn feed(&mut self, dir: Dir, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes[dir as usize] += bytes.len() as u64;
        let mut out = String::new();
        let mut reader = std::mem::replace(
            &mut self.directions[dir as usize].reader,
            FrameReader::new(false),
        );
        reader.push(bytes, |event| self.on_event(dir, event, &mut out));
        self.directions[dir as usize].reader = reader;
        if !out.is_empty() {
            (self.sink)(&out);
        }
    }

    fn on_event(&mut self, dir: Dir, event: Event<'_>, out: &mut String) {
        let id = self.id;
        let arrow = dir.arrow();
        match event {
            Event::Preface { valid: true } => {
                let _ = writeln!(
                    out,
                    "[c{id}] {arrow} connection preface \"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n\""
                );
            }
            Event::Preface { valid: false } => {
                let _ = writeln!(
                    out,
                    "[c{id}] {arrow} not an HTTP/2 connection preface; not parsing this connection"
                );
            }
            Event::Oversized(header) => {
                self.frame_line(dir, &header, out);
                let _ = writeln!(
                    out,
                    "{BODY}(payload of {} bytes not shown: over the tracer's {} byte limit)",
                    header.length,
                    http2::MAX_BUFFERED_PAYLOAD
                );
                // A skipped header block or DATA leaves state behind that can't be followed.
                if matches!(
                    header.kind,
                    frame_type::HEADERS | frame_type::CONTINUATION | frame_type::PUSH_PROMISE
                ) {
                    self.lose_hpack(dir, "a header block was too large to follow", out);
                }
                if header.kind == frame_type::DATA {
                    self.streams.remove(&header.stream_id);
                }
            }
            Event::Frame { header, payload } => {
                self.frame_line(dir, &header, out);
                self.frame_body(dir, &header, payload, out);
            }
        }
    }

    fn frame_line(&mut self, dir: Dir, h: &FrameHeader, out: &mut String) {
        let n = {
            let d = &mut self.directions[dir as usize];
            d.frames += 1;
            d.frames
        };
        let name = http2::frame_type_name(h.kind);
        let _ = write!(out, "[c{}] {} #{n} {name}", self.id, dir.arrow());
        if name == "UNKNOWN" {
            let _ = write!(out, "(0x{:02x})", h.kind);
        }
        let _ = writeln!(
            out,
            " stream={} len={} flags={}",
            h.stream_id,
            h.length,
            http2::flag_names(h.kind, h.flags)
        );
    }

    fn frame_body(&mut self, dir: Dir, h: &FrameHeader, payload: &[u8], out: &mut String) {
        let malformed = |out: &mut String, why: &str| {
            let _ = writeln!(out, "{BODY}(malformed: {why})");
        };
        match h.kind {
            frame_type::DATA => match unpad(h, payload) {
                Some(data) => self.data(dir, h, data, out),
                None => malformed(out, "padding longer than the payload"),
            },
            frame_type::HEADERS => {
                let Some(mut block) = unpad(h, payload) else {
                    return malformed(out, "padding longer than the payload");
                };
                if h.flags & flags::PRIORITY != 0 {
                    let Some((priority, rest)) = block.split_first_chunk::<5>() else {
                        return malformed(out, "PRIORITY flag without priority fields");
                    };
                    write_priority(out, priority);
                    block = rest;
                }
                self.header_fragment(dir, h, h.stream_id, block, out);
            }
            frame_type::CONTINUATION => self.header_fragment(dir, h, h.stream_id, payload, out),
            frame_type::PUSH_PROMISE => {
                let Some(rest) = unpad(h, payload) else {
                    return malformed(out, "padding longer than the payload");
                };
                let Some((promised, block)) = rest.split_first_chunk::<4>() else {
                    return malformed(out, "shorter than a promised stream id");
                };
                let promised = u32::from_be_bytes(*promised) & 0x7fff_ffff;
                let _ = writeln!(out, "{BODY}promised stream = {promised}");
                self.header_fragment(dir, h, promised, block, out);
            }
            frame_type::SETTINGS => {
                if h.flags & flags::ACK != 0 {
                    let _ = writeln!(out, "{BODY}(acknowledges the peer's SETTINGS)");
                } else if payload.is_empty() {
                    let _ = writeln!(out, "{BODY}(no parameters: every default stands)");
                } else if payload.len() % 6 != 0 {
                    malformed(out, "length is not a multiple of 6");
                }
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    let name = http2::setting_name(id).unwrap_or("unknown setting");
                    let _ = writeln!(out, "{BODY}{name} (0x{id:x}) = {value}");
                }
            }
            frame_type::WINDOW_UPDATE => match payload.first_chunk::<4>() {
                Some(b) if payload.len() == 4 => {
                    let increment = u32::from_be_bytes(*b) & 0x7fff_ffff;
                    let _ = writeln!(out, "{BODY}window size increment = {increment}");
                }
                _ => malformed(out, "length is not 4"),
            },
            frame_type::PING => {
                let _ = writeln!(out, "{BODY}opaque data = {}", hex(payload));
            }
            frame_type::RST_STREAM => {
                match payload.first_chunk::<4>() {
                    Some(b) if payload.len() == 4 => {
                        let code = u32::from_be_bytes(*b);
                        let name = http2::error_code_name(code);
                        let _ = writeln!(out, "{BODY}error code = {name} (0x{code:x})");
                    }
                    _ => malformed(out, "length is not 4"),
                }
                self.streams.remove(&h.stream_id);
            }
            frame_type::GOAWAY => match payload.split_first_chunk::<8>() {
                Some((fixed, debug)) => {
                    let last = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
                    let code = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
                    let name = http2::error_code_name(code);
                    let _ = writeln!(
                        out,
                        "{BODY}last stream id = {}, error code = {name} (0x{code:x})",
                        last & 0x7fff_ffff
                    );
                    if !debug.is_empty() {
                        let _ = writeln!(out, "{BODY}debug data = {}", quoted(debug));
                    }
                }
                None => malformed(out, "shorter than 8 bytes"),
            },
            frame_type::PRIORITY => match payload.first_chunk::<5>() {
                Some(p) if payload.len() == 5 => write_priority(out, p),
                _ => malformed(out, "length is not 5"),
            },
            _ if !payload.is_empty() => {
                let _ = writeln!(out, "{BODY}payload = {}", hex(payload));
            }
            _ => {}
        }
    }

    /// A HEADERS, PUSH_PROMISE or CONTINUATION fragment: decoded once the block is complete
    /// (END_HEADERS), since HPACK cannot decode a partial block.
    fn header_fragment(
        &mut self,
        dir: Dir,
        h: &FrameHeader,
        stream_id: u32,
        fragment: &[u8],
        out: &mut String,
    ) {
        let d = &mut self.directions[dir as usize];
        let mut pending = match (h.kind, d.pending.take()) {
            (frame_type::CONTINUATION, Some(p)) => p,
            (frame_type::CONTINUATION, None) => {
                let _ = writeln!(
                    out,
                    "{BODY}(CONTINUATION without a header block to continue)"
                );
                return;
            }
            (_, _) => PendingBlock {
                stream_id,
                end_stream: h.kind == frame_type::HEADERS && h.flags & flags::END_STREAM != 0,
                block: Vec::new(),
            },
        };
        if pending.block.len() + fragment.len() > MAX_HEADER_BLOCK {
            self.lose_hpack(dir, "a header block was too large to follow", out);
            return;
        }
        pending.block.extend_from_slice(fragment);
        if h.flags & flags::END_HEADERS == 0 {
            let _ = writeln!(
                out,
                "{BODY}(header block continues in CONTINUATION: {} bytes so far)",
                pending.block.len()
            );
            d.pending = Some(pending);
            return;
        }
        if d.hpack_lost {
            let _ = writeln!(
                out,
                "{BODY}(header block not decoded: HPACK state lost earlier)"
            );
            return;
        }
        match d.hpack.decode(&pending.block) {
            Ok(block) => {
                for size in &block.table_size_updates {
                    let _ = writeln!(out, "{BODY}(dynamic table size update: {size})");
                }
                for field in &block.fields {
                    let bytes = pending.block.get(field.encoded.clone()).unwrap_or_default();
                    write_header(out, field, bytes);
                }
                self.headers_seen(dir, pending.stream_id, pending.end_stream, &block.fields);
            }
            // The decoder read the whole block, so its table is still in step: only this
            // block goes unshown.
            Err(e @ hpack::HpackError::HeaderListTooLarge { .. }) => {
                let _ = writeln!(out, "{BODY}(header block not shown: {e})");
            }
            Err(e) => self.lose_hpack(dir, &format!("HPACK error: {e}"), out),
        }
    }

    fn lose_hpack(&mut self, dir: Dir, why: &str, out: &mut String) {
        let d = &mut self.directions[dir as usize];
        d.pending = None;
        if !d.hpack_lost {
            d.hpack_lost = true;
            let _ = writeln!(
                out,
                "{BODY}({why}; later header blocks in this direction cannot be decoded)"
            );
        }
    }

    /// Remembers what later DATA frames need: the method (from `:path`) and the encoding.
    fn headers_seen(
        &mut self,
        dir: Dir,
        stream_id: u32,
        end_stream: bool,
        fields: &[hpack::HeaderField],
    ) {
        let Some(stream) = self.stream(stream_id) else {
            return;
        };
        for field in fields {
            match field.name.as_slice() {
                b":path" if dir == Dir::ClientToServer => {
                    stream.method = message_text::method_schema(&field.value);
                }
                b"grpc-encoding" => {
                    stream.encoding[dir as usize] = Encoding::from_name(&field.value);
                }
                _ => {}
            }
        }
        if end_stream {
            self.end_stream(dir, stream_id);
        }
    }

    fn stream(&mut self, id: u32) -> Option<&mut StreamState> {
        if id == 0 || (!self.streams.contains_key(&id) && self.streams.len() >= MAX_TRACKED_STREAMS)
        {
            return None;
        }
        Some(self.streams.entry(id).or_default())
    }

    fn end_stream(&mut self, dir: Dir, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.ended[dir as usize] = true;
            if stream.ended == [true, true] {
                self.streams.remove(&id);
            }
        }
    }

    /// A DATA payload: gRPC's Length-Prefixed-Messages, which may start, end or continue
    /// anywhere in it (PROTOCOL-HTTP2.md "Requests": a message may span DATA frames, and a
    /// frame may hold several messages).
    fn data(&mut self, dir: Dir, h: &FrameHeader, mut data: &[u8], out: &mut String) {
        let Some(stream) = self.stream(h.stream_id) else {
            let _ = writeln!(out, "{BODY}({} bytes; stream not followed)", data.len());
            return;
        };
        let schema = stream.method.map(|m| match dir {
            Dir::ClientToServer => m.request,
            Dir::ServerToClient => m.response,
        });
        let encoding = stream.encoding[dir as usize];
        let m = &mut stream.messages[dir as usize];
        while !data.is_empty() {
            if m.prefix_len < PREFIX_LEN {
                let take = (PREFIX_LEN - m.prefix_len).min(data.len());
                m.prefix[m.prefix_len..m.prefix_len + take].copy_from_slice(&data[..take]);
                m.prefix_len += take;
                data = &data[take..];
                if m.prefix_len < PREFIX_LEN {
                    let _ = writeln!(
                        out,
                        "{BODY}(a message prefix begins: {} of 5 bytes)",
                        m.prefix_len
                    );
                    break;
                }
                m.count += 1;
                m.compressed = m.prefix[0] != 0;
                m.length = u32::from_be_bytes([m.prefix[1], m.prefix[2], m.prefix[3], m.prefix[4]])
                    as usize;
                m.remaining = m.length;
                m.body.clear();
                let _ = writeln!(
                    out,
                    "{BODY}gRPC message {}: compressed flag = {}, length = {}",
                    m.count, m.prefix[0], m.length
                );
                if m.prefix[0] > 1 {
                    let _ = writeln!(
                        out,
                        "{BODY}  (a compressed flag other than 0 or 1 is a protocol error)"
                    );
                }
            } else {
                let _ = writeln!(
                    out,
                    "{BODY}gRPC message {} continued: {} more bytes",
                    m.count,
                    m.remaining.min(data.len())
                );
            }
            let take = m.remaining.min(data.len());
            let keep = take.min(MAX_SHOWN_MESSAGE.saturating_sub(m.body.len()));
            m.body.extend_from_slice(&data[..keep]);
            m.remaining -= take;
            data = &data[take..];
            if m.remaining > 0 {
                let _ = writeln!(
                    out,
                    "{BODY}  ({} of {} bytes so far; the rest comes in later DATA frames)",
                    m.length - m.remaining,
                    m.length
                );
                break;
            }
            write_message(out, m, schema, encoding);
            m.prefix_len = 0;
            m.body = Vec::new();
        }
        if h.flags & flags::END_STREAM != 0 {
            self.end_stream(dir, h.stream_id);
        }
    }
}

impl Drop for WireTracer {
    fn drop(&mut self) {
        (self.sink)(&format!(
            "[c{}] connection closed ({} bytes client→server, {} bytes server→client)\n",
            self.id, self.bytes[0], self.bytes[1]
        ));
    }
}

/// A complete message: its bytes in hex, then decoded (inflated first if compressed).
fn write_message(
    out: &mut String,
    m: &MessageAssembly,
    schema: Option<&'static str>,
    encoding: Option<Encoding>,
) {
    let shown = &m.body[..m.body.len().min(HEX_SHOWN)];
    let more = if m.length > shown.len() { " …" } else { "" };
    let _ = writeln!(out, "{BODY}  {} | {}{more}", hex(&m.prefix), hex(shown));
    if m.length > m.body.len() {
        let _ = writeln!(
            out,
            "{BODY}  (not decoded: {} bytes, over the tracer's {MAX_SHOWN_MESSAGE} byte limit)",
            m.length
        );
        return;
    }
    let schema = schema.and_then(message_text::message_schema);
    let indent = format!("{BODY}  ");
    if !m.compressed {
        message_text::write_message(out, &indent, schema, &m.body);
        return;
    }
    match encoding {
        Some(Encoding::Identity) | None => {
            let _ = writeln!(
                out,
                "{BODY}  (compressed flag set but no grpc-encoding: the receiver must fail the call)"
            );
        }
        Some(encoding) => match compression::decompress(encoding, &m.body, MAX_SHOWN_MESSAGE) {
            Ok(inflated) => {
                let _ = writeln!(
                    out,
                    "{BODY}  {}: {} bytes inflate to {}",
                    encoding.name(),
                    m.body.len(),
                    inflated.len()
                );
                message_text::write_message(out, &indent, schema, &inflated);
            }
            Err(e) => {
                let _ = writeln!(out, "{BODY}  (cannot inflate: {})", e.message());
            }
        },
    }
}

/// One decoded header, how HPACK carried it (RFC 7541 §6) and its bytes, and what gRPC makes
/// of a few.
fn write_header(out: &mut String, field: &hpack::HeaderField, bytes: &[u8]) {
    let (name, value) = (&field.name[..], &field.value[..]);
    let text = format!(
        "{}: {}",
        String::from_utf8_lossy(name),
        String::from_utf8_lossy(value)
    );
    let table = |index: usize| {
        if index <= hpack::STATIC_TABLE.len() {
            format!("static #{index}")
        } else {
            format!("dynamic #{index}")
        }
    };
    let literal = |name_index: &Option<usize>, rest: &str| {
        let name = name_index.map_or("new name".to_owned(), |i| format!("name {}", table(i)));
        format!("literal, {name}, {rest}")
    };
    let mut how = match &field.representation {
        Representation::Indexed { index } => format!("indexed: {}", table(*index)),
        Representation::LiteralIncremental { name_index } => {
            literal(name_index, "added to the dynamic table")
        }
        Representation::LiteralNotIndexed { name_index } => literal(name_index, "not indexed"),
        Representation::LiteralNeverIndexed { name_index } => literal(name_index, "never indexed"),
    };
    if field.huffman {
        how.push_str(", huffman");
    }
    let _ = writeln!(out, "{BODY}{text:<44} [{how}]");
    let shown = &bytes[..bytes.len().min(HEX_SHOWN)];
    let more = if bytes.len() > shown.len() {
        " …"
    } else {
        ""
    };
    let _ = writeln!(out, "{BODY}  {}{more}", hex(shown));
    let meaning = match name {
        b"grpc-status" => {
            let code = Code::from_header(value);
            Some(format!("status {}", code.name()))
        }
        b"grpc-timeout" => crate::wire::timeout::parse(value)
            .ok()
            .map(|d| format!("deadline {d:?} from now")),
        b"grpc-message" => {
            let decoded = crate::wire::status::percent_decode(value);
            (decoded.as_bytes() != value).then(|| format!("percent-decoded: {decoded:?}"))
        }
        _ => None,
    };
    if let Some(meaning) = meaning {
        let _ = writeln!(out, "{BODY}  ({meaning})");
    }
}

fn write_priority(out: &mut String, p: &[u8; 5]) {
    let dependency = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let exclusive = if dependency & 0x8000_0000 != 0 {
        " (exclusive)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{BODY}priority: depends on stream {}{exclusive}, weight {}",
        dependency & 0x7fff_ffff,
        u16::from(p[4]) + 1
    );
}

/// The payload without its padding (RFC 9113 §6.1): a PADDED frame's first byte is the pad
/// length, and the padding must fit.
fn unpad<'a>(h: &FrameHeader, payload: &'a [u8]) -> Option<&'a [u8]> {
    if h.flags & flags::PADDED == 0 {
        return Some(payload);
    }
    let (&pad, rest) = payload.split_first()?;
    rest.len()
        .checked_sub(usize::from(pad))
        .map(|end| &rest[..end])
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// A socket with a [`WireTracer`] watching both directions; otherwise transparent.
pub struct TracedIo<T> {
    io: T,
    // Boxed: the tracer is large and only traced connections pay for it.
    tracer: Box<WireTracer>,
}

impl<T> TracedIo<T> {
    /// Wraps `io`; every byte read or written goes through `tracer` too.
    pub fn new(io: T, tracer: WireTracer) -> TracedIo<T> {
        TracedIo {
            io,
            tracer: Box::new(tracer),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TracedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.tracer.received(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TracedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.tracer.sent(&buf[..n.min(buf.len())]);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            // Only the first `n` bytes, across the slices, were written.
            let mut left = n;
            for buf in bufs {
                let take = left.min(buf.len());
                this.tracer.sent(&buf[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
