//! What every worker shares to build events, and packet time as event time.

use crate::detect::Detectors;
use eve::Timestamp;

/// One second in the engine's time unit (µs).
pub(super) const SEC: i64 = 1_000_000;

/// What every worker shares to build events.
#[derive(Clone)]
pub(crate) struct EventEnv<'a> {
    /// Written into every event.
    pub sensor_id: &'a str,
    /// The detector set.
    pub detectors: &'a Detectors,
    /// Whether to compute SHA-256 of objects.
    pub file_hash: bool,
    /// Whether TLS and SSH streams (ciphertext) are hashed and scanned too.
    pub inspect_encrypted: bool,
}

/// µs since the epoch as a [`Timestamp`].
pub(super) fn ts(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros)
}

/// Packet time to [`Timestamp`] on the per-packet path: the calendar
/// conversion runs once per second of packet time, the microseconds are
/// set on the cached second.
#[derive(Default)]
pub(super) struct Stamps {
    second: Option<(i64, Timestamp)>,
}

impl Stamps {
    pub(super) fn at(&mut self, micros: i64) -> Timestamp {
        use chrono::Timelike;
        let sec = micros.div_euclid(SEC);
        let base = match self.second {
            Some((s, b)) if s == sec => b,
            _ => {
                let b = ts(sec.saturating_mul(SEC));
                self.second = Some((sec, b));
                b
            }
        };
        let nanos = (micros.rem_euclid(SEC) * 1000) as u32;
        base.0
            .with_nanosecond(nanos)
            .map_or_else(|| ts(micros), Timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_stamps_equal_direct_conversion() {
        let mut s = Stamps::default();
        for t in [
            1_714_564_800_000_000i64,
            1_714_564_800_000_001,
            1_714_564_800_999_999,
            1_714_564_801_000_000,
            1_714_564_800_500_000,
            0,
            -1,
            -1_000_001,
        ] {
            assert_eq!(s.at(t), ts(t), "{t}");
        }
    }
}
