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
