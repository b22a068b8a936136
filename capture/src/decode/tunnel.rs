//! Encapsulations peeled before the inner packet is sliced: PPPoE
//! sessions, MPLS label stacks, GRE (with ERSPAN type I/II/III), IP in IP,
//! VXLAN and GENEVE — the link and tunnel layers Suricata decodes and that
//! mirror ports often deliver.
//!
//! Written by hand: etherparse (the slicer used for everything else) has
//! none of these, and each is a few fixed header fields; the crates that
//! have some (pnet) would bring a second packet model for 100 lines of
//! bounds-checked reads. Every read is checked; a malformed header is a
//! [`Skip`] with its own reason, never a panic.

use super::Skip;
use etherparse::{EtherType, IpNumber, SlicedPacket, TransportSlice};

/// Most encapsulations peeled from one frame (a packet nested deeper is
/// skipped as `decoder.tunnel_too_deep`): Suricata's default
/// `decoder.max-layers` is 16; real traffic rarely has more than 3.
pub const MAX_DEPTH: u8 = 8;

/// PPPoE session stage (RFC 2516).
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// MPLS unicast.
const ETHERTYPE_MPLS: u16 = 0x8847;
/// MPLS multicast.
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
/// Transparent Ethernet bridging (GRE and GENEVE carrying Ethernet).
const ETHERTYPE_TEB: u16 = 0x6558;
/// ERSPAN type I (no header) and II on GRE.
const GRE_ERSPAN_II: u16 = 0x88be;
/// ERSPAN type III on GRE.
const GRE_ERSPAN_III: u16 = 0x22eb;
/// VXLAN's IANA port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// GENEVE's IANA port (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;

/// What one encapsulation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inner<'a> {
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// A payload named by an EtherType (IPv4, IPv6, MPLS, VLAN, …).
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet (told by its first nibble).
    Ip(&'a [u8]),
}

impl<'a> Inner<'a> {
    /// Slice the inner packet as etherparse does the outer one.
    pub(super) fn slice(self) -> Result<SlicedPacket<'a>, Skip> {
        let p = match self {
            Inner::Ethernet(b) => SlicedPacket::from_ethernet(b),
            Inner::EtherType(t, b) => SlicedPacket::from_ether_type(EtherType(t), b),
            Inner::Ip(b) => SlicedPacket::from_ip(b),
        };
        p.map_err(super::slice_err)
    }
}

/// One encapsulation peeled: what it holds, and whether it is a tunnel
/// (GRE, IP in IP, VXLAN, GENEVE: a new recursion level in Suricata's
/// terms, and a new packet whose length is that of what it holds) or a
/// link layer (PPPoE, MPLS: the frame stays the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layer<'a> {
    /// What it holds.
    pub inner: Inner<'a>,
    /// A tunnel rather than a link layer.
    pub tunnel: bool,
    /// The length of the packet a tunnel makes, as Suricata counts it:
    /// what follows the tunnel's header (for ERSPAN, the GRE header: the
    /// ERSPAN header counts with the mirrored frame; for VXLAN, the inner
    /// Ethernet header too).
    pub len: usize,
}

fn link(inner: Inner<'_>) -> Layer<'_> {
    Layer {
        inner,
        tunnel: false,
        len: inner.len(),
    }
}

fn tunnel(inner: Inner<'_>) -> Layer<'_> {
    Layer {
        inner,
        tunnel: true,
        len: inner.len(),
    }
}

impl Inner<'_> {
    /// The bytes it holds.
    fn len(&self) -> usize {
        match self {
            Inner::Ethernet(b) | Inner::EtherType(_, b) | Inner::Ip(b) => b.len(),
        }
    }
}

/// The encapsulated packet `p` carries, `None` when it carries none.
pub(super) fn inner<'a>(p: &SlicedPacket<'a>) -> Result<Option<Layer<'a>>, Skip> {
    if p.net.is_none() {
        let Some(payload) = p.ether_payload() else {
            return Ok(None);
        };
        return match payload.ether_type.0 {
            ETHERTYPE_PPPOE_SESSION => pppoe(payload.payload).map(|i| Some(link(i))),
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
                mpls(payload.payload).map(|i| Some(link(i)))
            }
            _ => Ok(None),
        };
    }
    match &p.transport {
        Some(TransportSlice::Udp(u)) => match u.destination_port() {
            // Suricata's VXLAN packet starts after the inner Ethernet
            // header (decode-vxlan.c).
            VXLAN_PORT => vxlan(u.payload()).map(|i| {
                let mut layer = tunnel(i);
                layer.len = layer.len.saturating_sub(14);
                Some(layer)
            }),
            GENEVE_PORT => geneve(u.payload()).map(|i| Some(tunnel(i))),
            _ => Ok(None),
        },
        Some(_) => Ok(None),
        None => {
            let Some(ip) = p.ip_payload() else {
                return Ok(None);
            };
            if ip.fragmented {
                // Left to defragmentation (a reassembled tunnel packet is
                // then `other_transport`).
                return Ok(None);
            }
            match ip.ip_number {
                IpNumber::GRE => gre(ip.payload).map(Some),
                IpNumber::IPV4 | IpNumber::IPV6 => Ok(Some(tunnel(Inner::Ip(ip.payload)))),
                _ => Ok(None),
            }
        }
    }
}

/// PPPoE session header (version/type 0x11, code 0, session, length), then
/// the PPP protocol: IPv4 (0x0021) or IPv6 (0x0057), in two bytes or, with
/// protocol field compression (RFC 1661 6.5: a first byte that is odd is
/// the whole field), one; PPP control traffic (LCP, IPCP, …) is not IP.
fn pppoe(b: &[u8]) -> Result<Inner<'_>, Skip> {
    let h = b.get(..8).ok_or(Skip::Truncated)?;
    if h[0] != 0x11 || h[1] != 0 {
        return Err(Skip::BadPppoe);
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // The PPPoE length covers the PPP protocol field and its payload.
    let ppp = b[6..].get(..len).ok_or(Skip::Truncated)?;
    let (proto, at) = match ppp {
        [] => return Err(Skip::BadPppoe),
        [b, ..] if b & 1 == 1 => (u16::from(*b), 1),
        [a, b, ..] => (u16::from_be_bytes([*a, *b]), 2),
        [_] => return Err(Skip::BadPppoe),
    };
    match proto {
        0x0021 | 0x0057 => Ok(Inner::Ip(&ppp[at..])),
        _ => Err(Skip::NotIp),
    }
}

/// An MPLS label stack (4 bytes a label, bottom-of-stack bit ends it), then
/// IPv4 or IPv6 by the first nibble. Anything else (an Ethernet pseudowire,
/// whose control word starts with nibble 0) is `decoder.mpls_unknown`.
fn mpls(b: &[u8]) -> Result<Inner<'_>, Skip> {
    let mut at = 0;
    loop {
        let label = b.get(at..at + 4).ok_or(Skip::Truncated)?;
        at += 4;
        if label[2] & 1 == 1 {
            break;
        }
        if at >= 4 * usize::from(MAX_DEPTH) {
            return Err(Skip::TunnelTooDeep);
        }
    }
    let rest = &b[at..];
    match rest.first().map(|v| v >> 4) {
        Some(4 | 6) => Ok(Inner::Ip(rest)),
        Some(_) => Err(Skip::MplsUnknown),
        None => Err(Skip::Truncated),
    }
}

/// GRE (RFC 2784/2890, version 0): optional checksum, key and sequence
/// number words, then the protocol's payload; ERSPAN sessions carry a
/// mirrored Ethernet frame. Source routing and version 1 (PPTP) are
/// `decoder.bad_gre`.
fn gre(b: &[u8]) -> Result<Layer<'_>, Skip> {
    let h = b.get(..4).ok_or(Skip::Truncated)?;
    let flags = u16::from_be_bytes([h[0], h[1]]);
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let (checksum, routing, key, seq) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    if routing || flags & 0x0007 != 0 {
        return Err(Skip::BadGre);
    }
    let at = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
    let payload = b.get(at..).ok_or(Skip::Truncated)?;
    let inner = gre_payload(proto, seq, payload)?;
    Ok(Layer {
        inner,
        tunnel: true,
        len: payload.len(),
    })
}

/// What a GRE payload of protocol `proto` holds (`seq`: the GRE header
/// has a sequence number, which tells ERSPAN type II from type I).
fn gre_payload(proto: u16, seq: bool, payload: &[u8]) -> Result<Inner<'_>, Skip> {
    match proto {
        ETHERTYPE_TEB => Ok(Inner::Ethernet(payload)),
        // Type I has no ERSPAN header (and no sequence number); type II
        // has 8 bytes, version 1.
        GRE_ERSPAN_II if !seq => Ok(Inner::Ethernet(payload)),
        GRE_ERSPAN_II => {
            let e = payload.get(..8).ok_or(Skip::Truncated)?;
            if e[0] >> 4 != 1 {
                return Err(Skip::BadErspan);
            }
            Ok(Inner::Ethernet(&payload[8..]))
        }
        // Type III: 12 bytes, version 2, then an 8-byte platform-specific
        // subheader when the O bit (last bit of the header) is set.
        GRE_ERSPAN_III => {
            let e = payload.get(..12).ok_or(Skip::Truncated)?;
            if e[0] >> 4 != 2 {
                return Err(Skip::BadErspan);
            }
            let at = if e[11] & 1 == 1 { 20 } else { 12 };
            Ok(Inner::Ethernet(payload.get(at..).ok_or(Skip::Truncated)?))
        }
        other => Ok(Inner::EtherType(other, payload)),
    }
}

/// VXLAN (RFC 7348): 8 bytes whose I flag says the VNI is valid, then an
/// Ethernet frame.
fn vxlan(b: &[u8]) -> Result<Inner<'_>, Skip> {
    let h = b.get(..8).ok_or(Skip::Truncated)?;
    if h[0] & 0x08 == 0 {
        return Err(Skip::BadVxlan);
    }
    Ok(Inner::Ethernet(&b[8..]))
}

/// GENEVE (RFC 8926): version 0, 8 bytes plus options, then the payload
/// its protocol type names (Ethernet, IPv4, IPv6).
fn geneve(b: &[u8]) -> Result<Inner<'_>, Skip> {
    let h = b.get(..8).ok_or(Skip::Truncated)?;
    if h[0] >> 6 != 0 {
        return Err(Skip::BadGeneve);
    }
    let at = 8 + 4 * usize::from(h[0] & 0x3f);
    let payload = b.get(at..).ok_or(Skip::Truncated)?;
    match u16::from_be_bytes([h[2], h[3]]) {
        ETHERTYPE_TEB => Ok(Inner::Ethernet(payload)),
        t => Ok(Inner::EtherType(t, payload)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_are_counted_reasons() {
        assert_eq!(pppoe(&[0x11, 0, 0, 1, 0, 2, 0xc0, 0x21]), Err(Skip::NotIp));
        assert_eq!(pppoe(&[0x12, 0, 0, 1, 0, 2, 0, 0x21]), Err(Skip::BadPppoe));
        assert_eq!(pppoe(&[0x11, 0, 0, 1, 0, 9, 0, 0x21]), Err(Skip::Truncated));
        // Protocol field compression: one byte, 0x21 = IPv4.
        assert_eq!(
            pppoe(&[0x11, 0, 0, 1, 0, 2, 0x21, 0x45]),
            Ok(Inner::Ip(&[0x45][..]))
        );
        assert_eq!(
            pppoe(&[0x11, 0, 0, 1, 0, 3, 0, 0x21, 0x45]),
            Ok(Inner::Ip(&[0x45][..]))
        );
        assert_eq!(mpls(&[0, 0, 0, 64]), Err(Skip::Truncated));
        assert_eq!(mpls(&[0, 0, 1, 64, 0x00]), Err(Skip::MplsUnknown));
        assert_eq!(mpls(&[0, 0, 0, 64].repeat(20)), Err(Skip::TunnelTooDeep));
        assert_eq!(gre(&[0x40, 0, 8, 0]).err(), Some(Skip::BadGre));
        assert_eq!(gre(&[0x00, 1, 8, 0]).err(), Some(Skip::BadGre));
        assert_eq!(gre(&[0x30, 0, 8, 0, 0, 0]).err(), Some(Skip::Truncated));
        assert_eq!(
            gre(&[0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x20]).err(),
            Some(Skip::Truncated)
        );
        assert_eq!(vxlan(&[0; 8]), Err(Skip::BadVxlan));
        assert_eq!(
            geneve(&[0x40, 0, 0x65, 0x58, 0, 0, 0, 0]),
            Err(Skip::BadGeneve)
        );
        assert_eq!(
            geneve(&[0x01, 0, 0x65, 0x58, 0, 0, 0, 0]),
            Err(Skip::Truncated)
        );
    }

    #[test]
    fn gre_optional_words_are_skipped() {
        let mut b = vec![0xb0, 0, 0x08, 0x00];
        b.extend_from_slice(&[0; 12]);
        b.push(0x45);
        let layer = gre(&b).unwrap();
        assert_eq!(layer.inner, Inner::EtherType(0x0800, &[0x45][..]));
        assert_eq!(layer.len, 1);
    }
}
