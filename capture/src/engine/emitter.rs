//! The engine's [`ObjectSink`]: hashes each object, feeds it to the
//! object detectors, and turns it into a `fileinfo` event (and their
//! findings into `alert` events, through [`super::alert`]).

use super::alert::{Subject, alert_event};
use super::counters::ObjectCounters;
use super::env::{EventEnv, ts};
use crate::detect::{Finding, ObjectScan};
use crate::object::{AppProto, ObjectEnd, ObjectEvent, ObjectMeta, ObjectSink, Origin, Reply};
use eve::{
    Direction, Event, EventIdPrefix, EventKind, FileInfo, FileState, FileinfoEvent, NetworkFields,
    WeightFormat,
};
use sha2::{Digest, Sha256};

struct ScanSlot {
    detector: &'static str,
    scan: Box<dyn ObjectScan>,
    active: bool,
}

struct OpenObject {
    meta: ObjectMeta,
    index: u32,
    size: u64,
    gap_bytes: u64,
    hasher: Option<Sha256>,
    scans: Vec<ScanSlot>,
}

impl OpenObject {
    fn format(&self) -> Option<WeightFormat> {
        let mut found = None;
        for s in &self.scans {
            match s.scan.format() {
                Some(WeightFormat::Unknown) => {
                    found.get_or_insert(WeightFormat::Unknown);
                }
                Some(f) => return Some(f),
                None => {}
            }
        }
        found
    }

    fn info(&self, dir: Direction, state: FileState, sha256: Option<String>) -> FileInfo {
        FileInfo {
            filename: self.meta.filename.clone(),
            // Suricata's tracked size: the bytes seen and the gaps.
            size: self.size + self.gap_bytes,
            sha256,
            state,
            gaps: self.gap_bytes > 0,
            direction: dir,
            format: self.format(),
            content_type: self.meta.content_type.clone(),
        }
    }
}

/// Most finished request bodies held for their responses (beyond: the
/// oldest is written without one).
const MAX_HELD: usize = 64;

/// The objects open in one TCP connection (at most one per direction), and
/// the `fileinfo` events of finished HTTP request bodies waiting for their
/// transaction's response (its status goes into the event, as Suricata's).
#[derive(Default)]
pub(super) struct ObjectTracker {
    /// Boxed: an open object is ~560 bytes (its metadata and SHA-256
    /// state) and most connections have none open most of the time, so
    /// inline the two slots made every TCP connection 1.1 KB larger.
    open: [Option<Box<OpenObject>>; 2],
    next_index: u32,
    held: Vec<(u64, Event)>,
    /// The last response seen (a body may end after its response came:
    /// an early `413`, a server that answers before reading).
    last_reply: Option<Reply>,
}

/// An [`ObjectSink`] for one call into the app layer: the tracker plus what
/// is needed to write events.
pub(super) struct ObjectEmitter<'a> {
    tracker: &'a mut ObjectTracker,
    env: &'a EventEnv<'a>,
    net: &'a NetworkFields,
    ids: &'a EventIdPrefix,
    /// Packet time (µs) of the call, converted only for events.
    at: i64,
    out: &'a mut Vec<Event>,
    counters: &'a mut ObjectCounters,
}

impl<'a> ObjectEmitter<'a> {
    /// The emitter of one flow's objects: events at `at` (µs) on the flow
    /// `net`, with ids derived from `ids`, pushed to `out`.
    pub fn new(
        tracker: &'a mut ObjectTracker,
        env: &'a EventEnv<'a>,
        net: &'a NetworkFields,
        ids: &'a EventIdPrefix,
        at: i64,
        out: &'a mut Vec<Event>,
        counters: &'a mut ObjectCounters,
    ) -> Self {
        ObjectEmitter {
            tracker,
            env,
            net,
            ids,
            at,
            out,
            counters,
        }
    }

    /// The flow's network fields, with the object's protocol when the flow
    /// has none yet.
    fn net_of(&self, app_proto: AppProto) -> NetworkFields {
        let mut net = self.net.clone();
        if net.app_proto.is_none() {
            net.app_proto = Some(app_proto.to_string());
        }
        net
    }

    fn alert(&mut self, dir: Direction, detector: &str, finding: Finding) {
        let Some(o) = self.tracker.open[dir.index()].as_ref() else {
            return;
        };
        let subject = Subject::Object {
            index: o.index,
            // A snapshot: the object may still be running (size so far, no hash).
            fileinfo: o.info(dir, FileState::Truncated, None),
            http: o.meta.http.clone(),
            tls: o.meta.tls.clone(),
        };
        let net = self.net_of(o.meta.app_proto);
        let ev = alert_event(
            self.env,
            ts(self.at),
            net,
            self.ids,
            detector,
            finding,
            subject,
        );
        self.counters.alerts += 1;
        self.out.push(ev);
    }

    fn begin(&mut self, dir: Direction, mut meta: ObjectMeta) {
        meta.origin = Some(Origin {
            sender: match dir {
                Direction::ToServer => self.net.src_ip,
                Direction::ToClient => self.net.dest_ip,
            },
            receiver: match dir {
                Direction::ToServer => self.net.dest_ip,
                Direction::ToClient => self.net.src_ip,
            },
            begun_us: ts(self.at).unix_micros(),
        });
        if self.tracker.open[dir.index()].is_some() {
            self.end(dir, ObjectEnd::Truncated);
        }
        let index = self.tracker.next_index;
        self.tracker.next_index += 1;
        // What is hashed and scanned: every plaintext object (HTTP bodies
        // and parts, raw streams); TLS and SSH streams only when asked —
        // ciphertext holds no file to name and nothing a content detector
        // can find, and on busy links most bytes are ciphertext.
        let content =
            self.env.inspect_encrypted || !matches!(meta.app_proto, AppProto::Tls | AppProto::Ssh);
        let scans = if content {
            self.env
                .detectors
                .object
                .iter()
                .filter_map(|d| {
                    d.begin(&meta).map(|scan| ScanSlot {
                        detector: d.name(),
                        scan,
                        active: true,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        self.counters.objects += 1;
        self.tracker.open[dir.index()] = Some(Box::new(OpenObject {
            meta,
            index,
            size: 0,
            gap_bytes: 0,
            hasher: (self.env.file_hash && content).then(Sha256::new),
            scans,
        }));
    }

    fn data(&mut self, dir: Direction, bytes: &[u8]) {
        let Some(o) = self.tracker.open[dir.index()].as_mut() else {
            return;
        };
        let offset = o.size + o.gap_bytes;
        o.size += bytes.len() as u64;
        self.counters.object_bytes += bytes.len() as u64;
        if let Some(h) = o.hasher.as_mut() {
            h.update(bytes);
        }
        let mut findings = Vec::new();
        for s in o.scans.iter_mut().filter(|s| s.active) {
            if let Some(f) = s.scan.data(offset, bytes) {
                s.active = false;
                findings.push((s.detector, f));
            } else if s.scan.done() {
                s.active = false;
            }
        }
        for (d, f) in findings {
            self.alert(dir, d, f);
        }
    }

    fn gap(&mut self, dir: Direction, len: u64) {
        let Some(o) = self.tracker.open[dir.index()].as_mut() else {
            return;
        };
        o.gap_bytes += len;
        for s in o.scans.iter_mut().filter(|s| s.active) {
            s.scan.gap(len);
        }
    }

    fn end(&mut self, dir: Direction, end: ObjectEnd) {
        let Some(o) = self.tracker.open[dir.index()].as_mut() else {
            return;
        };
        let mut findings = Vec::new();
        for s in o.scans.iter_mut().filter(|s| s.active) {
            s.active = false;
            if let Some(f) = s.scan.end(end) {
                findings.push((s.detector, f));
            }
        }
        for s in &o.scans {
            self.counters.decode.merge(&s.scan.tally());
        }
        for (d, f) in findings {
            self.alert(dir, d, f);
        }
        let Some(mut o) = self.tracker.open[dir.index()].take() else {
            return;
        };
        // As Suricata (util-file.c): a file with gaps is TRUNCATED however
        // it ended and has no hash (a hash over bytes with holes would read
        // as the file's hash, and is not); a file cut short without a gap
        // keeps the hash of what was seen, as Suricata's `force-hash`
        // writes it (the sensor always hashes, so is always in that mode).
        let state = match end {
            ObjectEnd::Complete if o.gap_bytes == 0 => FileState::Closed,
            _ => FileState::Truncated,
        };
        if state == FileState::Truncated {
            self.counters.truncated += 1;
        }
        if o.gap_bytes > 0 {
            self.counters.objects_with_gaps += 1;
        }
        let sha = o
            .hasher
            .take()
            .filter(|_| o.gap_bytes == 0)
            .map(|h| hex(&h.finalize()));
        let is_http = o.meta.http.is_some();
        let body = FileinfoEvent {
            fileinfo: o.info(dir, state, sha),
            http: o.meta.http.take(),
            tls: o.meta.tls.take(),
        };
        let id = self.ids.id(format_args!("|fileinfo|{}", o.index));
        let ev = Event::with_id(ts(self.at), EventKind::Fileinfo(body), id)
            .sensor(self.env.sensor_id)
            .network(self.net_of(o.meta.app_proto));
        match (o.meta.tx_id, &self.tracker.last_reply) {
            (Some(tx), Some(r)) if r.tx_id >= tx => {
                let mut ev = ev;
                if r.tx_id == tx {
                    answer(&mut ev, r);
                }
                self.out.push(ev);
            }
            (Some(tx), _) if is_http => {
                if self.tracker.held.len() >= MAX_HELD {
                    let (_, oldest) = self.tracker.held.remove(0);
                    self.out.push(oldest);
                }
                self.tracker.held.push((tx, ev));
            }
            _ => self.out.push(ev),
        }
    }

    /// The response to transaction `reply.tx_id` came: its request bodies'
    /// events take its status and content type and are written (with those
    /// of earlier transactions, whose responses were never seen).
    fn reply(&mut self, reply: &Reply) {
        let held = std::mem::take(&mut self.tracker.held);
        for (tx, mut ev) in held {
            if tx > reply.tx_id {
                self.tracker.held.push((tx, ev));
                continue;
            }
            if tx == reply.tx_id {
                answer(&mut ev, reply);
            }
            ev.timestamp = ts(self.at);
            self.out.push(ev);
        }
        self.tracker.last_reply = Some(reply.clone());
    }

    /// Write every held request body's event as it is: the connection
    /// ended, no response will come.
    pub fn flush_held(&mut self) {
        for (_, ev) in self.tracker.held.drain(..) {
            self.out.push(ev);
        }
    }
}

impl ObjectSink for ObjectEmitter<'_> {
    fn object(&mut self, dir: Direction, event: ObjectEvent<'_>) {
        match event {
            ObjectEvent::Begin(meta) => self.begin(dir, meta),
            ObjectEvent::Data(b) => self.data(dir, b),
            ObjectEvent::Gap(n) => self.gap(dir, n),
            ObjectEvent::End(end) => self.end(dir, end),
            ObjectEvent::Reply(r) => self.reply(&r),
        }
    }
}

/// A request body's `fileinfo` takes its response's status and content type.
fn answer(ev: &mut Event, reply: &Reply) {
    if let EventKind::Fileinfo(f) = &mut ev.kind
        && let Some(http) = f.http.as_mut()
    {
        http.status = Some(reply.status);
        http.http_content_type.clone_from(&reply.content_type);
    }
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
