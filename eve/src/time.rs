//! Timestamps as EVE writes them: Suricata's form, microseconds and a
//! numeric offset without a colon (`2026-11-21T10:00:00.123456+0000`).

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// How [`Timestamp`] is written: Suricata's EVE form, which its schema
/// requires (`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$`).
const EVE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f%z";

/// A point in time at microsecond resolution (finer parts are dropped, so a
/// timestamp reads back from JSON unchanged), serialized as Suricata writes
/// EVE timestamps: microseconds and an offset without a colon
/// (`2026-11-21T10:00:00.123456+0000`). Parsing also takes RFC 3339
/// (`+00:00`, `Z`).
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

    /// Parse Suricata's form (`2026-11-21T10:00:00.123456+0000`) or RFC 3339
    /// (`+00:00`, `Z`); any offset, stored as UTC.
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::<FixedOffset>::parse_from_rfc3339(s)
            .or_else(|e| {
                // Suricata's offset has no colon, which RFC 3339 requires.
                let suricata_offset = s.len() > 5
                    && s.as_bytes()[s.len() - 5..]
                        .iter()
                        .enumerate()
                        .all(|(i, b)| {
                            if i == 0 {
                                matches!(b, b'+' | b'-')
                            } else {
                                b.is_ascii_digit()
                            }
                        });
                if suricata_offset {
                    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
                } else {
                    Err(e)
                }
            })
            .map(|t| t.with_timezone(&Utc).into())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format(EVE_FORMAT))
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
    fn formats_as_suricata_does() {
        let t = Timestamp::from_unix_micros(1_763_719_200_123_456);
        assert_eq!(t.to_string(), "2025-11-21T10:00:00.123456+0000");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let whole = Timestamp::from_unix_micros(1_763_719_200_000_000);
        assert_eq!(whole.to_string(), "2025-11-21T10:00:00.000000+0000");
    }

    #[test]
    fn parses_every_offset_form_as_utc() {
        let want = Timestamp::parse("2026-11-21T10:00:00.500000+0000").unwrap();
        for s in [
            "2026-11-21T10:00:00.5+00:00",
            "2026-11-21T10:00:00.500000Z",
            "2026-11-21T10:00:00.500000z",
            "2026-11-21T12:00:00.5+02:00",
            "2026-11-21T12:00:00.500000+0200",
            "2026-11-21T07:30:00.500000-0230",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            Timestamp::parse("2026-11-21T10:00:00+0000")
                .unwrap()
                .unix_micros(),
            want.unix_micros() - 500_000
        );
        for bad in [
            "2026-11-21T10:00:00.5",
            "2026-11-21 10:00:00.5+0000",
            "2026-11-21T10:00:00.5+000",
            "2026-11-21T10:00:00.5+00000",
            "x0000",
            "+0000",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
