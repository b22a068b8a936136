//! The threads of a run.
//!
//! Offline (`run_offline`): every worker maps the capture files itself,
//! walks every record, decodes it and keeps the packets whose symmetric
//! 5-tuple hash picks it (flows are sharded onto workers); the packets of
//! other workers only move its clock. No reader thread, no queues and no
//! payload copy: the bytes go from the page cache to reassembly and
//! SHA-256. Each worker sees the whole file in order, so timeouts run on
//! packet time exactly as with one worker, replay is lossless and
//! deterministic, and worker 0 alone counts the reader-side statistics.
//!
//! Live (`run_live`): one reader (libpcap + decoder + dispatch) hands
//! packets in batches through bounded queues to N workers; a full queue
//! drops the batch and counts `capture.queue_drops`. Every worker receives
//! a batch (possibly empty) at least every half second, carrying the
//! capture clock, so idle workers still expire their flows.
//!
//! Either way one sink thread writes the events.

use crate::config::CaptureConfig;
use crate::decode::{Decoded, Decoder, Skip};
use crate::detect::Detectors;
use crate::flow::FlowKey;
use crate::objects::EventEnv;
use crate::pcapfile::{MappedFile, Packets, Window};
use crate::source::{Frame, header_micros, ordered_inputs};
use crate::worker::{Worker, WorkerCounters, WorkerLimits};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use eve::{Event, EventKind, EventSink, Stats, StatsEvent, Timestamp};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Run-time settings of the engine: the `[capture]` config plus what the
/// command line decides.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Limits and timeouts.
    pub config: CaptureConfig,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Written into every event and used to derive event ids.
    pub sensor_id: String,
    /// Compute SHA-256 of every object.
    pub file_hash: bool,
}

impl Settings {
    /// Settings from a config: workers from the config, else the number of
    /// cores; sensor id `weightwatch`; hashing on.
    pub fn new(config: CaptureConfig) -> Self {
        let workers = if config.workers > 0 {
            config.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        Settings {
            config,
            workers,
            sensor_id: "weightwatch".to_string(),
            file_hash: true,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new(CaptureConfig::default())
    }
}

/// Why a run failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No input was given.
    #[error("no input files")]
    NoInput,
    /// A directory of captures could not be listed.
    #[error("listing {path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The live interface could not be opened or read.
    #[error("live capture on {interface}: {source}")]
    Live {
        /// The interface.
        interface: String,
        /// libpcap's error.
        #[source]
        source: pcap::Error,
    },
    /// A thread of the engine panicked (a bug; reported, not propagated).
    #[error("engine thread failed: {0}")]
    Thread(String),
}

/// How reading one input file went.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Packets read from it.
    pub packets: u64,
    /// libpcap link type of the file, when it opened.
    pub linktype: Option<i32>,
    /// Why it could not be opened, or why reading stopped early (truncated
    /// or corrupt file); the packets before the error were processed.
    pub error: Option<String>,
    /// Whether the file was rejected outright (no packet read).
    pub rejected: bool,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Every counter (also written as the final `stats` event).
    pub stats: Stats,
    /// One report per input file (offline).
    pub files: Vec<FileReport>,
    /// Events handed to the sink.
    pub events: u64,
    /// First sink error, if the sink failed (events after it may be lost).
    pub sink_error: Option<String>,
    /// Wall-clock duration of the run.
    pub elapsed: Duration,
}

impl RunSummary {
    /// Packets read.
    pub fn packets(&self) -> u64 {
        self.stats.get("capture", "packets")
    }
    /// Captured bytes read.
    pub fn bytes(&self) -> u64 {
        self.stats.get("capture", "bytes")
    }
}

/// Options of a live capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name.
    pub interface: String,
    /// BPF filter.
    pub bpf: Option<String>,
    /// Snapshot length.
    pub snaplen: i32,
}

const BATCH_PACKETS: usize = 256;
const BATCH_BYTES: usize = 512 * 1024;

struct Pkt {
    ts: i64,
    d: Decoded,
    off: usize,
    len: usize,
}

/// A batch of decoded packets for one worker; payloads live in `data`.
#[derive(Default)]
struct Batch {
    now: i64,
    pkts: Vec<Pkt>,
    data: Vec<u8>,
}

/// Reader-side counters.
#[derive(Default)]
struct ReaderCounters {
    packets: u64,
    bytes: u64,
    decoded: u64,
    skips: [u64; Skip::ALL.len()],
    queue_drops: u64,
    read_errors: u64,
    kernel_packets: u64,
    kernel_drops: u64,
    first_ts: Option<i64>,
    last_ts: i64,
}

impl ReaderCounters {
    /// Count one frame read.
    fn frame(&mut self, f: &Frame<'_>) {
        self.packets += 1;
        self.bytes += f.data.len() as u64;
        self.first_ts.get_or_insert(f.ts);
        self.last_ts = self.last_ts.max(f.ts);
    }

    fn add_to(&self, stats: &mut Stats, reassembled: u64) {
        stats.add("capture", "packets", self.packets);
        stats.add("capture", "bytes", self.bytes);
        stats.add("capture", "queue_drops", self.queue_drops);
        stats.add("capture", "kernel_packets", self.kernel_packets);
        stats.add("capture", "kernel_drops", self.kernel_drops);
        stats.add("capture", "read_errors", self.read_errors);
        stats.add("decoder", "decoded", self.decoded);
        stats.add("decoder", "ip_reassembled", reassembled);
        for s in Skip::ALL {
            let n = self.skips[s.index()];
            if n > 0 {
                stats.add("decoder", s.as_str(), n);
            }
        }
        stats.uptime = self.first_ts.map_or(0, |f| {
            (self.last_ts.saturating_sub(f).max(0) / 1_000_000) as u64
        });
    }
}

/// Decodes frames and hands them to workers.
struct Dispatcher {
    decoder: Decoder,
    batches: Vec<Batch>,
    queues: Vec<Sender<Batch>>,
    pool: Receiver<Batch>,
    c: ReaderCounters,
    now: i64,
    last_flush: i64,
}

impl Dispatcher {
    fn frame(&mut self, f: &Frame<'_>) {
        self.c.frame(f);
        self.now = self.now.max(f.ts);
        match self.decoder.decode(f.link, f.ts, f.data) {
            Ok((d, payload)) => {
                self.c.decoded += 1;
                let (key, _) = FlowKey::of(&d);
                let w = (key.symmetric_hash() % self.queues.len() as u64) as usize;
                let b = &mut self.batches[w];
                let off = b.data.len();
                b.data.extend_from_slice(payload);
                b.pkts.push(Pkt {
                    ts: f.ts,
                    d,
                    off,
                    len: payload.len(),
                });
                if b.pkts.len() >= BATCH_PACKETS || b.data.len() >= BATCH_BYTES {
                    self.send(w);
                }
            }
            Err(s) => self.c.skips[s.index()] += 1,
        }
        if self.now.saturating_sub(self.last_flush) >= 1_000_000 {
            self.flush_all(self.now);
        }
    }

    /// Hand every worker its batch (possibly empty) with the clock `now`.
    fn flush_all(&mut self, now: i64) {
        self.now = self.now.max(now);
        self.last_flush = self.now;
        for w in 0..self.queues.len() {
            self.send(w);
        }
    }

    fn send(&mut self, w: usize) {
        let fresh = self.pool.try_recv().unwrap_or_default();
        let mut b = std::mem::replace(&mut self.batches[w], fresh);
        b.now = self.now;
        match self.queues[w].try_send(b) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.c.queue_drops += b.pkts.len() as u64;
            }
        }
    }
}

/// Everything a run shares between threads.
struct Shared<'a> {
    settings: &'a Settings,
    detectors: &'a Detectors,
}

fn worker_loop(
    shared: &Shared<'_>,
    rx: Receiver<Batch>,
    pool: Sender<Batch>,
    events: Sender<Vec<Event>>,
    snapshot: Option<&Mutex<WorkerCounters>>,
) -> WorkerCounters {
    let env = EventEnv {
        sensor_id: &shared.settings.sensor_id,
        detectors: shared.detectors,
        file_hash: shared.settings.file_hash,
    };
    let limits = WorkerLimits::new(&shared.settings.config, shared.settings.workers);
    let mut w = Worker::new(env, limits);
    let mut last_snapshot = Instant::now();
    for mut batch in rx {
        for p in &batch.pkts {
            let payload = batch.data.get(p.off..p.off + p.len).unwrap_or_default();
            w.packet(p.ts, &p.d, payload);
        }
        w.tick(batch.now);
        if !w.out.is_empty() {
            let _ = events.send(std::mem::take(&mut w.out));
        }
        batch.pkts.clear();
        batch.data.clear();
        let _ = pool.try_send(batch);
        if let Some(s) = snapshot
            && last_snapshot.elapsed() >= Duration::from_secs(1)
        {
            last_snapshot = Instant::now();
            if let Ok(mut g) = s.lock() {
                *g = w.counters.clone();
            }
        }
    }
    w.shutdown();
    if !w.out.is_empty() {
        let _ = events.send(std::mem::take(&mut w.out));
    }
    w.counters.clone()
}

struct SinkResult {
    events: u64,
    error: Option<String>,
}

fn sink_loop(sink: &mut dyn EventSink, rx: Receiver<Vec<Event>>) -> SinkResult {
    let mut r = SinkResult {
        events: 0,
        error: None,
    };
    for batch in rx {
        for e in &batch {
            r.events += 1;
            if let Err(err) = sink.emit(e)
                && r.error.is_none()
            {
                r.error = Some(err.to_string());
            }
        }
    }
    if let Err(err) = sink.close()
        && r.error.is_none()
    {
        r.error = Some(err.to_string());
    }
    r
}

fn stats_event(settings: &Settings, stats: Stats, at: i64, seq: u64) -> Event {
    let name = format!("{}|stats|{at}|{seq}", settings.sensor_id);
    Event::with_derived_id(
        Timestamp::from_unix_micros(at),
        EventKind::Stats(StatsEvent { stats }),
        &name,
    )
    .sensor(settings.sensor_id.clone())
}

/// The live run: `source` feeds the dispatcher (reader thread: this one)
/// until stopped; workers and the sink run on their own threads.
fn run_with(
    source: &mut LiveSource,
    settings: &Settings,
    detectors: &Detectors,
    sink: &mut dyn EventSink,
    snapshots: Option<&[Mutex<WorkerCounters>]>,
) -> Result<RunSummary, CaptureError> {
    let started = Instant::now();
    let workers = settings.workers.max(1);
    let shared = Shared {
        settings,
        detectors,
    };
    let depth = settings.config.queue_batches.max(2);
    let (pool_tx, pool_rx) = bounded::<Batch>(workers * (depth + 2));
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(1024);
    let mut queues = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = bounded::<Batch>(depth);
        queues.push(tx);
        receivers.push(rx);
    }
    let mut dispatcher = Dispatcher {
        decoder: Decoder::new(
            settings.config.max_pending_fragments,
            settings.config.fragment_timeout_secs,
        )
        .track_vlan(settings.config.vlan_tracking),
        batches: (0..workers).map(|_| Batch::default()).collect(),
        queues,
        pool: pool_rx,
        c: ReaderCounters::default(),
        now: i64::MIN,
        last_flush: i64::MIN,
    };
    std::thread::scope(|scope| {
        let sink_handle = scope.spawn(move || sink_loop(sink, ev_rx));
        let shared = &shared;
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let pool = pool_tx.clone();
                let events = ev_tx.clone();
                let snap = snapshots.and_then(|s| s.get(i));
                std::thread::Builder::new()
                    .name(format!("capture-worker-{i}"))
                    .spawn_scoped(scope, move || worker_loop(shared, rx, pool, events, snap))
            })
            .collect();
        drop(pool_tx);
        let files = source.run(&mut dispatcher, &ev_tx);
        let now = dispatcher.now;
        dispatcher.flush_all(now);
        let reassembled = dispatcher.decoder.reassembled_datagrams;
        let reader = std::mem::take(&mut dispatcher.c);
        drop(dispatcher);
        let mut stats = Stats::default();
        let mut failure = None;
        for h in handles {
            match h.map_err(|e| e.to_string()).and_then(|h| {
                h.join()
                    .map_err(|_| "a capture worker panicked".to_string())
            }) {
                Ok(c) => c.add_to(&mut stats),
                Err(e) => failure = Some(e),
            }
        }
        reader.add_to(&mut stats, reassembled);
        let at = reader.first_ts.map_or(0, |_| reader.last_ts);
        let _ = ev_tx.send(vec![stats_event(settings, stats.clone(), at, u64::MAX)]);
        drop(ev_tx);
        let sink_result = sink_handle
            .join()
            .map_err(|_| CaptureError::Thread("the sink thread panicked".into()))?;
        if let Some(e) = failure {
            return Err(CaptureError::Thread(e));
        }
        Ok(RunSummary {
            stats,
            files,
            events: sink_result.events,
            sink_error: sink_result.error,
            elapsed: started.elapsed(),
        })
    })
}

/// What one offline worker gives back.
struct OfflineResult {
    worker: WorkerCounters,
    reader: ReaderCounters,
    reassembled: u64,
    files: Vec<FileReport>,
}

/// Which worker a flow belongs to.
fn shard(key: &FlowKey, workers: usize) -> usize {
    (key.symmetric_hash() % workers as u64) as usize
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

/// Replay pcap/pcapng files (directories are expanded; inputs are read in
/// order of their first packet) through the engine into `sink`.
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
        let at = reader.first_ts.map_or(0, |_| reader.last_ts);
        let _ = ev_tx.send(vec![stats_event(settings, stats.clone(), at, u64::MAX)]);
        drop(ev_tx);
        let sink_result = sink_handle
            .join()
            .map_err(|_| CaptureError::Thread("the sink thread panicked".into()))?;
        if let Some(e) = failure {
            return Err(CaptureError::Thread(e));
        }
        Ok(RunSummary {
            stats,
            files,
            events: sink_result.events,
            sink_error: sink_result.error,
            elapsed: started.elapsed(),
        })
    })
}

struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    stop: Arc<AtomicBool>,
    settings: Settings,
    snapshots: Arc<Vec<Mutex<WorkerCounters>>>,
    error: Option<pcap::Error>,
}

fn wall_micros() -> i64 {
    Timestamp::now().unix_micros()
}

impl LiveSource {
    fn run(&mut self, d: &mut Dispatcher, events: &Sender<Vec<Event>>) -> Vec<FileReport> {
        let link = self.cap.get_datalink().0;
        let interval = self.settings.config.stats_interval_secs;
        let mut last_stats = Instant::now();
        let mut last_flush = Instant::now();
        let mut seq = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            match self.cap.next_packet() {
                Ok(p) => {
                    let frame = Frame {
                        ts: header_micros(p.header),
                        link,
                        data: p.data,
                    };
                    d.frame(&frame);
                }
                // Non-blocking: nothing waiting. (A blocking read would not
                // return while the link is silent, so `stop` would go unseen.)
                Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
            if last_flush.elapsed() >= Duration::from_millis(500) {
                last_flush = Instant::now();
                d.flush_all(wall_micros());
            }
            if interval > 0 && last_stats.elapsed() >= Duration::from_secs(interval) {
                last_stats = Instant::now();
                self.kernel_stats(d);
                let mut stats = Stats::default();
                for s in self.snapshots.iter() {
                    if let Ok(g) = s.lock() {
                        g.add_to(&mut stats);
                    }
                }
                d.c.add_to(&mut stats, d.decoder.reassembled_datagrams);
                seq += 1;
                let ev = stats_event(&self.settings, stats, wall_micros(), seq);
                let _ = events.try_send(vec![ev]);
            }
        }
        self.kernel_stats(d);
        Vec::new()
    }
}

impl LiveSource {
    fn kernel_stats(&mut self, d: &mut Dispatcher) {
        if let Ok(s) = self.cap.stats() {
            d.c.kernel_packets = u64::from(s.received);
            d.c.kernel_drops = u64::from(s.dropped) + u64::from(s.if_dropped);
        }
    }
}

/// Capture live from an interface until `stop` is set, then end every flow
/// and write the final `stats` event. Timeouts follow the capture clock.
pub fn run_live(
    opts: &LiveOptions,
    settings: &Settings,
    detectors: &Detectors,
    sink: &mut dyn EventSink,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, CaptureError> {
    let live_err = |source| CaptureError::Live {
        interface: opts.interface.clone(),
        source,
    };
    let mut cap = pcap::Capture::from_device(opts.interface.as_str())
        .map_err(live_err)?
        .promisc(true)
        .snaplen(opts.snaplen)
        .buffer_size(settings.config.pcap_buffer_bytes)
        .timeout(100)
        .open()
        .and_then(|c| c.setnonblock())
        .map_err(live_err)?;
    if let Some(bpf) = &opts.bpf {
        cap.filter(bpf, true).map_err(live_err)?;
    }
    let workers = settings.workers.max(1);
    let snapshots: Arc<Vec<Mutex<WorkerCounters>>> =
        Arc::new((0..workers).map(|_| Mutex::default()).collect());
    let mut source = LiveSource {
        cap,
        stop,
        settings: settings.clone(),
        snapshots: snapshots.clone(),
        error: None,
    };
    let summary = run_with(&mut source, settings, detectors, sink, Some(&snapshots[..]))?;
    match source.error {
        Some(e) => Err(live_err(e)),
        None => Ok(summary),
    }
}
