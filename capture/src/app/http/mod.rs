//! HTTP/1.0 and 1.1: requests and responses on both directions, keep-alive
//! and pipelining (responses paired with requests first-in first-out), and
//! every body as an object.
//!
//! Each direction is a small state machine: collect a header block (bounded
//! by `max_header_bytes`), parse it with `httparse`, then frame the body
//! (Content-Length, chunked, or until close) and pass it through
//! Content-Encoding decoding and multipart splitting. Whatever cannot be
//! parsed makes that direction a raw stream from there on, and is counted.

mod body;
mod chunked;
mod encoding;
pub(crate) mod head;
mod multipart;

use super::probe;
use super::raw::RawStream;
use super::{Ctx, Handler};
use crate::object::{AppProto, ObjectEvent, ObjectMeta, Reply};
use body::{Body, Step};
use eve::{Direction, HttpInfo};
use head::{Encoding, Framing, Head};
use std::collections::VecDeque;

/// Most requests waiting for their responses (pipelining depth).
const MAX_PENDING: usize = 64;

/// What a response needs to know about its request.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    url: String,
    host: Option<String>,
    user_agent: Option<String>,
    expect_continue: bool,
    /// Its transaction number in the connection (from 0).
    tx_id: u64,
}

/// What a parsed header block means for the other direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing.
    None,
    /// Both directions become an opaque tunnel.
    Tunnel,
    /// `100 Continue`: the awaited request body follows.
    Continue,
    /// A final response to a request that sent `Expect: 100-continue`: its
    /// body may never be sent.
    FinalAfterExpect,
}

/// Which messages a direction carries, decided by its first header block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Requests,
    Responses,
}

#[derive(Debug)]
enum State {
    /// Waiting for (or inside) a header block.
    Head,
    /// Inside a body.
    Body(Box<Body>),
    /// No longer parseable as HTTP (or tunnelled): one raw object.
    Raw(RawStream),
}

/// One direction of an HTTP connection.
#[derive(Debug)]
struct DirParser {
    dir: Direction,
    role: Option<Role>,
    state: State,
    /// Header bytes collected so far.
    head: Vec<u8>,
    /// A request body that waits for `100 Continue` has not started yet.
    awaiting_continue: bool,
    /// The final response came before that body: the next bytes are looked
    /// at (bounded) to tell the body from the next request.
    peek: Option<Vec<u8>>,
    /// Requests parsed so far (the next one's transaction number).
    requests: u64,
}

/// Both directions of an HTTP connection.
#[derive(Debug)]
pub(crate) struct HttpConn {
    dirs: [DirParser; 2],
    pending: VecDeque<Request>,
}

impl HttpConn {
    /// A new HTTP connection.
    pub(crate) fn new() -> Self {
        let dir = |dir| DirParser {
            dir,
            role: None,
            state: State::Head,
            head: Vec::new(),
            awaiting_continue: false,
            peek: None,
            requests: 0,
        };
        HttpConn {
            dirs: [dir(Direction::ToServer), dir(Direction::ToClient)],
            pending: VecDeque::new(),
        }
    }

    /// Bytes held while deciding whether a 100-continue body was skipped are
    /// body bytes after all (a gap or the end came first).
    fn flush_peek(&mut self, dir: Direction, ctx: &mut Ctx<'_>) {
        if let Some(peek) = self.dirs[dir.index()].peek.take() {
            self.data(dir, &peek, ctx);
        }
    }

    /// Turn both directions into raw streams (CONNECT, 101 Switching Protocols).
    fn tunnel(&mut self, ctx: &mut Ctx<'_>) {
        for d in &mut self.dirs {
            if matches!(d.state, State::Head) {
                ctx.stats().http_tunnels += 1;
                let head = std::mem::take(&mut d.head);
                d.become_raw(&head, ctx);
            }
        }
    }
}

impl Handler for HttpConn {
    fn data(&mut self, dir: Direction, mut input: &[u8], ctx: &mut Ctx<'_>) {
        while !input.is_empty() {
            let d = &mut self.dirs[dir.index()];
            match &mut d.state {
                State::Raw(r) => {
                    r.data(input, ctx);
                    return;
                }
                State::Body(_) if d.peek.is_some() => {
                    // Body or next request? Decide on the request line.
                    let mut peek = d.peek.take().unwrap_or_default();
                    peek.extend_from_slice(input);
                    match probe::starts_request(&peek) {
                        None if peek.len() < probe::DETECT_MAX => d.peek = Some(peek),
                        Some(true) => {
                            // The client skipped the body (RFC 9110 10.1.1).
                            d.state = State::Head;
                            self.data(dir, &peek, ctx);
                        }
                        _ => self.data(dir, &peek, ctx),
                    }
                    return;
                }
                State::Body(b) => {
                    d.awaiting_continue = false;
                    match b.feed(input, ctx) {
                        Step::More => return,
                        Step::Done(n) => {
                            d.state = State::Head;
                            input = &input[n..];
                        }
                        Step::Broken(n) => {
                            d.become_raw(&input[n..], ctx);
                            return;
                        }
                    }
                }
                State::Head => {
                    let (rest, outcome) = d.head_data(input, &mut self.pending, ctx);
                    input = rest;
                    let other = &mut self.dirs[1 - dir.index()];
                    match outcome {
                        Outcome::None => {}
                        Outcome::Tunnel => self.tunnel(ctx),
                        Outcome::Continue => other.awaiting_continue = false,
                        Outcome::FinalAfterExpect => {
                            if std::mem::take(&mut other.awaiting_continue)
                                && matches!(other.state, State::Body(_))
                            {
                                other.peek = Some(Vec::new());
                            }
                        }
                    }
                }
            }
        }
    }

    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        self.flush_peek(dir, ctx);
        let d = &mut self.dirs[dir.index()];
        match &mut d.state {
            State::Raw(r) => r.gap(len, ctx),
            State::Body(b) => {
                if !b.gap(len, ctx) {
                    ctx.stats().http_gap_in_framing += 1;
                    d.state = State::Raw(RawStream::new(d.dir, AppProto::Raw));
                } else if b.is_finished() {
                    d.state = State::Head;
                }
            }
            State::Head => {
                ctx.stats().http_gap_in_framing += 1;
                let head = std::mem::take(&mut d.head);
                d.become_raw(&head, ctx);
                if let State::Raw(r) = &mut d.state {
                    r.gap(len, ctx);
                }
            }
        }
    }

    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        self.flush_peek(dir, ctx);
        let d = &mut self.dirs[dir.index()];
        match &mut d.state {
            State::Raw(r) => r.close(clean, ctx),
            State::Body(b) => b.close(clean, ctx),
            State::Head => {
                if !d.head.is_empty() {
                    // An unfinished header block: deliver it as a raw remainder.
                    let head = std::mem::take(&mut d.head);
                    d.become_raw(&head, ctx);
                    if let State::Raw(r) = &mut d.state {
                        r.close(false, ctx);
                    }
                }
            }
        }
        // Whatever arrives after the end is ignored.
        let mut done = RawStream::new(d.dir, AppProto::Raw);
        done.close(clean, ctx);
        d.state = State::Raw(done);
    }
}

impl DirParser {
    /// From here on this direction is a raw stream starting with `first`.
    fn become_raw(&mut self, first: &[u8], ctx: &mut Ctx<'_>) {
        let mut raw = RawStream::new(self.dir, AppProto::Raw);
        raw.data(first, ctx);
        self.state = State::Raw(raw);
        self.head = Vec::new();
    }

    /// Collect header bytes; parse a complete block and start its body.
    /// Returns the unconsumed input and whether the connection became a tunnel.
    fn head_data<'a>(
        &mut self,
        mut input: &'a [u8],
        pending: &mut VecDeque<Request>,
        ctx: &mut Ctx<'_>,
    ) -> (&'a [u8], Outcome) {
        if self.head.is_empty() {
            // Blank lines between messages are tolerated (RFC 9112 2.2).
            let skip = input
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            input = &input[skip..];
            if input.is_empty() {
                return (input, Outcome::None);
            }
        }
        let max = ctx.limits.max_header_bytes;
        let old = self.head.len();
        let take = input.len().min(max.saturating_sub(old));
        self.head.extend_from_slice(&input[..take]);
        let Some(end) = head::find_head_end(&self.head, old.saturating_sub(2)) else {
            if self.head.len() >= max {
                ctx.stats().http_header_too_large += 1;
                let head = std::mem::take(&mut self.head);
                self.become_raw(&head, ctx);
                return (&input[take..], Outcome::None);
            }
            return (&[], Outcome::None);
        };
        let rest = &input[end.saturating_sub(old)..];
        let block = std::mem::take(&mut self.head);
        let block = &block[..end];
        let parsed = head::parse(block);
        let role = if block.starts_with(b"HTTP/") {
            Role::Responses
        } else {
            Role::Requests
        };
        let head = match parsed {
            Ok(h) if self.role.is_none_or(|r| r == role) => h,
            other => {
                if let Err(e) = other {
                    tracing::debug!(error = %e, dir = ?self.dir, "HTTP header block did not parse");
                }
                ctx.stats().http_parse_errors += 1;
                self.become_raw(block, ctx);
                return (rest, Outcome::None);
            }
        };
        self.role = Some(role);
        let outcome = match role {
            Role::Requests => self.request(head, pending, ctx),
            Role::Responses => self.response(head, pending, ctx),
        };
        (rest, outcome)
    }

    fn request(
        &mut self,
        head: Head,
        pending: &mut VecDeque<Request>,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        ctx.stats().http_requests += 1;
        let req = Request {
            method: head.method.clone().unwrap_or_default(),
            url: head.target.clone().unwrap_or_default(),
            host: head.host.clone(),
            user_agent: head.user_agent.clone(),
            expect_continue: head.expect_continue,
            tx_id: self.requests,
        };
        self.requests += 1;
        if ctx.meta.server_name.is_none() {
            ctx.meta.server_name.clone_from(&req.host);
        }
        if pending.len() >= MAX_PENDING {
            ctx.stats().http_pipeline_overflow += 1;
            pending.pop_front();
        }
        pending.push_back(req.clone());
        if req.method.eq_ignore_ascii_case("CONNECT") {
            // What follows the request is tunnelled; the response is still parsed.
            ctx.stats().http_tunnels += 1;
            self.become_raw(&[], ctx);
            return Outcome::None;
        }
        let framing = match head.framing {
            Framing::Chunked => body::Framing::Chunked(Default::default()),
            Framing::Length(0) | Framing::Unframed => return Outcome::None,
            Framing::Length(n) => body::Framing::Length(n),
            Framing::BadLength | Framing::OtherTransferEncoding => {
                ctx.stats().http_bad_length += 1;
                self.become_raw(&[], ctx);
                return Outcome::None;
            }
        };
        self.awaiting_continue = req.expect_continue;
        let info = HttpInfo {
            hostname: req.host.clone(),
            url: Some(req.url.clone()),
            http_method: Some(req.method.clone()),
            status: None,
            // Suricata's is the response's: filled in by its `Reply`.
            http_content_type: None,
            http_user_agent: req.user_agent.clone(),
            protocol: Some(protocol(head.minor)),
        };
        self.start_body(framing, &head, &req, info, ctx);
        Outcome::None
    }

    fn response(
        &mut self,
        head: Head,
        pending: &mut VecDeque<Request>,
        ctx: &mut Ctx<'_>,
    ) -> Outcome {
        ctx.stats().http_responses += 1;
        let status = head.status.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // Interim response (100 Continue, 103 Early Hints): no body, and
            // the request still waits for its final response.
            return if status == 100 {
                Outcome::Continue
            } else {
                Outcome::None
            };
        }
        let req = pending.pop_front();
        if req.is_none() {
            ctx.stats().http_unmatched_responses += 1;
        }
        if let Some(r) = &req {
            ctx.out.object(
                Direction::ToClient,
                ObjectEvent::Reply(Reply {
                    tx_id: r.tx_id,
                    status,
                    content_type: head.content_type.as_deref().map(media_type),
                }),
            );
        }
        let method = req.as_ref().map(|r| r.method.as_str()).unwrap_or("");
        if status == 101 || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status))
        {
            return Outcome::Tunnel;
        }
        let outcome = if req.as_ref().is_some_and(|r| r.expect_continue) {
            Outcome::FinalAfterExpect
        } else {
            Outcome::None
        };
        if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
            return outcome;
        }
        let framing = match head.framing {
            Framing::Chunked => body::Framing::Chunked(Default::default()),
            Framing::Length(0) => return outcome,
            Framing::Length(n) => body::Framing::Length(n),
            Framing::Unframed | Framing::OtherTransferEncoding => body::Framing::UntilClose,
            Framing::BadLength => {
                ctx.stats().http_bad_length += 1;
                self.become_raw(&[], ctx);
                return outcome;
            }
        };
        let req = req.unwrap_or(Request {
            method: String::new(),
            url: String::new(),
            host: None,
            user_agent: None,
            expect_continue: false,
            tx_id: 0,
        });
        let info = HttpInfo {
            hostname: req.host.clone(),
            url: (!req.url.is_empty()).then(|| req.url.clone()),
            http_method: (!req.method.is_empty()).then(|| req.method.clone()),
            status: head.status,
            http_content_type: head.content_type.as_deref().map(media_type),
            http_user_agent: req.user_agent.clone(),
            protocol: Some(protocol(head.minor)),
        };
        self.start_body(framing, &head, &req, info, ctx);
        outcome
    }

    fn start_body(
        &mut self,
        framing: body::Framing,
        head: &Head,
        req: &Request,
        info: HttpInfo,
        ctx: &mut Ctx<'_>,
    ) {
        let meta = ObjectMeta {
            direction: self.dir,
            app_proto: AppProto::Http,
            filename: head.filename.clone().or_else(|| head::url_path(&req.url)),
            content_type: head.content_type.clone(),
            declared_size: head.content_length,
            http: Some(info),
            tls: None,
            // The body starts right after its parsed header: never mid-object.
            midstream: false,
            tx_id: (self.role == Some(Role::Requests)).then_some(req.tx_id),
            origin: None,
        };
        let coding = match head.encoding {
            Encoding::Identity => None,
            Encoding::Decode(c) => Some(c),
            Encoding::Unsupported => {
                ctx.stats().http_unsupported_encoding += 1;
                None
            }
        };
        let multipart = match (self.role, &head.content_type) {
            (Some(Role::Requests), Some(ct)) => multipart::form_data_boundary(ct)
                .map(|b| multipart::Multipart::new(self.dir, &b, meta.clone())),
            _ => None,
        };
        self.state = State::Body(Box::new(Body::new(framing, coding, multipart, meta)));
    }
}

/// A Content-Type without its parameters, as Suricata writes
/// `http.http_content_type` (everything before the first `;`).
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn protocol(minor: u8) -> String {
    format!("HTTP/1.{minor}")
}
