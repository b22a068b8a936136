//! Streaming `multipart/form-data` splitter: each part becomes its own object.
//!
//! The delimiter (`CRLF--boundary`) is searched with `memchr::memmem` in the
//! bytes as they arrive; only a tail shorter than the delimiter that might be
//! its beginning is held back between calls, so a part of any size costs a
//! few hundred bytes of state.

use super::head::{disposition_filename, header_value};
use crate::app::Ctx;
use crate::object::{ObjectEnd, ObjectEvent, ObjectMeta};
use eve::Direction;
use memchr::memmem;

/// Longest part header block accepted.
const MAX_PART_HEADERS: usize = 16 * 1024;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;
/// Longest delimiter line tail (transport padding) accepted.
const MAX_DELIM_LINE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (preamble bytes are dropped).
    Preamble,
    /// After a delimiter, reading the rest of its line (`--` ends the body).
    DelimLine,
    /// Reading a part's header block.
    Headers,
    /// Inside a part's content.
    Content,
    /// After the close delimiter (epilogue bytes are dropped).
    Epilogue,
    /// Framing broke: the rest of the body is one object.
    Broken,
}

/// The multipart splitter of one request body.
#[derive(Debug)]
pub(crate) struct Multipart {
    dir: Direction,
    /// `\r\n--boundary`.
    delim: Vec<u8>,
    finder: memmem::Finder<'static>,
    state: State,
    /// Held-back bytes that are a proper prefix of `delim`.
    carry: Vec<u8>,
    /// Delimiter line or part header bytes being collected.
    line: Vec<u8>,
    /// Metadata template of every part (HTTP fields of the request).
    template: ObjectMeta,
    /// A part object is open.
    open: bool,
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(crate) fn form_data_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= MAX_BOUNDARY).then(|| v.to_string())
    })
}

impl Multipart {
    /// A splitter for `boundary`; parts get `template`'s metadata.
    pub(crate) fn new(dir: Direction, boundary: &str, template: ObjectMeta) -> Self {
        let delim = [b"\r\n--".as_slice(), boundary.as_bytes()].concat();
        Multipart {
            dir,
            finder: memmem::Finder::new(&delim).into_owned(),
            delim,
            state: State::Preamble,
            // The body may start with the delimiter without its CRLF: a
            // virtual CRLF in front makes that case the ordinary one.
            carry: b"\r\n".to_vec(),
            line: Vec::new(),
            template,
            open: false,
        }
    }

    /// Decoded body bytes.
    pub(crate) fn push(&mut self, mut input: &[u8], ctx: &mut Ctx<'_>) {
        while !input.is_empty() {
            match self.state {
                State::Preamble | State::Content => input = self.scan(input, ctx),
                State::DelimLine => input = self.delim_line(input, ctx),
                State::Headers => input = self.headers(input, ctx),
                State::Epilogue => return,
                State::Broken => {
                    self.emit(input, ctx);
                    return;
                }
            }
        }
    }

    /// `n` body bytes were lost.
    pub(crate) fn gap(&mut self, n: u64, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Content => {
                let carry = std::mem::take(&mut self.carry);
                self.emit(&carry, ctx);
                ctx.out.object(self.dir, ObjectEvent::Gap(n));
            }
            State::Epilogue => {}
            State::Broken => {
                self.begin(None, None, ctx);
                ctx.out.object(self.dir, ObjectEvent::Gap(n));
            }
            State::Preamble | State::DelimLine | State::Headers => {
                self.break_framing(ctx);
                self.begin(None, None, ctx);
                ctx.out.object(self.dir, ObjectEvent::Gap(n));
            }
        }
    }

    /// The body ended (`complete` when its framing completed).
    pub(crate) fn finish(&mut self, complete: bool, ctx: &mut Ctx<'_>) {
        if self.state == State::Content {
            let carry = std::mem::take(&mut self.carry);
            self.emit(&carry, ctx);
        }
        let end = if complete && self.state == State::Broken {
            ObjectEnd::Complete
        } else {
            ObjectEnd::Truncated
        };
        self.end(end, ctx);
    }

    fn break_framing(&mut self, ctx: &mut Ctx<'_>) {
        ctx.stats().multipart_errors += 1;
        self.end(ObjectEnd::Truncated, ctx);
        self.state = State::Broken;
        self.carry.clear();
        self.line = Vec::new();
    }

    fn begin(&mut self, filename: Option<String>, content_type: Option<String>, ctx: &mut Ctx<'_>) {
        if self.open {
            return;
        }
        self.open = true;
        let mut meta = self.template.clone();
        if filename.is_some() {
            meta.filename = filename;
        }
        meta.content_type = content_type;
        meta.declared_size = None;
        ctx.out.object(self.dir, ObjectEvent::Begin(meta));
    }

    fn end(&mut self, end: ObjectEnd, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.open) {
            ctx.out.object(self.dir, ObjectEvent::End(end));
        }
    }

    /// Part content (or preamble) bytes: emitted only inside a part.
    fn emit(&mut self, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() {
            return;
        }
        match self.state {
            State::Content => ctx.out.object(self.dir, ObjectEvent::Data(bytes)),
            State::Broken => {
                self.begin(None, None, ctx);
                ctx.out.object(self.dir, ObjectEvent::Data(bytes));
            }
            _ => {}
        }
    }

    /// Search for the delimiter; returns the input after it (or empty).
    fn scan<'a>(&mut self, mut input: &'a [u8], ctx: &mut Ctx<'_>) -> &'a [u8] {
        // First: does the delimiter start inside the held-back tail?
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            for i in 0..carry.len() {
                let head = &carry[i..];
                if !self.delim.starts_with(head) {
                    continue;
                }
                let need_len = self.delim.len() - head.len();
                if input.len() >= need_len {
                    if input.starts_with(&self.delim[head.len()..]) {
                        self.emit(&carry[..i], ctx);
                        self.delimiter_found(ctx);
                        return &input[need_len..];
                    }
                } else if self.delim[head.len()..].starts_with(input) {
                    // Still a possible delimiter: keep holding it back.
                    self.emit(&carry[..i], ctx);
                    self.carry = [head, input].concat();
                    return &[];
                }
            }
            self.emit(&carry, ctx);
        }
        if let Some(p) = self.finder.find(input) {
            self.emit(&input[..p], ctx);
            self.delimiter_found(ctx);
            return &input[p + self.delim.len()..];
        }
        // Hold back the longest tail that is a proper prefix of the delimiter.
        let window = input.len().min(self.delim.len() - 1);
        let tail_start = input.len() - window;
        let mut keep = input.len();
        for p in memchr::memchr_iter(b'\r', &input[tail_start..]) {
            let cand = &input[tail_start + p..];
            if self.delim.starts_with(cand) {
                keep = tail_start + p;
                break;
            }
        }
        self.emit(&input[..keep], ctx);
        self.carry.extend_from_slice(&input[keep..]);
        input = &[];
        input
    }

    fn delimiter_found(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == State::Content {
            self.end(ObjectEnd::Complete, ctx);
        }
        self.state = State::DelimLine;
        self.line.clear();
    }

    fn delim_line<'a>(&mut self, input: &'a [u8], ctx: &mut Ctx<'_>) -> &'a [u8] {
        let (take, eol) = match memchr::memchr(b'\n', input) {
            Some(p) => (p + 1, true),
            None => (input.len(), false),
        };
        self.line.extend_from_slice(&input[..take]);
        if self.line.starts_with(b"--") {
            self.state = State::Epilogue;
            return &[];
        }
        if self.line.len() > MAX_DELIM_LINE {
            self.break_framing(ctx);
            return &input[take..];
        }
        if eol {
            let padding_ok = self.line[..self.line.len() - 1]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r'));
            if !padding_ok {
                self.break_framing(ctx);
                return &input[take..];
            }
            self.state = State::Headers;
            self.line.clear();
        }
        &input[take..]
    }

    fn headers<'a>(&mut self, input: &'a [u8], ctx: &mut Ctx<'_>) -> &'a [u8] {
        let old = self.line.len();
        let room = MAX_PART_HEADERS.saturating_sub(old);
        let take = input.len().min(room);
        self.line.extend_from_slice(&input[..take]);
        let end = if self.line.starts_with(b"\r\n") {
            Some(2)
        } else if self.line.starts_with(b"\n") {
            Some(1)
        } else {
            super::head::find_head_end(&self.line, old.saturating_sub(2))
        };
        let Some(end) = end else {
            if self.line.len() >= MAX_PART_HEADERS {
                self.break_framing(ctx);
                return &input[take..];
            }
            return &[];
        };
        let consumed = end.saturating_sub(old);
        let block = std::mem::take(&mut self.line);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let parsed = httparse::parse_headers(&block[..end], &mut headers);
        match parsed {
            Ok(httparse::Status::Complete((_, hs))) => {
                let filename =
                    header_value(hs, "content-disposition").and_then(|v| disposition_filename(&v));
                let content_type = header_value(hs, "content-type");
                ctx.stats().multipart_parts += 1;
                self.state = State::Content;
                self.begin(filename, content_type, ctx);
            }
            _ => self.break_framing(ctx),
        }
        &input[consumed..]
    }
}
