//! The union of byte ranges of one registered file, across every alert of
//! an incident: what its coverage is computed from.

use serde::{Deserialize, Serialize};

/// Ranges kept per file at most; beyond, the nearest are merged across
/// their gaps (and [`Ranges::compacted`] says so).
pub const MAX_RANGES: usize = 4096;

/// Disjoint, sorted `[start, end)` ranges of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranges {
    /// The ranges, sorted, neither overlapping nor touching.
    pub ranges: Vec<[u64; 2]>,
    /// Whether gaps were merged to keep to [`MAX_RANGES`] (or an alert
    /// reported compacted ranges): the union may then overstate.
    #[serde(default)]
    pub compacted: bool,
}

impl Ranges {
    /// Add ranges (any order, empty ones ignored).
    pub fn add(&mut self, more: impl IntoIterator<Item = [u64; 2]>) {
        self.ranges.extend(more.into_iter().filter(|r| r[1] > r[0]));
        self.ranges.sort_unstable();
        let mut out: Vec<[u64; 2]> = Vec::with_capacity(self.ranges.len());
        for r in self.ranges.drain(..) {
            match out.last_mut() {
                Some(last) if r[0] <= last[1] => last[1] = last[1].max(r[1]),
                _ => out.push(r),
            }
        }
        while out.len() > MAX_RANGES {
            self.compacted = true;
            let i = (1..out.len())
                .min_by_key(|&i| out[i][0] - out[i - 1][1])
                .unwrap_or(1);
            out[i - 1][1] = out[i][1];
            out.remove(i);
        }
        self.ranges = out;
    }

    /// Bytes covered.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|r| r[1] - r[0]).sum()
    }

    /// Covered bytes ÷ `size` (0 for an empty file), at most 1.
    pub fn coverage(&self, size: u64) -> f64 {
        if size == 0 {
            return 0.0;
        }
        (self.covered() as f64 / size as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_overlaps_and_touching_ranges() {
        let mut r = Ranges::default();
        r.add([[10, 20], [0, 5]]);
        r.add([[5, 10], [30, 40], [35, 50], [60, 60]]);
        assert_eq!(r.ranges, vec![[0, 20], [30, 50]]);
        assert_eq!(r.covered(), 40);
        assert!((r.coverage(80) - 0.5).abs() < 1e-12);
        assert!(!r.compacted);
    }

    #[test]
    fn too_many_ranges_merge_the_nearest() {
        let mut r = Ranges::default();
        r.add((0..MAX_RANGES as u64 + 1).map(|i| [i * 10, i * 10 + 5]));
        assert_eq!(r.ranges.len(), MAX_RANGES);
        assert!(r.compacted);
    }
}
