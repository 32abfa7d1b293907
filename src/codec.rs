//! Protobuf on top of the framing: decode borrowing from the received bytes, encode once.
//!
//! The generated message types (pb-rs) borrow: a `User<'a>` holds `Cow<'a, str>` slices of the
//! buffer it was decoded from, so decoding copies no string. gRPC payloads carry no length
//! prefix of their own (the 5-byte frame prefix is the length), so a payload is decoded with
//! `MessageRead::from_reader` over the whole slice, not quick-protobuf's
//! `deserialize_from_slice`, which expects a varint length first.
//!
//! A reply is encoded straight into the buffer h2 will send: one allocation of exactly
//! prefix + message size, the 5-byte prefix, then the message.
//!
//! [`Message`] names the *family* of a generated type (`User<'static>` stands for every
//! `User<'a>`), which lets code that must own its bytes — a client holding a response, a
//! stream yielding requests — hand out borrowed views: [`Decoded`].

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use quick_protobuf::{BytesReader, BytesWriter, MessageRead, MessageWrite, Writer};

use crate::wire::compression::{self, Encoding};
use crate::wire::frame::{encode_prefix, WireMessage, PREFIX_LEN};
use crate::wire::status::Status;

/// A generated protobuf message type, implemented by build.rs for every message.
///
/// It is implemented for the message type at every lifetime; code names the family by its
/// `'static` instance (`User<'static>`). `View<'a>` is the message borrowing from a buffer that
/// lives for `'a`.
pub trait Message: Send + Sync {
    /// The full protobuf name (`grpc.testing.SimpleRequest`, or `User` without a package).
    const NAME: &'static str;
    /// The message, borrowing from bytes that live for `'a`.
    type View<'a>: MessageRead<'a> + MessageWrite + Default + fmt::Debug + Send + Sync;
}

/// Decodes a message from a payload, borrowing its strings and bytes from `payload`.
pub fn decode<'a, M: MessageRead<'a>>(payload: &'a [u8]) -> Result<M, Status> {
    let mut reader = BytesReader::from_bytes(payload);
    Ok(M::from_reader(&mut reader, payload)?)
}

/// Reads a `string` field and checks that it is UTF-8, which proto3 requires of every string
/// (protobuf language guide, "Scalar Value Types"; a peer that sends otherwise gets INTERNAL,
/// like any undecodable message).
///
/// The generated decoders call this instead of quick-protobuf's `BytesReader::read_string`
/// (build.rs rewrites the call). Both read the same bytes; the difference is the validator.
/// A string of `ASCII_SCAN_MIN` (128) bytes or more is first scanned for plain ASCII
/// (`as_ascii`), which is valid UTF-8 as it stands. Anything else goes to `simdutf8`,
/// which checks 32 or 64 bytes per step where `core::str::from_utf8` checks a word. A
/// 64 KiB ASCII name costs about 4k instructions (29k with `core::str::from_utf8`, 9k with
/// `simdutf8` alone; see docs/performance.md), and short strings cost what they did. On
/// invalid input the standard validator runs once more, only to build the error
/// quick-protobuf's type carries.
pub fn read_string<'a>(
    reader: &mut BytesReader,
    bytes: &'a [u8],
) -> quick_protobuf::Result<&'a str> {
    let raw = reader.read_bytes(bytes)?;
    if raw.len() >= ASCII_SCAN_MIN {
        if let Some(text) = as_ascii(raw) {
            return Ok(text);
        }
    }
    match simdutf8::basic::from_utf8(raw) {
        Ok(text) => Ok(text),
        Err(_) => Err(std::str::from_utf8(raw).err().map_or(
            quick_protobuf::Error::Message("invalid UTF-8".to_owned()),
            quick_protobuf::Error::Utf8,
        )),
    }
}

/// Strings shorter than this skip the ASCII scan: for them the CPU feature check and the
/// call cost more than `simdutf8`'s own short-string path.
const ASCII_SCAN_MIN: usize = 128;

/// Bytes [`as_ascii`] scans before it looks at the result: a string with a non-ASCII byte
/// near its start goes to the full validator after one block, not after a scan of all of it.
const ASCII_SCAN_BLOCK: usize = 4096;

/// `bytes` as a `&str` if every byte is ASCII; `None` if one is not, or if the CPU has no
/// AVX2 (the full validator then decides).
///
/// Names, ids and e-mail addresses are mostly ASCII, and that is cheaper to establish than
/// UTF-8 validity: OR-ing 32 bytes at a time and testing the top bits once per block,
/// about 7 instructions per 128 bytes, against `simdutf8`'s 9 per 64.
fn as_ascii(bytes: &[u8]) -> Option<&str> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of a
        // `target_feature` function.
        if unsafe { is_ascii_avx2(bytes) } {
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
            return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
    }
    None
}

/// Whether every byte is below 0x80. Plain Rust, which the compiler vectorises with the AVX2
/// this function is compiled for.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn is_ascii_avx2(bytes: &[u8]) -> bool {
    bytes
        .chunks(ASCII_SCAN_BLOCK)
        .all(|block| block.iter().fold(0, |acc, &b| acc | b) < 0x80)
}

/// Encodes `message` as one Length-Prefixed-Message, refusing it if it exceeds `max_len`.
pub fn encode<M: MessageWrite>(message: &M, max_len: usize) -> Result<Bytes, Status> {
    let len = message.get_size();
    if len > max_len {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes is larger than the send limit of {max_len} bytes"
        )));
    }
    let prefix = encode_prefix(false, len)
        .ok_or_else(|| Status::resource_exhausted("message longer than 4 GiB"))?;
    let mut buf = vec![0u8; PREFIX_LEN + len];
    buf[..PREFIX_LEN].copy_from_slice(&prefix);
    write_message(message, &mut buf[PREFIX_LEN..])?;
    Ok(Bytes::from(buf))
}

/// Writes `message` into `out`, which is exactly `message.get_size()` bytes long.
fn write_message<M: MessageWrite>(message: &M, out: &mut [u8]) -> Result<(), Status> {
    let mut writer = Writer::new(BytesWriter::new(out));
    message
        .write_message(&mut writer)
        .map_err(|e| Status::internal(format!("failed to encode message: {e}")))
}

/// A message encoded once and kept, to be sent any number of times without being encoded or
/// copied again: a reply built from it costs a reference-count increment (the bytes go to h2
/// as they are). The UserService keeps every user this way.
pub struct Encoded<M> {
    payload: Bytes,
    _message: PhantomData<fn() -> M>,
}

impl<M: Message> Encoded<M> {
    /// Encodes `message` (without the 5-byte prefix, which depends on each send).
    pub fn new(message: &M::View<'_>) -> Self {
        let mut buf = vec![0u8; message.get_size()];
        // Writing into a buffer of exactly `get_size()` bytes cannot run out of room.
        let _ = write_message(message, &mut buf);
        Encoded {
            payload: Bytes::from(buf),
            _message: PhantomData,
        }
    }

    /// The message, decoded borrowing from the kept bytes.
    pub fn view(&self) -> M::View<'_> {
        // Cannot fail: the bytes were produced by encoding an `M`.
        decode(&self.payload).unwrap_or_default()
    }

    /// The encoded message.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

impl<M> Clone for Encoded<M> {
    fn clone(&self) -> Self {
        Encoded {
            payload: self.payload.clone(),
            _message: PhantomData,
        }
    }
}

impl<M: Message> fmt::Debug for Encoded<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// Encodes `message` as one Length-Prefixed-Message compressed with `encoding` (identity: the
/// same as [`encode`]). The send limit applies to the uncompressed size.
pub fn encode_with<M: MessageWrite>(
    message: &M,
    max_len: usize,
    encoding: Encoding,
) -> Result<Bytes, Status> {
    if encoding == Encoding::Identity {
        return encode(message, max_len);
    }
    let plain = encode(message, max_len)?;
    gzip_framed(&plain[PREFIX_LEN..])
}

fn gzip_framed(payload: &[u8]) -> Result<Bytes, Status> {
    let mut buf = Vec::with_capacity(PREFIX_LEN + payload.len() / 2 + 32);
    buf.extend_from_slice(&[0u8; PREFIX_LEN]);
    compression::gzip_into(payload, &mut buf)?;
    let prefix = encode_prefix(true, buf.len() - PREFIX_LEN)
        .ok_or_else(|| Status::resource_exhausted("message longer than 4 GiB"))?;
    buf[..PREFIX_LEN].copy_from_slice(&prefix);
    Ok(Bytes::from(buf))
}

/// Below this size a pre-encoded payload is copied behind its prefix into one buffer (one DATA
/// frame); above it, the prefix and the kept bytes go to h2 as two chunks, so the payload is
/// never copied. A copy of a few hundred bytes costs less than a second DATA frame.
const COPY_BELOW: usize = 1024;

/// Frames an already encoded message: the prefix, and the payload without a copy when it is
/// large. Returns the chunks to send in order.
pub fn frame_encoded(
    payload: &Bytes,
    max_len: usize,
    encoding: Encoding,
) -> Result<(Bytes, Option<Bytes>), Status> {
    let len = payload.len();
    if len > max_len {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes is larger than the send limit of {max_len} bytes"
        )));
    }
    if encoding != Encoding::Identity {
        return Ok((gzip_framed(payload)?, None));
    }
    let prefix = encode_prefix(false, len)
        .ok_or_else(|| Status::resource_exhausted("message longer than 4 GiB"))?;
    if len < COPY_BELOW {
        let mut buf = Vec::with_capacity(PREFIX_LEN + len);
        buf.extend_from_slice(&prefix);
        buf.extend_from_slice(payload);
        Ok((Bytes::from(buf), None))
    } else {
        Ok((Bytes::copy_from_slice(&prefix), Some(payload.clone())))
    }
}

/// The payload of a received message, decompressed if its Compressed-Flag is set.
///
/// `encoding` is the call's `grpc-encoding` (`None` if absent). A compressed message without
/// a compressing encoding breaks the spec ("If the Message-Encoding header is omitted then the
/// Compressed-Flag must be 0"): INTERNAL. The decompressed size is held to `max_len`.
pub fn open(
    wire: WireMessage,
    encoding: Option<Encoding>,
    max_len: usize,
) -> Result<Bytes, Status> {
    if !wire.compressed {
        return Ok(wire.payload);
    }
    match encoding {
        Some(enc @ Encoding::Gzip) => compression::decompress(enc, &wire.payload, max_len),
        _ => Err(Status::internal(
            "compressed-flag set but no compressing grpc-encoding was declared",
        )),
    }
}

/// A received message that owns its bytes and lends out decoded views.
///
/// It is checked when it is built, so [`view`](Self::view) cannot meet a decode error: the
/// same bytes decode the same way every time. Decoding borrows, so a view costs no copy, only
/// the walk over the fields.
pub struct Decoded<M> {
    payload: Bytes,
    compressed: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: Message> Decoded<M> {
    /// Checks that `payload` is a valid `M` and takes ownership of it.
    pub fn new(payload: Bytes) -> Result<Self, Status> {
        Decoded::received(payload, false)
    }

    /// As [`new`](Self::new), remembering whether the message arrived compressed.
    pub fn received(payload: Bytes, compressed: bool) -> Result<Self, Status> {
        decode::<M::View<'_>>(&payload)?;
        Ok(Decoded {
            payload,
            compressed,
            _message: PhantomData,
        })
    }

    /// Whether the message arrived compressed (its Compressed-Flag was set).
    pub fn was_compressed(&self) -> bool {
        self.compressed
    }

    /// The message, borrowing from the owned payload.
    pub fn view(&self) -> M::View<'_> {
        // Cannot fail: `new` decoded these very bytes.
        decode(&self.payload).unwrap_or_default()
    }

    /// The encoded message, as received.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

impl<M: Message> fmt::Debug for Decoded<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl<M: Message> Clone for Decoded<M> {
    fn clone(&self) -> Self {
        Decoded {
            payload: self.payload.clone(),
            compressed: self.compressed,
            _message: PhantomData,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::user::User;
    use crate::wire::status::Code;

    /// A `User` with only `name` (field 1, length-delimited) set to `name`'s bytes.
    fn user_with_name(name: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x0a];
        let mut len = name.len();
        while len >= 0x80 {
            bytes.push((len as u8) | 0x80);
            len >>= 7;
        }
        bytes.push(len as u8);
        bytes.extend_from_slice(name);
        bytes
    }

    #[test]
    fn strings_are_borrowed_when_valid_utf8() {
        // Short and long (past simdutf8's block size), ASCII and multi-byte.
        for name in [
            "Ada",
            "Zoë Ångström",
            &"名前".repeat(100),
            &"x".repeat(70_000),
        ] {
            let payload = user_with_name(name.as_bytes());
            let user: User = decode(&payload).expect("valid UTF-8 decodes");
            assert_eq!(user.name, name);
            assert!(matches!(user.name, std::borrow::Cow::Borrowed(_)));
        }
    }

    #[test]
    fn long_strings_with_non_ascii_past_the_first_block_are_still_validated() {
        // The ASCII scan gives up on these; the full validator then accepts or refuses.
        let valid = format!(
            "{}é{}",
            "x".repeat(ASCII_SCAN_BLOCK * 2 + 7),
            "y".repeat(300)
        );
        let payload = user_with_name(valid.as_bytes());
        let user: User = decode(&payload).expect("valid UTF-8");
        assert_eq!(user.name, valid);
        assert!(matches!(user.name, std::borrow::Cow::Borrowed(_)));

        let mut invalid = "x".repeat(ASCII_SCAN_BLOCK * 2 + 7).into_bytes();
        invalid.push(0xff);
        invalid.extend_from_slice(&[b'y'; 300]);
        let status = decode::<User>(&user_with_name(&invalid)).expect_err("invalid UTF-8");
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn the_ascii_scan_finds_a_high_byte_wherever_it_is() {
        let len = ASCII_SCAN_BLOCK * 2 + 300;
        let ascii = vec![b'a'; len];
        // Without AVX2 the scan always defers to the full validator.
        #[cfg(target_arch = "x86_64")]
        let scans = std::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let scans = false;
        assert_eq!(as_ascii(&ascii).is_some(), scans);
        for at in [
            0,
            1,
            31,
            127,
            ASCII_SCAN_BLOCK - 1,
            ASCII_SCAN_BLOCK,
            len - 1,
        ] {
            let mut bytes = ascii.clone();
            bytes[at] = 0x80;
            assert_eq!(as_ascii(&bytes), None, "high byte at {at}");
        }
    }

    #[test]
    fn invalid_utf8_in_a_string_is_internal() {
        let mut long_then_bad = "y".repeat(200).into_bytes();
        long_then_bad.extend_from_slice(&[0xc3, 0x28]); // a lead byte without its continuation
        for name in [&[0xff_u8, 0xfe][..], &[0xc3, 0x28], &long_then_bad] {
            let payload = user_with_name(name);
            let status = decode::<User>(&payload).expect_err("invalid UTF-8 is refused");
            assert_eq!(status.code(), Code::Internal);
            assert!(status.message().contains("utf-8"), "{}", status.message());
        }
    }
}
