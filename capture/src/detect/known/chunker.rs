//! Streaming FastCDC (v2020, via the `fastcdc` crate's cut function): the
//! same cut points whether a file is chunked from disk by `index build` or
//! its bytes arrive packet by packet inside an object. A cut is only taken
//! once `max` bytes are pending (or at the end), so it never depends on how
//! the bytes were split. Because cut points depend only on nearby content,
//! a stream that starts at an arbitrary offset re-synchronises with the
//! file's cut points after a chunk or two.

use fastcdc::v2020::{Normalization, cut, select_masks};

/// Chunk size parameters (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    /// Minimum chunk size.
    pub min: u32,
    /// Average chunk size (a power of two).
    pub avg: u32,
    /// Maximum chunk size.
    pub max: u32,
}

impl Default for ChunkParams {
    fn default() -> Self {
        ChunkParams {
            min: 8 * 1024,
            avg: 32 * 1024,
            max: 128 * 1024,
        }
    }
}

impl ChunkParams {
    /// Whether the sizes are within what FastCDC accepts and ordered.
    pub fn valid(&self) -> bool {
        use fastcdc::v2020 as f;
        (f::MINIMUM_MIN as u32..=f::MINIMUM_MAX as u32).contains(&self.min)
            && (f::AVERAGE_MIN as u32..=f::AVERAGE_MAX as u32).contains(&self.avg)
            && (f::MAXIMUM_MIN as u32..=f::MAXIMUM_MAX as u32).contains(&self.max)
            && self.min < self.avg
            && self.avg < self.max
            && self.avg.is_power_of_two()
            && self.min.is_multiple_of(2)
            && self.max.is_multiple_of(2)
    }
}

/// Room for the input slice beyond twice `max` when the pending buffer
/// grows to its bound: packets and decoded pieces are at most 64 KiB.
const SLICE_ROOM: usize = 64 * 1024;

/// Incremental chunker; memory is bounded by twice `max` plus the largest input slice.
#[derive(Debug)]
pub struct Chunker {
    p: ChunkParams,
    masks: (u64, u64),
    pending: Vec<u8>,
    start: usize,
    /// Bytes of the coming input to drop ([`Chunker::skip`]).
    skip: usize,
}

impl Chunker {
    /// A chunker with these (valid) parameters.
    pub fn new(p: ChunkParams) -> Self {
        Chunker {
            p,
            masks: select_masks(p.avg as usize, Normalization::Level1),
            pending: Vec::new(),
            start: 0,
            skip: 0,
        }
    }

    /// Length of the chunk `src` starts with: its first cut, at most
    /// `max`, or all of `src` when shorter and no cut is found in it.
    pub fn cut_len(&self, src: &[u8]) -> usize {
        let (ms, ml) = self.masks;
        let (_, n) = cut(
            src,
            self.p.min as usize,
            self.p.avg as usize,
            self.p.max as usize,
            ms,
            ml,
            ms << 1,
            ml << 1,
        );
        n.max(1).min(src.len())
    }

    /// Feed bytes; `emit` gets every chunk completed by them.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        let drop = self.skip.min(bytes.len());
        self.skip -= drop;
        let need = self.pending.len() + bytes.len() - drop;
        let max = self.p.max as usize;
        if need > self.pending.capacity() && need > max {
            // Past one maximum chunk the buffer soon reaches its bound
            // (under two maxima pending, plus a slice): grow to it once
            // instead of doubling, which copied the pending bytes into
            // fresh pages at each step.
            let bound = (2 * max).max(need) + SLICE_ROOM;
            self.pending.reserve(bound - self.pending.len());
        }
        self.pending.extend_from_slice(&bytes[drop..]);
        while self.pending.len() - self.start >= self.p.max as usize {
            let n = self.cut_len(&self.pending[self.start..]);
            emit(&self.pending[self.start..self.start + n]);
            self.start += n;
        }
        // Compact only once a whole `max` of consumed bytes has piled up, so
        // the move is amortised over many packets.
        if self.start >= self.p.max as usize {
            self.pending.drain(..self.start);
            self.start = 0;
        }
    }

    /// End of input: emit the remaining chunks.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        while self.start < self.pending.len() {
            let n = self.cut_len(&self.pending[self.start..]);
            emit(&self.pending[self.start..self.start + n]);
            self.start += n;
        }
        self.reset();
    }

    /// End of input, as [`Chunker::finish`], also returning the last
    /// chunk's bytes: the one cut by the end of the input rather than by
    /// content, which a stream continued elsewhere would extend (empty when
    /// nothing was pending).
    pub fn finish_tail(&mut self, mut emit: impl FnMut(&[u8])) -> Vec<u8> {
        let mut last = self.start;
        while self.start < self.pending.len() {
            last = self.start;
            let n = self.cut_len(&self.pending[self.start..]);
            emit(&self.pending[self.start..self.start + n]);
            self.start += n;
        }
        let tail = self.pending[last..].to_vec();
        self.reset();
        tail
    }

    /// The bytes fed but not yet emitted as a chunk.
    pub fn pending_bytes(&self) -> &[u8] {
        &self.pending[self.start..]
    }

    /// Bytes fed but not yet emitted as a chunk.
    pub fn pending(&self) -> usize {
        self.pending.len() - self.start
    }

    /// Forget pending bytes (after a gap).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.start = 0;
        self.skip = 0;
    }

    /// A cut point is known to lie `n` bytes into the stream from the
    /// first pending byte (the end of a chunk matched elsewhere): drop the
    /// bytes before it, pending ones first, then the coming input's, so
    /// the next chunk starts there.
    pub fn skip(&mut self, n: usize) {
        let pending = self.pending();
        if n <= pending {
            self.start += n;
        } else {
            self.reset();
            self.skip = n - pending;
        }
    }

    /// Bytes of the coming input still to be dropped.
    pub fn skipping(&self) -> usize {
        self.skip
    }
}
