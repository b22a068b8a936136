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

/// The packet of `frame` (link type `link`) when the frame is plain, else
/// `None`. `track_vlan`: whether VLAN ids are reported.
#[inline]
pub(super) fn peek(link: i32, frame: &[u8], track_vlan: bool) -> Option<Plain<'_>> {
    let mut vlan = [0u16; 2];
    let (ip, v6) = match link {
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
            let rest = frame.get(at..)?;
            match (ether_type, rest.first()? >> 4) {
                (ETHERTYPE_IPV4, 4) => (rest, false),
                (ETHERTYPE_IPV6, 6) => (rest, true),
                _ => return None,
            }
        }
        linktype::RAW
        | linktype::RAW_BSD
        | linktype::RAW_OPENBSD
        | linktype::IPV4
        | linktype::IPV6 => match frame.first()? >> 4 {
            4 => (frame, false),
            6 => (frame, true),
            _ => return None,
        },
        _ => return None,
    };
    let (src, dst, ip_len, ttl, proto, l4, ip_header) = if v6 {
        let payload_len = usize::from(be16(ip, 4)?);
        // 0: a jumbogram or a length left out; the full path reads those.
        if payload_len == 0 {
            return None;
        }
        let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
        let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
        (
            IpAddr::V6(Ipv6Addr::from(src)),
            IpAddr::V6(Ipv6Addr::from(dst)),
            40 + payload_len as u32,
            ip[7],
            ip[6],
            ip.get(40..40 + payload_len)?,
            &ip[..0],
        )
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
        let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
        let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
        (
            IpAddr::V4(Ipv4Addr::from(src)),
            IpAddr::V4(Ipv4Addr::from(dst)),
            total_len as u32,
            ip[8],
            ip[9],
            ip.get(header_len..total_len)?,
            &ip[..header_len],
        )
    };
    let sport = be16(l4, 0)?;
    let dport = be16(l4, 2)?;
    let (transport, l4, payload) = match proto {
        TCP => {
            let header_len = usize::from(l4.get(12)? >> 4) * 4;
            if header_len < 20 || header_len > l4.len() {
                return None;
            }
            let flags = l4[13];
            let meta = TcpMeta {
                seq: be32(l4, 4)?,
                ack_no: be32(l4, 8)?,
                fin: flags & 0x01 != 0,
                syn: flags & 0x02 != 0,
                rst: flags & 0x04 != 0,
                ack: flags & 0x10 != 0,
                urg: flags & 0x20 != 0,
                window: be16(l4, 14)?,
                urgent_ptr: be16(l4, 18)?,
            };
            (Transport::Tcp(meta), l4, &l4[header_len..])
        }
        UDP => {
            // A tunnel's carrier is peeled by the full path.
            if dport == VXLAN_PORT || dport == GENEVE_PORT {
                return None;
            }
            let len = usize::from(be16(l4, 4)?);
            if len < 8 || len > l4.len() {
                return None;
            }
            let l4 = &l4[..len];
            (Transport::Udp, l4, &l4[8..])
        }
        _ => return None,
    };
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
        vlan,
        ttl,
        fragment_overlap: false,
        offloaded_checksum: false,
    };
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
    /// path must give the same packet, payload and checksum bytes.
    fn agrees(decoder: &Decoder, link: i32, frame: &[u8]) -> bool {
        let Some(p) = peek(link, frame, decoder.track_vlan) else {
            return false;
        };
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
