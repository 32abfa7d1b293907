//! Message compression: `grpc-encoding`, `grpc-accept-encoding`, and the Compressed-Flag.
//!
//! gRPC compresses each message on its own (gRPC over HTTP/2, "Compressed-Flag"; `doc/
//! compression.md`): the sender names the algorithm once per call in `grpc-encoding`, then sets
//! the flag byte of each message it compressed. "Compression contexts are NOT maintained over
//! message boundaries": every message is a complete gzip member. Each side lists what it can
//! decode in `grpc-accept-encoding`, so the other side knows what it may send.
//!
//! A request in an encoding we cannot decode is refused with UNIMPLEMENTED, and our
//! `grpc-accept-encoding` goes back with it (compression.md, "Test cases").
//!
//! **The receive limit applies to the decompressed size.** A few KiB of gzip can inflate to
//! gigabytes ("zip bomb"); [`decompress`] stops reading one byte past the limit and answers
//! RESOURCE_EXHAUSTED, so no more than `limit + 1` bytes are ever produced.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::wire::status::Status;

/// A message encoding this implementation knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952), one member per message.
    Gzip,
}

/// What we send in `grpc-accept-encoding`: every encoding we can decode.
pub const ACCEPT_ENCODING: &str = "gzip,identity";

impl Encoding {
    /// The name used in `grpc-encoding` and `grpc-accept-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }

    /// Parses a `grpc-encoding` value; `None` for an encoding we do not support.
    pub fn from_name(name: &[u8]) -> Option<Encoding> {
        match name {
            b"identity" => Some(Encoding::Identity),
            b"gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }

    /// Whether a `grpc-accept-encoding` value (a comma-separated list) includes this encoding.
    /// Identity is always acceptable.
    pub fn accepted_by(self, accept_encoding: Option<&[u8]>) -> bool {
        if self == Encoding::Identity {
            return true;
        }
        let Some(list) = accept_encoding else {
            return false;
        };
        list.split(|&b| b == b',')
            .any(|item| item.trim_ascii() == self.name().as_bytes())
    }
}

/// Decompresses one message payload, refusing output longer than `limit` bytes.
pub fn decompress(encoding: Encoding, payload: &[u8], limit: usize) -> Result<Bytes, Status> {
    match encoding {
        Encoding::Identity => {
            if payload.len() > limit {
                return Err(too_large(limit));
            }
            Ok(Bytes::copy_from_slice(payload))
        }
        Encoding::Gzip => {
            let decoder = flate2::read::GzDecoder::new(payload);
            // Read at most limit + 1 bytes: one byte more than allowed proves the message is
            // too large without inflating the rest of it.
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            let mut out = Vec::with_capacity(payload.len().saturating_mul(4).min(limit));
            decoder
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| Status::internal(format!("invalid gzip message: {e}")))?;
            if out.len() > limit {
                return Err(too_large(limit));
            }
            Ok(Bytes::from(out))
        }
    }
}

fn too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "decompressed message is larger than the limit of {limit} bytes"
    ))
}

/// Compresses `message` with gzip, appending to `out` (which may already hold a prefix).
pub fn gzip_into(message: &[u8], out: &mut Vec<u8>) -> Result<(), Status> {
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    encoder
        .write_all(message)
        .and_then(|()| encoder.try_finish())
        .map_err(|e| Status::internal(format!("gzip failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::status::Code;

    #[test]
    fn gzip_round_trips() {
        for msg in [&b""[..], b"hello", &[7u8; 100_000]] {
            let mut z = Vec::new();
            gzip_into(msg, &mut z).expect("gzip");
            let back = decompress(Encoding::Gzip, &z, msg.len()).expect("gunzip");
            assert_eq!(&back[..], msg);
        }
    }

    #[test]
    fn zip_bomb_is_refused_without_inflating_it() {
        // 64 MiB of zeros compresses to ~64 KiB.
        let mut z = Vec::new();
        gzip_into(&vec![0u8; 64 << 20], &mut z).expect("gzip");
        assert!(z.len() < 1 << 20);
        let e = decompress(Encoding::Gzip, &z, 4 << 20).expect_err("too large");
        assert_eq!(e.code(), Code::ResourceExhausted);
        // The limit is inclusive.
        let mut z = Vec::new();
        gzip_into(&[1u8; 10], &mut z).expect("gzip");
        assert!(decompress(Encoding::Gzip, &z, 10).is_ok());
        assert!(decompress(Encoding::Gzip, &z, 9).is_err());
    }

    #[test]
    fn garbage_is_internal() {
        let e = decompress(Encoding::Gzip, b"not gzip at all", 100).expect_err("garbage");
        assert_eq!(e.code(), Code::Internal);
    }

    #[test]
    fn names_and_negotiation() {
        assert_eq!(Encoding::from_name(b"gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_name(b"identity"), Some(Encoding::Identity));
        assert_eq!(Encoding::from_name(b"snappy"), None);
        assert!(Encoding::Gzip.accepted_by(Some(b"identity, deflate, gzip")));
        assert!(!Encoding::Gzip.accepted_by(Some(b"identity,deflate")));
        assert!(!Encoding::Gzip.accepted_by(None));
        assert!(Encoding::Identity.accepted_by(None));
    }
}
