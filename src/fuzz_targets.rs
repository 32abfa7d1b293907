//! Fuzz targets: every parser of untrusted bytes, as a plain function of `&[u8]`.
//!
//! Each function here takes arbitrary bytes, feeds them to one part of rawgrpc that faces the
//! network, and checks what must hold for *any* input: no panic, no unbounded allocation, and
//! an invariant beyond "did not crash" — the framing decoder agrees with a five-line reference
//! model of the 5-byte prefix, every encoder's output decodes back to what was encoded, the
//! inflated size of a gzip message respects the limit. A violated invariant is a `panic!` with
//! a message saying which one; that is what a fuzzer reports.
//!
//! The functions are ordinary library code, so the same input runs three ways:
//!
//! * under libFuzzer: `fuzz/fuzz_targets/NAME.rs` is one line calling the function `NAME` of
//!   this module; run one target with `cd fuzz && cargo fuzz run -O --sanitizer none NAME`, or
//!   every target with `fuzz/run.sh [SECONDS]` (see `fuzz/README.md`: it works on the stable
//!   toolchain). libFuzzer's panic hook aborts on any panic, on any task;
//! * under `cargo test`: `tests/fuzz_replay.rs` runs every file of `fuzz/corpus/NAME/` and
//!   `fuzz/crashes/NAME/` through the same function, plus a few thousand pseudo-random inputs,
//!   so a regression fails CI without a fuzzer (it also counts panics in tasks the server
//!   spawned, which tokio catches);
//! * by hand, from a debugger or a unit test: `rawgrpc::fuzz_targets::frame_decoder(&bytes)`.
//!
//! Where a target needs more than one value (a split pattern and a stream, a message type and
//! its bytes), the first bytes of the input choose them and the rest is the data, so the
//! fuzzer explores both.
//!
//! [`server_connection`] runs a whole server connection (h2 handshake, every call kind, the
//! real UserService and interop TestService) over an in-memory pipe on a current-thread tokio
//! runtime. Under cargo-fuzz (which compiles with `--cfg fuzzing`, and whose crate enables
//! tokio's `test-util`) the runtime's clock is paused and auto-advances: when every task waits,
//! time jumps to the next timer, so deadlines and the handlers' sleeps happen at once and a run
//! ends as soon as the server has nothing left to do. Without that cfg (`cargo test`), the run
//! uses real time and ends after a short silence instead.

// `fuzzing` is the cfg cargo-fuzz sets; this crate's manifest does not declare it.
#![allow(unexpected_cfgs)]

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quick_protobuf::MessageWrite;

use crate::codec;
use crate::wire::compression::{self, Encoding};
use crate::wire::frame::{FrameError, MessageDecoder, PREFIX_LEN};
use crate::wire::{metadata, status, timeout};

// ---------------------------------------------------------------------------------------------
// frame_decoder
// ---------------------------------------------------------------------------------------------

/// A message or the error the reference model expects, with the stream offset at which the
/// decoder has all the bytes it needs to produce it.
struct ModelMessage<'a> {
    /// Offset one past the message's last byte.
    end: usize,
    compressed: bool,
    payload: &'a [u8],
}

/// What the reference model says about a whole stream.
struct Model<'a> {
    messages: Vec<ModelMessage<'a>>,
    /// A prefix error (InvalidFlag / TooLarge) and the offset one past that prefix.
    error: Option<(usize, FrameError)>,
    /// What `finish` must say once the whole stream was pushed.
    finish: Result<(), FrameError>,
}

/// The 5-byte framing, written as plainly as possible: flag 0 or 1, a big-endian u32 length
/// no larger than `max`, then that many bytes.
fn frame_model(stream: &[u8], max: usize) -> Model<'_> {
    let mut messages = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        if rest.len() < PREFIX_LEN {
            let finish = if rest.is_empty() {
                Ok(())
            } else {
                Err(FrameError::Truncated {
                    received: rest.len(),
                    missing: PREFIX_LEN - rest.len(),
                })
            };
            return Model {
                messages,
                error: None,
                finish,
            };
        }
        let error = if rest[0] > 1 {
            Some(FrameError::InvalidFlag(rest[0]))
        } else {
            None
        };
        let declared = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let error = error.or(if declared as usize > max {
            Some(FrameError::TooLarge {
                len: declared,
                limit: max,
            })
        } else {
            None
        });
        if let Some(e) = error {
            return Model {
                messages,
                error: Some((pos + PREFIX_LEN, e.clone())),
                finish: Err(e),
            };
        }
        let len = declared as usize;
        let body = &rest[PREFIX_LEN..];
        if body.len() < len {
            return Model {
                messages,
                error: None,
                finish: Err(FrameError::Truncated {
                    received: body.len(),
                    missing: len - body.len(),
                }),
            };
        }
        pos += PREFIX_LEN + len;
        messages.push(ModelMessage {
            end: pos,
            compressed: rest[0] == 1,
            payload: &body[..len],
        });
    }
}

/// Checks [`MessageDecoder`] against a reference model of
/// the 5-byte framing, for any stream cut into any chunks.
///
/// Input: bytes 0–1 pick the receive limit (0..=1024), byte 2 the number of chunks `n` (mod
/// 16), the next `n` bytes their sizes (low 7 bits; high bit clear = drain the decoder after
/// that push), the rest is the stream; whatever the chunks leave over is one last chunk.
///
/// Checks: the same messages (flag and payload) as the model, in order; the same error
/// (InvalidFlag / TooLarge with the same values, or Truncated with the same counts at
/// `finish`) after the same messages; each message and error produced as soon as its bytes are
/// in (the decoder is drained after a push); `buffered()` counts exactly the bytes not yet
/// handed out; a message that lies inside one chunk is a slice of it (no copy); after an error
/// the decoder is poisoned (the same error again, pushes ignored).
pub fn frame_decoder(data: &[u8]) {
    let max = match data {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])) % 1025,
        _ => 64,
    };
    let n = data.get(2).map_or(0, |n| usize::from(n % 16));
    let header_len = (3 + n).min(data.len());
    let sizes = data.get(3..header_len).unwrap_or(&[]);
    let stream = &data[header_len..];
    let model = frame_model(stream, max);

    // The chunks: (start offset, size, drain after the push).
    let mut chunks = Vec::new();
    let mut at = 0;
    for &s in sizes {
        let size = usize::from(s & 0x7f).min(stream.len() - at);
        chunks.push((at, size, s & 0x80 == 0));
        at += size;
    }
    chunks.push((at, stream.len() - at, true));

    let mut decoder = MessageDecoder::new(max);
    let mut got: Vec<crate::wire::frame::WireMessage> = Vec::new();
    let mut error: Option<FrameError> = None;
    // (start offset, bytes) of every pushed chunk, to check the no-copy property.
    let mut pushed_chunks: Vec<(usize, Bytes)> = Vec::new();
    let mut pushed = 0;

    for (start, size, drain) in chunks {
        let chunk = Bytes::copy_from_slice(&stream[start..start + size]);
        decoder.push(chunk.clone());
        pushed_chunks.push((start, chunk));
        pushed += size;
        if error.is_some() {
            assert_eq!(decoder.buffered(), 0, "a poisoned decoder buffered a push");
        }
        if !drain {
            continue;
        }
        drain_decoder(&mut decoder, &mut got, &mut error);
        // Everything whose bytes are in must be out.
        let due = model.messages.iter().filter(|m| m.end <= pushed).count();
        let error_due = model.error.as_ref().filter(|(at, _)| *at <= pushed);
        match (error_due, &error) {
            (Some((_, want)), Some(e)) => assert_eq!(e, want, "wrong error"),
            (Some((_, want)), None) => {
                panic!("{pushed} bytes pushed: expected error {want:?}, got none")
            }
            (None, Some(e)) => panic!("{pushed} bytes pushed: unexpected error {e:?}"),
            (None, None) => {}
        }
        assert_eq!(
            got.len(),
            due,
            "{pushed} bytes pushed: {} messages out, {due} complete",
            got.len()
        );
        if error.is_none() {
            let consumed = model.messages[..due].last().map_or(0, |m| m.end);
            let mut expected = pushed - consumed;
            if expected >= PREFIX_LEN {
                expected -= PREFIX_LEN; // the next prefix has been read
            }
            assert_eq!(
                decoder.buffered(),
                expected,
                "buffered() after {pushed} bytes"
            );
        }
    }
    drain_decoder(&mut decoder, &mut got, &mut error);

    assert_eq!(
        got.len(),
        model.messages.len(),
        "number of messages (limit {max})"
    );
    for (i, (g, m)) in got.iter().zip(&model.messages).enumerate() {
        assert_eq!(g.compressed, m.compressed, "flag of message {i}");
        assert_eq!(&g.payload[..], m.payload, "payload of message {i}");
        // No copy for a message inside one chunk.
        let start = m.end - m.payload.len();
        if !m.payload.is_empty() {
            let inside = pushed_chunks
                .iter()
                .find(|(s, c)| *s <= start && m.end <= s + c.len());
            if let Some((s, c)) = inside {
                assert_eq!(
                    g.payload.as_ptr(),
                    c[start - s..].as_ptr(),
                    "message {i} lies inside one chunk but was copied"
                );
            }
        }
    }
    assert_eq!(error, model.error.map(|(_, e)| e), "decoder error");
    assert_eq!(decoder.finish(), model.finish, "finish()");
    if let Some(e) = error {
        decoder.push(Bytes::from_static(&[0, 0, 0, 0, 0]));
        assert_eq!(decoder.next_message(), Err(e), "poisoned decoder");
        assert_eq!(decoder.buffered(), 0, "poisoned decoder buffered");
    }
}

/// Takes messages until the decoder needs more bytes or fails; records the first error and
/// checks that a failed decoder keeps failing the same way.
fn drain_decoder(
    decoder: &mut MessageDecoder,
    got: &mut Vec<crate::wire::frame::WireMessage>,
    error: &mut Option<FrameError>,
) {
    loop {
        match decoder.next_message() {
            Ok(Some(m)) => {
                assert!(error.is_none(), "a message after an error");
                got.push(m);
            }
            Ok(None) => {
                assert!(error.is_none(), "Ok(None) after an error");
                return;
            }
            Err(e) => {
                match error {
                    Some(prev) => assert_eq!(*prev, e, "the error changed"),
                    None => *error = Some(e),
                }
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// grpc_timeout
// ---------------------------------------------------------------------------------------------

/// The `grpc-timeout` grammar, as a reference for [`grpc_timeout`].
fn timeout_model(data: &[u8]) -> Option<Duration> {
    let (&unit, digits) = data.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Checks `grpc-timeout` parsing and formatting ([`timeout::parse`], [`timeout::format`]).
///
/// Checks: `parse` accepts exactly the grammar `1*8DIGIT ("H"/"M"/"S"/"m"/"u"/"n")` and returns
/// the value it spells; when it accepts, `format` of the value parses back to the same value
/// (any parsed value fits eight digits of its own unit, so no rounding is needed). The first
/// 12 bytes, read as a duration, also go through `format`: the text follows the grammar and
/// parses back to at least that duration, less than one unit more (or saturates at
/// `99999999H`).
pub fn grpc_timeout(data: &[u8]) {
    let parsed = timeout::parse(data);
    let expected = timeout_model(data);
    assert_eq!(
        parsed.ok(),
        expected,
        "parse({:?})",
        String::from_utf8_lossy(data)
    );

    if let Ok(d) = parsed {
        let text = timeout::format(d);
        assert_eq!(
            timeout::parse(text.as_bytes()),
            Ok(d),
            "format({d:?}) = {text:?} does not parse back"
        );
    }

    // Any duration: format, then parse back.
    if data.len() >= 12 {
        let secs = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
        let nanos = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default()) % 1_000_000_000;
        // Spread the seconds over every unit's range, not only huge values.
        let secs = secs >> (secs % 64);
        let d = Duration::new(secs, nanos);
        let text = timeout::format(d);
        assert!(
            text.len() <= timeout::MAX_DIGITS + 1,
            "format({d:?}) = {text:?} is too long"
        );
        let back = timeout::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("format({d:?}) = {text:?} does not parse: {e}"));
        let saturated = text == "99999999H";
        assert!(
            back >= d || saturated,
            "format({d:?}) = {text:?} parses to less: {back:?}"
        );
        let unit = match text.as_bytes().last() {
            Some(b'H') => Duration::from_secs(3600),
            Some(b'M') => Duration::from_secs(60),
            Some(b'S') => Duration::from_secs(1),
            Some(b'm') => Duration::from_millis(1),
            Some(b'u') => Duration::from_micros(1),
            _ => Duration::from_nanos(1),
        };
        assert!(
            saturated || back - d < unit,
            "format({d:?}) = {text:?} rounds up by a whole unit or more"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// grpc_message
// ---------------------------------------------------------------------------------------------

/// Checks the `grpc-message` percent-encoding ([`status::percent_encode`],
/// [`status::percent_decode`]).
///
/// Checks: decoding any bytes never panics and yields valid UTF-8 no longer than the input
/// (in chars); for the text `s` read from the input (lossily), `percent_encode(s)` contains
/// only bytes `0x20..=0x7E`, escapes exactly the bytes outside that range and `%`, and
/// decodes back to `s`; text with nothing to escape is passed through as it is, both ways.
pub fn grpc_message(data: &[u8]) {
    let decoded = status::percent_decode(data);
    assert!(
        decoded.chars().count() <= data.len(),
        "percent_decode made more characters than input bytes"
    );
    if data
        .iter()
        .all(|&b| (0x20..=0x7e).contains(&b) && b != b'%')
    {
        assert_eq!(decoded.as_bytes(), data, "plain text changed by decoding");
    }

    let s = String::from_utf8_lossy(data);
    let encoded = status::percent_encode(&s);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "percent_encode({s:?}) = {encoded:?} has bytes outside 0x20..=0x7E"
    );
    let escapes = s
        .bytes()
        .filter(|&b| !(0x20..=0x7e).contains(&b) || b == b'%')
        .count();
    assert_eq!(
        encoded.len(),
        s.len() + 2 * escapes,
        "percent_encode({s:?}) = {encoded:?}: wrong number of escapes"
    );
    if escapes == 0 {
        assert!(
            matches!(encoded, Cow::Borrowed(_)),
            "nothing to escape but percent_encode copied"
        );
    }
    assert_eq!(
        status::percent_decode(encoded.as_bytes()),
        *s,
        "percent_decode(percent_encode(s)) != s for {encoded:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// base64_metadata
// ---------------------------------------------------------------------------------------------

/// Well-formed base64 as [`metadata::base64_decode`] documents it, as a reference for
/// [`base64_metadata`]: the number of characters before the padding, if well formed.
fn base64_model(data: &[u8]) -> Option<usize> {
    let pad = data.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &data[..data.len() - pad];
    let padded_ok = match pad {
        0 => true,
        1 | 2 => data.len() % 4 == 0,
        _ => false,
    };
    let alphabet = body
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    (padded_ok && alphabet && body.len() % 4 != 1).then_some(body.len())
}

/// Checks base64 of `-bin` metadata ([`metadata::base64_decode`], [`metadata::base64_encode`]).
///
/// Checks: decoding any bytes never panics; it succeeds exactly for standard-alphabet text of
/// a length an encoder produces (not 4n + 1), optionally padded with `=` to a multiple of
/// four, and then yields three bytes per four characters; what it decodes, encoded again
/// (unpadded, as gRPC asks senders to emit), decodes to the same bytes, padded or not; and
/// the input itself, as raw bytes, survives encode → decode.
pub fn base64_metadata(data: &[u8]) {
    let decoded = metadata::base64_decode(data);

    let reference = base64_model(data);
    match (&decoded, reference) {
        (Ok(bytes), Some(chars)) => assert_eq!(
            bytes.len(),
            chars * 3 / 4,
            "decoded length of {:?}",
            String::from_utf8_lossy(data)
        ),
        (Err(_), None) => {}
        (Ok(_), None) => panic!(
            "base64_decode accepted malformed {:?}",
            String::from_utf8_lossy(data)
        ),
        (Err(_), Some(_)) => panic!(
            "base64_decode refused well-formed {:?}",
            String::from_utf8_lossy(data)
        ),
    }

    if let Ok(bytes) = &decoded {
        let again = metadata::base64_encode(bytes);
        assert_eq!(
            metadata::base64_decode(again.as_bytes()).as_ref(),
            Ok(bytes),
            "decode(encode(decoded)) != decoded"
        );
    }

    let encoded = metadata::base64_encode(data);
    assert!(!encoded.contains('='), "base64_encode emitted padding");
    assert_eq!(
        encoded.len(),
        (data.len() * 4).div_ceil(3),
        "encoded length"
    );
    assert_eq!(
        metadata::base64_decode(encoded.as_bytes()).as_deref(),
        Ok(data),
        "decode(encode(data)) != data"
    );
    let padded = format!("{encoded}{}", "=".repeat((4 - encoded.len() % 4) % 4));
    assert_eq!(
        metadata::base64_decode(padded.as_bytes()).as_deref(),
        Ok(data),
        "decode of the padded encoding != data"
    );
}

// ---------------------------------------------------------------------------------------------
// protobuf_requests
// ---------------------------------------------------------------------------------------------

/// Decodes `$payload` as `$ty`; on success, encodes it, decodes that and checks that both the
/// message and its encoding are stable. (A macro: the second decode borrows from a local
/// buffer, so it needs the type at a shorter lifetime.)
macro_rules! protobuf_round_trip {
    ($ty:ty, $payload:expr) => {{
        let name = stringify!($ty);
        if let Ok(message) = codec::decode::<$ty>($payload) {
            let encoded = codec::encode(&message, usize::MAX)
                .unwrap_or_else(|e| panic!("{name}: a decoded message does not encode: {e}"));
            assert_eq!(
                encoded.len(),
                PREFIX_LEN + message.get_size(),
                "{name}: encoded length disagrees with get_size"
            );
            let again = codec::decode::<$ty>(&encoded[PREFIX_LEN..])
                .unwrap_or_else(|e| panic!("{name}: re-encoded message does not decode: {e}"));
            assert_eq!(again, message, "{name}: decode(encode(m)) != m");
            let encoded_again =
                codec::encode(&again, usize::MAX).expect("encoded once, encodes twice");
            assert_eq!(encoded_again, encoded, "{name}: encoding is not stable");
        }
    }};
}

/// Checks protobuf decoding of every generated message type ([`codec::decode`]).
///
/// Input: the first byte picks the message type (mod the number of types), the rest is the
/// payload. Checks: decoding never panics; a message that decodes re-encodes
/// ([`codec::encode`]) to exactly `get_size` bytes, which decode to an equal message and
/// encode to the same bytes again.
pub fn protobuf_requests(data: &[u8]) {
    use crate::proto::grpc::testing as t;
    use crate::proto::user as u;

    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    match which % 17 {
        0 => protobuf_round_trip!(u::UserRequest, payload),
        1 => protobuf_round_trip!(u::CreateUserRequest, payload),
        2 => protobuf_round_trip!(u::UserResponse, payload),
        3 => protobuf_round_trip!(u::CreateUserResponse, payload),
        4 => protobuf_round_trip!(u::User, payload),
        5 => protobuf_round_trip!(t::SimpleRequest, payload),
        6 => protobuf_round_trip!(t::StreamingInputCallRequest, payload),
        7 => protobuf_round_trip!(t::StreamingOutputCallRequest, payload),
        8 => protobuf_round_trip!(t::Empty, payload),
        9 => protobuf_round_trip!(t::SimpleResponse, payload),
        10 => protobuf_round_trip!(t::StreamingOutputCallResponse, payload),
        11 => protobuf_round_trip!(t::StreamingInputCallResponse, payload),
        12 => protobuf_round_trip!(t::Payload, payload),
        13 => protobuf_round_trip!(t::EchoStatus, payload),
        14 => protobuf_round_trip!(t::ResponseParameters, payload),
        15 => protobuf_round_trip!(t::BoolValue, payload),
        _ => {
            // Every type at once: a payload must not panic any of them.
            protobuf_round_trip!(u::UserRequest, payload);
            protobuf_round_trip!(u::CreateUserRequest, payload);
            protobuf_round_trip!(t::SimpleRequest, payload);
            protobuf_round_trip!(t::StreamingInputCallRequest, payload);
            protobuf_round_trip!(t::StreamingOutputCallRequest, payload);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// gzip_decompress
// ---------------------------------------------------------------------------------------------

/// The decompression limit of [`gzip_decompress`].
pub const GZIP_LIMIT: usize = 64 * 1024;

/// Checks message decompression ([`compression::decompress`], [`compression::gzip_into`]).
///
/// Checks: gunzipping any bytes with a limit of 64 KiB never panics and never returns more
/// than the limit; identity "decompression" returns the input exactly when it fits the limit;
/// a slice of the input (its length picked by the first two bytes), gzipped after a prefix
/// that must be kept, decompresses back to itself with a limit of exactly its length, and is
/// refused (RESOURCE_EXHAUSTED) with a limit one byte smaller.
pub fn gzip_decompress(data: &[u8]) {
    match compression::decompress(Encoding::Gzip, data, GZIP_LIMIT) {
        Ok(out) => assert!(
            out.len() <= GZIP_LIMIT,
            "gunzip returned {} bytes over a limit of {GZIP_LIMIT}",
            out.len()
        ),
        Err(status) => assert!(
            matches!(
                status.code(),
                crate::Code::Internal | crate::Code::ResourceExhausted
            ),
            "unexpected status {status}"
        ),
    }
    let small_limit = data.first().map_or(0, |&b| usize::from(b));
    match compression::decompress(Encoding::Identity, data, small_limit) {
        Ok(out) => {
            assert!(
                data.len() <= small_limit,
                "identity over the limit accepted"
            );
            assert_eq!(&out[..], data, "identity changed the payload");
        }
        Err(_) => assert!(
            data.len() > small_limit,
            "identity within the limit refused"
        ),
    }

    let len = match data {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])) % (data.len() + 1),
        _ => data.len(),
    };
    let message = &data[data.len() - len..];
    let mut out = b"prefix".to_vec();
    compression::gzip_into(message, &mut out).expect("gzip into a Vec cannot fail");
    assert_eq!(
        &out[..6],
        b"prefix",
        "gzip_into overwrote what was in the buffer"
    );
    let back = compression::decompress(Encoding::Gzip, &out[6..], message.len())
        .unwrap_or_else(|e| panic!("our own gzip does not decompress: {e}"));
    assert_eq!(&back[..], message, "gzip round trip");
    if let Some(smaller) = message.len().checked_sub(1) {
        let refused = compression::decompress(Encoding::Gzip, &out[6..], smaller);
        assert_eq!(
            refused.map_err(|e| e.code()),
            Err(crate::Code::ResourceExhausted),
            "a message one byte over the limit must be refused"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// server_connection
// ---------------------------------------------------------------------------------------------

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const CLIENT_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
pub const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// The server configuration [`server_connection`] uses: the defaults, with limits lowered so
/// that one run stays small (a 64 KiB message limit and windows, 16 concurrent streams).
pub fn fuzz_server_config() -> crate::server::ServerConfig {
    crate::server::ServerConfig {
        max_receive_message_len: 64 * 1024,
        initial_stream_window: 64 * 1024,
        initial_connection_window: 64 * 1024,
        max_concurrent_streams: 16,
        ..Default::default()
    }
}

/// The routing table of [`server_connection`]: UserService (in memory) and the interop
/// TestService, as `rawgrpc serve` and `interop-server` route them.
pub fn fuzz_router() -> crate::server::Router {
    let mut router = crate::server::Router::new();
    router.add_service(crate::proto::user::UserServiceServer::new(
        crate::services::user::UserServiceImpl::in_memory(),
    ));
    router.add_service(crate::proto::grpc::testing::TestServiceServer::new(
        crate::interop::server::TestServiceImpl,
    ));
    let health = crate::services::health::HealthReporter::new();
    health.set_serving("");
    router.add_service(crate::proto::grpc::health::v1::HealthServer::new(
        health.service(),
    ));
    let reflection = crate::services::reflection::ReflectionService::for_router(&router);
    router.add_service(
        crate::proto::grpc::reflection::v1::ServerReflectionServer::new(reflection.clone()),
    );
    router.add_service(
        crate::proto::grpc::reflection::v1alpha::ServerReflectionServer::new(reflection),
    );
    router
}

/// Whether [`server_connection`] runs on a paused, auto-advancing clock (under cargo-fuzz).
pub const PAUSED_CLOCK: bool = cfg!(fuzzing);

/// How much virtual time one run of [`server_connection`] may take (real time when the clock
/// is not paused: see the module docs).
const RUN_LIMIT: Duration = if PAUSED_CLOCK {
    Duration::from_secs(5)
} else {
    Duration::from_secs(2)
};

/// Without a paused clock: how long the server may stay silent, once the whole input is
/// written, before the run is considered over.
const IDLE: Duration = Duration::from_millis(15);

/// Most bytes of server output read per run; after that the client stops reading, the
/// server's writes wait, and the run ends at the time limit.
const MAX_OUTPUT: usize = 8 << 20;

fn runtime() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    #[cfg(fuzzing)]
    builder.start_paused(true);
    builder
        .build()
        .expect("a current-thread runtime can always be built")
}

/// Runs one whole server connection ([`serve_connection`](crate::server::connection::serve_connection))
/// with the input as the client's bytes.
///
/// The server (UserService and the interop TestService, see [`fuzz_router`] and
/// [`fuzz_server_config`]) runs over an in-memory duplex pipe on a current-thread runtime;
/// the client side writes the connection preface and an empty SETTINGS frame, then the input
/// as raw bytes (HTTP/2 frames: HEADERS, DATA, RST_STREAM, SETTINGS, …), and reads whatever
/// the server answers until it closes the connection or falls silent. The run is bounded
/// (5 s of virtual time under cargo-fuzz, see the module docs).
///
/// Checks: nothing panics — not the connection task, not a call's task, not a handler. A
/// panic in the connection task is re-raised here; one in a call's task is caught by tokio,
/// so it is the panic hook that sees it (libFuzzer's aborts, `tests/fuzz_replay.rs` counts).
pub fn server_connection(data: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = runtime();
    let panicked = rt.block_on(async {
        let shared = Arc::new(crate::server::connection::Shared::new(
            fuzz_server_config(),
            fuzz_router(),
        ));
        let (client, server_io) = tokio::io::duplex(256 * 1024);
        let (_drain_tx, drain_rx) =
            tokio::sync::watch::channel(crate::server::connection::Drain::Serving);
        let peer = SocketAddr::from(([127, 0, 0, 1], 50051));
        let server = tokio::spawn(crate::server::connection::serve_connection(
            server_io, peer, shared, drain_rx,
        ));
        let (mut rd, mut wr) = tokio::io::split(client);
        let written = Arc::new(std::sync::atomic::AtomicBool::new(false));

        let writer = {
            let written = Arc::clone(&written);
            async move {
                // The server may close first (a protocol error): then writes fail, which is fine.
                let _ = async {
                    wr.write_all(CLIENT_PREFACE).await?;
                    wr.write_all(EMPTY_SETTINGS).await?;
                    wr.write_all(data).await?;
                    wr.flush().await
                }
                .await;
                written.store(true, std::sync::atomic::Ordering::SeqCst);
                wr // kept open until the run ends: closing it would end the connection early
            }
        };
        let reader = async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut total = 0;
            while total < MAX_OUTPUT {
                let read = if PAUSED_CLOCK {
                    rd.read(&mut buf).await
                } else {
                    match tokio::time::timeout(IDLE, rd.read(&mut buf)).await {
                        Ok(read) => read,
                        Err(_) if written.load(std::sync::atomic::Ordering::SeqCst) => break,
                        Err(_) => continue,
                    }
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            if total >= MAX_OUTPUT {
                // Stop reading but keep the pipe open: wait for the time limit.
                std::future::pending::<()>().await;
            }
            rd
        };
        let _ = tokio::time::timeout(RUN_LIMIT, async { tokio::join!(writer, reader) }).await;

        // A panic in the connection task surfaces here; panics in call tasks are caught by
        // tokio, so the panic hook sees those (see the doc comment).
        server.abort();
        match server.await {
            Err(e) if e.is_panic() => Some(e.into_panic()),
            _ => None,
        }
    });
    drop(rt);
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
}

// ---------------------------------------------------------------------------------------------
// wire_tracer
// ---------------------------------------------------------------------------------------------

/// Runs the wire tracer ([`crate::tracer::WireTracer`]) over arbitrary bytes in both
/// directions: its HTTP/2 frame reader, HPACK decoder, gRPC message cutter and protobuf text
/// decoder all parse what a peer sends.
///
/// The first byte picks the side the tracer sits on (bit 6) and the size of the chunks the
/// bytes arrive in (low 6 bits, 1 to 64: a socket read may end anywhere). The rest is fed as
/// the client's bytes after the connection preface, and again as the server's.
///
/// Checks: nothing panics, and the text is the same whether the bytes arrive in chunks or all
/// at once (frames are only shown once whole, so how reads split the stream must not matter).
pub fn wire_tracer(data: &[u8]) {
    use crate::tracer::{Side, WireTracer};
    use std::sync::{Arc, Mutex};

    let Some((&control, frames)) = data.split_first() else {
        return;
    };
    let side = if control & 0x40 != 0 {
        Side::Client
    } else {
        Side::Server
    };
    let chunk = usize::from(control & 0x3f) + 1;
    let run = |chunk: usize| {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let mut tracer = WireTracer::with_sink(side, move |t| {
            if let Ok(mut all) = sink.lock() {
                all.push_str(t);
            }
        });
        let mut client_bytes = CLIENT_PREFACE.to_vec();
        client_bytes.extend_from_slice(frames);
        for piece in client_bytes.chunks(chunk) {
            match side {
                Side::Server => tracer.received(piece),
                Side::Client => tracer.sent(piece),
            }
        }
        for piece in frames.chunks(chunk) {
            match side {
                Side::Server => tracer.sent(piece),
                Side::Client => tracer.received(piece),
            }
        }
        drop(tracer);
        let text = text.lock().map(|t| t.clone()).unwrap_or_default();
        text
    };
    let chunked = run(chunk);
    let whole = run(usize::MAX);
    assert_eq!(
        chunked, whole,
        "the trace depends on how the bytes were split"
    );
}
