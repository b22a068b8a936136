//! TLS: the ClientHello (SNI, ALPN, offered version, JA4) and ServerHello
//! (negotiated version and cipher), reassembled across TCP segments and
//! records in a bounded buffer; per-direction record framing for an estimate
//! of the plaintext bytes; each direction's raw byte stream as its object.

mod hello;
mod ja4;

use super::probe::TLS_MAX_RECORD;
use super::raw::RawStream;
use super::{Ctx, Handler};
use crate::object::{AppProto, ObjectMeta};
use eve::{Direction, TlsInfo};

/// Largest handshake message collected (a post-quantum ClientHello is ~2 KiB).
const MAX_HELLO: usize = 32 * 1024;
/// Most object bytes held back while waiting for the hello, so the object can
/// begin with the TLS metadata.
const MAX_HELD: usize = 64 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

/// One direction's record framing and hello collection.
#[derive(Debug)]
struct TlsDir {
    stream: RawStream,
    /// Header bytes of the record being read.
    header: [u8; 5],
    header_len: usize,
    /// Content type and body bytes left of the current record.
    content_type: u8,
    body_left: usize,
    /// Record framing was lost; bytes are estimated, not framed.
    desync: bool,
    /// Handshake bytes collected until the hello is parsed.
    hello_buf: Vec<u8>,
    /// The hello was parsed or given up on.
    hello_done: bool,
    /// Object bytes held back until the hello is done.
    held: Vec<u8>,
    /// Plaintext of framed application-data records.
    framed_plaintext: u64,
    /// Bytes seen after framing was lost (estimated as full-size records).
    unframed_bytes: u64,
}

/// A TLS connection.
#[derive(Debug)]
pub(crate) struct TlsConn {
    dirs: [TlsDir; 2],
    /// Bytes of an application-data record that are not plaintext, by the
    /// (version, cipher) the ServerHello negotiated: worked out once, not
    /// per record and per delivery (a cipher-suite lookup each time).
    overhead: usize,
}

impl Default for TlsConn {
    fn default() -> Self {
        let dir = |d| TlsDir {
            stream: RawStream::from_start(d, AppProto::Tls),
            header: [0; 5],
            header_len: 0,
            content_type: 0,
            body_left: 0,
            desync: false,
            hello_buf: Vec::new(),
            hello_done: false,
            held: Vec::new(),
            framed_plaintext: 0,
            unframed_bytes: 0,
        };
        TlsConn {
            dirs: [dir(Direction::ToServer), dir(Direction::ToClient)],
            overhead: record_overhead(None),
        }
    }
}

/// Bytes of an application-data record that are not plaintext, given the
/// negotiated version and cipher (TLS 1.3: header, tag, inner content type;
/// 1.2 AEAD: header, explicit nonce, tag; CBC: header, IV, MAC, mean padding).
fn record_overhead(negotiated: Option<(u16, u16)>) -> usize {
    use tls_parser::{TlsCipherEnc, TlsCipherEncMode, TlsCipherSuite};
    match negotiated {
        Some((0x0304, _)) | None => 5 + 16 + 1,
        Some((_, cipher)) => match TlsCipherSuite::from_id(cipher) {
            Some(cs) if cs.enc == TlsCipherEnc::Chacha20_Poly1305 => 5 + 16,
            Some(cs) if matches!(cs.enc_mode, TlsCipherEncMode::Gcm | TlsCipherEncMode::Ccm) => {
                5 + 8 + usize::from(cs.mac_size / 8)
            }
            Some(cs) if cs.enc_mode == TlsCipherEncMode::Cbc => {
                let block = cs.enc_block_size();
                5 + block + usize::from(cs.mac_size / 8) + block / 2
            }
            Some(cs) => 5 + usize::from(cs.mac_size / 8),
            None => 5 + 8 + 16,
        },
    }
}

/// Plaintext estimate for bytes whose record framing is unknown: full-size
/// records of 2^14 plaintext bytes plus the overhead.
fn unframed_plaintext(bytes: u64, overhead: usize) -> u64 {
    let full = 16384 + overhead as u64;
    bytes.saturating_sub(bytes.div_ceil(full) * overhead as u64)
}

impl TlsConn {
    fn plaintext_total(&self, ctx: &mut Ctx<'_>) {
        let overhead = self.overhead;
        let pt = |d: &TlsDir| d.framed_plaintext + unframed_plaintext(d.unframed_bytes, overhead);
        ctx.meta.plaintext_toserver = pt(&self.dirs[0]);
        ctx.meta.plaintext_toclient = pt(&self.dirs[1]);
    }

    /// A complete handshake message of `dir` is in its hello buffer.
    fn hello(&mut self, dir: Direction, ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        let buf = std::mem::take(&mut d.hello_buf);
        d.hello_done = true;
        let (kind, body) = (buf[0], &buf[4..]);
        match (dir, kind) {
            (Direction::ToServer, 1) => match hello::client_hello(body) {
                Some(ch) => {
                    ctx.stats().tls_client_hellos += 1;
                    let info = ctx.meta.tls.get_or_insert_with(TlsInfo::default);
                    info.sni.clone_from(&ch.sni);
                    info.alpn = ch
                        .alpn
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    if info.version.is_none() {
                        info.version =
                            hello::version_name(ch.offered_version()).map(str::to_string);
                    }
                    info.ja4 = Some(ja4::ja4(&ch));
                    if ch.sni.is_some() {
                        ctx.meta.server_name.clone_from(&ch.sni);
                    }
                }
                None => ctx.stats().tls_parse_errors += 1,
            },
            (Direction::ToClient, 2) => match hello::server_hello(body) {
                Some(sh) => {
                    ctx.stats().tls_server_hellos += 1;
                    self.overhead = record_overhead(Some((sh.version, sh.cipher)));
                    if let Some(v) = hello::version_name(sh.version) {
                        let info = ctx.meta.tls.get_or_insert_with(TlsInfo::default);
                        info.version = Some(v.to_string());
                    }
                }
                None => ctx.stats().tls_parse_errors += 1,
            },
            _ => ctx.stats().tls_parse_errors += 1,
        }
    }

    /// Frame records in `bytes`, collecting the hello and counting plaintext.
    fn frame(&mut self, dir: Direction, mut bytes: &[u8], ctx: &mut Ctx<'_>) {
        while !bytes.is_empty() {
            let d = &mut self.dirs[dir.index()];
            if d.desync {
                d.unframed_bytes += bytes.len() as u64;
                return;
            }
            if d.body_left == 0 {
                let take = (5 - d.header_len).min(bytes.len());
                d.header[d.header_len..d.header_len + take].copy_from_slice(&bytes[..take]);
                d.header_len += take;
                bytes = &bytes[take..];
                if d.header_len < 5 {
                    return;
                }
                d.header_len = 0;
                let [ct, major, _, hi, lo] = d.header;
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if !(20..=24).contains(&ct) || major != 3 || len > TLS_MAX_RECORD {
                    ctx.stats().tls_record_desync += 1;
                    d.desync = true;
                    d.hello_done = true;
                    continue;
                }
                d.content_type = ct;
                d.body_left = len;
                if ct == CONTENT_APPLICATION_DATA {
                    d.framed_plaintext += len.saturating_sub(self.overhead - 5) as u64;
                }
                if len == 0 {
                    continue;
                }
            }
            let take = d.body_left.min(bytes.len());
            let body = &bytes[..take];
            bytes = &bytes[take..];
            d.body_left -= take;
            if d.content_type == CONTENT_HANDSHAKE && !d.hello_done {
                if d.hello_buf.len() + body.len() > MAX_HELLO + 4 {
                    ctx.stats().tls_handshake_too_large += 1;
                    d.hello_done = true;
                    d.hello_buf = Vec::new();
                    continue;
                }
                d.hello_buf.extend_from_slice(body);
                if d.hello_buf.len() >= 4 {
                    let b = &d.hello_buf;
                    let need =
                        4 + (usize::from(b[1]) << 16 | usize::from(b[2]) << 8 | usize::from(b[3]));
                    if need > MAX_HELLO + 4 {
                        ctx.stats().tls_handshake_too_large += 1;
                        d.hello_done = true;
                        d.hello_buf = Vec::new();
                    } else if d.hello_buf.len() >= need {
                        d.hello_buf.truncate(need);
                        self.hello(dir, ctx);
                    }
                }
            } else if d.content_type != CONTENT_HANDSHAKE && !d.hello_done {
                // Anything before the hello (alert, CCS, data): no hello to wait for.
                d.hello_done = true;
                d.hello_buf = Vec::new();
            }
        }
    }

    /// Deliver object bytes: held back until the hello is done (bounded),
    /// so the object begins with the TLS metadata.
    fn deliver(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        if !d.hello_done && d.held.len() + bytes.len() <= MAX_HELD {
            d.held.extend_from_slice(bytes);
            return;
        }
        self.flush(dir, true, ctx);
        self.dirs[dir.index()].stream.data(bytes, ctx);
    }

    /// Begin the object (when `force` or bytes are held) and release held bytes.
    fn flush(&mut self, dir: Direction, force: bool, ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        if !force && d.held.is_empty() {
            return;
        }
        // Called for every delivery: the metadata is copied only to begin.
        if !d.stream.started() {
            let meta = ObjectMeta {
                tls: ctx.meta.tls.clone(),
                ..ObjectMeta::default()
            };
            d.stream.begin_with(meta, ctx);
        }
        if !d.held.is_empty() {
            let held = std::mem::take(&mut d.held);
            d.stream.data(&held, ctx);
        }
    }
}

impl Handler for TlsConn {
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        self.frame(dir, bytes, ctx);
        self.plaintext_total(ctx);
        self.deliver(dir, bytes, ctx);
    }

    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        if !d.desync
            && d.body_left as u64 >= len
            && (d.hello_done || d.content_type != CONTENT_HANDSHAKE)
        {
            // The gap lies inside one record body: framing survives.
            d.body_left -= len as usize;
        } else {
            if !d.desync {
                ctx.stats().tls_record_desync += 1;
            }
            d.desync = true;
            d.hello_done = true;
            d.unframed_bytes += len;
        }
        self.plaintext_total(ctx);
        self.flush(dir, true, ctx);
        self.dirs[dir.index()].stream.gap(len, ctx);
    }

    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        self.flush(dir, false, ctx);
        self.dirs[dir.index()].stream.close(clean, ctx);
    }
}
