//! Replaying capture files, lossless and deterministic: timeouts run on
//! packet time, and every worker sees the time of every record, so a
//! replay gives the same events with any number of workers.
//!
//! - One worker maps each file and walks its records itself: the bytes go
//!   from the page cache to reassembly and SHA-256, with no reader thread,
//!   queue or copy.
//! - Several workers share the reading (`chunks`): each record is walked
//!   once, by whichever worker holds the reading token, into compact
//!   descriptors (place, time, owning worker); every worker then goes
//!   through every chunk in order, decodes and processes its own records
//!   (flows are sharded by the symmetric hash of their 5-tuple), runs every
//!   IP fragment through its own decoder, and only moves its clock for the
//!   rest. One mapping of each file serves all workers, so each page is
//!   mapped once, and at most `replay_lookahead_bytes` are walked ahead of
//!   the slowest worker. (Each worker walking the whole file itself was
//!   measured first: the second worker's walk cost a third of a core per
//!   GB; see `docs/performance.md`.)

mod chunks;

use crate::config::OsPolicies;
use crate::decode::{ChecksumMode, Checksums, Decoder, Peek, SAMPLE_PACKETS, sample_checksums};
use crate::detect::Detectors;
use crate::engine::{EventEnv, Worker, WorkerCounters, WorkerLimits};
use crate::flow::FlowKey;
use crate::run::ThreadUsage;
use crate::run::pipeline::{
    CaptureError, FileReport, ReaderCounters, RunEnd, RunSummary, Settings, Shared, Timeline,
    WorkerPhases, finish_run, shard, sink_loop,
};
use crate::source::pcapfile::{MappedFile, Packets, Window};
use crate::source::{BpfFilter, first_packet_time, ordered_inputs};
use crossbeam_channel::{Sender, bounded};
use eve::{Event, EventSink, Stats};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Events a worker collects before handing them to the sink's thread.
const EVENT_BATCH: usize = 256;

/// How many records ahead a sharing worker asks for its next frame's bytes.
const PREFETCH_RECORDS: usize = 4;

/// What one offline worker gives back.
struct OfflineResult {
    worker: WorkerCounters,
    /// Reader-side counters (worker 0's are the run's).
    reader: ReaderCounters,
    reassembled: (u64, u64),
    /// The inputs' reports (a lone worker's; shared reading keeps its own).
    files: Vec<FileReport>,
    /// A lone worker left input unread because a stop was requested.
    interrupted: bool,
    /// Shared reading: packets counted as decoded by the walk whose
    /// checksums this worker rejected (counted in its `reader.skips`).
    rejected: u64,
    /// Where its time went.
    phases: WorkerPhases,
}

/// A worker and its decoder, as configured.
fn worker_parts<'s>(shared: &Shared<'s>) -> (Worker<'s>, Decoder) {
    let settings = shared.settings;
    let env = EventEnv {
        sensor_id: &settings.sensor_id,
        detectors: shared.detectors,
        file_hash: settings.file_hash,
        inspect_encrypted: settings.config.inspect_encrypted_streams,
    };
    let w = Worker::new(
        env,
        WorkerLimits::new(&settings.config, settings.workers.max(1)),
    );
    let decoder = Decoder::new(
        settings.config.max_pending_fragments,
        settings.config.fragment_timeout_secs,
    )
    .track_vlan(settings.config.vlan_tracking)
    .os_policies(OsPolicies::new(&settings.config));
    (w, decoder)
}

/// The checksum policy of the capture mapped at `bytes`: `auto` is decided
/// on its first packets before it is replayed (at most eight records per
/// packet of the sample are looked at).
pub(super) fn file_checksums(mode: ChecksumMode, bytes: &[u8]) -> Checksums {
    let Ok(mut packets) = Packets::new(bytes) else {
        return Checksums::new(mode);
    };
    let frames = std::iter::from_fn(move || packets.next()?.ok())
        .take(SAMPLE_PACKETS as usize * 8)
        .map(|f| (f.link, f.data));
    sample_checksums(mode, frames)
}

/// End a worker's flows and say what it did.
fn finish_worker(
    mut w: Worker<'_>,
    decoder: &Decoder,
    reader: ReaderCounters,
    files: Vec<FileReport>,
    events: &Sender<Vec<Event>>,
    mut phases: WorkerPhases,
    started: Instant,
) -> OfflineResult {
    phases.read = started.elapsed();
    w.shutdown();
    if !w.out.is_empty() {
        let _ = events.send(std::mem::take(&mut w.out));
    }
    phases.flushed = started.elapsed();
    OfflineResult {
        worker: w.counters.clone(),
        reader,
        reassembled: (decoder.reassembled_datagrams, decoder.overlapping_datagrams),
        files,
        interrupted: false,
        rejected: 0,
        phases,
    }
}

/// The only worker: walk every input and process every record, each
/// record's time moved by `shift` µs.
fn walk_alone(
    shared: &Shared<'_>,
    inputs: &[PathBuf],
    shift: i64,
    events: &Sender<Vec<Event>>,
    started: Instant,
) -> OfflineResult {
    let usage = ThreadUsage::now();
    let (mut w, mut decoder) = worker_parts(shared);
    let control = &shared.settings.control;
    let mut filter = shared
        .settings
        .bpf
        .as_deref()
        .and_then(|e| BpfFilter::new(e).ok());
    let mut c = ReaderCounters::default();
    let mut files = Vec::with_capacity(inputs.len());
    let mut interrupted = false;
    let mut phases = WorkerPhases::default();
    for path in inputs {
        if control.stopping() {
            interrupted = true;
            break;
        }
        let mut report = FileReport::new(path);
        let map = match MappedFile::open(path) {
            Ok(m) => m,
            Err(e) => {
                report.error = Some(format!("{}: {e}", path.display()));
                report.rejected = true;
                c.read_errors += 1;
                files.push(report);
                control.advance(std::fs::metadata(path).map_or(0, |m| m.len()));
                continue;
            }
        };
        // Progress is told every MiB, and the whole file once it is done.
        let mut told = 0;
        let mut packets = match Packets::new(map.bytes()) {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(format!("{}: {e}", path.display()));
                report.rejected = true;
                c.read_errors += 1;
                files.push(report);
                control.advance(map.bytes().len() as u64);
                continue;
            }
        };
        decoder.set_checksums(file_checksums(
            shared.settings.config.checksum_validation,
            map.bytes(),
        ));
        let mut window = Window::default();
        while let Some(r) = packets.next() {
            let at = packets.offset();
            map.advance(&mut window, at);
            if at - told >= 1 << 20 {
                control.advance((at - told) as u64);
                told = at;
                if control.stopping() {
                    interrupted = true;
                    break;
                }
            }
            let mut f = match r {
                Ok(f) => f,
                Err(e) => {
                    report.error = Some(format!(
                        "{}: {e} (after {} packets)",
                        path.display(),
                        report.packets
                    ));
                    report.rejected = report.packets == 0;
                    c.read_errors += 1;
                    break;
                }
            };
            if c.packets == 0 {
                phases.first = started.elapsed();
            }
            report.packets += 1;
            f.ts = f.ts.saturating_add(shift);
            if filter.as_mut().is_some_and(|b| !b.matches(f.link, f.data)) {
                c.bpf_filtered += 1;
                continue;
            }
            c.frame(&f);
            match decoder.decode(f.link, f.ts, f.data) {
                Ok((d, payload)) => {
                    c.decoded(&d);
                    let (key, _) = FlowKey::of(&d);
                    w.packet_of(key, f.ts, &d, payload);
                }
                Err(s) => {
                    c.skips[s.index()] += 1;
                    w.tick(f.ts);
                }
            }
            // Events go to the sink in batches: a send per packet that had
            // any cost a wake-up of the sink's thread per event.
            if w.out.len() >= EVENT_BATCH {
                let _ = events.send(std::mem::replace(
                    &mut w.out,
                    Vec::with_capacity(EVENT_BATCH),
                ));
            }
        }
        if !w.out.is_empty() {
            let _ = events.send(std::mem::take(&mut w.out));
        }
        report.linktype = packets.linktype();
        files.push(report);
        control.advance((map.bytes().len() - told) as u64);
        if interrupted {
            break;
        }
    }
    // A lone worker owns every record.
    phases.packets = c.packets;
    phases.bytes = c.bytes;
    let mut r = finish_worker(w, &decoder, c, files, events, phases, started);
    r.interrupted = interrupted;
    // Its thread's usage, the flush included.
    r.phases.usage = ThreadUsage::now().since(usage);
    r
}

/// Worker `index` of several: walk chunks when its turn comes, and go
/// through every chunk in order, processing the records of its own flows.
fn share(
    shared: &Shared<'_>,
    index: usize,
    reader: &chunks::SharedReader<'_>,
    events: &Sender<Vec<Event>>,
    started: Instant,
) -> OfflineResult {
    let usage = ThreadUsage::now();
    let workers = shared.settings.workers.max(1);
    let _guard = reader.guard();
    let (mut w, mut decoder) = worker_parts(shared);
    let mut c = ReaderCounters::default();
    // Packets the walk counted as decoded whose checksums this worker
    // rejected.
    let mut rejected = 0u64;
    let mut next = 0u64;
    let mut size = 1024;
    let mut phases = WorkerPhases::default();
    loop {
        // Timed per chunk (a few hundred times a run), not per record.
        let asked = Instant::now();
        let job = reader.next_job(next);
        let got = Instant::now();
        phases.waiting += got - asked;
        let chunk = match job {
            chunks::Job::Done => break,
            chunks::Job::Walk(r) => {
                let (chunk, r) = reader.walk(r, &decoder, size);
                size = chunk.recs.len().max(16);
                reader.walked(chunk, r);
                phases.walking += got.elapsed();
                continue;
            }
            chunks::Job::Process(chunk) => chunk,
        };
        if next == 0 {
            phases.first = got - started;
        }
        decoder.set_checksums(chunk.checksums.clone());
        // Worker 0 counts for the run.
        let counting = index == 0;
        if counting {
            c.absorb(&chunk.counters);
        }
        let recs = &chunk.recs;
        let mine = chunk.mine(index);
        // Records before `k` are done: processed, or only moved the clock.
        let mut k = 0;
        for (j, &i) in mine.iter().enumerate() {
            // The walk read these frames on another core, or a while ago:
            // the bytes of this worker's next packets are asked for before
            // they are needed (perf, 2 workers: the first read of each
            // frame and its checksum were a third of what the second
            // worker added).
            if let Some(&n) = mine.get(j + PREFETCH_RECORDS) {
                chunk.prefetch(&recs[n as usize]);
            }
            let i = i as usize;
            // Other workers' records and those that did not decode: every
            // worker's clock sees every record's time.
            for r in &recs[k..i] {
                w.tick(r.ts);
            }
            k = i + 1;
            let r = &recs[i];
            let frame = chunk.frame(r);
            phases.packets += 1;
            phases.bytes += frame.len() as u64;
            if r.owner == chunks::FRAGMENT {
                match decoder.decode(r.link, r.ts, frame) {
                    Ok((d, payload)) => {
                        if counting {
                            c.decoded(&d);
                        }
                        let (key, _) = FlowKey::of(&d);
                        if shard(&key, workers) == index {
                            w.packet_of(key, r.ts, &d, payload);
                        } else {
                            w.tick(r.ts);
                        }
                    }
                    Err(s) => {
                        if counting {
                            c.skips[s.index()] += 1;
                        }
                        w.tick(r.ts);
                    }
                }
                continue;
            }
            // The walk found this packet with the same stateless decoding
            // (`peek_unchecked`), so it is a packet here too.
            let Ok((Peek::Packet(mut decoded, payload), sums)) =
                decoder.peek_unchecked(r.link, frame)
            else {
                w.tick(r.ts);
                continue;
            };
            // The walk left the checksums to the owner: a packet they
            // reject counts as skipped rather than decoded.
            match crate::decode::verify(
                &chunk.checksums,
                &decoded,
                sums.ip_header_in(frame),
                sums.l4,
            ) {
                Ok(offloaded) => {
                    decoded.offloaded_checksum = offloaded;
                    c.checksum_offloaded += u64::from(offloaded);
                }
                Err(s) => {
                    c.skips[s.index()] += 1;
                    rejected += 1;
                    w.tick(r.ts);
                    continue;
                }
            }
            w.packet_of(FlowKey::of(&decoded).0, r.ts, &decoded, payload);
        }
        for r in &recs[k..] {
            w.tick(r.ts);
        }
        reader.processed(next);
        next += 1;
        // In batches, as a lone worker sends them: a send after every
        // chunk woke the sink's thread hundreds of times a run.
        if w.out.len() >= EVENT_BATCH {
            let _ = events.send(std::mem::take(&mut w.out));
        }
    }
    let mut r = finish_worker(w, &decoder, c, Vec::new(), events, phases, started);
    r.rejected = rejected;
    r.phases.usage = ThreadUsage::now().since(usage);
    r
}

/// Whether `path` is read as a stream: `-` (standard input), a pipe or a
/// FIFO (anything that exists and is neither a regular file nor a
/// directory).
fn is_stream(path: &Path) -> bool {
    path.as_os_str() == "-" || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Replay pcap/pcapng files (directories are expanded; inputs are read in
/// order of their first packet) through the engine into `sink`. A single
/// input that is `-` (standard input), a pipe or a FIFO is read as a
/// stream instead (reader thread and queues; still lossless).
///
/// A file that cannot be opened, or that ends in a truncated or corrupt
/// record, is reported in [`RunSummary::files`] and the run goes on with
/// the next file.
pub fn run_offline(
    inputs: &[PathBuf],
    settings: &Settings,
    detectors: &Detectors,
    sink: &mut dyn EventSink,
) -> Result<RunSummary, CaptureError> {
    if inputs.is_empty() {
        return Err(CaptureError::NoInput);
    }
    if let Some(expr) = &settings.bpf {
        BpfFilter::new(expr)?;
    }
    if let Some(stream) = inputs.iter().find(|p| is_stream(p)) {
        if inputs.len() > 1 {
            return Err(CaptureError::PipeNotAlone {
                path: stream.clone(),
            });
        }
        return crate::run::live::run_pipe(stream, settings, detectors, sink);
    }
    for p in inputs.iter().filter(|p| p.is_dir()) {
        std::fs::read_dir(p).map_err(|source| CaptureError::List {
            path: p.clone(),
            source,
        })?;
    }
    let started = Instant::now();
    let files = ordered_inputs(inputs).map_err(|source| CaptureError::List {
        path: inputs[0].clone(),
        source,
    })?;
    let workers = settings.workers.max(1);
    // Inputs are in order of their first packet: the first file's first
    // packet is the run's.
    let first = match settings.retime {
        crate::run::Retime::FirstAt(_) => files.first().and_then(|f| first_packet_time(f)),
        _ => None,
    };
    let shift = settings.retime.shift(first);
    let shared = Shared {
        settings,
        detectors,
    };
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024);

    let reader = chunks::SharedReader::new(
        &files,
        workers,
        settings.config.replay_lookahead_bytes,
        settings.config.checksum_validation,
        settings.bpf.as_deref(),
        &settings.control,
    )
    .shifted(shift);
    std::thread::scope(|scope| {
        let sink_handle = scope.spawn(move || sink_loop(sink, ev_rx));
        let shared = &shared;
        let inputs = &files[..];
        let reader = &reader;
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let events = ev_tx.clone();
                std::thread::Builder::new()
                    .name(format!("capture-worker-{i}"))
                    .spawn_scoped(scope, move || {
                        if workers == 1 {
                            walk_alone(shared, inputs, shift, &events, started)
                        } else {
                            share(shared, i, reader, &events, started)
                        }
                    })
            })
            .collect();
        let mut stats = Stats::default();
        let mut failure = None;
        let mut first: Option<OfflineResult> = None;
        let mut timeline = Timeline::default();
        for h in handles {
            match h.map_err(|e| e.to_string()).and_then(|h| {
                h.join()
                    .map_err(|_| "a capture worker panicked".to_string())
            }) {
                Ok(r) => {
                    r.worker.add_to(&mut stats);
                    timeline.workers.push(r.phases.clone());
                    match &mut first {
                        None => first = Some(r),
                        // Worker 0's reader counters are the run's; the
                        // others only add the checksums they checked.
                        Some(f) => {
                            f.reader.absorb(&r.reader);
                            f.rejected += r.rejected;
                        }
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        timeline.joined = started.elapsed();
        if let Some(f) = &mut first {
            f.reader.decoded = f.reader.decoded.saturating_sub(f.rejected);
        }
        let (reader, files, interrupted) = match first {
            Some(r) => {
                r.reader.add_to(&mut stats, r.reassembled);
                let (files, interrupted) = if workers == 1 {
                    (r.files, r.interrupted)
                } else {
                    (reader.take_reports(), reader.interrupted())
                };
                (r.reader, files, interrupted)
            }
            None => (ReaderCounters::default(), Vec::new(), false),
        };
        let end = RunEnd {
            stats,
            reader,
            files,
            failure,
            sink: sink_handle,
            started,
            interrupted,
            timeline,
        };
        finish_run(settings, ev_tx, end)
    })
}
