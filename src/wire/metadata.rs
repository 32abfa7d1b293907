//! Custom metadata: the application's own key-value pairs, carried as HTTP/2 headers.
//!
//! A gRPC request or response may carry Custom-Metadata next to the headers the protocol
//! itself uses (gRPC over HTTP/2, "Requests"): lowercase names of `0-9 a-z _ - .`, ASCII values
//! of printable characters. Names ending in `-bin` carry binary values, base64 on the wire.
//!
//! Some names are not the application's: the pseudo-headers (`:path`, …, which `http` keeps out
//! of the header map anyway), `te`, `content-type`, and the `grpc-` headers the protocol
//! defines. [`Metadata::from_headers`] leaves those out, so a handler sees only what the peer's
//! application sent.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::wire::status::Status;

/// Headers the protocol uses itself, hidden from the application.
const RESERVED: &[&str] = &["te", "content-type", "user-agent"];

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || (name.starts_with("grpc-") && !is_exposed_grpc_header(name))
}

/// `grpc-` headers that belong to the application despite the prefix (tracing and stats
/// context, defined in grpc's observability docs).
fn is_exposed_grpc_header(name: &str) -> bool {
    matches!(name, "grpc-trace-bin" | "grpc-tags-bin")
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

    /// The application's metadata from a received header block: reserved names dropped.
    pub fn from_headers(mut headers: HeaderMap) -> Metadata {
        let reserved: Vec<HeaderName> = headers
            .keys()
            .filter(|k| is_reserved(k.as_str()))
            .cloned()
            .collect();
        for name in reserved {
            headers.remove(name);
        }
        Metadata { headers }
    }

    /// The first value of an ASCII entry, if it is valid ASCII.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// Adds an ASCII entry. The name must be a valid, non-reserved metadata name and must not
    /// end in `-bin`; the value must be printable ASCII.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), Status> {
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| Status::internal(format!("invalid metadata name {key:?}")))?;
        if is_reserved(name.as_str()) || name.as_str().ends_with("-bin") {
            return Err(Status::internal(format!(
                "metadata name {key:?} is reserved or binary"
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

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The entries as HTTP header pairs, to be written after the protocol's own headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
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
        let m = Metadata::from_headers(h);
        assert_eq!(m.get("x-user"), Some("alice"));
        assert_eq!(m.get("te"), None);
        assert_eq!(m.get("grpc-timeout"), None);
        assert!(m.get("grpc-trace-bin").is_some());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn insert_validates() {
        let mut m = Metadata::new();
        assert!(m.insert("x-ok", "value 1").is_ok());
        assert!(m.insert("Bad Name", "v").is_err());
        assert!(m.insert("grpc-status", "0").is_err());
        assert!(m.insert("x-bin", "v").is_err());
        assert!(m.insert("x-ctl", "a\nb").is_err());
        assert!(m.insert("x-utf", "é").is_err());
        assert_eq!(m.get("x-ok"), Some("value 1"));
    }
}
