//! Which bytes of a registered file an object carried, as `[start, end)`
//! offsets in the file: what the `weights_known` alert reports as
//! `file_ranges`, so the dashboard can add up the coverage of one file
//! across many objects (a file sent as many small requests).
//!
//! A matched chunk says that object bytes `[p, p + len)` are file bytes
//! `[o, o + len)`. Within one run of contiguous object bytes (the chunker
//! was not restarted by a gap or a sampled window's end), consecutive
//! matches of one file at the same alignment (`o − p`) make one span, the
//! unmatched chunks between them included. The chunker cannot match the
//! partial chunks at a run's edges (the first one starts anywhere, the last
//! is cut off), so the first span of a run is widened back to the run's
//! start and the last one forward to its end, each when that edge is at most
//! one maximum chunk long (longer, and the bytes may be something else).
//!
//! The matched chunks alone (bytes whose hash was checked) are kept apart
//! as the verified ranges; the rest of a range is inferred by alignment.
//! When every matched chunk of the file in an object has one alignment
//! ([`FileRanges::alignment`]), the matcher places the bytes its sampled
//! scan skipped by it too, where they continue matched bytes
//! ([`FileRanges::report_with`]).

/// Ranges one alert reports at most; more are merged across their
/// smallest gaps (and the alert says so).
pub const MAX_RANGES: usize = 32;

/// Matches of one file at one alignment in the current run.
#[derive(Clone, Copy, Debug)]
struct Span {
    obj_start: u64,
    obj_end: u64,
    file_start: u64,
    /// Bytes of the run before `obj_start` counted as the file's.
    head: u64,
}

impl Span {
    fn aligned(&self, obj: u64, file: u64) -> bool {
        i128::from(file) - i128::from(obj)
            == i128::from(self.file_start) - i128::from(self.obj_start)
    }

    fn range(&self, tail: u64) -> (u64, u64) {
        let len = self.obj_end - self.obj_start;
        (
            self.file_start.saturating_sub(self.head),
            self.file_start.saturating_add(len).saturating_add(tail),
        )
    }
}

/// One registered file's ranges in one object (bounded: at most
/// `2 × MAX_RANGES` are kept between compactions).
#[derive(Debug, Default)]
pub struct FileRanges {
    open: Option<Span>,
    ranges: Vec<(u64, u64)>,
    compacted: bool,
    /// The matched chunks' own file bytes (merged when touching).
    verified: Vec<(u64, u64)>,
    /// Verified ranges beyond the bound were left out (never merged
    /// across a gap: a verified range never overstates).
    verified_truncated: bool,
    /// The alignment (file offset − object offset) of the matches, while
    /// they all share one.
    delta: Option<i128>,
    /// Matches at more than one alignment were seen.
    mixed: bool,
}

impl FileRanges {
    /// A matched chunk: object bytes `[obj, obj + len)` are file bytes
    /// `[file, file + len)`; the current run started at object offset
    /// `run_start`; `max` is the longest chunk.
    pub fn matched(&mut self, obj: u64, file: u64, len: u64, run_start: u64, max: u64) {
        let d = i128::from(file) - i128::from(obj);
        self.mixed |= self.delta.is_some_and(|x| x != d);
        self.delta = Some(d);
        let room = self.verified.len() < 2 * MAX_RANGES;
        match self.verified.last_mut() {
            Some(last) if last.1 == file => last.1 = file + len,
            _ if room => self.verified.push((file, file + len)),
            _ => self.verified_truncated = true,
        }
        let head = match self.open {
            Some(ref mut s) if s.aligned(obj, file) && obj >= s.obj_end => {
                s.obj_end = obj + len;
                return;
            }
            Some(s) => {
                self.push(s.range(0));
                0
            }
            None => Some(obj.saturating_sub(run_start))
                .filter(|h| *h <= max)
                .unwrap_or(0),
        };
        self.open = Some(Span {
            obj_start: obj,
            obj_end: obj + len,
            file_start: file,
            head,
        });
    }

    /// The run ended at object offset `data_end`: close its span, widened
    /// to the end when that is at most `max` bytes away.
    pub fn end_run(&mut self, data_end: u64, max: u64) {
        if let Some(s) = self.open.take() {
            let tail = data_end.saturating_sub(s.obj_end);
            self.push(s.range(if tail <= max { tail } else { 0 }));
        }
    }

    fn push(&mut self, r: (u64, u64)) {
        self.ranges.push(r);
        if self.ranges.len() > 2 * MAX_RANGES {
            self.compacted |= compact(&mut self.ranges);
        }
    }

    /// The ranges so far (the open span without its tail), sorted, merged,
    /// cut at the file's `size`, at most [`MAX_RANGES`]; and whether gaps
    /// had to be merged to keep to that bound.
    pub fn report(&self, size: u64) -> (Vec<[u64; 2]>, bool) {
        let mut v = self.ranges.clone();
        v.extend(self.open.map(|s| s.range(0)));
        for r in &mut v {
            r.0 = r.0.min(size);
            r.1 = r.1.min(size);
        }
        v.retain(|r| r.1 > r.0);
        let compacted = compact(&mut v) | self.compacted;
        (v.into_iter().map(|(s, e)| [s, e]).collect(), compacted)
    }
}

impl FileRanges {
    /// The one alignment (file offset − object offset) every match had,
    /// `None` when there were none or several.
    pub fn alignment(&self) -> Option<i128> {
        self.delta.filter(|_| !self.mixed)
    }

    /// As [`FileRanges::report`], with `extra` file ranges (inferred by
    /// the caller) merged in.
    pub fn report_with(&self, size: u64, extra: &[[u64; 2]]) -> (Vec<[u64; 2]>, bool) {
        let (v, compacted) = self.report(size);
        if extra.is_empty() {
            return (v, compacted);
        }
        let mut all: Vec<(u64, u64)> = v
            .iter()
            .chain(extra)
            .map(|r| (r[0].min(size), r[1].min(size)))
            .filter(|r| r.1 > r.0)
            .collect();
        let merged = compact(&mut all);
        (
            all.into_iter().map(|(s, e)| [s, e]).collect(),
            compacted | merged,
        )
    }

    /// The file bytes of matched chunks alone, sorted and merged, cut at
    /// `size`, at most [`MAX_RANGES`] (the first ones); and whether some
    /// were left out.
    pub fn verified(&self, size: u64) -> (Vec<[u64; 2]>, bool) {
        let mut v: Vec<(u64, u64)> = self
            .verified
            .iter()
            .map(|r| (r.0.min(size), r.1.min(size)))
            .filter(|r| r.1 > r.0)
            .collect();
        v.sort_unstable();
        let mut out: Vec<[u64; 2]> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last[1] => last[1] = last[1].max(e),
                _ => out.push([s, e]),
            }
        }
        let cut = out.len() > MAX_RANGES;
        out.truncate(MAX_RANGES);
        (out, cut || self.verified_truncated)
    }
}

/// Sort and merge overlapping or touching ranges, then merge across the
/// smallest gaps until at most [`MAX_RANGES`] remain; true when a gap was
/// merged.
fn compact(v: &mut Vec<(u64, u64)>) -> bool {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for &(s, e) in v.iter() {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    let merged = out.len() > MAX_RANGES;
    while out.len() > MAX_RANGES {
        let i = (1..out.len())
            .min_by_key(|&i| out[i].0 - out[i - 1].1)
            .unwrap_or(1);
        out[i - 1].1 = out[i].1;
        out.remove(i);
    }
    *v = out;
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_matches_fill_and_edges_widen_up_to_one_chunk() {
        let mut f = FileRanges::default();
        // Run from object offset 100; matches at object 300 and 900, both
        // file = object + 1000; the run ends at 1300.
        f.matched(300, 1300, 100, 100, 500);
        f.matched(900, 1900, 100, 100, 500);
        f.end_run(1300, 500);
        assert_eq!(f.report(10_000), (vec![[1100, 2300]], false));
        // Only the matched chunks themselves are verified.
        assert_eq!(
            f.verified(10_000),
            (vec![[1300, 1400], [1900, 2000]], false)
        );
        assert_eq!(f.alignment(), Some(1000));
        assert_eq!(
            f.report_with(2500, &[[2300, 2400], [2450, 3000]]).0,
            vec![[1100, 2400], [2450, 2500]]
        );
        // A head longer than one chunk is not claimed.
        let mut g = FileRanges::default();
        g.matched(900, 0, 100, 0, 500);
        assert_eq!(g.report(10_000).0, vec![[0, 100]]);
    }

    #[test]
    fn another_alignment_starts_a_new_range_and_size_cuts() {
        let mut f = FileRanges::default();
        f.matched(0, 0, 100, 0, 50);
        f.matched(100, 5000, 100, 0, 50);
        f.end_run(230, 50);
        assert_eq!(f.report(5050).0, vec![[0, 100], [5000, 5050]]);
        assert_eq!(f.alignment(), None, "two alignments");
    }

    #[test]
    fn many_ranges_are_bounded_and_flagged() {
        let mut f = FileRanges::default();
        for i in 0..200u64 {
            f.matched(i * 10, i * 1000, 10, i * 10, 0);
            f.end_run(i * 10 + 10, 0);
        }
        let (r, compacted) = f.report(u64::MAX);
        assert_eq!(r.len(), MAX_RANGES);
        assert!(compacted);
        assert_eq!(r[0][0], 0);
        assert_eq!(r[MAX_RANGES - 1][1], 199_010);
    }
}
