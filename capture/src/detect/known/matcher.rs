//! Matching objects against the known-weights index: a rolling FastCDC over
//! each object's bytes (re-synchronising after gaps and at any starting
//! offset), each chunk's xxh3 looked up in the index.
//!
//! **Sampled scanning.** Chunking every byte costs about as much as the rest
//! of the engine, so only an object's first `known_full_scan_bytes` (4 MiB)
//! are chunked in full; beyond them, windows of `known_window_bytes`
//! (512 KiB) every `known_window_stride_bytes` (8 MiB) are, and the rest is
//! skipped without being copied. Each window starts a fresh chunker that
//! re-synchronises with the file's cut points after a chunk or two, exactly
//! as after a gap. What this keeps:
//! - a file sent whole or in part (30 %) as its own object: its first 4 MiB
//!   are read in full;
//! - a file at any offset inside another stream, or a member of an
//!   uncompressed tar/zip, at least `stride + window` (8.5 MiB) long: at
//!   least one whole window falls inside it (real shards are 100s of MB and
//!   get one window per 8 MiB);
//! - coverage: matched bytes in the windows are scaled by the object bytes
//!   the windows stand for (the sampled region's length ÷ the bytes of its
//!   windows' re-synchronised chunks), reported with `coverage_estimated`.
//!
//! Setting the stride equal to the window scans every byte.
//!
//! An object with fewer than `known_min_chunks` matched chunks of a file
//! alerts only when its sender's tally of that file across objects
//! ([`super::hosts`]) has reached the threshold.
//!
//! The chunk spanning the cut between two consecutive objects of one
//! (sender, receiver) pair is matched by stitching ([`super::stitch`]): an
//! object whose first bytes are chunked in full offers them as its head,
//! and at its end it offers the bytes after its last cut as its tail.

use super::hosts::{HostMatches, HostVerdict};
use super::ranges::FileRanges;
use super::stitch::{End, Piece, Stitches};
use super::{ChunkEntry, Chunker, Index, low_information};
use crate::detect::config::DetectConfig;
use crate::detect::{Detector, Finding, ObjectScan, sig};
use crate::object::{ObjectEnd, ObjectMeta, Origin};
use eve::{AlertCategory, Evidence};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Distinct registered files tracked per object (bounds memory).
const MAX_FILES_PER_OBJECT: usize = 64;
/// Matched chunk offsets kept per file per object (for the host tally,
/// which needs only `known_min_chunks` of them).
const MAX_OFFSETS_PER_FILE: usize = 16;
/// File ranges of chunks spanning the cut from the previous object kept
/// per file per object (the first chunk or two of an object span it).
const MAX_STITCHED_PER_FILE: usize = 32;

/// Which byte offsets of an object are chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    /// Every byte below this offset is scanned.
    full: u64,
    /// Beyond `full`: window length …
    window: u64,
    /// … and distance between window starts.
    stride: u64,
}

/// The region an offset falls in and where that region ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// Full-scan prefix ending at this offset (`u64::MAX` when every byte
    /// is scanned); the first window follows it without a restart.
    Full(u64),
    /// A sampled window ending at this offset.
    Window(u64),
    /// Skipped bytes up to this offset.
    Skip(u64),
}

impl Plan {
    fn from_config(cfg: &DetectConfig) -> Self {
        let window = cfg.known_window_bytes.max(1);
        Plan {
            full: cfg.known_full_scan_bytes,
            window,
            stride: cfg.known_window_stride_bytes.max(window),
        }
    }

    /// The spans of an object's first `end` bytes this plan skips (none
    /// when every byte is scanned); at most 65 536 (512 GiB of 8 MiB
    /// strides: an alert leaves long before).
    fn skipped(&self, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let sampled = self.stride > self.window;
        (0..65_536u64).map_while(move |k| {
            let s = self
                .full
                .checked_add(k.checked_mul(self.stride)?)?
                .checked_add(self.window)?;
            (sampled && s < end).then(|| (s, s.saturating_add(self.stride - self.window).min(end)))
        })
    }

    fn region(&self, off: u64) -> Region {
        if self.stride <= self.window {
            return Region::Full(u64::MAX);
        }
        if off < self.full {
            return Region::Full(self.full);
        }
        let rel = off - self.full;
        let base = self.full + rel / self.stride * self.stride;
        if rel % self.stride < self.window {
            Region::Window(base.saturating_add(self.window))
        } else {
            Region::Skip(base.saturating_add(self.stride))
        }
    }
}

/// The known-weights detector.
pub struct KnownWeightsDetector {
    index: Arc<Index>,
    cfg: Arc<DetectConfig>,
    hosts: Option<Arc<HostMatches>>,
    stitches: Option<Arc<Stitches>>,
}

impl KnownWeightsDetector {
    /// A detector over `index`.
    pub fn new(index: Arc<Index>, cfg: Arc<DetectConfig>) -> Self {
        let hosts = (cfg.known_host_window_secs > 0).then(|| {
            Arc::new(HostMatches::new(
                cfg.known_host_window_secs,
                cfg.known_min_chunks,
            ))
        });
        let stitches = (cfg.known_stitch_secs > 0)
            .then(|| Arc::new(Stitches::new(cfg.known_stitch_secs, cfg.known_stitch_bytes)));
        KnownWeightsDetector {
            index,
            cfg,
            hosts,
            stitches,
        }
    }
}

impl Detector for KnownWeightsDetector {
    fn name(&self) -> &'static str {
        "known_weights"
    }

    fn begin(&self, meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>> {
        if self.index.chunks.is_empty() {
            return None;
        }
        Some(Box::new(KnownScan {
            chunker: Chunker::new(self.index.params),
            plan: Plan::from_config(&self.cfg),
            index: self.index.clone(),
            cfg: self.cfg.clone(),
            hosts: self.hosts.clone(),
            stitches: self.stitches.clone(),
            id: u64::MAX,
            head: false,
            origin: meta.origin,
            next: None,
            gapped: false,
            tally: Tally::default(),
            done: false,
        }))
    }
}

/// Matched chunks of one registered file.
#[derive(Clone, Copy, Default)]
struct Hits {
    chunks: u32,
    /// Matched bytes in the full-scan prefix.
    full: u64,
    /// Matched bytes in sampled windows.
    sampled: u64,
    /// Matched chunks that began in the previous object of the pair.
    stitched: u32,
}

impl Hits {
    fn bytes(&self) -> u64 {
        self.full + self.sampled
    }
}

/// What the chunk callback updates.
#[derive(Default)]
struct Tally {
    hits: HashMap<u32, Hits>,
    /// Object bytes seen (offsets, gaps excluded).
    seen: u64,
    /// Bytes handed to the chunker.
    scanned: u64,
    /// Object bytes seen at or beyond the full-scan prefix.
    sparse_seen: u64,
    /// Bytes of window chunks that can match (not the first chunk of a
    /// window, whose start is arbitrary, nor its cut-off tail).
    sparse_eligible: u64,
    /// Whether the chunker is in a sampled window.
    in_window: bool,
    /// The next chunk is the first since the chunker was (re)started.
    first: bool,
    /// Length of the last chunk, if it counted as eligible.
    last_eligible: u64,
    /// Object offset of the next chunk the chunker emits.
    pos: u64,
    /// Whether the chunker is in a run of contiguous bytes, and the
    /// object offsets where that run started and where its data ends.
    run_open: bool,
    run_start: u64,
    data_end: u64,
    /// The bytes of each matched file the object carried.
    ranges: HashMap<u32, FileRanges>,
    /// File offsets of each file's matched chunks (the first few).
    offsets: HashMap<u32, Vec<u64>>,
    /// File bytes of matched chunks that a neighbouring object of the pair
    /// carried (stitched chunks).
    stitched: HashMap<u32, Vec<[u64; 2]>>,
    /// Whether the last chunk emitted matched a registered file.
    last_matched: bool,
}

impl Tally {
    fn on_chunk(&mut self, index: &Index, c: &[u8]) {
        let at = self.pos;
        self.pos += c.len() as u64;
        self.last_matched = false;
        let first = std::mem::replace(&mut self.first, false);
        self.last_eligible = 0;
        if self.in_window && !first {
            self.sparse_eligible += c.len() as u64;
            self.last_eligible = c.len() as u64;
        }
        let h = xxh3_64(c);
        if !index.sampled(h) {
            return;
        }
        let entries = index.lookup(h);
        if entries.is_empty() || low_information(c) {
            return;
        }
        let max = u64::from(index.params.max);
        for e in entries.iter().filter(|e| e.len as usize == c.len()) {
            self.last_matched |= self.credit(e, at, e.offset, c.len() as u64, None, max);
        }
    }

    /// File bytes `r` of `file` that a neighbouring object of the pair
    /// carried were matched (merged with the last such range when touching).
    fn other(&mut self, file: u32, r: [u64; 2]) {
        let s = self.stitched.entry(file).or_default();
        let room = s.len() < MAX_STITCHED_PER_FILE;
        match s.last_mut() {
            Some(last) if last[1] == r[0] => last[1] = r[1],
            _ if room => s.push(r),
            _ => {}
        }
    }

    /// Count matched chunk `e` for the object: its object bytes
    /// `[at, at + own)` are file bytes from `file_at`; `other` the file
    /// bytes of it another object of the pair carried (a stitched chunk).
    /// False when the object already tracks too many files.
    fn credit(
        &mut self,
        e: &ChunkEntry,
        at: u64,
        file_at: u64,
        own: u64,
        other: Option<[u64; 2]>,
        max: u64,
    ) -> bool {
        if !self.hits.contains_key(&e.file) && self.hits.len() >= MAX_FILES_PER_OBJECT {
            return false;
        }
        self.ranges
            .entry(e.file)
            .or_default()
            .matched(at, file_at, own, self.run_start, max);
        if let Some(o) = other {
            self.other(e.file, o);
        }
        let offs = self.offsets.entry(e.file).or_default();
        if offs.len() < MAX_OFFSETS_PER_FILE {
            offs.push(e.offset);
        }
        let hit = self.hits.entry(e.file).or_default();
        hit.chunks += 1;
        hit.stitched += u32::from(other.is_some());
        if self.in_window {
            hit.sampled += own;
        } else {
            hit.full += own;
        }
        true
    }

    /// Estimated bytes of `hit`'s file in the object: full-prefix matches
    /// plus window matches scaled to the sampled region, times the index
    /// sample, at most the file's size.
    fn estimate(&self, hit: &Hits, sample: u32, size: u64) -> u64 {
        let sampled = if hit.sampled == 0 || self.sparse_eligible == 0 {
            0.0
        } else {
            hit.sampled as f64 * (self.sparse_seen as f64 / self.sparse_eligible as f64).max(1.0)
        };
        let est = (hit.full as f64 + sampled) * f64::from(sample.max(1));
        (est as u64).min(size)
    }

    /// The chunker is about to get bytes at object offset `off` with
    /// `pending` bytes still unchunked before them.
    fn feeding(&mut self, off: u64, pending: usize) {
        self.pos = off - pending as u64;
        if !self.run_open {
            self.run_open = true;
            self.run_start = off;
        }
    }

    /// The run of contiguous bytes ended (a gap, a window's end, the end).
    fn end_run(&mut self, max: u32) {
        if std::mem::replace(&mut self.run_open, false) {
            for r in self.ranges.values_mut() {
                r.end_run(self.data_end, u64::from(max));
            }
        }
    }
}

/// Per-object state of [`KnownWeightsDetector`].
pub struct KnownScan {
    chunker: Chunker,
    plan: Plan,
    index: Arc<Index>,
    cfg: Arc<DetectConfig>,
    hosts: Option<Arc<HostMatches>>,
    stitches: Option<Arc<Stitches>>,
    /// This object's identity among the stitches' heads (`u64::MAX`: it
    /// leaves none).
    id: u64,
    /// Its first bytes are still to be left as a head (it took no bytes to
    /// continue from).
    head: bool,
    origin: Option<Origin>,
    next: Option<u64>,
    /// Bytes were lost somewhere in the object.
    gapped: bool,
    tally: Tally,
    done: bool,
}

impl KnownScan {
    /// Drop pending bytes (a discontinuity): the next chunk starts anywhere.
    fn restart(&mut self) {
        self.chunker.reset();
        self.tally.end_run(self.index.params.max);
        self.tally.first = true;
        self.tally.last_eligible = 0;
    }

    /// Chunk what is pending and restart the chunker (end of a window).
    fn close_window(&mut self) {
        let (index, tally) = (&self.index, &mut self.tally);
        self.chunker.finish(|c| tally.on_chunk(index, c));
        tally.end_run(index.params.max);
        // The last chunk was cut by the window's end, not by content.
        tally.sparse_eligible -= tally.last_eligible;
        tally.last_eligible = 0;
        tally.first = true;
    }

    /// The file with the most matched bytes, if any chunk matched.
    fn best(&self) -> Option<(u32, Hits)> {
        self.tally
            .hits
            .iter()
            .max_by_key(|(f, h)| (h.bytes(), std::cmp::Reverse(**f)))
            .map(|(f, h)| (*f, *h))
    }

    /// The bytes of `file` (of `size` bytes) the object carried: the
    /// matched ranges, widened as [`FileRanges`] does, and, when every match
    /// had one alignment and no byte was lost, each span the sampled scan
    /// skipped that continues a matched range (it starts where one ends)
    /// up to the object's end or to where a matched range starts again:
    /// inferred by alignment, as the evidence's verified ranges show.
    fn file_ranges(&self, file: u32, size: u64) -> (Vec<[u64; 2]>, bool) {
        let Some(r) = self.tally.ranges.get(&file) else {
            return Default::default();
        };
        let (base, compacted) = r.report(size);
        let (Some(d), false, Some(end)) = (r.alignment(), self.gapped, self.next) else {
            return (base, compacted);
        };
        let ends_here = |x: u64| base.iter().any(|b| b[0] < x && x <= b[1]);
        let starts_here = |x: u64| base.iter().any(|b| b[0] <= x && x < b[1]);
        let to_file = |o: u64| u64::try_from(i128::from(o) + d).ok();
        let extra: Vec<[u64; 2]> = self
            .plan
            .skipped(end)
            .filter_map(|(a, b)| {
                let (fa, fb) = (to_file(a)?, to_file(b)?);
                (ends_here(fa) && (b == end || starts_here(fb))).then_some([fa, fb])
            })
            .collect();
        r.report_with(size, &extra)
    }

    /// File bytes of `file`'s matched chunks that the pair's previous
    /// object carried (the chunks spanning the cut).
    fn stitched(&self, file: u32) -> impl Iterator<Item = [u64; 2]> + '_ {
        self.tally
            .stitched
            .get(&file)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Whether this object's first bytes (at `offset`) start it and are
    /// chunked in full: then they are its head.
    fn stitch_start(&mut self, offset: u64) {
        let (Some(st), Some(_)) = (self.stitches.as_ref(), self.origin) else {
            return;
        };
        if offset != 0 || self.next.is_some() || self.gapped {
            return;
        }
        if !matches!(self.plan.region(0), Region::Full(_)) {
            return;
        }
        self.id = st.id();
        self.head = true;
    }

    /// The object's first bytes are in hand: the chunker's pending bytes
    /// (nothing was emitted yet) and `more` of the next piece, at most one
    /// maximum chunk (`whole`: at the object's end, all of it). Stitched to
    /// the tail of an earlier object of the pair, or left as this object's
    /// head.
    fn at_head(&mut self, more: &[u8], whole: bool) {
        let (true, Some(st), Some(o)) = (self.head, self.stitches.clone(), self.origin) else {
            return;
        };
        self.head = false;
        if self.gapped {
            return;
        }
        let pending = self.chunker.pending_bytes();
        let room = (self.index.params.max as usize).saturating_sub(pending.len());
        let mut head = Vec::with_capacity(pending.len() + room.min(more.len()));
        head.extend_from_slice(pending);
        head.extend_from_slice(&more[..room.min(more.len())]);
        let (index, chunker) = (&self.index, &self.chunker);
        let mut found = (Vec::new(), 0);
        let hit = st.stitch(
            o.sender,
            o.receiver,
            End::Tail,
            self.id,
            o.begun_us,
            |tail| {
                let bytes = &tail.bytes;
                found = (spanning(index, chunker, bytes, &head), bytes.len() as u64);
                !found.0.is_empty()
            },
        );
        if !hit {
            let piece = Piece {
                id: self.id,
                begun_us: o.begun_us,
                whole,
                bytes: head,
            };
            st.put(o.sender, o.receiver, End::Head, piece, false);
            return;
        }
        let (entries, lead) = found;
        let max = u64::from(self.index.params.max);
        let mut cut = 0;
        for e in &entries {
            let other = Some([e.offset, e.offset + lead]);
            let own = u64::from(e.len) - lead;
            self.tally.credit(e, 0, e.offset + lead, own, other, max);
            cut = own;
        }
        // The stitched chunk ends at a cut point of the file: chunk on from
        // there, in step with the file's cuts from the first byte.
        self.chunker.skip(cut as usize);
    }

    /// The object ended with `tail` after its last cut (which did not
    /// match): stitched to the head of a later object of the pair, or left
    /// as this object's tail. A head that is a whole object is chunked on
    /// in step with the file: its matched chunks are reported here as the
    /// neighbour's bytes, and its own tail, now known to start at a cut of
    /// the file, is stitched on in turn or left in place of the one that
    /// object left (at most [`super::stitch::MAX_PIECES`] links).
    fn at_tail(&mut self, st: &Stitches, o: Origin, tail: Vec<u8>) {
        let end = self.next.unwrap_or(self.tally.data_end);
        let max = u64::from(self.index.params.max);
        let (mut tail, mut id, mut begun_us) = (tail, self.id, o.begun_us);
        for link in 0..super::stitch::MAX_PIECES {
            let (index, chunker) = (&self.index, &self.chunker);
            let mut found = Vec::new();
            let mut next: Option<(u64, i64, Vec<u8>)> = None;
            let hit = st.stitch(o.sender, o.receiver, End::Head, id, begun_us, |head| {
                found = spanning(index, chunker, &tail, &head.bytes);
                if !found.is_empty() && head.whole {
                    next = Some((head.id, head.begun_us, head.bytes.clone()));
                }
                !found.is_empty()
            });
            if !hit {
                break;
            }
            let lead = tail.len() as u64;
            for e in &found {
                let other = [e.offset + lead, e.offset + u64::from(e.len)];
                if link == 0 {
                    let at = end.saturating_sub(lead);
                    self.tally.credit(e, at, e.offset, lead, Some(other), max);
                } else {
                    self.tally.other(e.file, [e.offset, other[1]]);
                }
            }
            let chunk = found.first().map_or(0, |e| e.len as usize);
            let Some((next_id, next_begun, head)) = next else {
                return;
            };
            // The rest of that object, in step with the file from the end
            // of the stitched chunk.
            let Some(rest) = head.get(chunk.saturating_sub(tail.len())..) else {
                return;
            };
            let mut chunker = Chunker::new(index.params);
            let mut matched = false;
            let tally = &mut self.tally;
            chunker.push(rest, |_| {});
            let next_tail = chunker.finish_tail(|c| {
                matched = false;
                let h = xxh3_64(c);
                if !index.sampled(h) || low_information(c) {
                    return;
                }
                for e in index.lookup(h).iter().filter(|e| e.len as usize == c.len()) {
                    matched = true;
                    tally.other(e.file, [e.offset, e.offset + u64::from(e.len)]);
                }
            });
            st.forget(o.sender, o.receiver, End::Tail, next_id);
            if matched || next_tail.is_empty() {
                return;
            }
            (tail, id, begun_us) = (next_tail, next_id, next_begun);
        }
        let piece = Piece {
            id,
            begun_us,
            whole: false,
            bytes: tail,
        };
        st.put(o.sender, o.receiver, End::Tail, piece, id != self.id);
    }

    /// Whether `hit` is enough on its own.
    fn enough(&self, hit: &Hits) -> bool {
        hit.chunks >= self.cfg.known_min_chunks
    }

    /// The object's matches of `file` added to its sender's tally (none
    /// without a sender or with the tally off).
    fn host_verdict(&self, file: u32, hit: &Hits) -> Option<HostVerdict> {
        let (hosts, origin) = (self.hosts.as_ref()?, self.origin?);
        let size = self.index.files.get(file as usize)?.size;
        let mut ranges = self.file_ranges(file, size).0;
        ranges.extend(self.stitched(file));
        let offsets = self.tally.offsets.get(&file).map_or(&[][..], Vec::as_slice);
        hosts.add(
            origin.sender,
            file,
            origin.begun_us,
            offsets,
            &ranges,
            self.enough(hit),
        )
    }

    /// The alert for `file`, when the object's matches or its sender's
    /// tally are enough.
    fn decide(&self, file: u32, hit: Hits, complete: bool) -> Option<Finding> {
        let host = self.host_verdict(file, &hit);
        if !self.enough(&hit) && !host.as_ref().is_some_and(|v| v.alert) {
            return None;
        }
        self.finding(file, hit, complete, host)
    }

    fn estimate(&self, file: u32, hit: &Hits) -> u64 {
        let size = self.index.files.get(file as usize).map_or(0, |f| f.size);
        self.tally.estimate(hit, self.index.sample, size)
    }

    fn finding(
        &self,
        file: u32,
        hit: Hits,
        complete: bool,
        host: Option<HostVerdict>,
    ) -> Option<Finding> {
        let f = self.index.files.get(file as usize)?;
        let sample = u64::from(self.index.sample);
        let estimated = self.estimate(file, &hit);
        let coverage = if f.size > 0 {
            estimated as f64 / f.size as f64
        } else {
            0.0
        };
        let t = &self.tally;
        let mut e = Evidence::new();
        e.insert("known_file".into(), json!(f.name));
        e.insert("known_file_bytes".into(), json!(f.size));
        e.insert("known_file_sha256".into(), json!(hex(&f.sha256)));
        e.insert("matched_chunks".into(), json!(hit.chunks));
        e.insert("matched_bytes".into(), json!(hit.bytes()));
        e.insert("estimated_bytes".into(), json!(estimated));
        e.insert(
            "coverage".into(),
            json!((coverage * 1000.0).round() / 1000.0),
        );
        e.insert(
            "coverage_estimated".into(),
            json!(sample > 1 || t.scanned < t.seen),
        );
        e.insert("index_sample".into(), json!(sample));
        e.insert("object_bytes_seen".into(), json!(t.seen));
        e.insert("object_bytes_scanned".into(), json!(t.scanned));
        e.insert("object_complete".into(), json!(complete));
        let (ranges, compacted) = self.file_ranges(file, f.size);
        e.insert("file_ranges".into(), json!(ranges));
        e.insert("file_ranges_compacted".into(), json!(compacted));
        let (verified, cut) = t
            .ranges
            .get(&file)
            .map(|r| r.verified(f.size))
            .unwrap_or_default();
        e.insert("file_ranges_verified".into(), json!(verified));
        if cut {
            e.insert("file_ranges_verified_truncated".into(), json!(true));
        }
        if let Some(v) = &host {
            e.insert("host_matched_chunks".into(), json!(v.host_chunks));
            e.insert("host_objects".into(), json!(v.host_objects));
            e.insert(
                "host_since".into(),
                json!(eve::Timestamp::from_unix_micros(v.since_us).to_string()),
            );
            if !self.enough(&hit) {
                e.insert("host_accumulated".into(), json!(true));
            }
        }
        let held: Vec<[u64; 2]> = host
            .iter()
            .flat_map(|v| v.held_ranges.iter().copied())
            .chain(self.stitched(file))
            .collect();
        if !held.is_empty() {
            e.insert("held_file_ranges".into(), json!(held));
        }
        if hit.stitched > 0 {
            e.insert("stitched_chunks".into(), json!(hit.stitched));
        }
        let mut others: Vec<(u32, Hits)> = t
            .hits
            .iter()
            .filter(|(id, h)| **id != file && h.chunks >= self.cfg.known_min_chunks)
            .map(|(id, h)| (*id, *h))
            .collect();
        if !others.is_empty() {
            others.sort_by_key(|(id, h)| (std::cmp::Reverse(h.bytes()), *id));
            let list: Vec<_> = others
                .iter()
                .take(8)
                .filter_map(|(id, h)| {
                    let f = self.index.files.get(*id as usize)?;
                    Some(json!({"known_file": f.name, "matched_bytes": h.bytes()}))
                })
                .collect();
            e.insert("also_matched".into(), json!(list));
        }
        let severity = if coverage >= 0.25 || estimated >= 16 << 20 {
            1
        } else {
            2
        };
        let short = f.name.rsplit('/').next().unwrap_or(&f.name);
        if f.canary {
            e.insert("canary".into(), json!(true));
        }
        Some(Finding {
            category: AlertCategory::WeightsKnown,
            sig: &sig::KNOWN_WEIGHTS,
            detail: format!(
                "{}{short} ({:.0}% of file seen)",
                if f.canary { "canary " } else { "" },
                coverage * 100.0
            ),
            severity,
            evidence: e,
        })
    }
}

/// The entries of the chunk that spans the cut between `tail` (the bytes
/// after an object's last cut) and `head` (the next object's first bytes),
/// when it is a chunk of a registered file.
fn spanning(index: &Index, chunker: &Chunker, tail: &[u8], head: &[u8]) -> Vec<ChunkEntry> {
    let max = index.params.max as usize;
    let head = &head[..head.len().min(max.saturating_sub(tail.len()))];
    // Exactly the bytes joined: most pairs' objects are small (API
    // replies), and a `max`-sized buffer (128 KiB) per try was a large
    // allocation whose pages were faulted in afresh each time.
    let mut buf = Vec::with_capacity(tail.len() + head.len());
    buf.extend_from_slice(tail);
    buf.extend_from_slice(head);
    let n = chunker.cut_len(&buf);
    if n <= tail.len() {
        return Vec::new();
    }
    let c = &buf[..n];
    let h = xxh3_64(c);
    if !index.sampled(h) || low_information(c) {
        return Vec::new();
    }
    let entries = index.lookup(h).iter();
    entries.filter(|e| e.len as usize == n).copied().collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ObjectScan for KnownScan {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Option<Finding> {
        if self.done {
            return None;
        }
        if self.next.is_some_and(|n| n != offset) {
            self.gapped = true;
            self.restart();
        }
        self.stitch_start(offset);
        let end = offset.saturating_add(bytes.len() as u64);
        self.next = Some(end);
        self.tally.seen += bytes.len() as u64;
        if end > self.plan.full {
            self.tally.sparse_seen += end - offset.max(self.plan.full);
        }
        let (mut off, mut rest) = (offset, bytes);
        while !rest.is_empty() {
            let region = self.plan.region(off);
            let until = match region {
                Region::Full(e) | Region::Window(e) | Region::Skip(e) => e,
            };
            let n = (until - off).min(rest.len() as u64) as usize;
            let (piece, after) = rest.split_at(n);
            if let Region::Skip(_) = region {
                if self.tally.in_window {
                    // Data resumed past a window's end (a gap): close it.
                    self.close_window();
                    self.tally.in_window = false;
                }
            } else {
                self.tally.in_window = matches!(region, Region::Window(_));
                self.tally.scanned += n as u64;
                self.tally.feeding(off, self.chunker.pending());
                self.tally.data_end = off + n as u64;
                if self.head && self.chunker.pending() + n >= self.index.params.max as usize {
                    self.at_head(piece, false);
                    self.tally.pos =
                        off + self.chunker.skipping() as u64 - self.chunker.pending() as u64;
                }
                let (index, tally) = (&self.index, &mut self.tally);
                self.chunker.push(piece, |c| tally.on_chunk(index, c));
                if self.tally.in_window && off + n as u64 == until {
                    self.close_window();
                    self.tally.in_window = false;
                }
            }
            off += n as u64;
            rest = after;
        }
        let (file, hit) = self.best()?;
        if self.enough(&hit) && self.estimate(file, &hit) >= self.cfg.known_early_alert_bytes {
            self.done = true;
            return self.decide(file, hit, false);
        }
        None
    }

    fn gap(&mut self, _len: u64) {
        self.gapped = true;
        self.restart();
        self.next = None;
    }

    fn end(&mut self, state: ObjectEnd) -> Option<Finding> {
        if self.done {
            return None;
        }
        self.done = true;
        match (self.stitches.clone(), self.origin) {
            (Some(st), Some(o)) if !self.tally.in_window => {
                self.at_head(&[], true);
                let end = self.next.unwrap_or(self.tally.data_end);
                self.tally.pos = end - self.chunker.pending() as u64;
                // The chunk the end cut is continued into a later object
                // of the pair that already began, or carried to the next
                // one, unless it matched (then the object ended where a
                // chunk of the file does).
                let (index, tally) = (&self.index, &mut self.tally);
                let tail = self.chunker.finish_tail(|c| tally.on_chunk(index, c));
                if !self.tally.last_matched && !tail.is_empty() {
                    self.at_tail(&st, o, tail);
                }
                self.tally.end_run(self.index.params.max);
                self.tally.first = true;
            }
            _ => self.close_window(),
        }
        let (file, hit) = self.best()?;
        self.decide(file, hit, state == ObjectEnd::Complete)
    }

    fn done(&self) -> bool {
        self.done
    }
}
