//! Plain frames decoded by hand: Ethernet with at most two VLAN tags, or
//! raw IP; IPv4 (options allowed) or IPv6 without extension headers;
//! unfragmented TCP or UDP that is not a tunnel's carrier. That is nearly
//! every packet of real traffic, and for those this gives exactly what
//! etherparse's slicing and [`super::Decoder`]'s reading of the slices
//! give, at a fraction of the cost: etherparse builds a ~300-byte
//! `SlicedPacket` with every layer's slices and checks (about 860
//! instructions per Ethernet/IPv4/TCP packet under callgrind), where the
//! flow's fields are a dozen reads at fixed offsets (about 100).
//!
//! Written by hand for that reason: the decoder needs etherparse's exact
//! semantics (which lengths cut, which are errors), and a crate with a
//! lighter parser would bring its own. Anything else — other link types,
//! MACsec, a third VLAN tag, IPv4 `AUTH`, IPv6 extension headers,
//! fragments, VXLAN/GENEVE ports, a UDP length of 0, any length that does
//! not fit — is `None`, and the full path decides it (and reports its
//! error). Every read is checked; nothing here panics.

use super::tunnel::{GENEVE_PORT, VXLAN_PORT};
use super::{Decoded, Sums, TcpMeta, Transport, linktype};
use crate::flow::FlowKey;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad and the old QinQ tag (as etherparse reads them).
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
const TCP: u8 = 6;
const UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A plain frame, decoded.
pub(super) struct Plain<'a> {
    /// The packet (`offloaded_checksum` not yet known).
    pub(super) decoded: Decoded,
    /// Its TCP or UDP payload.
    pub(super) payload: &'a [u8],
    /// The bytes its checksums cover (as [`super::Decoder::peek_unchecked`]
    /// returns them).
    pub(super) sums: Sums<'a>,
    /// Its IPv4 header with options (empty for IPv6).
    pub(super) ip_header: &'a [u8],
}

/// Where a plain frame's layers lie, every length checked.
struct Layout {
    /// Offset of the IP header in the frame.
    ip: usize,
    /// IPv6 (else IPv4).
    v6: bool,
    /// The IPv4 header's length with options (0 for IPv6).
    ip_header_len: usize,
    /// Bytes at the IP layer.
    ip_len: usize,
    /// TCP or UDP.
    proto: u8,
    /// The TCP segment or UDP datagram: its offsets in the frame.
    l4: (usize, usize),
    /// The TCP or UDP header's length.
    l4_header_len: usize,
    /// VLAN ids, outer first (all zero when not tracked).
    vlan: [u16; 2],
}

/// The layers of `frame` when it is plain, else `None` (see the module
/// documentation). Shared by [`peek`] and [`flow_hash`], so both accept
/// exactly the same frames.
#[inline(always)]
fn locate(link: i32, frame: &[u8], track_vlan: bool) -> Option<Layout> {
    let mut vlan = [0u16; 2];
    let (at, v6) = match link {
        linktype::ETHERNET => {
            let mut ether_type = be16(frame, 12)?;
            let mut at = 14;
            let mut tags = 0;
            while ETHERTYPE_VLAN.contains(&ether_type) {
                // A third tag: etherparse keeps three, the decoder two.
                if tags == 2 {
                    return None;
                }
                let tci = be16(frame, at)?;
                if track_vlan {
                    vlan[tags] = tci & 0x0fff;
                }
                ether_type = be16(frame, at + 2)?;
                at += 4;
                tags += 1;
            }
            match (ether_type, frame.get(at)? >> 4) {
                (ETHERTYPE_IPV4, 4) => (at, false),
                (ETHERTYPE_IPV6, 6) => (at, true),
                _ => return None,
            }
        }
        linktype::RAW
        | linktype::RAW_BSD
        | linktype::RAW_OPENBSD
        | linktype::IPV4
        | linktype::IPV6 => match frame.first()? >> 4 {
            4 => (0, false),
            6 => (0, true),
            _ => return None,
        },
        _ => return None,
    };
    let ip = &frame[at..];
    let (ip_header_len, ip_len, proto, l4_start) = if v6 {
        let payload_len = usize::from(be16(ip, 4)?);
        // 0: a jumbogram or a length left out; the full path reads those.
        if payload_len == 0 || ip.len() < 40 {
            return None;
        }
        (0, 40 + payload_len, ip[6], 40)
    } else {
        let header_len = usize::from(ip.first()? & 0x0f) * 4;
        let total_len = usize::from(be16(ip, 2)?);
        if header_len < 20 || total_len < header_len {
            return None;
        }
        let fragment = be16(ip, 6)?;
        // More fragments, or an offset.
        if fragment & 0x3fff != 0 {
            return None;
        }
        (header_len, total_len, *ip.get(9)?, header_len)
    };
    let l4 = ip.get(l4_start..ip_len)?;
    let l4_header_len = match proto {
        TCP => {
            let header_len = usize::from(l4.get(12)? >> 4) * 4;
            if header_len < 20 || header_len > l4.len() {
                return None;
            }
            header_len
        }
        UDP => {
            // A tunnel's carrier is peeled by the full path.
            let dport = be16(l4, 2)?;
            if dport == VXLAN_PORT || dport == GENEVE_PORT {
                return None;
            }
            let len = usize::from(be16(l4, 4)?);
            if len < 8 || len > l4.len() {
                return None;
            }
            return Some(Layout {
                ip: at,
                v6,
                ip_header_len,
                ip_len,
                proto,
                l4: (at + l4_start, at + l4_start + len),
                l4_header_len: 8,
                vlan,
            });
        }
        _ => return None,
    };
    Some(Layout {
        ip: at,
        v6,
        ip_header_len,
        ip_len,
        proto,
        l4: (at + l4_start, at + ip_len),
        l4_header_len,
        vlan,
    })
}

/// The packet of `frame` (link type `link`) when the frame is plain, else
/// `None`. `track_vlan`: whether VLAN ids are reported.
#[inline]
pub(super) fn peek(link: i32, frame: &[u8], track_vlan: bool) -> Option<Plain<'_>> {
    let at = locate(link, frame, track_vlan)?;
    let ip = &frame[at.ip..];
    let (src, dst, ttl) = if at.v6 {
        let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
        let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
        (
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
            ip[7],
        )
    } else {
        let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
        let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
        (
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
            ip[8],
        )
    };
    let l4 = frame.get(at.l4.0..at.l4.1)?;
    let payload = l4.get(at.l4_header_len..)?;
    let sport = be16(l4, 0)?;
    let dport = be16(l4, 2)?;
    let transport = if at.proto == TCP {
        let flags = l4[13];
        Transport::Tcp(TcpMeta {
            seq: be32(l4, 4)?,
            ack_no: be32(l4, 8)?,
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
            urg: flags & 0x20 != 0,
            window: be16(l4, 14)?,
            urgent_ptr: be16(l4, 18)?,
        })
    } else {
        Transport::Udp
    };
    let ip_len = at.ip_len as u32;
    // What the frame holds besides the IP packet (link headers, padding)
    // counts in its length, as in `Stamp`.
    let frame_len = (frame.len() as u32).saturating_sub(ip_len) + ip_len;
    let d = Decoded {
        src,
        dst,
        sport,
        dport,
        transport,
        ip_len,
        frame_len,
        tunnel: 0,
        vlan: at.vlan,
        ttl,
        fragment_overlap: false,
        offloaded_checksum: false,
    };
    let ip_header = &ip[..at.ip_header_len];
    let sums = Sums {
        l4,
        ip_header: (ip_header.len(), ip_header.len()),
    };
    Some(Plain {
        decoded: d,
        payload,
        sums,
        ip_header,
    })
}

/// The flow hash ([`FlowKey::symmetric_hash`]) of `frame`'s packet when the
/// frame is plain (exactly when [`peek`] decodes it), else `None`: read
/// straight from the header bytes, without building the packet (the
/// shared reading's walk needs only this to find each record's worker).
#[inline]
pub(super) fn flow_hash(link: i32, frame: &[u8], track_vlan: bool) -> Option<u64> {
    let at = locate(link, frame, track_vlan)?;
    let sport = be16(frame, at.l4.0)?;
    let dport = be16(frame, at.l4.0 + 2)?;
    let ip = &frame[at.ip..];
    Some(if at.v6 {
        FlowKey::symmetric_hash_of::<16>(
            (ip.get(8..24)?.try_into().ok()?, sport),
            (ip.get(24..40)?.try_into().ok()?, dport),
            at.proto,
            at.vlan,
            0,
        )
    } else {
        FlowKey::symmetric_hash_of::<4>(
            (ip.get(12..16)?.try_into().ok()?, sport),
            (ip.get(16..20)?.try_into().ok()?, dport),
            at.proto,
            at.vlan,
            0,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, Peek};
    use crate::source::pcapfile::{MappedFile, Packets};
    use std::path::{Path, PathBuf};

    /// The committed fixture captures and, when it is there, the public
    /// corpus (tunnels, fragments, odd link types, broken files).
    fn captures() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack = vec![
            root.join("../fixtures/pcaps"),
            root.join("../../shared/corpus/pcap-public"),
        ];
        let mut out = Vec::new();
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for p in entries.flatten().map(|e| e.path()) {
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
                {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// Where a slice lies (an empty one anywhere).
    fn at(s: &[u8]) -> (usize, usize) {
        if s.is_empty() {
            return (0, 0);
        }
        (s.as_ptr() as usize, s.len())
    }

    /// Whether the plain path decoded `frame`; when it did, the sliced
    /// path must give the same packet, payload and checksum bytes. The
    /// flow hash read from the header bytes is the decoded packet's key's,
    /// and there exactly when the packet is.
    fn agrees(decoder: &Decoder, link: i32, frame: &[u8]) -> bool {
        let hash = flow_hash(link, frame, decoder.track_vlan);
        let Some(p) = peek(link, frame, decoder.track_vlan) else {
            assert_eq!(hash, None, "{frame:02x?}");
            return false;
        };
        assert_eq!(
            hash,
            Some(FlowKey::of(&p.decoded).0.symmetric_hash()),
            "{frame:02x?}"
        );
        match decoder.peek_sliced(link, frame) {
            Ok((Peek::Packet(d, payload), sums)) => {
                assert_eq!(p.decoded, d, "{frame:02x?}");
                assert_eq!(at(p.payload), at(payload), "{frame:02x?}");
                assert_eq!(at(p.sums.l4), at(sums.l4), "{frame:02x?}");
                assert_eq!(p.sums.ip_header, sums.ip_header, "{frame:02x?}");
                assert_eq!(at(p.ip_header), at(sums.ip_header_in(frame)));
            }
            other => panic!("plain decoded {frame:02x?}; sliced: {other:?}"),
        }
        true
    }

    #[test]
    fn plain_frames_decode_as_the_sliced_path_decodes_them() {
        let decoders = [Decoder::default(), Decoder::default().track_vlan(false)];
        let (mut plain, mut sliced_only, mut mutants) = (0u64, 0u64, 0u64);
        for path in captures() {
            let Ok(map) = MappedFile::open(&path) else {
                continue;
            };
            let Ok(mut packets) = Packets::new(map.bytes()) else {
                continue;
            };
            let mut n = 0;
            while let Some(Ok(f)) = packets.next() {
                for d in &decoders {
                    if agrees(d, f.link, f.data) {
                        plain += 1;
                    } else if matches!(d.peek_sliced(f.link, f.data), Ok((Peek::Packet(..), _))) {
                        sliced_only += 1;
                    }
                }
                // The first frames of each file, cut short and with each
                // header byte changed.
                n += 1;
                if n > 6 {
                    continue;
                }
                let head = f.data.len().min(96);
                for cut in 0..head {
                    mutants += u64::from(agrees(&decoders[0], f.link, &f.data[..cut]));
                }
                let mut m = f.data.to_vec();
                for i in 0..head {
                    let b = f.data[i];
                    for v in [0, 0xff, b ^ 0x40, b ^ 0x01, b.wrapping_add(0x10)] {
                        m[i] = v;
                        for d in &decoders {
                            mutants += u64::from(agrees(d, f.link, &m));
                        }
                    }
                    m[i] = b;
                }
            }
        }
        // Both paths were taken, and the mutants reached the comparison.
        assert!(plain > 1000, "plain frames: {plain}");
        assert!(
            sliced_only > 100,
            "frames only the sliced path decodes: {sliced_only}"
        );
        assert!(mutants > 1000, "mutated frames compared: {mutants}");
    }
}
