//! Custom metadata: the application's own key-value pairs, carried as HTTP/2 headers.
//!
//! A gRPC request or response may carry Custom-Metadata next to the headers the protocol
//! itself uses (gRPC over HTTP/2, "Requests"): lowercase names of `0-9 a-z _ - .`, ASCII values
//! of printable characters. Names ending in `-bin` carry binary values, base64 on the wire:
//! "Implementations MUST accept padded and un-padded values and should emit un-padded values",
//! and since duplicate headers may be joined with `,`, a `-bin` value is split on `,` before
//! decoding.
//!
//! Some names are not the application's: the pseudo-headers (`:path`, …, which `http` keeps
//! out of the header map anyway), `te`, `content-type`, `user-agent`, and the `grpc-` headers
//! the protocol defines. [`Metadata::from_headers`] leaves those out, so a handler sees only
//! what the peer's application sent, and refuses a `-bin` value that is not base64.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::wire::status::Status;

/// Headers the protocol uses itself, hidden from the application.
const RESERVED: &[&str] = &["te", "content-type", "user-agent"];

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || (name.starts_with("grpc-") && !is_exposed_grpc_header(name))
}

/// `grpc-` headers that belong to the application despite the prefix (tracing and stats
/// context propagated by instrumentation libraries).
fn is_exposed_grpc_header(name: &str) -> bool {
    matches!(name, "grpc-trace-bin" | "grpc-tags-bin")
}

fn is_binary(name: &str) -> bool {
    name.ends_with("-bin")
}

/// The custom metadata of a request or response.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    headers: HeaderMap,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// The application's metadata from a received header block: every `-bin` value is checked
    /// to be base64 (INTERNAL otherwise, as grpc-go answers). Reserved names stay in the map
    /// but are invisible through this type: filtering on access costs nothing per request.
    pub fn from_headers(headers: HeaderMap) -> Result<Metadata, Status> {
        for (name, value) in &headers {
            let name = name.as_str();
            if is_binary(name) && !is_reserved(name) && !is_valid_base64_list(value.as_bytes()) {
                return Err(Status::internal(format!(
                    "metadata {name} is not valid base64"
                )));
            }
        }
        Ok(Metadata { headers })
    }

    /// The first value of an ASCII entry, if it is valid ASCII.
    pub fn get(&self, key: &str) -> Option<&str> {
        if is_reserved(key) {
            return None;
        }
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// The first value of a `-bin` entry, decoded.
    pub fn get_bin(&self, key: &str) -> Option<Vec<u8>> {
        if is_reserved(key) {
            return None;
        }
        let value = self.headers.get(key)?.as_bytes();
        let first = value.split(|&b| b == b',').next().unwrap_or(value);
        base64_decode(first.trim_ascii()).ok()
    }

    /// Adds an ASCII entry. The name must be a valid, non-reserved metadata name and must not
    /// end in `-bin`; the value must be printable ASCII.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), Status> {
        let name = checked_name(key)?;
        if is_binary(name.as_str()) {
            return Err(Status::internal(format!(
                "metadata {key:?} is binary: use insert_bin"
            )));
        }
        if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(Status::internal(format!(
                "metadata value for {key:?} is not printable ASCII"
            )));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| Status::internal(format!("invalid metadata value for {key:?}")))?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Adds a binary entry; the name must end in `-bin`. Sent as unpadded base64.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), Status> {
        let name = checked_name(key)?;
        if !is_binary(name.as_str()) {
            return Err(Status::internal(format!(
                "binary metadata name {key:?} must end in -bin"
            )));
        }
        let encoded = base64_encode(value);
        let value = HeaderValue::from_str(&encoded)
            .map_err(|_| Status::internal("unreachable: base64 is a valid header value"))?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The entries as HTTP header pairs (binary values base64-encoded, as on the wire).
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers
            .iter()
            .filter(|(name, _)| !is_reserved(name.as_str()))
    }

    /// The entries as a header map to send: reserved names (present when a received map is
    /// sent back) are removed first.
    pub fn into_headers(mut self) -> HeaderMap {
        if self.headers.keys().any(|k| is_reserved(k.as_str())) {
            let reserved: Vec<HeaderName> = self
                .headers
                .keys()
                .filter(|k| is_reserved(k.as_str()))
                .cloned()
                .collect();
            for name in reserved {
                self.headers.remove(name);
            }
        }
        self.headers
    }
}

fn checked_name(key: &str) -> Result<HeaderName, Status> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"_-.".contains(&b));
    if !valid || is_reserved(key) {
        return Err(Status::internal(format!(
            "{key:?} is not a valid custom metadata name"
        )));
    }
    HeaderName::from_bytes(key.as_bytes())
        .map_err(|_| Status::internal(format!("{key:?} is not a valid header name")))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648 §4) without padding, as gRPC asks senders to emit.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let symbols = chunk.len() + 1; // 1 byte → 2 symbols, 2 → 3, 3 → 4
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(BASE64[index as usize]));
        }
    }
    out
}

fn base64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Why a value is not base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidBase64;

/// Decodes standard base64, padded or not. Rejects characters outside the alphabet, padding
/// anywhere but the end, and a length that no encoding produces (4n + 1).
pub fn base64_decode(text: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
    let unpadded = match text {
        [rest @ .., b'=', b'='] if text.len() % 4 == 0 => rest,
        [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    if unpadded.len() % 4 == 1 {
        return Err(InvalidBase64);
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    for chunk in unpadded.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= base64_value(c).ok_or(InvalidBase64)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// Whether a received `-bin` header value decodes: each comma-separated piece is base64.
fn is_valid_base64_list(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .all(|piece| base64_decode(piece.trim_ascii()).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_hidden() {
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("grpc-timeout", HeaderValue::from_static("1S"));
        h.insert("grpc-trace-bin", HeaderValue::from_static("AAAA"));
        h.insert("x-user", HeaderValue::from_static("alice"));
        let m = Metadata::from_headers(h).expect("valid");
        assert_eq!(m.get("x-user"), Some("alice"));
        assert_eq!(m.get("te"), None);
        assert_eq!(m.get("grpc-timeout"), None);
        assert!(m.get("grpc-trace-bin").is_some());
        assert_eq!(m.len(), 2);
        let sent = m.into_headers();
        assert_eq!(sent.len(), 2);
        assert!(sent.get("te").is_none() && sent.get("grpc-timeout").is_none());
    }

    #[test]
    fn invalid_bin_values_are_refused() {
        for bad in ["!!!!", "A", "AAAAA", "AA=A", "AB,C"] {
            let mut h = HeaderMap::new();
            h.insert("x-data-bin", HeaderValue::from_static(bad));
            assert!(Metadata::from_headers(h).is_err(), "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert("x-data-bin", HeaderValue::from_static("AAEC, /w=="));
        let m = Metadata::from_headers(h).expect("valid list");
        assert_eq!(m.get_bin("x-data-bin"), Some(vec![0, 1, 2]));
    }

    #[test]
    fn insert_validates() {
        let mut m = Metadata::new();
        assert!(m.insert("x-ok", "value 1").is_ok());
        assert!(m.insert("Bad Name", "v").is_err());
        assert!(m.insert("X-Upper", "v").is_err());
        assert!(m.insert("grpc-status", "0").is_err());
        assert!(m.insert("x-bin", "v").is_err());
        assert!(m.insert("x-ctl", "a\nb").is_err());
        assert!(m.insert("x-utf", "é").is_err());
        assert!(m.insert_bin("x-plain", b"v").is_err());
        assert!(m.insert_bin("x-raw-bin", &[0xff, 0, 1]).is_ok());
        assert_eq!(m.get("x-ok"), Some("value 1"));
        assert_eq!(m.get("x-raw-bin"), Some("/wAB"));
        assert_eq!(m.get_bin("x-raw-bin"), Some(vec![0xff, 0, 1]));
    }

    #[test]
    fn base64_round_trips_and_accepts_padding() {
        for len in 0..64 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = base64_encode(&data);
            assert!(!enc.contains('='));
            assert_eq!(base64_decode(enc.as_bytes()), Ok(data.clone()));
            let padded = format!("{enc}{}", "=".repeat((4 - enc.len() % 4) % 4));
            assert_eq!(base64_decode(padded.as_bytes()), Ok(data));
        }
        assert_eq!(base64_decode(b"aGk="), Ok(b"hi".to_vec()));
        assert_eq!(base64_decode(b"aGk"), Ok(b"hi".to_vec()));
        assert_eq!(base64_decode(b"aG=k"), Err(InvalidBase64));
        assert_eq!(base64_decode(b"a"), Err(InvalidBase64));
        assert_eq!(base64_decode(b"===="), Err(InvalidBase64));
    }
}
