//! Matches of one registered file accumulated per sending host across
//! objects: a file sent as many small requests leaves a chunk or two in
//! each, often fewer than `known_min_chunks`. Each such object's matched
//! chunks are added to its sender's tally for that file (distinct file
//! offsets, within `known_host_window_secs` of the first); once the tally
//! reaches `known_min_chunks`, the object that reached it alerts, carrying
//! the file ranges of the objects held back before it, and every later
//! object of that host with at least one matched chunk of the file alerts
//! too. Shared by every worker (a `DashMap`, like the egress windows);
//! bounded to [`MAX_TRACKED`] (host, file) pairs, expired ones dropped
//! first, and a pair that finds the table full is not tracked.

use crate::detect::SharedMap;
use std::net::IpAddr;

/// (host, file) pairs tracked at most.
pub const MAX_TRACKED: usize = 16_384;
/// Distinct matched chunk offsets remembered per pair (the threshold is
/// reached long before; more would only cost memory).
const MAX_OFFSETS: usize = 64;
/// File ranges of held-back objects kept per pair.
const MAX_HELD_RANGES: usize = 64;

/// What one host sent of one file within the window.
#[derive(Debug, Default)]
struct Tally {
    /// When the window started (µs, the first object's begin).
    since_us: i64,
    /// Distinct file offsets of matched chunks.
    offsets: Vec<u64>,
    /// Objects that contributed.
    objects: u32,
    /// File ranges of objects held back (below the threshold, no alert yet).
    held: Vec<[u64; 2]>,
}

/// What [`HostMatches::add`] decided for one object.
#[derive(Debug, Default, PartialEq)]
pub struct HostVerdict {
    /// The host's tally reached the threshold: the object alerts.
    pub alert: bool,
    /// Distinct matched chunks of the file from this host in the window.
    pub host_chunks: u32,
    /// Objects of this host that matched the file in the window.
    pub host_objects: u32,
    /// When the window started (µs).
    pub since_us: i64,
    /// File ranges of earlier objects that were held back (reported once,
    /// by the alert that releases them).
    pub held_ranges: Vec<[u64; 2]>,
}

/// The shared per-(host, file) tallies.
#[derive(Debug)]
pub struct HostMatches {
    pairs: SharedMap<(IpAddr, u32), Tally>,
    window_us: i64,
    min_chunks: u32,
}

impl HostMatches {
    /// Tallies over windows of `window_secs` with alerts at `min_chunks`.
    pub fn new(window_secs: u64, min_chunks: u32) -> Self {
        HostMatches {
            pairs: SharedMap::default(),
            window_us: i64::try_from(window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            min_chunks,
        }
    }

    /// An object from `host` begun at `at_us` matched `file` at chunk
    /// offsets `offsets` and carried `ranges` of it; `alerting` when it
    /// alerts on its own (enough chunks). `None` when the pair cannot be
    /// tracked (the table is full of live pairs).
    pub fn add(
        &self,
        host: IpAddr,
        file: u32,
        at_us: i64,
        offsets: &[u64],
        ranges: &[[u64; 2]],
        alerting: bool,
    ) -> Option<HostVerdict> {
        let key = (host, file);
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_TRACKED {
            let horizon = at_us.saturating_sub(self.window_us);
            self.pairs.retain(|_, t| t.since_us >= horizon);
            if self.pairs.len() >= MAX_TRACKED {
                return None;
            }
        }
        let mut t = self.pairs.entry(key).or_default();
        if t.objects == 0 || at_us.saturating_sub(t.since_us) > self.window_us {
            *t = Tally {
                since_us: at_us,
                ..Tally::default()
            };
        }
        t.objects = t.objects.saturating_add(1);
        for o in offsets {
            if t.offsets.len() < MAX_OFFSETS && !t.offsets.contains(o) {
                t.offsets.push(*o);
            }
        }
        let host_chunks = t.offsets.len() as u32;
        let alert = alerting || host_chunks >= self.min_chunks;
        let held_ranges = if alert {
            std::mem::take(&mut t.held)
        } else {
            let room = MAX_HELD_RANGES.saturating_sub(t.held.len());
            t.held.extend(ranges.iter().take(room));
            Vec::new()
        };
        Some(HostVerdict {
            alert,
            host_chunks,
            host_objects: t.objects,
            since_us: t.since_us,
            held_ranges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_chunks_of_one_host_alert_once_enough_and_release_what_was_held() {
        let m = HostMatches::new(3600, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = m.add(a, 0, 0, &[100], &[[0, 50]], false).unwrap();
        assert!(!first.alert);
        // The same chunk again (a retransmitted request) is not a second one.
        assert!(!m.add(a, 0, 1, &[100], &[[0, 50]], false).unwrap().alert);
        // Another host, or another file, has its own tally.
        assert!(!m.add(b, 0, 2, &[200], &[[50, 90]], false).unwrap().alert);
        assert!(!m.add(a, 1, 2, &[200], &[[50, 90]], false).unwrap().alert);
        let second = m.add(a, 0, 3, &[200], &[[50, 90]], false).unwrap();
        assert!(second.alert);
        assert_eq!(second.host_chunks, 2);
        assert_eq!(second.host_objects, 3);
        assert_eq!(second.held_ranges, vec![[0, 50], [0, 50]]);
        let third = m.add(a, 0, 4, &[300], &[[90, 99]], false).unwrap();
        assert!(third.alert && third.held_ranges.is_empty());
        // Past the window the tally starts again.
        let later = m.add(a, 0, 3_600_000_005, &[400], &[[0, 1]], false);
        assert!(!later.unwrap().alert);
    }
}
