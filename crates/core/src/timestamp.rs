//! Time as microseconds since the Unix epoch, in UTC; RFC 3339 at the edges.

use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A timestamp could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {value:?}: expected RFC 3339 (e.g. 2026-01-31T12:00:00Z) or unix seconds"
)]
pub struct TimestampError {
    value: String,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Timestamp((now.unix_timestamp_nanos() / 1_000) as i64)
    }

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 text or an integer number of Unix seconds.
    pub fn parse(value: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError {
            value: value.chars().take(64).collect(),
        };
        if let Ok(secs) = value.parse::<i64>() {
            return secs.checked_mul(1_000_000).map(Timestamp).ok_or_else(err);
        }
        let dt = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| err())?;
        Ok(Timestamp((dt.unix_timestamp_nanos() / 1_000) as i64))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000) {
            Ok(dt) => {
                let text = dt.format(&Rfc3339).map_err(|_| fmt::Error)?;
                f.write_str(&text)
            }
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_rfc3339_and_seconds() {
        let t = Timestamp::parse("2026-01-31T12:00:00Z").unwrap();
        assert_eq!(t.micros(), 1_769_860_800_000_000);
        assert_eq!(Timestamp::parse("1769860800").unwrap(), t);
        assert_eq!(t.to_string(), "2026-01-31T12:00:00Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("99999999999999999").is_err());
    }
}
