//! Format fingerprints: one aho-corasick pass over an object's first bytes
//! finds candidate magics; a structural parser per format then confirms (so a
//! stray `GGUF` in a text file does not alert) and extracts the evidence:
//! dtypes, tensor count, parameter estimate, header-declared size,
//! architecture and model name.

mod archive;
mod compressed;
mod coreml;
mod cursor;
mod flax;
mod ggml;
mod gguf;
mod hdf5;
mod inflate;
mod joblib;
pub mod llamafile;
mod names;
mod numpy;
mod onnx;
mod openvino;
mod pickle;
mod safetensors;
mod tfckpt;
mod tflite;
mod torch;

use super::config::DetectConfig;
use super::{DecodeTally, Detector, Finding, ObjectScan, sig};
use crate::object::{ObjectEnd, ObjectMeta};
use aho_corasick::{AhoCorasick, Input, Match, MatchKind};
use cursor::Fail;
use eve::{AlertCategory, Evidence, WeightFormat};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

pub use names::is_model_member;

/// What a confirmed object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Model weights (float or quantised tensors in a weights format).
    Weights,
    /// An archive whose members are named like model files.
    ModelArchive,
    /// A tensor container that does not look like weights (uint8 image
    /// `.npy`, generic HDF5): category `tensor_data`, low severity.
    TensorData,
}

/// A confirmed format and its evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct Identified {
    /// The format (`fileinfo.format`).
    pub format: WeightFormat,
    /// Weights, model archive or plain tensor data.
    pub kind: Kind,
    /// Sub-kind: `keras`, `legacy`, `gzip`, `zstd`, `index`, `data_shard` …
    pub detail: Option<&'static str>,
    /// Element types seen (format's own names normalised: `bf16`, `f16`, `f32`, `q8_0` …).
    pub dtypes: BTreeSet<String>,
    /// Tensors described in the part of the header seen.
    pub tensors: u64,
    /// Sum of tensor elements in the part of the header seen.
    pub params: u64,
    /// Total file size the header declares, when it does.
    pub declared_bytes: Option<u64>,
    /// `general.architecture` and the like.
    pub architecture: Option<String>,
    /// `general.name` and the like.
    pub model_name: Option<String>,
    /// Archive members named like model files (first few).
    pub members: Vec<String>,
    /// A zip's members in view whose own bytes a format recognised as
    /// weights or a model archive: (name, format, variant).
    pub member_formats: Vec<(String, WeightFormat, Option<&'static str>)>,
    /// A structure cut by the buffer's end that more bytes would describe
    /// further (a zip listing, an OpenVINO graph): the detector keeps
    /// buffering (to its window or the object's end) before it alerts.
    pub partial: bool,
    /// Format of the first model member, when its header was in view.
    pub inner: Option<Box<Identified>>,
    /// Offset of the structure within the object.
    pub offset: u64,
}

impl Identified {
    pub(crate) fn new(format: WeightFormat, kind: Kind) -> Self {
        Identified {
            format,
            kind,
            detail: None,
            dtypes: BTreeSet::new(),
            tensors: 0,
            params: 0,
            declared_bytes: None,
            architecture: None,
            model_name: None,
            members: Vec::new(),
            member_formats: Vec::new(),
            partial: false,
            inner: None,
            offset: 0,
        }
    }

    /// Parameters of this file or, for an archive, of its first member.
    fn best_params(&self) -> u64 {
        self.params
            .max(self.inner.as_ref().map(|i| i.params).unwrap_or(0))
    }

    /// The evidence object of an alert.
    pub fn evidence(&self) -> Evidence {
        let mut e = Evidence::new();
        e.insert("format".into(), json!(self.format.as_str()));
        if let Some(d) = self.detail {
            e.insert("variant".into(), json!(d));
        }
        if !self.dtypes.is_empty() {
            e.insert("dtypes".into(), json!(self.dtypes));
        }
        if self.tensors > 0 {
            e.insert("tensor_count".into(), json!(self.tensors));
        }
        if self.params > 0 {
            e.insert("parameter_estimate".into(), json!(self.params));
        }
        if let Some(b) = self.declared_bytes {
            e.insert("declared_bytes".into(), json!(b));
        }
        if let Some(a) = &self.architecture {
            e.insert("architecture".into(), json!(a));
        }
        if let Some(n) = &self.model_name {
            e.insert("model_name".into(), json!(n));
        }
        if !self.members.is_empty() {
            e.insert("model_members".into(), json!(self.members));
        }
        if !self.member_formats.is_empty() {
            let m: Vec<_> = self
                .member_formats
                .iter()
                .map(|(name, f, v)| json!({"name": name, "format": f.as_str(), "variant": v}))
                .collect();
            e.insert("members".into(), json!(m));
        }
        if self.offset > 0 {
            e.insert("offset".into(), json!(self.offset));
        }
        if let Some(inner) = &self.inner {
            e.insert("member".into(), serde_json::Value::Object(inner.evidence()));
        }
        e
    }
}

/// Outcome of trying to recognise a buffered prefix.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Confirmed.
    Match(Identified),
    /// A candidate's structure runs past the prefix: try again with more.
    NeedMore,
    /// Nothing recognised.
    No,
}

#[derive(Clone, Copy, Debug)]
enum Magic {
    Gguf,
    Ggml,
    Hdf5,
    Npy,
    Zip,
    Tflite,
    TorchLegacy,
    Tar,
}

const MAGICS: [(&[u8], Magic); 10] = [
    (b"GGUF", Magic::Gguf),
    (b"tjgg", Magic::Ggml),
    (b"fmgg", Magic::Ggml),
    (b"lmgg", Magic::Ggml),
    (b"\x89HDF\r\n\x1a\n", Magic::Hdf5),
    (b"\x93NUMPY", Magic::Npy),
    (b"PK\x03\x04", Magic::Zip),
    (b"TFL3", Magic::Tflite),
    (
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
        Magic::TorchLegacy,
    ),
    (b"ustar", Magic::Tar),
];

/// Candidate structures tried per attempt (bounds work on adversarial input).
const MAX_CANDIDATES: usize = 32;

/// The longest magic: a magic that ends past a scanned prefix starts at most
/// this many bytes less one before the prefix's end.
const MAX_MAGIC_LEN: usize = {
    let (mut i, mut n) = (0, 0);
    while i < MAGICS.len() {
        if MAGICS[i].0.len() > n {
            n = MAGICS[i].0.len();
        }
        i += 1;
    }
    n
};

/// The magics' automaton, leftmost-first. No two magics can overlap (an
/// occurrence of one never shares a byte with an occurrence of another or of
/// itself: checked by the unit test `no_two_magics_overlap`), so its
/// non-overlapping `find_iter` reports every occurrence, in order, exactly
/// as an overlapping search would; and a leftmost match kind lets the crate
/// use its SIMD prefilter (Teddy), which the standard kind cannot.
fn automaton() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        // The patterns are fixed and valid: building cannot fail.
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(MAGICS.iter().map(|(m, _)| *m))
            .expect("static magic patterns")
    })
}

/// The magics found so far in a growing prefix (the first
/// [`MAX_CANDIDATES`], by position), so that each attempt scans only the
/// bytes added since the last one instead of the whole prefix again.
#[derive(Debug, Default)]
struct Candidates {
    /// In order of position.
    found: Vec<Match>,
    /// Bytes of the prefix already scanned.
    scanned: usize,
}

impl Candidates {
    /// The first [`MAX_CANDIDATES`] magics in `buf`, which extends the `buf`
    /// of the previous call (the same bytes, maybe more).
    fn update(&mut self, buf: &[u8]) -> &[Match] {
        if buf.len() < self.scanned {
            // Not the same prefix: start over rather than trust the old scan.
            *self = Candidates::default();
        }
        if self.found.len() < MAX_CANDIDATES && buf.len() > self.scanned {
            // A magic cut by the old end starts in its last MAX_MAGIC_LEN - 1
            // bytes; magics wholly before the old end were found already.
            let from = self.scanned.saturating_sub(MAX_MAGIC_LEN - 1);
            let input = Input::new(buf).span(from..buf.len());
            let new = automaton()
                .find_iter(input)
                .filter(|m| m.end() > self.scanned);
            let room = MAX_CANDIDATES - self.found.len();
            self.found.extend(new.take(room));
        }
        self.scanned = buf.len();
        &self.found
    }
}

fn from_fail(f: Fail) -> Verdict {
    match f {
        Fail::Short => Verdict::NeedMore,
        Fail::Bad => Verdict::No,
    }
}

/// A structural parser of one format at the start of a slice.
type Parser = fn(&[u8]) -> Result<Identified, Fail>;

/// Recognise a single (non-archive) file whose first byte is `buf[pos]`.
pub(crate) fn identify_file_at(buf: &[u8], pos: usize) -> Verdict {
    let Some(b) = buf.get(pos..) else {
        return Verdict::No;
    };
    let tries: [Parser; 15] = [
        safetensors::parse,
        gguf::parse,
        ggml::parse,
        numpy::parse_npy,
        joblib::parse,
        numpy::parse_pickle,
        flax::parse,
        openvino::parse,
        coreml::parse,
        coreml::parse_weights,
        hdf5::parse,
        torch::parse_legacy,
        tflite::parse,
        tfckpt::parse_index,
        onnx::parse,
    ];
    let mut need = false;
    for f in tries {
        match f(b) {
            Ok(mut id) => {
                id.offset = pos as u64;
                return Verdict::Match(id);
            }
            Err(Fail::Short) => need = true,
            Err(Fail::Bad) => {}
        }
    }
    if need { Verdict::NeedMore } else { Verdict::No }
}

/// Recognise the buffered prefix of an object. `complete` says the buffer
/// holds everything that will come (so "need more" is final).
pub fn identify(buf: &[u8], complete: bool) -> Verdict {
    identify_in(buf, complete, &mut Candidates::default())
}

/// [`identify`], with the magics found in the earlier, shorter prefixes of
/// the same buffer kept in `seen`.
fn identify_in(buf: &[u8], complete: bool, seen: &mut Candidates) -> Verdict {
    let mut need = false;
    // Formats without a magic are only taken at the object's first byte.
    let at_start: [Parser; 9] = [
        safetensors::parse,
        onnx::parse,
        coreml::parse,
        coreml::parse_weights,
        tfckpt::parse_index,
        joblib::parse,
        numpy::parse_pickle,
        flax::parse,
        openvino::parse,
    ];
    for f in at_start {
        match f(buf) {
            Ok(id) => return Verdict::Match(id),
            Err(Fail::Short) => need = true,
            Err(Fail::Bad) => {}
        }
    }
    // Compressed containers: only at the object's first byte.
    if let Some(codec) = compressed::sniff(buf) {
        match compressed::compressed(buf, codec, complete) {
            Verdict::Match(id) => return Verdict::Match(id),
            Verdict::NeedMore => need = true,
            Verdict::No => {}
        }
    }
    for m in seen.update(buf) {
        let (_, magic) = MAGICS[m.pattern().as_usize()];
        let at = m.start();
        let v = match magic {
            Magic::Gguf => at_result(buf, at, gguf::parse),
            // Short magics: only at the object's start.
            Magic::Ggml if at == 0 => at_result(buf, 0, ggml::parse),
            Magic::Ggml => Verdict::No,
            Magic::Hdf5 => at_result(buf, at, hdf5::parse),
            Magic::Npy => at_result(buf, at, numpy::parse_npy),
            Magic::TorchLegacy => at_result(buf, at, torch::parse_legacy),
            Magic::Tflite if at >= 4 => at_result(buf, at - 4, tflite::parse),
            Magic::Tflite => Verdict::No,
            Magic::Zip => archive::zip_at(buf, at, complete),
            Magic::Tar if at >= 257 => archive::tar_at(buf, at - 257, complete),
            Magic::Tar => Verdict::No,
        };
        match v {
            Verdict::Match(id) => return Verdict::Match(id),
            Verdict::NeedMore => need = true,
            Verdict::No => {}
        }
    }
    if need && !complete {
        Verdict::NeedMore
    } else {
        Verdict::No
    }
}

fn at_result(buf: &[u8], at: usize, f: Parser) -> Verdict {
    match buf.get(at..).map(f) {
        Some(Ok(mut id)) => {
            id.offset = at as u64;
            Verdict::Match(id)
        }
        Some(Err(e)) => from_fail(e),
        None => Verdict::No,
    }
}

/// [`identify`], then what the object's name adds: a TF checkpoint data
/// shard has no header, so its name and tensor-shaped statistics together
/// identify it. The one entry point of the sensor and `weightwatch inspect`.
pub fn recognise(buf: &[u8], complete: bool, filename: Option<&str>) -> Verdict {
    recognise_in(buf, complete, filename, &mut Candidates::default())
}

/// [`recognise`] of a growing prefix, with the magics of its earlier
/// attempts kept in `seen`.
fn recognise_in(
    buf: &[u8],
    complete: bool,
    filename: Option<&str>,
    seen: &mut Candidates,
) -> Verdict {
    match identify_in(buf, complete, seen) {
        Verdict::Match(id) => Verdict::Match(id),
        Verdict::NeedMore if !complete => Verdict::NeedMore,
        other => match filename.and_then(|n| data_shard(buf, n)) {
            Some(id) => Verdict::Match(id),
            None => other,
        },
    }
}

fn data_shard(buf: &[u8], name: &str) -> Option<Identified> {
    if !names::is_tf_data_shard(name) {
        return None;
    }
    let dtype = super::stats::classify(buf)?;
    let mut id = Identified::new(WeightFormat::TfCheckpoint, Kind::Weights);
    id.detail = Some("data_shard");
    id.dtypes.insert(dtype.name().to_string());
    Some(id)
}

/// The format detector: buffers an object's first `format_scan_bytes` and
/// tries to recognise them as the buffer grows past 4 KiB, 16 KiB, 64 KiB, 256 KiB,
/// 1 MiB and at the object's end.
pub struct FormatDetector {
    cfg: Arc<DetectConfig>,
}

impl FormatDetector {
    /// A detector with these thresholds.
    pub fn new(cfg: Arc<DetectConfig>) -> Self {
        FormatDetector { cfg }
    }
}

impl Detector for FormatDetector {
    fn name(&self) -> &'static str {
        "format"
    }

    fn begin(&self, meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>> {
        Some(Box::new(FormatScan {
            cfg: self.cfg.clone(),
            filename: meta.filename.clone(),
            declared: meta.declared_size,
            buf: Vec::new(),
            candidates: Candidates::default(),
            buf_start: None,
            seen: 0,
            next_try: 4096,
            pending: None,
            tentative: None,
            format: None,
            exe: None,
            inflated: (0, false),
            done: false,
        }))
    }
}

/// Per-object state of [`FormatDetector`].
pub struct FormatScan {
    cfg: Arc<DetectConfig>,
    filename: Option<String>,
    declared: Option<u64>,
    buf: Vec<u8>,
    /// The magics found in `buf` at earlier attempts.
    candidates: Candidates,
    buf_start: Option<u64>,
    seen: u64,
    next_try: usize,
    pending: Option<Identified>,
    /// A partial identification (a zip listing or a graph cut by the
    /// buffer's end): alerted on if nothing better comes by the window's
    /// end or the object's.
    tentative: Option<Identified>,
    format: Option<WeightFormat>,
    /// An executable with no format in its prefix: followed for a
    /// llamafile's GGUF member (stream offset expected next, the finder).
    exe: Option<(u64, llamafile::Finder)>,
    /// Members inflated (the most in one attempt), and whether a cap
    /// stopped an inflation.
    inflated: (u64, bool),
    done: bool,
}

impl FormatScan {
    fn limit(&self) -> usize {
        self.cfg.format_scan_bytes as usize
    }

    fn attempt(&mut self, complete: bool) {
        let before = inflate::tally();
        let verdict = recognise_in(
            &self.buf,
            complete,
            self.filename.as_deref(),
            &mut self.candidates,
        );
        let after = inflate::tally();
        self.inflated.0 = self.inflated.0.max(after.0 - before.0);
        self.inflated.1 |= after.1 > before.1;
        let room = !complete && self.buf.len() < self.limit();
        match verdict {
            Verdict::Match(id) if id.partial && room => {
                self.format = Some(id.format);
                self.tentative = Some(id);
            }
            Verdict::Match(id) => {
                self.format = Some(id.format);
                self.pending = Some(id);
                self.tentative = None;
            }
            Verdict::NeedMore if room => {}
            _ if self.tentative.is_some() && !room => self.pending = self.tentative.take(),
            _ if self.tentative.is_some() => {}
            _ => {
                if complete || self.buf.len() >= self.limit() {
                    if llamafile::is_executable(&self.buf) && self.exe.is_none() {
                        self.follow_executable(complete);
                    } else {
                        self.done = true;
                    }
                }
            }
        }
    }

    /// Hand the prefix to a llamafile finder that follows the rest.
    fn follow_executable(&mut self, complete: bool) {
        let mut f = llamafile::Finder::new(self.limit());
        let buf = std::mem::take(&mut self.buf);
        let mut found = f.feed(&buf);
        if complete || found.is_none() && f.done() {
            found = found.or_else(|| f.finish());
            self.done = found.is_none();
        } else {
            let next = self.buf_start.unwrap_or(0) + buf.len() as u64;
            self.exe = Some((next, f));
        }
        self.take_exe(found);
    }

    fn take_exe(&mut self, found: Option<Identified>) {
        if let Some(id) = found {
            self.format = Some(id.format);
            self.pending = Some(id);
            self.exe = None;
        } else if self.exe.as_ref().is_some_and(|(_, f)| f.done()) {
            self.exe = None;
            self.done = true;
        }
    }

    /// The followed executable ended or broke: decide on what was seen.
    fn finish_exe(&mut self) {
        if let Some((_, mut f)) = self.exe.take() {
            let found = f.finish();
            self.done = found.is_none();
            self.take_exe(found);
        }
    }

    /// Emit the pending identification once the object is known to be big
    /// enough (by its header, its framing, or the bytes seen).
    fn emit(&mut self, ended: bool) -> Option<Finding> {
        let id = self.pending.as_ref()?;
        let size = id.declared_bytes.or(self.declared);
        let enough = match size {
            Some(s) => s >= self.cfg.min_object_bytes,
            None => self.seen >= self.cfg.min_object_bytes,
        };
        if !enough {
            if ended || size.is_some() {
                self.done = true;
            }
            return None;
        }
        let id = self.pending.take()?;
        self.done = true;
        Some(finding(&id, size.unwrap_or(self.seen)))
    }
}

/// The alert for a confirmed identification of an object of `size` bytes.
pub fn finding(id: &Identified, size: u64) -> Finding {
    let mut evidence = id.evidence();
    let format = id.inner.as_ref().map(|i| i.format.as_str());
    let (category, sig, severity) = match id.kind {
        Kind::TensorData => (AlertCategory::TensorData, &sig::TENSOR_DATA, 3),
        Kind::Weights | Kind::ModelArchive => {
            let big = size >= 1 << 30 || id.best_params() >= 500_000_000;
            (
                AlertCategory::WeightsFormat,
                sig::format(id.format),
                if big { 1 } else { 2 },
            )
        }
    };
    evidence.insert("object_bytes".into(), json!(size));
    let mut what = id.format.as_str().to_string();
    if let Some(d) = id.detail {
        what = format!("{what} ({d})");
    }
    if let Some(f) = format {
        what = format!("{what} containing {f}");
    }
    let mut facts = Vec::new();
    if !id.dtypes.is_empty() {
        facts.push(id.dtypes.iter().cloned().collect::<Vec<_>>().join("/"));
    }
    if id.tensors > 0 {
        facts.push(format!("{} tensors", id.tensors));
    }
    if id.best_params() > 0 {
        facts.push(format!("{} params", human(id.best_params())));
    }
    let detail = match (id.kind, facts.is_empty()) {
        (Kind::TensorData, _) => format!("tensor data in {what} ({})", facts.join(", ")),
        (_, true) => what,
        (_, false) => format!("{what} ({})", facts.join(", ")),
    };
    Finding {
        category,
        sig,
        detail,
        severity,
        evidence,
    }
}

/// 1.2K, 3.4M, 7.0B.
pub(crate) fn human(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}K", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}B", n as f64 / 1e9),
    }
}

impl ObjectScan for FormatScan {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Option<Finding> {
        if self.done {
            return None;
        }
        self.seen = self.seen.max(offset + bytes.len() as u64);
        if let Some((next, f)) = self.exe.as_mut() {
            if offset != *next {
                self.finish_exe();
            } else {
                *next += bytes.len() as u64;
                let found = f.feed(bytes);
                self.take_exe(found);
            }
            return self.emit(false);
        }
        if self.pending.is_none() {
            // Only contiguous bytes from the first one received are buffered.
            let room = self.limit().saturating_sub(self.buf.len());
            let start = *self.buf_start.get_or_insert(offset);
            let mut taken = None;
            if room > 0 && offset == start + self.buf.len() as u64 {
                let n = bytes.len().min(room);
                if self.buf.capacity() == 0
                    && let Some(d) = self.declared
                {
                    // Room for what the framing announced (up to the
                    // limit) at once: grown by doubling, a large object's
                    // buffer was copied into fresh pages at each step
                    // on its way to the limit.
                    self.buf
                        .reserve_exact(usize::try_from(d).unwrap_or(usize::MAX).min(room));
                }
                self.buf.extend_from_slice(&bytes[..n]);
                taken = Some(n);
            }
            if self.buf.len() >= self.next_try.min(self.limit()) {
                self.next_try = self.buf.len().saturating_mul(4).max(4096);
                self.attempt(false);
                // A followed executable gets the rest of this chunk.
                if let (Some(n), Some((next, f))) = (taken, self.exe.as_mut())
                    && n < bytes.len()
                {
                    *next += (bytes.len() - n) as u64;
                    let found = f.feed(&bytes[n..]);
                    self.take_exe(found);
                }
            }
        }
        self.emit(false)
    }

    fn gap(&mut self, len: u64) {
        self.seen += len;
        if self.exe.is_some() {
            self.finish_exe();
            return;
        }
        if self.pending.is_none() && !self.buf.is_empty() {
            // The prefix is broken: decide on what we have.
            self.attempt(true);
        }
    }

    fn end(&mut self, _state: ObjectEnd) -> Option<Finding> {
        if self.done {
            return None;
        }
        if self.exe.is_some() {
            self.finish_exe();
        } else if self.pending.is_none() {
            self.attempt(true);
        }
        self.emit(true)
    }

    fn format(&self) -> Option<WeightFormat> {
        self.format
    }

    fn done(&self) -> bool {
        self.done
    }

    fn tally(&self) -> DecodeTally {
        DecodeTally {
            inflated_objects: u64::from(self.inflated.0 > 0),
            inflated_members: self.inflated.0,
            inflate_capped: u64::from(self.inflated.1),
            ..DecodeTally::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an occurrence of `a` and one of `b` starting `d` bytes after
    /// it can share a byte (the bytes agree wherever both cover).
    fn overlap(a: &[u8], b: &[u8], d: isize) -> bool {
        (0..a.len() as isize)
            .filter(|i| (0..b.len() as isize).contains(&(i - d)))
            .all(|i| a[i as usize] == b[(i - d) as usize])
    }

    #[test]
    fn no_two_magics_overlap() {
        for (i, (a, _)) in MAGICS.iter().enumerate() {
            for (j, (b, _)) in MAGICS.iter().enumerate() {
                for d in 1 - b.len() as isize..a.len() as isize {
                    if i == j && d == 0 {
                        continue;
                    }
                    assert!(!overlap(a, b, d), "{a:?} and {b:?} at {d}");
                }
            }
        }
    }

    /// What the scan found before it kept candidates: every occurrence, by
    /// an overlapping search of the whole prefix.
    fn overlapping(buf: &[u8]) -> Vec<Match> {
        let ac = AhoCorasick::new(MAGICS.iter().map(|(m, _)| *m)).expect("patterns");
        ac.find_overlapping_iter(buf).take(MAX_CANDIDATES).collect()
    }

    #[test]
    fn a_magic_cut_by_an_attempt_is_found_at_the_next() {
        let filler = |n: usize| (0..n).map(|i| b"abcdefgh"[i % 8]).collect::<Vec<u8>>();
        for (magic, _) in MAGICS {
            // The magic ends before, at, across and after the first
            // attempt's end (4096), and again across the second's.
            for at in 4096 - magic.len() - 1..=4097 {
                let mut buf = filler(20_000);
                buf[at..at + magic.len()].copy_from_slice(magic);
                buf[16_380..16_380 + magic.len()].copy_from_slice(magic);
                let mut c = Candidates::default();
                for end in [4096, 16_384, 20_000] {
                    c.update(&buf[..end]);
                    assert_eq!(
                        c.found,
                        overlapping(&buf[..end]),
                        "{magic:?} at {at}, {end}"
                    );
                }
                assert_eq!(c.found.len(), 2, "{magic:?} at {at}");
            }
        }
    }

    #[test]
    fn candidates_stop_at_the_cap_across_attempts() {
        let mut buf = b"GGUF.".repeat(MAX_CANDIDATES * 2);
        buf.extend_from_slice(&[0; 100]);
        let mut c = Candidates::default();
        for end in (7..buf.len()).step_by(13).chain([buf.len()]) {
            c.update(&buf[..end]);
            assert_eq!(c.found, overlapping(&buf[..end]), "{end}");
        }
        assert_eq!(c.found.len(), MAX_CANDIDATES);
    }
}
