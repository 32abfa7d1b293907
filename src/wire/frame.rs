//! gRPC message framing: the 5-byte Length-Prefixed-Message.
//!
//! Inside an HTTP/2 stream's DATA frames, gRPC carries a sequence of messages, each preceded
//! by a fixed prefix (gRPC over HTTP/2, "Requests"):
//!
//! ```text
//! Length-Prefixed-Message → Compressed-Flag Message-Length Message
//!   Compressed-Flag → 0 / 1              1 byte
//!   Message-Length  → big-endian u32     4 bytes
//!   Message         → Message-Length bytes
//! ```
//!
//! "DATA frame boundaries have no relation to Length-Prefixed-Message boundaries": one DATA
//! frame may hold a prefix split in two, a slice of a large message, or several whole
//! messages. [`MessageDecoder`] is therefore incremental: it is fed chunks as they arrive and
//! yields whole messages when they are complete.
//!
//! Two properties matter for a server facing the network:
//!
//! * **The declared length is checked before anything is buffered.** A peer that announces a
//!   4 GiB message gets [`FrameError::TooLarge`] after sending five bytes; nothing is reserved
//!   on the strength of a number the peer chose.
//! * **At most one copy.** A message that lies inside one chunk is returned as a slice of that
//!   chunk (`Bytes::split_to`, no copy). A message spread over several chunks is joined once,
//!   into a buffer of exactly its size, when its last byte has arrived; until then the chunks
//!   are only queued, so memory follows what was actually received.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Size of the prefix: one flag byte and a four-byte length.
pub const PREFIX_LEN: usize = 5;

/// Largest message accepted by default: 4 MiB, the default of grpc-go, grpc-java and tonic,
/// so that clients written for them fit and one call cannot take more memory than that.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 4 * 1024 * 1024;

/// One framed message as it was on the wire: the payload is still compressed if the flag says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    /// The Compressed-Flag: the payload is compressed with the call's `grpc-encoding`.
    pub compressed: bool,
    /// The message bytes, without the prefix.
    pub payload: Bytes,
}

/// Why a stream of bytes is not a valid sequence of gRPC messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The prefix declares a message longer than the receive limit.
    TooLarge {
        /// The declared length.
        len: u32,
        /// The limit in force.
        limit: usize,
    },
    /// The Compressed-Flag byte is neither 0 nor 1.
    InvalidFlag(u8),
    /// The stream ended inside a prefix or a message.
    Truncated {
        /// Bytes of the unfinished prefix or message that did arrive.
        received: usize,
        /// Bytes that were still expected.
        missing: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, limit } => {
                write!(
                    f,
                    "message of {len} bytes is larger than the limit of {limit} bytes"
                )
            }
            FrameError::InvalidFlag(b) => write!(f, "invalid compressed-flag byte {b}"),
            FrameError::Truncated { received, missing } => write!(
                f,
                "stream ended inside a message ({received} bytes received, {missing} missing)"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// The join copies at most this many bytes per `memcpy`.
///
/// Above about 2 KiB, glibc's `memcpy` switches to `rep movsb`. The CPU runs that as one
/// microcoded instruction, but callgrind, whose instruction count is how this project
/// measures a call (docs/performance.md), counts it once per byte: joining a 64 KiB message
/// read as 65.6k instructions, three quarters as many as h2's whole work on the request
/// (87k). In 2 KiB pieces glibc copies with its vector loop, 32 bytes per instruction, and
/// the join reads as 6.5k. In wall time the pieces are slightly slower (1.9 against 1.7 µs
/// per 64 KiB on the bench machine); the timed 64 KiB request scenario shows no difference
/// in CPU time per call.
const JOIN_PIECE: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a prefix.
    Prefix,
    /// The prefix was read; waiting for `len` bytes of payload.
    Payload { compressed: bool, len: usize },
}

/// Incremental decoder of Length-Prefixed-Messages.
///
/// Feed it DATA chunks with [`push`](Self::push), take messages with
/// [`next_message`](Self::next_message) until it returns `Ok(None)`, and call
/// [`finish`](Self::finish) at END_STREAM to learn whether the stream stopped cleanly.
/// After an error the decoder is poisoned: it returns the same error again.
#[derive(Debug)]
pub struct MessageDecoder {
    max_len: usize,
    /// Queued bytes: `front`, then `rest`. The first chunk has a field of its own so that the
    /// common case, a message arriving in one DATA frame, never allocates a queue.
    front: Bytes,
    rest: VecDeque<Bytes>,
    buffered: usize,
    state: State,
    error: Option<FrameError>,
}

impl MessageDecoder {
    /// A decoder that refuses messages longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        MessageDecoder {
            max_len,
            front: Bytes::new(),
            rest: VecDeque::new(),
            buffered: 0,
            state: State::Prefix,
            error: None,
        }
    }

    /// Queues a chunk of the stream (the payload of one DATA frame). No copy is made.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() && self.error.is_none() {
            self.buffered += chunk.len();
            if self.front.is_empty() {
                self.front = chunk;
            } else {
                self.rest.push_back(chunk);
            }
        }
    }

    /// Bytes queued and not yet returned as part of a message.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<WireMessage>, FrameError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Prefix {
            if self.buffered < PREFIX_LEN {
                return Ok(None);
            }
            let mut prefix = [0u8; PREFIX_LEN];
            self.copy_out(&mut prefix);
            let compressed = match prefix[0] {
                0 => false,
                1 => true,
                other => return Err(self.fail(FrameError::InvalidFlag(other))),
            };
            let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
            let len = declared as usize;
            if len > self.max_len {
                let limit = self.max_len;
                return Err(self.fail(FrameError::TooLarge {
                    len: declared,
                    limit,
                }));
            }
            self.state = State::Payload { compressed, len };
        }
        let State::Payload { compressed, len } = self.state else {
            return Ok(None);
        };
        if self.buffered < len {
            return Ok(None);
        }
        let payload = if self.front.len() >= len {
            // The whole message lies in the first chunk: hand out a slice of it.
            let payload = self.front.split_to(len);
            self.refill_front();
            self.buffered -= len;
            payload
        } else {
            // Spread over several chunks: join them once, into a buffer of exactly `len`.
            let mut joined = BytesMut::with_capacity(len);
            while joined.len() < len && !self.front.is_empty() {
                let take = self.front.len().min(len - joined.len());
                for piece in self.front[..take].chunks(JOIN_PIECE) {
                    joined.extend_from_slice(piece);
                }
                self.front.advance(take);
                self.refill_front();
            }
            self.buffered -= joined.len();
            joined.freeze()
        };
        self.state = State::Prefix;
        Ok(Some(WireMessage {
            compressed,
            payload,
        }))
    }

    /// Checks, at END_STREAM, that the stream ended on a message boundary.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Prefix if self.buffered == 0 => Ok(()),
            State::Prefix => Err(FrameError::Truncated {
                received: self.buffered,
                missing: PREFIX_LEN - self.buffered,
            }),
            State::Payload { len, .. } => Err(FrameError::Truncated {
                received: self.buffered,
                missing: len - self.buffered,
            }),
        }
    }

    /// Moves the next queued chunk to the front once the front is used up.
    fn refill_front(&mut self) {
        if self.front.is_empty() {
            self.front = self.rest.pop_front().unwrap_or_default();
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.front = Bytes::new();
        self.rest.clear();
        self.buffered = 0;
        self.error = Some(e.clone());
        e
    }

    /// Copies `out.len()` queued bytes into `out` (only used for the 5-byte prefix).
    fn copy_out(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() && !self.front.is_empty() {
            let take = self.front.len().min(out.len() - filled);
            out[filled..filled + take].copy_from_slice(&self.front[..take]);
            self.front.advance(take);
            filled += take;
            self.refill_front();
        }
        self.buffered -= filled;
    }
}

/// The prefix of a message of `len` bytes.
///
/// Returns `None` when `len` does not fit the 32-bit length field.
pub fn encode_prefix(compressed: bool, len: usize) -> Option<[u8; PREFIX_LEN]> {
    let len = u32::try_from(len).ok()?.to_be_bytes();
    Some([u8::from(compressed), len[0], len[1], len[2], len[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn drain(d: &mut MessageDecoder) -> Vec<WireMessage> {
        let mut out = Vec::new();
        while let Some(m) = d.next_message().expect("valid stream") {
            out.push(m);
        }
        out
    }

    #[test]
    fn every_split_point_of_a_stream_yields_the_same_messages() {
        let mut stream = frame(0, b"hello");
        stream.extend(frame(1, b""));
        stream.extend(frame(0, &[7u8; 300]));
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut d = MessageDecoder::new(1024);
                let mut got = Vec::new();
                for part in [&stream[..a], &stream[a..b], &stream[b..]] {
                    d.push(Bytes::copy_from_slice(part));
                    got.extend(drain(&mut d));
                }
                d.finish().expect("ends on a boundary");
                assert_eq!(got.len(), 3, "split at {a},{b}");
                assert_eq!(&got[0].payload[..], b"hello");
                assert!(!got[0].compressed);
                assert!(got[1].compressed && got[1].payload.is_empty());
                assert_eq!(&got[2].payload[..], &[7u8; 300][..]);
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream = frame(0, b"abcdef");
        let mut d = MessageDecoder::new(16);
        let mut got = Vec::new();
        for b in stream {
            d.push(Bytes::from(vec![b]));
            got.extend(drain(&mut d));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].payload[..], b"abcdef");
    }

    #[test]
    fn a_large_message_is_joined_intact_from_frame_sized_chunks() {
        // 64 KiB + 7 in 16 KiB DATA frames: every chunk is copied in several pieces, and the
        // last piece of each is short.
        let payload: Vec<u8> = (0..65_543u32).map(|i| (i % 251) as u8).collect();
        let stream = frame(0, &payload);
        let mut d = MessageDecoder::new(DEFAULT_MAX_MESSAGE_LEN);
        let mut got = Vec::new();
        for chunk in stream.chunks(16_384) {
            d.push(Bytes::copy_from_slice(chunk));
            got.extend(drain(&mut d));
        }
        d.finish().expect("ends on a boundary");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, payload);
    }

    #[test]
    fn a_message_inside_one_chunk_is_not_copied() {
        let mut stream = frame(0, b"first");
        stream.extend(frame(0, b"second"));
        let chunk = Bytes::from(stream);
        let base = chunk.as_ptr() as usize;
        let mut d = MessageDecoder::new(64);
        d.push(chunk);
        let got = drain(&mut d);
        assert_eq!(got[0].payload.as_ptr() as usize, base + PREFIX_LEN);
        assert_eq!(got[1].payload.as_ptr() as usize, base + 2 * PREFIX_LEN + 5);
    }

    #[test]
    fn length_over_the_limit_fails_before_buffering() {
        let mut d = MessageDecoder::new(10);
        d.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(
            d.next_message(),
            Err(FrameError::TooLarge {
                len: u32::MAX,
                limit: 10
            })
        );
        assert_eq!(d.buffered(), 0);
        // Poisoned: later input changes nothing.
        d.push(Bytes::from_static(b"more"));
        assert!(d.next_message().is_err());
        assert!(d.finish().is_err());
    }

    #[test]
    fn limit_is_inclusive() {
        let mut d = MessageDecoder::new(3);
        d.push(Bytes::from(frame(0, b"abc")));
        assert_eq!(drain(&mut d).len(), 1);
    }

    #[test]
    fn invalid_flag_is_an_error() {
        for flag in 2..=255u8 {
            let mut d = MessageDecoder::new(10);
            d.push(Bytes::from(frame(flag, b"x")));
            assert_eq!(d.next_message(), Err(FrameError::InvalidFlag(flag)));
        }
    }

    #[test]
    fn truncated_streams_are_reported_at_finish() {
        let stream = frame(0, b"abcdef");
        for cut in 1..stream.len() {
            let mut d = MessageDecoder::new(64);
            d.push(Bytes::copy_from_slice(&stream[..cut]));
            assert_eq!(d.next_message(), Ok(None));
            assert!(
                matches!(d.finish(), Err(FrameError::Truncated { .. })),
                "cut {cut}"
            );
        }
        let d = MessageDecoder::new(64);
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn prefix_encoding() {
        assert_eq!(encode_prefix(false, 0x0102_0304), Some([0, 1, 2, 3, 4]));
        assert_eq!(encode_prefix(true, 0), Some([1, 0, 0, 0, 0]));
    }
}
