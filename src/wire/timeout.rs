//! `grpc-timeout`: how a deadline crosses the wire.
//!
//! A client does not send its deadline as a clock time (clocks differ between machines) but
//! as the time left, in the `grpc-timeout` request header (gRPC over HTTP/2, "Timeout"):
//!
//! ```text
//! Timeout      → "grpc-timeout" TimeoutValue TimeoutUnit
//! TimeoutValue → positive integer as ASCII string of at most 8 digits
//! TimeoutUnit  → "H" / "M" / "S" / "m" / "u" / "n"    hours … nanoseconds
//! ```
//!
//! The server turns it back into a deadline on arrival. A value that breaks the grammar is a
//! [`TimeoutError`], never a panic: the caller maps it to a status.

use std::time::Duration;

/// Most digits a TimeoutValue may have.
pub const MAX_DIGITS: usize = 8;

/// Why a `grpc-timeout` value is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutError {
    /// No digits, more than eight digits, or a non-digit where digits belong.
    InvalidValue,
    /// The last character is not one of `H M S m u n`.
    InvalidUnit,
}

impl std::fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutError::InvalidValue => "grpc-timeout value must be 1 to 8 ASCII digits",
            TimeoutError::InvalidUnit => "grpc-timeout unit must be one of H M S m u n",
        })
    }
}

impl std::error::Error for TimeoutError {}

/// Parses a `grpc-timeout` header value.
pub fn parse(value: &[u8]) -> Result<Duration, TimeoutError> {
    let (&unit, digits) = value.split_last().ok_or(TimeoutError::InvalidValue)?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return Err(TimeoutError::InvalidValue);
    }
    // At most 8 digits: fits a u64 with room to spare, so no overflow is possible.
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(TimeoutError::InvalidUnit),
    })
}

/// Formats a timeout in the finest unit whose value fits in eight digits, rounding up so the
/// server never sees less time than the client has.
pub fn format(timeout: Duration) -> String {
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    const MAX_VALUE: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    for (scale, unit) in UNITS {
        let value = nanos.div_ceil(scale);
        if value <= MAX_VALUE {
            return format!("{value}{unit}");
        }
    }
    format!("{MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse(b"1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(b"2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse(b"3S"), Ok(Duration::from_secs(3)));
        assert_eq!(parse(b"4m"), Ok(Duration::from_millis(4)));
        assert_eq!(parse(b"5u"), Ok(Duration::from_micros(5)));
        assert_eq!(parse(b"6n"), Ok(Duration::from_nanos(6)));
        assert_eq!(
            parse(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse(b"0m"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"S",
            b"123456789S",
            b"1x",
            b"-1S",
            b"1.5S",
            b" 1S",
            b"1s",
            b"\xff\xffS",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse(b"10k"), Err(TimeoutError::InvalidUnit));
        assert_eq!(parse(b"abcS"), Err(TimeoutError::InvalidValue));
    }

    #[test]
    fn formats_in_eight_digits_and_round_trips_up() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_millis(250),
            Duration::from_secs(1),
            Duration::from_secs(86_400 * 365),
            Duration::new(12, 345_678_901),
        ] {
            let s = format(d);
            assert!(s.len() <= MAX_DIGITS + 1, "{s}");
            let back = parse(s.as_bytes()).expect("own output parses");
            assert!(back >= d, "{s}");
        }
        assert_eq!(format(Duration::from_millis(50)), "50000000n");
        assert_eq!(format(Duration::from_millis(250)), "250000u");
        assert_eq!(format(Duration::from_secs(5)), "5000000u");
        assert_eq!(format(Duration::MAX), "99999999H");
    }
}
