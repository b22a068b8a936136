//! EVE JSON Lines to a file or stdout, line-buffered, optionally rotated by size.

use super::{EventSink, SinkError};
use crate::event::Event;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
        })
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
        match &mut self.target {
            Target::Stdout(out) => out.flush().map_err(|e| SinkError::io("flush stdout", e)),
            Target::File { path, file, .. } => file
                .flush()
                .map_err(|e| SinkError::io(format!("flush {}", path.display()), e)),
        }
    }
}
