//! The outcome of a call: `grpc-status`, `grpc-message`, and the mapping of every failure to them.
//!
//! Every gRPC call ends with a status (gRPC over HTTP/2, "Responses"): a code from the closed
//! list of 17 in `doc/statuscodes.md`, sent as the decimal `grpc-status` header, and an
//! optional human-readable `grpc-message`. The status travels in the trailers, or, when the
//! call fails before any message was sent, in a single HEADERS frame ("Trailers-Only").
//! `grpc-status` is sent for OK too.
//!
//! `grpc-message` is UTF-8, percent-encoded: bytes outside `%x20-%x7E`, and `%` itself, become
//! `%XX`. A decoder "MUST NOT error or throw away the message"; [`percent_decode`] keeps a
//! broken escape as it is and replaces invalid UTF-8 with U+FFFD.
//!
//! This module is also the one place where other failures become a [`Status`]: framing errors,
//! protobuf decode errors, HTTP/2 stream resets (the RST_STREAM table of PROTOCOL-HTTP2.md) and
//! non-gRPC HTTP responses (`doc/http-grpc-status-mapping.md`).

use std::borrow::Cow;
use std::fmt;

use crate::wire::frame::FrameError;

/// A gRPC status code (`doc/statuscodes.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, e.g. a status from another error space.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity that a client attempted to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission.
    PermissionDenied = 7,
    /// Some resource has been exhausted (quota, memory, message size).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// An invariant expected by the system is broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// All 17 codes, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code for a numeric value; values outside 0..=16 are UNKNOWN, as statuscodes.md asks.
    pub fn from_i32(value: i32) -> Code {
        usize::try_from(value)
            .ok()
            .and_then(|i| Code::ALL.get(i).copied())
            .unwrap_or(Code::Unknown)
    }

    /// Parses a `grpc-status` header value: decimal digits, no sign, no leading zeros needed.
    /// Anything unparsable is UNKNOWN.
    pub fn from_header(value: &[u8]) -> Code {
        if value.is_empty() || value.len() > 3 || !value.iter().all(u8::is_ascii_digit) {
            return Code::Unknown;
        }
        let n = value.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
        Code::from_i32(n)
    }

    /// The `grpc-status` header value: the decimal code.
    pub fn header_value(self) -> &'static str {
        const DIGITS: [&str; 17] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16",
        ];
        DIGITS[self as usize]
    }

    /// The canonical name, as grpcio and grpc-go print it (`NOT_FOUND`).
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gRPC status: a code and a message. `Err(Status)` is how every layer reports failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: Cow<'static, str>,
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("A status with code `", stringify!($code), "`.")]
            pub fn $name(message: impl Into<Cow<'static, str>>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and `message`.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// The OK status, with no message.
    pub const fn ok() -> Status {
        Status {
            code: Code::Ok,
            message: Cow::Borrowed(""),
        }
    }

    constructors! {
        cancelled => Cancelled,
        unknown => Unknown,
        invalid_argument => InvalidArgument,
        deadline_exceeded => DeadlineExceeded,
        not_found => NotFound,
        already_exists => AlreadyExists,
        permission_denied => PermissionDenied,
        resource_exhausted => ResourceExhausted,
        failed_precondition => FailedPrecondition,
        aborted => Aborted,
        out_of_range => OutOfRange,
        unimplemented => Unimplemented,
        internal => Internal,
        unavailable => Unavailable,
        data_loss => DataLoss,
        unauthenticated => Unauthenticated,
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message (already percent-decoded when it came from the wire).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Builds the status a peer sent: `grpc-status` and optional `grpc-message` header values.
    pub fn from_headers(status: &[u8], message: Option<&[u8]>) -> Status {
        let message = message.map(percent_decode).unwrap_or_default();
        Status::new(Code::from_header(status), message)
    }

    /// The status for a non-gRPC HTTP response (`doc/http-grpc-status-mapping.md`).
    pub fn from_http_status(status: u16) -> Status {
        let code = match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        };
        Status::new(code, format!("HTTP status {status} is not a gRPC response"))
    }

    /// The status for an HTTP/2 stream reset (RST_STREAM error code, PROTOCOL-HTTP2.md "Errors").
    pub fn from_h2_reason(reason: h2::Reason) -> Status {
        let code = if reason == h2::Reason::REFUSED_STREAM {
            Code::Unavailable
        } else if reason == h2::Reason::CANCEL {
            Code::Cancelled
        } else if reason == h2::Reason::ENHANCE_YOUR_CALM {
            Code::ResourceExhausted
        } else if reason == h2::Reason::INADEQUATE_SECURITY {
            Code::PermissionDenied
        } else {
            Code::Internal
        };
        Status::new(code, format!("stream reset by peer: {reason}"))
    }

    /// The status for any h2 error: a reset maps by its code, an I/O or GOAWAY as UNAVAILABLE.
    pub fn from_h2(err: &h2::Error) -> Status {
        if err.is_io() || err.is_go_away() {
            return Status::unavailable(format!("connection failed: {err}"));
        }
        match err.reason() {
            Some(reason) if err.is_reset() => Status::from_h2_reason(reason),
            _ => Status::internal(format!("HTTP/2 error: {err}")),
        }
    }

    /// The `grpc-message` header value: the message, percent-encoded (empty for no message).
    pub fn encoded_message(&self) -> Cow<'_, str> {
        percent_encode(&self.message)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// A message the peer framed badly is a protocol violation: INTERNAL, as grpc-go and grpc-java
/// answer, except an oversized one, which exhausts a resource (RESOURCE_EXHAUSTED).
impl From<FrameError> for Status {
    fn from(e: FrameError) -> Status {
        let code = match e {
            FrameError::TooLarge { .. } => Code::ResourceExhausted,
            FrameError::InvalidFlag(_) | FrameError::Truncated { .. } => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}

/// A payload that is not the expected protobuf message: INTERNAL, as grpc-go and tonic answer.
impl From<quick_protobuf::Error> for Status {
    fn from(e: quick_protobuf::Error) -> Status {
        Status::internal(format!("failed to decode protobuf message: {e}"))
    }
}

fn is_unreserved(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) && b != b'%'
}

/// Percent-encodes a status message for `grpc-message`. Borrows when nothing needs escaping.
pub fn percent_encode(message: &str) -> Cow<'_, str> {
    if message.bytes().all(is_unreserved) {
        return Cow::Borrowed(message);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len() * 3);
    for b in message.bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

/// Decodes a `grpc-message` value. Never fails: a `%` not followed by two hex digits is kept
/// as it is, and bytes that do not form UTF-8 become U+FFFD.
pub fn percent_decode(value: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (
                value.get(i + 1).copied().and_then(hex),
                value.get(i + 2).copied().and_then(hex),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_headers() {
        for (i, code) in Code::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
            assert_eq!(Code::from_header(code.header_value().as_bytes()), *code);
            assert_eq!(Code::from_i32(i as i32), *code);
        }
        for bad in [&b""[..], b"17", b"-1", b"abc", b"1000", b" 1"] {
            assert_eq!(Code::from_header(bad), Code::Unknown, "{bad:?}");
        }
        assert_eq!(Code::from_header(b"05"), Code::NotFound);
    }

    #[test]
    fn percent_encoding_round_trips() {
        for s in [
            "",
            "plain ascii with spaces ~!",
            "100% sure",
            "user \"x\" not found\n",
            "üñíçødé ✓ 🚀",
            "\u{0}\u{1f}\u{7f}",
        ] {
            let enc = percent_encode(s);
            assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{enc}");
            assert_eq!(percent_decode(enc.as_bytes()), s);
        }
        assert!(matches!(percent_encode("ok"), Cow::Borrowed(_)));
        assert_eq!(percent_encode("a%b"), "a%25b");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn percent_decoding_never_fails() {
        assert_eq!(percent_decode(b"50%"), "50%");
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
        assert_eq!(percent_decode(b"%41%42"), "AB");
        assert_eq!(percent_decode(b"%c3%a9"), "é");
        assert_eq!(percent_decode(b"%FF"), "\u{fffd}");
    }

    #[test]
    fn http_status_mapping() {
        let code = |s| Status::from_http_status(s).code();
        assert_eq!(code(400), Code::Internal);
        assert_eq!(code(401), Code::Unauthenticated);
        assert_eq!(code(403), Code::PermissionDenied);
        assert_eq!(code(404), Code::Unimplemented);
        for s in [429, 502, 503, 504] {
            assert_eq!(code(s), Code::Unavailable);
        }
        assert_eq!(code(500), Code::Unknown);
        assert_eq!(code(302), Code::Unknown);
    }

    #[test]
    fn reset_mapping() {
        let code = |r| Status::from_h2_reason(r).code();
        assert_eq!(code(h2::Reason::REFUSED_STREAM), Code::Unavailable);
        assert_eq!(code(h2::Reason::CANCEL), Code::Cancelled);
        assert_eq!(code(h2::Reason::ENHANCE_YOUR_CALM), Code::ResourceExhausted);
        assert_eq!(
            code(h2::Reason::INADEQUATE_SECURITY),
            Code::PermissionDenied
        );
        assert_eq!(code(h2::Reason::PROTOCOL_ERROR), Code::Internal);
        assert_eq!(code(h2::Reason::NO_ERROR), Code::Internal);
    }

    #[test]
    fn frame_errors_map_to_codes() {
        let s: Status = FrameError::TooLarge { len: 9, limit: 1 }.into();
        assert_eq!(s.code(), Code::ResourceExhausted);
        let s: Status = FrameError::InvalidFlag(7).into();
        assert_eq!(s.code(), Code::Internal);
    }
}
