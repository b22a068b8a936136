//! Reading shared by several offline workers: the files' records are walked
//! once, in chunks, by whichever worker holds the reading token, and every
//! worker then goes through every chunk in order (see the module above).
//!
//! A chunk is a stretch of one file — at most [`CHUNK_BYTES`] or
//! [`CHUNK_RECORDS`] — as compact descriptors: where each record lies, its
//! link type and time, and which worker owns it (the shard of its flow's
//! symmetric hash), found by a stateless decode. The token passes between
//! workers (only one walks at a time: where a record starts is known only
//! from the one before), and a worker whose walked chunks run low walks
//! the next one itself. Chunks live until every worker has been through
//! them, and the file pages they cover stay mapped until then (one mapping
//! of each file serves every worker, so each page is mapped once; it is
//! unmapped when the last chunk of the file goes). The
//! chunks held — their file bytes plus their descriptors — are bounded by
//! a budget (`replay_lookahead_bytes`): that is how far the walk may run
//! ahead of the slowest worker.
//!
//! Hand-written: the sharing is specific to this engine (shards, the
//! packet-time clock), and the pieces it needs are the standard library's.

use crate::decode::{ChecksumMode, Checksums, Decoder, Peek};
use crate::flow::FlowKey;
use crate::run::pipeline::{FileReport, ReaderCounters, RunControl, shard, shard_of};
use crate::source::BpfFilter;
use crate::source::pcapfile::{MappedFile, Packets, Paused, Window};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// File bytes one chunk covers at most.
const CHUNK_BYTES: usize = 1 << 20;
/// Records one chunk holds at most.
const CHUNK_RECORDS: usize = 8192;
/// A worker with fewer walked chunks ahead of it than this walks the next
/// one itself when it can, rather than go on processing.
const WALK_AHEAD: u64 = 4;

/// Bytes ahead of the record being walked whose cache lines the walk asks
/// for. Where the next record starts is known only once this one's header
/// is read, so a walk that only reads headers waited for memory at every
/// record (~240 ns a record on `realistic_300m`, against ~150 ns with any
/// distance from 256 bytes to 2 KiB; 64 KiB lost the gain again).
const PREFETCH: usize = 512;

/// Bytes of an owned frame asked for ahead of its processing (see
/// [`Chunk::prefetch`]); past them the CPU's own prefetcher has seen the
/// stream.
const FRAME_PREFETCH: usize = 2048;

/// Ask the CPU to bring the cache line holding `p` into its caches: a
/// hint, never a read (an address outside any mapping is ignored), so any
/// address will do. Hand-written: the standard library's prefetch is
/// unstable; other targets do without.
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads nothing into the program and cannot fault;
    // SSE, which it belongs to, is part of every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Owner of an IP fragment: every worker runs it through its own decoder
/// (the datagram's flow is known once it is whole).
pub(super) const FRAGMENT: u32 = u32::MAX;
/// Owner of a record that did not decode: it only moves the clocks.
pub(super) const NOBODY: u32 = u32::MAX - 1;

/// One walked record: 24 bytes, whatever it holds. Its owner decodes
/// it again from the file's bytes (stateless and cheap for plain frames,
/// `decode::plain`) rather than take a decoded packet from the walk:
/// descriptors a fifth the size, written on one core and read on another.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rec {
    /// Packet time (µs).
    pub(super) ts: i64,
    /// Where its frame starts, from the chunk's start.
    at: u32,
    /// Captured length.
    len: u32,
    /// The owning worker, [`FRAGMENT`] or [`NOBODY`].
    pub(super) owner: u32,
    /// Link type.
    pub(super) link: i32,
}

/// A walked stretch of one file.
#[derive(Debug)]
pub(super) struct Chunk {
    /// Its file's mapping (`None`: a file that could not be read, whose
    /// chunk only carries the error's count).
    map: Option<Arc<MappedFile>>,
    /// File offset of its first record.
    start: usize,
    /// File offset just past its last record.
    end: usize,
    /// Its records, in file order.
    pub(super) recs: Vec<Rec>,
    /// Per worker, the places in `recs` of the records it processes (its
    /// own and every fragment), in order: a worker goes straight to them
    /// and only moves its clock over the rest, rather than test each
    /// record's owner (a branch the CPU mispredicts half the time with two
    /// workers).
    mine: Vec<Vec<u32>>,
    /// What reading them counted (fragments' decoding aside: the
    /// processing workers count that).
    pub(super) counters: ReaderCounters,
    /// Its file's checksum policy (fragments are checked under it).
    pub(super) checksums: Checksums,
}

impl Chunk {
    /// The captured frame of `r`, one of its records.
    pub(super) fn frame(&self, r: &Rec) -> &[u8] {
        let at = self.start + r.at as usize;
        self.map
            .as_deref()
            .and_then(|m| m.bytes().get(at..at + r.len as usize))
            .unwrap_or_default()
    }

    /// Ask for the cache lines of `r`'s frame (its first
    /// [`FRAME_PREFETCH`] bytes) ahead of its processing.
    pub(super) fn prefetch(&self, r: &Rec) {
        let Some(m) = self.map.as_deref() else {
            return;
        };
        let frame = m.bytes().as_ptr().wrapping_add(self.start + r.at as usize);
        for line in (0..(r.len as usize).min(FRAME_PREFETCH)).step_by(64) {
            prefetch(frame.wrapping_add(line));
        }
    }

    /// The places in its records of those worker `index` processes.
    pub(super) fn mine(&self, index: usize) -> &[u32] {
        self.mine.get(index).map_or(&[], Vec::as_slice)
    }

    /// What holding it costs: the file bytes it keeps mapped and its
    /// descriptors.
    fn cost(&self) -> usize {
        (self.end - self.start)
            + self.recs.capacity() * std::mem::size_of::<Rec>()
            + self.mine.iter().map(Vec::capacity).sum::<usize>() * 4
    }
}

/// Where `part`, a sub-slice of `whole`, starts in it. An empty `part`
/// need not point into `whole` (any offset serves it), so it gets 0.
fn place(whole: &[u8], part: &[u8]) -> usize {
    if part.is_empty() {
        return 0;
    }
    let at = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(at + part.len() <= whole.len(), "not a sub-slice of the map");
    at
}

/// See [`SharedReader::guard`].
pub(super) struct PanicGuard<'r, 'i>(&'r SharedReader<'i>);

impl Drop for PanicGuard<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().failed = true;
            self.0.changed.notify_all();
        }
    }
}

/// The reading token: a file open for walking.
pub(super) struct Reading {
    map: Arc<MappedFile>,
    checksums: Checksums,
    /// The run's BPF filter, compiled for this file's link types (boxed:
    /// a `Reading` moves between workers).
    filter: Option<Box<BpfFilter>>,
    packets: Paused,
    report: FileReport,
}

/// What a worker does next.
pub(super) enum Job {
    /// Go through this chunk (the worker's next).
    Process(Arc<Chunk>),
    /// Walk the next chunk, then hand the token back with
    /// [`SharedReader::walked`].
    Walk(Reading),
    /// Every chunk has been through this worker.
    Done,
}

struct State {
    /// Chunks not yet through every worker, each with how many workers are
    /// through it.
    chunks: VecDeque<(Arc<Chunk>, usize)>,
    /// The chunks' total [`Chunk::cost`].
    held: usize,
    /// Sequence number of `chunks[0]`.
    base: u64,
    /// The token, when no worker walks and a file is open.
    reading: Option<Reading>,
    /// A worker walks (it holds the token).
    walking: bool,
    /// Index of the next input to open.
    next_file: usize,
    /// Reports of the inputs read so far, in order.
    reports: Vec<FileReport>,
    /// The file whose pages are released behind the slowest worker.
    releasing: Option<(Arc<MappedFile>, Window)>,
    /// A worker panicked: the others stop (the run reports it).
    failed: bool,
    /// A stop was requested with input left unread.
    interrupted: bool,
}

/// The replay's shared reading.
pub(super) struct SharedReader<'i> {
    inputs: &'i [PathBuf],
    control: &'i RunControl,
    workers: usize,
    /// The checksum setting each file's policy is sampled with.
    mode: ChecksumMode,
    /// Most bytes held at once (see [`Chunk::cost`]).
    budget: usize,
    /// µs added to every record's time as it is walked.
    shift: i64,
    /// The BPF expression records must match.
    bpf: Option<&'i str>,
    state: Mutex<State>,
    changed: Condvar,
}

impl<'i> SharedReader<'i> {
    /// Reading of `inputs` for `workers` workers, holding chunks of at most
    /// `budget` bytes (one chunk at least), telling `control` its progress
    /// and stopping early when it asks.
    pub(super) fn new(
        inputs: &'i [PathBuf],
        workers: usize,
        budget: usize,
        mode: ChecksumMode,
        bpf: Option<&'i str>,
        control: &'i RunControl,
    ) -> Self {
        SharedReader {
            inputs,
            control,
            workers,
            mode,
            budget,
            shift: 0,
            bpf,
            state: Mutex::new(State {
                chunks: VecDeque::new(),
                held: 0,
                base: 0,
                reading: None,
                walking: false,
                next_file: 0,
                reports: Vec::with_capacity(inputs.len()),
                releasing: None,
                failed: false,
                interrupted: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// The same reading with `shift` µs added to every record's time.
    pub(super) fn shifted(mut self, shift: i64) -> Self {
        self.shift = shift;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked is reported by the run; the state itself
        // is consistent between calls.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job of the worker whose next chunk is `next`; waits while
    /// there is none yet.
    pub(super) fn next_job(&self, next: u64) -> Job {
        let mut st = self.lock();
        loop {
            if st.failed {
                return Job::Done;
            }
            if self.control.stopping()
                && !st.walking
                && (st.reading.is_some() || st.next_file < self.inputs.len())
            {
                // Read no further: what is walked is still processed.
                if let Some(r) = st.reading.take() {
                    st.reports.push(r.report);
                }
                st.next_file = self.inputs.len();
                st.interrupted = true;
            }
            let walked = st.base + st.chunks.len() as u64;
            let have = next < walked;
            if !st.walking
                && (st.held < self.budget || st.chunks.is_empty())
                && (!have || walked - next < WALK_AHEAD)
            {
                if st.reading.is_none() {
                    self.open_next(&mut st);
                }
                if let Some(r) = st.reading.take() {
                    st.walking = true;
                    return Job::Walk(r);
                }
            }
            if have {
                let (chunk, _) = &st.chunks[(next - st.base) as usize];
                return Job::Process(Arc::clone(chunk));
            }
            if !st.walking && st.reading.is_none() && st.next_file >= self.inputs.len() {
                return Job::Done;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Open inputs until one reads or none is left; one that cannot be
    /// read leaves its report and an empty chunk counting the error.
    fn open_next(&self, st: &mut State) {
        while st.reading.is_none() && st.next_file < self.inputs.len() {
            let path = &self.inputs[st.next_file];
            st.next_file += 1;
            let mut report = FileReport::new(path);
            let opened = MappedFile::open(path)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    match Packets::new(m.bytes()) {
                        Ok(p) => {
                            // The file header counts as read.
                            self.control.advance(p.offset() as u64);
                            Ok(p.pause())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                    .map(|p| (m, p))
                });
            match opened {
                Ok((map, packets)) => {
                    st.reading = Some(Reading {
                        checksums: super::file_checksums(self.mode, map.bytes()),
                        filter: self.bpf.and_then(|e| BpfFilter::new(e).ok()).map(Box::new),
                        map: Arc::new(map),
                        packets,
                        report,
                    })
                }
                Err(e) => {
                    report.error = Some(format!("{}: {e}", path.display()));
                    report.rejected = true;
                    st.reports.push(report);
                    self.control
                        .advance(std::fs::metadata(path).map_or(0, |m| m.len()));
                    let counters = ReaderCounters {
                        read_errors: 1,
                        ..ReaderCounters::default()
                    };
                    st.chunks.push_back((
                        Arc::new(Chunk {
                            map: None,
                            start: 0,
                            end: 0,
                            recs: Vec::new(),
                            mine: Vec::new(),
                            counters,
                            checksums: Checksums::default(),
                        }),
                        0,
                    ));
                }
            }
        }
    }

    /// Walk the next chunk of `r`'s file: each record decoded by `peeker`
    /// (statelessly) to find its owner. `size` is a guess of its records.
    pub(super) fn walk(
        &self,
        r: Reading,
        peeker: &Decoder,
        size: usize,
    ) -> (Chunk, Option<Reading>) {
        let Reading {
            map,
            checksums,
            mut filter,
            packets,
            mut report,
        } = r;
        let bytes = map.bytes();
        let mut packets = Packets::resume(bytes, packets);
        let start = packets.offset();
        let mut recs = Vec::with_capacity(size.min(CHUNK_RECORDS));
        let workers = self.workers;
        let mut mine: Vec<Vec<u32>> = (0..workers)
            .map(|_| Vec::with_capacity(size.min(CHUNK_RECORDS) / workers + 64))
            .collect();
        let mut counters = ReaderCounters::default();
        // Every line up to PREFETCH bytes ahead has been asked for up to
        // here.
        let mut asked = start;
        let more = loop {
            if recs.len() >= CHUNK_RECORDS || packets.offset() - start >= CHUNK_BYTES {
                break true;
            }
            let ahead = (packets.offset() + PREFETCH).min(bytes.len());
            while asked < ahead {
                prefetch(bytes.as_ptr().wrapping_add(asked));
                asked += 64;
            }
            let f = match packets.next() {
                None => break false,
                Some(Ok(mut f)) => {
                    f.ts = f.ts.saturating_add(self.shift);
                    f
                }
                Some(Err(e)) => {
                    report.error = Some(format!(
                        "{}: {e} (after {} packets)",
                        report.path.display(),
                        report.packets
                    ));
                    report.rejected = report.packets == 0;
                    counters.read_errors += 1;
                    break false;
                }
            };
            report.packets += 1;
            if filter.as_mut().is_some_and(|b| !b.matches(f.link, f.data)) {
                counters.bpf_filtered += 1;
                continue;
            }
            counters.frame(&f);
            // Checksums are the owner's to check; one that fails is
            // counted by the owner as skipped.
            // Plain frames (nearly all) are hashed straight from their
            // header bytes; the rest are decoded to find their flow.
            let owner = if let Some(hash) = peeker.plain_flow_hash(f.link, f.data) {
                // A packet whose checksums are not known yet (as
                // `counters.decoded` counts a peeked one).
                counters.decoded += 1;
                shard_of(hash, workers) as u32
            } else {
                match peeker.peek_unchecked(f.link, f.data) {
                    Ok((Peek::Packet(decoded, _), _)) => {
                        counters.decoded(&decoded);
                        shard(&FlowKey::of(&decoded).0, workers) as u32
                    }
                    Ok((Peek::Fragment, _)) => FRAGMENT,
                    Err(s) => {
                        counters.skips[s.index()] += 1;
                        NOBODY
                    }
                }
            };
            let i = recs.len() as u32;
            match owner {
                FRAGMENT => mine.iter_mut().for_each(|m| m.push(i)),
                NOBODY => {}
                o => {
                    if let Some(m) = mine.get_mut(o as usize) {
                        m.push(i);
                    }
                }
            }
            // Frames borrow the file's map: each is kept as its place in
            // the chunk (a record is at most `MAX_RECORD` bytes, a chunk
            // `CHUNK_BYTES` and one record).
            recs.push(Rec {
                ts: f.ts,
                at: place(bytes, f.data).saturating_sub(start) as u32,
                len: f.data.len() as u32,
                owner,
                link: f.link,
            });
        };
        let end = packets.offset();
        self.control.advance((end - start) as u64);
        let linktype = packets.linktype();
        let packets = packets.pause();
        let chunk = Chunk {
            map: Some(Arc::clone(&map)),
            start,
            end,
            recs,
            mine,
            counters,
            checksums: checksums.clone(),
        };
        if more {
            let reading = Reading {
                map,
                checksums,
                filter,
                packets,
                report,
            };
            (chunk, Some(reading))
        } else {
            // The rest of the file (a cut-short one is done too).
            self.control.advance((bytes.len() - end) as u64);
            report.linktype = linktype;
            self.lock().reports.push(report);
            (chunk, None)
        }
    }

    /// Hand back the token after a walk, with the chunk walked (`reading`:
    /// `None` once the file ended).
    pub(super) fn walked(&self, chunk: Chunk, reading: Option<Reading>) {
        let mut st = self.lock();
        st.held += chunk.cost();
        st.chunks.push_back((Arc::new(chunk), 0));
        st.reading = reading;
        st.walking = false;
        drop(st);
        self.changed.notify_all();
    }

    /// A worker is through chunk `seq`. Chunks every worker is through are
    /// dropped, and their file's pages released behind them.
    pub(super) fn processed(&self, seq: u64) {
        let mut st = self.lock();
        let i = (seq - st.base) as usize;
        st.chunks[i].1 += 1;
        let mut freed = false;
        while st.chunks.front().is_some_and(|(_, n)| *n == self.workers) {
            let Some((chunk, _)) = st.chunks.pop_front() else {
                break;
            };
            st.base += 1;
            st.held -= chunk.cost();
            freed = true;
            let Some(map) = &chunk.map else {
                continue;
            };
            // Pages behind the slowest worker leave the resident set; a
            // file every worker has left leaves it whole.
            if !st
                .releasing
                .as_ref()
                .is_some_and(|(m, _)| Arc::ptr_eq(m, map))
            {
                if let Some((old, mut w)) = st.releasing.take() {
                    old.release(&mut w);
                }
                st.releasing = Some((Arc::clone(map), Window::default()));
            }
            if let Some((m, w)) = &mut st.releasing {
                m.advance(w, chunk.end);
            }
        }
        drop(st);
        if freed {
            self.changed.notify_all();
        }
    }

    /// Stop every worker if the calling one is unwinding from a panic (it
    /// may hold the token, or chunks only it has yet to go through):
    /// without this the others would wait for it forever.
    pub(super) fn guard(&self) -> PanicGuard<'_, 'i> {
        PanicGuard(self)
    }

    /// Whether input was left unread because a stop was requested.
    pub(super) fn interrupted(&self) -> bool {
        self.lock().interrupted
    }

    /// The inputs' reports, in order (once every worker is done).
    pub(super) fn take_reports(&self) -> Vec<FileReport> {
        std::mem::take(&mut self.lock().reports)
    }
}
