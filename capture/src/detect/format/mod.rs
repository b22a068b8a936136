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
use aho_corasick::AhoCorasick;
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

fn automaton() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        // The patterns are fixed and valid: building cannot fail.
        AhoCorasick::new(MAGICS.iter().map(|(m, _)| *m)).expect("static magic patterns")
    })
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
    for m in automaton().find_overlapping_iter(buf).take(MAX_CANDIDATES) {
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
    match identify(buf, complete) {
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
        let verdict = recognise(&self.buf, complete, self.filename.as_deref());
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
