//! Tensor statistics: recognise headerless fp32 / fp16 / bf16 / fp8 / int8
//! tensor bytes anywhere in an object (mid-stream captures included) from
//! sampled windows, and name the dtype.
//!
//! Method, per 64 KiB window: a byte-entropy and printable-text prefilter
//! drops random/compressed/encrypted bytes and text; then each hypothesis
//! (dtype × byte phase) decodes the window's elements and tests what trained
//! weights look like: no NaN/Inf, few exact zeros, signs balanced and
//! uncorrelated between neighbours (smooth signals such as audio and images
//! fail here), magnitudes clustered in a few binades (the exponent-byte
//! clustering) with the same median for both signs, mantissa lanes near
//! uniform (per-lane entropy); int8 must be a symmetric bell (kurtosis of a
//! normal-ish law, not uniform). An object alerts once
//! `stats_windows_required` windows agree on one dtype.

use super::config::DetectConfig;
use super::{Detector, Finding, ObjectScan, sig};
use crate::object::{ObjectEnd, ObjectMeta};
use eve::{AlertCategory, Evidence, WeightFormat};
use serde_json::json;
use std::sync::Arc;

/// A recognised element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// fp8 E4M3.
    F8E4M3,
    /// int8 (quantised).
    I8,
}

impl TensorDtype {
    /// Lower-case name used in evidence.
    pub fn name(self) -> &'static str {
        match self {
            TensorDtype::F32 => "f32",
            TensorDtype::F16 => "f16",
            TensorDtype::BF16 => "bf16",
            TensorDtype::F8E4M3 => "f8_e4m3",
            TensorDtype::I8 => "i8",
        }
    }

    const ALL: [TensorDtype; 5] = [
        TensorDtype::BF16,
        TensorDtype::F16,
        TensorDtype::F32,
        TensorDtype::F8E4M3,
        TensorDtype::I8,
    ];

    fn index(self) -> usize {
        match self {
            TensorDtype::BF16 => 0,
            TensorDtype::F16 => 1,
            TensorDtype::F32 => 2,
            TensorDtype::F8E4M3 => 3,
            TensorDtype::I8 => 4,
        }
    }
}

/// Smallest window classified.
pub const MIN_WINDOW: usize = 4096;

fn entropy(hist: &[u32; 256], n: u32) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    hist.iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A decoded float element: sign, binade (floor(log2|x|)), zero, special.
#[derive(Clone, Copy)]
struct Elem {
    neg: bool,
    binade: i32,
    zero: bool,
    special: bool,
}

fn decode(d: TensorDtype, b: &[u8]) -> Elem {
    match d {
        TensorDtype::F32 => {
            let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let e = ((v >> 23) & 0xff) as i32;
            let m = v & 0x7f_ffff;
            Elem {
                neg: v >> 31 == 1,
                binade: if e == 0 {
                    -127 - (23 - (32 - m.leading_zeros()) as i32)
                } else {
                    e - 127
                },
                zero: v & 0x7fff_ffff == 0,
                special: e == 0xff,
            }
        }
        TensorDtype::BF16 | TensorDtype::F16 => {
            let v = u16::from_le_bytes([b[0], b[1]]);
            let (eb, mb, bias) = if d == TensorDtype::BF16 {
                (8, 7, 127)
            } else {
                (5, 10, 15)
            };
            let e = ((v >> mb) & ((1 << eb) - 1)) as i32;
            let m = u32::from(v & ((1 << mb) - 1));
            Elem {
                neg: v >> 15 == 1,
                binade: if e == 0 {
                    1 - bias - (mb - (32 - m.leading_zeros()) as i32)
                } else {
                    e - bias
                },
                zero: v & 0x7fff == 0,
                special: e == (1 << eb) - 1,
            }
        }
        TensorDtype::F8E4M3 | TensorDtype::I8 => {
            let v = b[0];
            let e = ((v >> 3) & 0xf) as i32;
            let m = u32::from(v & 7);
            Elem {
                neg: v >> 7 == 1,
                binade: if e == 0 {
                    -6 - (3 - (32 - m.leading_zeros()) as i32)
                } else {
                    e - 7
                },
                zero: v & 0x7f == 0,
                special: v & 0x7f == 0x7f,
            }
        }
    }
}

/// Percentile of a histogram over binades offset by `BIAS`.
fn percentile(hist: &[u32], total: u32, q: f64) -> i32 {
    let target = (f64::from(total) * q) as u32;
    let mut acc = 0;
    for (i, c) in hist.iter().enumerate() {
        acc += c;
        if acc > target {
            return i as i32 - BIAS;
        }
    }
    hist.len() as i32 - BIAS
}

const BIAS: i32 = 160;

/// Measured features of one hypothesis (for evidence and tuning).
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// Fraction of negative among non-zero elements.
    pub negative: f64,
    /// Fraction of neighbouring non-zero elements with the same sign.
    pub sign_agreement: f64,
    /// Median binade.
    pub median_binade: i32,
    /// 95th − 5th percentile binade.
    pub binade_spread: i32,
    /// Entropy (bits) of the lowest byte lane.
    pub low_lane_entropy: f64,
}

fn test_float(w: &[u8], d: TensorDtype, phase: usize) -> Option<Features> {
    let width = match d {
        TensorDtype::F32 => 4,
        TensorDtype::BF16 | TensorDtype::F16 => 2,
        _ => 1,
    };
    let body = w.get(phase..)?;
    let n = body.len() / width;
    let (mut special, mut zero, mut neg, mut agree, mut pairs) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut hist_pos = [0u32; 320];
    let mut hist_neg = [0u32; 320];
    let mut low = [0u32; 256];
    let mut prev: Option<bool> = None;
    for ch in body.chunks_exact(width) {
        let e = decode(d, ch);
        low[ch[0] as usize] += 1;
        if e.special {
            special += 1;
            continue;
        }
        if e.zero {
            zero += 1;
            continue;
        }
        let idx = (e.binade + BIAS).clamp(0, 319) as usize;
        if e.neg {
            neg += 1;
            hist_neg[idx] += 1;
        } else {
            hist_pos[idx] += 1;
        }
        if let Some(p) = prev {
            pairs += 1;
            agree += u32::from(p == e.neg);
        }
        prev = Some(e.neg);
    }
    let n = n as u32;
    let nonzero = n.saturating_sub(special + zero);
    if n < 1000 || special * 1000 > n || zero * 2 > n || nonzero < 1000 {
        return None;
    }
    let negative = f64::from(neg) / f64::from(nonzero);
    let sign_agreement = f64::from(agree) / f64::from(pairs.max(1));
    if !(0.40..=0.60).contains(&negative) || !(0.40..=0.60).contains(&sign_agreement) {
        return None;
    }
    let all: Vec<u32> = hist_pos.iter().zip(&hist_neg).map(|(a, b)| a + b).collect();
    let p5 = percentile(&all, nonzero, 0.05);
    let p50 = percentile(&all, nonzero, 0.50);
    let p95 = percentile(&all, nonzero, 0.95);
    let npos = nonzero - neg;
    let mpos = percentile(&hist_pos, npos, 0.5);
    let mneg = percentile(&hist_neg, neg, 0.5);
    let spread = p95 - p5;
    let (spread_ok, median_ok) = match d {
        TensorDtype::F8E4M3 => ((2..=8).contains(&spread), (-6..=8).contains(&p50)),
        _ => ((2..=10).contains(&spread), (-24..=6).contains(&p50)),
    };
    if !spread_ok || !median_ok || (mpos - mneg).abs() > 1 {
        return None;
    }
    let low_lane_entropy = entropy(&low, n);
    let min_low = match d {
        TensorDtype::F32 => 7.0,
        TensorDtype::BF16 | TensorDtype::F16 => 6.5,
        _ => 4.0,
    };
    if low_lane_entropy < min_low {
        return None;
    }
    if d == TensorDtype::F32 {
        // Both low mantissa lanes must be near uniform.
        let mut lane1 = [0u32; 256];
        body.chunks_exact(4).for_each(|c| lane1[c[1] as usize] += 1);
        if entropy(&lane1, n) < 7.0 {
            return None;
        }
    }
    Some(Features {
        negative,
        sign_agreement,
        median_binade: p50,
        binade_spread: spread,
        low_lane_entropy,
    })
}

fn test_int8(w: &[u8]) -> Option<Features> {
    let mut hist = [0u32; 256];
    let (mut zero, mut neg, mut agree, mut pairs) = (0u32, 0u32, 0u32, 0u32);
    let (mut s2, mut s4) = (0f64, 0f64);
    let mut prev: Option<bool> = None;
    for b in w {
        hist[*b as usize] += 1;
        let v = *b as i8;
        let x = f64::from(v);
        s2 += x * x;
        s4 += x * x * x * x;
        if v == 0 {
            zero += 1;
            continue;
        }
        neg += u32::from(v < 0);
        if let Some(p) = prev {
            pairs += 1;
            agree += u32::from(p == (v < 0));
        }
        prev = Some(v < 0);
    }
    let n = w.len() as u32;
    let nonzero = n - zero;
    if n < 1000 || zero * 10 > n * 3 {
        return None;
    }
    let negative = f64::from(neg) / f64::from(nonzero.max(1));
    let sign_agreement = f64::from(agree) / f64::from(pairs.max(1));
    if !(0.40..=0.60).contains(&negative) || !(0.40..=0.60).contains(&sign_agreement) {
        return None;
    }
    let var = s2 / f64::from(n);
    let std = var.sqrt();
    let kurt = s4 / f64::from(n) / (var * var).max(1e-9);
    if !(3.0..=70.0).contains(&std) || !(2.3..=8.0).contains(&kurt) {
        return None;
    }
    let asym: u32 = (1..128usize).map(|v| hist[v].abs_diff(hist[256 - v])).sum();
    if f64::from(asym) / f64::from(n) > 0.15 {
        return None;
    }
    let h = entropy(&hist, n);
    if !(4.5..=7.7).contains(&h) {
        return None;
    }
    Some(Features {
        negative,
        sign_agreement,
        median_binade: std.log2() as i32,
        binade_spread: 0,
        low_lane_entropy: h,
    })
}

/// Entropy spread across the four byte lanes (offset mod 4): one-byte
/// dtypes have none; multi-byte data (PCM audio, wider tensors) do.
fn lane_entropy_spread(w: &[u8]) -> f64 {
    let mut lanes = [[0u32; 256]; 4];
    for (i, b) in w.iter().enumerate() {
        lanes[i & 3][*b as usize] += 1;
    }
    let n = (w.len() / 4) as u32;
    let h: Vec<f64> = lanes.iter().map(|l| entropy(l, n)).collect();
    let max = h.iter().cloned().fold(f64::MIN, f64::max);
    let min = h.iter().cloned().fold(f64::MAX, f64::min);
    max - min
}

/// Classify one window of bytes (any alignment). `None`: not tensor-shaped.
pub fn classify(window: &[u8]) -> Option<TensorDtype> {
    classify_features(window).map(|(d, _)| d)
}

/// [`classify`] with the winning hypothesis' features.
pub fn classify_features(window: &[u8]) -> Option<(TensorDtype, Features)> {
    if window.len() < MIN_WINDOW {
        return None;
    }
    let mut hist = [0u32; 256];
    let mut text = 0u32;
    for b in window {
        hist[*b as usize] += 1;
        text += u32::from(matches!(b, 0x20..=0x7e | b'\n' | b'\r' | b'\t'));
    }
    let n = window.len() as u32;
    // Random, compressed, encrypted: all lanes uniform.
    if entropy(&hist, n) > 7.97 {
        return None;
    }
    // Text (ASCII or mostly): no sign bits at all.
    if text * 10 > n * 9 {
        return None;
    }
    let one_byte_ok = lane_entropy_spread(window) < 0.25;
    for d in TensorDtype::ALL {
        if matches!(d, TensorDtype::F8E4M3 | TensorDtype::I8) && !one_byte_ok {
            continue;
        }
        let phases = match d {
            TensorDtype::F32 => 4,
            TensorDtype::BF16 | TensorDtype::F16 => 2,
            _ => 1,
        };
        for p in 0..phases {
            let f = if d == TensorDtype::I8 {
                test_int8(window)
            } else {
                test_float(window, d, p)
            };
            if let Some(f) = f {
                return Some((d, f));
            }
        }
    }
    None
}

/// The tensor-statistics detector.
pub struct TensorStatsDetector {
    cfg: Arc<DetectConfig>,
}

impl TensorStatsDetector {
    /// A detector with these thresholds.
    pub fn new(cfg: Arc<DetectConfig>) -> Self {
        TensorStatsDetector { cfg }
    }
}

impl Detector for TensorStatsDetector {
    fn name(&self) -> &'static str {
        "tensor_stats"
    }

    fn begin(&self, meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>> {
        if meta
            .declared_size
            .is_some_and(|s| s < self.cfg.stats_min_bytes)
        {
            return None;
        }
        Some(Box::new(StatsScan {
            cfg: self.cfg.clone(),
            origin: None,
            next_start: 0,
            win: Vec::new(),
            windows: 0,
            votes: [0; 5],
            first_match: None,
            features: None,
            seen: 0,
            done: false,
        }))
    }
}

/// Per-object state of [`TensorStatsDetector`].
pub struct StatsScan {
    cfg: Arc<DetectConfig>,
    origin: Option<u64>,
    /// Object offset where the next window starts.
    next_start: u64,
    win: Vec<u8>,
    windows: u32,
    votes: [u32; 5],
    first_match: Option<u64>,
    features: Option<Features>,
    seen: u64,
    done: bool,
}

impl StatsScan {
    fn window_len(&self) -> usize {
        self.cfg.stats_window_bytes as usize
    }

    fn evaluate(&mut self) -> Option<Finding> {
        let start = self.next_start;
        let result = classify_features(&self.win);
        self.win.clear();
        self.windows += 1;
        self.next_start += self.cfg.stats_stride_bytes;
        if let Some((d, f)) = result {
            self.votes[d.index()] += 1;
            self.first_match.get_or_insert(start);
            self.features = Some(f);
            if self.votes[d.index()] >= self.cfg.stats_windows_required {
                self.done = true;
                return Some(self.finding(d));
            }
        }
        if self.windows >= self.cfg.stats_max_windows {
            self.done = true;
        }
        None
    }

    fn finding(&self, d: TensorDtype) -> Finding {
        let mut e = Evidence::new();
        let matched = self.votes[d.index()];
        e.insert("dtype".into(), json!(d.name()));
        e.insert("windows_examined".into(), json!(self.windows));
        e.insert("windows_matched".into(), json!(matched));
        e.insert("window_bytes".into(), json!(self.cfg.stats_window_bytes));
        if let Some(o) = self.first_match {
            e.insert("first_match_offset".into(), json!(o));
        }
        if let Some(f) = self.features {
            e.insert(
                "negative_fraction".into(),
                json!((f.negative * 1000.0).round() / 1000.0),
            );
            e.insert(
                "sign_agreement".into(),
                json!((f.sign_agreement * 1000.0).round() / 1000.0),
            );
            e.insert("median_binade".into(), json!(f.median_binade));
            e.insert("binade_spread".into(), json!(f.binade_spread));
            e.insert(
                "low_lane_entropy".into(),
                json!((f.low_lane_entropy * 100.0).round() / 100.0),
            );
        }
        e.insert("bytes_seen".into(), json!(self.seen));
        let severity = if matched >= 4 && self.seen >= 1 << 30 {
            1
        } else {
            2
        };
        Finding {
            category: AlertCategory::WeightsTensor,
            sig: &sig::TENSOR_STATS,
            detail: format!("headerless {} tensor data", d.name()),
            severity,
            evidence: e,
        }
    }
}

impl ObjectScan for StatsScan {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Option<Finding> {
        if self.done {
            return None;
        }
        let origin = *self.origin.get_or_insert(offset);
        let rel = offset - origin.min(offset);
        self.seen = self.seen.max(rel + bytes.len() as u64);
        let mut pos = 0usize;
        while pos < bytes.len() && !self.done {
            let at = rel + pos as u64;
            let want_at = self.next_start + self.win.len() as u64;
            if at < want_at {
                // Skip to the window's next byte.
                pos += usize::try_from(want_at - at)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - pos);
                continue;
            }
            if at > want_at {
                // Bytes missing (gap): restart the window here.
                self.win.clear();
                self.next_start = at;
            }
            let take = (self.window_len() - self.win.len()).min(bytes.len() - pos);
            self.win.extend_from_slice(&bytes[pos..pos + take]);
            pos += take;
            if self.win.len() >= self.window_len()
                && let Some(f) = self.evaluate()
            {
                return Some(f);
            }
        }
        None
    }

    fn end(&mut self, _state: ObjectEnd) -> Option<Finding> {
        None
    }

    fn format(&self) -> Option<WeightFormat> {
        (self.done
            && self
                .votes
                .iter()
                .any(|v| *v >= self.cfg.stats_windows_required))
        .then_some(WeightFormat::RawTensor)
    }

    fn done(&self) -> bool {
        self.done
    }
}
