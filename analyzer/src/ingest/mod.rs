//! Reading the input: files or directories of JSON Lines, Parquet or CSV,
//! plain, gzip or zstd (detected by magic bytes, not by name). Every valid
//! row goes to the [`Requests`]; every bad one is counted by reason, and the
//! first few are reported with file and line. Nothing here ends the run.

mod csv_rows;
mod parallel;
mod table;

use crate::config::AnalyzerConfig;
use crate::requests::Requests;
use crate::row::{self, BadRow};
use crate::text::TextAnalyzer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON Lines.
    Jsonl,
    /// Apache Parquet.
    Parquet,
    /// CSV with a header.
    Csv,
}

/// Compression of an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// One bad row (or file problem) reported with its place.
#[derive(Clone, Debug, Serialize)]
pub struct BadExample {
    /// The file.
    pub file: PathBuf,
    /// Line (JSONL) or data row (CSV/Parquet, 1-based); 0 for a whole-file problem.
    pub line: u64,
    /// Reason, e.g. `missing_field:account_id`.
    pub reason: String,
    /// The start of the offending text.
    pub excerpt: String,
}

/// What one file gave.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Detected format.
    pub format: Format,
    /// Detected compression.
    pub compression: Compression,
    /// Valid rows.
    pub rows: u64,
    /// Bad rows.
    pub bad_rows: u64,
    /// A problem that stopped reading the rest of the file, if any.
    pub error: Option<String>,
}

/// The ingestion report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    /// Per file.
    pub files: Vec<FileReport>,
    /// Valid rows analysed.
    pub rows: u64,
    /// Bad rows (and file problems) by reason.
    pub bad_by_reason: BTreeMap<String, u64>,
    /// The first few, with file and line.
    pub examples: Vec<BadExample>,
    /// Valid rows beyond `max_rows`, counted but not analysed.
    pub rows_over_limit: u64,
    /// Valid rows dated far outside the bulk of the input, counted but
    /// not analysed (see [`crate::requests::Requests::finish`]).
    pub far_timestamps: u64,
    /// Compressed or plain bytes read.
    pub bytes: u64,
}

impl IngestReport {
    /// All bad rows and file problems.
    pub fn bad_total(&self) -> u64 {
        self.bad_by_reason.values().sum()
    }

    fn bad(&mut self, limit: usize, file: &Path, line: u64, reason: String, excerpt: &str) {
        self.bad_n(limit, file, line, 1, reason, excerpt);
    }

    /// `n` bad lines of one reason from `line` on (a run of blank lines
    /// is one entry, not one allocation per line).
    fn bad_n(
        &mut self,
        limit: usize,
        file: &Path,
        line: u64,
        n: u64,
        reason: String,
        excerpt: &str,
    ) {
        *self.bad_by_reason.entry(reason.clone()).or_default() += n;
        if self.examples.len() < limit {
            self.examples.push(BadExample {
                file: file.to_path_buf(),
                line,
                reason,
                excerpt: excerpt.chars().take(120).collect(),
            });
        }
    }
}

/// The inputs found under the paths given.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Files to read, in order.
    pub files: Vec<PathBuf>,
    /// Entries in the directories walked that are not regular files
    /// (FIFOs, sockets, devices): reading one could block forever, so they
    /// are skipped and reported (`not_a_regular_file`). A path named on
    /// the command line is always read, whatever it is.
    pub skipped: Vec<PathBuf>,
}

impl IngestReport {
    /// Report the special files skipped while walking directories.
    pub fn note_skipped(&mut self, skipped: &[PathBuf], limit: usize) {
        for p in skipped {
            self.bad(
                limit,
                p,
                0,
                "not_a_regular_file".into(),
                "skipped: not a regular file",
            );
        }
    }
}

/// Input files named by `paths`: files as given, directories walked
/// (sorted; hidden entries skipped; only regular files whose names look
/// like logs).
pub fn collect_files(paths: &[PathBuf]) -> Result<Inputs, std::io::Error> {
    let mut out = Inputs::default();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.files.push(p.clone());
        }
    }
    Ok(out)
}

fn looks_like_log(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = name.trim_end_matches(".gz").trim_end_matches(".zst");
    [".jsonl", ".ndjson", ".json", ".csv", ".parquet"]
        .iter()
        .any(|e| base.ends_with(e))
}

fn walk(dir: &Path, out: &mut Inputs) -> Result<(), std::io::Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if looks_like_log(&p) {
            // Symbolic links are followed; what they lead to must be a
            // regular file.
            if std::fs::metadata(&p).is_ok_and(|m| m.file_type().is_file()) {
                out.files.push(p);
            } else {
                out.skipped.push(p);
            }
        }
    }
    Ok(())
}

/// Advances the progress bar by the bytes read from the underlying file.
struct Counting<R> {
    inner: R,
    progress: Option<indicatif::ProgressBar>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        if let Some(p) = &self.progress {
            p.inc(k as u64);
        }
        Ok(k)
    }
}

fn detect_format(path: &Path, first: &[u8]) -> Format {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let base = name.trim_end_matches(".gz").trim_end_matches(".zst");
    if first.starts_with(b"PAR1") || base.ends_with(".parquet") {
        Format::Parquet
    } else if base.ends_with(".csv") {
        Format::Csv
    } else {
        Format::Jsonl
    }
}

/// Reads every file into `store`. `progress` advances by input bytes.
pub fn ingest(
    paths: &[PathBuf],
    cfg: &AnalyzerConfig,
    store: &mut Requests,
    text: &TextAnalyzer,
    progress: Option<&indicatif::ProgressBar>,
) -> IngestReport {
    let mut report = IngestReport::default();
    for path in paths {
        let before_rows = report.rows + report.rows_over_limit;
        let before_bad = report.bad_total();
        let (format, compression, error, bytes) =
            read_file(path, cfg, store, text, progress, &mut report);
        report.bytes += bytes;
        let rows = report.rows + report.rows_over_limit - before_rows;
        let bad_rows = report.bad_total() - before_bad;
        if rows == 0 && bad_rows == 0 && error.is_none() {
            report.bad(cfg.bad_row_examples, path, 0, "empty_file".into(), "");
        }
        report.files.push(FileReport {
            path: path.clone(),
            format,
            compression,
            rows,
            bad_rows: report.bad_total() - before_bad,
            error,
        });
    }
    report
}

/// Where valid rows go: the store, up to `max_rows`.
pub(crate) struct Sink<'a> {
    pub(crate) cfg: &'a AnalyzerConfig,
    pub(crate) store: &'a mut Requests,
    pub(crate) text: &'a TextAnalyzer,
    pub(crate) report: &'a mut IngestReport,
}

impl Sink<'_> {
    pub(crate) fn row(&mut self, r: &row::Row<'_>) {
        if self.report.rows >= self.cfg.max_rows {
            self.report.rows_over_limit += 1;
        } else {
            self.report.rows += 1;
            self.store.push(r, self.text, self.cfg);
        }
    }

    /// Set the ids of one valid row of a parsed block (see
    /// [`Requests::identify`]) when it is within `max_rows`; whether it
    /// is (the rows kept are then a prefix of the block's).
    pub(crate) fn identify(
        &mut self,
        req: &mut crate::requests::Req,
        src_ip: std::net::IpAddr,
        strings: &crate::requests::RowStrings<'_>,
    ) -> bool {
        if self.report.rows >= self.cfg.max_rows {
            self.report.rows_over_limit += 1;
            false
        } else {
            self.report.rows += 1;
            self.store.identify(req, src_ip, strings, self.cfg);
            true
        }
    }

    pub(crate) fn bad(&mut self, file: &Path, line: u64, reason: &BadRow, excerpt: &str) {
        self.bad_n(file, line, 1, reason, excerpt);
    }

    pub(crate) fn bad_n(&mut self, file: &Path, line: u64, n: u64, reason: &BadRow, excerpt: &str) {
        self.report.bad_n(
            self.cfg.bad_row_examples,
            file,
            line,
            n,
            reason.to_string(),
            excerpt,
        );
    }

    pub(crate) fn file_error(&mut self, file: &Path, line: u64, reason: &str, detail: &str) {
        self.report.bad(
            self.cfg.bad_row_examples,
            file,
            line,
            reason.to_string(),
            detail,
        );
    }
}

fn read_file(
    path: &Path,
    cfg: &AnalyzerConfig,
    store: &mut Requests,
    text: &TextAnalyzer,
    progress: Option<&indicatif::ProgressBar>,
    report: &mut IngestReport,
) -> (Format, Compression, Option<String>, u64) {
    let mut sink = Sink {
        cfg,
        store,
        text,
        report,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            sink.file_error(path, 0, "unreadable_file", &e.to_string());
            return (Format::Jsonl, Compression::None, Some(e.to_string()), 0);
        }
    };
    let mut raw = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            progress: progress.cloned(),
        },
    );
    let magic: Vec<u8> = raw
        .fill_buf()
        .map(|b| b.iter().take(4).copied().collect())
        .unwrap_or_default();
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let mut reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(raw) {
            Ok(d) => Box::new(BufReader::with_capacity(1 << 20, d)),
            Err(e) => {
                sink.file_error(path, 0, "decompress_error", &e.to_string());
                return (Format::Jsonl, compression, Some(e.to_string()), 0);
            }
        },
    };
    let first: Vec<u8> = match reader.fill_buf() {
        Ok(b) => b.iter().take(4).copied().collect(),
        Err(e) => {
            let reason = if compression == Compression::None {
                "io_error"
            } else {
                "decompress_error"
            };
            sink.file_error(path, 1, reason, &e.to_string());
            return (
                detect_format(path, &[]),
                compression,
                Some(e.to_string()),
                std::fs::metadata(path).map_or(0, |m| m.len()),
            );
        }
    };
    let format = detect_format(path, &first);
    let error = match format {
        // JSON Lines go through our own block-parallel serde reader, not
        // polars' NDJSON reader: every row needs the per-row text pass
        // anyway, every bad line must be counted by reason with its line
        // number (polars fails or nulls instead), it is as fast as polars
        // on the benchmark, and polars' json/lazy features would add
        // minutes to every build (docs/analyzer.md, Input).
        Format::Jsonl => {
            let threads = crate::par::threads(cfg.threads);
            if threads > 1 {
                parallel::read_jsonl(
                    path,
                    reader.as_mut(),
                    &mut sink,
                    threads,
                    compression != Compression::None,
                )
            } else {
                read_jsonl(path, &mut reader, &mut sink, compression)
            }
        }
        Format::Csv => csv_rows::read(path, reader.as_mut(), &mut sink),
        Format::Parquet => {
            let mut bytes = Vec::new();
            match reader.read_to_end(&mut bytes) {
                Ok(_) => table::read(path, bytes, &mut sink),
                Err(e) => {
                    let reason = if compression == Compression::None {
                        "io_error"
                    } else {
                        "decompress_error"
                    };
                    sink.file_error(path, 0, reason, &e.to_string());
                    Some(e.to_string())
                }
            }
        }
    };
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    (format, compression, error, bytes)
}

/// What [`read_line_bounded`] read.
pub(crate) enum Line {
    /// A line (its newline, if any, included).
    Whole,
    /// A line longer than the bound: skipped to its end, not kept.
    TooLong,
    /// Nothing left.
    End,
}

/// Read one line into `buf` (cleared by the caller), keeping at most `max`
/// bytes: a longer line is read to its end without being kept, so memory
/// stays bounded whatever the input.
pub(crate) fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Whole,
    })
}

fn read_jsonl(
    path: &Path,
    reader: &mut Box<dyn BufRead + Send>,
    sink: &mut Sink<'_>,
    compression: Compression,
) -> Option<String> {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let max = sink.cfg.max_line_bytes.max(1);
    loop {
        buf.clear();
        match read_line_bounded(reader.as_mut(), &mut buf, max) {
            Ok(Line::End) => return None,
            Ok(Line::Whole) => {}
            Ok(Line::TooLong) => {
                line_no += 1;
                sink.bad(path, line_no, &BadRow::LineTooLong, "");
                continue;
            }
            Err(e) => {
                let reason = if compression == Compression::None {
                    "io_error"
                } else {
                    "decompress_error"
                };
                sink.file_error(path, line_no + 1, reason, &e.to_string());
                return Some(format!("line {}: {e}", line_no + 1));
            }
        }
        line_no += 1;
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            sink.bad(path, line_no, &BadRow::BlankLine, "");
            continue;
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(s) => s,
            Err(_) => {
                sink.bad(
                    path,
                    line_no,
                    &BadRow::InvalidUtf8,
                    &String::from_utf8_lossy(&buf),
                );
                continue;
            }
        };
        match row::from_json_line(line) {
            Ok(r) => sink.row(&r),
            Err(reason) => sink.bad(path, line_no, &reason, line),
        }
    }
}
