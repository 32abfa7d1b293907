//! HTTP/2 frames out of a byte stream, passively: the tracer's framing layer.
//!
//! An HTTP/2 connection (RFC 9113) is two byte streams, one per direction. The client's
//! begins with a fixed 24-byte *connection preface* (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
//! §3.4), chosen so that an HTTP/1.1 server fails on it loudly; after that, and from the
//! first byte on the server's side, both streams are a sequence of frames, each a 9-byte
//! header and a payload (§4.1):
//!
//! ```text
//! +-----------------------------------------------+
//! |                 Length (24)                   |   payload length, not counting the header
//! +---------------+---------------+---------------+
//! |   Type (8)    |   Flags (8)   |
//! +-+-------------+---------------+-------------------------------+
//! |R|                 Stream Identifier (31)                      |   0: the connection itself
//! +=+=============================================================+
//! |                   Frame Payload (0...)                      ...
//! +---------------------------------------------------------------+
//! ```
//!
//! [`FrameReader`] cuts one direction's bytes into such frames, however the bytes arrive
//! (one byte at a time, or many frames per read). It only *observes*: it never rejects what
//! h2 might reject, so the tracer shows protocol errors instead of hiding them. Payloads up to
//! [`MAX_BUFFERED_PAYLOAD`] are handed over whole; a longer one is reported by its header and
//! skipped, so a peer announcing a 16 MiB frame cannot make the tracer buffer it.

/// The client connection preface (RFC 9113 §3.4).
pub const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Size of a frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;

/// Largest payload the reader buffers to show. Four times SETTINGS_MAX_FRAME_SIZE's default
/// (16 KiB, the largest frame a peer may send unless told otherwise, §6.5.2), so every frame
/// of a default connection is shown, and a frame of 16 MiB costs no memory.
pub const MAX_BUFFERED_PAYLOAD: usize = 64 * 1024;

/// Frame types (RFC 9113 §6; the registry in §11.2).
#[allow(missing_docs)]
pub mod frame_type {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// The name of frame type `t`, as the RFC spells it.
pub fn frame_type_name(t: u8) -> &'static str {
    match t {
        frame_type::DATA => "DATA",
        frame_type::HEADERS => "HEADERS",
        frame_type::PRIORITY => "PRIORITY",
        frame_type::RST_STREAM => "RST_STREAM",
        frame_type::SETTINGS => "SETTINGS",
        frame_type::PUSH_PROMISE => "PUSH_PROMISE",
        frame_type::PING => "PING",
        frame_type::GOAWAY => "GOAWAY",
        frame_type::WINDOW_UPDATE => "WINDOW_UPDATE",
        frame_type::CONTINUATION => "CONTINUATION",
        _ => "UNKNOWN",
    }
}

/// Flag bits (RFC 9113 §6). Their meaning depends on the frame type.
#[allow(missing_docs)]
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// `flags` of a frame of type `t`, by name (`END_STREAM|END_HEADERS`), or `-` for none.
pub fn flag_names(t: u8, flags: u8) -> String {
    let known: &[(u8, &str)] = match t {
        frame_type::DATA => &[(flags::END_STREAM, "END_STREAM"), (flags::PADDED, "PADDED")],
        frame_type::HEADERS => &[
            (flags::END_STREAM, "END_STREAM"),
            (flags::END_HEADERS, "END_HEADERS"),
            (flags::PADDED, "PADDED"),
            (flags::PRIORITY, "PRIORITY"),
        ],
        frame_type::SETTINGS | frame_type::PING => &[(flags::ACK, "ACK")],
        frame_type::PUSH_PROMISE => &[
            (flags::END_HEADERS, "END_HEADERS"),
            (flags::PADDED, "PADDED"),
        ],
        frame_type::CONTINUATION => &[(flags::END_HEADERS, "END_HEADERS")],
        _ => &[],
    };
    let mut names: Vec<String> = known
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let rest = known.iter().fold(flags, |f, (bit, _)| f & !bit);
    if rest != 0 {
        names.push(format!("0x{rest:02x}"));
    }
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join("|")
    }
}

/// A SETTINGS parameter's name (RFC 9113 §6.5.2; 0x8 from RFC 8441).
pub fn setting_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x1 => "HEADER_TABLE_SIZE",
        0x2 => "ENABLE_PUSH",
        0x3 => "MAX_CONCURRENT_STREAMS",
        0x4 => "INITIAL_WINDOW_SIZE",
        0x5 => "MAX_FRAME_SIZE",
        0x6 => "MAX_HEADER_LIST_SIZE",
        0x8 => "ENABLE_CONNECT_PROTOCOL",
        _ => return None,
    })
}

/// An error code's name (RST_STREAM and GOAWAY, RFC 9113 §7).
pub fn error_code_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "unknown error code",
    }
}

/// The 9-byte frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length.
    pub length: usize,
    /// Frame type (see [`frame_type`]).
    pub kind: u8,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// Stream identifier, the reserved bit cleared.
    pub stream_id: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            length: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// What the reader found in the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The client connection preface; `valid` is false if the first 24 bytes were something
    /// else (an HTTP/1.1 request, say), in which case nothing more is parsed.
    Preface {
        /// The bytes matched [`CLIENT_PREFACE`].
        valid: bool,
    },
    /// A whole frame.
    Frame {
        /// Its header.
        header: FrameHeader,
        /// Its payload.
        payload: &'a [u8],
    },
    /// A frame whose payload exceeds [`MAX_BUFFERED_PAYLOAD`]: its header only; the payload
    /// is skipped as it arrives.
    Oversized(FrameHeader),
}

/// Cuts one direction of a connection into frames. Sans-IO: push bytes, get events.
#[derive(Debug)]
pub struct FrameReader {
    buffer: Vec<u8>,
    /// The client's direction starts with the preface.
    expect_preface: bool,
    /// Bytes still to skip of an oversized frame's payload.
    skipping: usize,
    /// The preface was wrong: this is not HTTP/2, stop parsing.
    gave_up: bool,
}

impl FrameReader {
    /// A reader for the client-to-server direction (`client_side`: it starts with the
    /// preface) or the server-to-client one.
    pub fn new(client_side: bool) -> FrameReader {
        FrameReader {
            buffer: Vec::new(),
            expect_preface: client_side,
            skipping: 0,
            gave_up: false,
        }
    }

    /// Feeds the next `bytes` of this direction; calls `on_event` for each preface, frame or
    /// oversized-frame header they complete. Partial frames are kept for the next call.
    pub fn push(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(Event<'_>)) {
        if self.gave_up {
            return;
        }
        let skipped = self.skipping.min(bytes.len());
        self.skipping -= skipped;
        bytes = &bytes[skipped..];
        self.buffer.extend_from_slice(bytes);

        let mut at = 0;
        loop {
            let rest = &self.buffer[at..];
            if self.expect_preface {
                if rest.len() < CLIENT_PREFACE.len() {
                    break;
                }
                let valid = &rest[..CLIENT_PREFACE.len()] == CLIENT_PREFACE;
                on_event(Event::Preface { valid });
                self.expect_preface = false;
                if !valid {
                    self.gave_up = true;
                    self.buffer = Vec::new();
                    return;
                }
                at += CLIENT_PREFACE.len();
                continue;
            }
            let Some(head) = rest.first_chunk::<FRAME_HEADER_LEN>() else {
                break;
            };
            let header = FrameHeader::parse(head);
            if header.length > MAX_BUFFERED_PAYLOAD {
                on_event(Event::Oversized(header));
                let available = rest.len() - FRAME_HEADER_LEN;
                let skip_now = available.min(header.length);
                self.skipping = header.length - skip_now;
                at += FRAME_HEADER_LEN + skip_now;
                continue;
            }
            let Some(frame) = rest.get(..FRAME_HEADER_LEN + header.length) else {
                break;
            };
            on_event(Event::Frame {
                header,
                payload: &frame[FRAME_HEADER_LEN..],
            });
            at += FRAME_HEADER_LEN + header.length;
        }
        self.buffer.drain(..at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(reader: &mut FrameReader, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        reader.push(bytes, |e| out.push(format!("{e:?}")));
        out
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut wire = CLIENT_PREFACE.to_vec();
        wire.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
        wire.extend_from_slice(&[0, 0, 2, 0, 1, 0, 0, 0, 1, b'h', b'i']); // DATA END_STREAM
        let whole = collect(&mut FrameReader::new(true), &wire);
        assert_eq!(whole.len(), 3);
        let mut reader = FrameReader::new(true);
        let mut split = Vec::new();
        for b in &wire {
            split.extend(collect(&mut reader, std::slice::from_ref(b)));
        }
        assert_eq!(split, whole);
        assert!(whole[2].contains("payload: [104, 105]"), "{}", whole[2]);
    }

    #[test]
    fn a_wrong_preface_stops_parsing() {
        let mut reader = FrameReader::new(true);
        let events = collect(&mut reader, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(events, vec!["Preface { valid: false }"]);
        assert!(collect(&mut reader, &[0; 100]).is_empty());
    }

    #[test]
    fn oversized_payloads_are_skipped_not_buffered() {
        let mut reader = FrameReader::new(false);
        let events = collect(&mut reader, &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 1, 2, 3]);
        assert_eq!(events.len(), 1);
        assert!(events[0].starts_with("Oversized"));
        for _ in 0..255 {
            assert!(collect(&mut reader, &[0; 65536]).is_empty());
        }
        assert!(reader.buffer.capacity() < 64 * 1024);
        // The rest of the 16 MiB payload, then a PING.
        let left = 0xff_ffff - 3 - 255 * 65536;
        assert!(collect(&mut reader, &vec![0; left]).is_empty());
        let events = collect(
            &mut reader,
            &[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
        );
        assert_eq!(events.len(), 1, "{events:?}");
    }

    #[test]
    fn flags_are_named_per_type() {
        assert_eq!(
            flag_names(frame_type::HEADERS, 0x5),
            "END_STREAM|END_HEADERS"
        );
        assert_eq!(flag_names(frame_type::SETTINGS, 0x1), "ACK");
        assert_eq!(flag_names(frame_type::DATA, 0), "-");
        assert_eq!(flag_names(frame_type::DATA, 0x41), "END_STREAM|0x40");
    }
}
