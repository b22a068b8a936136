//! EVE JSON Lines to a file or stdout, line-buffered, optionally rotated by
//! size, and reopened on request (logrotate's `postrotate` sends SIGHUP; the
//! binary sets the [`ReopenFlag`] and the sink reopens its path before the
//! next line, as Suricata does).

use super::{EventSink, SinkError};
use crate::event::Event;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks EVE file sinks to close and reopen their path (after an external
/// rotation renamed the file). Cheap to clone; set from a signal handler's
/// thread, read by the sink before each line.
#[derive(Clone, Debug, Default)]
pub struct ReopenFlag(Arc<AtomicBool>);

impl ReopenFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        ReopenFlag::default()
    }

    /// Ask for a reopen before the next line.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a reopen was asked for since the last call (clears it).
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Where EVE lines go.
enum Target {
    Stdout(io::Stdout),
    File {
        path: PathBuf,
        file: io::BufWriter<File>,
        written: u64,
    },
}

/// Writes one JSON object per line. Each line is flushed as it is written
/// (line-buffered), so `tail -f` and log shippers see events at once.
pub struct EveFileSink {
    target: Target,
    rotate_bytes: Option<u64>,
    keep: usize,
    reopen: Option<ReopenFlag>,
}

impl EveFileSink {
    /// `-` means stdout; anything else is a file appended to.
    /// With `rotate_bytes`, when the file would exceed that size it is renamed
    /// to `PATH.1` (older ones shift to `.2` … `.keep`) and a new file started.
    pub fn open(path: &str, rotate_bytes: Option<u64>, keep: usize) -> Result<Self, SinkError> {
        let target = if path == "-" {
            Target::Stdout(io::stdout())
        } else {
            let path = PathBuf::from(path);
            let (file, written) = open_append(&path)?;
            Target::File {
                path,
                file,
                written,
            }
        };
        Ok(EveFileSink {
            target,
            rotate_bytes: rotate_bytes.filter(|&b| b > 0),
            keep: keep.max(1),
            reopen: None,
        })
    }

    /// Reopen the file's path before the next line whenever `flag` is set
    /// (standard output ignores it).
    pub fn reopen_on(mut self, flag: ReopenFlag) -> Self {
        self.reopen = Some(flag);
        self
    }

    /// Close the file and open its path again (a new file when it was
    /// renamed away). When the path cannot be opened, lines keep going to
    /// the old file and the failure is logged: a rotation never loses events.
    fn reopen(&mut self) {
        let Target::File {
            path,
            file,
            written,
        } = &mut self.target
        else {
            return;
        };
        if let Err(e) = file.flush() {
            tracing::warn!(path = %path.display(), "flushing the EVE file before reopening: {e}");
        }
        match open_append(path) {
            Ok((f, w)) => {
                *file = f;
                *written = w;
                tracing::info!(path = %path.display(), "EVE file reopened");
            }
            Err(e) => tracing::error!("{e}; still writing to the file open before"),
        }
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        let Target::File {
            path,
            file,
            written,
        } = &mut self.target
        else {
            return Ok(());
        };
        file.flush()
            .map_err(|e| SinkError::io(format!("flush {}", path.display()), e))?;
        for i in (1..self.keep).rev() {
            let from = numbered(path, i);
            if from.exists() {
                let _ = std::fs::rename(&from, numbered(path, i + 1));
            }
        }
        std::fs::rename(&*path, numbered(path, 1))
            .map_err(|e| SinkError::io(format!("rotate {}", path.display()), e))?;
        let (f, w) = open_append(path)?;
        *file = f;
        *written = w;
        Ok(())
    }
}

fn numbered(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> Result<(io::BufWriter<File>, u64), SinkError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| SinkError::io(format!("open EVE file {}", path.display()), e))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((io::BufWriter::new(f), len))
}

impl EventSink for EveFileSink {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        if self.reopen.as_ref().is_some_and(ReopenFlag::take) {
            self.reopen();
        }
        let mut line = event.to_json_line();
        line.push('\n');
        if let (Some(limit), Target::File { written, .. }) = (self.rotate_bytes, &self.target)
            && *written > 0
            && *written + line.len() as u64 > limit
        {
            self.rotate()?;
        }
        match &mut self.target {
            Target::Stdout(out) => {
                let mut lock = out.lock();
                lock.write_all(line.as_bytes())
                    .and_then(|_| lock.flush())
                    .map_err(|e| SinkError::io("write EVE to stdout", e))
            }
            Target::File {
                path,
                file,
                written,
            } => {
                file.write_all(line.as_bytes())
                    .and_then(|_| file.flush())
                    .map_err(|e| SinkError::io(format!("write {}", path.display()), e))?;
                *written += line.len() as u64;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.reopen.as_ref().is_some_and(ReopenFlag::take) {
            self.reopen();
        }
        match &mut self.target {
            Target::Stdout(out) => out.flush().map_err(|e| SinkError::io("flush stdout", e)),
            Target::File { path, file, .. } => file
                .flush()
                .map_err(|e| SinkError::io(format!("flush {}", path.display()), e)),
        }
    }
}
