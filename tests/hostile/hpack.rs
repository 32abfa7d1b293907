//! Just enough HPACK (RFC 7541) for a raw HTTP/2 peer.
//!
//! * Encoding: every field as a "literal header field without indexing", new name, no Huffman
//!   (`0x00`, name length, name, value length, value): trivial to write, and it leaves the
//!   server's dynamic table untouched, so blocks can be built in any order.
//! * Decoding: the whole format (static and dynamic table, size updates, Huffman strings), since
//!   h2 indexes and Huffman-codes what it sends and every block must be decoded, in order, to
//!   keep the dynamic table in step. That is the wire tracer's decoder
//!   (`rawgrpc::tracer::hpack`), tested there against RFC 7541's examples.

use rawgrpc::tracer::hpack::HpackDecoder;

/// An HPACK integer with an `n`-bit prefix whose high bits are `first`.
pub fn encode_int(out: &mut Vec<u8>, first: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// One "literal header field without indexing — new name", raw strings.
pub fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_int(out, 0, 7, name.len());
    out.extend_from_slice(name);
    encode_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// A header block of literal fields, in order (pseudo-headers first, as HTTP/2 requires).
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        literal(&mut out, name.as_bytes(), value.as_bytes());
    }
    out
}

/// The fields of a gRPC request to `path` (POST, http, application/grpc, te: trailers).
pub fn grpc_request_fields(path: &str) -> Vec<(String, String)> {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

/// A header block for `fields`.
pub fn block_of(fields: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        literal(&mut out, name.as_bytes(), value.as_bytes());
    }
    out
}

/// A decoded header field.
pub type Field = (String, String);

/// An HPACK decoder: the dynamic table of one direction of one connection.
pub struct Decoder(HpackDecoder);

impl Default for Decoder {
    fn default() -> Self {
        // The largest table a size update may ask for; h2 keeps the default 4096.
        Decoder(HpackDecoder::new(64 * 1024))
    }
}

impl Decoder {
    /// Decodes one complete header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        let block = self.0.decode(block).map_err(|e| e.to_string())?;
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        Ok(block
            .fields
            .into_iter()
            .map(|f| (text(f.name), text(f.value)))
            .collect())
    }
}
