//! Just enough HPACK (RFC 7541) for a raw HTTP/2 peer.
//!
//! * Encoding: every field as a "literal header field without indexing", new name, no Huffman
//!   (`0x00`, name length, name, value length, value): trivial to write, and it leaves the
//!   server's dynamic table untouched, so blocks can be built in any order.
//! * Decoding: the whole format (static and dynamic table, size updates, Huffman strings), since
//!   h2 indexes and Huffman-codes what it sends and every block must be decoded, in order, to
//!   keep the dynamic table in step.

use std::collections::{HashMap, VecDeque};

use super::huffman::{ENCODE_CODES, ENCODE_CODE_LENGTHS};

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

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// A decoded header field.
pub type Field = (String, String);

/// An HPACK decoder: the dynamic table of one direction of one connection.
pub struct Decoder {
    dynamic: VecDeque<Field>,
    size: usize,
    max_size: usize,
    huffman: HashMap<(u8, u32), u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        let huffman = (0..256)
            .map(|b| ((ENCODE_CODE_LENGTHS[b], ENCODE_CODES[b]), b as u8))
            .collect();
        Decoder {
            dynamic: VecDeque::new(),
            size: 0,
            max_size: 4096,
            huffman,
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.pos).ok_or("header block cut short")?;
        self.pos += 1;
        Ok(b)
    }

    fn int(&mut self, n: u32) -> Result<usize, String> {
        let max = (1usize << n) - 1;
        let mut value = usize::from(self.byte()?) & max;
        if value < max {
            return Ok(value);
        }
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            value += usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            if shift > 28 {
                return Err("HPACK integer too large".into());
            }
        }
    }
}

impl Decoder {
    /// Decodes one complete header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        let mut c = Cursor {
            bytes: block,
            pos: 0,
        };
        let mut fields = Vec::new();
        while c.pos < block.len() {
            let first = block[c.pos];
            if first & 0x80 != 0 {
                let index = c.int(7)?;
                fields.push(self.entry(index)?);
            } else if first & 0xc0 == 0x40 {
                let field = self.literal(&mut c, 6)?;
                self.insert(field.clone());
                fields.push(field);
            } else if first & 0xe0 == 0x20 {
                self.max_size = c.int(5)?;
                self.evict(0);
            } else {
                // 0000xxxx without indexing, 0001xxxx never indexed.
                fields.push(self.literal(&mut c, 4)?);
            }
        }
        Ok(fields)
    }

    fn entry(&self, index: usize) -> Result<Field, String> {
        match index {
            0 => Err("HPACK index 0".into()),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok((n.to_owned(), v.to_owned()))
            }
            _ => self
                .dynamic
                .get(index - 62)
                .cloned()
                .ok_or_else(|| format!("HPACK index {index} out of range")),
        }
    }

    fn literal(&mut self, c: &mut Cursor<'_>, n: u32) -> Result<Field, String> {
        let index = c.int(n)?;
        let name = if index == 0 {
            self.string(c)?
        } else {
            self.entry(index)?.0
        };
        let value = self.string(c)?;
        Ok((name, value))
    }

    fn string(&self, c: &mut Cursor<'_>) -> Result<String, String> {
        let huffman = c.bytes.get(c.pos).ok_or("header block cut short")? & 0x80 != 0;
        let len = c.int(7)?;
        let raw = c
            .bytes
            .get(c.pos..c.pos + len)
            .ok_or("HPACK string cut short")?;
        c.pos += len;
        let bytes = if huffman {
            self.unhuffman(raw)?
        } else {
            raw.to_vec()
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn unhuffman(&self, raw: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let (mut code, mut len) = (0u32, 0u8);
        for byte in raw {
            for i in (0..8).rev() {
                code = code << 1 | u32::from(byte >> i & 1);
                len += 1;
                if let Some(&sym) = self.huffman.get(&(len, code)) {
                    out.push(sym);
                    code = 0;
                    len = 0;
                } else if len > 30 {
                    return Err("bad Huffman code".into());
                }
            }
        }
        // Padding: fewer than 8 bits, all ones (the EOS prefix).
        if len >= 8 || code != (1 << len) - 1 {
            return Err("bad Huffman padding".into());
        }
        Ok(out)
    }

    fn insert(&mut self, field: Field) {
        let size = field.0.len() + field.1.len() + 32;
        self.evict(size);
        if size <= self.max_size {
            self.size += size;
            self.dynamic.push_front(field);
        }
    }

    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.dynamic.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

#[test]
fn integers_and_literals_round_trip() {
    for v in [0usize, 1, 126, 127, 128, 300, 16_384, 1 << 20] {
        let mut out = Vec::new();
        encode_int(&mut out, 0, 7, v);
        let mut c = Cursor {
            bytes: &out,
            pos: 0,
        };
        assert_eq!(c.int(7).unwrap(), v);
    }
    let long = "x".repeat(1000);
    let b = block(&[(":status", "431"), ("grpc-message", &long)]);
    let fields = Decoder::default().decode(&b).unwrap();
    assert_eq!(fields[0], (":status".into(), "431".into()));
    assert_eq!(fields[1].1, long);
}

#[test]
fn decodes_rfc7541_c4_huffman_requests() {
    // RFC 7541 C.4.1 and C.4.2: the dynamic table carries over.
    let first = hex("828684418cf1e3c2e5f23a6ba0ab90f4ff");
    let second = hex("828684be5886a8eb10649cbf");
    let mut d = Decoder::default();
    let f = d.decode(&first).unwrap();
    assert_eq!(f[3], (":authority".into(), "www.example.com".into()));
    let f = d.decode(&second).unwrap();
    assert_eq!(f[3], (":authority".into(), "www.example.com".into()));
    assert_eq!(f[4], ("cache-control".into(), "no-cache".into()));
}

#[cfg(test)]
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
