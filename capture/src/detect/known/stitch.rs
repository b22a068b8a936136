//! Stitching consecutive objects of one (sender, receiver) pair: a sender
//! that splits a file into many requests makes, to the chunker, one stream
//! cut at arbitrary places. Each cut leaves a partial chunk at the end of
//! one object and the rest of it at the start of the next, and neither
//! matches on its own; with requests of a few chunks (100 KiB at 32 KiB
//! chunks) that loses a third of the file.
//!
//! At an object's end the matcher leaves here the bytes after its last
//! content-defined cut (the chunk the end of the object cut, at most one
//! maximum chunk, and only when that chunk did not match: an object that
//! ended on a chunk of a registered file ended where its chunk did). The
//! pair's next object, when it begins within `known_stitch_secs` of the
//! previous one's start, takes them and its chunker continues from them, so
//! the chunk spanning the cut is hashed whole. FastCDC keeps no rolling
//! state across a cut point (the gear hash restarts at each chunk), so those
//! bytes are the whole of the chunker's state.
//!
//! A match is still the xxh3 of a whole chunk of the file, so a wrong pairing
//! (objects interleaved, out of order, another upload of the same pair in
//! between) fails to match and costs nothing else. Shared by every worker (a
//! `DashMap`, like [`super::hosts`]); at most `known_stitch_pairs` pairs
//! are kept (expired ones dropped first, then the oldest).

use dashmap::DashMap;
use std::net::IpAddr;

/// The bytes an object left for the next one of its pair.
#[derive(Debug)]
struct Carry {
    /// The object's start (packet time, µs).
    begun_us: i64,
    /// The bytes after its last cut.
    bytes: Vec<u8>,
}

/// Carried bytes per (sender, receiver).
#[derive(Debug)]
pub struct Stitches {
    pairs: DashMap<(IpAddr, IpAddr), Carry>,
    window_us: i64,
    cap: usize,
}

impl Stitches {
    /// Carries kept `window_secs` for at most `cap` pairs.
    pub fn new(window_secs: u64, cap: usize) -> Self {
        Stitches {
            pairs: DashMap::new(),
            window_us: i64::try_from(window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            cap,
        }
    }

    /// The bytes the pair's previous object left, for an object that began
    /// at `at_us` (taken: one object continues from them). `None` when there
    /// are none, or they are from an object that began later or longer ago
    /// than the window.
    pub fn take(&self, from: IpAddr, to: IpAddr, at_us: i64) -> Option<Vec<u8>> {
        let (_, c) = self
            .pairs
            .remove_if(&(from, to), |_, c| c.begun_us <= at_us)?;
        (at_us.saturating_sub(c.begun_us) <= self.window_us).then_some(c.bytes)
    }

    /// An object of the pair that began at `begun_us` ended with `bytes`
    /// after its last cut. Kept unless the pair already holds a later
    /// object's.
    pub fn put(&self, from: IpAddr, to: IpAddr, begun_us: i64, bytes: Vec<u8>) {
        let key = (from, to);
        if bytes.is_empty() || self.cap == 0 {
            return;
        }
        if !self.pairs.contains_key(&key) && self.pairs.len() >= self.cap {
            let horizon = begun_us.saturating_sub(self.window_us);
            self.pairs.retain(|_, c| c.begun_us >= horizon);
            while self.pairs.len() >= self.cap {
                let oldest = self
                    .pairs
                    .iter()
                    .min_by_key(|e| e.begun_us)
                    .map(|e| *e.key());
                match oldest {
                    Some(k) => self.pairs.remove(&k),
                    None => break,
                };
            }
        }
        let mut e = self.pairs.entry(key).or_insert_with(|| Carry {
            begun_us,
            bytes: Vec::new(),
        });
        if e.begun_us <= begun_us {
            *e = Carry { begun_us, bytes };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_continues_from_its_previous_object_within_the_window_and_bound() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "198.51.100.1".parse().unwrap();
        let c: IpAddr = "198.51.100.2".parse().unwrap();
        let s = Stitches::new(10, 2);
        s.put(a, b, 1_000_000, vec![1, 2, 3]);
        // Another pair, or an object that began before the carrier, gets nothing.
        assert_eq!(s.take(a, c, 2_000_000), None);
        assert_eq!(s.take(a, b, 999_999), None);
        assert_eq!(s.take(a, b, 2_000_000), Some(vec![1, 2, 3]));
        // Taken once.
        assert_eq!(s.take(a, b, 3_000_000), None);
        // Too old.
        s.put(a, b, 1_000_000, vec![4]);
        assert_eq!(s.take(a, b, 12_000_000), None);
        // An earlier object's bytes do not replace a later one's.
        s.put(a, b, 5_000_000, vec![5]);
        s.put(a, b, 4_000_000, vec![6]);
        assert_eq!(s.take(a, b, 6_000_000), Some(vec![5]));
        // At the bound the oldest pair goes.
        s.put(a, b, 1, vec![7]);
        s.put(a, c, 2, vec![8]);
        s.put(b, c, 3, vec![9]);
        assert_eq!(s.pairs.len(), 2);
        assert_eq!(s.take(a, b, 4), None);
        assert_eq!(s.take(b, c, 4), Some(vec![9]));
    }
}
