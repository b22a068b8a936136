//! One worker's engine: its share of the flow table, the TCP streams and
//! app-layer state of those flows, and the events they give.
//!
//! A worker is single-threaded and sees every packet of its flows in capture
//! order; time is packet time (offline) or the capture clock (live), passed
//! in with each packet and each tick.

use super::alert::{Subject, alert_event};
use super::anomaly;
use super::counters::{WorkerCounters, add_stream};
use super::emitter::ObjectEmitter;
use super::env::{EventEnv, SEC, ts};
use super::tcp::{EvasionPolicy, OpenConn, TcpConn};
use crate::app::AppLimits;
use crate::config::{CaptureConfig, OsPolicies, UrgentPolicy};
use crate::decode::{Decoded, TcpMeta, Transport};
use crate::detect::{Finding, FlowScan, FlowView};
use crate::flow::{Endpoint, FlowKey, client_of};
use crate::object::AppProto;
use crate::reassembly::Limits;
use eve::{
    Direction, Event, EventIdPrefix, EventKind, FlowEvent, FlowReason, FlowRecord, FlowState,
    NetworkFields, Proto, SshInfo, TcpInfo, TlsInfo,
};
use std::collections::HashMap;
use std::collections::hash_map;

/// The flow table's hasher: foldhash with a seed drawn once per worker (so
/// crafted 5-tuples cannot aim at one bucket); a clone is a copy of the
/// seed, so the table can be swapped out and back cheaply.
type FlowHasher = foldhash::fast::FixedState;
type FlowTable = HashMap<FlowKey, Entry, FlowHasher>;

/// A flow table entry: the flow, boxed, and the packet time at which the
/// sweep must look at it next (its timeout or its next update, whichever
/// comes first). A flow is ~450 bytes: inline, the table's buckets were
/// ~500 bytes, so each lookup's probe landed in a table of tens of MB (the
/// realistic 1.5 GB capture keeps ~30,000 flows), each growth moved all of
/// them, and the once-a-second sweep read every flow; with the box the
/// buckets are 64 bytes and the sweep reads only `due`.
struct Entry {
    /// Packet time (µs) from which [`Worker::sweep`] may end or update
    /// the flow; kept by [`Worker::due`] whenever the flow changes.
    due: i64,
    flow: Box<Flow>,
}

fn random_hasher() -> FlowHasher {
    use std::hash::BuildHasher;
    FlowHasher::with_seed(std::collections::hash_map::RandomState::new().hash_one(0u64))
}

/// Worker limits derived from the sensor-wide configuration.
#[derive(Clone, Debug)]
pub(crate) struct WorkerLimits {
    pub max_flows: usize,
    pub tcp_idle: i64,
    pub udp_idle: i64,
    pub absolute: i64,
    pub linger: i64,
    pub update_interval: i64,
    pub progress_bytes: u64,
    pub stream_max: usize,
    pub memcap: usize,
    pub retain: usize,
    pub os_policies: OsPolicies,
    pub evasion: EvasionPolicy,
    pub app: AppLimits,
}

impl WorkerLimits {
    /// This worker's share of `cfg` when there are `workers` workers.
    pub fn new(cfg: &CaptureConfig, workers: usize) -> Self {
        let w = workers.max(1);
        let secs = |s: u64| (s as i64).saturating_mul(SEC);
        WorkerLimits {
            max_flows: (cfg.max_flows / w).max(16),
            tcp_idle: secs(cfg.tcp_idle_timeout_secs),
            udp_idle: secs(cfg.udp_idle_timeout_secs),
            absolute: secs(cfg.absolute_timeout_secs),
            linger: secs(cfg.closed_linger_secs),
            update_interval: secs(cfg.flow_update_interval_secs),
            progress_bytes: cfg.flow_progress_bytes.max(1),
            stream_max: cfg.stream_ooo_max_bytes,
            memcap: (cfg.reassembly_memcap_bytes / w).max(cfg.stream_ooo_max_bytes.min(1 << 20)),
            retain: cfg.stream_retain_bytes,
            os_policies: OsPolicies::new(cfg),
            evasion: EvasionPolicy {
                ttl_tolerance: (cfg.stream_ttl_tolerance > 0).then_some(cfg.stream_ttl_tolerance),
                urgent_oob: cfg.urgent_policy == UrgentPolicy::Oob,
            },
            app: AppLimits {
                max_decoded_bytes: cfg.max_decoded_bytes,
                max_inflate_ratio: cfg.max_inflate_ratio,
                ..AppLimits::default()
            },
        }
    }
}

struct FlowSlot {
    detector: &'static str,
    scan: Box<dyn FlowScan>,
    active: bool,
}

struct Flow {
    key: FlowKey,
    /// Its events' ids: derived from the sensor, the key and the start.
    ids: EventIdPrefix,
    net: NetworkFields,
    client: Endpoint,
    start: i64,
    last: i64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
    state: FlowState,
    closed_at: Option<i64>,
    /// Each direction sent a FIN (whether or not its stream was whole).
    fin: [bool; 2],
    next_update: Option<i64>,
    updates: u32,
    tcp: Option<Box<TcpConn>>,
    scans: Vec<FlowSlot>,
    next_progress: u64,
    meta_sig: (Option<AppProto>, bool),
    /// Direction (0 to server, 1 to client) of the last packet with payload.
    payload_dir: Option<usize>,
    /// The overlap-with-different-data alert was raised.
    overlap_alerted: bool,
    /// The overlapping-fragments alert was raised.
    fragment_alerted: bool,
}

impl Flow {
    fn dir_of(&self, p: &Decoded) -> Direction {
        if (p.src, p.sport) == self.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

/// One worker.
pub(crate) struct Worker<'e> {
    env: EventEnv<'e>,
    limits: WorkerLimits,
    reasm: Limits,
    flows: FlowTable,
    hasher: FlowHasher,
    /// Scratch for a new flow's name (its ids and flow id derive from it).
    name: String,
    now: i64,
    last_sweep: i64,
    /// Events waiting to be handed to the sink.
    pub out: Vec<Event>,
    /// Counters.
    pub counters: WorkerCounters,
}

impl<'e> Worker<'e> {
    /// A worker with `limits`, writing events built with `env`.
    pub fn new(env: EventEnv<'e>, limits: WorkerLimits) -> Self {
        let mut reasm = Limits::new(limits.stream_max, limits.memcap);
        reasm.retain_max = limits.retain;
        let hasher = random_hasher();
        Worker {
            env,
            limits,
            reasm,
            flows: HashMap::with_hasher(hasher.clone()),
            hasher,
            name: String::new(),
            now: i64::MIN,
            last_sweep: i64::MIN,
            out: Vec::new(),
            counters: WorkerCounters::default(),
        }
    }

    /// One decoded packet seen at `t` (µs) with its transport payload.
    pub fn packet(&mut self, t: i64, p: &Decoded, payload: &[u8]) {
        self.packet_of(FlowKey::of(p).0, t, p, payload);
    }

    /// [`Worker::packet`] when the caller already has the packet's key.
    pub fn packet_of(&mut self, key: FlowKey, t: i64, p: &Decoded, payload: &[u8]) {
        self.counters.packets += 1;
        self.now = self.now.max(t);
        // A packet for a flow that has already expired starts a new one.
        // So does a new SYN on a closed connection's 5-tuple (port reuse).
        let fresh_syn = matches!(p.transport, Transport::Tcp(m) if m.syn && !m.ack);
        // A full table makes room before a new flow (the extra probe only
        // happens while the table is full).
        if self.flows.len() >= self.limits.max_flows && !self.flows.contains_key(&key) {
            self.evict();
        }
        // The table is moved out while one flow is updated, so the flow and
        // the rest of the worker can be borrowed at once; one probe finds,
        // replaces or inserts the flow.
        let mut flows = self.take_flows();
        let entry = match flows.entry(key) {
            hash_map::Entry::Occupied(mut o) => {
                let f = &o.get().flow;
                let ended = self
                    .expired(f, t)
                    .or((fresh_syn && f.closed_at.is_some()).then_some(FlowReason::Timeout));
                if let Some(reason) = ended {
                    let old = std::mem::replace(&mut o.get_mut().flow, self.new_flow(key, t, p));
                    self.end_flow(*old, reason);
                }
                o.into_mut()
            }
            hash_map::Entry::Vacant(v) => v.insert(Entry {
                due: i64::MIN,
                flow: self.new_flow(key, t, p),
            }),
        };
        self.update_flow(&mut entry.flow, t, p, payload);
        entry.due = self.due(&entry.flow);
        self.flows = flows;
        if self.reasm.over_memcap() {
            self.relieve_memcap();
        }
        if self.now.saturating_sub(self.last_sweep) >= SEC {
            self.sweep(self.now);
        }
    }

    /// Time moved on without packets for this worker (live clock, or packets
    /// of other workers offline).
    pub fn tick(&mut self, t: i64) {
        self.now = self.now.max(t);
        if self.now.saturating_sub(self.last_sweep) >= SEC {
            self.sweep(self.now);
        }
    }

    /// End every flow (reason `shutdown`).
    pub fn shutdown(&mut self) {
        // The keys are sorted, not the flows (a flow is hundreds of bytes).
        let mut keys: Vec<(i64, FlowKey)> = self
            .flows
            .values()
            .map(|e| (e.flow.start, e.flow.key))
            .collect();
        keys.sort_unstable_by_key(|(start, k)| (*start, k.order()));
        // One `flow` event per flow: room for them at once (see `sweep`).
        self.out.reserve(keys.len());
        for (_, k) in keys {
            if let Some(e) = self.flows.remove(&k) {
                self.end_flow(*e.flow, FlowReason::Shutdown);
            }
        }
        self.counters.memcap_peak = self.counters.memcap_peak.max(self.reasm.used);
    }

    /// Every TCP stream holding some bytes by `size`: (bytes, flow, direction
    /// index), largest first (ties in flow order, so runs are repeatable).
    fn largest_streams(
        &self,
        size: impl Fn(&crate::reassembly::Stream) -> usize,
    ) -> Vec<(usize, FlowKey, usize)> {
        let mut out: Vec<(usize, FlowKey, usize)> = Vec::new();
        for (k, e) in &self.flows {
            if let Some(c) = e.flow.tcp.as_ref() {
                for (i, s) in c.streams.iter().enumerate() {
                    let n = size(s);
                    if n > 0 {
                        out.push((n, *k, i));
                    }
                }
            }
        }
        out.sort_unstable_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.order().cmp(&b.1.order()))
                .then(a.2.cmp(&b.2))
        });
        out
    }

    /// The worker holds more out-of-order bytes than its memcap: evict the
    /// largest buffers first (ties: flow order, client side first) — each
    /// victim's holes become gaps and its bytes are delivered — until at
    /// most 3/4 of the memcap is held. Not the stream whose segment crossed
    /// the limit: a small buffer waiting for one retransmission survives a
    /// large one that pins memory. The margin makes the (whole-table) search
    /// rare under sustained pressure.
    fn relieve_memcap(&mut self) {
        let target = self.reasm.memcap / 4 * 3;
        // Delivered bytes kept for comparison go first: they cost no gap.
        for (_, key, i) in self.largest_streams(|s| s.retained()) {
            if self.reasm.used <= target {
                return;
            }
            if let Some(c) = self.flows.get_mut(&key).and_then(|e| e.flow.tcp.as_mut()) {
                c.streams[i].drop_retained(&mut self.reasm);
            }
        }
        let held = self.largest_streams(|s| s.buffered());
        let mut flows = self.take_flows();
        for (_, key, i) in held {
            if self.reasm.used <= target {
                break;
            }
            if let Some(e) = flows.get_mut(&key) {
                self.evict_buffer(&mut e.flow, i);
            }
        }
        self.flows = flows;
    }

    /// Evict the out-of-order buffer of direction `d` of `flow`.
    fn evict_buffer(&mut self, flow: &mut Flow, d: usize) {
        if let Some(mut conn) = self.open_conn(flow, self.now) {
            conn.evict_buffer(Direction::BOTH[d]);
        }
    }

    /// `flow`'s TCP connection opened for one call into it, its objects'
    /// events stamped `at` (µs); `None` for a UDP flow.
    fn open_conn<'w>(&'w mut self, flow: &'w mut Flow, at: i64) -> Option<OpenConn<'w>> {
        let TcpConn {
            streams,
            app,
            objects,
            done,
            watch,
            ..
        } = flow.tcp.as_deref_mut()?;
        Some(OpenConn {
            streams,
            app,
            done,
            reasm: &mut self.reasm,
            watch,
            policy: self.limits.evasion,
            emitter: ObjectEmitter::new(
                objects,
                &self.env,
                &flow.net,
                &flow.ids,
                at,
                &mut self.out,
                &mut self.counters.objects,
            ),
        })
    }

    /// The flow table, leaving an empty one (no allocation) in its place.
    fn take_flows(&mut self) -> FlowTable {
        std::mem::replace(&mut self.flows, HashMap::with_hasher(self.hasher.clone()))
    }

    fn expired(&self, f: &Flow, t: i64) -> Option<FlowReason> {
        if let Some(c) = f.closed_at {
            return (t.saturating_sub(c) >= self.limits.linger).then_some(FlowReason::Timeout);
        }
        let idle = match f.key.proto {
            Proto::Tcp => self.limits.tcp_idle,
            Proto::Udp => self.limits.udp_idle,
        };
        if t.saturating_sub(f.last) >= idle {
            return Some(FlowReason::Timeout);
        }
        if self.limits.absolute > 0 && t.saturating_sub(f.start) >= self.limits.absolute {
            return Some(FlowReason::Timeout);
        }
        None
    }

    /// The first packet time at which [`Worker::expired`] says `f` ended
    /// or its next update is due: the sweep looks at no flow before.
    fn due(&self, f: &Flow) -> i64 {
        let end = match f.closed_at {
            Some(c) => c.saturating_add(self.limits.linger),
            None => {
                let idle = match f.key.proto {
                    Proto::Tcp => self.limits.tcp_idle,
                    Proto::Udp => self.limits.udp_idle,
                };
                let end = f.last.saturating_add(idle);
                if self.limits.absolute > 0 {
                    end.min(f.start.saturating_add(self.limits.absolute))
                } else {
                    end
                }
            }
        };
        f.next_update.map_or(end, |u| end.min(u))
    }

    fn sweep(&mut self, t: i64) {
        self.last_sweep = t;
        let mut ended: Vec<(FlowKey, FlowReason)> = Vec::new();
        let mut updates: Vec<FlowKey> = Vec::new();
        for (k, e) in &self.flows {
            if t < e.due {
                continue;
            }
            if let Some(r) = self.expired(&e.flow, t) {
                ended.push((*k, r));
            } else if e.flow.next_update.is_some_and(|u| t >= u) {
                updates.push(*k);
            }
        }
        ended.sort_by_key(|(k, _)| k.order());
        updates.sort_by_key(|k| k.order());
        // Each ended flow gives one `flow` event: room for them at once.
        // A sweep can end thousands of flows (1,400 a second of packet
        // time on the realistic 1.5 GB capture) while the batch on its way
        // to the sink holds 256 events of ~500 bytes: growing it by
        // doubling copied it and faulted in fresh pages at each step.
        self.out.reserve(ended.len() + updates.len());
        for (k, r) in ended {
            if let Some(e) = self.flows.remove(&k) {
                self.end_flow(*e.flow, r);
            }
        }
        let mut flows = self.take_flows();
        for k in updates {
            if let Some(e) = flows.get_mut(&k) {
                self.flow_update(&mut e.flow, t);
                e.due = self.due(&e.flow);
            }
        }
        self.flows = flows;
        self.counters.memcap_peak = self.counters.memcap_peak.max(self.reasm.used);
    }

    /// The flow table is full: end the least recently active 1/16 of it.
    fn evict(&mut self) {
        let mut lasts: Vec<(i64, FlowKey)> =
            self.flows.iter().map(|(k, e)| (e.flow.last, *k)).collect();
        let n = (lasts.len() / 16).max(1);
        lasts.sort_unstable_by_key(|(last, k)| (*last, k.order()));
        self.out.reserve(n);
        for (_, k) in lasts.into_iter().take(n) {
            if let Some(e) = self.flows.remove(&k) {
                self.counters.flows_evicted += 1;
                self.end_flow(*e.flow, FlowReason::Forced);
            }
        }
    }

    fn new_flow(&mut self, key: FlowKey, t: i64, p: &Decoded) -> Box<Flow> {
        let client = client_of(p);
        let server = if client == key.a { key.b } else { key.a };
        // The flow's name, written into a buffer the worker keeps: its
        // hash is the flow id, and every event id of the flow starts with it.
        self.name.clear();
        {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(self.name, "{}|{key}|{t}", self.env.sensor_id);
        }
        let flow_id = xxhash_rust::xxh3::xxh3_64(self.name.as_bytes()) & ((1 << 52) - 1);
        let ids = EventIdPrefix::new(&self.name);
        let mut net = NetworkFields::new(
            flow_id.max(1),
            client.0,
            client.1,
            server.0,
            server.1,
            key.proto,
        );
        net.vlan = key.vlan_ids();
        self.counters.flows_created += 1;
        let tcp = match p.transport {
            Transport::Tcp(m) => {
                self.counters.flows_tcp += 1;
                let midstream = !m.syn;
                if midstream {
                    self.counters.midstream += 1;
                }
                // Each direction overlaps as its receiving host does.
                let policies = [
                    self.limits.os_policies.of(server.0),
                    self.limits.os_policies.of(client.0),
                ];
                Some(Box::new(TcpConn::new(
                    &self.limits.app,
                    midstream,
                    policies,
                )))
            }
            Transport::Udp => {
                self.counters.flows_udp += 1;
                None
            }
        };
        let mut flow = Box::new(Flow {
            key,
            ids,
            net,
            client,
            start: t,
            last: t,
            pkts: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            state: FlowState::New,
            closed_at: None,
            next_update: (self.limits.update_interval > 0)
                .then(|| t.saturating_add(self.limits.update_interval)),
            updates: 0,
            tcp,
            scans: Vec::new(),
            next_progress: self.limits.progress_bytes,
            meta_sig: (None, false),
            payload_dir: None,
            overlap_alerted: false,
            fin: [false; 2],
            fragment_alerted: false,
        });
        let detectors = self.env.detectors;
        if !detectors.flow.is_empty() {
            let view = view_of(&flow.net, flow.tcp.as_deref(), flow.payload, flow.start, t);
            let scans: Vec<FlowSlot> = detectors
                .flow
                .iter()
                .filter_map(|d| {
                    d.begin(&view).map(|scan| FlowSlot {
                        detector: d.name(),
                        scan,
                        active: true,
                    })
                })
                .collect();
            flow.scans = scans;
        }
        flow
    }

    fn update_flow(&mut self, flow: &mut Flow, t: i64, p: &Decoded, payload: &[u8]) {
        let dir = flow.dir_of(p);
        let d = dir.index();
        flow.last = flow.last.max(t);
        flow.pkts[d] += 1;
        flow.bytes[d] += u64::from(p.frame_len);
        flow.payload[d] += payload.len() as u64;
        if !payload.is_empty() {
            // A reply (payload after payload the other way) is when flow
            // detectors can tell that an upload stopped: call them now.
            if flow.payload_dir.is_some_and(|p| p != d) {
                flow.next_progress = flow.next_progress.min(flow.payload[0] + flow.payload[1]);
            }
            flow.payload_dir = Some(d);
        }
        if p.fragment_overlap && !flow.fragment_alerted {
            self.fragment_alert(flow, t, p);
        }
        if flow.state == FlowState::New && flow.pkts[0] > 0 && flow.pkts[1] > 0 {
            flow.state = FlowState::Established;
        }
        if let Transport::Tcp(m) = p.transport
            && flow.closed_at.is_none()
        {
            self.tcp_segment(flow, t, dir, &m, p.ttl, payload);
        }
        self.progress(flow, t, false);
    }

    fn tcp_segment(
        &mut self,
        flow: &mut Flow,
        t: i64,
        dir: Direction,
        m: &TcpMeta,
        ttl: u8,
        payload: &[u8],
    ) {
        let Some(mut conn) = self.open_conn(flow, t) else {
            return;
        };
        conn.segment(dir, m, ttl, payload);
        let streams_closed = conn.closed();
        flow.fin[dir.index()] |= m.fin;
        // Closed as Suricata's TCP state says: both FINs (or a reset), even
        // when a gap keeps a stream from being read to its FIN.
        if streams_closed || (flow.fin[0] && flow.fin[1]) {
            flow.state = FlowState::Closed;
            flow.closed_at = Some(t);
        }
        let used = self.reasm.used;
        self.counters.memcap_peak = self.counters.memcap_peak.max(used);
        if !flow.overlap_alerted {
            self.overlap_alert(flow, t);
        }
    }

    /// Raise the flow's alert for segments that overlapped earlier bytes
    /// with different data, once per flow.
    fn overlap_alert(&mut self, flow: &mut Flow, t: i64) {
        let Some(finding) = flow.tcp.as_deref().and_then(anomaly::overlap_finding) else {
            return;
        };
        flow.overlap_alerted = true;
        self.anomaly_alert(flow, t, "stream", finding);
    }

    /// Raise the flow's alert for a datagram whose IP fragments overlapped
    /// with different bytes, once per flow; `p` is the datagram.
    fn fragment_alert(&mut self, flow: &mut Flow, t: i64, p: &Decoded) {
        flow.fragment_alerted = true;
        let policy = self.limits.os_policies.of(p.dst);
        let finding = anomaly::fragment_finding(flow.dir_of(p), p.dst.is_ipv4(), policy);
        self.anomaly_alert(flow, t, "defrag", finding);
    }

    /// The flow-level alert of the engine's own `finding` (named `name`).
    fn anomaly_alert(&mut self, flow: &Flow, t: i64, name: &str, finding: Finding) {
        let subject = Subject::Flow {
            tls: flow.tcp.as_ref().and_then(|c| c.app.meta().tls.clone()),
        };
        let ev = alert_event(
            &self.env,
            ts(t),
            flow.net.clone(),
            &flow.ids,
            name,
            finding,
            subject,
        );
        self.counters.flow_alerts += 1;
        self.out.push(ev);
    }

    /// Call flow detectors when enough new payload arrived, the app layer
    /// learned something, or (`end`) the flow ends.
    fn progress(&mut self, flow: &mut Flow, t: i64, end: bool) {
        if flow.scans.is_empty() {
            return;
        }
        let total = flow.payload[0] + flow.payload[1];
        let sig = flow.tcp.as_ref().map_or((None, false), |c| {
            let m = c.app.meta();
            (m.app_proto, m.server_name.is_some())
        });
        let changed = sig != flow.meta_sig;
        if !end && !changed && total < flow.next_progress {
            return;
        }
        flow.meta_sig = sig;
        while flow.next_progress <= total {
            flow.next_progress += self.limits.progress_bytes;
        }
        // Set once the app layer knows it (progress runs on every reply:
        // a new string each time was an allocation per call).
        if let Some(p) = sig.0
            && flow.net.app_proto.as_deref() != Some(p.as_str())
        {
            flow.net.app_proto = Some(p.to_string());
        }
        let view = view_of(&flow.net, flow.tcp.as_deref(), flow.payload, flow.start, t);
        let mut findings = Vec::new();
        for s in flow.scans.iter_mut().filter(|s| s.active) {
            let f = if end {
                s.active = false;
                s.scan.end(&view)
            } else {
                s.scan.progress(&view)
            };
            if let Some(f) = f {
                s.active = false;
                findings.push((s.detector, f));
            }
        }
        for (detector, f) in findings {
            let subject = Subject::Flow {
                tls: flow.tcp.as_ref().and_then(|c| c.app.meta().tls.clone()),
            };
            let ev = alert_event(
                &self.env,
                ts(t),
                flow.net.clone(),
                &flow.ids,
                detector,
                f,
                subject,
            );
            self.counters.flow_alerts += 1;
            self.out.push(ev);
        }
    }

    fn flow_update(&mut self, flow: &mut Flow, t: i64) {
        flow.updates += 1;
        flow.next_update = Some(t.saturating_add(self.limits.update_interval));
        self.counters.flow_updates += 1;
        let ev = self.flow_event(flow, FlowReason::Update);
        self.out.push(ev);
    }

    fn end_flow(&mut self, mut flow: Flow, reason: FlowReason) {
        let t = flow.last;
        // Suricata's reasons: a closed connection ends by `timeout` (its
        // linger, or a new SYN reusing the 5-tuple) or `shutdown`, and its
        // `state` says `closed`; the counters keep closed flows apart.
        match reason {
            FlowReason::Closed | FlowReason::Forced | FlowReason::Update => {}
            _ if flow.closed_at.is_some() => self.counters.flows_closed += 1,
            FlowReason::Timeout => self.counters.flows_timed_out += 1,
            FlowReason::Shutdown => self.counters.flows_shutdown += 1,
        }
        if let Some(mut conn) = self.open_conn(&mut flow, t) {
            conn.close_unfinished();
        }
        if let Some(conn) = flow.tcp.as_mut() {
            for s in &conn.streams {
                add_stream(&mut self.counters.stream, &s.counters);
                conn.gaps |= s.counters.gaps > 0;
            }
            if conn.app.meta().app_proto.is_none() {
                self.counters.app_none += 1;
            }
            self.counters.app.merge(&conn.app.stats());
        }
        self.progress(&mut flow, t, true);
        // The flow is dropped next: its handshakes and network fields are
        // moved into its last event, not cloned.
        let handshakes = flow.tcp.as_mut().map(|c| c.app.take_handshakes());
        let (when, body, id) = self.flow_body(&mut flow, reason, handshakes);
        let ev = Event::with_id(ts(when), EventKind::Flow(body), id)
            .sensor(self.env.sensor_id)
            .network(flow.net);
        self.out.push(ev);
    }

    /// The flow's `flow` event at an update (its end: [`Worker::end_flow`]).
    fn flow_event(&self, flow: &mut Flow, reason: FlowReason) -> Event {
        let (when, body, id) = self.flow_body(flow, reason, None);
        Event::with_id(ts(when), EventKind::Flow(body), id)
            .sensor(self.env.sensor_id)
            .network(flow.net.clone())
    }

    /// The body, time (µs) and id of the flow's `flow` event: its end, or
    /// (`Update`) its latest update. `handshakes`: the TLS and SSH
    /// metadata when the caller took them; else they are cloned.
    fn flow_body(
        &self,
        flow: &mut Flow,
        reason: FlowReason,
        handshakes: Option<(Option<TlsInfo>, Option<SshInfo>)>,
    ) -> (i64, FlowEvent, String) {
        let meta = flow.tcp.as_ref().map(|c| c.app.meta());
        if let Some(p) = meta.and_then(|m| m.app_proto)
            && flow.net.app_proto.as_deref() != Some(p.as_str())
        {
            flow.net.app_proto = Some(p.to_string());
        }
        let plaintext = |n: u64| meta.filter(|m| m.encrypted).map(|_| n);
        let tcp = flow.tcp.as_ref().map(|c| {
            let gap_bytes = c.streams[0].counters.gap_bytes + c.streams[1].counters.gap_bytes;
            TcpInfo {
                gaps: c.gaps || gap_bytes > 0,
                midstream: c.midstream,
                gap_bytes,
            }
        });
        let (tls, ssh) = handshakes.unwrap_or_else(|| {
            (
                meta.and_then(|m| m.tls.clone()),
                meta.and_then(|m| m.ssh.clone()),
            )
        });
        let body = FlowEvent {
            flow: FlowRecord {
                pkts_toserver: flow.pkts[0],
                pkts_toclient: flow.pkts[1],
                bytes_toserver: flow.bytes[0],
                bytes_toclient: flow.bytes[1],
                start: ts(flow.start),
                end: ts(flow.last),
                state: flow.state,
                reason,
                plaintext_toserver: meta.and_then(|m| plaintext(m.plaintext_toserver)),
                plaintext_toclient: meta.and_then(|m| plaintext(m.plaintext_toclient)),
            },
            tls,
            ssh,
            tcp,
        };
        if reason == FlowReason::Update {
            let n = flow.updates;
            (
                self.now,
                body,
                flow.ids.id(format_args!("|flow|update|{n}")),
            )
        } else {
            (flow.last, body, flow.ids.id(format_args!("|flow|end")))
        }
    }
}

fn view_of<'a>(
    net: &'a NetworkFields,
    tcp: Option<&'a TcpConn>,
    payload: [u64; 2],
    start: i64,
    t: i64,
) -> FlowView<'a> {
    let meta = tcp.map(|c| c.app.meta());
    let encrypted = meta.is_some_and(|m| m.encrypted);
    FlowView {
        net,
        server_name: meta.and_then(|m| m.server_name.as_deref()),
        payload_toserver: payload[0],
        payload_toclient: payload[1],
        plaintext_toserver: meta.filter(|m| m.encrypted).map(|m| m.plaintext_toserver),
        encrypted,
        start: ts(start),
        now: ts(t),
    }
}
