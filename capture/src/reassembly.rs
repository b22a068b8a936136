//! Per-direction TCP reassembly: turns segments in capture order into the
//! in-order byte stream of one direction, with holes reported as gaps.
//!
//! Written by hand: no maintained Rust crate reassembles TCP for a passive
//! sensor (bounded buffers, gap skipping, midstream pickup); this is the
//! small state machine Zeek and Suricata each carry in their own trees.
//!
//! Policy:
//! - Sequence numbers are unwrapped to 64-bit stream offsets relative to the
//!   next expected byte, so wrap-around (and streams far longer than 4 GiB)
//!   need no special case.
//! - Overlaps and retransmissions: **first seen wins** (as BSD stacks and
//!   Suricata's default): bytes already delivered or buffered are never
//!   replaced by a later copy; only the new parts of a segment are kept.
//! - Out-of-order segments wait in a buffer bounded per stream and by a
//!   worker-wide memcap. A hole becomes a gap (skipped, counted, reported)
//!   when the peer has acknowledged past it while later data is waiting
//!   (the sender will never resend it: the sensor lost it), when the stream's
//!   buffer is full, when the stream ends, or when the worker's memcap is
//!   exceeded and this stream holds the most buffered bytes (the worker
//!   picks the victims with [`Limits::over_memcap`] and
//!   [`Stream::evict_buffer`]).
//! - Midstream pickup: without a SYN, the first segment's sequence number is
//!   the stream's start.
//! - Memory does not grow with the stream: in-order bytes are passed through
//!   without copying; only out-of-order bytes are held.

use std::collections::BTreeMap;

/// What the stream delivers, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next in-order bytes.
    Data(&'a [u8]),
    /// This many bytes are missing.
    Gap(u64),
}

/// Segments further than this beyond the next expected byte are not
/// buffered (they are from another sequence space: a reused port or junk).
const MAX_AHEAD: u64 = 1 << 30;

/// Counters of one stream (summed into `tcp.*` stats by the worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Holes skipped.
    pub gaps: u64,
    /// Bytes skipped in holes.
    pub gap_bytes: u64,
    /// Segments that carried only bytes already seen.
    pub duplicates: u64,
    /// Segments that partly overlapped bytes already seen.
    pub overlaps: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order: u64,
    /// Gaps forced by the per-stream buffer limit.
    pub ooo_limit: u64,
    /// Buffers evicted (their holes skipped) to bring the worker back
    /// under its memcap.
    pub memcap: u64,
    /// Segments ignored as too far outside the stream.
    pub out_of_window: u64,
}

/// Reassembly limits, and the worker-wide memory account they share.
#[derive(Debug)]
pub struct Limits {
    /// Out-of-order bytes one stream may hold.
    pub stream_max: usize,
    /// Out-of-order bytes all streams of a worker may hold.
    pub memcap: usize,
    /// Out-of-order bytes held now by all streams of the worker.
    pub used: usize,
}

impl Limits {
    /// Whether the streams together hold more than the memcap.
    pub fn over_memcap(&self) -> bool {
        self.used > self.memcap
    }

    /// Limits with nothing used yet.
    pub fn new(stream_max: usize, memcap: usize) -> Self {
        Limits {
            stream_max,
            memcap,
            used: 0,
        }
    }
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of stream offset 0 is `base`; `None` until the first
    /// segment (or SYN) is seen.
    base: Option<u32>,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Offset of the FIN, once seen.
    fin: Option<u64>,
    /// Buffered out-of-order bytes by offset; entries never overlap.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// Started without a SYN.
    pub midstream: bool,
    /// Counters.
    pub counters: StreamCounters,
    closed: bool,
}

impl Stream {
    /// A new, empty stream.
    pub fn new() -> Self {
        Stream::default()
    }

    /// Whether any segment or SYN has been seen.
    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    /// Bytes delivered or skipped so far.
    pub fn offset(&self) -> u64 {
        self.next
    }

    /// Whether the FIN was reached with every byte before it accounted for.
    pub fn finished(&self) -> bool {
        self.fin.is_some_and(|f| self.next >= f)
    }

    /// Whether [`Stream::close`] ran.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Out-of-order bytes held.
    pub fn buffered(&self) -> usize {
        self.ooo_bytes
    }

    /// Stream offset of sequence number `seq`, unwrapped near `next`.
    fn offset_of(&self, base: u32, seq: u32) -> i64 {
        let next_seq = base.wrapping_add(self.next as u32);
        let delta = i64::from(seq.wrapping_sub(next_seq) as i32);
        self.next as i64 + delta
    }

    /// One segment of this direction: its sequence number, SYN and FIN flags
    /// and payload. In-order bytes are passed to `out` at once.
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        limits: &mut Limits,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.closed {
            return;
        }
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let base = match self.base {
            Some(b) => b,
            None => {
                if !syn && payload.is_empty() && !fin {
                    // A bare ACK says where the stream is, but a later
                    // retransmission may start earlier; wait for data.
                    return;
                }
                self.midstream = !syn;
                self.base = Some(data_seq);
                data_seq
            }
        };
        let start = self.offset_of(base, data_seq);
        let end = start + payload.len() as i64;
        if fin && self.fin.is_none() && end >= self.next as i64 {
            self.fin = Some(end as u64);
        }
        if !payload.is_empty() {
            self.data(start, payload, limits, out);
        }
    }

    fn data(
        &mut self,
        start: i64,
        payload: &[u8],
        limits: &mut Limits,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let next = self.next as i64;
        let end = start + payload.len() as i64;
        if end <= next {
            self.counters.duplicates += 1;
            return;
        }
        if (start - next) as u64 > MAX_AHEAD && start > next {
            self.counters.out_of_window += 1;
            return;
        }
        let (start, payload) = if start < next {
            self.counters.overlaps += 1;
            (next, &payload[(next - start) as usize..])
        } else {
            (start, payload)
        };
        let start = start as u64;
        if start == self.next {
            // In order: pass through, then whatever it made contiguous.
            let fresh = self.trim_against_buffer(start, payload);
            if fresh.len() < payload.len() {
                // It runs into buffered bytes: keep what lies beyond them.
                let at = fresh.len();
                self.buffer(start + at as u64, &payload[at..], limits);
            }
            out(Chunk::Data(fresh));
            self.next += fresh.len() as u64;
            self.drain(limits, out);
            return;
        }
        self.counters.out_of_order += 1;
        self.buffer(start, payload, limits);
        if self.ooo_bytes > limits.stream_max {
            self.counters.ooo_limit += 1;
            self.skip_to_buffered(limits, out);
        }
    }

    /// The part of an in-order segment that precedes the first buffered
    /// segment it would overlap (buffered bytes win: they were seen first).
    fn trim_against_buffer<'p>(&self, start: u64, payload: &'p [u8]) -> &'p [u8] {
        match self.ooo.range(start..).next() {
            Some((&k, _)) if k < start + payload.len() as u64 => &payload[..(k - start) as usize],
            _ => payload,
        }
    }

    /// Keep the parts of `[start, start+len)` not already buffered.
    fn buffer(&mut self, start: u64, payload: &[u8], limits: &mut Limits) {
        let end = start + payload.len() as u64;
        let mut pos = start;
        // A buffered segment that begins before `start` may cover its head.
        if let Some((&k, v)) = self.ooo.range(..start).next_back() {
            let kend = k + v.len() as u64;
            if kend > pos {
                pos = kend;
            }
        }
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        for (&k, v) in self.ooo.range(start..end) {
            if k > pos {
                pieces.push((pos, k));
            }
            pos = pos.max(k + v.len() as u64);
        }
        if pos < end {
            pieces.push((pos, end));
        }
        let kept: u64 = pieces.iter().map(|(a, b)| b - a).sum();
        if kept < payload.len() as u64 {
            self.counters.overlaps += 1;
        }
        for (a, b) in pieces {
            let bytes = payload[(a - start) as usize..(b - start) as usize].to_vec();
            self.ooo_bytes += bytes.len();
            limits.used += bytes.len();
            self.ooo.insert(a, bytes);
        }
    }

    /// Deliver buffered segments that are now contiguous.
    fn drain(&mut self, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.ooo.first_entry() {
            let k = *entry.key();
            if k > self.next {
                break;
            }
            let v = entry.remove();
            self.ooo_bytes -= v.len();
            limits.used = limits.used.saturating_sub(v.len());
            let end = k + v.len() as u64;
            if end > self.next {
                let from = (self.next - k) as usize;
                out(Chunk::Data(&v[from..]));
                self.next = end;
            }
        }
    }

    /// Declare the hole before the first buffered segment a gap, then
    /// deliver what follows.
    fn skip_to_buffered(&mut self, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some((&k, _)) = self.ooo.first_key_value()
            && k > self.next
        {
            self.gap(k - self.next, out);
        }
        self.drain(limits, out);
    }

    fn gap(&mut self, len: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        self.counters.gaps += 1;
        self.counters.gap_bytes += len;
        out(Chunk::Gap(len));
        self.next += len;
    }

    /// The peer acknowledged up to `ack`: a hole below it that has later data
    /// waiting will never be resent, so it is skipped now.
    pub fn peer_ack(&mut self, ack: u32, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(base) = self.base else { return };
        if self.closed || self.ooo.is_empty() {
            return;
        }
        let acked = self.offset_of(base, ack);
        if acked <= self.next as i64 {
            return;
        }
        let Some((&k, _)) = self.ooo.first_key_value() else {
            return;
        };
        if (k as i64) <= acked {
            self.skip_to_buffered(limits, out);
        }
    }

    /// The stream ends (FIN reached, RST, timeout or shutdown): buffered
    /// bytes are delivered with the holes before them as gaps, and a FIN
    /// beyond the last byte seen adds a final gap.
    pub fn close(&mut self, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if self.closed {
            return;
        }
        while !self.ooo.is_empty() {
            self.skip_to_buffered(limits, out);
        }
        if let Some(f) = self.fin
            && f > self.next
        {
            self.gap(f - self.next, out);
        }
        self.closed = true;
    }

    /// The worker is over its memcap and this stream holds the most: every
    /// hole before buffered data becomes a gap and the buffered bytes are
    /// delivered, freeing the whole buffer (counted in `memcap`).
    pub fn evict_buffer(&mut self, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if self.ooo.is_empty() {
            return;
        }
        self.counters.memcap += 1;
        while !self.ooo.is_empty() {
            self.skip_to_buffered(limits, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segs: &[(u32, &[u8])], syn_isn: Option<u32>) -> (Vec<u8>, u64) {
        let mut s = Stream::new();
        let mut lim = Limits::new(1 << 20, 1 << 20);
        let mut data = Vec::new();
        let mut gaps = 0;
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data(b) => data.extend_from_slice(b),
            Chunk::Gap(n) => gaps += n,
        };
        if let Some(isn) = syn_isn {
            s.segment(isn, true, false, &[], &mut lim, &mut out);
        }
        for (seq, p) in segs {
            s.segment(*seq, false, false, p, &mut lim, &mut out);
        }
        s.close(&mut lim, &mut out);
        assert_eq!(lim.used, 0);
        (data, gaps)
    }

    #[test]
    fn reorders_and_dedups_across_wrap() {
        let isn = u32::MAX - 5;
        let b = isn.wrapping_add(1);
        let segs: Vec<(u32, &[u8])> = vec![
            (b.wrapping_add(4), b"efgh"),
            (b, b"abcd"),
            (b, b"abcd"),
            (b.wrapping_add(2), b"cdefghij"),
        ];
        let (data, gaps) = run(&segs, Some(isn));
        assert_eq!(data, b"abcdefghij");
        assert_eq!(gaps, 0);
    }

    #[test]
    fn first_seen_wins_on_overlap() {
        let segs: Vec<(u32, &[u8])> = vec![(104, b"EFGH"), (100, b"abcdXXXXij")];
        let (data, _) = run(&segs, Some(99));
        assert_eq!(data, b"abcdEFGHij");
    }

    #[test]
    fn hole_becomes_gap_at_close() {
        let segs: Vec<(u32, &[u8])> = vec![(100, b"ab"), (106, b"gh")];
        let (data, gaps) = run(&segs, None);
        assert_eq!(data, b"abgh");
        assert_eq!(gaps, 4);
    }

    #[test]
    fn ack_past_hole_skips_it() {
        let mut s = Stream::new();
        let mut lim = Limits::new(1 << 20, 1 << 20);
        let mut got = Vec::new();
        let mut out = |c: Chunk<'_>| got.push(format!("{c:?}"));
        s.segment(10, false, false, b"ab", &mut lim, &mut out);
        s.segment(20, false, false, b"cd", &mut lim, &mut out);
        s.peer_ack(22, &mut lim, &mut out);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1], "Gap(8)");
    }
}
