//! Weights in disguise: bodies whose bytes are base64 or hex text (JSON
//! string fields, form fields, multipart text parts, a bare text body).
//! The first `format_scan_bytes × 4/3` of a text-like object are buffered;
//! each long run of the base64 (or hex) alphabet is decoded, at most
//! `format_scan_bytes` decoded bytes per object, and the decoded bytes go
//! to the same detectors as a binary body: the format parsers
//! ([`format::recognise`]) and then the tensor-statistics detector. The
//! alert names the encoding (`evidence.encoding`).
//!
//! What a run tolerates: line breaks (MIME base64), JSON's `\/` escape,
//! URL-encoded `%2B`/`%2F`/`%3D` (form fields), the URL-safe alphabet.
//! Objects whose first 4 KiB are not mostly printable text are left alone
//! at once (no buffering).

use super::config::DetectConfig;
use super::format::{self, Verdict};
use super::stats::TensorStatsDetector;
use super::{DecodeTally, Detector, Finding, ObjectScan};
use crate::object::{ObjectEnd, ObjectMeta};
use base64::Engine;
use serde_json::json;
use std::sync::Arc;

/// Shortest run of encoded text decoded (shorter runs are tokens, ids,
/// hashes: far below any size a weights alert needs).
const MIN_RUN: usize = 4096;
/// Bytes looked at to decide whether an object is text.
const SNIFF: usize = 4096;

/// An encoding of binary as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// RFC 4648 base64 (standard or URL-safe alphabet).
    Base64,
    /// Hexadecimal digits, two per byte.
    Hex,
}

impl Encoding {
    /// `evidence.encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
        }
    }
}

/// One run of encoded text, normalised (escapes removed), and where it
/// started in the object.
struct Run {
    text: Vec<u8>,
    offset: usize,
}

fn is_b64(b: u8) -> bool {
    B64_ALPHABET[usize::from(b)]
}

/// Which bytes are in the base64 alphabets (standard and URL-safe): a table,
/// as [`runs`] asks for every byte of a text body.
const B64_ALPHABET: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
        b += 1;
    }
    t
};

/// What the byte at `buf[i]` is to a run of encoded text, when it is not in
/// the alphabet: line breaks (MIME) are skipped, JSON's `\/` and URL-encoded
/// `%2B` / `%2F` stand for one character, padding (`=`, `%3D`) ends the run
/// as its last character; anything else ends it.
enum Special {
    /// Skip this many bytes; the run goes on.
    Skip(usize),
    /// This character (of this many bytes) belongs to the run.
    Char(u8, usize),
    /// Padding of this many bytes: the run's last character.
    Pad(usize),
    /// Not part of a run: it ends here.
    End,
}

fn special(buf: &[u8], i: usize) -> Special {
    match buf[i] {
        b'=' => Special::Pad(1),
        b'\r' | b'\n' => Special::Skip(1),
        b'\\' if buf.get(i + 1) == Some(&b'/') => Special::Char(b'/', 2),
        b'%' => match buf.get(i + 1..i + 3) {
            Some(b"2B" | b"2b") => Special::Char(b'+', 3),
            Some(b"2F" | b"2f") => Special::Char(b'/', 3),
            Some(b"3D" | b"3d") => Special::Pad(3),
            _ => Special::End,
        },
        _ => Special::End,
    }
}

/// Whether `b` ends a run wherever it is: not in the alphabet, not padding,
/// and not the start of an escape or a line break (the later bytes of an
/// escape are all in the alphabet).
fn ends_any_run(b: u8) -> bool {
    !is_b64(b) && !matches!(b, b'=' | b'\r' | b'\n' | b'\\' | b'%')
}

/// Length of the stretch of plain alphabet at the start of `b`.
fn stretch(b: &[u8]) -> usize {
    b.iter().position(|&c| !is_b64(c)).unwrap_or(b.len())
}

/// The normalised text of the run that `buf` holds (escapes replaced, line
/// breaks dropped): `buf` is a run [`runs`] found, so it holds nothing else.
fn normalise(buf: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(buf.len());
    let mut i = 0;
    while i < buf.len() {
        let n = stretch(&buf[i..]);
        if n > 0 {
            text.extend_from_slice(&buf[i..i + n]);
            i += n;
            continue;
        }
        i += match special(buf, i) {
            Special::Skip(n) => n,
            Special::Char(c, n) => {
                text.push(c);
                n
            }
            Special::Pad(n) => {
                text.push(b'=');
                n
            }
            // Not in a run that `runs` found.
            Special::End => 1,
        };
    }
    text
}

/// The runs of base64-alphabet text at least [`MIN_RUN`] long in `buf`,
/// normalised, holding at most `budget` characters together.
///
/// Runs are measured as the bytes go by and only the long ones are copied
/// out (text bodies are mostly short words: copying each of them was most of
/// this detector's time).
fn runs(buf: &[u8], budget: usize) -> Vec<Run> {
    let mut out = Vec::new();
    // The current run: where it starts in `buf`, and its normalised length.
    let mut from = 0usize;
    let mut len = 0usize;
    let mut total = 0usize;
    let mut i = 0;
    // The run ends before `end`; the next one may start at `next`.
    let mut flush = |from: &mut usize, len: &mut usize, end: usize, next: usize| {
        if *len >= MIN_RUN && total < budget {
            let mut text = normalise(&buf[*from..end]);
            text.truncate(budget - total);
            total += text.len();
            out.push(Run {
                text,
                offset: *from,
            });
        }
        *len = 0;
        *from = next;
    };
    while i < buf.len() {
        // At the start of a run, a byte that ends any run (and cannot be
        // inside an escape) `MIN_RUN - 1` bytes ahead means that no run
        // reaching it or ending before it is long enough: skip past it, as
        // the byte-by-byte walk would have ended a run there. Ordinary text
        // is thus looked at about once every `MIN_RUN` bytes.
        if len == 0
            && let Some(&b) = buf.get(i + MIN_RUN - 1)
            && ends_any_run(b)
        {
            i += MIN_RUN;
            from = i;
            continue;
        }
        // A stretch of plain alphabet is measured at once.
        let n = stretch(&buf[i..]);
        if n > 0 {
            len += n;
            i += n;
            continue;
        }
        i += match special(buf, i) {
            Special::Skip(n) => n,
            Special::Char(_, n) => {
                len += 1;
                n
            }
            Special::Pad(n) => {
                len += 1;
                flush(&mut from, &mut len, i + n, i + n);
                n
            }
            Special::End => {
                flush(&mut from, &mut len, i, i + 1);
                1
            }
        };
    }
    flush(&mut from, &mut len, buf.len(), buf.len());
    out
}

/// Decode a run: hex when every character is a hex digit, else base64
/// (standard or URL-safe alphabet) of its whole 4-character groups.
fn decode(run: &[u8]) -> Option<(Encoding, Vec<u8>)> {
    let body = run.strip_suffix(b"=").unwrap_or(run);
    let body = body.strip_suffix(b"=").unwrap_or(body);
    if body.iter().all(u8::is_ascii_hexdigit) {
        let n = body.len() / 2 * 2;
        return hex::decode(&body[..n]).ok().map(|d| (Encoding::Hex, d));
    }
    let text = &body[..body.len() / 4 * 4];
    let engine = if text.iter().any(|b| matches!(b, b'-' | b'_')) {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    };
    engine.decode(text).ok().map(|d| (Encoding::Base64, d))
}

/// The encoded-body detector.
pub struct EncodedDetector {
    cfg: Arc<DetectConfig>,
}

impl EncodedDetector {
    /// A detector with these thresholds.
    pub fn new(cfg: Arc<DetectConfig>) -> Self {
        EncodedDetector { cfg }
    }
}

impl Detector for EncodedDetector {
    fn name(&self) -> &'static str {
        "encoded"
    }

    fn begin(&self, _meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>> {
        Some(Box::new(EncodedScan {
            cfg: self.cfg.clone(),
            buf: Vec::new(),
            start: None,
            next_try: 64 * 1024,
            sniffed: false,
            done: false,
            tally: DecodeTally::default(),
        }))
    }
}

/// Per-object state of [`EncodedDetector`].
pub struct EncodedScan {
    cfg: Arc<DetectConfig>,
    buf: Vec<u8>,
    start: Option<u64>,
    next_try: usize,
    /// The first [`SNIFF`] bytes were found to be text (judged once).
    sniffed: bool,
    done: bool,
    /// Which encodings were decoded, and whether the window capped one
    /// (each 0 or 1: counted per body).
    tally: DecodeTally,
}

impl EncodedScan {
    /// Text bytes buffered: enough to decode `format_scan_bytes`.
    fn limit(&self) -> usize {
        (self.cfg.format_scan_bytes as usize).saturating_mul(4) / 3 + SNIFF
    }

    /// Decode the runs in view and run the detectors on each; the first
    /// finding wins.
    fn attempt(&mut self, complete: bool) -> Option<Finding> {
        let budget = self.cfg.format_scan_bytes as usize * 4 / 3;
        let runs = runs(&self.buf, budget);
        if runs.iter().map(|r| r.text.len()).sum::<usize>() >= budget {
            // Text beyond the decode window is not decoded.
            self.tally.decode_capped = 1;
        }
        for run in runs {
            let Some((enc, bytes)) = decode(&run.text) else {
                continue;
            };
            match enc {
                Encoding::Base64 => self.tally.base64_bodies = 1,
                Encoding::Hex => self.tally.hex_bodies = 1,
            }
            // A run reaching the buffer's end may go on: the decoded bytes
            // are a prefix unless the object is complete.
            let cut = run.offset + run.text.len() >= self.buf.len().saturating_sub(4);
            if cut && self.buf.len() >= self.limit() {
                self.tally.decode_capped = 1;
            }
            let whole = complete || !cut;
            if let Some(mut f) = self.detect(&bytes, whole) {
                f.detail = format!("{}-encoded {}", enc.as_str(), f.detail);
                f.evidence.insert("encoding".into(), json!(enc.as_str()));
                f.evidence
                    .insert("encoded_offset".into(), json!(run.offset));
                f.evidence
                    .insert("decoded_bytes".into(), json!(bytes.len()));
                return Some(f);
            }
        }
        None
    }

    /// The format parsers, then the tensor-statistics detector, on decoded
    /// bytes.
    fn detect(&self, bytes: &[u8], whole: bool) -> Option<Finding> {
        match format::recognise(bytes, whole, None) {
            Verdict::Match(id) => {
                let size = id.declared_bytes.unwrap_or(bytes.len() as u64);
                if size < self.cfg.min_object_bytes {
                    return None;
                }
                Some(format::finding(&id, size))
            }
            Verdict::NeedMore | Verdict::No => {
                let stats = TensorStatsDetector::new(self.cfg.clone());
                let mut scan = stats.begin(&ObjectMeta::default())?;
                let mut found = None;
                for (i, chunk) in bytes.chunks(64 * 1024).enumerate() {
                    found = scan.data((i * 64 * 1024) as u64, chunk);
                    if found.is_some() || scan.done() {
                        break;
                    }
                }
                if found.is_none() && !scan.done() && whole {
                    found = scan.end(ObjectEnd::Complete);
                }
                found
            }
        }
    }
}

/// Whether `b` is mostly printable ASCII (text, JSON, forms).
fn texty(b: &[u8]) -> bool {
    let printable = b
        .iter()
        .filter(|c| c.is_ascii_graphic() || matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .count();
    printable * 100 >= b.len() * 95
}

impl ObjectScan for EncodedScan {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Option<Finding> {
        if self.done {
            return None;
        }
        let start = *self.start.get_or_insert(offset);
        if offset != start + self.buf.len() as u64 {
            // Only the contiguous start is decoded.
            self.done = true;
            return self.attempt(false);
        }
        let room = self.limit().saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if !self.sniffed && self.buf.len() >= SNIFF.min(self.limit()) {
            if !texty(&self.buf[..SNIFF.min(self.buf.len())]) {
                self.done = true;
                self.buf = Vec::new();
                return None;
            }
            self.sniffed = true;
        }
        let full = self.buf.len() >= self.limit();
        if self.buf.len() >= self.next_try || full {
            self.next_try = self.buf.len().saturating_mul(4);
            let f = self.attempt(false);
            if f.is_some() || full {
                self.done = true;
                self.buf = Vec::new();
            }
            return f;
        }
        None
    }

    fn gap(&mut self, _len: u64) {
        if !self.done && !self.buf.is_empty() {
            self.next_try = 0;
        }
    }

    fn end(&mut self, _state: ObjectEnd) -> Option<Finding> {
        if self.done {
            return None;
        }
        self.done = true;
        // Shorter than a run: it holds none (most text bodies; looking
        // them over was most of what is left of this detector's time).
        // With no decode window at all, `attempt` still notes it as capped.
        if self.buf.len() < MIN_RUN && self.cfg.format_scan_bytes > 0 {
            return None;
        }
        if self.buf.len() < SNIFF && !texty(&self.buf) {
            return None;
        }
        self.attempt(true)
    }

    fn done(&self) -> bool {
        self.done
    }

    fn tally(&self) -> DecodeTally {
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_survive_json_escapes_line_breaks_and_url_encoding() {
        let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        let json = format!("{{\"w\": \"{}\"}}", b64.replace('/', "\\/"));
        let r = runs(json.as_bytes(), usize::MAX);
        assert_eq!(r.len(), 1);
        assert_eq!(decode(&r[0].text).map(|d| d.1), Some(data.clone()));
        let mime: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        let r = runs(mime.as_bytes(), usize::MAX);
        assert_eq!(decode(&r[0].text).map(|d| d.1), Some(data.clone()));
        let form = format!(
            "a=1&w={}",
            b64.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let r = runs(form.as_bytes(), usize::MAX);
        assert_eq!(decode(&r[0].text).map(|d| d.1), Some(data.clone()));
        let hex = hex::encode(&data);
        let r = runs(hex.as_bytes(), usize::MAX);
        assert_eq!(decode(&r[0].text), Some((Encoding::Hex, data)));
    }

    /// The runs as found byte by byte, every run's text built as it goes
    /// (how [`runs`] worked before it measured runs and skipped text).
    fn runs_byte_by_byte(buf: &[u8], budget: usize) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        let (mut text, mut from, mut total) = (Vec::new(), 0, 0);
        let mut flush = |text: &mut Vec<u8>, from: &mut usize, next: usize| {
            if text.len() >= MIN_RUN && total < budget {
                let mut t = std::mem::take(text);
                t.truncate(budget - total);
                total += t.len();
                out.push((*from, t));
            }
            text.clear();
            *from = next;
        };
        let mut i = 0;
        while i < buf.len() {
            if is_b64(buf[i]) {
                text.push(buf[i]);
                i += 1;
                continue;
            }
            i += match special(buf, i) {
                Special::Skip(n) => n,
                Special::Char(c, n) => {
                    text.push(c);
                    n
                }
                Special::Pad(n) => {
                    text.push(b'=');
                    flush(&mut text, &mut from, i + n);
                    n
                }
                Special::End => {
                    flush(&mut text, &mut from, i + 1);
                    1
                }
            };
        }
        flush(&mut text, &mut from, buf.len());
        out
    }

    #[test]
    fn skipping_text_finds_the_runs_a_byte_by_byte_walk_finds() {
        // Text of words, long runs with escapes, line breaks and padding,
        // runs just below and just above MIN_RUN, in many arrangements.
        let pieces: [&[u8]; 9] = [
            b"\"key\": \"value\", ",
            b" ",
            b"\r\n",
            b"\\/",
            b"%2B",
            b"%3D",
            b"=",
            b"%zz",
            b"\\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut found = 0;
        for _ in 0..300 {
            let mut buf = Vec::new();
            while buf.len() < 40_000 {
                match next(4) {
                    0 => {
                        let n = MIN_RUN as u64 - 8 + next(16);
                        buf.extend((0..n).map(|k| b"Ab0+/-_z"[(k % 8) as usize]));
                    }
                    1 => buf.extend((0..next(64)).map(|k| b'a' + (k % 26) as u8)),
                    _ => buf.extend_from_slice(pieces[next(pieces.len() as u64) as usize]),
                }
            }
            for budget in [usize::MAX, 6000] {
                let got: Vec<(usize, Vec<u8>)> = runs(&buf, budget)
                    .into_iter()
                    .map(|r| (r.offset, r.text))
                    .collect();
                assert_eq!(got, runs_byte_by_byte(&buf, budget));
                found += got.len();
            }
        }
        assert!(found > 300, "the inputs hold long runs: {found}");
    }

    #[test]
    fn short_runs_and_binary_are_ignored() {
        assert!(runs(b"{\"token\": \"abcdefABCDEF0123456789\"}", usize::MAX).is_empty());
        assert!(!texty(&[0u8, 1, 2, 3, 200, 201]));
    }
}
