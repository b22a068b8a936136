//! What every run shares: settings, errors and summaries, the reader-side
//! counters, the sink thread, the final `stats` event and the shard a flow
//! belongs to. The runs themselves: `offline` (files: memory-mapped, walked
//! by the one worker or shared by several) and `live` (an interface: one
//! reader thread feeds the workers through bounded queues).
//! Either way one sink thread writes the events.

use crate::config::CaptureConfig;
use crate::decode::{Decoded, Skip};
use crate::detect::Detectors;
use crate::flow::FlowKey;
use crate::run::thread_usage::ThreadUsage;
use crate::source::Frame;
use crossbeam_channel::Receiver;
use eve::{Event, EventKind, EventSink, Stats, StatsEvent, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
    /// Shared with a run while it goes (a replay's progress; a stop).
    pub control: Arc<RunControl>,
    /// How packet times are moved before anything reads them (none by
    /// default).
    pub retime: Retime,
    /// A BPF expression records of a replay must match (live capture sets
    /// its own on the interface).
    pub bpf: Option<String>,
}

/// Re-timing of a run's packets: every packet's time is moved by the same
/// amount as it is read, before the decoder, the flow table or any event
/// sees it, so timeouts, durations and event times stay consistent with
/// each other (`weightwatch capture --time-shift / --rebase-time`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Retime {
    /// Packet times as captured.
    #[default]
    AsCaptured,
    /// Add this many µs (negative: earlier) to every packet's time.
    Shift(i64),
    /// Place the run's first packet at this time (µs since the epoch); the
    /// others keep their distance to it.
    FirstAt(i64),
}

impl Retime {
    /// The µs to add to every packet's time, given the time of the run's
    /// first packet as captured (`None`: not known yet, or no packet).
    pub fn shift(self, first: Option<i64>) -> i64 {
        match (self, first) {
            (Retime::AsCaptured, _) | (Retime::FirstAt(_), None) => 0,
            (Retime::Shift(d), _) => d,
            (Retime::FirstAt(at), Some(first)) => at.saturating_sub(first),
        }
    }
}

/// What others see of, and may do to, a run while it goes: how far a
/// replay has read, and a request to stop (the end of a live capture; an
/// early end of a replay).
#[derive(Debug, Default)]
pub struct RunControl {
    read: AtomicU64,
    stop: AtomicBool,
}

impl RunControl {
    /// Bytes of the input files read so far (a file read to its end or
    /// given up on counts whole), updated every MiB or so.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Stop: reading stops, flows end as at the end of the input and the
    /// final events are written. A live capture ends so; a replay that had
    /// input left says `interrupted` in its summary.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was requested.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// `n` more bytes read.
    pub(crate) fn advance(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }
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
            control: Arc::default(),
            retime: Retime::AsCaptured,
            bpf: None,
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
    /// A pipe or standard input was given among other inputs (a stream
    /// cannot be ordered by its first packet without consuming it).
    #[error("{path}: a pipe or standard input must be the only input")]
    PipeNotAlone {
        /// The stream.
        path: PathBuf,
    },
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
    /// The BPF expression does not compile.
    #[error(transparent)]
    Filter(#[from] crate::source::FilterError),
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

impl FileReport {
    /// The report of `path` before it is read.
    pub(crate) fn new(path: &std::path::Path) -> Self {
        FileReport {
            path: path.to_path_buf(),
            packets: 0,
            linktype: None,
            error: None,
            rejected: false,
        }
    }
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
    /// An offline replay was stopped early ([`RunControl::request_stop`]):
    /// the inputs were not all read.
    pub interrupted: bool,
    /// Where an offline replay's wall time went (empty for live capture).
    pub timeline: Timeline,
}

/// Where an offline replay's wall time went: each worker's phases, as
/// times from the run's start (benchmarks print it; see
/// `docs/performance.md`).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// One per worker, in order.
    pub workers: Vec<WorkerPhases>,
    /// Every worker had ended and been joined.
    pub joined: Duration,
}

/// One offline worker's phases. A lone worker walks and processes each
/// record in one pass, so its `walking` and `waiting` are zero.
#[derive(Debug, Clone, Default)]
pub struct WorkerPhases {
    /// Its first packet (a lone worker) or first walked chunk to go
    /// through (several).
    pub first: Duration,
    /// Time spent walking chunks for every worker (shared reading).
    pub walking: Duration,
    /// Time spent waiting for a chunk or the reading token.
    pub waiting: Duration,
    /// It was through its last record.
    pub read: Duration,
    /// Its remaining flows were ended (`shutdown`) and their events sent.
    pub flushed: Duration,
    /// Records it processed as their owner (IP fragments: every worker).
    pub packets: u64,
    /// Their captured bytes.
    pub bytes: u64,
    /// What its thread used from its start to its flush: CPU time (user,
    /// kernel) and minor page faults.
    pub usage: ThreadUsage,
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

/// Reader-side counters.
#[derive(Debug, Default)]
pub(crate) struct ReaderCounters {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) decoded: u64,
    /// Packets accepted with a wrong checksum from an offloading sender.
    pub(crate) checksum_offloaded: u64,
    pub(crate) skips: [u64; Skip::ALL.len()],
    pub(crate) queue_drops: u64,
    pub(crate) read_errors: u64,
    /// Records a BPF filter left out (not counted as packets).
    pub(crate) bpf_filtered: u64,
    pub(crate) kernel_packets: u64,
    pub(crate) kernel_drops: u64,
    pub(crate) first_ts: Option<i64>,
    pub(crate) last_ts: i64,
}

impl ReaderCounters {
    /// Count one frame read.
    pub(crate) fn frame(&mut self, f: &Frame<'_>) {
        self.packets += 1;
        self.bytes += f.data.len() as u64;
        self.first_ts.get_or_insert(f.ts);
        self.last_ts = self.last_ts.max(f.ts);
    }

    /// Count one decoded packet.
    pub(crate) fn decoded(&mut self, d: &Decoded) {
        self.decoded += 1;
        self.checksum_offloaded += u64::from(d.offloaded_checksum);
    }

    /// Add `other`'s counts (a later stretch of the same input) to these.
    pub(crate) fn absorb(&mut self, other: &ReaderCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.decoded += other.decoded;
        self.checksum_offloaded += other.checksum_offloaded;
        for (a, b) in self.skips.iter_mut().zip(other.skips) {
            *a += b;
        }
        self.queue_drops += other.queue_drops;
        self.read_errors += other.read_errors;
        self.bpf_filtered += other.bpf_filtered;
        self.kernel_packets += other.kernel_packets;
        self.kernel_drops += other.kernel_drops;
        if let Some(t) = other.first_ts {
            self.first_ts.get_or_insert(t);
            self.last_ts = self.last_ts.max(other.last_ts);
        }
    }

    /// Add these counters into `stats` (`reassembled`: IP datagrams
    /// reassembled by the decoder, and of those whose fragments overlapped
    /// with different bytes).
    pub(crate) fn add_to(&self, stats: &mut Stats, reassembled: (u64, u64)) {
        let (reassembled, overlapping) = reassembled;
        stats.add("capture", "packets", self.packets);
        stats.add("capture", "bytes", self.bytes);
        stats.add("capture", "queue_drops", self.queue_drops);
        stats.add("capture", "kernel_packets", self.kernel_packets);
        stats.add("capture", "kernel_drops", self.kernel_drops);
        stats.add("capture", "read_errors", self.read_errors);
        stats.add("capture", "bpf_filtered", self.bpf_filtered);
        stats.add("decoder", "decoded", self.decoded);
        stats.add("decoder", "ip_reassembled", reassembled);
        stats.add("decoder", "fragment_overlap_diff", overlapping);
        stats.add("decoder", "checksum_offloaded", self.checksum_offloaded);
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

/// Everything a run shares between threads.
pub(crate) struct Shared<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) detectors: &'a Detectors,
}

/// What the sink thread did.
pub(crate) struct SinkResult {
    pub(crate) events: u64,
    pub(crate) error: Option<String>,
}

/// The sink thread: write every event batch, then close the sink.
pub(crate) fn sink_loop(sink: &mut dyn EventSink, rx: Receiver<Vec<Event>>) -> SinkResult {
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

/// The `stats` event with `stats` at capture time `at` (`seq` tells the
/// periodic ones apart), stamped with this sensor's version.
pub(crate) fn stats_event(settings: &Settings, mut stats: Stats, at: i64, seq: u64) -> Event {
    stats.version = Some(env!("CARGO_PKG_VERSION").to_string());
    let name = format!("{}|stats|{at}|{seq}", settings.sensor_id);
    Event::with_derived_id(
        Timestamp::from_unix_micros(at),
        EventKind::Stats(StatsEvent { stats }),
        &name,
    )
    .sensor(settings.sensor_id.clone())
}

/// How a run's threads ended, gathered for [`finish_run`].
pub(crate) struct RunEnd<'s> {
    /// Every counter (workers' and reader's).
    pub(crate) stats: Stats,
    /// The reader's counters (for the final `stats` event's time).
    pub(crate) reader: ReaderCounters,
    /// Per-file reports (offline).
    pub(crate) files: Vec<FileReport>,
    /// The first worker failure, if one panicked.
    pub(crate) failure: Option<String>,
    /// The sink thread.
    pub(crate) sink: std::thread::ScopedJoinHandle<'s, SinkResult>,
    /// When the run started.
    pub(crate) started: std::time::Instant,
    /// Input was left unread because a stop was requested.
    pub(crate) interrupted: bool,
    /// Where an offline replay's time went.
    pub(crate) timeline: Timeline,
}

/// The end of every run: write the final `stats` event, close the event
/// channel (the sink thread then closes the sink), and sum up.
pub(crate) fn finish_run(
    settings: &Settings,
    events: crossbeam_channel::Sender<Vec<Event>>,
    end: RunEnd<'_>,
) -> Result<RunSummary, CaptureError> {
    let at = end.reader.first_ts.map_or(0, |_| end.reader.last_ts);
    let _ = events.send(vec![stats_event(settings, end.stats.clone(), at, u64::MAX)]);
    drop(events);
    let sink_result = end
        .sink
        .join()
        .map_err(|_| CaptureError::Thread("the sink thread panicked".into()))?;
    if let Some(e) = end.failure {
        return Err(CaptureError::Thread(e));
    }
    Ok(RunSummary {
        stats: end.stats,
        files: end.files,
        events: sink_result.events,
        sink_error: sink_result.error,
        elapsed: end.started.elapsed(),
        interrupted: end.interrupted,
        timeline: end.timeline,
    })
}

/// Which worker a flow belongs to.
pub(crate) fn shard(key: &FlowKey, workers: usize) -> usize {
    shard_of(key.symmetric_hash(), workers)
}

/// Which worker a flow whose [`FlowKey::symmetric_hash`] is `hash` belongs
/// to.
pub(crate) fn shard_of(hash: u64, workers: usize) -> usize {
    (hash % workers as u64) as usize
}
