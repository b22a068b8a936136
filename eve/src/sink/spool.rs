//! The on-disk spool behind the dashboard sink: an append-only queue of EVE
//! lines in numbered segment files plus a cursor of what the receiver has
//! acknowledged. Events survive a dashboard outage and a restart of the
//! producer; delivery resumes from the cursor in order.
//!
//! Layout of the spool directory:
//! - `NNNNNNNNNNNNNNNNNNNN.jsonl`: segments, oldest first, one event per line;
//! - `cursor`: `<segment> <byte offset>` of the first unacknowledged line,
//!   replaced atomically (write + rename);
//! - `lock`: held (advisory lock) by the one process using the spool;
//! - `format`: `weightwatch-spool <version>`, the layout's version
//!   ([`FORMAT_VERSION`]). A spool of a newer version is refused with a
//!   message that says so (never misread); one without the file predates
//!   it and has the layout of version 1, so it is read and the file added.
//!
//! Hand-written: the queue crates on crates.io either keep everything in
//! memory or bring a database; this needs ~200 lines of plain files.

use super::SinkError;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SEGMENT_SUFFIX: &str = ".jsonl";
/// The version of the spool's layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_FILE: &str = "format";
const FORMAT_TAG: &str = "weightwatch-spool";

/// Where reading resumes: a segment number and a byte offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Segment number.
    pub segment: u64,
    /// Byte offset within the segment.
    pub offset: u64,
}

/// A batch read from the spool: complete lines and where the next read starts.
#[derive(Debug, Default)]
pub struct Batch {
    /// The lines, without their newlines.
    pub lines: Vec<String>,
    /// Position after the last line of the batch.
    pub next: Option<Position>,
    /// Lines skipped because they were not valid JSON (a damaged spool).
    pub corrupt: u64,
}

/// The spool directory, shared by a writer (the producer) and a reader (the
/// delivery thread) under one mutex held by the sink.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    writer: File,
    write_segment: u64,
    write_offset: u64,
    segment_bytes: u64,
    max_bytes: u64,
    /// Bytes of every segment file on disk.
    disk_bytes: u64,
    cursor: Position,
}

impl Spool {
    /// Open (or create) the spool in `dir`. Segments larger than
    /// `segment_bytes` are rolled; the whole spool never exceeds `max_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64, max_bytes: u64) -> Result<Spool, SinkError> {
        fs::create_dir_all(dir)
            .map_err(|e| SinkError::io(format!("create spool {}", dir.display()), e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| SinkError::io("open spool lock", e))?;
        lock.try_lock().map_err(|_| {
            SinkError::Config(format!(
                "spool {} is in use by another weightwatch process",
                dir.display()
            ))
        })?;
        check_format(dir)?;
        let segments = list_segments(dir)?;
        let mut disk_bytes = 0;
        for s in &segments {
            disk_bytes += fs::metadata(segment_path(dir, *s)).map_or(0, |m| m.len());
        }
        let cursor = read_cursor(dir).unwrap_or(Position {
            segment: segments.first().copied().unwrap_or(0),
            offset: 0,
        });
        // Always write a fresh segment: a previous run may have left a
        // partial line at the end of its last one.
        let write_segment = segments.last().map_or(0, |s| s + 1).max(cursor.segment);
        let writer = open_segment(dir, write_segment)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            _lock: lock,
            writer,
            write_segment,
            write_offset: 0,
            segment_bytes: segment_bytes.max(1),
            max_bytes,
            disk_bytes,
            cursor,
        })
    }

    /// Append one line. Returns `false` (and writes nothing) when the spool is full.
    pub fn append(&mut self, line: &str) -> Result<bool, SinkError> {
        let len = line.len() as u64 + 1;
        if self.disk_bytes + len > self.max_bytes {
            return Ok(false);
        }
        if self.write_offset > 0 && self.write_offset + len > self.segment_bytes {
            self.writer
                .sync_data()
                .map_err(|e| SinkError::io("sync spool segment", e))?;
            self.write_segment += 1;
            self.writer = open_segment(&self.dir, self.write_segment)?;
            self.write_offset = 0;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.writer
            .write_all(&buf)
            .map_err(|e| SinkError::io("append to spool", e))?;
        self.write_offset += len;
        self.disk_bytes += len;
        Ok(true)
    }

    /// Make appended lines durable on disk.
    pub fn sync(&mut self) -> Result<(), SinkError> {
        self.writer
            .sync_data()
            .map_err(|e| SinkError::io("sync spool", e))
    }

    /// Whether every appended line has been acknowledged.
    pub fn is_drained(&self) -> bool {
        self.cursor
            >= Position {
                segment: self.write_segment,
                offset: self.write_offset,
            }
    }

    /// Bytes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Read up to `max_lines` complete lines from the cursor on.
    pub fn read_batch(&self, max_lines: usize) -> Result<Batch, SinkError> {
        let mut batch = Batch::default();
        let mut pos = self.cursor;
        while batch.lines.len() < max_lines && pos.segment <= self.write_segment {
            let path = segment_path(&self.dir, pos.segment);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    pos = Position {
                        segment: pos.segment + 1,
                        offset: 0,
                    };
                    batch.next = Some(pos);
                    continue;
                }
                Err(e) => return Err(SinkError::io(format!("read {}", path.display()), e)),
            };
            let mut reader = BufReader::new(file);
            reader
                .seek(SeekFrom::Start(pos.offset))
                .map_err(|e| SinkError::io("seek spool", e))?;
            let mut raw = Vec::new();
            while batch.lines.len() < max_lines {
                raw.clear();
                let n = (&mut reader)
                    .take(16 << 20)
                    .read_until(b'\n', &mut raw)
                    .map_err(|e| SinkError::io("read spool", e))?;
                if n == 0 || raw.last() != Some(&b'\n') {
                    break; // end of segment, or a line still being written
                }
                pos.offset += n as u64;
                batch.next = Some(pos);
                raw.pop();
                match String::from_utf8(std::mem::take(&mut raw)) {
                    Ok(s) if serde_json::from_str::<serde::de::IgnoredAny>(&s).is_ok() => {
                        batch.lines.push(s)
                    }
                    _ => batch.corrupt += 1,
                }
            }
            if batch.lines.len() >= max_lines || pos.segment == self.write_segment {
                break;
            }
            // A finished older segment: continue in the next one.
            pos = Position {
                segment: pos.segment + 1,
                offset: 0,
            };
            batch.next = Some(pos);
        }
        Ok(batch)
    }

    /// Mark everything before `pos` acknowledged: persist the cursor and
    /// delete segments that are wholly behind it.
    pub fn ack(&mut self, pos: Position) -> Result<(), SinkError> {
        if pos <= self.cursor {
            return Ok(());
        }
        let tmp = self.dir.join("cursor.tmp");
        fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))
            .and_then(|_| File::open(&tmp)?.sync_all())
            .and_then(|_| fs::rename(&tmp, self.dir.join("cursor")))
            .map_err(|e| SinkError::io("write spool cursor", e))?;
        for seg in self.cursor.segment..pos.segment {
            let path = segment_path(&self.dir, seg);
            if let Ok(m) = fs::metadata(&path) {
                self.disk_bytes = self.disk_bytes.saturating_sub(m.len());
                let _ = fs::remove_file(&path);
            }
        }
        self.cursor = pos;
        Ok(())
    }
}

/// Refuse a spool whose layout this build does not know; mark a new (or
/// pre-versioning) one with [`FORMAT_VERSION`].
fn check_format(dir: &Path) -> Result<(), SinkError> {
    let path = dir.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let version = text
                .trim()
                .strip_prefix(FORMAT_TAG)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .ok_or_else(|| {
                    SinkError::Config(format!(
                        "spool {}: {} does not name a weightwatch spool format (found {:?})",
                        dir.display(),
                        path.display(),
                        text.chars().take(40).collect::<String>()
                    ))
                })?;
            if version != FORMAT_VERSION {
                return Err(SinkError::Config(format!(
                    "spool {} has format version {version}, this weightwatch reads version \
                     {FORMAT_VERSION}: let the weightwatch that wrote it deliver it, or move \
                     the directory aside",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join("format.tmp");
            fs::write(&tmp, format!("{FORMAT_TAG} {FORMAT_VERSION}\n"))
                .and_then(|_| fs::rename(&tmp, &path))
                .map_err(|e| SinkError::io(format!("write {}", path.display()), e))
        }
        Err(e) => Err(SinkError::io(format!("read {}", path.display()), e)),
    }
}

fn segment_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{seg:020}{SEGMENT_SUFFIX}"))
}

fn open_segment(dir: &Path, seg: u64) -> Result<File, SinkError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, seg))
        .map_err(|e| SinkError::io(format!("open spool segment {seg}"), e))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, SinkError> {
    let mut out: Vec<u64> = fs::read_dir(dir)
        .map_err(|e| SinkError::io(format!("list spool {}", dir.display()), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(SEGMENT_SUFFIX)?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let mut it = text.split_whitespace();
    Some(Position {
        segment: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 40, 1 << 20).unwrap();
            for i in 0..10 {
                assert!(s.append(&format!("{{\"i\":{i}}}")).unwrap());
            }
            let b = s.read_batch(4).unwrap();
            assert_eq!(
                b.lines,
                vec![r#"{"i":0}"#, r#"{"i":1}"#, r#"{"i":2}"#, r#"{"i":3}"#]
            );
            s.ack(b.next.unwrap()).unwrap();
        }
        let mut s = Spool::open(dir.path(), 40, 1 << 20).unwrap();
        let b = s.read_batch(100).unwrap();
        let got: Vec<_> = b.lines.iter().map(|l| l.as_str()).collect();
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], r#"{"i":4}"#);
        assert_eq!(got[5], r#"{"i":9}"#);
        s.ack(b.next.unwrap()).unwrap();
        assert!(s.is_drained());
        assert_eq!(
            list_segments(dir.path()).unwrap().len(),
            1,
            "acked segments are deleted"
        );
    }

    #[test]
    fn full_spool_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20, 30).unwrap();
        assert!(s.append(r#"{"a":1}"#).unwrap());
        assert!(s.append(r#"{"a":2}"#).unwrap());
        assert!(s.append(r#"{"a":3}"#).unwrap());
        assert!(!s.append(r#"{"a":4}"#).unwrap(), "beyond max_bytes");
        let b = s.read_batch(10).unwrap();
        assert_eq!(b.lines.len(), 3);
    }

    #[test]
    fn damaged_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        s.append(r#"{"a":1}"#).unwrap();
        s.append("{not json").unwrap();
        s.append(r#"{"a":2}"#).unwrap();
        let b = s.read_batch(10).unwrap();
        assert_eq!(b.lines, vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        assert_eq!(b.corrupt, 1);
    }

    #[test]
    fn one_process_per_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert!(Spool::open(dir.path(), 1 << 20, 1 << 20).is_err());
    }
}
