//! Detector micro-benchmarks for `weightwatch bench capture`: how many MB/s
//! the tensor classifier, the known-weights chunk matcher (every byte, and as
//! configured: sampled beyond the first 4 MiB) and the format fingerprinter
//! sustain on generated data (bf16 N(0, 0.02) tensors and random bytes), one
//! object of `bytes` bytes, single-threaded. Timings belong here, never in tests.

use super::config::DetectConfig;
use super::known::{ChunkParams, Index, KnownWeightsDetector};
use super::{Detector, format, stats};
use crate::object::{ObjectEnd, ObjectMeta};
use std::sync::Arc;
use std::time::Instant;

/// Throughput of each detector, MB/s (10^6 bytes per second).
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Bytes each measurement processed.
    pub bytes: usize,
    /// `stats::classify` over consecutive 64 KiB windows of bf16 tensors
    /// (every window fully analysed: the worst case).
    pub classifier_tensor_mb_s: f64,
    /// `stats::classify` over random bytes (rejected by the entropy prefilter).
    pub classifier_random_mb_s: f64,
    /// The tensor-statistics scan as the engine drives it (sampled windows).
    pub stats_scan_mb_s: f64,
    /// Known-weights matcher chunking every byte (FastCDC + xxh3 + lookup)
    /// of one object of unregistered tensor bytes: the worst case.
    pub matcher_every_byte_mb_s: f64,
    /// Known-weights matcher as configured by default (first 4 MiB in full,
    /// then sampled windows) over the same object: its cost on unknown traffic.
    pub matcher_mb_s: f64,
    /// Format fingerprint scan of a whole object (buffers its first MiB).
    pub format_scan_mb_s: f64,
}

fn bf16_tensor(len: usize, mut seed: u64) -> Vec<u8> {
    let mut next = move || {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let (u1, u2) = (next().max(f64::MIN_POSITIVE), next());
        let x = 0.02 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let bits = (x as f32).to_bits();
        out.extend_from_slice(&((bits >> 16) as u16).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn random(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def1u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn mb_s(bytes: usize, start: Instant) -> f64 {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    (bytes as f64 / 1e6 / secs * 10.0).round() / 10.0
}

fn feed(det: &dyn Detector, data: &[u8]) {
    if let Some(mut scan) = det.begin(&ObjectMeta::default()) {
        for (i, c) in data.chunks(1448).enumerate() {
            if scan.done() || scan.data((i * 1448) as u64, c).is_some() {
                break;
            }
        }
        let _ = scan.end(ObjectEnd::Complete);
    }
}

/// Measure every detector, configured by `cfg`, on `bytes` bytes of
/// generated data.
pub fn measure(bytes: usize, cfg: &DetectConfig) -> Throughput {
    let bytes = bytes.max(1 << 20);
    let tensor = bf16_tensor(bytes, 7);
    let noise = random(bytes);
    let cfg = Arc::new(cfg.clone());

    let t = Instant::now();
    let hits = tensor
        .chunks_exact(64 * 1024)
        .filter(|w| stats::classify(w).is_some())
        .count();
    let classifier_tensor_mb_s = mb_s(bytes, t);
    std::hint::black_box(hits);
    let t = Instant::now();
    let hits = noise
        .chunks_exact(64 * 1024)
        .filter(|w| stats::classify(w).is_some())
        .count();
    let classifier_random_mb_s = mb_s(bytes, t);
    std::hint::black_box(hits);

    // The scan as driven: a noise object never decides, so every window is sampled.
    let det = stats::TensorStatsDetector::new(cfg.clone());
    let t = Instant::now();
    feed(&det, &noise);
    let stats_scan_mb_s = mb_s(bytes, t);

    // A registered file of other tensor bytes: every lookup misses, as on
    // unknown traffic.
    let mut index = Index {
        params: ChunkParams::default(),
        sample: 1,
        files: Vec::new(),
        chunks: Vec::new(),
    };
    let _ = index.add("bench.bin", bf16_tensor(4 << 20, 8).as_slice());
    let index = Arc::new(index);
    let every_byte = DetectConfig {
        known_window_stride_bytes: cfg.known_window_bytes,
        ..cfg.as_ref().clone()
    };
    let det = KnownWeightsDetector::new(index.clone(), Arc::new(every_byte));
    let t = Instant::now();
    feed(&det, &tensor);
    let matcher_every_byte_mb_s = mb_s(bytes, t);
    let det = KnownWeightsDetector::new(index, cfg.clone());
    let t = Instant::now();
    feed(&det, &tensor);
    let matcher_mb_s = mb_s(bytes, t);

    let det = format::FormatDetector::new(cfg);
    let t = Instant::now();
    feed(&det, &noise);
    let format_scan_mb_s = mb_s(bytes, t);

    Throughput {
        bytes,
        classifier_tensor_mb_s,
        classifier_random_mb_s,
        stats_scan_mb_s,
        matcher_every_byte_mb_s,
        matcher_mb_s,
        format_scan_mb_s,
    }
}
