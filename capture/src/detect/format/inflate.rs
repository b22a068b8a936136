//! Bounded raw-deflate inflation of zip members (method 8), so a deflated
//! member's own header can be parsed and a streamed member's end found.
//! Bounds: at most `max_out` output bytes and at most [`MAX_RATIO`] output
//! bytes per input byte (a zip bomb stops at the cap, reported as not
//! ended); only the first `keep` output bytes are kept.

use flate2::{Decompress, FlushDecompress, Status};
use std::cell::Cell;

thread_local! {
    /// (inflations, inflations stopped at a cap) on this thread: the
    /// parsers are plain functions, so the format detector reads the
    /// difference around each recognition attempt (see [`tally`]).
    static TALLY: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// This thread's (inflations, capped inflations) so far.
pub(crate) fn tally() -> (u64, u64) {
    TALLY.with(Cell::get)
}

/// Output bytes allowed per compressed byte (plus [`RATIO_SLACK`]).
pub(crate) const MAX_RATIO: u64 = 200;
/// Output allowed regardless of the ratio (small members of zeros).
const RATIO_SLACK: u64 = 1 << 16;

/// What one bounded inflation produced.
pub(crate) struct Inflated {
    /// The first `keep` bytes of output.
    pub out: Vec<u8>,
    /// Compressed bytes consumed.
    pub consumed: usize,
    /// Output bytes produced (all, not only those kept).
    pub produced: u64,
    /// The deflate stream's end was reached.
    pub ended: bool,
}

/// Inflate raw deflate data from `input`, keeping the first `keep` output
/// bytes and producing at most `max_out`. Counted as capped when the ratio
/// stopped it, or `max_out` did while more than `keep` was wanted.
pub(crate) fn raw(input: &[u8], keep: usize, max_out: u64) -> Inflated {
    let mut d = Decompress::new(false);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let mut ended = false;
    let mut capped = false;
    loop {
        let in_before = d.total_in() as usize;
        let out_before = d.total_out();
        let status = d.decompress(
            input.get(in_before..).unwrap_or(&[]),
            &mut chunk,
            FlushDecompress::None,
        );
        let made = (d.total_out() - out_before) as usize;
        if out.len() < keep {
            let take = made.min(keep - out.len());
            out.extend_from_slice(&chunk[..take]);
        }
        match status {
            Ok(Status::StreamEnd) => {
                ended = true;
                break;
            }
            Ok(_) if made == 0 && d.total_in() as usize == in_before => break,
            Ok(_) => {}
            Err(_) => break,
        }
        let ratio_cap = d
            .total_in()
            .saturating_mul(MAX_RATIO)
            .saturating_add(RATIO_SLACK);
        if d.total_out() >= max_out.min(ratio_cap) {
            // Reaching `max_out` when no more than `keep` was asked for is
            // a prefix read, not a cap.
            capped = d.total_out() >= ratio_cap || max_out > keep as u64;
            break;
        }
    }
    TALLY.with(|t| {
        let (n, c) = t.get();
        t.set((n + 1, c + u64::from(capped)));
    });
    Inflated {
        out,
        consumed: d.total_in() as usize,
        produced: d.total_out(),
        ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn finds_the_stream_end_and_keeps_a_prefix() {
        let text: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut z = deflate(&text);
        let n = z.len();
        z.extend_from_slice(b"PK\x03\x04 trailing");
        let r = raw(&z, 1000, 1 << 30);
        assert!(r.ended);
        assert_eq!(r.consumed, n);
        assert_eq!(r.produced, text.len() as u64);
        assert_eq!(r.out, text[..1000]);
    }

    #[test]
    fn a_bomb_stops_at_the_ratio_cap() {
        let z = deflate(&vec![0u8; 64 << 20]);
        let r = raw(&z, 16, u64::MAX);
        assert!(!r.ended);
        assert!(r.produced <= z.len() as u64 * MAX_RATIO + RATIO_SLACK + 32 * 1024);
    }
}
