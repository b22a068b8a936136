//! Parallel JSON Lines parsing. A reader thread reads the (decompressed)
//! stream into blocks of whole lines (buffers are recycled); workers parse,
//! validate and reduce each line (JSON, text features), keeping each row's
//! strings as byte ranges into its block rather than copies; the calling
//! thread applies the results to the store strictly in input order, so
//! interning, kept samples and the bad-row report are exactly those of a
//! sequential read.

use super::Sink;
use crate::config::AnalyzerConfig;
use crate::requests::{Reduced, Req, RowStrings};
use crate::row::{self, BadRow, Row};
use crate::text::{TextAnalyzer, TextCache, TextFeatures, TextScratch};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;

/// Where one string of a parsed row is: a byte range of its block, or —
/// when JSON escapes made the parser copy it — an entry of the block's
/// side table.
#[derive(Clone, Copy, Debug)]
enum Span {
    Block(u32, u32),
    Side(u32),
}

/// The strings of a valid row reduced where it was parsed (its
/// [`Req`] is beside it in [`Parsed::reqs`]), left in its block as
/// [`Span`]s (no copies): [`Detached::strings`] borrows them back.
pub(crate) struct Detached {
    src_ip: std::net::IpAddr,
    account_id: Span,
    api_key_id: Span,
    model: Span,
    user_agent: Option<Span>,
    prompt: Option<Span>,
}

/// A block's bytes: as text when the whole block is valid UTF-8 (checked
/// once, instead of once per line and again per string when the rows are
/// applied), else as bytes, each line then checked on its own.
enum Block {
    Text(String),
    Bytes(Vec<u8>),
}

impl Block {
    fn of(bytes: Vec<u8>) -> Block {
        match String::from_utf8(bytes) {
            Ok(s) => Block::Text(s),
            Err(e) => Block::Bytes(e.into_bytes()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Block::Text(s) => s.as_bytes(),
            Block::Bytes(b) => b,
        }
    }

    /// The text at `range`, when it is text: a line, or a string parsed
    /// from this block (cut at ASCII bytes, so in a block checked whole
    /// this is a boundary check only).
    fn str(&self, range: std::ops::Range<usize>) -> Option<&str> {
        match self {
            Block::Text(s) => s.get(range),
            Block::Bytes(b) => b.get(range).and_then(|b| std::str::from_utf8(b).ok()),
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Block::Text(s) => s.into_bytes(),
            Block::Bytes(b) => b,
        }
    }
}

/// The strings behind a block's spans.
struct Strings<'b> {
    block: &'b [u8],
    side: Vec<String>,
}

impl<'b> Strings<'b> {
    fn span(&mut self, s: Cow<'_, str>) -> Span {
        let base = self.block.as_ptr() as usize;
        if let Cow::Borrowed(b) = &s {
            let at = (b.as_ptr() as usize).wrapping_sub(base);
            if at <= self.block.len()
                && b.len() <= self.block.len() - at
                && let (Ok(at), Ok(len)) = (u32::try_from(at), u32::try_from(b.len()))
            {
                return Span::Block(at, len);
            }
        }
        self.side.push(s.into_owned());
        Span::Side(self.side.len() as u32 - 1)
    }

    fn detach(&mut self, r: Row<'_>) -> Detached {
        Detached {
            src_ip: r.src_ip,
            account_id: self.span(r.account_id),
            api_key_id: self.span(r.api_key_id),
            model: self.span(r.model),
            user_agent: r.user_agent.map(|s| self.span(s)),
            prompt: r.prompt.map(|s| self.span(s)),
        }
    }
}

impl Detached {
    /// The row's strings, borrowed from `block` and `side`.
    fn strings<'b>(&self, block: &'b Block, side: &'b [String]) -> RowStrings<'b> {
        let get = |s: Span| -> &'b str {
            match s {
                Span::Block(at, len) => block
                    .str(at as usize..at as usize + len as usize)
                    .unwrap_or(""),
                Span::Side(i) => side.get(i as usize).map_or("", |x| x.as_str()),
            }
        };
        RowStrings {
            account_id: get(self.account_id),
            api_key_id: get(self.api_key_id),
            user_agent: self.user_agent.map(get),
            model: get(self.model),
            prompt: self.prompt.map(get),
        }
    }
}

/// A parsed block: its bytes (which the rows' spans point into), the
/// strings that had to be copied, the valid rows (reduced, and their
/// strings) and the rejected lines (line, reason, excerpt), each in input
/// order.
/// (Whether a bad line comes before or after a valid one changes nothing
/// in the store or the report.)
struct Parsed {
    block: Block,
    side: Vec<String>,
    /// The valid rows reduced, ids not yet set: they become the store's
    /// chunk for this block (allocated and written here, on a worker).
    reqs: Vec<Req>,
    /// Their strings, one per entry of `reqs`.
    rows: Vec<Detached>,
    /// (first line, lines, reason, excerpt): a run of blank lines is one
    /// entry.
    bad: Vec<(u64, u64, BadRow, String)>,
}

/// Lines in a block of whole lines (its final newline ends the last line).
fn lines_in(block: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', block).count() as u64;
    newlines + u64::from(!block.is_empty() && !block.ends_with(b"\n"))
}

/// Rows with a prompt whose text features are set together ([`Pending`]):
/// few enough that their prompts (about 40 KiB of text) are still in the
/// CPU's own caches when the text pass reads them again.
const RUN: usize = 128;

/// The rows of a run whose text features are not set yet, with their
/// prompts, and the buffers of [`Pending::finish`].
#[derive(Default)]
struct Pending<'b> {
    /// Each row with a prompt: its place in the block's `reqs` (and
    /// `rows`, whose span gives the prompt's text) and the prompt's
    /// [`TextCache::hash`].
    prompted: Vec<(usize, u64)>,
    /// The run's prompts not in the cache, each once, with their hashes.
    misses: Vec<(Cow<'b, str>, u64)>,
    /// Index in `misses` by hash.
    new: rustc_hash::FxHashMap<u64, usize>,
    /// The rows waiting for a prompt of `misses`: (place, index).
    waiting: Vec<(usize, usize)>,
    scratch: TextScratch,
}

impl<'b> Pending<'b> {
    /// Set the text features of the run's rows in `reqs`: the cache
    /// lookups first, one after the other (not waiting on each other, they
    /// overlap their misses in the CPU's caches: each is a miss on the
    /// 1.5 MiB table), then the prompts not in the cache analysed together
    /// ([`TextAnalyzer::analyze_batch`]: two phrase scans interleaved run
    /// faster than one after the other). A prompt's features are the same
    /// whether analysed or found in the cache, so when they are set does
    /// not change them.
    /// The prompt of `rows[at]` is in `block`, or in `side` when
    /// JSON escapes made the parser copy it (copied again only when the
    /// cache misses it).
    fn finish(
        &mut self,
        reqs: &mut [Req],
        rows: &[Detached],
        (block, side): (&'b Block, &[String]),
        text: &TextAnalyzer,
        cache: &mut TextCache,
    ) {
        for (at, hash) in self.prompted.drain(..) {
            match cache.get(hash) {
                Some(hit) => {
                    if let Some(req) = reqs.get_mut(at) {
                        req.set_text(&hit);
                    }
                }
                None => {
                    let k = *self.new.entry(hash).or_insert_with(|| {
                        let prompt = match rows.get(at).and_then(|d| d.prompt) {
                            Some(Span::Block(a, n)) => Cow::Borrowed(
                                block.str(a as usize..a as usize + n as usize).unwrap_or(""),
                            ),
                            Some(Span::Side(i)) => {
                                Cow::Owned(side.get(i as usize).cloned().unwrap_or_default())
                            }
                            None => Cow::Borrowed(""),
                        };
                        self.misses.push((prompt, hash));
                        self.misses.len() - 1
                    });
                    self.waiting.push((at, k));
                }
            }
        }
        let prompts: Vec<(&str, u64)> = self.misses.iter().map(|(p, h)| (p.as_ref(), *h)).collect();
        let features = text.analyze_batch(&prompts, &mut self.scratch, cache);
        for (at, k) in self.waiting.drain(..) {
            if let (Some(req), Some(tf)) = (reqs.get_mut(at), features.get(k)) {
                req.set_text(tf);
            }
        }
        self.misses.clear();
        self.new.clear();
    }
}

fn parse_block(
    block: Vec<u8>,
    first_line: u64,
    lines: u64,
    max_line: usize,
    cfg: &AnalyzerConfig,
    text: &TextAnalyzer,
    cache: &mut TextCache,
) -> Parsed {
    let block = Block::of(block);
    let bytes = block.bytes();
    // One entry per line at most: the chunk is kept whole in the store.
    let mut reqs = Vec::with_capacity(lines as usize);
    let mut rows = Vec::with_capacity(lines as usize);
    let mut bad = Vec::new();
    let mut pending = Pending::default();
    let mut strings = Strings {
        block: bytes,
        side: Vec::new(),
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        let line_no = first_line + i as u64;
        let line_start = start;
        let mut line = &body[start..end];
        start = end + 1;
        while let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.len() > max_line {
            bad.push((line_no, 1, BadRow::LineTooLong, String::new()));
            continue;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            match bad.last_mut() {
                Some((first, n, BadRow::BlankLine, _)) if *first + *n == line_no => *n += 1,
                _ => bad.push((line_no, 1, BadRow::BlankLine, String::new())),
            }
            continue;
        }
        let Some(s) = block.str(line_start..line_start + line.len()) else {
            bad.push((
                line_no,
                1,
                BadRow::InvalidUtf8,
                String::from_utf8_lossy(line).chars().take(120).collect(),
            ));
            continue;
        };
        let r = match row::from_json_line(s) {
            Ok(r) => r,
            Err(reason) => {
                bad.push((line_no, 1, reason, s.chars().take(120).collect()));
                continue;
            }
        };
        // Its text features are set when its run of rows is done.
        if let Some(p) = &r.prompt {
            pending.prompted.push((reqs.len(), TextCache::hash(p)));
        }
        reqs.push(Reduced::of(&r, TextFeatures::default(), cfg).req);
        rows.push(strings.detach(r));
        if pending.prompted.len() >= RUN {
            pending.finish(&mut reqs, &rows, (&block, &strings.side), text, cache);
        }
    }
    pending.finish(&mut reqs, &rows, (&block, &strings.side), text, cache);
    let side = strings.side;
    Parsed {
        block,
        side,
        reqs,
        rows,
        bad,
    }
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
    let cfg = sink.cfg;
    let max_line = sink.cfg.max_line_bytes.max(1);
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, u64, u64, Vec<u8>)>(threads * 2);
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(u64, Parsed)>(threads * 2);
    // Used blocks go back to the producer.
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    // Workers take turns at the one receiver.
    let work_rx = std::sync::Mutex::new(work_rx);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let work_rx = &work_rx;
            let done_tx = done_tx.clone();
            s.spawn(move || {
                let mut cache = TextCache::default();
                loop {
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((seq, first_line, lines, block)) = next else {
                        break;
                    };
                    if done_tx
                        .send((
                            seq,
                            parse_block(block, first_line, lines, max_line, cfg, text, &mut cache),
                        ))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let producer = s.spawn(move || -> (Option<(u64, String)>, Vec<u64>) {
            let mut seq = 0u64;
            let mut line = 1u64;
            let mut carry: Vec<u8> = Vec::new();
            // Lines longer than `max_line` are skipped to their end, never
            // held: their numbers are reported after the file.
            let mut long_lines = Vec::new();
            let mut skipping = false;
            loop {
                // Blocks come back after use: no fresh allocation (and page
                // faults) per block. A carried line longer than half a block
                // becomes the block itself rather than being copied again.
                let (mut block, mut filled) = if carry.len() > BLOCK / 2 {
                    let b = std::mem::take(&mut carry);
                    let n = b.len();
                    (b, n)
                } else {
                    // A recycled block keeps its old bytes as its length:
                    // the resize below zeroes only what lies past them (a
                    // few bytes, not 4 MiB per block), the read overwrites.
                    let mut b = free_rx.try_recv().unwrap_or_default();
                    let n = carry.len();
                    if b.len() < n {
                        b.resize(n, 0);
                    }
                    b[..n].copy_from_slice(&carry);
                    carry.clear();
                    (b, n)
                };
                let want = filled + BLOCK;
                block.resize(want, 0);
                let (mut eof, mut err) = (false, None);
                // Straight into the block (BufReader skips its own buffer
                // for reads this large).
                while filled < want {
                    match reader.read(&mut block[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            err = Some(e.to_string());
                            break;
                        }
                    }
                }
                block.truncate(filled);
                if skipping {
                    match memchr::memchr(b'\n', &block) {
                        Some(p) => {
                            block.drain(..=p);
                            skipping = false;
                            long_lines.push(line);
                            line += 1;
                        }
                        None => {
                            block.clear();
                            if eof || err.is_some() {
                                long_lines.push(line);
                                return (err.map(|e| (line, e)), long_lines);
                            }
                            carry = block;
                            continue;
                        }
                    }
                }
                // Whole lines only: the tail waits for the next block, or is
                // dropped with the error when the stream broke.
                let cut = if eof {
                    block.len()
                } else {
                    memchr::memrchr(b'\n', &block).map_or(0, |p| p + 1)
                };
                if cut == 0 && err.is_none() && !eof {
                    if block.len() > max_line {
                        // Too long to keep: skip to its end.
                        skipping = true;
                        block.clear();
                    }
                    carry = block; // a line longer than a block: read on
                    continue;
                }
                if err.is_none() {
                    carry.extend_from_slice(&block[cut..]);
                }
                block.truncate(cut);
                let lines = lines_in(&block);
                if !block.is_empty() {
                    if work_tx.send((seq, line, lines, block)).is_err() {
                        return (None, long_lines);
                    }
                    seq += 1;
                }
                line += lines;
                if let Some(e) = err {
                    return (Some((line, e)), long_lines);
                }
                if eof {
                    return (None, long_lines);
                }
            }
        });
        // Apply in order.
        let mut pending: BTreeMap<u64, Parsed> = BTreeMap::new();
        let mut next = 0u64;
        for (seq, parsed) in done_rx {
            pending.insert(seq, parsed);
            while let Some(parsed) = pending.remove(&next) {
                // The producer may be gone (error or end): then the block is dropped.
                let _ = free_tx.send(apply(path, parsed, sink));
                next += 1;
            }
        }
        let (err, long_lines) = producer
            .join()
            .unwrap_or((Some((0, "reader thread panicked".into())), Vec::new()));
        for l in long_lines {
            sink.bad(path, l, &BadRow::LineTooLong, "");
        }
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

/// Apply a parsed block to the sink: its rows' ids set in input order,
/// its chunk of requests kept; returns the block for reuse.
fn apply(path: &Path, parsed: Parsed, sink: &mut Sink<'_>) -> Vec<u8> {
    let Parsed {
        block,
        side,
        mut reqs,
        rows,
        bad,
    } = parsed;
    let mut kept = 0;
    for (d, req) in rows.iter().zip(reqs.iter_mut()) {
        kept += usize::from(sink.identify(req, d.src_ip, &d.strings(&block, &side)));
    }
    reqs.truncate(kept);
    sink.store.keep_chunk(reqs);
    for (line, n, reason, excerpt) in bad {
        sink.bad_n(path, line, n, &reason, &excerpt);
    }
    block.into_vec()
}
