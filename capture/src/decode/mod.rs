//! Packet decoding: link layer → IP → TCP/UDP, with IP defragmentation.
//!
//! Link headers that etherparse does not slice itself (Linux cooked v2, BSD
//! NULL/loopback) are peeled here by hand — they are a few fixed bytes each —
//! and the rest is etherparse's strict slicer (which handles 802.1Q/QinQ,
//! IPv4 options and IPv6 extension headers). Encapsulations (PPPoE, MPLS,
//! GRE/ERSPAN, IP in IP, VXLAN, GENEVE) are peeled in `tunnel`, at most
//! [`MAX_LAYERS`] deep, and the innermost packet is what is decoded. Every packet that does not give
//! a TCP or UDP payload is reported with a [`Skip`] reason, counted by the
//! caller as `decoder.<reason>`; nothing here panics on any input.
//! Checksums are validated here too (`checksum`): a packet the host would
//! have dropped is dropped before it reaches a flow.

mod checksum;
mod defrag;
mod plain;
mod tunnel;

pub use checksum::{ChecksumMode, Checksums, SAMPLE_PACKETS, Sample};
pub use tunnel::{GENEVE_PORT, MAX_DEPTH as MAX_LAYERS, VXLAN_PORT};

use crate::config::OsPolicies;
use checksum::Verdict;
use defrag::{Defrag, Key};
use etherparse::err::packet::SliceError;
use etherparse::{
    EtherType, Ipv6ExtensionSlice, LinkExtSlice, NetSlice, SlicedPacket, TcpSlice, TransportSlice,
    UdpSlice,
};
use std::net::IpAddr;

/// libpcap link types (`LINKTYPE_*`) the decoder understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: i32 = 0;
    /// Ethernet II (with optional 802.1Q / QinQ tags).
    pub const ETHERNET: i32 = 1;
    /// Raw IP on some BSDs (`DLT_RAW` = 12).
    pub const RAW_BSD: i32 = 12;
    /// Raw IP on OpenBSD (`DLT_RAW` = 14).
    pub const RAW_OPENBSD: i32 = 14;
    /// Raw IPv4 or IPv6.
    pub const RAW: i32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: i32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: i32 = 113;
    /// Raw IPv4.
    pub const IPV4: i32 = 228;
    /// Raw IPv6.
    pub const IPV6: i32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: i32 = 276;
}

/// Transport protocol of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP, with its header fields.
    Tcp(TcpMeta),
    /// UDP.
    Udp,
}

/// The TCP header fields the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpMeta {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when `ack` is set).
    pub ack_no: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Advertised window (unscaled).
    pub window: u16,
    /// URG flag.
    pub urg: bool,
    /// Urgent pointer (meaningful when `urg` is set).
    pub urgent_ptr: u16,
}

/// A decoded TCP or UDP packet: addresses, ports and transport header; the
/// payload is returned alongside (it may live in the defragmentation buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoded {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP or UDP.
    pub transport: Transport,
    /// Bytes at the IP layer (header + payload).
    pub ip_len: u32,
    /// Bytes of the packet as Suricata counts them for `flow.bytes_*`
    /// (`GET_PKT_LEN`): the captured frame, link layer included; for a
    /// tunnelled packet, what its innermost tunnel carries.
    pub frame_len: u32,
    /// Tunnels it was inside (GRE, IP in IP, VXLAN, GENEVE; 0: none).
    /// Part of the flow key, as Suricata's recursion level; the outer
    /// endpoints are not.
    pub tunnel: u8,
    /// 802.1Q VLAN ids, outer then inner (QinQ); 0 = no tag (a third tag
    /// is not kept). All zero when VLAN tracking is off.
    pub vlan: [u16; 2],
    /// IPv4 TTL or IPv6 hop limit as captured (for a reassembled
    /// datagram, that of the fragment that completed it).
    pub ttl: u8,
    /// Reassembled from IP fragments that overlapped with different bytes
    /// (Suricata's `ipv4.frag_overlap` / `ipv6.frag_overlap`).
    pub fragment_overlap: bool,
    /// A checksum was wrong but accepted: its sender looks like a host with
    /// checksum offload (`checksum_validation = auto`).
    pub offloaded_checksum: bool,
}

/// Why a packet was not decoded to TCP/UDP: the `decoder.<reason>` counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The capture's link type is not supported.
    UnsupportedLink,
    /// Not IP (ARP, LLDP, …).
    NotIp,
    /// IP, but neither TCP nor UDP (ICMP, GRE, ESP, …).
    OtherTransport,
    /// Cut short (snap length or a corrupt length field).
    Truncated,
    /// Malformed link-layer header.
    BadLink,
    /// Malformed IPv4/IPv6 header or extension header.
    BadIp,
    /// Malformed TCP header.
    BadTcp,
    /// Malformed UDP header.
    BadUdp,
    /// A fragment held until its datagram is complete (not an error).
    FragmentHeld,
    /// A fragment that could not be reassembled (bad offsets or lengths).
    BadFragment,
    /// Fragments dropped because the pending-fragment limit was reached.
    FragmentLimit,
    /// Wrong IPv4 header checksum.
    InvalidIpv4Checksum,
    /// Wrong TCP checksum.
    InvalidTcpChecksum,
    /// Wrong UDP checksum.
    InvalidUdpChecksum,
    /// Encapsulated more than [`MAX_LAYERS`] deep.
    TunnelTooDeep,
    /// Malformed PPPoE session header.
    BadPppoe,
    /// An MPLS payload that is neither IPv4 nor IPv6 (e.g. an Ethernet
    /// pseudowire).
    MplsUnknown,
    /// Malformed or unsupported GRE header (source routing, version 1).
    BadGre,
    /// Malformed ERSPAN header.
    BadErspan,
    /// Malformed VXLAN header.
    BadVxlan,
    /// Malformed or unsupported GENEVE header.
    BadGeneve,
}

impl Skip {
    /// Every reason, in counter order.
    pub const ALL: [Skip; 21] = [
        Skip::UnsupportedLink,
        Skip::NotIp,
        Skip::OtherTransport,
        Skip::Truncated,
        Skip::BadLink,
        Skip::BadIp,
        Skip::BadTcp,
        Skip::BadUdp,
        Skip::FragmentHeld,
        Skip::BadFragment,
        Skip::FragmentLimit,
        Skip::InvalidIpv4Checksum,
        Skip::InvalidTcpChecksum,
        Skip::InvalidUdpChecksum,
        Skip::TunnelTooDeep,
        Skip::BadPppoe,
        Skip::MplsUnknown,
        Skip::BadGre,
        Skip::BadErspan,
        Skip::BadVxlan,
        Skip::BadGeneve,
    ];

    /// The counter name under `decoder.`.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::UnsupportedLink => "unsupported_link",
            Skip::NotIp => "not_ip",
            Skip::OtherTransport => "other_transport",
            Skip::Truncated => "truncated",
            Skip::BadLink => "bad_link",
            Skip::BadIp => "bad_ip",
            Skip::BadTcp => "bad_tcp",
            Skip::BadUdp => "bad_udp",
            Skip::FragmentHeld => "fragment_held",
            Skip::BadFragment => "bad_fragment",
            Skip::FragmentLimit => "fragment_limit",
            Skip::InvalidIpv4Checksum => "invalid_ipv4_checksum",
            Skip::InvalidTcpChecksum => "invalid_tcp_checksum",
            Skip::InvalidUdpChecksum => "invalid_udp_checksum",
            Skip::TunnelTooDeep => "tunnel_too_deep",
            Skip::BadPppoe => "bad_pppoe",
            Skip::MplsUnknown => "mpls_unknown",
            Skip::BadGre => "bad_gre",
            Skip::BadErspan => "bad_erspan",
            Skip::BadVxlan => "bad_vxlan",
            Skip::BadGeneve => "bad_geneve",
        }
    }

    /// Index into a counter array of [`Skip::ALL`] length.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What [`Decoder::peek_unchecked`] found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<'a> {
    /// An unfragmented TCP or UDP packet, and its payload.
    Packet(Decoded, &'a [u8]),
    /// An IP fragment: what it belongs to is known once its datagram is
    /// reassembled ([`Decoder::decode`]).
    Fragment,
}

/// An unfragmented packet, or the addresses of a fragment.
enum Split<'a> {
    Whole(Decoded, &'a [u8], Verdict, Sums<'a>),
    Fragment {
        src: IpAddr,
        dst: IpAddr,
        ip_len: u32,
        ttl: u8,
        vlan: [u16; 2],
        verdict: Verdict,
    },
}

/// A stateful decoder (it holds IP fragments until their datagram is whole).
pub struct Decoder {
    defrag: Defrag,
    /// Receiving hosts' overlap policies (for overlapping fragments).
    policies: OsPolicies,
    /// Scratch for a reassembled datagram's transport bytes.
    datagram: Vec<u8>,
    max_pending_fragments: usize,
    fragment_timeout_micros: i64,
    last_sweep: i64,
    track_vlan: bool,
    checksums: Checksums,
    /// Fragmented datagrams reassembled.
    pub reassembled_datagrams: u64,
    /// Of those, datagrams whose fragments overlapped with different bytes.
    pub overlapping_datagrams: u64,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("pending_fragments", &self.defrag.held)
            .finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(10_000, 30)
    }
}

impl Decoder {
    /// A decoder holding at most `max_pending_fragments` fragments, each for
    /// at most `fragment_timeout_secs`; it validates every checksum.
    pub fn new(max_pending_fragments: usize, fragment_timeout_secs: u64) -> Self {
        Decoder {
            defrag: Defrag::default(),
            policies: OsPolicies::default(),
            datagram: Vec::new(),
            max_pending_fragments,
            fragment_timeout_micros: (fragment_timeout_secs as i64).saturating_mul(1_000_000),
            last_sweep: i64::MIN,
            track_vlan: true,
            checksums: Checksums::default(),
            reassembled_datagrams: 0,
            overlapping_datagrams: 0,
        }
    }

    /// Whether VLAN ids are reported in [`Decoded::vlan`] (and so become
    /// part of the flow key); on by default.
    pub fn track_vlan(mut self, on: bool) -> Self {
        self.track_vlan = on;
        self
    }

    /// The checksum policy (builder style).
    pub fn checksums(mut self, c: Checksums) -> Self {
        self.checksums = c;
        self
    }

    /// The receiving hosts' overlap policies, for overlapping IP fragments
    /// (builder style; default `bsd` for every host).
    pub(crate) fn os_policies(mut self, p: OsPolicies) -> Self {
        self.policies = p;
        self
    }

    /// Replace the checksum policy (a new input begins).
    pub fn set_checksums(&mut self, c: Checksums) {
        self.checksums = c;
    }

    fn vlan_of(&self, p: &SlicedPacket<'_>) -> [u16; 2] {
        let mut ids = [0u16; 2];
        if self.track_vlan && !p.link_exts.is_empty() {
            let tags = p.link_exts.iter().filter_map(|e| match e {
                LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
                _ => None,
            });
            for (slot, id) in ids.iter_mut().zip(tags) {
                *slot = id;
            }
        }
        ids
    }

    /// Decode one captured frame of link type `link` seen at `ts` (µs).
    pub fn decode<'a>(
        &'a mut self,
        link: i32,
        ts: i64,
        frame: &'a [u8],
    ) -> Result<(Decoded, &'a [u8]), Skip> {
        if let Some(p) = plain::peek(link, frame, self.track_vlan) {
            let check = self.checksums.validates();
            let mut d = p.decoded;
            let verdict = if check {
                sums_verdict(&d, p.ip_header, p.sums.l4)
            } else {
                Verdict::Good
            };
            self.checksums.learn(d.src, verdict, !p.payload.is_empty());
            d.offloaded_checksum = judge(&self.checksums, d.src, verdict)?;
            return Ok((d, p.payload));
        }
        let sliced = slice_link(link, frame)?;
        let stamp = sliced.stamp();
        // By reference: `SlicedPacket` is ~300 bytes, and a move per packet
        // was a measurable share of the worker's copies.
        let (mut d, payload) = self.transport(&sliced.packet, ts)?;
        stamp.apply(&mut d);
        Ok((d, payload))
    }

    /// What `frame` holds, without reassembling IP fragments and without
    /// computing any checksum: the decoder's state is left alone, so any
    /// thread may ask, and asking twice gives the same answer. An
    /// unfragmented packet decodes exactly as [`Decoder::decode`] would
    /// decode it (`offloaded_checksum` aside) and comes with the bytes its
    /// checksums cover, for [`verify`] to check where the packet is
    /// processed. (Several offline workers: the walk of the shared reading
    /// finds each packet's owner with it and the owner decodes its own
    /// packets again; neither reads a payload for a checksum on the
    /// walking core.) Plain frames take the hand-written path (`plain`).
    pub fn peek_unchecked<'a>(
        &self,
        link: i32,
        frame: &'a [u8],
    ) -> Result<(Peek<'a>, Sums<'a>), Skip> {
        if let Some(p) = plain::peek(link, frame, self.track_vlan) {
            return Ok((Peek::Packet(p.decoded, p.payload), p.sums));
        }
        self.peek_sliced(link, frame)
    }

    /// The flow hash ([`crate::flow::FlowKey::symmetric_hash`]) of a plain
    /// frame's packet (`decode::plain`: exactly the frames
    /// [`Decoder::peek_unchecked`] decodes by hand), read from its header
    /// bytes; `None` for any other frame, which the caller peeks instead.
    /// The shared reading's walk finds each record's worker with it.
    #[inline]
    pub fn plain_flow_hash(&self, link: i32, frame: &[u8]) -> Option<u64> {
        plain::flow_hash(link, frame, self.track_vlan)
    }

    /// [`Decoder::peek_unchecked`] through etherparse's slicing, for any
    /// frame.
    fn peek_sliced<'a>(&self, link: i32, frame: &'a [u8]) -> Result<(Peek<'a>, Sums<'a>), Skip> {
        let sliced = slice_link(link, frame)?;
        Ok(match self.split(&sliced.packet, false)? {
            Split::Whole(mut d, payload, _, sums) => {
                sliced.stamp().apply(&mut d);
                (Peek::Packet(d, payload), sums)
            }
            Split::Fragment { .. } => (Peek::Fragment, Sums::default()),
        })
    }

    fn transport<'a>(
        &'a mut self,
        p: &SlicedPacket<'a>,
        ts: i64,
    ) -> Result<(Decoded, &'a [u8]), Skip> {
        match self.split(p, self.checksums.validates())? {
            Split::Whole(mut d, payload, verdict, _) => {
                self.checksums.learn(d.src, verdict, !payload.is_empty());
                d.offloaded_checksum = judge(&self.checksums, d.src, verdict)?;
                Ok((d, payload))
            }
            Split::Fragment {
                src,
                dst,
                ip_len,
                ttl,
                vlan,
                verdict,
            } => {
                let offloaded = judge(&self.checksums, src, verdict)?;
                let (mut d, payload) = self.fragment(p, ts, src, dst, ip_len, vlan)?;
                d.offloaded_checksum |= offloaded;
                d.ttl = ttl;
                Ok((d, payload))
            }
        }
    }

    /// Decode an unfragmented packet (its checksums checked when `check`);
    /// a fragment is left to the caller (its IPv4 header checksum checked).
    fn split<'a>(&self, p: &SlicedPacket<'a>, check: bool) -> Result<Split<'a>, Skip> {
        let (src, dst, ip_len, ttl, fragmented, ip_header) = match &p.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    u32::from(h.total_len()),
                    h.ttl(),
                    v4.is_payload_fragmented(),
                    Some(h),
                )
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    40 + u32::from(h.payload_length()),
                    h.hop_limit(),
                    v6.is_payload_fragmented(),
                    None,
                )
            }
            Some(NetSlice::Arp(_)) | None => return Err(Skip::NotIp),
        };
        let header_ok = !check || ip_header.is_none_or(|h| checksum::ipv4_header_ok(h.slice()));
        let vlan = self.vlan_of(p);
        if fragmented {
            return Ok(Split::Fragment {
                src,
                dst,
                ip_len,
                ttl,
                vlan,
                verdict: if header_ok {
                    Verdict::Good
                } else {
                    Verdict::BadIpv4
                },
            });
        }
        let (transport, sport, dport, payload, l4) = match &p.transport {
            Some(TransportSlice::Tcp(t)) => (
                Transport::Tcp(tcp_meta(t)),
                t.source_port(),
                t.destination_port(),
                t.payload(),
                t.slice(),
            ),
            Some(TransportSlice::Udp(u)) => (
                Transport::Udp,
                u.source_port(),
                u.destination_port(),
                u.payload(),
                u.slice(),
            ),
            Some(_) => return Err(Skip::OtherTransport),
            None => {
                // etherparse leaves TCP/UDP unsliced when its header is cut.
                let number = match &p.net {
                    Some(NetSlice::Ipv4(v4)) => v4.payload().ip_number,
                    Some(NetSlice::Ipv6(v6)) => v6.payload().ip_number,
                    _ => return Err(Skip::NotIp),
                };
                return Err(match number {
                    etherparse::IpNumber::TCP | etherparse::IpNumber::UDP => Skip::Truncated,
                    _ => Skip::OtherTransport,
                });
            }
        };
        let sums = Sums {
            l4,
            ip_header: ip_header.map_or((0, 0), |h| {
                let at = (l4.as_ptr() as usize).wrapping_sub(h.slice().as_ptr() as usize);
                (at, h.slice().len())
            }),
        };
        let verdict = if !header_ok {
            Verdict::BadIpv4
        } else if check {
            l4_verdict(src, dst, transport, l4)
        } else {
            Verdict::Good
        };
        let d = Decoded {
            src,
            dst,
            sport,
            dport,
            transport,
            ip_len,
            frame_len: ip_len,
            tunnel: 0,
            vlan,
            ttl,
            fragment_overlap: false,
            offloaded_checksum: false,
        };
        Ok(Split::Whole(d, payload, verdict, sums))
    }

    fn fragment<'a>(
        &'a mut self,
        p: &SlicedPacket<'_>,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        ip_len: u32,
        vlan: [u16; 2],
    ) -> Result<(Decoded, &'a [u8]), Skip> {
        // Expire stale datagrams at most once a second of packet time.
        if ts.saturating_sub(self.last_sweep) >= 1_000_000 {
            self.last_sweep = ts;
            self.defrag
                .expire(ts.saturating_sub(self.fragment_timeout_micros));
        }
        if self.defrag.held >= self.max_pending_fragments {
            self.defrag.clear();
            return Err(Skip::FragmentLimit);
        }
        let (key, offset, more, data) = fragment_of(p, src, dst, vlan).ok_or(Skip::BadFragment)?;
        let policy = self.policies.of(dst);
        match self.defrag.add(key, ts, offset, more, data, policy) {
            Ok(None) => Err(Skip::FragmentHeld),
            Err(_) => Err(Skip::BadFragment),
            Ok(Some(whole)) => {
                self.reassembled_datagrams += 1;
                self.overlapping_datagrams += u64::from(whole.overlap_diff);
                let fragment_overlap = whole.overlap_diff;
                self.datagram = whole.bytes;
                let number = etherparse::IpNumber(key.proto);
                let bytes = &self.datagram[..];
                let check = self.checksums.validates();
                let (transport, sport, dport, payload, verdict) = match number {
                    etherparse::IpNumber::TCP => {
                        let t = TcpSlice::from_slice(bytes).map_err(|_| Skip::BadTcp)?;
                        let ok = !check || checksum::l4_ok(src, dst, 6, bytes);
                        (
                            Transport::Tcp(tcp_meta(&t)),
                            t.source_port(),
                            t.destination_port(),
                            t.payload(),
                            if ok { Verdict::Good } else { Verdict::BadTcp },
                        )
                    }
                    etherparse::IpNumber::UDP => {
                        let u = UdpSlice::from_slice(bytes).map_err(|_| Skip::BadUdp)?;
                        let ok = !check
                            || !checksum::udp_has_checksum(src.is_ipv6(), bytes)
                            || checksum::l4_ok(src, dst, 17, bytes);
                        (
                            Transport::Udp,
                            u.source_port(),
                            u.destination_port(),
                            u.payload(),
                            if ok { Verdict::Good } else { Verdict::BadUdp },
                        )
                    }
                    _ => return Err(Skip::OtherTransport),
                };
                let offloaded_checksum = judge(&self.checksums, src, verdict)?;
                let d = Decoded {
                    src,
                    dst,
                    sport,
                    dport,
                    transport,
                    // The reassembled datagram's size, not the last fragment's.
                    ip_len: ip_len.max(bytes.len() as u32),
                    frame_len: ip_len.max(bytes.len() as u32),
                    tunnel: 0,
                    vlan,
                    ttl: 0,
                    fragment_overlap,
                    offloaded_checksum,
                };
                Ok((d, payload))
            }
        }
    }
}

/// The checksum policy `mode` gives for a capture whose first frames are
/// `frames` (link type, bytes): `auto` is decided on the first
/// [`SAMPLE_PACKETS`] packets with a checksum among them.
pub fn sample_checksums<'f>(
    mode: ChecksumMode,
    frames: impl Iterator<Item = (i32, &'f [u8])>,
) -> Checksums {
    if mode != ChecksumMode::Auto {
        return Checksums::new(mode);
    }
    let decoder = Decoder::default();
    let mut sample = Sample::default();
    for (link, frame) in frames {
        let Ok(sliced) = slice_link(link, frame) else {
            continue;
        };
        if let Ok(Split::Whole(d, payload, verdict, _)) = decoder.split(&sliced.packet, true)
            && !sample.add(d.src, verdict == Verdict::Good, !payload.is_empty())
        {
            break;
        }
    }
    sample.decide()
}

/// The datagram key, byte offset, more-fragments flag and bytes of IP
/// fragment `p` from `src` to `dst`.
fn fragment_of<'p>(
    p: &SlicedPacket<'p>,
    src: IpAddr,
    dst: IpAddr,
    vlan: [u16; 2],
) -> Option<(Key, u32, bool, &'p [u8])> {
    let (id, offset, more, payload) = match &p.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                u32::from(h.identification()),
                h.fragments_offset(),
                h.more_fragments(),
                v4.payload(),
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let f = v6.extensions().clone().into_iter().find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            })?;
            (
                f.identification(),
                f.fragment_offset(),
                f.more_fragments(),
                v6.payload(),
            )
        }
        _ => return None,
    };
    let key = Key {
        src,
        dst,
        id,
        proto: payload.ip_number.0,
        vlan,
    };
    Some((key, u32::from(offset.byte_offset()), more, payload.payload))
}

/// The bytes a packet's checksums cover (see [`Decoder::peek_unchecked`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums<'a> {
    /// The TCP or UDP header and payload.
    pub l4: &'a [u8],
    /// Where the IPv4 header lies: how many bytes before `l4` it starts,
    /// and its length with options (`(0, 0)` for IPv6: no header checksum).
    /// A place, not a slice: etherparse's header slice borrows the parsed
    /// packet, not the frame, so it cannot outlive [`Decoder::split`].
    pub ip_header: (usize, usize),
}

impl<'a> Sums<'a> {
    /// The IPv4 header (empty for IPv6) in `frame`, the frame `l4` was
    /// decoded from.
    pub fn ip_header_in(&self, frame: &'a [u8]) -> &'a [u8] {
        let (before, len) = self.ip_header;
        if len == 0 {
            return &[];
        }
        let l4 = (self.l4.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
        l4.checked_sub(before)
            .and_then(|at| frame.get(at..at + len))
            .unwrap_or_default()
    }
}

/// The transport checksum's verdict over `l4` (header and payload).
fn l4_verdict(src: IpAddr, dst: IpAddr, transport: Transport, l4: &[u8]) -> Verdict {
    let ok = match transport {
        Transport::Tcp(_) => checksum::l4_ok(src, dst, 6, l4),
        Transport::Udp => {
            !checksum::udp_has_checksum(src.is_ipv6(), l4) || checksum::l4_ok(src, dst, 17, l4)
        }
    };
    match (ok, transport) {
        (true, _) => Verdict::Good,
        (false, Transport::Tcp(_)) => Verdict::BadTcp,
        (false, Transport::Udp) => Verdict::BadUdp,
    }
}

/// Check the checksums of `d`, found by [`Decoder::peek_unchecked`], over
/// its IPv4 header (empty for IPv6) and its transport bytes `l4`, under
/// `checksums`, as [`Decoder::decode`] judges them once the policy is no
/// longer learning: `Ok(true)` for wrong checksums of an offloaded sender
/// (the packet's `offloaded_checksum`), `Ok(false)` for right ones or none
/// checked, or the skip reason.
pub fn verify(
    checksums: &Checksums,
    d: &Decoded,
    ip_header: &[u8],
    l4: &[u8],
) -> Result<bool, Skip> {
    if !checksums.validates() {
        return Ok(false);
    }
    judge(checksums, d.src, sums_verdict(d, ip_header, l4))
}

/// The checksums' verdict on `d`'s IPv4 header (empty for IPv6) and its
/// transport bytes `l4`.
fn sums_verdict(d: &Decoded, ip_header: &[u8], l4: &[u8]) -> Verdict {
    if !ip_header.is_empty() && !checksum::ipv4_header_ok(ip_header) {
        Verdict::BadIpv4
    } else {
        l4_verdict(d.src, d.dst, d.transport, l4)
    }
}

/// Whether a packet of `src` with checksum `verdict` goes on: `Ok(false)`
/// when its checksums are right (or not checked), `Ok(true)` when wrong but
/// its sender is offloaded, else the skip reason.
fn judge(checksums: &Checksums, src: IpAddr, verdict: Verdict) -> Result<bool, Skip> {
    match verdict {
        Verdict::Good => Ok(false),
        _ if checksums.offloaded(src) => Ok(true),
        Verdict::BadIpv4 => Err(Skip::InvalidIpv4Checksum),
        Verdict::BadTcp => Err(Skip::InvalidTcpChecksum),
        Verdict::BadUdp => Err(Skip::InvalidUdpChecksum),
    }
}

fn tcp_meta(t: &TcpSlice<'_>) -> TcpMeta {
    TcpMeta {
        seq: t.sequence_number(),
        ack_no: t.acknowledgment_number(),
        syn: t.syn(),
        ack: t.ack(),
        fin: t.fin(),
        rst: t.rst(),
        window: t.window_size(),
        urg: t.urg(),
        urgent_ptr: t.urgent_pointer(),
    }
}

fn slice_err(e: SliceError) -> Skip {
    match e {
        SliceError::Len(_) => Skip::Truncated,
        SliceError::LinuxSll(_) | SliceError::Macsec(_) => Skip::BadLink,
        SliceError::Ip(_) | SliceError::Ipv4(_) | SliceError::Ipv6(_) => Skip::BadIp,
        SliceError::Ipv4Exts(_) | SliceError::Ipv6Exts(_) => Skip::BadIp,
        SliceError::Tcp(_) => Skip::BadTcp,
    }
}

/// A frame sliced down to its innermost packet.
struct Sliced<'a> {
    packet: SlicedPacket<'a>,
    /// Tunnels peeled.
    tunnel: u8,
    /// The packet's length as Suricata counts it (see [`Decoded::frame_len`]).
    len: usize,
}

/// What slicing learnt that a packet decoded from the slices carries.
#[derive(Clone, Copy)]
struct Stamp {
    /// Bytes in front of the IP header (link layers, or a tunnel's inner
    /// Ethernet header), and any trailer.
    headers: u32,
    tunnel: u8,
}

impl Sliced<'_> {
    fn stamp(&self) -> Stamp {
        let ip = match &self.packet.net {
            Some(NetSlice::Ipv4(v4)) => v4.header().total_len().into(),
            Some(NetSlice::Ipv6(v6)) => 40 + u32::from(v6.header().payload_length()),
            _ => 0,
        };
        Stamp {
            headers: u32::try_from(self.len)
                .unwrap_or(u32::MAX)
                .saturating_sub(ip),
            tunnel: self.tunnel,
        }
    }
}

impl Stamp {
    /// Put it into `d`; a packet reassembled from fragments counts its
    /// whole datagram as well as the headers in front of its last fragment.
    fn apply(self, d: &mut Decoded) {
        d.frame_len = self.headers.saturating_add(d.ip_len);
        d.tunnel = self.tunnel;
    }
}

/// Peel the link layer and every encapsulation (at most [`MAX_LAYERS`]),
/// and slice the innermost packet.
fn slice_link(link: i32, frame: &[u8]) -> Result<Sliced<'_>, Skip> {
    let mut s = Sliced {
        packet: slice_outer(link, frame)?,
        tunnel: 0,
        len: frame.len(),
    };
    let mut layers = 0;
    while let Some(layer) = tunnel::inner(&s.packet)? {
        layers += 1;
        if layers > tunnel::MAX_DEPTH {
            return Err(Skip::TunnelTooDeep);
        }
        if layer.tunnel {
            s.tunnel += 1;
            s.len = layer.len;
        }
        s.packet = layer.inner.slice()?;
    }
    Ok(s)
}

/// Peel the capture's link layer and slice the rest.
fn slice_outer(link: i32, frame: &[u8]) -> Result<SlicedPacket<'_>, Skip> {
    let p = match link {
        linktype::ETHERNET => SlicedPacket::from_ethernet(frame),
        linktype::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        linktype::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1)
            // addrlen(1) addr(8): 20 bytes.
            let proto = frame.get(0..2).ok_or(Skip::Truncated)?;
            let rest = frame.get(20..).ok_or(Skip::Truncated)?;
            let et = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            SlicedPacket::from_ether_type(et, rest)
        }
        linktype::RAW
        | linktype::RAW_BSD
        | linktype::RAW_OPENBSD
        | linktype::IPV4
        | linktype::IPV6 => SlicedPacket::from_ip(frame),
        linktype::NULL | linktype::LOOP => {
            let fam = frame.get(0..4).ok_or(Skip::Truncated)?;
            let fam = [fam[0], fam[1], fam[2], fam[3]];
            // NULL is in the writer's byte order, LOOP in network order:
            // accept either order for both.
            let family = match (u32::from_le_bytes(fam), u32::from_be_bytes(fam)) {
                (f, _) if f < 256 => f,
                (_, f) => f,
            };
            match family {
                // AF_INET everywhere; AF_INET6 on BSDs (24), FreeBSD (28),
                // macOS (30) and Linux (10).
                2 | 10 | 24 | 28 | 30 => SlicedPacket::from_ip(&frame[4..]),
                _ => return Err(Skip::NotIp),
            }
        }
        _ => return Err(Skip::UnsupportedLink),
    };
    p.map_err(slice_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(7.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 65535)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn decodes_vlan_tcp() {
        let f = tcp_frame(b"hello");
        let mut d = Decoder::default();
        let (p, payload) = d.decode(linktype::ETHERNET, 0, &f).unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(p.sport, 40000);
        assert_eq!(p.dport, 80);
        match p.transport {
            Transport::Tcp(t) => {
                assert!(t.syn);
                assert_eq!(t.seq, 1000);
            }
            Transport::Udp => panic!("not udp"),
        }
    }

    #[test]
    fn vlan_ids_outer_then_inner_unless_off() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(200.try_into().unwrap(), 300.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5000, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"q").unwrap();
        let (p, _) = Decoder::default()
            .decode(linktype::ETHERNET, 0, &f)
            .unwrap();
        assert_eq!(p.vlan, [200, 300]);
        let (p, _) = Decoder::default()
            .track_vlan(false)
            .decode(linktype::ETHERNET, 0, &f)
            .unwrap();
        assert_eq!(p.vlan, [0, 0]);
        let f = tcp_frame(b"x");
        let (p, _) = Decoder::default()
            .decode(linktype::ETHERNET, 0, &f)
            .unwrap();
        assert_eq!(p.vlan, [7, 0]);
    }

    #[test]
    fn truncated_is_counted_not_fatal() {
        let f = tcp_frame(b"hello world");
        let mut d = Decoder::default();
        for n in 0..f.len() {
            assert!(d.decode(linktype::ETHERNET, 0, &f[..n]).is_err());
        }
        assert_eq!(d.decode(999, 0, &f), Err(Skip::UnsupportedLink));
    }

    /// An Ethernet frame of a UDP packet wrapped in `depth` IPv4-in-IPv4
    /// tunnels.
    fn ip_in_ip(depth: usize) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(5000, 53);
        let mut ip = Vec::new();
        b.write(&mut ip, b"q").unwrap();
        for _ in 0..depth {
            let mut h = etherparse::Ipv4Header::new(
                ip.len() as u16,
                64,
                etherparse::IpNumber::IPV4,
                [192, 0, 2, 1],
                [192, 0, 2, 2],
            )
            .unwrap();
            h.header_checksum = h.calc_header_checksum();
            ip = [h.to_bytes().as_slice(), &ip].concat();
        }
        let eth = etherparse::Ethernet2Header {
            source: [1; 6],
            destination: [2; 6],
            ether_type: EtherType::IPV4,
        };
        [eth.to_bytes().as_slice(), &ip].concat()
    }

    #[test]
    fn nesting_is_bounded_and_counted() {
        let inner_len = ip_in_ip(0).len() as u32 - 14;
        for depth in 1..=usize::from(MAX_LAYERS) {
            let f = ip_in_ip(depth);
            let mut d = Decoder::default();
            let (p, payload) = d.decode(linktype::ETHERNET, 0, &f).unwrap();
            assert_eq!(payload, b"q");
            assert_eq!(p.src, IpAddr::from([10, 0, 0, 1]));
            assert_eq!(usize::from(p.tunnel), depth);
            // Suricata's length of a tunnelled packet: what the innermost
            // tunnel carries.
            assert_eq!(p.frame_len, inner_len);
        }
        let f = ip_in_ip(usize::from(MAX_LAYERS) + 1);
        assert_eq!(
            Decoder::default().decode(linktype::ETHERNET, 0, &f),
            Err(Skip::TunnelTooDeep)
        );
        let (p, _) = Decoder::default()
            .decode(linktype::ETHERNET, 0, &ip_in_ip(0))
            .unwrap();
        assert_eq!((p.tunnel, p.frame_len), (0, inner_len + 14));
    }

    #[test]
    fn null_loopback_both_orders() {
        let b = PacketBuilder::ipv6([1; 16], [2; 16], 64).udp(53, 5353);
        let mut ip = Vec::new();
        b.write(&mut ip, b"q").unwrap();
        for fam in [30u32.to_le_bytes(), 30u32.to_be_bytes()] {
            let mut f = fam.to_vec();
            f.extend_from_slice(&ip);
            let mut d = Decoder::default();
            let (p, payload) = d.decode(linktype::NULL, 0, &f).unwrap();
            assert_eq!(payload, b"q");
            assert_eq!(p.transport, Transport::Udp);
        }
    }
}
