//! Times for the request logs the tests write: a fixed start and RFC 3339
//! timestamps after it.

/// One hour in milliseconds.
pub const HOUR: i64 = 3_600_000;
/// 2026-11-02T00:00:00Z, in milliseconds since the epoch.
pub const T0: i64 = 1_793_577_600_000;

/// RFC 3339 for a time (ms) in the days after `T0` (the tests stay in
/// November).
pub fn ts(ms: i64) -> String {
    let secs = (ms - T0).div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        2 + days,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}
