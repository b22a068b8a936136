//! Timestamps as EVE writes them: RFC 3339 with microseconds and an offset.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time at microsecond resolution (finer parts are dropped, so a
/// timestamp reads back from JSON unchanged), serialized as RFC 3339 with microseconds and offset
/// (`2026-11-21T10:00:00.123456+00:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Timestamp::from(Utc::now())
    }

    /// From seconds and microseconds since the Unix epoch (packet time).
    /// Out-of-range values clamp to the epoch rather than panic.
    pub fn from_unix_micros(micros: i64) -> Self {
        Timestamp(Utc.timestamp_micros(micros).single().unwrap_or_default())
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Parse RFC 3339 (any offset; stored as UTC).
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::<FixedOffset>::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc).into())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, false))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp::from_unix_micros(t.timestamp_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_micros_and_offset() {
        let t = Timestamp::from_unix_micros(1_763_719_200_123_456);
        assert_eq!(t.to_string(), "2025-11-21T10:00:00.123456+00:00");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn parses_other_offsets_as_utc() {
        let t = Timestamp::parse("2026-11-21T12:00:00.5+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-21T10:00:00.500000+00:00");
    }
}
