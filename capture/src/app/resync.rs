//! HTTP on a connection picked up mid-stream: each direction is a raw
//! stream (its bytes belong to a message whose start was not captured) until
//! an HTTP message starts in it; from there the direction is parsed as HTTP.
//!
//! A message start is a request line with a well-known method or a status
//! line (`HTTP/1.`) anywhere in the stream — a body's last byte is directly
//! followed by the next message, not by a line break — and it counts only
//! when `httparse` accepts the whole header block that follows (bounded by
//! [`MAX_HEAD`]); a false start is returned to the raw object and the search
//! goes on one byte later. The raw part before a start is its own object
//! (mid-stream, ended `TRUNCATED`). A gap or the end of a direction before it
//! synchronised leaves that direction raw until the next start.

use super::http::HttpConn;
use super::probe::KNOWN_METHODS;
use super::raw::RawStream;
use super::{Ctx, Handler};
use crate::object::AppProto;
use aho_corasick::AhoCorasick;
use eve::Direction;
use std::sync::LazyLock;

/// Longest start pattern minus one: bytes held back at a chunk's end in case
/// a start straddles two chunks.
const HOLD: usize = 8;

/// Most header bytes collected to confirm a start.
const MAX_HEAD: usize = 16 * 1024;

/// The starts searched for: a status line and the request methods trusted
/// by detection.
static FINDER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    let starts = std::iter::once(&b"HTTP/1."[..]).chain(KNOWN_METHODS.iter().copied());
    AhoCorasick::new(starts).ok()
});

fn find_start(bytes: &[u8]) -> Option<usize> {
    FINDER.as_ref()?.find(bytes).map(|m| m.start())
}

/// Whether `buf` (starting at a candidate) holds a whole header block.
enum Verdict {
    Complete,
    NeedMore,
    Invalid,
}

fn verify(buf: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let parsed = if buf.starts_with(b"HTTP/") {
        httparse::Response::new(&mut headers)
            .parse(buf)
            .map(|s| s.is_complete())
    } else {
        httparse::Request::new(&mut headers)
            .parse(buf)
            .map(|s| s.is_complete())
    };
    match parsed {
        Ok(true) => Verdict::Complete,
        Ok(false) if buf.len() < MAX_HEAD => Verdict::NeedMore,
        _ => Verdict::Invalid,
    }
}

#[derive(Debug)]
enum Scan {
    /// Raw; up to `HOLD` trailing bytes not yet given to the raw object.
    Raw(Vec<u8>),
    /// Bytes from a possible message start, until its header block is whole.
    Candidate(Vec<u8>),
    /// Parsed as HTTP from here on.
    Synced,
}

/// Both directions of a mid-stream connection.
#[derive(Debug)]
pub(crate) struct ResyncConn {
    raw: [RawStream; 2],
    scan: [Scan; 2],
    http: HttpConn,
}

impl ResyncConn {
    pub(crate) fn new() -> Self {
        ResyncConn {
            raw: [
                RawStream::new(Direction::ToServer, AppProto::Raw),
                RawStream::new(Direction::ToClient, AppProto::Raw),
            ],
            scan: [Scan::Raw(Vec::new()), Scan::Raw(Vec::new())],
            http: HttpConn::new(),
        }
    }

    /// Raw bytes of `dir`, after any bytes held back from the last chunk.
    fn raw_data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        let held = match &mut self.scan[i] {
            Scan::Raw(h) => std::mem::take(h),
            _ => Vec::new(),
        };
        if !held.is_empty() {
            // A start beginning in the held bytes.
            let mut probe = held.clone();
            probe.extend_from_slice(&bytes[..bytes.len().min(HOLD)]);
            match find_start(&probe) {
                Some(p) if p < held.len() => {
                    self.raw[i].data(&held[..p], ctx);
                    let mut cand = held[p..].to_vec();
                    cand.extend_from_slice(bytes);
                    return self.candidate(dir, cand, ctx);
                }
                _ => self.raw[i].data(&held, ctx),
            }
        }
        self.scan_slice(dir, bytes, ctx);
    }

    /// Search `bytes` for a start (a loop, not recursion: a stream may hold
    /// many false starts); what precedes it is raw; a partial pattern at the
    /// end is held back.
    fn scan_slice(&mut self, dir: Direction, mut bytes: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        loop {
            let Some(p) = find_start(bytes) else {
                let keep = HOLD.min(bytes.len());
                let (give, hold) = bytes.split_at(bytes.len() - keep);
                self.raw[i].data(give, ctx);
                self.scan[i] = Scan::Raw(hold.to_vec());
                return;
            };
            self.raw[i].data(&bytes[..p], ctx);
            let rest = &bytes[p..];
            match verify(rest) {
                Verdict::Complete => return self.sync(dir, rest, ctx),
                Verdict::NeedMore => {
                    self.scan[i] = Scan::Candidate(rest.to_vec());
                    return;
                }
                Verdict::Invalid => {
                    // Not a start: its first byte is raw, search on after it.
                    self.raw[i].data(&rest[..1], ctx);
                    bytes = &rest[1..];
                }
            }
        }
    }

    /// `buf` starts with a possible message start whose header block was
    /// incomplete so far.
    fn candidate(&mut self, dir: Direction, buf: Vec<u8>, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        match verify(&buf) {
            Verdict::NeedMore => self.scan[i] = Scan::Candidate(buf),
            Verdict::Complete => self.sync(dir, &buf, ctx),
            Verdict::Invalid => {
                self.scan[i] = Scan::Raw(Vec::new());
                self.raw[i].data(&buf[..1], ctx);
                self.scan_slice(dir, &buf[1..], ctx);
            }
        }
    }

    /// A message starts at `from`: the raw part was the tail of a message
    /// begun before the capture and ends here, incomplete; HTTP from here.
    fn sync(&mut self, dir: Direction, from: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        self.raw[i].close(false, ctx);
        self.scan[i] = Scan::Synced;
        ctx.meta.app_proto = Some(AppProto::Http);
        ctx.stats().http_resyncs += 1;
        self.http.data(dir, from, ctx);
    }

    /// Give held or candidate bytes to the raw object (a gap or the end).
    fn flush(&mut self, dir: Direction, ctx: &mut Ctx<'_>) {
        let i = dir.index();
        if let Scan::Raw(b) | Scan::Candidate(b) = &mut self.scan[i] {
            let b = std::mem::take(b);
            self.scan[i] = Scan::Raw(Vec::new());
            self.raw[i].data(&b, ctx);
        }
    }
}

impl Handler for ResyncConn {
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let i = dir.index();
        match &mut self.scan[i] {
            Scan::Synced => self.http.data(dir, bytes, ctx),
            Scan::Candidate(buf) => {
                let mut buf = std::mem::take(buf);
                buf.extend_from_slice(bytes);
                self.candidate(dir, buf, ctx);
            }
            Scan::Raw(_) => self.raw_data(dir, bytes, ctx),
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        match self.scan[dir.index()] {
            Scan::Synced => self.http.gap(dir, len, ctx),
            _ => {
                self.flush(dir, ctx);
                self.raw[dir.index()].gap(len, ctx);
            }
        }
    }

    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        match self.scan[dir.index()] {
            Scan::Synced => self.http.close(dir, clean, ctx),
            _ => {
                self.flush(dir, ctx);
                self.raw[dir.index()].close(clean, ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::app::{AppConnection, AppLimits};
    use crate::object::{CollectedObjects, ObjectEnd};
    use eve::Direction;

    /// Feed `chunks` to the server→client direction of a connection picked
    /// up mid-stream, then close it.
    fn run(chunks: &[&[u8]]) -> CollectedObjects {
        let mut c = AppConnection::new(&AppLimits::default(), true);
        let mut out = CollectedObjects::default();
        for ch in chunks {
            c.data(Direction::ToClient, ch, &mut out);
        }
        c.close(Direction::ToClient, true, &mut out);
        out
    }

    #[test]
    fn false_starts_stay_raw_and_a_split_start_is_found() {
        let tail = b"\x00\x01binary GET notreally\r\n HTTP/1.x nope \x02";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        // The status line is cut across chunks at every position.
        for cut in 0..resp.len() {
            let mut first = tail.to_vec();
            first.extend_from_slice(&resp[..cut]);
            let out = run(&[&first, &resp[cut..]]);
            let objs = &out.objects;
            assert_eq!(objs.len(), 2, "cut {cut}: {objs:?}");
            assert_eq!(objs[0].data, tail, "cut {cut}");
            assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
            assert!(objs[0].meta.midstream);
            assert_eq!(objs[1].data, b"abc", "cut {cut}");
            assert_eq!(objs[1].end, Some(ObjectEnd::Complete));
        }
    }

    #[test]
    fn without_a_start_the_direction_is_one_raw_object() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(1448).collect();
        let out = run(&chunks);
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.objects[0].data, data);
        assert_eq!(out.objects[0].end, Some(ObjectEnd::Complete));
    }
}
