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
//! - Overlaps and retransmissions: bytes already delivered are final (the
//!   host, too, never replaces bytes it has taken in order). Where a segment
//!   overlaps buffered out-of-order bytes, the receiving host's [`OsPolicy`]
//!   decides whose bytes stay, per buffered segment, as Suricata's
//!   `host-os-policy` does (BSD by default: the new copy wins only where it
//!   starts before the old one). Overlapping bytes that differ — from the
//!   buffer, or from the delivered bytes the peer has not acknowledged yet,
//!   which are kept for the comparison up to [`Limits::retain_max`] — are
//!   counted (`overlap_diff`): the flow raises Suricata's
//!   `stream-event:reassembly_overlap_different_data`.
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

use std::collections::{BTreeMap, VecDeque};

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
    /// Segments whose bytes differ from bytes already seen at the same
    /// offsets (buffered, or delivered and kept for comparison).
    pub overlap_diff: u64,
    /// Segments held back (TTL below the flow's) until acknowledged or
    /// replaced.
    pub held: u64,
    /// Urgent bytes taken out of the stream (out of band).
    pub urgent_oob: u64,
    /// Resets ignored: their sequence number was not the expected one.
    pub rst_invalid: u64,
    /// SYN payloads dropped: the SYN-ACK did not acknowledge them.
    pub syn_data_ignored: u64,
}

/// Reassembly limits, and the worker-wide memory account they share.
#[derive(Debug)]
pub struct Limits {
    /// Out-of-order bytes one stream may hold.
    pub stream_max: usize,
    /// Out-of-order bytes all streams of a worker may hold.
    pub memcap: usize,
    /// Out-of-order bytes held now by all streams of the worker, and
    /// delivered bytes kept for comparison.
    pub used: usize,
    /// Delivered bytes one stream keeps, until the peer acknowledges them,
    /// to compare retransmissions with (0 = none).
    pub retain_max: usize,
    /// Emptied retention buffers kept for the next stream that needs one
    /// (at most [`SPARE_BUFFERS`]): a stream's kept bytes empty at every
    /// acknowledgment, and allocating its buffer again each time cost more
    /// than the copying it holds (thousands of connections at once).
    spare: Vec<VecDeque<u8>>,
}

/// Most emptied retention buffers a worker keeps for reuse: their memory
/// (each at most about twice `retain_max`) is bounded by this, not by the
/// number of streams.
pub const SPARE_BUFFERS: usize = 64;

/// Capacity a new retention buffer starts with (a few segments: most
/// streams are acknowledged every two).
const FIRST_RETAIN_CAPACITY: usize = 8 << 10;

impl Limits {
    /// Whether the streams together hold more than the memcap.
    pub fn over_memcap(&self) -> bool {
        self.used > self.memcap
    }

    /// Limits with nothing used yet, keeping 64 KiB of delivered bytes per
    /// stream for comparison.
    pub fn new(stream_max: usize, memcap: usize) -> Self {
        Limits {
            stream_max,
            memcap,
            used: 0,
            retain_max: 64 << 10,
            spare: Vec::new(),
        }
    }

    /// An empty retention buffer: a spare one, or a new one with room for
    /// `want` bytes and at least a few segments.
    fn retain_buffer(&mut self, want: usize) -> VecDeque<u8> {
        self.spare.pop().unwrap_or_else(|| {
            VecDeque::with_capacity(want.max(FIRST_RETAIN_CAPACITY).min(self.retain_max))
        })
    }

    /// Keep an emptied retention buffer for reuse, or free it.
    fn recycle(&mut self, mut buf: VecDeque<u8>) {
        if buf.capacity() > 0 && self.spare.len() < SPARE_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

/// Whose bytes stay where TCP segments overlap, by the receiving host's
/// operating system: Suricata's `host-os-policy` names and rules
/// (`stream-tcp-list.c`), judged per buffered segment. `new` is the arriving
/// segment, `old` a buffered one it overlaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OsPolicy {
    /// The old bytes always stay.
    First,
    /// The new bytes always win.
    Last,
    /// BSD (Suricata's default): the new bytes win where the new segment
    /// starts before the old one.
    #[default]
    Bsd,
    /// As BSD.
    Hpux10,
    /// As BSD.
    Irix,
    /// As BSD.
    Macos,
    /// As BSD.
    Windows,
    /// As BSD.
    Windows2k3,
    /// As `first`.
    Vista,
    /// Linux: as BSD, and also where both start together and the new one
    /// ends later.
    Linux,
    /// Linux 2.4: as BSD, and also where both start together and the new
    /// one ends no earlier.
    OldLinux,
    /// Solaris: the new bytes win where the new segment ends no earlier
    /// than the old one, unless it starts later and ends together.
    Solaris,
    /// As Solaris.
    Hpux11,
}

impl OsPolicy {
    /// The name in the configuration (and in alert evidence).
    pub fn as_str(self) -> &'static str {
        match self {
            OsPolicy::First => "first",
            OsPolicy::Last => "last",
            OsPolicy::Bsd => "bsd",
            OsPolicy::Hpux10 => "hpux10",
            OsPolicy::Irix => "irix",
            OsPolicy::Macos => "macos",
            OsPolicy::Windows => "windows",
            OsPolicy::Windows2k3 => "windows2k3",
            OsPolicy::Vista => "vista",
            OsPolicy::Linux => "linux",
            OsPolicy::OldLinux => "old_linux",
            OsPolicy::Solaris => "solaris",
            OsPolicy::Hpux11 => "hpux11",
        }
    }

    /// Whether segment `new` (start, end) replaces the bytes of the earlier
    /// segment `old` where they overlap.
    pub fn new_wins(self, new: (u64, u64), old: (u64, u64)) -> bool {
        let ((ns, ne), (os, oe)) = (new, old);
        match self {
            OsPolicy::First | OsPolicy::Vista => false,
            OsPolicy::Last => true,
            OsPolicy::Bsd
            | OsPolicy::Hpux10
            | OsPolicy::Irix
            | OsPolicy::Macos
            | OsPolicy::Windows
            | OsPolicy::Windows2k3 => ns < os,
            OsPolicy::Linux => ns < os || (ns == os && ne > oe),
            OsPolicy::OldLinux => ns < os || (ns == os && ne >= oe),
            OsPolicy::Solaris | OsPolicy::Hpux11 => (ns <= os && ne >= oe) || (ns > os && ne > oe),
        }
    }
}

/// Buffered bytes: a stretch of one segment, and that segment's bounds
/// (what the policy judges by).
#[derive(Debug)]
struct Piece {
    data: Vec<u8>,
    seg: (u64, u64),
    /// Held back until acknowledged or replaced by a segment not held.
    held: bool,
}

/// Urgent (out-of-band) byte offsets remembered at once per stream.
const MAX_URGENT: usize = 8;

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
    ooo: BTreeMap<u64, Piece>,
    ooo_bytes: usize,
    /// The last delivered bytes, up to `next`, that the peer has not
    /// acknowledged (at most [`Limits::retain_max`]).
    sent: VecDeque<u8>,
    /// Whose bytes stay in overlaps with buffered bytes.
    policy: OsPolicy,
    /// Highest offset the peer acknowledged.
    acked: u64,
    /// Offsets of urgent bytes not delivered yet, taken out of the stream.
    urgent: Vec<u64>,
    /// Started without a SYN.
    pub midstream: bool,
    /// Counters.
    pub counters: StreamCounters,
    /// Offset of the first byte that differed from an earlier copy, and
    /// whether the later copy won there.
    pub first_difference: Option<(u64, bool)>,
    closed: bool,
}

impl Stream {
    /// A new, empty stream (BSD policy).
    pub fn new() -> Self {
        Stream::default()
    }

    /// A new, empty stream toward a host whose overlaps follow `policy`.
    pub fn with_policy(policy: OsPolicy) -> Self {
        Stream {
            policy,
            ..Stream::default()
        }
    }

    /// The overlap policy.
    pub fn policy(&self) -> OsPolicy {
        self.policy
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

    /// Delivered bytes kept for comparison.
    pub fn retained(&self) -> usize {
        self.sent.len()
    }

    /// The sequence number the sender uses next by the sensor's account:
    /// after the last byte delivered, and after the FIN once reached.
    pub fn next_seq(&self) -> Option<u32> {
        let fin = u32::from(self.finished());
        self.base
            .map(|b| b.wrapping_add(self.next as u32).wrapping_add(fin))
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
            self.data(start, payload, false, limits, out);
        }
    }

    /// A segment whose bytes are held back, not delivered, until the peer
    /// acknowledges them or a segment not held replaces them (whatever the
    /// policy): its TTL is well below the flow's, so it may expire before
    /// the host. Held bytes never replace bytes not held.
    pub fn segment_held(
        &mut self,
        seq: u32,
        payload: &[u8],
        limits: &mut Limits,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if self.closed || payload.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert_with(|| {
            self.midstream = true;
            seq
        });
        let start = self.offset_of(base, seq);
        self.counters.held += 1;
        self.data(start, payload, true, limits, out);
    }

    /// The urgent pointer `ptr` of a segment at `seq` (not a SYN): the byte
    /// before it (RFC 6093: where BSD and Linux put the urgent byte) is
    /// taken out of the stream, as the host's socket does without
    /// `SO_OOBINLINE`.
    pub fn urgent(&mut self, seq: u32, ptr: u16) {
        let Some(p) = ptr.checked_sub(1) else {
            return;
        };
        let base = *self.base.get_or_insert_with(|| {
            self.midstream = true;
            seq
        });
        let at = self.offset_of(base, seq.wrapping_add(u32::from(p)));
        if at < self.next as i64 || self.urgent.contains(&(at as u64)) {
            return;
        }
        if self.urgent.len() >= MAX_URGENT {
            self.urgent.remove(0);
        }
        self.urgent.push(at as u64);
    }

    fn data(
        &mut self,
        start: i64,
        payload: &[u8],
        held: bool,
        limits: &mut Limits,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let next = self.next as i64;
        let end = start + payload.len() as i64;
        if start < next {
            let seen = (end.min(next) - start) as usize;
            self.compare_sent(start, &payload[..seen]);
        }
        if end <= next {
            self.counters.duplicates += 1;
            return;
        }
        if (start - next) as u64 > MAX_AHEAD && start > next {
            self.counters.out_of_window += 1;
            return;
        }
        let seg = (start.max(0) as u64, end as u64);
        let (start, payload) = if start < next {
            self.counters.overlaps += 1;
            (next, &payload[(next - start) as usize..])
        } else {
            (start, payload)
        };
        let start = start as u64;
        let reaches_buffer = self
            .ooo
            .first_key_value()
            .is_some_and(|(&k, _)| k < start + payload.len() as u64);
        if start == self.next && !reaches_buffer && !held {
            // In order, nothing buffered in its way: pass through.
            self.deliver(payload, limits, out);
            return;
        }
        if start != self.next {
            self.counters.out_of_order += 1;
        }
        self.buffer(start, payload, seg, held, limits);
        if start == self.next {
            self.drain(false, limits, out);
        }
        if self.ooo_bytes > limits.stream_max {
            self.counters.ooo_limit += 1;
            self.skip_to_buffered(true, limits, out);
        }
    }

    /// Hand in-order bytes to `out` (less urgent bytes), keeping the last
    /// of them for comparison.
    fn deliver(&mut self, bytes: &[u8], limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        let end = self.next + bytes.len() as u64;
        if self.urgent.iter().any(|u| (self.next..end).contains(u)) {
            let mut from = 0usize;
            let mut oob: Vec<u64> = Vec::new();
            self.urgent.retain(|u| {
                let inside = (self.next..end).contains(u);
                if inside {
                    oob.push(*u);
                }
                !inside && *u >= end
            });
            oob.sort_unstable();
            for u in oob {
                let at = (u - self.next) as usize;
                if at > from {
                    out(Chunk::Data(&bytes[from..at]));
                }
                from = at + 1;
                self.counters.urgent_oob += 1;
            }
            if from < bytes.len() {
                out(Chunk::Data(&bytes[from..]));
            }
        } else {
            out(Chunk::Data(bytes));
        }
        self.next = end;
        if limits.retain_max == 0 {
            return;
        }
        let keep = bytes.len().min(limits.retain_max);
        let over = (self.sent.len() + keep).saturating_sub(limits.retain_max);
        self.forget_sent(over, limits);
        if self.sent.capacity() == 0 {
            self.sent = limits.retain_buffer(keep);
        }
        self.sent.extend(&bytes[bytes.len() - keep..]);
        limits.used += keep;
    }

    /// Forget the oldest `n` delivered bytes kept.
    fn forget_sent(&mut self, n: usize, limits: &mut Limits) {
        let n = n.min(self.sent.len());
        self.sent.drain(..n);
        limits.used = limits.used.saturating_sub(n);
        if self.sent.is_empty() {
            limits.recycle(std::mem::take(&mut self.sent));
        }
    }

    /// Compare bytes arriving again at `start` (before `next`) with the
    /// delivered bytes kept there.
    fn compare_sent(&mut self, start: i64, bytes: &[u8]) {
        let kept_from = self.next as i64 - self.sent.len() as i64;
        let from = start.max(kept_from);
        let to = start + bytes.len() as i64;
        if from >= to {
            return;
        }
        let (a, b) = self.sent.as_slices();
        let at = (from - kept_from) as usize;
        let theirs = &bytes[(from - start) as usize..];
        let differs = theirs.iter().enumerate().position(|(i, x)| {
            let j = at + i;
            let ours = if j < a.len() { a[j] } else { b[j - a.len()] };
            ours != *x
        });
        if let Some(i) = differs {
            self.differ(from as u64 + i as u64, false);
        }
    }

    /// A segment differed from an earlier copy at `offset` (`new_won`:
    /// the later copy's bytes were kept).
    fn differ(&mut self, offset: u64, new_won: bool) {
        self.counters.overlap_diff += 1;
        self.first_difference.get_or_insert((offset, new_won));
    }

    /// Buffer `payload` at `start` (from the segment `seg`; `held`: held
    /// back): where it overlaps buffered bytes the policy decides, per
    /// buffered segment, whose bytes stay — except that bytes not held
    /// always replace held ones, and held ones never replace others; the
    /// rest is added.
    fn buffer(
        &mut self,
        start: u64,
        payload: &[u8],
        seg: (u64, u64),
        held: bool,
        limits: &mut Limits,
    ) {
        let end = start + payload.len() as u64;
        // Pieces straddling either end are cut there, so that every piece
        // overlapped lies inside; each keeps its segment's bounds.
        self.split_at(start);
        self.split_at(end);
        let policy = self.policy;
        let mut difference: Option<(u64, bool)> = None;
        let mut covered: Vec<(u64, u64)> = Vec::new();
        for (&k, piece) in self.ooo.range_mut(start..end) {
            let b = k + piece.data.len() as u64;
            covered.push((k, b));
            let new = &payload[(k - start) as usize..(b - start) as usize];
            let wins = match (held, piece.held) {
                (false, true) => true,
                (true, false) => false,
                _ => policy.new_wins(seg, piece.seg),
            };
            if piece.data != new && difference.is_none() {
                let i = piece.data.iter().zip(new).position(|(x, y)| x != y);
                difference = Some((k + i.unwrap_or(0) as u64, wins));
            }
            if wins {
                piece.data.copy_from_slice(new);
                piece.held = held;
            }
        }
        if let Some((at, wins)) = difference {
            self.differ(at, wins);
        }
        if !covered.is_empty() {
            self.counters.overlaps += 1;
        }
        let mut pos = start;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        for (a, b) in covered {
            if a > pos {
                pieces.push((pos, a));
            }
            pos = pos.max(b);
        }
        if pos < end {
            pieces.push((pos, end));
        }
        for (a, b) in pieces {
            let data = payload[(a - start) as usize..(b - start) as usize].to_vec();
            self.ooo_bytes += data.len();
            limits.used += data.len();
            self.ooo.insert(a, Piece { data, seg, held });
        }
    }

    /// Cut the buffered piece that spans offset `at`, if any, in two there.
    fn split_at(&mut self, at: u64) {
        let Some((&k, piece)) = self.ooo.range_mut(..at).next_back() else {
            return;
        };
        if k + piece.data.len() as u64 <= at {
            return;
        }
        let tail = piece.data.split_off((at - k) as usize);
        let (seg, held) = (piece.seg, piece.held);
        self.ooo.insert(
            at,
            Piece {
                data: tail,
                seg,
                held,
            },
        );
    }

    /// Deliver buffered segments that are now contiguous; held ones only
    /// once acknowledged, or when `force`d.
    fn drain(&mut self, force: bool, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.ooo.first_entry() {
            let k = *entry.key();
            if k > self.next {
                break;
            }
            let p = entry.get();
            if p.held && !force && self.acked < k + p.data.len() as u64 {
                break;
            }
            let piece = entry.remove();
            self.ooo_bytes -= piece.data.len();
            limits.used = limits.used.saturating_sub(piece.data.len());
            let end = k + piece.data.len() as u64;
            if end > self.next {
                let from = (self.next - k) as usize;
                self.deliver(&piece.data[from..], limits, out);
            }
        }
    }

    /// Declare the hole before the first buffered segment a gap, then
    /// deliver what follows (held bytes too when `force`d).
    fn skip_to_buffered(
        &mut self,
        force: bool,
        limits: &mut Limits,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if let Some((&k, _)) = self.ooo.first_key_value()
            && k > self.next
        {
            self.gap(k - self.next, limits, out);
        }
        self.drain(force, limits, out);
    }

    fn gap(&mut self, len: u64, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        self.counters.gaps += 1;
        self.counters.gap_bytes += len;
        out(Chunk::Gap(len));
        self.next += len;
        // What was kept no longer ends at `next`.
        self.forget_sent(self.sent.len(), limits);
    }

    /// The peer acknowledged up to `ack`: delivered bytes below it need no
    /// comparison any more, and a hole below it that has later data waiting
    /// will never be resent, so it is skipped now.
    pub fn peer_ack(&mut self, ack: u32, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(base) = self.base else { return };
        if self.closed {
            return;
        }
        let acked = self.offset_of(base, ack);
        let next = self.next as i64;
        if !self.sent.is_empty() && acked > next - self.sent.len() as i64 {
            let n = (acked.min(next) - (next - self.sent.len() as i64)) as usize;
            self.forget_sent(n, limits);
        }
        if acked > self.acked as i64 && acked <= next + MAX_AHEAD as i64 {
            self.acked = acked as u64;
        }
        if self.ooo.is_empty() || acked <= next {
            return;
        }
        let Some((&k, _)) = self.ooo.first_key_value() else {
            return;
        };
        if (k as i64) <= acked {
            self.skip_to_buffered(false, limits, out);
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
            self.skip_to_buffered(true, limits, out);
        }
        if let Some(f) = self.fin
            && f > self.next
        {
            self.gap(f - self.next, limits, out);
        }
        self.forget_sent(self.sent.len(), limits);
        self.closed = true;
    }

    /// Forget the delivered bytes kept for comparison (the worker is over
    /// its memcap: these go first, they cost no gap).
    pub fn drop_retained(&mut self, limits: &mut Limits) {
        self.forget_sent(self.sent.len(), limits);
    }

    /// The worker is over its memcap and this stream holds the most: every
    /// hole before buffered data becomes a gap and the buffered bytes are
    /// delivered, freeing the whole buffer (counted in `memcap`) — and none
    /// of it is kept for comparison.
    pub fn evict_buffer(&mut self, limits: &mut Limits, out: &mut dyn FnMut(Chunk<'_>)) {
        if self.ooo.is_empty() {
            return;
        }
        self.counters.memcap += 1;
        while !self.ooo.is_empty() {
            self.skip_to_buffered(true, limits, out);
        }
        self.drop_retained(limits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segs: &[(u32, &[u8])], syn_isn: Option<u32>) -> (Vec<u8>, u64) {
        let (data, gaps, _) = run_with(OsPolicy::Bsd, segs, syn_isn);
        (data, gaps)
    }

    /// The stream `segs` give under `policy`: bytes, gap bytes, and the
    /// first differing offset.
    fn run_with(
        policy: OsPolicy,
        segs: &[(u32, &[u8])],
        syn_isn: Option<u32>,
    ) -> (Vec<u8>, u64, Option<(u64, bool)>) {
        let mut s = Stream::with_policy(policy);
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
        (data, gaps, s.first_difference)
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
    fn buffered_overlaps_follow_the_receivers_policy() {
        // Buffered "EFGH" at 4..8; then a segment starting before it.
        let before: Vec<(u32, &[u8])> = vec![(104, b"EFGH"), (100, b"abcdXXXXij")];
        // Buffered "EFGH" at 4..8; then one starting with it, longer.
        let same: Vec<(u32, &[u8])> = vec![(104, b"EFGH"), (104, b"XXXXij"), (100, b"abcd")];
        // Buffered "EFGH" at 4..8; then one starting inside, longer.
        let after: Vec<(u32, &[u8])> = vec![(104, b"EFGH"), (106, b"XXij"), (100, b"abcd")];
        for (policy, want) in [
            (OsPolicy::First, ["abcdEFGHij", "abcdEFGHij", "abcdEFGHij"]),
            (OsPolicy::Vista, ["abcdEFGHij", "abcdEFGHij", "abcdEFGHij"]),
            (OsPolicy::Last, ["abcdXXXXij", "abcdXXXXij", "abcdEFXXij"]),
            (OsPolicy::Bsd, ["abcdXXXXij", "abcdEFGHij", "abcdEFGHij"]),
            (
                OsPolicy::Windows,
                ["abcdXXXXij", "abcdEFGHij", "abcdEFGHij"],
            ),
            (OsPolicy::Linux, ["abcdXXXXij", "abcdXXXXij", "abcdEFGHij"]),
            (
                OsPolicy::OldLinux,
                ["abcdXXXXij", "abcdXXXXij", "abcdEFGHij"],
            ),
            (
                OsPolicy::Solaris,
                ["abcdXXXXij", "abcdXXXXij", "abcdEFXXij"],
            ),
        ] {
            for (segs, want) in [&before, &same, &after].into_iter().zip(want) {
                let (data, gaps, diff) = run_with(policy, segs, Some(99));
                assert_eq!(String::from_utf8_lossy(&data), want, "{policy:?} {segs:?}");
                assert_eq!(gaps, 0);
                let (at, new_won) = diff.expect("the difference is seen");
                assert!((4..8).contains(&at), "{policy:?}: {at}");
                assert_eq!(new_won, !want.contains("GH"), "{policy:?}");
            }
        }
    }

    #[test]
    fn delivered_bytes_are_final_and_compared_until_acked() {
        let mut s = Stream::new();
        let mut lim = Limits::new(1 << 20, 1 << 20);
        let mut data = Vec::new();
        let mut out = |c: Chunk<'_>| {
            if let Chunk::Data(b) = c {
                data.extend_from_slice(b)
            }
        };
        s.segment(99, true, false, &[], &mut lim, &mut out);
        s.segment(100, false, false, b"junk", &mut lim, &mut out);
        s.segment(100, false, false, b"junk", &mut lim, &mut out);
        assert_eq!(s.first_difference, None, "the same bytes again");
        assert_eq!(lim.used, 4);
        s.segment(100, false, false, b"realdata", &mut lim, &mut out);
        assert_eq!(s.first_difference, Some((0, false)));
        assert_eq!(s.counters.overlap_diff, 1);
        // Acknowledged bytes are no longer kept (nor compared).
        s.peer_ack(106, &mut lim, &mut out);
        assert_eq!((s.retained(), lim.used), (2, 2));
        s.segment(100, false, false, b"XXXXXXta", &mut lim, &mut out);
        assert_eq!(s.counters.overlap_diff, 1);
        s.close(&mut lim, &mut out);
        assert_eq!(data, b"junkdata");
        assert_eq!(lim.used, 0);
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
