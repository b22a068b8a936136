//! Replaying capture files: every worker maps the files itself, walks every
//! record, decodes it and keeps the packets whose symmetric 5-tuple hash
//! picks it (flows are sharded onto workers); the packets of other workers
//! only move its clock. No reader thread, no queues and no payload copy:
//! the bytes go from the page cache to reassembly and SHA-256, and workers
//! never wait for each other (large transfers that follow each other in a
//! file keep every worker busy). Each worker sees the whole file in order,
//! so timeouts run on packet time exactly as with one worker, replay is
//! lossless and deterministic, and worker 0 alone counts the reader-side
//! statistics.

use crate::decode::Decoder;
use crate::detect::Detectors;
use crate::flow::FlowKey;
use crate::objects::EventEnv;
use crate::pcapfile::{MappedFile, Packets, Window};
use crate::pipeline::{
    CaptureError, FileReport, ReaderCounters, RunEnd, RunSummary, Settings, Shared, finish_run,
    shard, sink_loop,
};
use crate::source::ordered_inputs;
use crate::worker::{Worker, WorkerCounters, WorkerLimits};
use crossbeam_channel::{Sender, bounded};
use eve::{Event, EventSink, Stats};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What one offline worker gives back.
struct OfflineResult {
    worker: WorkerCounters,
    reader: ReaderCounters,
    reassembled: u64,
    files: Vec<FileReport>,
}

/// One offline worker: walk every input, keep the packets of worker
/// `index`'s flows. Every worker reads the same records and runs the same
/// decoder (IP fragments included), so they agree on what each file holds;
/// worker 0's reader counters and file reports are the run's.
fn offline_worker(
    shared: &Shared<'_>,
    index: usize,
    inputs: &[PathBuf],
    events: &Sender<Vec<Event>>,
) -> OfflineResult {
    let settings = shared.settings;
    let workers = settings.workers.max(1);
    let env = EventEnv {
        sensor_id: &settings.sensor_id,
        detectors: shared.detectors,
        file_hash: settings.file_hash,
    };
    let mut w = Worker::new(env, WorkerLimits::new(&settings.config, workers));
    let mut decoder = Decoder::new(
        settings.config.max_pending_fragments,
        settings.config.fragment_timeout_secs,
    )
    .track_vlan(settings.config.vlan_tracking);
    let mut c = ReaderCounters::default();
    let mut files = Vec::with_capacity(inputs.len());
    for path in inputs {
        let mut report = FileReport {
            path: path.clone(),
            packets: 0,
            linktype: None,
            error: None,
            rejected: false,
        };
        // Each worker maps the file itself: its window of resident pages
        // follows its own progress.
        let map = match MappedFile::open(path) {
            Ok(m) => m,
            Err(e) => {
                report.error = Some(format!("{}: {e}", path.display()));
                report.rejected = true;
                c.read_errors += 1;
                files.push(report);
                continue;
            }
        };
        let mut window = Window::default();
        let mut packets = match Packets::new(map.bytes()) {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(format!("{}: {e}", path.display()));
                report.rejected = true;
                c.read_errors += 1;
                files.push(report);
                continue;
            }
        };
        while let Some(r) = packets.next() {
            map.advance(&mut window, packets.offset());
            let f = match r {
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
            report.packets += 1;
            c.frame(&f);
            match decoder.decode(f.link, f.ts, f.data) {
                Ok((d, payload)) => {
                    c.decoded += 1;
                    let (key, _) = FlowKey::of(&d);
                    if workers == 1 || shard(&key, workers) == index {
                        w.packet_of(key, f.ts, &d, payload);
                    } else {
                        w.tick(f.ts);
                    }
                }
                Err(s) => {
                    c.skips[s.index()] += 1;
                    w.tick(f.ts);
                }
            }
            if !w.out.is_empty() {
                let _ = events.send(std::mem::take(&mut w.out));
            }
        }
        report.linktype = packets.linktype();
        files.push(report);
    }
    w.shutdown();
    if !w.out.is_empty() {
        let _ = events.send(std::mem::take(&mut w.out));
    }
    OfflineResult {
        worker: w.counters.clone(),
        reader: c,
        reassembled: decoder.reassembled_datagrams,
        files,
    }
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
    if let Some(stream) = inputs.iter().find(|p| is_stream(p)) {
        if inputs.len() > 1 {
            return Err(CaptureError::PipeNotAlone {
                path: stream.clone(),
            });
        }
        return crate::live::run_pipe(stream, settings, detectors, sink);
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
    let shared = Shared {
        settings,
        detectors,
    };
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024);
    std::thread::scope(|scope| {
        let sink_handle = scope.spawn(move || sink_loop(sink, ev_rx));
        let shared = &shared;
        let inputs = &files[..];
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let events = ev_tx.clone();
                std::thread::Builder::new()
                    .name(format!("capture-worker-{i}"))
                    .spawn_scoped(scope, move || offline_worker(shared, i, inputs, &events))
            })
            .collect();
        let mut stats = Stats::default();
        let mut failure = None;
        let mut first = None;
        for h in handles {
            match h.map_err(|e| e.to_string()).and_then(|h| {
                h.join()
                    .map_err(|_| "a capture worker panicked".to_string())
            }) {
                Ok(r) => {
                    r.worker.add_to(&mut stats);
                    first.get_or_insert(r);
                }
                Err(e) => failure = Some(e),
            }
        }
        let (reader, files) = match first {
            Some(r) => {
                r.reader.add_to(&mut stats, r.reassembled);
                (r.reader, r.files)
            }
            None => (ReaderCounters::default(), Vec::new()),
        };
        let end = RunEnd {
            stats,
            reader,
            files,
            failure,
            sink: sink_handle,
            started,
        };
        finish_run(settings, ev_tx, end)
    })
}
