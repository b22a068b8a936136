//! Matching objects against the known-weights index: a rolling FastCDC over
//! each object's bytes (re-synchronising after gaps and at any starting
//! offset), each chunk's xxh3 looked up in the index.

use super::{Chunker, Index, low_information};
use crate::detect::config::DetectConfig;
use crate::detect::{Detector, Finding, ObjectScan, sig};
use crate::object::{ObjectEnd, ObjectMeta};
use eve::{AlertCategory, Evidence};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Distinct registered files tracked per object (bounds memory).
const MAX_FILES_PER_OBJECT: usize = 64;

/// The known-weights detector.
pub struct KnownWeightsDetector {
    index: Arc<Index>,
    cfg: Arc<DetectConfig>,
}

impl KnownWeightsDetector {
    /// A detector over `index`.
    pub fn new(index: Arc<Index>, cfg: Arc<DetectConfig>) -> Self {
        KnownWeightsDetector { index, cfg }
    }
}

impl Detector for KnownWeightsDetector {
    fn name(&self) -> &'static str {
        "known_weights"
    }

    fn begin(&self, _meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>> {
        if self.index.chunks.is_empty() {
            return None;
        }
        Some(Box::new(KnownScan {
            chunker: Chunker::new(self.index.params),
            index: self.index.clone(),
            cfg: self.cfg.clone(),
            next: None,
            hits: HashMap::new(),
            chunks_seen: 0,
            bytes_seen: 0,
            done: false,
        }))
    }
}

#[derive(Clone, Copy, Default)]
struct Hits {
    chunks: u32,
    bytes: u64,
}

/// Per-object state of [`KnownWeightsDetector`].
pub struct KnownScan {
    chunker: Chunker,
    index: Arc<Index>,
    cfg: Arc<DetectConfig>,
    next: Option<u64>,
    hits: HashMap<u32, Hits>,
    chunks_seen: u64,
    bytes_seen: u64,
    done: bool,
}

impl KnownScan {
    fn on_chunk(index: &Index, hits: &mut HashMap<u32, Hits>, chunks_seen: &mut u64, c: &[u8]) {
        *chunks_seen += 1;
        let h = xxh3_64(c);
        if !index.sampled(h) {
            return;
        }
        let entries = index.lookup(h);
        if entries.is_empty() || low_information(c) {
            return;
        }
        for e in entries {
            if e.len as usize != c.len() {
                continue;
            }
            if !hits.contains_key(&e.file) && hits.len() >= MAX_FILES_PER_OBJECT {
                continue;
            }
            let hit = hits.entry(e.file).or_default();
            hit.chunks += 1;
            hit.bytes += c.len() as u64;
        }
    }

    fn best(&self) -> Option<(u32, Hits)> {
        self.hits
            .iter()
            .max_by_key(|(f, h)| (h.bytes, std::cmp::Reverse(**f)))
            .map(|(f, h)| (*f, *h))
            .filter(|(_, h)| h.chunks >= self.cfg.known_min_chunks)
    }

    fn finding(&self, file: u32, hit: Hits, complete: bool) -> Option<Finding> {
        let f = self.index.files.get(file as usize)?;
        let sample = u64::from(self.index.sample);
        let estimated = hit.bytes.saturating_mul(sample).min(f.size);
        let coverage = if f.size > 0 {
            estimated as f64 / f.size as f64
        } else {
            0.0
        };
        let mut e = Evidence::new();
        e.insert("known_file".into(), json!(f.name));
        e.insert("known_file_bytes".into(), json!(f.size));
        e.insert("known_file_sha256".into(), json!(hex(&f.sha256)));
        e.insert("matched_chunks".into(), json!(hit.chunks));
        e.insert("matched_bytes".into(), json!(hit.bytes));
        e.insert(
            "coverage".into(),
            json!((coverage * 1000.0).round() / 1000.0),
        );
        e.insert("index_sample".into(), json!(sample));
        e.insert("object_bytes_seen".into(), json!(self.bytes_seen));
        e.insert("object_complete".into(), json!(complete));
        let mut others: Vec<(u32, Hits)> = self
            .hits
            .iter()
            .filter(|(id, h)| **id != file && h.chunks >= self.cfg.known_min_chunks)
            .map(|(id, h)| (*id, *h))
            .collect();
        if !others.is_empty() {
            others.sort_by_key(|(id, h)| (std::cmp::Reverse(h.bytes), *id));
            let list: Vec<_> = others
                .iter()
                .take(8)
                .filter_map(|(id, h)| {
                    let f = self.index.files.get(*id as usize)?;
                    Some(json!({"known_file": f.name, "matched_bytes": h.bytes}))
                })
                .collect();
            e.insert("also_matched".into(), json!(list));
        }
        let severity = if coverage >= 0.25 || hit.bytes >= 16 << 20 {
            1
        } else {
            2
        };
        let short = f.name.rsplit('/').next().unwrap_or(&f.name);
        Some(Finding {
            category: AlertCategory::WeightsKnown,
            signature: format!(
                "WEIGHTWATCH known weights: {short} ({:.0}% of file seen)",
                coverage * 100.0
            ),
            signature_id: sig::KNOWN_WEIGHTS,
            severity,
            evidence: e,
        })
    }
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
            self.chunker.reset();
        }
        self.next = Some(offset + bytes.len() as u64);
        self.bytes_seen += bytes.len() as u64;
        let (index, hits, seen) = (&self.index, &mut self.hits, &mut self.chunks_seen);
        self.chunker
            .push(bytes, |c| Self::on_chunk(index, hits, seen, c));
        let (file, hit) = self.best()?;
        if hit.bytes >= self.cfg.known_early_alert_bytes {
            self.done = true;
            return self.finding(file, hit, false);
        }
        None
    }

    fn gap(&mut self, _len: u64) {
        self.chunker.reset();
        self.next = None;
    }

    fn end(&mut self, state: ObjectEnd) -> Option<Finding> {
        if self.done {
            return None;
        }
        self.done = true;
        let (index, hits, seen) = (&self.index, &mut self.hits, &mut self.chunks_seen);
        self.chunker
            .finish(|c| Self::on_chunk(index, hits, seen, c));
        let (file, hit) = self.best()?;
        self.finding(file, hit, state == ObjectEnd::Complete)
    }

    fn done(&self) -> bool {
        self.done
    }
}
