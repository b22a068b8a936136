//! Streamed input — a live interface, or a capture read from a pipe or
//! standard input: one reader thread (libpcap + decoder + dispatch) hands
//! packets in batches through bounded queues to N workers. Live, a full
//! queue drops the batch and counts `capture.queue_drops`; from a pipe, a
//! full queue blocks the reader (a replay is lossless). Every worker
//! receives a batch (possibly empty) at least every second of capture time
//! (live: every half second of wall time too), carrying the capture clock,
//! so idle workers still expire their flows.

use crate::config::OsPolicies;
use crate::decode::{Checksums, Decoded, Decoder};
use crate::detect::Detectors;
use crate::engine::{EventEnv, Worker, WorkerCounters, WorkerLimits};
use crate::flow::FlowKey;
use crate::run::pipeline::{
    CaptureError, FileReport, ReaderCounters, Retime, RunEnd, RunSummary, Settings, Shared,
    Timeline, finish_run, shard, sink_loop, stats_event,
};
use crate::source::Frame;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use eve::{Event, EventSink, Stats, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Decodes frames and hands them to workers.
struct Dispatcher {
    decoder: Decoder,
    batches: Vec<Batch>,
    queues: Vec<Sender<Batch>>,
    pool: Receiver<Batch>,
    /// Block on a full queue (replay) rather than drop (live).
    lossless: bool,
    c: ReaderCounters,
    now: i64,
    last_flush: i64,
    /// How packet times are moved ([`Settings::retime`]).
    retime: Retime,
    /// The µs added to every packet's time, once the first packet fixed it.
    shift: Option<i64>,
}

impl Dispatcher {
    /// The wall clock on the run's (possibly moved) packet time; `None`
    /// before the first packet of a run placed by its first packet.
    fn wall_now(&self) -> Option<i64> {
        let shift = match (self.shift, self.retime) {
            (Some(s), _) => s,
            (None, Retime::FirstAt(_)) => return None,
            (None, r) => r.shift(None),
        };
        Some(wall_micros().saturating_add(shift))
    }

    fn frame(&mut self, f: &Frame<'_>) {
        let retime = self.retime;
        let shift = *self.shift.get_or_insert_with(|| retime.shift(Some(f.ts)));
        let f = &Frame {
            ts: f.ts.saturating_add(shift),
            link: f.link,
            data: f.data,
        };
        self.c.frame(f);
        self.now = self.now.max(f.ts);
        match self.decoder.decode(f.link, f.ts, f.data) {
            Ok((d, payload)) => {
                self.c.decoded(&d);
                let (key, _) = FlowKey::of(&d);
                let w = shard(&key, self.queues.len());
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
        if self.lossless {
            // A closed queue means the worker is gone (it panicked); the
            // run reports that when the worker is joined.
            let _ = self.queues[w].send(b);
            return;
        }
        match self.queues[w].try_send(b) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.c.queue_drops += b.pkts.len() as u64;
            }
        }
    }
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
        inspect_encrypted: shared.settings.config.inspect_encrypted_streams,
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

/// A streamed source: feeds the dispatcher until it ends or is stopped.
trait Source {
    /// Whether a full queue blocks (replay) rather than drops (live).
    fn lossless(&self) -> bool;
    /// Read until done; the reports of the files read (none live).
    fn run(&mut self, d: &mut Dispatcher, events: &Sender<Vec<Event>>) -> Vec<FileReport>;
}

/// A streamed run: `source` feeds the dispatcher (reader thread: this one)
/// until it ends or is stopped; workers and the sink run on their own
/// threads.
fn run_with(
    source: &mut dyn Source,
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
        .track_vlan(settings.config.vlan_tracking)
        .checksums(Checksums::new(settings.config.checksum_validation))
        .os_policies(OsPolicies::new(&settings.config)),
        batches: (0..workers).map(|_| Batch::default()).collect(),
        queues,
        pool: pool_rx,
        lossless: source.lossless(),
        c: ReaderCounters::default(),
        now: i64::MIN,
        last_flush: i64::MIN,
        retime: settings.retime,
        shift: None,
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
        let reassembled = (
            dispatcher.decoder.reassembled_datagrams,
            dispatcher.decoder.overlapping_datagrams,
        );
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
        let end = RunEnd {
            stats,
            reader,
            files,
            failure,
            sink: sink_handle,
            started,
            interrupted: false,
            timeline: Timeline::default(),
        };
        finish_run(settings, ev_tx, end)
    })
}

struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    settings: Settings,
    snapshots: Arc<Vec<Mutex<WorkerCounters>>>,
    error: Option<pcap::Error>,
}

fn wall_micros() -> i64 {
    Timestamp::now().unix_micros()
}

impl Source for LiveSource {
    fn lossless(&self) -> bool {
        false
    }

    fn run(&mut self, d: &mut Dispatcher, events: &Sender<Vec<Event>>) -> Vec<FileReport> {
        let link = self.cap.get_datalink().0;
        let interval = self.settings.config.stats_interval_secs;
        let mut last_stats = Instant::now();
        let mut last_flush = Instant::now();
        let mut seq = 0u64;
        while !self.settings.control.stopping() {
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
                // return while the link is silent, so a stop would go unseen.)
                Err(pcap::Error::TimeoutExpired) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
            if last_flush.elapsed() >= Duration::from_millis(500) {
                last_flush = Instant::now();
                if let Some(now) = d.wall_now() {
                    d.flush_all(now);
                }
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
                d.c.add_to(
                    &mut stats,
                    (
                        d.decoder.reassembled_datagrams,
                        d.decoder.overlapping_datagrams,
                    ),
                );
                seq += 1;
                let at = d.wall_now().unwrap_or_else(wall_micros);
                let ev = stats_event(&self.settings, stats, at, seq);
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

/// Capture live from an interface until a stop is requested
/// (`settings.control.request_stop()`), then end every flow and write the
/// final `stats` event. Timeouts follow the capture clock.
pub fn run_live(
    opts: &LiveOptions,
    settings: &Settings,
    detectors: &Detectors,
    sink: &mut dyn EventSink,
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
    // From here on packets are buffered: say so (scripts and tests wait
    // for this line before sending traffic).
    tracing::info!(interface = %opts.interface, "capture handle open");
    let workers = settings.workers.max(1);
    let snapshots: Arc<Vec<Mutex<WorkerCounters>>> =
        Arc::new((0..workers).map(|_| Mutex::default()).collect());
    let mut source = LiveSource {
        cap,
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

/// A capture read as a stream (a pipe, a FIFO or standard input), through
/// libpcap, which reads pcap and pcapng from any descriptor.
struct PipeSource {
    path: PathBuf,
    /// The BPF expression libpcap applies to the stream.
    bpf: Option<String>,
}

impl Source for PipeSource {
    fn lossless(&self) -> bool {
        true
    }

    fn run(&mut self, d: &mut Dispatcher, _events: &Sender<Vec<Event>>) -> Vec<FileReport> {
        let mut report = FileReport::new(&self.path);
        // libpcap reads standard input for "-" and opens a FIFO (waiting
        // for its writer) like a file.
        let mut cap = match pcap::Capture::from_file(&self.path) {
            Ok(c) => c,
            Err(e) => {
                report.error = Some(format!("{}: {e}", self.path.display()));
                report.rejected = true;
                d.c.read_errors += 1;
                return vec![report];
            }
        };
        let link = cap.get_datalink().0;
        report.linktype = Some(link);
        if let Some(expr) = &self.bpf
            && let Err(e) = cap.filter(expr, true)
        {
            report.error = Some(format!("{}: BPF filter {expr:?}: {e}", self.path.display()));
            report.rejected = true;
            d.c.read_errors += 1;
            return vec![report];
        }
        loop {
            match cap.next_packet() {
                Ok(p) => {
                    report.packets += 1;
                    d.frame(&Frame {
                        ts: header_micros(p.header),
                        link,
                        data: p.data,
                    });
                }
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    report.error = Some(format!(
                        "{}: {e} (after {} packets)",
                        self.path.display(),
                        report.packets
                    ));
                    d.c.read_errors += 1;
                    break;
                }
            }
        }
        vec![report]
    }
}

/// Replay a capture from a pipe, a FIFO or standard input (`-`): the
/// memory-mapped replay needs a regular file, a stream goes through the
/// reader thread and queues instead, losslessly, with packet time driving
/// every timeout as in any replay.
pub(crate) fn run_pipe(
    path: &Path,
    settings: &Settings,
    detectors: &Detectors,
    sink: &mut dyn EventSink,
) -> Result<RunSummary, CaptureError> {
    let mut source = PipeSource {
        path: path.to_path_buf(),
        bpf: settings.bpf.clone(),
    };
    run_with(&mut source, settings, detectors, sink, None)
}

/// µs since the epoch of a packet header.
// `timeval` fields are i64 here but narrower on 32-bit targets.
#[allow(clippy::useless_conversion)]
fn header_micros(h: &pcap::PacketHeader) -> i64 {
    i64::from(h.ts.tv_sec)
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(h.ts.tv_usec))
}
