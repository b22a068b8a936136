//! Flow-level behaviour on captures built for the purpose: VLAN ids are
//! part of the flow key, the reassembly memcap evicts the largest buffer
//! (not the stream that crossed the limit), long flows give interim `flow`
//! update events with growing counters before their final event, a
//! keep-alive connection joined mid-body resynchronises on the next HTTP
//! message, and a FIFO input replays as a stream like its file.

use crate::engine_support::{Frames, replay_with, write_pcap};
use capture::Settings;
use capture::detect::Detectors;
use etherparse::PacketBuilder;
use eve::{Direction as EveDirection, Event, EventKind, FlowReason};
use fixtures::packet::LinkLayer;
use fixtures::payload::Payload;
use fixtures::pcap::{LinkType, Micros, PcapWriter};
use fixtures::scenario;
use fixtures::tcp::{Close, Direction, Session, SessionOptions};
use sha2::{Digest, Sha256};

fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(seed) * 7) % 251) as u8)
        .collect()
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings {
        workers: 1,
        ..Default::default()
    };
    f(&mut s);
    s
}

fn fileinfos(events: &[Event]) -> Vec<(&eve::NetworkFields, &eve::FileInfo)> {
    events
        .iter()
        .filter_map(|e| match (&e.kind, &e.net) {
            (EventKind::Fileinfo(f), Some(n)) => Some((n, &f.fileinfo)),
            _ => None,
        })
        .collect()
}

fn flows(events: &[Event]) -> Vec<(&eve::NetworkFields, &eve::FlowEvent)> {
    events
        .iter()
        .filter_map(|e| match (&e.kind, &e.net) {
            (EventKind::Flow(f), Some(n)) => Some((n, f)),
            _ => None,
        })
        .collect()
}

#[test]
fn same_five_tuple_on_two_vlans_is_two_flows() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("two_vlans.pcap");
    let mut frames = Frames::default();
    let payloads = [bytes(1, 150_000), bytes(2, 150_000)];
    for (vlan, data) in [(10u16, &payloads[0]), (20, &payloads[1])] {
        // Identical 5-tuple, sequence numbers and timing: only the tag and
        // the bytes differ, and the packets of both interleave.
        let mut o = SessionOptions::ipv4(40200, 9000);
        o.link = LinkLayer::Ethernet { vlans: vec![vlan] };
        scenario::raw_tcp(
            &mut frames,
            &o,
            Direction::ToServer,
            &Payload::Bytes(data),
            Close::Fin {
                first: Direction::ToServer,
            },
        )
        .expect("session");
    }
    write_pcap(&path, frames.0);
    let files = [path];

    let (s, events) = replay_with(&files, settings(|_| {}), &Detectors::none());
    assert_eq!(s.stats.get("flow", "tcp"), 2, "{:?}", s.stats);
    let infos = fileinfos(&events);
    for (vlan, data) in [(10u16, &payloads[0]), (20, &payloads[1])] {
        let found = infos.iter().find(|(n, f)| {
            n.vlan.as_deref() == Some(&[vlan][..]) && f.direction == EveDirection::ToServer
        });
        let (_, f) = found.unwrap_or_else(|| panic!("no fileinfo on vlan {vlan}: {infos:?}"));
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.sha256.as_deref(), Some(sha_hex(data).as_str()));
        assert!(!f.gaps);
    }
    let vlans: Vec<_> = flows(&events).iter().map(|(n, _)| n.vlan.clone()).collect();
    assert_eq!(vlans.len(), 2);
    assert!(vlans.contains(&Some(vec![10])) && vlans.contains(&Some(vec![20])));

    // With VLAN tracking off the two are one flow (and carry no vlan).
    let off = settings(|s| s.config.vlan_tracking = false);
    let (s, events) = replay_with(&files, off, &Detectors::none());
    assert_eq!(s.stats.get("flow", "tcp"), 1, "{:?}", s.stats);
    assert!(flows(&events).iter().all(|(n, _)| n.vlan.is_none()));
}

/// Hand-built TCP segments of one client (port `sport`) and the server.
struct Conn {
    sport: u16,
    client_isn: u32,
    server_isn: u32,
}

impl Conn {
    fn frame(&self, to_server: bool, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst, sp, dp) = if to_server {
            ([10, 0, 0, 1], [10, 0, 0, 2], self.sport, 9000)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 9000, self.sport)
        };
        let ack = if to_server {
            self.server_isn.wrapping_add(1)
        } else {
            self.client_isn.wrapping_add(1)
        };
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("frame");
        v
    }

    fn handshake(&self) -> Vec<Vec<u8>> {
        vec![
            self.frame(true, self.client_isn, "S", &[]),
            self.frame(false, self.server_isn, "SA", &[]),
            self.frame(true, self.client_isn.wrapping_add(1), "A", &[]),
        ]
    }

    /// Client bytes `[at, at + len)` of `data`.
    fn data(&self, data: &[u8], at: usize, len: usize) -> Vec<u8> {
        let seq = self.client_isn.wrapping_add(1).wrapping_add(at as u32);
        self.frame(true, seq, "A", &data[at..at + len])
    }

    fn close(&self, sent: usize) -> Vec<Vec<u8>> {
        let fin = self.client_isn.wrapping_add(1).wrapping_add(sent as u32);
        vec![
            self.frame(true, fin, "FA", &[]),
            self.frame(false, self.server_isn.wrapping_add(1), "FA", &[]),
        ]
    }
}

#[test]
fn memcap_evicts_the_largest_buffer_not_the_stream_that_crossed() {
    const SEG: usize = 1000;
    let a = Conn {
        sport: 5001,
        client_isn: 1000,
        server_isn: 5000,
    };
    let b = Conn {
        sport: 5002,
        client_isn: 70_000,
        server_isn: 90_000,
    };
    let data_a = bytes(3, 41 * SEG);
    let data_b = bytes(4, 31 * SEG);
    let mut seq: Vec<Vec<u8>> = Vec::new();
    seq.extend(a.handshake());
    seq.extend(b.handshake());
    // A: its first segment is missing, 40 KB wait behind the hole.
    for i in 1..=40 {
        seq.push(a.data(&data_a, i * SEG, SEG));
    }
    // B: 30 KB behind a hole; its 26th segment takes the worker past the
    // 64 KiB memcap, while A holds the most.
    for i in 1..=30 {
        seq.push(b.data(&data_b, i * SEG, SEG));
    }
    // B's hole is filled: B is whole. A's retransmission comes too late.
    seq.push(b.data(&data_b, 0, SEG));
    seq.push(a.data(&data_a, 0, SEG));
    seq.extend(a.close(data_a.len()));
    seq.extend(b.close(data_b.len()));
    let frames: Vec<(Micros, Vec<u8>)> = seq
        .into_iter()
        .enumerate()
        .map(|(i, f)| (1_714_564_800_000_000 + i as u64 * 100, f))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("memcap.pcap");
    write_pcap(&path, frames);

    let tight = settings(|s| {
        s.config.stream_ooo_max_bytes = 48 * 1024;
        s.config.reassembly_memcap_bytes = 64 * 1024;
    });
    let (s, events) = replay_with(&[path], tight, &Detectors::none());
    assert_eq!(
        s.stats.get("tcp", "reassembly_memcap_drops"),
        1,
        "{:?}",
        s.stats
    );
    assert_eq!(s.stats.get("tcp", "stream_ooo_limit"), 0);
    let infos = fileinfos(&events);
    let by_port = |port: u16| {
        infos
            .iter()
            .find(|(n, f)| n.src_port == port && f.direction == EveDirection::ToServer)
            .map(|(_, f)| *f)
            .unwrap_or_else(|| panic!("no fileinfo from port {port}: {infos:?}"))
    };
    let fb = by_port(5002);
    assert!(!fb.gaps, "B kept its buffer: {fb:?}");
    assert_eq!(fb.size, data_b.len() as u64);
    assert_eq!(fb.sha256.as_deref(), Some(sha_hex(&data_b).as_str()));
    let fa = by_port(5001);
    assert!(fa.gaps, "A's buffer was evicted: {fa:?}");
    assert_eq!(s.stats.get("tcp", "gap_bytes"), SEG as u64);
}

#[test]
fn long_flow_gives_growing_update_events_then_its_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("long.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let mut sink =
        PcapWriter::new(std::io::BufWriter::new(file), LinkType::Ethernet).expect("pcap");
    let mut o = SessionOptions::ipv4(40300, 9000);
    o.seed = 0x44;
    let chunk = bytes(5, 20_000);
    {
        let mut s = Session::new(o, &mut sink).expect("session");
        s.connect().expect("connect");
        // Six seconds of a trickling upload.
        for _ in 0..6 {
            s.write(Direction::ToServer, &chunk).expect("write");
            s.idle(1_000_000);
        }
        s.close(Close::Fin {
            first: Direction::ToServer,
        })
        .expect("close");
    }
    sink.finish().expect("finish");

    let every_second = settings(|s| s.config.flow_update_interval_secs = 1);
    let (s, events) = replay_with(&[path], every_second, &Detectors::none());
    let fl = flows(&events);
    let updates: Vec<_> = fl
        .iter()
        .filter(|(_, f)| f.flow.reason == FlowReason::Update)
        .collect();
    assert!(updates.len() >= 4, "{} update events", updates.len());
    assert_eq!(s.stats.get("flow", "updates"), updates.len() as u64);
    for w in updates.windows(2) {
        let (a, b) = (&w[0].1.flow, &w[1].1.flow);
        assert!(b.bytes_toserver > a.bytes_toserver, "{a:?} then {b:?}");
        assert!(b.pkts_toserver > a.pkts_toserver);
        assert!(b.end >= a.end);
    }
    // All updates share the flow id, and the final event comes last with
    // the whole flow's counters.
    let last = fl.last().expect("final flow event");
    // Suricata's words: the file ended (`shutdown`) on a closed connection.
    assert_eq!(last.1.flow.reason, FlowReason::Shutdown);
    assert_eq!(last.1.flow.state, eve::FlowState::Closed);
    assert!(updates.iter().all(|(n, _)| n.flow_id == last.0.flow_id));
    let final_bytes = last.1.flow.bytes_toserver;
    assert!(
        updates
            .iter()
            .all(|(_, f)| f.flow.bytes_toserver < final_bytes)
    );
    assert!(final_bytes >= 6 * chunk.len() as u64);
    assert_eq!(fl.len(), updates.len() + 1);
}

#[test]
fn midstream_keepalive_resyncs_on_the_next_message() {
    // Picked up 20 KiB into the first response body; the second request and
    // response follow on the same connection.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcaps/http_keepalive_midstream.pcap");
    let (s, events) = replay_with(&[path], settings(|_| {}), &Detectors::none());
    // Both directions found a message start.
    assert_eq!(s.stats.get("app", "http_resyncs"), 2, "{:?}", s.stats);
    assert_eq!(s.stats.get("app", "http"), 1);
    let infos = fileinfos(&events);
    let second = infos
        .iter()
        .find(|(_, f)| f.filename.as_deref() == Some("/files/b.bin"))
        .unwrap_or_else(|| panic!("second body not cut out: {infos:?}"));
    assert_eq!(second.1.size, 48 * 1024);
    assert_eq!(second.1.state, eve::FileState::Closed);
    // The first body's captured tail is an object of its own, before it.
    let tail = infos
        .iter()
        .find(|(_, f)| f.direction == EveDirection::ToClient && f.filename.is_none())
        .unwrap_or_else(|| panic!("no tail object: {infos:?}"));
    assert_eq!(tail.1.state, eve::FileState::Truncated);
    assert!(tail.1.size < 64 * 1024);
    let flow = flows(&events);
    assert_eq!(flow[0].0.app_proto.as_deref(), Some("http"));
}

#[test]
fn a_fifo_replays_as_a_stream_like_its_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("capture.pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: mkfifo not available");
        return;
    }
    let good = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcaps/http_download.pcap");
    // A pipe among other inputs cannot be ordered by its first packet
    // without consuming it: a clear error, and the FIFO is never opened
    // (no writer: opening it would block).
    let mut sink = eve::sink::memory::MemorySink::default();
    let err = capture::run_offline(
        &[fifo.clone(), good.clone()],
        &settings(|_| {}),
        &Detectors::none(),
        &mut sink,
    )
    .expect_err("a pipe among files");
    assert!(err.to_string().contains("must be the only input"), "{err}");
    // Alone, the FIFO is read as a stream (a writer feeds it the file),
    // with two workers, and gives the file's objects.
    let bytes = std::fs::read(&good).expect("fixture");
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::write(fifo, bytes).expect("write the fifo")
    });
    let (piped, piped_events) = replay_with(
        std::slice::from_ref(&fifo),
        settings(|s| s.workers = 2),
        &Detectors::none(),
    );
    writer.join().expect("writer");
    let (file, file_events) = replay_with(&[good], settings(|_| {}), &Detectors::none());
    assert_eq!(piped.files.len(), 1);
    assert_eq!(piped.files[0].error, None);
    assert_eq!(piped.packets(), file.packets());
    assert!(piped.packets() > 0);
    let hashes = |events: &[Event]| {
        let mut v: Vec<(String, u64)> = fileinfos(events)
            .into_iter()
            .map(|(_, f)| (f.sha256.clone().unwrap_or_default(), f.size))
            .collect();
        v.sort();
        v
    };
    assert!(!hashes(&file_events).is_empty());
    assert_eq!(hashes(&piped_events), hashes(&file_events));
}

/// Uploads carry their response's status, as Suricata's: a pipelined PUT
/// answered `201` after its body, and one answered `413` before its body
/// has ended (the server did not wait); each upload's `fileinfo` has its
/// own transaction's status and the response's type without parameters.
#[test]
fn uploads_carry_their_own_responses_status() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("uploads.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let mut sink =
        PcapWriter::new(std::io::BufWriter::new(file), LinkType::Ethernet).expect("pcap");
    let (a, b) = (bytes(7, 30_000), bytes(8, 40_000));
    {
        let mut o = SessionOptions::ipv4(40400, 80);
        o.seed = 0x45;
        let mut s = Session::new(o, &mut sink).expect("session");
        s.connect().expect("connect");
        let put = |name: &str, len: usize| {
            format!("PUT /up/{name} HTTP/1.1\r\nHost: store\r\nContent-Length: {len}\r\n\r\n")
        };
        s.write(Direction::ToServer, put("a.bin", a.len()).as_bytes())
            .expect("write");
        s.write(Direction::ToServer, &a).expect("write");
        s.write(
            Direction::ToClient,
            b"HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nok",
        )
        .expect("write");
        s.write(Direction::ToServer, put("b.bin", b.len()).as_bytes())
            .expect("write");
        s.write(Direction::ToServer, &b[..1000]).expect("write");
        s.write(
            Direction::ToClient,
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("write");
        s.write(Direction::ToServer, &b[1000..]).expect("write");
        s.close(Close::Fin {
            first: Direction::ToServer,
        })
        .expect("close");
    }
    sink.finish().expect("finish");
    let (_, events) = replay_with(&[path], settings(|_| {}), &Detectors::none());
    let mut uploads: Vec<(String, Option<u16>, Option<String>)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fileinfo(f) if f.fileinfo.direction == EveDirection::ToServer => {
                let http = f.http.as_ref()?;
                Some((
                    format!("{:?} {}", f.fileinfo.filename, f.fileinfo.size),
                    http.status,
                    http.http_content_type.clone(),
                ))
            }
            _ => None,
        })
        .collect();
    uploads.sort();
    assert_eq!(
        uploads,
        vec![
            (
                format!("Some(\"/up/a.bin\") {}", a.len()),
                Some(201),
                Some("text/plain".to_string())
            ),
            (format!("Some(\"/up/b.bin\") {}", b.len()), Some(413), None),
        ]
    );
}
