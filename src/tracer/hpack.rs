//! HPACK: how HTTP/2 header fields are compressed, and a decoder that shows them as sent.
//!
//! Every gRPC call carries a HEADERS frame of nearly identical fields (`:method POST`,
//! `:scheme`, `:path`, `content-type: application/grpc`, `te: trailers`, …), and every response
//! ends with trailers. Sent as text each time they would cost more than many of the messages
//! they frame. HTTP/2 compresses them with HPACK (RFC 7541), designed so that an attacker who
//! can mix their own data into a connection cannot learn secrets by watching the compressed
//! size change, which sank DEFLATE-based SPDY compression (CRIME, RFC 7541 §7.1).
//!
//! ## Two tables of (name, value) pairs (§2.3)
//!
//! A header field is sent either as a reference to an entry in an index address space, or as
//! a literal. Indexes 1 to 61 are the **static table** ([`STATIC_TABLE`], Appendix A): fixed
//! common fields such as `:method GET` (2) or `content-type` with an empty value (31). Indexes
//! from 62 up are the **dynamic table** (§2.3.2): fields the encoder chose to remember, newest
//! at 62. Its size is the sum of each entry's name length + value length + 32 octets (§4.1);
//! adding an entry evicts the oldest ones until it fits, and an entry bigger than the whole
//! table empties it (§4.4). The encoder may shrink or grow the table with a *dynamic table size
//! update* at the start of a header block (§4.2, §6.3), up to the limit the decoder advertised
//! in `SETTINGS_HEADER_TABLE_SIZE` (4096 until then, RFC 9113 §6.5.2).
//!
//! The dynamic table is state shared by one encoder and one decoder, so there is one per
//! direction of a connection: what the client sends builds the table the server decodes with,
//! and the other way round. Each header block must be decoded, in order, by the decoder of its
//! direction, even blocks nobody cares about, or every later reference points at the wrong
//! entry. That is why a decoding error is fatal to the whole connection (`COMPRESSION_ERROR`,
//! RFC 9113 §4.3).
//!
//! ## The representations (§6), told apart by their first octet
//!
//! ```text
//! 1xxxxxxx  §6.1   Indexed Header Field                index in 7-bit prefix
//! 01xxxxxx  §6.2.1 Literal with Incremental Indexing   name index in 6-bit prefix (0: literal
//!                                                      name follows), then the value; the
//!                                                      field is added to the dynamic table
//! 001xxxxx  §6.3   Dynamic Table Size Update           new maximum size in 5-bit prefix
//! 0000xxxx  §6.2.2 Literal without Indexing            name index in 4-bit prefix, then value
//! 0001xxxx  §6.2.3 Literal Never Indexed               same, and no intermediary may ever
//!                                                      index it (secrets such as cookies)
//! ```
//!
//! Integers (§5.1) fill the rest of the first octet; if that prefix is all ones, the value
//! continues in 7-bit groups, least significant first, in octets whose top bit says "more".
//! A string (§5.2) is a flag bit H plus a length with a 7-bit prefix, then that many octets: raw,
//! or with H set, Huffman-coded with the fixed code of Appendix B, where frequent characters
//! get 5 bits and rare ones up to 30. The last octet is padded with the most significant bits
//! of the end-of-string code EOS (all ones), never more than 7 bits of them.
//!
//! ## Why rawgrpc has its own decoder
//!
//! `h2` decodes HPACK internally and hands over an `http::HeaderMap`: representations, Huffman
//! coding, table indexes and field order are gone, and its decoder is private. The wire tracer
//! shows each field exactly as it was sent — how it was represented, whether it was Huffman
//! coded, what the dynamic table held — so it runs this decoder on the raw header blocks,
//! once per direction. The input is whatever a peer sent, so every length, index and bit is
//! checked: a malformed block is an [`HpackError`], never a panic, and the work and memory one
//! block can cause is bounded ([`MAX_DECODED_LIST`]).
//!
//! This is HPACK only: whether names are lowercase, pseudo-headers come first and so on is
//! HTTP/2's concern (RFC 9113 §8.2), and a tracer wants to display such mistakes, not hide them.

use std::collections::VecDeque;

/// The static table (RFC 7541 Appendix A): index 1 is element 0.
pub const STATIC_TABLE: [(&str, &str); 61] = [
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

/// Dynamic table size before any size update: the protocol default of
/// `SETTINGS_HEADER_TABLE_SIZE` (RFC 7541 §4.2, RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Octets of bookkeeping counted for each dynamic table entry on top of its name and value
/// (RFC 7541 §4.1), so that tables of many tiny entries are still bounded.
pub const ENTRY_OVERHEAD: usize = 32;

/// Most decoded header list one block may produce, counted like RFC 9113's
/// `SETTINGS_MAX_HEADER_LIST_SIZE` (name + value + 32 per field, §6.5.2).
///
/// Decoded output is not bounded by the block's length: an Indexed Header Field is one octet,
/// yet it may name a dynamic table entry of thousands of octets, so a 16 KiB block of such
/// references would expand to hundreds of megabytes. A real endpoint stops this by advertising
/// `SETTINGS_MAX_HEADER_LIST_SIZE`; a passive tracer cannot rely on either side doing so, and
/// enforces its own limit. 256 KiB is far beyond the metadata gRPC implementations accept by
/// default (8 KiB in grpc-java), so real traffic never reaches it.
pub const MAX_DECODED_LIST: usize = 256 * 1024;

/// Most continuation octets an integer may use (RFC 7541 §5.1). Four carry 28 bits, far past
/// any index, string length or table size a header block can hold; more is either an attack or
/// padding with zero groups, and §5.1 lets a decoder refuse integers beyond its limits.
const MAX_INTEGER_CONTINUATIONS: u32 = 4;

/// How one header field was represented in the block (RFC 7541 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Representation {
    /// §6.1 Indexed Header Field: the whole field from the table. `index` is the wire index
    /// (1..=61 static, 62.. dynamic).
    Indexed {
        /// Wire index of the field.
        index: usize,
    },
    /// §6.2.1 Literal with Incremental Indexing (added to the dynamic table). `name_index` is
    /// `Some(idx)` when the name came from the table, `None` for a literal name.
    LiteralIncremental {
        /// Wire index the name was taken from, if any.
        name_index: Option<usize>,
    },
    /// §6.2.2 Literal without Indexing.
    LiteralNotIndexed {
        /// Wire index the name was taken from, if any.
        name_index: Option<usize>,
    },
    /// §6.2.3 Literal Never Indexed (sensitive: intermediaries must not index it).
    LiteralNeverIndexed {
        /// Wire index the name was taken from, if any.
        name_index: Option<usize>,
    },
}

/// One decoded header field and how it travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// Field name, as sent (HPACK does not check it is lowercase or valid).
    pub name: Vec<u8>,
    /// Field value, as sent.
    pub value: Vec<u8>,
    /// The representation the encoder chose.
    pub representation: Representation,
    /// The value (or name) string literal was Huffman-coded (§5.2); for display.
    pub huffman: bool,
    /// Where the field's representation lies in the block, so a reader can see its bytes.
    pub encoded: std::ops::Range<usize>,
}

/// One decoded block: the fields plus any dynamic table size updates (§6.3) it began with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderBlock {
    /// New dynamic table maximum sizes, in the order they appeared.
    pub table_size_updates: Vec<usize>,
    /// The header fields, in wire order.
    pub fields: Vec<HeaderField>,
}

/// Why a header block cannot be decoded. For an HTTP/2 endpoint every one of these is a
/// connection error of type `COMPRESSION_ERROR` (RFC 9113 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside an integer (§5.1).
    TruncatedInteger,
    /// An integer used more continuation octets than any real value needs (§5.1).
    IntegerOverflow,
    /// A string literal's length runs past the end of the block (§5.2).
    TruncatedString {
        /// Length the string literal declared.
        declared: usize,
        /// Octets left in the block.
        remaining: usize,
    },
    /// Index 0, or an index past the end of the static and dynamic tables (§2.3.3).
    InvalidIndex(usize),
    /// A Huffman-coded string contained the EOS symbol (§5.2).
    HuffmanEos,
    /// Huffman padding longer than 7 bits, or not the most significant bits of EOS (§5.2).
    HuffmanPadding,
    /// A Huffman bit sequence matched no code. Cannot happen with Appendix B's code, which is
    /// complete (checked when this module is compiled); kept so that it would be an error,
    /// not a panic.
    HuffmanInvalidCode,
    /// A dynamic table size update above the limit the decoder advertised (§4.2, §6.3).
    TableSizeUpdateTooLarge {
        /// Size the update asked for.
        requested: usize,
        /// Largest size allowed.
        max: usize,
    },
    /// A dynamic table size update after the first header field of a block (§4.2).
    TableSizeUpdateNotAtStart,
    /// The decoded header list exceeded [`MAX_DECODED_LIST`]. The block was still decoded to
    /// its end, so the dynamic table stays in step with the encoder.
    HeaderListTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// An earlier block of this direction failed to decode, so the dynamic table no longer
    /// matches the encoder's and nothing later can be trusted (§2.3.2).
    Desynchronized,
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::TruncatedInteger => f.write_str("HPACK block ends inside an integer"),
            HpackError::IntegerOverflow => f.write_str("HPACK integer is too large"),
            HpackError::TruncatedString {
                declared,
                remaining,
            } => write!(
                f,
                "HPACK string literal of {declared} octets with only {remaining} left in block"
            ),
            HpackError::InvalidIndex(index) => write!(f, "HPACK index {index} is not in the table"),
            HpackError::HuffmanEos => f.write_str("Huffman-coded string contains EOS"),
            HpackError::HuffmanPadding => {
                f.write_str("Huffman padding is longer than 7 bits or not all ones")
            }
            HpackError::HuffmanInvalidCode => f.write_str("invalid Huffman code"),
            HpackError::TableSizeUpdateTooLarge { requested, max } => write!(
                f,
                "dynamic table size update to {requested} exceeds the limit of {max}"
            ),
            HpackError::TableSizeUpdateNotAtStart => {
                f.write_str("dynamic table size update after the first header field")
            }
            HpackError::HeaderListTooLarge { limit } => {
                write!(f, "decoded header list exceeds {limit} octets")
            }
            HpackError::Desynchronized => f.write_str(
                "an earlier header block failed to decode; the dynamic table is out of step",
            ),
        }
    }
}

impl std::error::Error for HpackError {}

/// One dynamic table entry.
#[derive(Debug)]
struct Entry {
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Entry {
    fn size(&self) -> usize {
        entry_size(&self.name, &self.value)
    }
}

/// Size of a field as the table and the header list limit count it (§4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + ENTRY_OVERHEAD
}

/// Decoder state for one direction of one connection (HPACK contexts are per direction).
#[derive(Debug)]
pub struct HpackDecoder {
    /// Newest entry first, so position `i` is wire index `62 + i`.
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes.
    size: usize,
    /// Current maximum size, as set by the last size update.
    capacity: usize,
    /// Highest maximum a size update may set.
    max_table_size: usize,
    /// A block failed to decode; the table can no longer be trusted.
    desynchronized: bool,
}

impl HpackDecoder {
    /// `max_table_size`: the upper bound a table size update may set (SETTINGS_HEADER_TABLE_SIZE
    /// the decoder side advertised; the tracer passes a cap such as 64 KiB). The table starts
    /// at [`DEFAULT_TABLE_SIZE`] (§4.2 / RFC 9113 §6.5.2 default): the encoder uses that size
    /// until it signals another.
    pub fn new(max_table_size: usize) -> Self {
        HpackDecoder {
            entries: VecDeque::new(),
            size: 0,
            capacity: DEFAULT_TABLE_SIZE,
            max_table_size,
            desynchronized: false,
        }
    }

    /// Changes the bound for later size updates, as when the decoder side's SETTINGS frame
    /// changes `SETTINGS_HEADER_TABLE_SIZE`. The table itself keeps its size until the encoder
    /// sends a size update (§4.2).
    pub fn set_max_table_size(&mut self, max_table_size: usize) {
        self.max_table_size = max_table_size;
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION payloads already joined),
    /// updating the dynamic table.
    ///
    /// After any error other than [`HpackError::HeaderListTooLarge`] the table may be half
    /// updated, so this decoder answers [`HpackError::Desynchronized`] from then on.
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderBlock, HpackError> {
        if self.desynchronized {
            return Err(HpackError::Desynchronized);
        }
        let result = self.decode_block(block);
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, HpackError::HeaderListTooLarge { .. }))
        {
            self.desynchronized = true;
        }
        result
    }

    /// Current dynamic table entries, newest first (index 62 first), for display/tests.
    pub fn dynamic_table(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (e.name.as_slice(), e.value.as_slice()))
    }

    /// Current dynamic table size in octets per §4.1 (name + value + 32 each).
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Current maximum dynamic table size, as set by the last size update.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn decode_block(&mut self, block: &[u8]) -> Result<HeaderBlock, HpackError> {
        let mut input = Reader { buf: block, pos: 0 };
        let mut out = HeaderBlock::default();
        // Past the limit fields are still decoded, since literals with incremental indexing
        // must reach the table, but no longer kept.
        let mut list_size = 0usize;
        let mut over_limit = false;
        let mut seen_field = false;
        while let Some(first) = input.peek() {
            seen_field |= !(0x20..=0x3f).contains(&first);
            let start = input.pos;
            let mut field = match first {
                0x80..=0xff => {
                    let index = input.integer(7)?;
                    let (name, value) = self.lookup(index)?;
                    // Checked before copying: this one-octet representation is the one that can
                    // expand without bound.
                    over_limit |=
                        list_size.saturating_add(entry_size(name, value)) > MAX_DECODED_LIST;
                    if over_limit {
                        continue;
                    }
                    HeaderField {
                        name: name.to_vec(),
                        value: value.to_vec(),
                        representation: Representation::Indexed { index },
                        huffman: false,
                        encoded: 0..0,
                    }
                }
                0x40..=0x7f => {
                    let literal = self.literal(&mut input, 6)?;
                    self.insert(&literal.name, &literal.value);
                    literal
                        .into_field(|name_index| Representation::LiteralIncremental { name_index })
                }
                0x20..=0x3f => {
                    if seen_field {
                        return Err(HpackError::TableSizeUpdateNotAtStart);
                    }
                    let requested = input.integer(5)?;
                    if requested > self.max_table_size {
                        return Err(HpackError::TableSizeUpdateTooLarge {
                            requested,
                            max: self.max_table_size,
                        });
                    }
                    self.capacity = requested;
                    self.evict_to(requested);
                    out.table_size_updates.push(requested);
                    continue;
                }
                0x10..=0x1f => self
                    .literal(&mut input, 4)?
                    .into_field(|name_index| Representation::LiteralNeverIndexed { name_index }),
                0x00..=0x0f => self
                    .literal(&mut input, 4)?
                    .into_field(|name_index| Representation::LiteralNotIndexed { name_index }),
            };
            field.encoded = start..input.pos;
            list_size = list_size.saturating_add(entry_size(&field.name, &field.value));
            over_limit |= list_size > MAX_DECODED_LIST;
            if !over_limit {
                out.fields.push(field);
            }
        }
        if over_limit {
            return Err(HpackError::HeaderListTooLarge {
                limit: MAX_DECODED_LIST,
            });
        }
        Ok(out)
    }

    /// Reads the rest of a literal representation (§6.2): the name index in the first octet's
    /// low `prefix_bits` bits, the name string if that index is 0, then the value string.
    fn literal(&self, input: &mut Reader<'_>, prefix_bits: u32) -> Result<Literal, HpackError> {
        let index = input.integer(prefix_bits)?;
        // The name is copied out of the table now: inserting this very field may evict the
        // entry it came from (§4.4).
        let (name_index, name, name_huffman) = if index == 0 {
            let (name, huffman) = input.string()?;
            (None, name, huffman)
        } else {
            let (name, _) = self.lookup(index)?;
            (Some(index), name.to_vec(), false)
        };
        let (value, value_huffman) = input.string()?;
        Ok(Literal {
            name_index,
            name,
            value,
            huffman: name_huffman || value_huffman,
        })
    }

    /// The field at a wire index: static table first, then the dynamic table (§2.3.3).
    fn lookup(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        let found = match index.checked_sub(1) {
            None => None,
            Some(i) if i < STATIC_TABLE.len() => STATIC_TABLE
                .get(i)
                .map(|&(name, value)| (name.as_bytes(), value.as_bytes())),
            Some(i) => self
                .entries
                .get(i - STATIC_TABLE.len())
                .map(|e| (e.name.as_slice(), e.value.as_slice())),
        };
        found.ok_or(HpackError::InvalidIndex(index))
    }

    /// Adds a field as the newest entry, evicting the oldest ones to make room (§4.4).
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.capacity {
            // Not an error: the table is simply emptied and the entry not added (§4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.capacity - size);
        self.entries.push_front(Entry {
            name: name.to_vec(),
            value: value.to_vec(),
        });
        self.size += size;
    }

    /// Evicts the oldest entries until the table's size is at most `limit` (§4.3, §4.4).
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(evicted) => self.size -= evicted.size(),
                None => break,
            }
        }
    }
}

/// A literal representation as read, before it is told which of the three it was.
struct Literal {
    name_index: Option<usize>,
    name: Vec<u8>,
    value: Vec<u8>,
    huffman: bool,
}

impl Literal {
    fn into_field(self, representation: fn(Option<usize>) -> Representation) -> HeaderField {
        HeaderField {
            representation: representation(self.name_index),
            name: self.name,
            value: self.value,
            huffman: self.huffman,
            encoded: 0..0,
        }
    }
}

/// A position in a header block.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Reads an integer whose first octet keeps its low `prefix_bits` bits for it (§5.1); the
    /// bits above belong to the representation and are ignored here.
    fn integer(&mut self, prefix_bits: u32) -> Result<usize, HpackError> {
        let prefix_max = (1usize << prefix_bits) - 1;
        let prefix = usize::from(self.byte().ok_or(HpackError::TruncatedInteger)?) & prefix_max;
        if prefix < prefix_max {
            return Ok(prefix);
        }
        // A full prefix means "the value is at least this much, the rest follows".
        let mut value = prefix;
        for group in 0..MAX_INTEGER_CONTINUATIONS {
            let b = self.byte().ok_or(HpackError::TruncatedInteger)?;
            value += usize::from(b & 0x7f) << (7 * group);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(HpackError::IntegerOverflow)
    }

    /// Reads a string literal (§5.2): returns its octets and whether it was Huffman-coded.
    fn string(&mut self) -> Result<(Vec<u8>, bool), HpackError> {
        let huffman = self.peek().is_some_and(|b| b & 0x80 != 0);
        let declared = self.integer(7)?;
        let remaining = self.buf.len() - self.pos;
        if declared > remaining {
            return Err(HpackError::TruncatedString {
                declared,
                remaining,
            });
        }
        let raw = &self.buf[self.pos..self.pos + declared];
        self.pos += declared;
        if huffman {
            Ok((huffman_decode(raw)?, true))
        } else {
            Ok((raw.to_vec(), false))
        }
    }
}

/// The symbol Huffman code of RFC 7541 Appendix B: `(code, length in bits)` for octets 0 to
/// 255, then EOS (256). The code's bits are the low `length` bits of `code`.
const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),     // ' '
    (0x3f8, 10),   // '!'
    (0x3f9, 10),   // '"'
    (0xffa, 12),   // '#'
    (0x1ff9, 13),  // '$'
    (0x15, 6),     // '%'
    (0xf8, 8),     // '&'
    (0x7fa, 11),   // '''
    (0x3fa, 10),   // '('
    (0x3fb, 10),   // ')'
    (0xf9, 8),     // '*'
    (0x7fb, 11),   // '+'
    (0xfa, 8),     // ','
    (0x16, 6),     // '-'
    (0x17, 6),     // '.'
    (0x18, 6),     // '/'
    (0x0, 5),      // '0'
    (0x1, 5),      // '1'
    (0x2, 5),      // '2'
    (0x19, 6),     // '3'
    (0x1a, 6),     // '4'
    (0x1b, 6),     // '5'
    (0x1c, 6),     // '6'
    (0x1d, 6),     // '7'
    (0x1e, 6),     // '8'
    (0x1f, 6),     // '9'
    (0x5c, 7),     // ':'
    (0xfb, 8),     // ';'
    (0x7ffc, 15),  // '<'
    (0x20, 6),     // '='
    (0xffb, 12),   // '>'
    (0x3fc, 10),   // '?'
    (0x1ffa, 13),  // '@'
    (0x21, 6),     // 'A'
    (0x5d, 7),     // 'B'
    (0x5e, 7),     // 'C'
    (0x5f, 7),     // 'D'
    (0x60, 7),     // 'E'
    (0x61, 7),     // 'F'
    (0x62, 7),     // 'G'
    (0x63, 7),     // 'H'
    (0x64, 7),     // 'I'
    (0x65, 7),     // 'J'
    (0x66, 7),     // 'K'
    (0x67, 7),     // 'L'
    (0x68, 7),     // 'M'
    (0x69, 7),     // 'N'
    (0x6a, 7),     // 'O'
    (0x6b, 7),     // 'P'
    (0x6c, 7),     // 'Q'
    (0x6d, 7),     // 'R'
    (0x6e, 7),     // 'S'
    (0x6f, 7),     // 'T'
    (0x70, 7),     // 'U'
    (0x71, 7),     // 'V'
    (0x72, 7),     // 'W'
    (0xfc, 8),     // 'X'
    (0x73, 7),     // 'Y'
    (0xfd, 8),     // 'Z'
    (0x1ffb, 13),  // '['
    (0x7fff0, 19), // '\'
    (0x1ffc, 13),  // ']'
    (0x3ffc, 14),  // '^'
    (0x22, 6),     // '_'
    (0x7ffd, 15),  // '`'
    (0x3, 5),      // 'a'
    (0x23, 6),     // 'b'
    (0x4, 5),      // 'c'
    (0x24, 6),     // 'd'
    (0x5, 5),      // 'e'
    (0x25, 6),     // 'f'
    (0x26, 6),     // 'g'
    (0x27, 6),     // 'h'
    (0x6, 5),      // 'i'
    (0x74, 7),     // 'j'
    (0x75, 7),     // 'k'
    (0x28, 6),     // 'l'
    (0x29, 6),     // 'm'
    (0x2a, 6),     // 'n'
    (0x7, 5),      // 'o'
    (0x2b, 6),     // 'p'
    (0x76, 7),     // 'q'
    (0x2c, 6),     // 'r'
    (0x8, 5),      // 's'
    (0x9, 5),      // 't'
    (0x2d, 6),     // 'u'
    (0x77, 7),     // 'v'
    (0x78, 7),     // 'w'
    (0x79, 7),     // 'x'
    (0x7a, 7),     // 'y'
    (0x7b, 7),     // 'z'
    (0x7ffe, 15),  // '{'
    (0x7fc, 11),   // '|'
    (0x3ffd, 14),  // '}'
    (0x1ffd, 13),  // '~'
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30), // EOS
];

/// The EOS symbol's position in [`HUFFMAN_CODES`].
const EOS: u16 = 256;

/// Longest code in Appendix B, in bits.
const MAX_CODE_BITS: usize = 30;

/// Appendix B rearranged for decoding.
///
/// The code is *canonical*: list the symbols by (code length, symbol value) and count up
/// from 0, appending a zero bit each time the length grows, and out come exactly the codes of
/// Appendix B. So the codes of one length are a contiguous run of numbers: a `len`-bit
/// sequence `c` is a code if `c - first[len] < count[len]`, and then it is symbol number
/// `c - first[len]` of that run. Decoding is one comparison per bit and no tree.
struct HuffmanDecodeTable {
    /// Symbols in (code length, symbol value) order.
    symbols: [u16; 257],
    /// Indexed by code length: the first code of that length,
    first: [u32; MAX_CODE_BITS + 1],
    /// how many codes have that length,
    count: [u32; MAX_CODE_BITS + 1],
    /// and where their run starts in `symbols`.
    start: [usize; MAX_CODE_BITS + 1],
}

/// Builds [`HUFFMAN_DECODE`] at compile time, checking as it goes that [`HUFFMAN_CODES`] is
/// the canonical code described there and that it is complete (every bit sequence of 30 bits
/// starts with a code): a typo in the table fails the build.
const fn build_huffman_decode_table() -> HuffmanDecodeTable {
    let mut table = HuffmanDecodeTable {
        symbols: [0; 257],
        first: [0; MAX_CODE_BITS + 1],
        count: [0; MAX_CODE_BITS + 1],
        start: [0; MAX_CODE_BITS + 1],
    };
    let mut next_code: u32 = 0;
    let mut sorted = 0;
    let mut len = 1;
    while len <= MAX_CODE_BITS {
        next_code <<= 1;
        table.first[len] = next_code;
        table.start[len] = sorted;
        let mut symbol = 0;
        while symbol < HUFFMAN_CODES.len() {
            let (code, bits) = HUFFMAN_CODES[symbol];
            if bits as usize == len {
                assert!(code == next_code, "Appendix B table is not canonical");
                table.symbols[sorted] = symbol as u16;
                table.count[len] += 1;
                sorted += 1;
                next_code += 1;
            }
            symbol += 1;
        }
        len += 1;
    }
    assert!(sorted == HUFFMAN_CODES.len(), "code length out of range");
    assert!(
        next_code == 1 << MAX_CODE_BITS,
        "Appendix B code is not complete"
    );
    table
}

static HUFFMAN_DECODE: HuffmanDecodeTable = build_huffman_decode_table();

/// Decodes a Huffman-coded string literal (§5.2), one bit at a time.
fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, HpackError> {
    let table = &HUFFMAN_DECODE;
    // The shortest code is 5 bits, so this is the most the output can be.
    let mut out = Vec::with_capacity(src.len() * 8 / 5);
    // The bits read since the last complete symbol.
    let mut code: u32 = 0;
    let mut len = 0;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let offset = code.wrapping_sub(table.first[len]);
            if offset < table.count[len] {
                let symbol = table.symbols[table.start[len] + offset as usize];
                // EOS exists only to pad; inside a string it is an error (§5.2).
                if symbol == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                // Every symbol but EOS is the octet of the same value.
                out.push(symbol as u8);
                code = 0;
                len = 0;
            } else if len == MAX_CODE_BITS {
                return Err(HpackError::HuffmanInvalidCode);
            }
        }
    }
    // What is left must be padding: fewer than 8 bits, all ones, i.e. a prefix of EOS (§5.2).
    if len > 7 || code != (1 << len) - 1 {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses hex as printed in RFC 7541 Appendix C (whitespace ignored).
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn huffman_encode(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u64 = 0;
        let mut bits = 0;
        for &b in src {
            let (code, len) = HUFFMAN_CODES[usize::from(b)];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            let pad = 8 - bits;
            out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
        }
        out
    }

    fn int(bytes: &[u8], prefix_bits: u32) -> Result<(usize, usize), HpackError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let v = r.integer(prefix_bits)?;
        Ok((v, r.pos))
    }

    /// Checks a block's fields as (name, value) and the table afterwards, newest first.
    fn check(
        d: &mut HpackDecoder,
        block: &str,
        fields: &[(&str, &str)],
        table: &[(&str, &str)],
        size: usize,
    ) -> HeaderBlock {
        let decoded = d.decode(&hex(block)).unwrap();
        let got: Vec<(&[u8], &[u8])> = decoded
            .fields
            .iter()
            .map(|f| (f.name.as_slice(), f.value.as_slice()))
            .collect();
        let want: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(got, want);
        let want_table: Vec<(&[u8], &[u8])> = table
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(d.dynamic_table().collect::<Vec<_>>(), want_table);
        assert_eq!(d.table_size(), size);
        decoded
    }

    fn reps(block: &HeaderBlock) -> Vec<Representation> {
        block
            .fields
            .iter()
            .map(|f| f.representation.clone())
            .collect()
    }

    #[test]
    fn c1_integers() {
        // C.1.1: 10 in a 5-bit prefix; the 3 high bits belong to the representation.
        assert_eq!(int(&[0b1110_1010], 5), Ok((10, 1)));
        // C.1.2: 1337 in a 5-bit prefix.
        assert_eq!(int(&hex("1f 9a 0a"), 5), Ok((1337, 3)));
        // C.1.3: 42 starting at an octet boundary.
        assert_eq!(int(&[42], 8), Ok((42, 1)));
    }

    #[test]
    fn integer_edges() {
        // A prefix of all ones is only "at least 31": 31 itself needs a zero continuation.
        assert_eq!(int(&[0x1f, 0x00], 5), Ok((31, 2)));
        assert_eq!(int(&[0x1e], 5), Ok((30, 1)));
        assert_eq!(int(&[0x1f], 5), Err(HpackError::TruncatedInteger));
        assert_eq!(int(&[0x1f, 0x80], 5), Err(HpackError::TruncatedInteger));
        assert_eq!(int(&[], 5), Err(HpackError::TruncatedInteger));
        // Four continuation octets is the most accepted.
        assert_eq!(
            int(&[0x1f, 0xff, 0xff, 0xff, 0x7f], 5),
            Ok((31 + (1 << 28) - 1, 5))
        );
        assert_eq!(
            int(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(HpackError::IntegerOverflow)
        );
        assert_eq!(
            int(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 7),
            Err(HpackError::IntegerOverflow)
        );
    }

    #[test]
    fn c2_1_literal_with_indexing() {
        let mut d = HpackDecoder::new(4096);
        let b = check(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        );
        assert_eq!(
            reps(&b),
            [Representation::LiteralIncremental { name_index: None }]
        );
        assert!(!b.fields[0].huffman);
    }

    #[test]
    fn c2_2_literal_without_indexing() {
        let mut d = HpackDecoder::new(4096);
        let b = check(
            &mut d,
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        );
        assert_eq!(
            reps(&b),
            [Representation::LiteralNotIndexed {
                name_index: Some(4)
            }]
        );
    }

    #[test]
    fn c2_3_literal_never_indexed() {
        let mut d = HpackDecoder::new(4096);
        let b = check(
            &mut d,
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        );
        assert_eq!(
            reps(&b),
            [Representation::LiteralNeverIndexed { name_index: None }]
        );
    }

    #[test]
    fn c2_4_indexed() {
        let mut d = HpackDecoder::new(4096);
        let b = check(&mut d, "82", &[(":method", "GET")], &[], 0);
        assert_eq!(reps(&b), [Representation::Indexed { index: 2 }]);
    }

    /// C.3 and C.4 encode the same three requests, without and with Huffman coding.
    fn requests(blocks: [&str; 3], huffman: bool) {
        let mut d = HpackDecoder::new(4096);
        let b = check(
            &mut d,
            blocks[0],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ],
            &[(":authority", "www.example.com")],
            57,
        );
        assert_eq!(
            reps(&b),
            [
                Representation::Indexed { index: 2 },
                Representation::Indexed { index: 6 },
                Representation::Indexed { index: 4 },
                Representation::LiteralIncremental {
                    name_index: Some(1)
                },
            ]
        );
        assert_eq!(b.fields[3].huffman, huffman);
        let b = check(
            &mut d,
            blocks[1],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ],
            &[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ],
            110,
        );
        assert_eq!(
            b.fields[3].representation,
            Representation::Indexed { index: 62 }
        );
        let b = check(
            &mut d,
            blocks[2],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ],
            &[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ],
            164,
        );
        assert_eq!(
            b.fields[3].representation,
            Representation::Indexed { index: 63 }
        );
        assert_eq!(b.fields[4].huffman, huffman);
    }

    #[test]
    fn c3_requests_without_huffman() {
        requests(
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            false,
        );
    }

    #[test]
    fn c4_requests_with_huffman() {
        requests(
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
            true,
        );
    }

    /// C.5 and C.6 encode the same three responses with a 256-octet table, so entries are
    /// evicted along the way.
    fn responses(blocks: [&str; 3]) {
        let mut d = HpackDecoder::new(256);
        // The examples assume 256 was in effect from the start, with no size update sent.
        d.capacity = 256;
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let location = "https://www.example.com";
        check(
            &mut d,
            blocks[0],
            &[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", location),
            ],
            &[
                ("location", location),
                ("date", date1),
                ("cache-control", "private"),
                (":status", "302"),
            ],
            222,
        );
        // `:status 307` needs 42 octets: `:status 302`, the oldest, goes.
        check(
            &mut d,
            blocks[1],
            &[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", location),
            ],
            &[
                (":status", "307"),
                ("location", location),
                ("date", date1),
                ("cache-control", "private"),
            ],
            222,
        );
        let date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        check(
            &mut d,
            blocks[2],
            &[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", date2),
                ("location", location),
                ("content-encoding", "gzip"),
                ("set-cookie", cookie),
            ],
            &[
                ("set-cookie", cookie),
                ("content-encoding", "gzip"),
                ("date", date2),
            ],
            215,
        );
    }

    #[test]
    fn c5_responses_without_huffman() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn static_table_landmarks() {
        assert_eq!(STATIC_TABLE[0], (":authority", ""));
        assert_eq!(STATIC_TABLE[15], ("accept-encoding", "gzip, deflate"));
        assert_eq!(STATIC_TABLE[30], ("content-type", ""));
        assert_eq!(STATIC_TABLE[60], ("www-authenticate", ""));
    }

    #[test]
    fn huffman_round_trips_every_octet() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)), Ok(all.clone()));
        for b in all {
            assert_eq!(huffman_decode(&huffman_encode(&[b])), Ok(vec![b]));
        }
        assert_eq!(huffman_decode(&[]), Ok(vec![]));
    }

    #[test]
    fn huffman_rejects_eos_and_bad_padding() {
        // EOS is 30 ones: four octets of ones hold it whole, followed by 2 bits of padding.
        assert_eq!(huffman_decode(&[0xff; 4]), Err(HpackError::HuffmanEos));
        // 'a' (00011) then 11 bits of ones: padding longer than 7 bits.
        assert_eq!(
            huffman_decode(&[0b0001_1111, 0xff]),
            Err(HpackError::HuffmanPadding)
        );
        // A whole octet of padding alone.
        assert_eq!(huffman_decode(&[0xff]), Err(HpackError::HuffmanPadding));
        // 'a' then padding 110: not all ones.
        assert_eq!(
            huffman_decode(&[0b0001_1110]),
            Err(HpackError::HuffmanPadding)
        );
        // '0' (00000) then 000: a zero padding would decode as the start of another symbol.
        assert_eq!(huffman_decode(&[0x00]), Err(HpackError::HuffmanPadding));
        // Through the block decoder: literal, new name "a", Huffman value of a lone EOS.
        let mut d = HpackDecoder::new(4096);
        assert_eq!(
            d.decode(&[0x00, 0x01, b'a', 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
    }

    #[test]
    fn truncated_input() {
        let full = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        for len in 1..full.len() {
            let err = HpackDecoder::new(4096).decode(&full[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    HpackError::TruncatedInteger | HpackError::TruncatedString { .. }
                ),
                "{len}: {err}"
            );
        }
        assert_eq!(
            HpackDecoder::new(4096).decode(&[0x40, 0x0a, b'c']),
            Err(HpackError::TruncatedString {
                declared: 10,
                remaining: 1
            })
        );
        assert_eq!(
            HpackDecoder::new(4096).decode(&[0xff]),
            Err(HpackError::TruncatedInteger)
        );
        assert_eq!(
            HpackDecoder::new(4096).decode(&[]),
            Ok(HeaderBlock::default())
        );
    }

    #[test]
    fn invalid_indexes() {
        let mut d = HpackDecoder::new(4096);
        assert_eq!(d.decode(&[0x80]), Err(HpackError::InvalidIndex(0)));
        // 62 with an empty dynamic table, as a field and as a name.
        assert_eq!(
            HpackDecoder::new(4096).decode(&[0xbe]),
            Err(HpackError::InvalidIndex(62))
        );
        assert_eq!(
            HpackDecoder::new(4096).decode(&[0x0f, 0x2f, 0x00]),
            Err(HpackError::InvalidIndex(62))
        );
        let mut d = HpackDecoder::new(4096);
        d.decode(&hex("4001 6101 62")).unwrap();
        assert_eq!(d.decode(&[0xbe]).unwrap().fields[0].name, b"a");
        assert_eq!(d.decode(&[0xbf]), Err(HpackError::InvalidIndex(63)));
    }

    #[test]
    fn table_size_updates() {
        let mut d = HpackDecoder::new(8192);
        d.decode(&hex("4001 6101 62 4001 6301 64")).unwrap();
        assert_eq!(d.table_size(), 68);
        // Two updates, as after a reduction followed by an increase (§4.2): 0 empties the table.
        let b = d.decode(&hex("20 3f81 1f 82")).unwrap();
        assert_eq!(b.table_size_updates, [0, 4000]);
        assert_eq!(d.table_size(), 0);
        assert_eq!(d.capacity(), 4000);
        assert_eq!(b.fields.len(), 1);
        // Over the limit.
        let mut d = HpackDecoder::new(4096);
        assert_eq!(
            d.decode(&hex("3fe2 1f")),
            Err(HpackError::TableSizeUpdateTooLarge {
                requested: 4097,
                max: 4096
            })
        );
        // After a field.
        let mut d = HpackDecoder::new(4096);
        assert_eq!(
            d.decode(&hex("82 20")),
            Err(HpackError::TableSizeUpdateNotAtStart)
        );
        // Shrinking evicts the oldest entries only.
        let mut d = HpackDecoder::new(4096);
        d.decode(&hex("4001 6101 62 4001 6301 64")).unwrap();
        d.decode(&hex("3f 03")).unwrap();
        assert_eq!(d.capacity(), 34);
        let want: [(&[u8], &[u8]); 1] = [(b"c", b"d")];
        assert_eq!(d.dynamic_table().collect::<Vec<_>>(), want);
    }

    #[test]
    fn oversized_entry_empties_table() {
        let mut d = HpackDecoder::new(4096);
        d.decode(&hex("3f 03")).unwrap(); // capacity 34
        d.decode(&hex("4001 6101 62")).unwrap();
        assert_eq!(d.table_size(), 34);
        // 35 octets: larger than the table, which is emptied; the field is still delivered.
        let b = d.decode(&hex("4001 6102 6263")).unwrap();
        assert_eq!(b.fields[0].value, b"bc");
        assert_eq!(d.table_size(), 0);
        assert_eq!(d.dynamic_table().count(), 0);
    }

    #[test]
    fn name_from_entry_its_own_insert_evicts() {
        let mut d = HpackDecoder::new(4096);
        d.decode(&hex("3f 03")).unwrap(); // capacity 34
        d.decode(&hex("4001 6101 62")).unwrap();
        // Literal with indexing, name from index 62 ("a"), which the insert evicts (§4.4).
        let b = d.decode(&hex("7e 0163")).unwrap();
        assert_eq!(b.fields[0].name, b"a");
        let want: [(&[u8], &[u8]); 1] = [(b"a", b"c")];
        assert_eq!(d.dynamic_table().collect::<Vec<_>>(), want);
    }

    #[test]
    fn decoded_list_is_bounded_and_table_stays_in_step() {
        let mut d = HpackDecoder::new(4096);
        // One entry of 1 + 4000 + 32 octets, then blocks of one-octet references to it.
        let mut first = hex("4001 61 7f a1 1e");
        first.extend(vec![b'x'; 4000]);
        d.decode(&first).unwrap();
        let fit = MAX_DECODED_LIST / 4033;
        assert_eq!(d.decode(&vec![0xbe; fit]).unwrap().fields.len(), fit);
        let mut block = vec![0xbe; fit + 1];
        // A new entry after the limit is passed must still reach the table.
        block.extend(hex("4001 7a01 7a"));
        assert_eq!(
            d.decode(&block),
            Err(HpackError::HeaderListTooLarge {
                limit: MAX_DECODED_LIST
            })
        );
        assert_eq!(d.dynamic_table().next(), Some((&b"z"[..], &b"z"[..])));
        assert_eq!(d.table_size(), 4033 + 34);
        let b = d.decode(&[0xbe, 0xbf]).unwrap();
        assert_eq!(
            (b.fields[0].name.as_slice(), b.fields[1].name.as_slice()),
            (&b"z"[..], &b"a"[..])
        );
    }

    #[test]
    fn errors_desynchronize_the_decoder() {
        let mut d = HpackDecoder::new(4096);
        assert_eq!(d.decode(&[0x80]), Err(HpackError::InvalidIndex(0)));
        assert_eq!(d.decode(&[0x82]), Err(HpackError::Desynchronized));
    }

    #[test]
    fn representations_and_huffman_flag() {
        let mut d = HpackDecoder::new(4096);
        // Never indexed, name index 32 (cookie), Huffman value "a"; then not indexed with a
        // Huffman name "a" and a raw value.
        let a = huffman_encode(b"a");
        let mut block = vec![0x1f, 0x11, 0x80 | a.len() as u8];
        block.extend(&a);
        block.extend([0x00, 0x80 | a.len() as u8]);
        block.extend(&a);
        block.extend([0x01, b'b']);
        let b = d.decode(&block).unwrap();
        assert_eq!(
            b.fields[0],
            HeaderField {
                name: b"cookie".to_vec(),
                value: b"a".to_vec(),
                representation: Representation::LiteralNeverIndexed {
                    name_index: Some(32)
                },
                huffman: true,
                encoded: 0..4,
            }
        );
        assert_eq!(b.fields[1].name, b"a");
        assert!(b.fields[1].huffman);
        assert_eq!(
            b.fields[1].representation,
            Representation::LiteralNotIndexed { name_index: None }
        );
    }

    #[test]
    fn large_huffman_block_decodes() {
        let value: Vec<u8> = (0..16 * 1024u32)
            .map(|i| b"grpc-status"[i as usize % 11])
            .collect();
        let coded = huffman_encode(&value);
        let mut block = vec![0x00, 0x01, b'v', 0xff];
        let mut n = coded.len() - 127;
        while n >= 128 {
            block.push(0x80 | (n & 0x7f) as u8);
            n >>= 7;
        }
        block.push(n as u8);
        block.extend(&coded);
        let b = HpackDecoder::new(4096).decode(&block).unwrap();
        assert_eq!(b.fields[0].value, value);
    }

    #[test]
    fn garbage_never_panics() {
        // xorshift64: deterministic, so any failure reproduces.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for _ in 0..10_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut d = HpackDecoder::new(next() as usize % 8192);
            // Split in two blocks, so the second one meets a table the first one built.
            let (a, b) = bytes.split_at(len / 2);
            for block in [a, b] {
                if d.decode(block).is_ok() {
                    decoded += 1;
                }
                assert!(d.table_size() <= d.capacity());
                let counted: usize = d.dynamic_table().map(|(n, v)| entry_size(n, v)).sum();
                assert_eq!(counted, d.table_size());
            }
        }
        assert!(decoded > 0);
    }
}
