//! Parallel JSON Lines parsing. A reader thread cuts the (decompressed)
//! stream into blocks of whole lines; workers parse, validate and reduce each
//! line (JSON, text features); the calling thread applies the results to the
//! store strictly in input order, so interning, kept samples and the bad-row
//! report are exactly those of a sequential read.

use super::Sink;
use crate::row::{self, BadRow, Row};
use crate::text::{TextAnalyzer, TextFeatures};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;

/// One line's outcome.
pub(crate) enum Item {
    /// A valid row (prompt text dropped), its text features and, when it
    /// had text, the start of the prompt for samples.
    Row(Box<Row<'static>>, TextFeatures, Option<String>),
    /// A rejected line.
    Bad(u64, BadRow, String),
}

/// Reduce one valid row: text features computed, prompt text dropped.
pub(crate) fn reduce(
    mut r: Row<'_>,
    text: &TextAnalyzer,
    scratch: &mut String,
    sample_chars: usize,
) -> Item {
    let (tf, sample) = match r.prompt.take() {
        Some(p) => (
            text.analyze(&p, scratch),
            Some(p.chars().take(sample_chars).collect()),
        ),
        None => (TextFeatures::default(), None),
    };
    Item::Row(Box::new(r.into_owned()), tf, sample)
}

/// Lines in a block of whole lines (its final newline ends the last line).
fn lines_in(block: &[u8]) -> u64 {
    match block.strip_suffix(b"\n") {
        _ if block.is_empty() => 0,
        Some(body) => body.iter().filter(|b| **b == b'\n').count() as u64 + 1,
        None => block.iter().filter(|b| **b == b'\n').count() as u64 + 1,
    }
}

fn parse_block(
    block: &[u8],
    first_line: u64,
    text: &TextAnalyzer,
    sample_chars: usize,
) -> Vec<Item> {
    let mut out = Vec::with_capacity(block.len() / 400 + 1);
    let mut scratch = String::new();
    let body = block.strip_suffix(b"\n").unwrap_or(block);
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let line_no = first_line + i as u64;
        let mut line = raw;
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            out.push(Item::Bad(line_no, BadRow::BlankLine, String::new()));
            continue;
        }
        let Ok(s) = std::str::from_utf8(line) else {
            out.push(Item::Bad(
                line_no,
                BadRow::InvalidUtf8,
                String::from_utf8_lossy(line).chars().take(120).collect(),
            ));
            continue;
        };
        match row::from_json_line(s) {
            Ok(r) => out.push(reduce(r, text, &mut scratch, sample_chars)),
            Err(reason) => out.push(Item::Bad(line_no, reason, s.chars().take(120).collect())),
        }
    }
    out
}

/// Read JSON Lines from `reader` with `threads` workers into `sink`.
/// Returns the error that stopped reading early, if any.
pub(crate) fn read_jsonl(
    path: &Path,
    reader: &mut (dyn BufRead + Send),
    sink: &mut Sink<'_>,
    threads: usize,
    decompress: bool,
) -> Option<String> {
    let text = sink.text;
    let sample_chars = sink.cfg.sample_chars;
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, u64, Vec<u8>)>(threads * 2);
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Item>)>(threads * 2);
    // Workers take turns at the one receiver.
    let work_rx = std::sync::Mutex::new(work_rx);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let work_rx = &work_rx;
            let done_tx = done_tx.clone();
            s.spawn(move || {
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((seq, first_line, block)) = next else {
                        break;
                    };
                    if done_tx
                        .send((seq, parse_block(&block, first_line, text, sample_chars)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let producer = s.spawn(move || -> Option<(u64, String)> {
            let mut seq = 0u64;
            let mut line = 1u64;
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let mut block = std::mem::take(&mut carry);
                let want = block.len() + BLOCK;
                let (mut eof, mut err) = (false, None);
                while block.len() < want {
                    match reader.fill_buf() {
                        Ok([]) => {
                            eof = true;
                            break;
                        }
                        Ok(buf) => {
                            let n = buf.len();
                            block.extend_from_slice(buf);
                            reader.consume(n);
                        }
                        Err(e) => {
                            err = Some(e.to_string());
                            break;
                        }
                    }
                }
                // Whole lines only: the tail waits for the next block, or is
                // dropped with the error when the stream broke.
                let cut = if eof {
                    block.len()
                } else {
                    block.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1)
                };
                if cut == 0 && err.is_none() && !eof {
                    carry = block; // a line longer than a block: read on
                    continue;
                }
                if err.is_none() {
                    carry = block.split_off(cut);
                } else {
                    block.truncate(cut);
                }
                let lines = lines_in(&block);
                if !block.is_empty() {
                    if work_tx.send((seq, line, block)).is_err() {
                        return None;
                    }
                    seq += 1;
                }
                line += lines;
                if let Some(e) = err {
                    return Some((line, e));
                }
                if eof {
                    return None;
                }
            }
        });
        // Apply in order.
        let mut pending: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
        let mut next = 0u64;
        for (seq, items) in done_rx {
            pending.insert(seq, items);
            while let Some(items) = pending.remove(&next) {
                apply(path, items, sink);
                next += 1;
            }
        }
        let err = producer
            .join()
            .unwrap_or(Some((0, "reader thread panicked".into())));
        err.map(|(line, e)| {
            let reason = if decompress {
                "decompress_error"
            } else {
                "io_error"
            };
            sink.file_error(path, line, reason, &e);
            format!("line {line}: {e}")
        })
    })
}

fn apply(path: &Path, items: Vec<Item>, sink: &mut Sink<'_>) {
    for item in items {
        match item {
            Item::Row(r, tf, sample) => sink.reduced(&r, tf, sample.as_deref()),
            Item::Bad(line, reason, excerpt) => sink.bad(path, line, &reason, &excerpt),
        }
    }
}
