//! Application-layer parsing: turns one TCP connection's two in-order byte
//! streams into objects (HTTP bodies, multipart parts, or whole raw
//! directions) and flow metadata (TLS SNI/JA4, SSH banners).
//!
//! The engine owns one [`AppConnection`] per TCP flow and feeds it
//! reassembled bytes; the connection reports objects to an [`ObjectSink`].
//! The protocol is decided by content on the first bytes of either direction
//! (any port): HTTP/1.x, TLS, SSH, else raw. A connection picked up
//! mid-stream that is not TLS or SSH is raw per direction until an HTTP
//! message starts in it (`resync`).

mod counters;
mod http;
mod probe;
mod raw;
mod resync;
mod ssh;
mod tls;

pub use counters::AppStats;

use crate::object::{AppProto, ObjectSink};
use eve::{Direction, SshInfo, TlsInfo};
use probe::{DETECT_MAX, detect};
use raw::RawStream;

/// Limits that bound app-layer memory and work.
#[derive(Clone, Debug)]
pub struct AppLimits {
    /// Longest HTTP header block accepted before the stream is treated as raw.
    pub max_header_bytes: usize,
    /// Largest decompressed size of one Content-Encoded body (bomb guard).
    pub max_decoded_bytes: u64,
    /// Decoding of a Content-Encoded body stops once it has given more than
    /// [`INFLATE_RATIO_FLOOR`] bytes and more than this many bytes per
    /// compressed byte (bomb guard; 0 = no ratio limit).
    pub max_inflate_ratio: u64,
}

/// Decoded bytes of a body before its inflate ratio is judged (libhtp's
/// compression-bomb limit): small bodies of very compressible text pass.
pub const INFLATE_RATIO_FLOOR: u64 = 1 << 20;

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            max_header_bytes: 64 * 1024,
            max_decoded_bytes: 64 << 30,
            max_inflate_ratio: 100,
        }
    }
}

/// What the app layer learned about a connection, for `flow` events and
/// flow detectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppMeta {
    /// The protocol, once decided.
    pub app_proto: Option<AppProto>,
    /// TLS handshake metadata.
    pub tls: Option<TlsInfo>,
    /// SSH banners.
    pub ssh: Option<SshInfo>,
    /// The destination's name: TLS SNI or HTTP Host.
    pub server_name: Option<String>,
    /// Estimated plaintext bytes client → server (TLS/SSH).
    pub plaintext_toserver: u64,
    /// Estimated plaintext bytes server → client (TLS/SSH).
    pub plaintext_toclient: u64,
    /// Whether the payload is encrypted.
    pub encrypted: bool,
}

/// Everything a protocol handler may touch besides its own state.
pub(crate) struct Ctx<'a> {
    /// Where objects go.
    pub(crate) out: &'a mut dyn ObjectSink,
    /// Counters, allocated on the first count (most connections have none).
    pub(crate) counters: &'a mut Option<Box<AppStats>>,
    /// Connection metadata being learned.
    pub(crate) meta: &'a mut AppMeta,
    /// Limits.
    pub(crate) limits: &'a AppLimits,
    /// The connection was picked up mid-stream.
    pub(crate) midstream: bool,
}

impl Ctx<'_> {
    /// The counters, to increment.
    pub(crate) fn stats(&mut self) -> &mut AppStats {
        self.counters.get_or_insert_with(Box::default)
    }
}

/// A protocol's handling of a connection's two directions.
pub(crate) trait Handler: std::fmt::Debug + Send {
    /// In-order bytes of `dir`.
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>);
    /// `len` bytes of `dir` lost.
    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>);
    /// `dir` ended.
    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>);
}

/// Both directions as raw streams.
#[derive(Debug)]
struct RawConn([RawStream; 2]);

impl RawConn {
    fn new(app_proto: AppProto) -> Self {
        RawConn([
            RawStream::new(Direction::ToServer, app_proto),
            RawStream::new(Direction::ToClient, app_proto),
        ])
    }
}

impl Handler for RawConn {
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        self.0[dir.index()].data(bytes, ctx);
    }
    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        self.0[dir.index()].gap(len, ctx);
    }
    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        self.0[dir.index()].close(clean, ctx);
    }
}

#[derive(Debug)]
enum State {
    /// Protocol not known yet: each direction's first bytes (bounded by
    /// `DETECT_MAX`) and whether (and how) it already closed.
    Undecided {
        prefix: [Vec<u8>; 2],
        closed: [Option<bool>; 2],
    },
    /// The protocol's handler.
    Decided(Box<dyn Handler>),
}

impl State {
    fn handler(&mut self) -> Option<&mut dyn Handler> {
        match self {
            State::Undecided { .. } => None,
            State::Decided(h) => Some(h.as_mut()),
        }
    }
}

/// One TCP connection's app-layer state.
#[derive(Debug)]
pub struct AppConnection {
    state: State,
    meta: AppMeta,
    counters: Option<Box<AppStats>>,
    limits: AppLimits,
    midstream: bool,
}

impl AppConnection {
    /// A new connection; `midstream` when its handshake was not seen.
    pub fn new(limits: &AppLimits, midstream: bool) -> Self {
        AppConnection {
            state: State::Undecided {
                prefix: [Vec::new(), Vec::new()],
                closed: [None, None],
            },
            meta: AppMeta::default(),
            counters: None,
            limits: limits.clone(),
            midstream,
        }
    }

    /// In-order bytes of one direction.
    pub fn data(&mut self, dir: Direction, bytes: &[u8], out: &mut dyn ObjectSink) {
        if bytes.is_empty() {
            return;
        }
        let mut rest = bytes;
        if let State::Undecided { prefix, .. } = &mut self.state {
            let p = &mut prefix[dir.index()];
            let take = bytes.len().min(DETECT_MAX.saturating_sub(p.len()));
            p.extend_from_slice(&bytes[..take]);
            let Some(proto) = detect(p) else {
                return;
            };
            rest = &bytes[take..];
            self.decide(proto, out);
        }
        if !rest.is_empty() {
            self.dispatch(out, |h, ctx| h.data(dir, rest, ctx));
        }
    }

    /// `len` bytes of one direction were lost.
    pub fn gap(&mut self, dir: Direction, len: u64, out: &mut dyn ObjectSink) {
        if matches!(self.state, State::Undecided { .. }) {
            self.decide(AppProto::Raw, out);
        }
        self.dispatch(out, |h, ctx| h.gap(dir, len, ctx));
    }

    /// One direction finished: `clean` when it ended with a FIN, not a reset,
    /// timeout or shutdown.
    pub fn close(&mut self, dir: Direction, clean: bool, out: &mut dyn ObjectSink) {
        if let State::Undecided { prefix, closed } = &mut self.state {
            if prefix[dir.index()].is_empty() {
                closed[dir.index()] = Some(clean);
                return;
            }
            // Too short to tell: whatever it was, it is raw.
            self.decide(AppProto::Raw, out);
        }
        self.dispatch(out, |h, ctx| h.close(dir, clean, ctx));
    }

    /// What has been learned so far.
    pub fn meta(&self) -> &AppMeta {
        &self.meta
    }

    /// The connection ended: its TLS and SSH metadata, moved out for the
    /// flow's last event (the connection is dropped next).
    pub fn take_handshakes(&mut self) -> (Option<TlsInfo>, Option<SshInfo>) {
        (self.meta.tls.take(), self.meta.ssh.take())
    }

    /// Counters of this connection, including one for its protocol (sum
    /// them across connections with [`AppStats::merge`], e.g. when the flow
    /// ends).
    pub fn stats(&self) -> AppStats {
        let mut s = self.counters.as_deref().cloned().unwrap_or_default();
        match self.meta.app_proto {
            Some(AppProto::Http) => s.http += 1,
            Some(AppProto::Tls) => s.tls += 1,
            Some(AppProto::Ssh) => s.ssh += 1,
            Some(AppProto::Raw) => s.raw += 1,
            None => {}
        }
        s
    }

    fn dispatch(
        &mut self,
        out: &mut dyn ObjectSink,
        f: impl FnOnce(&mut dyn Handler, &mut Ctx<'_>),
    ) {
        let mut ctx = Ctx {
            out,
            counters: &mut self.counters,
            meta: &mut self.meta,
            limits: &self.limits,
            midstream: self.midstream,
        };
        if let Some(h) = self.state.handler() {
            f(h, &mut ctx);
        }
    }

    /// Fix the protocol and replay what was buffered while deciding.
    fn decide(&mut self, proto: AppProto, out: &mut dyn ObjectSink) {
        self.meta.app_proto = Some(proto);
        self.meta.encrypted = matches!(proto, AppProto::Tls | AppProto::Ssh);
        let handler: Box<dyn Handler> = match proto {
            // Picked up mid-stream: the first bytes may be the middle of a
            // message; find the next message start in each direction.
            AppProto::Http | AppProto::Raw if self.midstream => Box::new(resync::ResyncConn::new()),
            AppProto::Http => Box::new(http::HttpConn::new()),
            AppProto::Tls => Box::<tls::TlsConn>::default(),
            AppProto::Ssh => Box::<ssh::SshConn>::default(),
            AppProto::Raw => Box::new(RawConn::new(AppProto::Raw)),
        };
        let State::Undecided { prefix, closed } =
            std::mem::replace(&mut self.state, State::Decided(handler))
        else {
            return;
        };
        // Requests first, so responses find them in the pipelining queue.
        for dir in Direction::BOTH {
            let bytes = &prefix[dir.index()];
            if !bytes.is_empty() {
                self.dispatch(out, |h, ctx| h.data(dir, bytes, ctx));
            }
            if let Some(clean) = closed[dir.index()] {
                self.dispatch(out, |h, ctx| h.close(dir, clean, ctx));
            }
        }
    }
}
