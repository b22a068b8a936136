//! SSH: each side's identification string (RFC 4253 §4.2), the binary packet
//! framing while it is still in the clear, and an estimate of the plaintext
//! carried once the keys are in use. Each direction's stream is one object.

use super::raw::RawStream;
use super::{Ctx, Handler};
use crate::object::AppProto;
use eve::{Direction, SshInfo, SshSoftware};

/// Longest identification (or pre-identification) line accepted; RFC 4253
/// allows 255 bytes, real servers sometimes send a little more.
const MAX_LINE: usize = 1024;
/// Most lines a server may send before its identification.
const MAX_LINES: usize = 32;
/// Largest packet_length believed for a cleartext packet.
const MAX_PACKET: u32 = 256 * 1024;
/// SSH_MSG_NEWKEYS: after it, this direction is encrypted.
const MSG_NEWKEYS: u8 = 21;
/// Overhead assumed per encrypted packet: length 4, padding length 1, mean
/// padding 8, MAC/tag 16, and the channel-data header (type, channel,
/// length) 9, around a full 32 KiB channel-data payload.
const ENCRYPTED_OVERHEAD: u64 = 4 + 1 + 8 + 16 + 9;
const ENCRYPTED_PAYLOAD: u64 = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the identification line (after `lines` other lines).
    Banner { lines: usize },
    /// Cleartext binary packets: header bytes collected, bytes left of the
    /// current packet.
    Clear,
    /// Encrypted (or framing lost): bytes are counted, not parsed.
    Encrypted,
}

#[derive(Debug)]
struct SshDir {
    stream: RawStream,
    phase: Phase,
    line: Vec<u8>,
    header: [u8; 6],
    header_len: usize,
    packet_left: u64,
    /// The packet being skipped is NEWKEYS.
    newkeys: bool,
    encrypted_bytes: u64,
}

/// An SSH connection.
#[derive(Debug)]
pub(crate) struct SshConn {
    dirs: [SshDir; 2],
}

impl Default for SshConn {
    fn default() -> Self {
        let dir = |d| SshDir {
            stream: RawStream::from_start(d, AppProto::Ssh),
            phase: Phase::Banner { lines: 0 },
            line: Vec::new(),
            header: [0; 6],
            header_len: 0,
            packet_left: 0,
            newkeys: false,
            encrypted_bytes: 0,
        };
        SshConn {
            dirs: [dir(Direction::ToServer), dir(Direction::ToClient)],
        }
    }
}

/// Split `SSH-protoversion-softwareversion[ comments]`.
fn parse_banner(line: &[u8]) -> Option<SshSoftware> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix("SSH-")?;
    let (proto, rest) = rest.split_once('-')?;
    let software = rest.split(' ').next().unwrap_or("");
    if proto.is_empty() || software.is_empty() {
        return None;
    }
    Some(SshSoftware {
        proto_version: proto.to_string(),
        software_version: software.to_string(),
    })
}

/// Estimated plaintext in `bytes` of encrypted packets (full-size channel data).
fn encrypted_plaintext(bytes: u64) -> u64 {
    bytes
        .saturating_sub(bytes.div_ceil(ENCRYPTED_PAYLOAD + ENCRYPTED_OVERHEAD) * ENCRYPTED_OVERHEAD)
}

impl SshDir {
    /// Read the identification line; returns the bytes after it.
    fn banner<'a>(
        &mut self,
        dir: Direction,
        input: &'a [u8],
        lines: usize,
        ctx: &mut Ctx<'_>,
    ) -> &'a [u8] {
        let (take, eol) = match memchr::memchr(b'\n', input) {
            Some(p) => (p + 1, true),
            None => (input.len(), false),
        };
        let room = MAX_LINE.saturating_sub(self.line.len());
        if take > room {
            // Line too long: not an SSH identification exchange we can read.
            ctx.stats().ssh_bad_banners += 1;
            self.phase = Phase::Encrypted;
            self.line = Vec::new();
            return &input[room..];
        }
        self.line.extend_from_slice(&input[..take]);
        if !eol {
            return &[];
        }
        let line = std::mem::take(&mut self.line);
        if !line.starts_with(b"SSH-") {
            // Servers may send other lines before their identification.
            self.phase = if lines + 1 < MAX_LINES {
                Phase::Banner { lines: lines + 1 }
            } else {
                ctx.stats().ssh_bad_banners += 1;
                Phase::Encrypted
            };
            return &input[take..];
        }
        match parse_banner(&line) {
            Some(sw) => {
                ctx.stats().ssh_banners += 1;
                let v1 = sw.proto_version.starts_with("1.") && sw.proto_version != "1.99";
                let info = ctx.meta.ssh.get_or_insert_with(SshInfo::default);
                match dir {
                    Direction::ToServer => info.client = Some(sw),
                    Direction::ToClient => info.server = Some(sw),
                }
                // SSH-1 framing is not parsed: count its bytes as encrypted.
                self.phase = if v1 { Phase::Encrypted } else { Phase::Clear };
            }
            None => {
                ctx.stats().ssh_bad_banners += 1;
                self.phase = Phase::Encrypted;
            }
        }
        &input[take..]
    }

    /// Walk cleartext packets until NEWKEYS; returns bytes after the walk.
    fn clear<'a>(&mut self, mut input: &'a [u8]) -> &'a [u8] {
        while !input.is_empty() {
            if self.packet_left > 0 {
                let take = self.packet_left.min(input.len() as u64) as usize;
                self.packet_left -= take as u64;
                input = &input[take..];
                if self.packet_left == 0 && self.newkeys {
                    self.phase = Phase::Encrypted;
                    return input;
                }
                continue;
            }
            let take = (6 - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            input = &input[take..];
            if self.header_len < 6 {
                return input;
            }
            self.header_len = 0;
            let [a, b, c, d, _padding, msg] = self.header;
            let len = u32::from_be_bytes([a, b, c, d]);
            if !(2..=MAX_PACKET).contains(&len) {
                // Not cleartext framing after all (or an unknown variant).
                self.phase = Phase::Encrypted;
                return input;
            }
            self.newkeys = msg == MSG_NEWKEYS;
            // Bytes left after the length field, padding-length byte and type.
            self.packet_left = u64::from(len) - 2;
            if self.packet_left == 0 && self.newkeys {
                self.phase = Phase::Encrypted;
                return input;
            }
        }
        input
    }
}

impl SshConn {
    fn totals(&self, ctx: &mut Ctx<'_>) {
        ctx.meta.plaintext_toserver = encrypted_plaintext(self.dirs[0].encrypted_bytes);
        ctx.meta.plaintext_toclient = encrypted_plaintext(self.dirs[1].encrypted_bytes);
    }
}

impl Handler for SshConn {
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = match d.phase {
                Phase::Banner { lines } => d.banner(dir, rest, lines, ctx),
                Phase::Clear => d.clear(rest),
                Phase::Encrypted => {
                    d.encrypted_bytes += rest.len() as u64;
                    &[]
                }
            };
        }
        d.stream.data(bytes, ctx);
        self.totals(ctx);
    }

    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        let d = &mut self.dirs[dir.index()];
        if d.phase == Phase::Clear && d.packet_left >= len && !d.newkeys {
            d.packet_left -= len;
        } else {
            d.phase = Phase::Encrypted;
            d.encrypted_bytes += len;
        }
        d.stream.gap(len, ctx);
        self.totals(ctx);
    }

    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        self.dirs[dir.index()].stream.close(clean, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_split_like_suricata() {
        let sw = parse_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert_eq!(sw.proto_version, "2.0");
        assert_eq!(sw.software_version, "OpenSSH_9.2p1");
        let sw = parse_banner(b"SSH-1.99-Cisco-1.25\n").unwrap();
        assert_eq!(sw.software_version, "Cisco-1.25");
        assert_eq!(parse_banner(b"SSH-2.0-\r\n"), None);
        assert_eq!(parse_banner(b"SSH-\xff\r\n"), None);
    }
}
