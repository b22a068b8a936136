//! Flow keys: the canonical (direction-independent) 5-tuple plus VLAN ids,
//! the symmetric hash that shards flows onto workers, and who is the client.

use crate::decode::{Decoded, Transport};
use eve::Proto;
use std::fmt;
use std::net::IpAddr;

/// One endpoint: address and port.
pub type Endpoint = (IpAddr, u16);

/// A flow's 5-tuple with its endpoints in canonical order (`a <= b`), so both
/// directions of a connection give the same key, and its VLAN ids (as
/// Suricata's VLAN tracking: the same addresses on two VLANs are two
/// flows — overlapping address spaces stay apart), and how many tunnels
/// deep it is (Suricata's recursion level: a tunnelled flow and a plain
/// one with the same 5-tuple are two flows; the tunnel's outer endpoints
/// are not part of the key, as in Suricata).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The lower endpoint.
    pub a: Endpoint,
    /// The higher endpoint.
    pub b: Endpoint,
    /// TCP or UDP.
    pub proto: Proto,
    /// Outer and inner 802.1Q VLAN id (0 = none).
    pub vlan: [u16; 2],
    /// Tunnels the flow is inside (0 = none).
    pub tunnel: u8,
}

impl FlowKey {
    /// The key of a decoded packet, and whether its sender is endpoint `a`.
    pub fn of(p: &Decoded) -> (FlowKey, bool) {
        let proto = match p.transport {
            Transport::Tcp(_) => Proto::Tcp,
            Transport::Udp => Proto::Udp,
        };
        let s = (p.src, p.sport);
        let d = (p.dst, p.dport);
        let vlan = p.vlan;
        let tunnel = p.tunnel;
        if s <= d {
            (
                FlowKey {
                    a: s,
                    b: d,
                    proto,
                    vlan,
                    tunnel,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    a: d,
                    b: s,
                    proto,
                    vlan,
                    tunnel,
                },
                false,
            )
        }
    }

    /// A total order (for deterministic iteration over flows).
    pub fn order(&self) -> (Endpoint, Endpoint, u8, [u16; 2], u8) {
        (self.a, self.b, self.proto.number(), self.vlan, self.tunnel)
    }

    /// The VLAN ids for events (outer first), `None` when untagged.
    pub fn vlan_ids(&self) -> Option<Vec<u16>> {
        match self.vlan {
            [0, 0] => None,
            [o, 0] => Some(vec![o]),
            [o, i] => Some(vec![o, i]),
        }
    }

    /// A hash equal for both directions and stable across runs and machines
    /// (xxh3 of the canonical bytes): it picks the worker.
    pub fn symmetric_hash(&self) -> u64 {
        let (proto, vlan, tunnel) = (self.proto.number(), self.vlan, self.tunnel);
        match (self.a.0, self.b.0) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Self::symmetric_hash_of(
                (&a.octets(), self.a.1),
                (&b.octets(), self.b.1),
                proto,
                vlan,
                tunnel,
            ),
            // Both ends of a packet are of one family; a key made by hand
            // with two is hashed with its IPv4 end mapped to IPv6.
            (a, b) => Self::symmetric_hash_of(
                (&v6_octets(a), self.a.1),
                (&v6_octets(b), self.b.1),
                proto,
                vlan,
                tunnel,
            ),
        }
    }

    /// [`FlowKey::symmetric_hash`] of the flow between two endpoints given
    /// as address bytes (4 for IPv4, 16 for IPv6) and port, in either
    /// order, with its IP protocol number, VLAN ids and tunnel depth: for
    /// callers that have the header bytes and no key.
    #[inline]
    pub fn symmetric_hash_of<const N: usize>(
        s: (&[u8; N], u16),
        d: (&[u8; N], u16),
        proto: u8,
        vlan: [u16; 2],
        tunnel: u8,
    ) -> u64 {
        // The canonical order of `FlowKey::of`: addresses of one family
        // order as their bytes read as a big-endian number, then the ports.
        let value = |ip: &[u8; N]| {
            let mut b = [0u8; 16];
            b[16 - N..].copy_from_slice(ip);
            u128::from_be_bytes(b)
        };
        let (a, b) = if (value(s.0), s.1) <= (value(d.0), d.1) {
            (s, d)
        } else {
            (d, s)
        };
        let mut buf = [0u8; 43];
        buf[..N].copy_from_slice(a.0);
        buf[N..N + 2].copy_from_slice(&a.1.to_be_bytes());
        buf[N + 2..2 * N + 2].copy_from_slice(b.0);
        buf[2 * N + 2..2 * N + 4].copy_from_slice(&b.1.to_be_bytes());
        let mut n = 2 * N + 4;
        buf[n] = proto;
        n += 1;
        // Untagged keys hash as before VLANs were part of the key.
        if vlan != [0, 0] {
            buf[n..n + 2].copy_from_slice(&vlan[0].to_be_bytes());
            buf[n + 2..n + 4].copy_from_slice(&vlan[1].to_be_bytes());
            n += 4;
        }
        if tunnel != 0 {
            buf[n] = tunnel;
            n += 1;
        }
        xxhash_rust::xxh3::xxh3_64(&buf[..n])
    }
}

/// An address's 16 bytes (IPv4 mapped to IPv6).
fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        f.write_str(p)?;
        for (ip, port) in [self.a, self.b] {
            f.write_str("|")?;
            write_endpoint(f, ip, port)?;
        }
        // Untagged, untunnelled keys print (and so derive event ids) as
        // before.
        let [o, i] = self.vlan;
        if (o, i) != (0, 0) {
            write!(f, "|vlan:{o}.{i}")?;
        }
        if self.tunnel != 0 {
            write!(f, "|tunnel:{}", self.tunnel)?;
        }
        Ok(())
    }
}

/// `ip:port` as `Display` writes them. IPv4 by hand, into a buffer on the
/// stack: every new flow's name (its flow id and event ids derive from it)
/// writes two endpoints, and `Ipv4Addr`'s `Display` formats four numbers
/// through the formatting machinery. IPv6 through its `Display` (its
/// zero compression is not worth writing again).
fn write_endpoint(f: &mut fmt::Formatter<'_>, ip: IpAddr, port: u16) -> fmt::Result {
    let IpAddr::V4(v4) = ip else {
        return write!(f, "{ip}:{port}");
    };
    let mut text = Endpoint4::default();
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.decimal(u16::from(o));
    }
    text.push(b':');
    text.decimal(port);
    f.write_str(text.as_str())
}

/// The text of an IPv4 endpoint, at most `255.255.255.255:65535`.
#[derive(Default)]
struct Endpoint4 {
    buf: [u8; 21],
    len: usize,
}

impl Endpoint4 {
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn decimal(&mut self, v: u16) {
        let mut digits = [0u8; 5];
        let (mut k, mut v) = (0, v);
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in digits[..k].iter().rev() {
            self.push(d);
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, dots and a colon are written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Which endpoint of a new flow is the client (the `src` of its events).
///
/// - A SYN without ACK: its sender. A SYN+ACK: its receiver.
/// - Otherwise (TCP picked up midstream, and UDP): the endpoint with the
///   higher port is the client — servers listen on well-known or registered
///   ports, clients use ephemeral ones (32768+ on Linux, 49152+ elsewhere).
///   Equal ports: the first packet's sender.
pub fn client_of(p: &Decoded) -> Endpoint {
    let sender = (p.src, p.sport);
    let receiver = (p.dst, p.dport);
    if let Transport::Tcp(t) = p.transport
        && t.syn
    {
        return if t.ack { receiver } else { sender };
    }
    match p.sport.cmp(&p.dport) {
        std::cmp::Ordering::Less => receiver,
        std::cmp::Ordering::Greater => sender,
        std::cmp::Ordering::Equal => sender,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpMeta;

    fn pkt(sport: u16, dport: u16, syn: bool, ack: bool) -> Decoded {
        Decoded {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport,
            dport,
            transport: Transport::Tcp(TcpMeta {
                syn,
                ack,
                ..TcpMeta::default()
            }),
            ip_len: 40,
            frame_len: 54,
            tunnel: 0,
            vlan: [0, 0],
            ttl: 64,
            fragment_overlap: false,
            offloaded_checksum: false,
        }
    }

    #[test]
    fn key_is_symmetric() {
        let p = pkt(40000, 80, false, true);
        let mut q = p;
        std::mem::swap(&mut q.src, &mut q.dst);
        std::mem::swap(&mut q.sport, &mut q.dport);
        let (k1, a1) = FlowKey::of(&p);
        let (k2, a2) = FlowKey::of(&q);
        assert_eq!(k1, k2);
        assert_ne!(a1, a2);
        assert_eq!(k1.symmetric_hash(), k2.symmetric_hash());
        let mut v = p;
        v.vlan = [100, 0];
        let (k3, _) = FlowKey::of(&v);
        assert_ne!(k1, k3);
        assert_eq!(k3.to_string(), format!("{k1}|vlan:100.0"));
    }

    /// The hand-written IPv4 endpoints print as `Display` of the address
    /// and port (the flow's name, and so its ids, must not change).
    #[test]
    fn names_print_endpoints_as_display_does() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ips: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "1.20.199.9",
            "::1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let ports = [0u16, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535];
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ips.push(IpAddr::from((x as u32).to_be_bytes()));
        }
        for (i, &a) in ips.iter().enumerate() {
            let (b, pa, pb) = (
                ips[(i * 7 + 3) % ips.len()],
                ports[i % 10],
                ports[(i / 10) % 10],
            );
            let key = FlowKey {
                a: (a, pa),
                b: (b, pb),
                proto: Proto::Udp,
                vlan: [0, 0],
                tunnel: 0,
            };
            assert_eq!(key.to_string(), format!("udp|{a}:{pa}|{b}:{pb}"));
        }
    }

    #[test]
    fn client_heuristics() {
        let p = pkt(40000, 80, true, false);
        assert_eq!(client_of(&p).1, 40000);
        let p = pkt(80, 40000, true, true);
        assert_eq!(client_of(&p).1, 40000);
        // Midstream: the higher port is the client, whoever sends first.
        assert_eq!(client_of(&pkt(80, 40000, false, true)).1, 40000);
        assert_eq!(client_of(&pkt(40000, 80, false, true)).1, 40000);
    }
}
