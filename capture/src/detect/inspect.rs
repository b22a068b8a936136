//! `weightwatch inspect`: a model-aware `file(1)`. Runs the sensor's own
//! format parsers ([`format::recognise`]) on a file's first window, and,
//! when no format is recognised, the sensor's tensor-statistics detector on
//! the bytes it would sample, so what `inspect` says of a file is what the
//! sensor says of the same bytes on the wire. Reads are bounded: at most
//! `window` bytes (the sensor's `format_scan_bytes` by default) and the
//! statistics' sampled span, whatever the file's size.

use super::Detector;
use super::config::DetectConfig;
use super::format::{self, Identified, Kind, Verdict, llamafile};
use super::stats::TensorStatsDetector;
use crate::object::{ObjectEnd, ObjectMeta};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// What `inspect` found in one file (one JSON object per file).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// The file's path as given.
    pub file: String,
    /// The file's size in bytes.
    pub size: u64,
    /// `fileinfo.format` name (`safetensors`, `pytorch_zip`, `raw_tensor`,
    /// …), or `null` when nothing was recognised.
    pub format: Option<String>,
    /// Sub-kind (`torchscript`, `legacy`, `keras`, `deflated`, …).
    pub variant: Option<String>,
    /// `weights`, `model_archive` or `tensor_data`.
    pub kind: Option<&'static str>,
    /// Element types seen.
    pub dtypes: BTreeSet<String>,
    /// Tensors described in the part of the header read.
    pub tensors: u64,
    /// Sum of tensor elements in the part of the header read.
    pub params: u64,
    /// File size the header declares, when it does.
    pub declared_size: Option<u64>,
    /// `general.architecture` and the like.
    pub architecture: Option<String>,
    /// `general.name` and the like.
    pub model_name: Option<String>,
    /// Archive members (model members, or a PyTorch archive's records).
    pub members: Vec<String>,
    /// The first model member's own format, when its header was in view.
    pub member: Option<Box<Report>>,
    /// A zip file's members inspected one by one through its central
    /// directory (a wheel, an archive of a model directory, a llamafile):
    /// those named like model files and those of at least
    /// `min_object_bytes` that a format recognises, each with its path in
    /// the archive as `file`. Only from [`inspect_file`].
    pub entries: Vec<Report>,
    /// Bytes read from the file's start.
    pub scanned: u64,
}

impl Report {
    fn from_identified(id: &Identified) -> Report {
        Report {
            format: Some(id.format.as_str().to_string()),
            variant: id.detail.map(str::to_string),
            kind: Some(match id.kind {
                Kind::Weights => "weights",
                Kind::ModelArchive => "model_archive",
                Kind::TensorData => "tensor_data",
            }),
            dtypes: id.dtypes.clone(),
            tensors: id.tensors,
            params: id.params,
            declared_size: id.declared_bytes,
            architecture: id.architecture.clone(),
            model_name: id.model_name.clone(),
            members: id.members.clone(),
            member: id
                .inner
                .as_ref()
                .map(|i| Box::new(Report::from_identified(i))),
            ..Report::default()
        }
    }
}

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Inspect the first bytes of one object or file: `head` (the formats look
/// at its first `window` bytes, the statistics at all of it), `size` its
/// full length, `name` its file name.
pub fn inspect_bytes(
    head: &[u8],
    size: u64,
    name: Option<&str>,
    window: u64,
    cfg: &DetectConfig,
) -> Report {
    let cut = head
        .len()
        .min(usize::try_from(window).unwrap_or(usize::MAX));
    let complete = cut as u64 >= size;
    let mut r = match format::recognise(&head[..cut], complete, name) {
        Verdict::Match(id) => Report::from_identified(&id),
        Verdict::NeedMore | Verdict::No if llamafile::is_executable(head) => {
            let mut f = llamafile::Finder::new(cut);
            f.feed(head)
                .or_else(|| f.finish())
                .map(|id| Report::from_identified(&id))
                .unwrap_or_default()
        }
        Verdict::NeedMore | Verdict::No => raw_tensor(head, size, cfg).unwrap_or_default(),
    };
    r.size = size;
    r.scanned = head.len() as u64;
    r
}

/// The sensor's tensor-statistics detector over `bytes` (the object's start).
fn raw_tensor(bytes: &[u8], size: u64, cfg: &DetectConfig) -> Option<Report> {
    let det = TensorStatsDetector::new(Arc::new(cfg.clone()));
    let meta = ObjectMeta {
        declared_size: Some(size),
        ..ObjectMeta::default()
    };
    let mut scan = det.begin(&meta)?;
    let mut finding = None;
    for (i, chunk) in bytes.chunks(64 * 1024).enumerate() {
        finding = scan.data((i * 64 * 1024) as u64, chunk);
        if finding.is_some() || scan.done() {
            break;
        }
    }
    if finding.is_none() && !scan.done() && bytes.len() as u64 >= size {
        finding = scan.end(ObjectEnd::Complete);
    }
    let f = finding?;
    let mut r = Report {
        format: Some(eve::WeightFormat::RawTensor.as_str().to_string()),
        kind: Some("weights"),
        ..Report::default()
    };
    if let Some(d) = f.evidence.get("dtype").and_then(|d| d.as_str()) {
        r.dtypes.insert(d.to_string());
    }
    Some(r)
}

/// Inspect a file, reading at most `window` bytes for the formats and the
/// statistics detector's sampled span (`stats_stride_bytes ×
/// stats_max_windows`) for headerless tensors.
pub fn inspect_file(path: &Path, window: u64, cfg: &DetectConfig) -> Result<Report, InspectError> {
    let io = |source| InspectError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let span = window.max(
        cfg.stats_stride_bytes
            .saturating_mul(u64::from(cfg.stats_max_windows)),
    );
    let mut head = Vec::new();
    file.take(span).read_to_end(&mut head).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut r = inspect_bytes(&head, size, name.as_deref(), window, cfg);
    if r.format.is_none() && llamafile::is_executable(&head) && size > head.len() as u64 {
        // A llamafile's model lies past the executable: follow the file
        // as the sensor follows the stream (bounded by the finder).
        if let Some(id) = follow_executable(path, window).map_err(io)? {
            r = Report {
                size,
                scanned: r.scanned,
                ..Report::from_identified(&id)
            };
        }
    }
    if matches!(
        r.format.as_deref(),
        None | Some("zip" | "npz" | "llamafile")
    ) {
        r.entries = zip_entries(path, window, cfg);
    }
    r.file = path.display().to_string();
    Ok(r)
}

/// Entries of a zip's central directory looked at, at most.
const MAX_ENTRIES: usize = 100_000;
/// Members inspected, at most (each costs one window of reads).
const MAX_INSPECTED: usize = 64;

/// The model members of a zip file, each inspected as a file of its own
/// (deflated members inflated as they are read, at most the window and the
/// statistics span of each); empty when `path` is not a zip.
fn zip_entries(path: &Path, window: u64, cfg: &DetectConfig) -> Vec<Report> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut z) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Vec::new();
    };
    let span = window.max(
        cfg.stats_stride_bytes
            .saturating_mul(u64::from(cfg.stats_max_windows)),
    );
    let mut out = Vec::new();
    let mut inspected = 0;
    for i in 0..z.len().min(MAX_ENTRIES) {
        let Ok(mut m) = z.by_index(i) else {
            continue;
        };
        let Ok(name) = m.name().map(|n| n.into_owned()) else {
            continue;
        };
        let size = m.size();
        let named = format::is_model_member(&name);
        if m.is_dir() || !named && size < cfg.min_object_bytes {
            continue;
        }
        if inspected == MAX_INSPECTED {
            break;
        }
        inspected += 1;
        let mut head = Vec::new();
        // A member that fails to inflate is inspected on what was read.
        let _ = (&mut m).take(span).read_to_end(&mut head);
        let base = name.rsplit('/').next().unwrap_or(&name);
        let mut r = inspect_bytes(&head, size, Some(base), window, cfg);
        if r.format.is_none() && !named {
            continue;
        }
        r.file = name;
        out.push(r);
    }
    out
}

/// Read an executable through a llamafile finder, a chunk at a time.
fn follow_executable(path: &Path, window: u64) -> std::io::Result<Option<Identified>> {
    let mut file = std::fs::File::open(path)?;
    let mut f = llamafile::Finder::new(usize::try_from(window).unwrap_or(usize::MAX));
    let mut chunk = vec![0u8; 1 << 20];
    while !f.done() {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(f.finish());
        }
        if let Some(id) = f.feed(&chunk[..n]) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
