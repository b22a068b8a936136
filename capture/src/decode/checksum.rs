//! IPv4 header, TCP and UDP checksum validation, and the `auto` mode that
//! tells checksum-offloaded captures from forged packets.
//!
//! A packet whose checksum is wrong never reached the host's TCP stack
//! intact: the host dropped it. A sensor that accepts it sees bytes the host
//! never saw — the classic evasion is a copy of every segment with junk
//! bytes and a wrong checksum sent just before the real one. So, as in
//! Suricata (`stream.checksum-validation`), such packets are dropped before
//! reassembly and counted per reason (`decoder.invalid_ipv4_checksum`,
//! `invalid_tcp_checksum`, `invalid_udp_checksum`).
//!
//! A capture taken on a host whose NIC computes checksums (offload) holds
//! that host's outgoing packets with the checksum still unset. Suricata's
//! `auto` mode looks at the first 1000 packets and turns validation off
//! altogether when more than a tenth are bad — which the forged-copy
//! evasion (half the packets bad) would switch off too. Here `auto` looks
//! at the same sample but judges each *sender*: offload leaves every data
//! packet of the offloading host bad (the few packets its kernel sums in
//! software — resets, some ACKs — are good), while a forger's real data
//! packets must be good to reach the host. A sender with bad packets and
//! no good packet carrying payload in the sample is taken as offloaded,
//! and its bad packets are accepted (`decoder.checksum_offloaded`); every
//! other bad packet is dropped. Offline the sample is taken from the start
//! of each file before it is replayed, so nothing is lost. Live (and from
//! a pipe), while the sample is gathered a sender counts as offloaded
//! until it sends a good data packet — a forger's very first junk segment
//! can pass in that window, nothing after its first real one — and the
//! decision is fixed when the sample is complete.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Packets with a checksum looked at to decide `auto`.
pub const SAMPLE_PACKETS: u32 = 1000;

/// The `checksum_validation` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumMode {
    /// Validate every packet; drop those with a wrong checksum.
    Yes,
    /// Validate nothing (trust the capture).
    No,
    /// Validate, except for senders whose packets at the start of the
    /// capture all had wrong checksums (checksum offload on the capturing
    /// host).
    #[default]
    Auto,
}

/// What a packet's checksums say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every checksum present is right.
    Good,
    /// The IPv4 header checksum is wrong.
    BadIpv4,
    /// The TCP checksum is wrong.
    BadTcp,
    /// The UDP checksum is wrong.
    BadUdp,
}

/// The checksum policy of one input: validate or not, and the senders
/// taken as offloaded.
#[derive(Clone, Debug)]
pub struct Checksums {
    validate: bool,
    /// Senders whose bad checksums are accepted, sorted.
    offloaded: Arc<[IpAddr]>,
    /// Live `auto`: the sample still being gathered.
    learning: Option<Box<Sample>>,
}

impl Default for Checksums {
    fn default() -> Self {
        Checksums::new(ChecksumMode::Yes)
    }
}

/// Per sender at the start of an input: good packets with payload, and
/// bad packets.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    packets: u32,
    senders: HashMap<IpAddr, (u32, u32)>,
}

impl Sample {
    /// Count one packet of `src` (`data`: it carries payload); false once
    /// the sample is complete.
    pub(crate) fn add(&mut self, src: IpAddr, good: bool, data: bool) -> bool {
        if self.packets >= SAMPLE_PACKETS {
            return false;
        }
        self.packets += 1;
        let e = self.senders.entry(src).or_default();
        if !good {
            e.1 += 1;
        } else if data {
            e.0 += 1;
        }
        self.packets < SAMPLE_PACKETS
    }

    /// Whether `src` looks offloaded so far: it sent no good data packet.
    fn offloaded(&self, src: IpAddr) -> bool {
        self.senders.get(&src).is_some_and(|(good, _)| *good == 0)
    }

    /// The policy this sample gives: senders with bad packets and no good
    /// data packet are offloaded.
    pub fn decide(&self) -> Checksums {
        let mut offloaded: Vec<IpAddr> = self
            .senders
            .iter()
            .filter(|(_, (good, bad))| *good == 0 && *bad > 0)
            .map(|(ip, _)| *ip)
            .collect();
        offloaded.sort_unstable();
        if !offloaded.is_empty() {
            tracing::info!(
                senders = offloaded.len(),
                "checksum validation off for senders whose packets all have bad checksums (offload)"
            );
        }
        Checksums {
            validate: true,
            offloaded: offloaded.into(),
            learning: None,
        }
    }
}

impl Checksums {
    /// The policy of `mode` before any packet is seen: `auto` starts
    /// learning (strict while it does).
    pub fn new(mode: ChecksumMode) -> Self {
        Checksums {
            validate: mode != ChecksumMode::No,
            offloaded: Arc::from([]),
            learning: (mode == ChecksumMode::Auto).then(Box::default),
        }
    }

    /// Whether checksums are computed at all.
    pub(crate) fn validates(&self) -> bool {
        self.validate
    }

    /// Whether the `auto` sample is still being gathered.
    pub fn learning(&self) -> bool {
        self.learning.is_some()
    }

    /// Learn from one packet (live `auto`; `data`: it carries payload):
    /// once the sample is complete the policy is decided.
    pub(crate) fn learn(&mut self, src: IpAddr, verdict: Verdict, data: bool) {
        if let Some(s) = &mut self.learning
            && !s.add(src, verdict == Verdict::Good, data)
        {
            *self = s.decide();
        }
    }

    /// Whether a packet of `src` with a bad checksum is accepted
    /// (offloaded sender; while learning, a sender with no good data
    /// packet yet).
    pub(crate) fn offloaded(&self, src: IpAddr) -> bool {
        match &self.learning {
            Some(s) => s.offloaded(src),
            None => self.offloaded.binary_search(&src).is_ok(),
        }
    }
}

/// One's-complement sum of `data` (as big-endian 16-bit words, an odd last
/// byte padded with zero) added to `acc`, unfolded.
///
/// Summed in native little-endian 8-byte words and byte-swapped once at the
/// end (the sum does not depend on byte order: RFC 1071 section 2 (B)),
/// which is several times faster than big-endian words on every payload
/// byte of every packet.
fn sum(acc: u64, data: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // Two 32-bit halves: 2^33 per word, far from overflowing for any
        // packet (the carries are folded below).
        s += (w & 0xffff_ffff) + (w >> 32);
    }
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        s += u64::from(u16::from_le_bytes([p[0], p[1]]));
    }
    if let [b] = pairs.remainder() {
        s += u64::from(*b);
    }
    acc + u64::from(fold(s).swap_bytes())
}

/// Fold an unfolded sum to 16 bits.
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Whether an IPv4 header (with options, checksum field included) sums right.
pub(crate) fn ipv4_header_ok(header: &[u8]) -> bool {
    fold(sum(0, header)) == 0xffff
}

/// Whether a TCP segment or UDP datagram (`l4`: header and payload, checksum
/// field included) of IP protocol `proto` between `src` and `dst` sums right
/// with its pseudo-header.
pub(crate) fn l4_ok(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> bool {
    let len = l4.len() as u64;
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum(sum(0, &s.octets()), &d.octets()),
        _ => return false,
    };
    fold(sum(acc + u64::from(proto) + len, l4)) == 0xffff
}

/// Whether a UDP datagram of `l4` bytes carries a checksum: 0 means none
/// over IPv4 (RFC 768); over IPv6 it is mandatory (RFC 8200).
pub(crate) fn udp_has_checksum(v6: bool, l4: &[u8]) -> bool {
    v6 || l4.get(6..8).is_some_and(|c| c != [0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 7, 1000)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    #[test]
    fn right_sums_pass_and_any_flipped_bit_fails() {
        for payload in [&b""[..], b"x", b"hello world", &[0u8; 1500]] {
            let p = ipv4_tcp(payload);
            let (ip, l4) = p.split_at(20);
            let s = IpAddr::from([10, 0, 0, 1]);
            let d = IpAddr::from([10, 0, 0, 2]);
            assert!(ipv4_header_ok(ip));
            assert!(l4_ok(s, d, 6, l4));
            for bit in [0, 7, 8 * 17 + 3, l4.len() * 8 - 1] {
                let mut bad = l4.to_vec();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!l4_ok(s, d, 6, &bad), "bit {bit}");
            }
            let mut bad = ip.to_vec();
            bad[8] ^= 1;
            assert!(!ipv4_header_ok(&bad));
        }
        let mut v = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .udp(53, 5353)
            .write(&mut v, b"abc")
            .unwrap();
        assert!(l4_ok(
            IpAddr::from([1u8; 16]),
            IpAddr::from([2u8; 16]),
            17,
            &v[40..]
        ));
    }

    #[test]
    fn auto_offloads_only_senders_without_good_data() {
        let host = IpAddr::from([10, 0, 0, 1]);
        let peer = IpAddr::from([10, 0, 0, 2]);
        let forger = IpAddr::from([10, 0, 0, 3]);
        let mut c = Checksums::new(ChecksumMode::Auto);
        let mut i = 0;
        while c.learning() {
            // The offloading host's resets are summed in software.
            c.learn(host, [Verdict::BadTcp, Verdict::Good][i % 2], i % 2 == 0);
            c.learn(peer, Verdict::Good, true);
            // The forger's first junk passes while learning, not later ones.
            c.learn(forger, Verdict::BadTcp, true);
            assert_eq!(c.offloaded(forger), i == 0, "{i}");
            c.learn(forger, Verdict::Good, true);
            i += 1;
        }
        assert!(i * 4 >= SAMPLE_PACKETS as usize);
        assert!(c.offloaded(host));
        assert!(!c.offloaded(peer) && !c.offloaded(forger));
        assert!(!Checksums::new(ChecksumMode::Yes).offloaded(host));
        assert!(!Checksums::new(ChecksumMode::No).validates());
    }
}
