//! A minimal TCP payload extractor for app-layer tests on real captures
//! (the engine's reassembler is tested separately; these captures have no
//! reordering, so dropping retransmitted bytes by sequence number suffices).

use capture::app::{AppConnection, AppLimits};
use capture::object::CollectedObjects;
use eve::Direction;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The public pcap corpus, or `None` (with a message) when it is absent.
pub fn corpus(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/pcap-public")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: corpus file {} not present", p.display());
        None
    }
}

type Endpoint = (IpAddr, u16);

/// One TCP connection's in-order payload, as (direction, bytes) in packet order.
#[derive(Debug, Default)]
pub struct TcpConn {
    pub segments: Vec<(Direction, Vec<u8>)>,
}

/// Every TCP connection of an Ethernet pcap whose SYN was seen.
pub fn tcp_conns(path: &std::path::Path) -> Vec<TcpConn> {
    let mut cap = pcap::Capture::from_file(path).expect("open pcap");
    let mut conns: Vec<TcpConn> = Vec::new();
    let mut index: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    // Next expected sequence number per (src, dst).
    let mut next: HashMap<(Endpoint, Endpoint), u32> = HashMap::new();
    while let Ok(pkt) = cap.next_packet() {
        let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(pkt.data) else {
            continue;
        };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
            Some(etherparse::NetSlice::Ipv4(v4)) => (
                v4.header().source_addr().into(),
                v4.header().destination_addr().into(),
            ),
            Some(etherparse::NetSlice::Ipv6(v6)) => (
                v6.header().source_addr().into(),
                v6.header().destination_addr().into(),
            ),
            _ => continue,
        };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = &sliced.transport else {
            continue;
        };
        let src = (src_ip, tcp.source_port());
        let dst = (dst_ip, tcp.destination_port());
        if tcp.syn() {
            next.insert((src, dst), tcp.sequence_number().wrapping_add(1));
            if !tcp.ack() {
                index.insert((src, dst), conns.len());
                conns.push(TcpConn::default());
            }
            continue;
        }
        let payload = tcp.payload();
        if payload.is_empty() {
            continue;
        }
        let (i, dir) = match (index.get(&(src, dst)), index.get(&(dst, src))) {
            (Some(i), _) => (*i, Direction::ToServer),
            (_, Some(i)) => (*i, Direction::ToClient),
            _ => continue,
        };
        let Some(exp) = next.get_mut(&(src, dst)) else {
            continue;
        };
        let seq = tcp.sequence_number();
        let skip = exp.wrapping_sub(seq) as usize;
        if (exp.wrapping_sub(seq) as i32) < 0 || skip >= payload.len() {
            continue;
        }
        *exp = seq.wrapping_add(payload.len() as u32);
        conns[i].segments.push((dir, payload[skip..].to_vec()));
    }
    conns
}

/// Feed one connection through an `AppConnection`, closing both directions.
pub fn replay(conn: &TcpConn) -> (CollectedObjects, AppConnection) {
    let mut app = AppConnection::new(&AppLimits::default(), false);
    let mut out = CollectedObjects::default();
    for (dir, bytes) in &conn.segments {
        app.data(*dir, bytes, &mut out);
    }
    app.close(Direction::ToServer, true, &mut out);
    app.close(Direction::ToClient, true, &mut out);
    (out, app)
}
