//! Objects: the units that app-layer parsers cut byte streams into (an HTTP
//! body, one multipart part, or a whole non-HTTP direction) and that
//! detectors and `fileinfo` events are made from.
//!
//! A parser reports each object as `Begin`, any number of `Data`/`Gap`, then
//! `End`, per direction; at most one object is open per direction at a time.

use eve::{Direction, HttpInfo, TlsInfo};
use std::fmt;

/// The application protocol a connection is parsed as, decided by content
/// on its first bytes (any port).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppProto {
    /// HTTP/1.x.
    Http,
    /// TLS.
    Tls,
    /// SSH.
    Ssh,
    /// Anything else: a raw byte stream.
    #[default]
    Raw,
}

impl AppProto {
    /// The name events carry in `app_proto`: `http`, `tls`, `ssh`, `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Tls => "tls",
            AppProto::Ssh => "ssh",
            AppProto::Raw => "raw",
        }
    }
}

impl fmt::Display for AppProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about an object when it begins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectMeta {
    /// Which way the object travels.
    pub direction: Direction,
    /// Application protocol that framed it.
    pub app_proto: AppProto,
    /// URL path or Content-Disposition filename.
    pub filename: Option<String>,
    /// Declared content type.
    pub content_type: Option<String>,
    /// Size the framing announced (Content-Length), before decoding.
    pub declared_size: Option<u64>,
    /// HTTP transaction metadata (request and, for responses, status).
    pub http: Option<HttpInfo>,
    /// TLS metadata, for a TLS direction's stream.
    pub tls: Option<TlsInfo>,
    /// The stream was picked up mid-connection (no handshake seen), so the
    /// object may start anywhere inside a file.
    pub midstream: bool,
    /// The HTTP transaction (request number in the connection, from 0) a
    /// request body belongs to, for pairing it with its [`Reply`].
    pub tx_id: Option<u64>,
    /// Who sent the object and when it began: set by the engine when the
    /// object begins (parsers leave it `None`).
    pub origin: Option<Origin>,
}

/// The sending host of an object and when it began, for detectors that
/// keep state per host across objects (known weights sent in many pieces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The address the object's bytes came from (the client for a request
    /// body, the server for a response body).
    pub sender: std::net::IpAddr,
    /// The address the object's bytes went to.
    pub receiver: std::net::IpAddr,
    /// Packet time the object began (µs since the epoch).
    pub begun_us: i64,
}

/// The final response to HTTP transaction `tx_id`: what a request body's
/// `fileinfo` takes from it (Suricata logs a file with its transaction, so
/// an upload's event carries the response status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request it answers.
    pub tx_id: u64,
    /// The response status.
    pub status: u16,
    /// The response's Content-Type without parameters.
    pub content_type: Option<String>,
}

/// How an object ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectEnd {
    /// The framing's end was reached (Content-Length, last chunk, FIN).
    Complete,
    /// Cut short: connection reset or timed out, framing broken, limit hit.
    Truncated,
}

/// One step of an object's life, as reported by an app-layer parser.
// `Begin` is large but happens once per object; boxing it would cost an
// allocation per object for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ObjectEvent<'a> {
    /// A new object starts in this direction.
    Begin(ObjectMeta),
    /// Decoded bytes of the open object, in order.
    Data(&'a [u8]),
    /// `n` bytes of the open object were lost (TCP gap).
    Gap(u64),
    /// The open object ends.
    End(ObjectEnd),
    /// A final HTTP response arrived (always reported on
    /// [`Direction::ToClient`]; no object need be open).
    Reply(Reply),
}

/// Consumer of objects (hashing, `fileinfo`, detectors).
pub trait ObjectSink {
    /// Receive one step of the object open in `dir`.
    fn object(&mut self, dir: Direction, event: ObjectEvent<'_>);
}

/// Collects objects whole, for tests of parsers.
#[derive(Debug, Default)]
pub struct CollectedObjects {
    /// Finished (and, at the end, still open) objects in order of beginning.
    pub objects: Vec<CollectedObject>,
    open: [Option<usize>; 2],
}

/// One object as collected by [`CollectedObjects`].
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedObject {
    /// Its metadata at `Begin`.
    pub meta: ObjectMeta,
    /// Decoded bytes.
    pub data: Vec<u8>,
    /// Bytes lost in gaps.
    pub gap_bytes: u64,
    /// How it ended (`None` if still open).
    pub end: Option<ObjectEnd>,
}

impl ObjectSink for CollectedObjects {
    fn object(&mut self, dir: Direction, event: ObjectEvent<'_>) {
        let s = dir.index();
        match event {
            ObjectEvent::Begin(meta) => {
                self.objects.push(CollectedObject {
                    meta,
                    data: Vec::new(),
                    gap_bytes: 0,
                    end: None,
                });
                self.open[s] = Some(self.objects.len() - 1);
            }
            ObjectEvent::Data(b) => {
                if let Some(i) = self.open[s] {
                    self.objects[i].data.extend_from_slice(b);
                }
            }
            ObjectEvent::Gap(n) => {
                if let Some(i) = self.open[s] {
                    self.objects[i].gap_bytes += n;
                }
            }
            ObjectEvent::End(end) => {
                if let Some(i) = self.open[s].take() {
                    self.objects[i].end = Some(end);
                }
            }
            ObjectEvent::Reply(r) => {
                for o in &mut self.objects {
                    if o.meta.tx_id == Some(r.tx_id)
                        && let Some(http) = o.meta.http.as_mut()
                    {
                        http.status = Some(r.status);
                        http.http_content_type.clone_from(&r.content_type);
                    }
                }
            }
        }
    }
}
