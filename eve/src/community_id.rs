//! Community ID v1 flow hashing (<https://github.com/corelight/community-id-spec>).
//!
//! Written by hand: the spec is twenty lines and the crates that implement it
//! pull in their own packet types; this takes plain addresses and ports.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// IP protocol numbers that carry ports in the Community ID hash.
const PORTED: [u8; 3] = [6, 17, 132];

/// Community ID v1 of a flow: `1:` + base64(SHA-1(seed, ordered endpoints,
/// proto, ports)). The same value results whichever side is `src`.
/// Ports are ignored for protocols other than TCP, UDP and SCTP (ICMP type/code
/// mapping is not needed by weightwatch and is not implemented).
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    proto: u8,
) -> String {
    let ported = PORTED.contains(&proto);
    let (sp, dp) = if ported { (src_port, dst_port) } else { (0, 0) };
    // Order the endpoints so that both directions hash alike.
    let (src_octets, dst_octets) = (Octets::of(src), Octets::of(dst));
    let src_first = (src_octets.as_ref(), sp) <= (dst_octets.as_ref(), dp);
    let (a, ap, b, bp) = if src_first {
        (src_octets, sp, dst_octets, dp)
    } else {
        (dst_octets, dp, src_octets, sp)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    if ported {
        h.update(ap.to_be_bytes());
        h.update(bp.to_be_bytes());
    }
    let digest = h.finalize();
    // One allocation: the sensor computes this for every new flow.
    let mut id = String::with_capacity(30);
    id.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut id);
    id
}

/// An address's bytes in network order, on the stack (this ran once per
/// flow with a `Vec` per address, six allocations per Community ID).
#[derive(Clone, Copy)]
enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Octets {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Octets::V4(v4.octets()),
            IpAddr::V6(v6) => Octets::V6(v6.octets()),
        }
    }
}

impl AsRef<[u8]> for Octets {
    fn as_ref(&self) -> &[u8] {
        match self {
            Octets::V4(o) => o,
            Octets::V6(o) => o,
        }
    }
}
