//! Application-layer parsing: turns one TCP connection's two in-order byte
//! streams into objects (HTTP bodies, multipart parts, or whole raw
//! directions) and flow metadata (TLS SNI/JA4, SSH banners).
//!
//! The engine owns one [`AppConnection`] per TCP flow and feeds it
//! reassembled bytes; the connection reports objects to an [`ObjectSink`].
//! (Skeleton: every stream is treated as raw until the protocol parsers land.)

use crate::object::{ObjectEnd, ObjectEvent, ObjectMeta, ObjectSink};
use eve::{Direction, SshInfo, TlsInfo};

/// Limits that bound app-layer memory and work.
#[derive(Clone, Debug)]
pub struct AppLimits {
    /// Longest HTTP header block accepted before the stream is treated as raw.
    pub max_header_bytes: usize,
    /// Largest decompressed size of one Content-Encoded body (bomb guard).
    pub max_decoded_bytes: u64,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            max_header_bytes: 64 * 1024,
            max_decoded_bytes: 64 << 30,
        }
    }
}

/// What the app layer learned about a connection, for `flow` events and
/// flow detectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppMeta {
    /// `http`, `tls`, `ssh` or `raw`, once decided.
    pub app_proto: Option<&'static str>,
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

/// One TCP connection's app-layer state.
#[derive(Debug)]
pub struct AppConnection {
    meta: AppMeta,
    midstream: bool,
    open: [bool; 2],
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl AppConnection {
    /// A new connection; `midstream` when its handshake was not seen.
    pub fn new(_limits: &AppLimits, midstream: bool) -> Self {
        AppConnection {
            meta: AppMeta::default(),
            midstream,
            open: [false; 2],
        }
    }

    /// In-order bytes of one direction.
    pub fn data(&mut self, dir: Direction, bytes: &[u8], out: &mut dyn ObjectSink) {
        if bytes.is_empty() {
            return;
        }
        self.ensure_open(dir, out);
        out.object(dir, ObjectEvent::Data(bytes));
    }

    /// `len` bytes of one direction were lost.
    pub fn gap(&mut self, dir: Direction, len: u64, out: &mut dyn ObjectSink) {
        self.ensure_open(dir, out);
        out.object(dir, ObjectEvent::Gap(len));
    }

    /// One direction finished: `clean` when it ended with a FIN, not a reset,
    /// timeout or shutdown.
    pub fn close(&mut self, dir: Direction, clean: bool, out: &mut dyn ObjectSink) {
        if std::mem::take(&mut self.open[slot(dir)]) {
            let end = if clean {
                ObjectEnd::Complete
            } else {
                ObjectEnd::Truncated
            };
            out.object(dir, ObjectEvent::End(end));
        }
    }

    /// What has been learned so far.
    pub fn meta(&self) -> &AppMeta {
        &self.meta
    }

    fn ensure_open(&mut self, dir: Direction, out: &mut dyn ObjectSink) {
        if !self.open[slot(dir)] {
            self.open[slot(dir)] = true;
            self.meta.app_proto.get_or_insert("raw");
            out.object(
                dir,
                ObjectEvent::Begin(ObjectMeta {
                    direction: dir,
                    app_proto: "raw",
                    midstream: self.midstream,
                    ..ObjectMeta::default()
                }),
            );
        }
    }
}
