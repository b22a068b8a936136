//! The engine's [`ObjectSink`]: hashes each object, feeds it to the
//! object detectors, and turns it into a `fileinfo` event (and their
//! findings into `alert` events, through [`super::alert`]).

use super::alert::{Subject, alert_event};
use super::counters::ObjectCounters;
use super::env::EventEnv;
use crate::detect::{Finding, ObjectScan};
use crate::object::{AppProto, ObjectEnd, ObjectEvent, ObjectMeta, ObjectSink};
use eve::{
    Direction, Event, EventKind, FileInfo, FileState, FileinfoEvent, NetworkFields, Timestamp,
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
            size: self.size,
            sha256,
            state,
            gaps: self.gap_bytes > 0,
            direction: dir,
            format: self.format(),
            content_type: self.meta.content_type.clone(),
        }
    }
}

/// The objects open in one TCP connection (at most one per direction).
#[derive(Default)]
pub(super) struct ObjectTracker {
    open: [Option<OpenObject>; 2],
    next_index: u32,
}

/// An [`ObjectSink`] for one call into the app layer: the tracker plus what
/// is needed to write events.
pub(super) struct ObjectEmitter<'a> {
    tracker: &'a mut ObjectTracker,
    env: &'a EventEnv<'a>,
    net: &'a NetworkFields,
    id_base: &'a str,
    ts: Timestamp,
    out: &'a mut Vec<Event>,
    counters: &'a mut ObjectCounters,
}

impl<'a> ObjectEmitter<'a> {
    /// The emitter of one flow's objects: events at `ts` on the flow `net`,
    /// with ids derived from `id_base`, pushed to `out`.
    pub fn new(
        tracker: &'a mut ObjectTracker,
        env: &'a EventEnv<'a>,
        net: &'a NetworkFields,
        id_base: &'a str,
        ts: Timestamp,
        out: &'a mut Vec<Event>,
        counters: &'a mut ObjectCounters,
    ) -> Self {
        ObjectEmitter {
            tracker,
            env,
            net,
            id_base,
            ts,
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
            self.ts,
            net,
            self.id_base,
            detector,
            finding,
            subject,
        );
        self.counters.alerts += 1;
        self.out.push(ev);
    }

    fn begin(&mut self, dir: Direction, meta: ObjectMeta) {
        if self.tracker.open[dir.index()].is_some() {
            self.end(dir, ObjectEnd::Truncated);
        }
        let index = self.tracker.next_index;
        self.tracker.next_index += 1;
        let scans = self
            .env
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
            .collect();
        self.counters.objects += 1;
        self.tracker.open[dir.index()] = Some(OpenObject {
            meta,
            index,
            size: 0,
            gap_bytes: 0,
            hasher: self.env.file_hash.then(Sha256::new),
            scans,
        });
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
        for (d, f) in findings {
            self.alert(dir, d, f);
        }
        let Some(mut o) = self.tracker.open[dir.index()].take() else {
            return;
        };
        let state = match end {
            ObjectEnd::Complete => FileState::Closed,
            ObjectEnd::Truncated => FileState::Truncated,
        };
        if state == FileState::Truncated {
            self.counters.truncated += 1;
        }
        if o.gap_bytes > 0 {
            self.counters.objects_with_gaps += 1;
        }
        let sha = o.hasher.take().map(|h| hex(&h.finalize()));
        let body = FileinfoEvent {
            fileinfo: o.info(dir, state, sha),
            http: o.meta.http.clone(),
            tls: o.meta.tls.clone(),
        };
        let name = format!("{}|fileinfo|{}", self.id_base, o.index);
        let ev = Event::with_derived_id(self.ts, EventKind::Fileinfo(body), &name)
            .sensor(self.env.sensor_id)
            .network(self.net_of(o.meta.app_proto));
        self.out.push(ev);
    }
}

impl ObjectSink for ObjectEmitter<'_> {
    fn object(&mut self, dir: Direction, event: ObjectEvent<'_>) {
        match event {
            ObjectEvent::Begin(meta) => self.begin(dir, meta),
            ObjectEvent::Data(b) => self.data(dir, b),
            ObjectEvent::Gap(n) => self.gap(dir, n),
            ObjectEvent::End(end) => self.end(dir, end),
        }
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
