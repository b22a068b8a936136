//! Stitching consecutive objects of one (sender, receiver) pair: a sender
//! that splits a file into many requests makes, to the chunker, one stream
//! cut at arbitrary places. Each cut leaves a partial chunk at the end of
//! one object and the rest of it at the start of the next, and neither
//! matches on its own; with requests of a few chunks (100 KiB at 32 KiB
//! chunks) that loses a third of the file.
//!
//! FastCDC's gear hash restarts at every cut point, so what an object
//! contributes to the chunk spanning its end is the bytes after its last
//! cut (its *tail*, at most one maximum chunk), and what the next object
//! contributes is a prefix of its first maximum chunk of bytes (its
//! *head*). The matcher leaves both here per pair: a tail when the object's
//! last chunk did not match (an object that ended on a chunk of a
//! registered file ended where its chunk did), a head when the object's
//! first bytes are chunked in full. Whichever of two consecutive objects
//! comes second — the next object's head, or the previous object's end —
//! chunks tail + head and looks up the chunk that spans the cut, so the
//! order in which objects are processed (several workers, overlapping
//! uploads) does not matter. A tail is tried against heads of objects that
//! began no earlier and no later than `known_stitch_secs` after it, a head
//! against tails of objects that began no later and within that window
//! before it, nearest first; a piece is used up when it matched.
//!
//! A match is still the xxh3 and length of a whole chunk of the file, so a
//! wrong pairing (another upload of the pair in between) fails to match
//! and costs nothing else. Shared by every worker (a `DashMap`, like
//! [`super::hosts`]); at most [`MAX_PIECES`] tails and as many heads per
//! pair, and at most `known_stitch_bytes` in all (each piece counted with
//! [`PIECE_OVERHEAD`]): beyond it expired pairs are dropped, then the
//! oldest pairs until a quarter of the budget is free (one sort per quarter
//! of the budget put, not a scan per object).

use crate::detect::SharedMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Tails, and heads, kept per pair (objects of the pair waiting for their
/// neighbour).
pub const MAX_PIECES: usize = 16;
/// Neighbours tried per object end at most, nearest first (the true one is
/// the nearest present; more would only cost cuts that cannot match).
pub const MAX_TRIES: usize = 2;
/// Bytes a piece is counted with beyond its own (map entry, vectors).
pub const PIECE_OVERHEAD: usize = 256;

/// Which end of an object a piece is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The bytes after the object's last cut.
    Tail,
    /// The object's first bytes.
    Head,
}

/// One object's tail or head.
#[derive(Debug)]
pub struct Piece {
    /// Which object left it ([`Stitches::id`]).
    pub id: u64,
    /// The object's start (packet time, µs).
    pub begun_us: i64,
    /// A head that is the whole object.
    pub whole: bool,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What one pair holds.
#[derive(Debug, Default)]
struct Slot {
    tails: Vec<Piece>,
    heads: Vec<Piece>,
}

impl Piece {
    fn cost(&self) -> usize {
        self.bytes.len() + PIECE_OVERHEAD
    }
}

impl Slot {
    fn cost(&self) -> usize {
        self.tails.iter().chain(&self.heads).map(Piece::cost).sum()
    }

    /// The latest start among the pieces.
    fn latest(&self) -> i64 {
        self.tails
            .iter()
            .chain(&self.heads)
            .map(|p| p.begun_us)
            .max()
            .unwrap_or(i64::MIN)
    }

    fn list(&mut self, end: End) -> &mut Vec<Piece> {
        match end {
            End::Tail => &mut self.tails,
            End::Head => &mut self.heads,
        }
    }
}

/// Tails and heads per (sender, receiver).
#[derive(Debug)]
pub struct Stitches {
    pairs: SharedMap<(IpAddr, IpAddr), Slot>,
    window_us: i64,
    budget: usize,
    /// Bytes held (pieces with their overhead).
    held: AtomicUsize,
    ids: AtomicU64,
}

impl Stitches {
    /// Pieces kept `window_secs`, at most `budget` bytes of them.
    pub fn new(window_secs: u64, budget: usize) -> Self {
        Stitches {
            pairs: SharedMap::default(),
            window_us: i64::try_from(window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            budget,
            held: AtomicUsize::new(0),
            ids: AtomicU64::new(0),
        }
    }

    /// A fresh object identity.
    pub fn id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// `piece` is left as the `end` of its object (the oldest such piece of
    /// the pair goes beyond [`MAX_PIECES`]). A piece of the same object
    /// already there stays, unless `replace` (a tail found in step with
    /// the file by a neighbour, [`Stitches::forget`]).
    pub fn put(&self, from: IpAddr, to: IpAddr, end: End, piece: Piece, replace: bool) {
        if piece.bytes.is_empty() || !self.room(piece.cost(), piece.begun_us) {
            return;
        }
        let mut slot = self.pairs.entry((from, to)).or_default();
        let list = slot.list(end);
        if let Some(i) = list.iter().position(|p| p.id == piece.id) {
            if !replace {
                return;
            }
            let gone = list.remove(i);
            self.held.fetch_sub(gone.cost(), Ordering::Relaxed);
        }
        self.held.fetch_add(piece.cost(), Ordering::Relaxed);
        if list.len() >= MAX_PIECES
            && let Some(i) = (0..list.len()).min_by_key(|&i| list[i].begun_us)
        {
            let gone = list.remove(i);
            self.held.fetch_sub(gone.cost(), Ordering::Relaxed);
        }
        list.push(piece);
    }

    /// Object `id` of the pair, begun at `begun_us`, has its other end in
    /// hand: `stitch` is tried on the pair's pieces of kind `end` that can
    /// neighbour it (tails of objects begun before it, heads of objects
    /// begun after it, within the window), nearest first, until it reports
    /// a match; that piece is used up. True on a match.
    pub fn stitch(
        &self,
        from: IpAddr,
        to: IpAddr,
        end: End,
        id: u64,
        begun_us: i64,
        mut stitch: impl FnMut(&Piece) -> bool,
    ) -> bool {
        let key = (from, to);
        let Some(mut slot) = self.pairs.get_mut(&key) else {
            return false;
        };
        let window = self.window_us;
        let list = slot.list(end);
        // Nearest first: latest tail, earliest head.
        list.sort_by_key(|p| match end {
            End::Tail => i64::MAX - p.begun_us,
            End::Head => p.begun_us,
        });
        let near = |p: &Piece| {
            let gap = match end {
                End::Tail => begun_us.checked_sub(p.begun_us),
                End::Head => p.begun_us.checked_sub(begun_us),
            };
            p.id != id && gap.is_some_and(|g| (0..=window).contains(&g))
        };
        let hit = (0..list.len())
            .filter(|&i| near(&list[i]))
            .take(MAX_TRIES)
            .find(|&i| stitch(&list[i]));
        let Some(gone) = hit.map(|i| list.remove(i)) else {
            return false;
        };
        self.held.fetch_sub(gone.cost(), Ordering::Relaxed);
        drop(slot);
        self.pairs
            .remove_if(&key, |_, s| s.tails.is_empty() && s.heads.is_empty());
        true
    }

    /// Drop the `end` piece object `id` left, if any (a neighbour used it
    /// in its place).
    pub fn forget(&self, from: IpAddr, to: IpAddr, end: End, id: u64) {
        if let Some(mut slot) = self.pairs.get_mut(&(from, to)) {
            let list = slot.list(end);
            if let Some(i) = list.iter().position(|p| p.id == id) {
                let gone = list.remove(i);
                self.held.fetch_sub(gone.cost(), Ordering::Relaxed);
            }
        }
    }

    /// Whether a piece of `cost` fits in the budget, after dropping expired
    /// pairs and then the oldest ones until a quarter of it is free.
    fn room(&self, cost: usize, at_us: i64) -> bool {
        if cost > self.budget / 4 {
            return false;
        }
        if self.held.load(Ordering::Relaxed) + cost <= self.budget {
            return true;
        }
        let horizon = at_us.saturating_sub(self.window_us);
        self.pairs.retain(|_, s| {
            let keep = s.latest() >= horizon;
            if !keep {
                self.held.fetch_sub(s.cost(), Ordering::Relaxed);
            }
            keep
        });
        let target = self.budget - self.budget / 4;
        if self.held.load(Ordering::Relaxed) > target {
            let mut by_age: Vec<(i64, (IpAddr, IpAddr))> =
                self.pairs.iter().map(|e| (e.latest(), *e.key())).collect();
            by_age.sort_unstable();
            for (_, k) in by_age {
                if self.held.load(Ordering::Relaxed) <= target {
                    break;
                }
                if let Some((_, s)) = self.pairs.remove(&k) {
                    self.held.fetch_sub(s.cost(), Ordering::Relaxed);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(s: &Stitches, end: End, id: u64, at: i64, ok: &[u8]) -> Vec<Vec<u8>> {
        let (a, b): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "198.51.100.1".parse().unwrap());
        let mut seen = Vec::new();
        s.stitch(a, b, end, id, at, |p| {
            seen.push(p.bytes.clone());
            p.bytes == ok
        });
        seen
    }

    fn piece(s: &Stitches, id: Option<u64>, begun_us: i64, bytes: Vec<u8>) -> Piece {
        Piece {
            id: id.unwrap_or_else(|| s.id()),
            begun_us,
            whole: false,
            bytes,
        }
    }

    #[test]
    fn neighbours_are_tried_nearest_first_within_the_window_and_used_once() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "198.51.100.1".parse().unwrap();
        let c: IpAddr = "198.51.100.2".parse().unwrap();
        let s = Stitches::new(10, 24 * (PIECE_OVERHEAD + 1));
        let ids: Vec<u64> = (0..4).map(|_| s.id()).collect();
        s.put(
            a,
            b,
            End::Tail,
            piece(&s, Some(ids[0]), 1_000_000, vec![1]),
            false,
        );
        s.put(
            a,
            b,
            End::Tail,
            piece(&s, Some(ids[1]), 2_000_000, vec![2]),
            false,
        );
        s.put(
            a,
            b,
            End::Head,
            piece(&s, Some(ids[2]), 3_000_000, vec![3]),
            false,
        );
        // Tails of objects begun before, latest first; not its own.
        assert_eq!(
            tried(&s, End::Tail, ids[3], 5_000_000, &[]),
            [vec![2], vec![1]]
        );
        assert_eq!(tried(&s, End::Tail, ids[1], 2_000_000, &[]), [vec![1]]);
        // Heads of objects begun after.
        assert_eq!(tried(&s, End::Head, ids[0], 1_000_000, &[]), [vec![3]]);
        assert!(tried(&s, End::Head, ids[3], 5_000_000, &[]).is_empty());
        // Outside the window nothing; a match uses the piece up.
        assert!(tried(&s, End::Tail, ids[3], 12_500_000, &[]).is_empty());
        assert_eq!(
            tried(&s, End::Tail, ids[3], 5_000_000, &[1]),
            [vec![2], vec![1]]
        );
        assert_eq!(tried(&s, End::Tail, ids[3], 5_000_000, &[]), [vec![2]]);
        // Another pair has its own pieces; at most MAX_PIECES of a kind.
        assert!(!s.stitch(a, c, End::Tail, ids[3], 5_000_000, |_| true));
        s.put(a, c, End::Tail, piece(&s, None, 1, vec![5]), false);
        for i in 0..MAX_PIECES as i64 + 1 {
            s.put(
                a,
                b,
                End::Head,
                piece(&s, None, 4_000_000 + i, vec![4]),
                false,
            );
        }
        assert_eq!(s.pairs.get(&(a, b)).unwrap().heads.len(), MAX_PIECES);
        let cost = |p: &Stitches| p.pairs.iter().map(|e| e.cost()).sum::<usize>();
        assert_eq!(s.held.load(Ordering::Relaxed), cost(&s));
        // Over the budget the oldest pair goes; what is held stays counted.
        for i in 0..MAX_PIECES as i64 {
            s.put(
                b,
                c,
                End::Tail,
                piece(&s, None, 4_000_100 + i, vec![6]),
                false,
            );
        }
        assert!(s.pairs.get(&(a, c)).is_none());
        assert!(s.pairs.get(&(b, c)).is_some());
        assert_eq!(s.held.load(Ordering::Relaxed), cost(&s));
        assert!(cost(&s) <= s.budget);
        // A piece of the same object stays unless replaced, then is forgotten.
        let id = s.id();
        s.put(
            b,
            c,
            End::Head,
            piece(&s, Some(id), 4_000_200, vec![7]),
            false,
        );
        s.put(
            b,
            c,
            End::Head,
            piece(&s, Some(id), 4_000_200, vec![8]),
            false,
        );
        let heads = |s: &Stitches| {
            s.pairs
                .get(&(b, c))
                .map(|e| e.heads.iter().map(|p| p.bytes[0]).collect::<Vec<_>>())
        };
        assert_eq!(heads(&s), Some(vec![7]));
        s.put(
            b,
            c,
            End::Head,
            piece(&s, Some(id), 4_000_200, vec![9]),
            true,
        );
        assert_eq!(heads(&s), Some(vec![9]));
        s.forget(b, c, End::Head, id);
        assert_eq!(heads(&s), Some(vec![]));
        assert_eq!(s.held.load(Ordering::Relaxed), cost(&s));
    }
}
