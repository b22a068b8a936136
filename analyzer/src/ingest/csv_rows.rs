//! CSV input, record by record. Fields are split by the `csv` crate; the
//! records are framed here first, because a CSV reader given one quote
//! that never closes reads the rest of the file as one field (and polars
//! fails the whole file on one ragged row): a record is a line, or the
//! lines a quoted field spans, and a quote still open after
//! `max_line_bytes` makes its first line a bad row (`unbalanced_quote`)
//! and reading goes on at the line after it. Memory stays bounded by
//! `max_line_bytes` whatever the file holds.

use super::{Line, Sink, read_line_bounded};
use crate::row::{self, BadRow};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;

/// One framed record or why a line was skipped.
enum Framed {
    /// The record's first line, its bytes (lines joined by `\n`), and the
    /// lines after the first that it took (to be framed again if the
    /// record turns out not to be one).
    Record(u64, Vec<u8>, Vec<(u64, Option<Vec<u8>>)>),
    /// A skipped line.
    Bad(u64, BadRow),
}

struct Framer<'r> {
    reader: &'r mut dyn BufRead,
    /// Lines read ahead while looking for a closing quote, to be framed
    /// again when it was not found.
    pending: VecDeque<(u64, Option<Vec<u8>>)>,
    line: u64,
    max: usize,
}

fn quotes(b: &[u8]) -> usize {
    memchr::memchr_iter(b'"', b).count()
}

fn trim_eol(mut b: Vec<u8>) -> Vec<u8> {
    while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        b.pop();
    }
    b
}

impl Framer<'_> {
    /// The next physical line: `None` at the end, `Some((n, None))` for a
    /// line too long to keep.
    fn line(&mut self) -> std::io::Result<Option<(u64, Option<Vec<u8>>)>> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(Some(l));
        }
        let mut buf = Vec::new();
        let got = read_line_bounded(self.reader, &mut buf, self.max)?;
        self.line += 1;
        Ok(match got {
            Line::End => None,
            Line::TooLong => Some((self.line, None)),
            Line::Whole => Some((self.line, Some(trim_eol(buf)))),
        })
    }

    /// Lines to be framed again, in order, before any new one.
    fn put_back(&mut self, lines: Vec<(u64, Option<Vec<u8>>)>) {
        for l in lines.into_iter().rev() {
            self.pending.push_front(l);
        }
    }

    fn next(&mut self) -> std::io::Result<Option<Framed>> {
        let Some((first, text)) = self.line()? else {
            return Ok(None);
        };
        let Some(mut record) = text else {
            return Ok(Some(Framed::Bad(first, BadRow::LineTooLong)));
        };
        if quotes(&record).is_multiple_of(2) {
            return Ok(Some(Framed::Record(first, record, Vec::new())));
        }
        // An open quote: a quoted field may span lines.
        let mut taken = Vec::new();
        loop {
            match self.line()? {
                Some((n, Some(next))) if record.len() + 1 + next.len() <= self.max => {
                    record.push(b'\n');
                    record.extend_from_slice(&next);
                    taken.push((n, Some(next)));
                    if quotes(&record).is_multiple_of(2) {
                        return Ok(Some(Framed::Record(first, record, taken)));
                    }
                }
                other => {
                    // Not closed within the bound (or at the end): the
                    // first line is bad, the others are framed again.
                    if let Some(l) = other {
                        taken.push(l);
                    }
                    self.put_back(taken);
                    return Ok(Some(Framed::Bad(first, BadRow::UnbalancedQuote)));
                }
            }
        }
    }
}

/// The cells of one framed record.
fn cells(record: &[u8]) -> Result<Vec<String>, BadRow> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(record);
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => Ok(rec.iter().map(str::to_string).collect()),
        Ok(false) => Ok(Vec::new()),
        Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => Err(BadRow::InvalidUtf8),
        Err(_) => Err(BadRow::InvalidJson),
    }
}

/// Read a CSV file (already decompressed) into the sink. Returns the error
/// that stopped reading early, if any.
pub(super) fn read(path: &Path, reader: &mut dyn BufRead, sink: &mut Sink<'_>) -> Option<String> {
    let mut framer = Framer {
        reader,
        pending: VecDeque::new(),
        line: 0,
        max: sink.cfg.max_line_bytes.max(1),
    };
    let mut header: Option<Vec<String>> = None;
    loop {
        let framed = match framer.next() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                sink.file_error(path, framer.line, "io_error", &e.to_string());
                return Some(e.to_string());
            }
        };
        let (line, record, taken) = match framed {
            Framed::Bad(line, reason) => {
                sink.bad(path, line, &reason, "");
                continue;
            }
            Framed::Record(line, record, taken) => (line, record, taken),
        };
        if record.iter().all(|b| b.is_ascii_whitespace()) {
            // Before the header a blank line is nothing (a file of blank
            // lines is an empty file, reported by the caller).
            if header.is_some() {
                sink.bad(path, line, &BadRow::BlankLine, "");
            }
            continue;
        }
        let excerpt = || String::from_utf8_lossy(&record[..record.len().min(120)]).into_owned();
        let values = match cells(&record) {
            Ok(v) => v,
            Err(reason) => {
                sink.bad(path, line, &reason, &excerpt());
                continue;
            }
        };
        let Some(names) = &header else {
            // A table without the schema's key columns is another kind of
            // file (e.g. labels.csv beside the logs): one file problem,
            // not N bad rows.
            if !values.iter().any(|n| n == "ts") || !values.iter().any(|n| n == "account_id") {
                let detail = format!("columns: {}", values.join(","));
                sink.file_error(path, 0, "not_a_request_log", &detail);
                return Some(detail);
            }
            header = Some(values);
            continue;
        };
        if values.len() != names.len() {
            if taken.is_empty() {
                sink.bad(path, line, &BadRow::RaggedRow, &excerpt());
            } else {
                // Lines joined by an open quote that do not make one row:
                // the quote was never meant to span them. The first line
                // is bad; the others are rows of their own.
                sink.bad(path, line, &BadRow::UnbalancedQuote, &excerpt());
                framer.put_back(taken);
            }
            continue;
        }
        // An empty cell is an absent value, as in the JSON schema.
        let obj: Map<String, Value> = names
            .iter()
            .zip(values)
            .map(|(n, v)| {
                let v = if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v)
                };
                (n.clone(), v)
            })
            .collect();
        let value = Value::Object(obj);
        match row::from_value(&value, true) {
            Ok(r) => sink.row(&r),
            Err(reason) => sink.bad(path, line, &reason, &excerpt()),
        }
    }
    None
}
