//! Evasion on the wire: captures built by the test where an attacker sends
//! the sensor bytes the host never takes (wrong checksums, …) around a
//! registered safetensors upload. Each must raise the same weights alerts
//! as the clean capture.

use crate::engine_support::{Frames, replay_with, write_pcap};
use capture::Settings;
use capture::decode::ChecksumMode;
use capture::detect::known::{ChunkParams, Index};
use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use etherparse::{Ipv4HeaderSlice, TcpHeaderSlice};
use eve::{AlertCategory, Event, EventKind};
use fixtures::payload::Payload;
use fixtures::pcap::Micros;
use fixtures::scenario;
use fixtures::tcp::SessionOptions;
use fixtures::weights::{DType, Format, ModelSpec, WeightFile};
use std::path::{Path, PathBuf};

/// The upload: a bf16 safetensors of about 1.2 MB.
fn weights() -> WeightFile {
    let mut spec = ModelSpec::tiny();
    spec.vocab = 900;
    Format::Safetensors.write(&spec, DType::BF16, 14)
}

/// The clean capture: `file` PUT over HTTP from 10.1.0.10 to 10.2.0.20:80.
fn upload(file: &WeightFile) -> Vec<(Micros, Vec<u8>)> {
    let mut frames = Frames::default();
    scenario::http_upload_put(
        &mut frames,
        &SessionOptions::ipv4(41_000, 80),
        "/upload/model.safetensors",
        &Payload::Bytes(&file.bytes),
    )
    .expect("session");
    frames.0
}

/// Every detector, with `file` registered in the known-weights index.
fn detectors(dir: &Path, file: &WeightFile) -> Detectors {
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    idx.add(&format!("/lab/{}", file.name), file.bytes.as_slice())
        .expect("add");
    let p = dir.join("weights.idx");
    idx.write(&p).expect("write index");
    build(&PolicyConfig::default(), &DetectConfig::default(), Some(&p)).expect("detectors")
}

/// Where the IPv4 header, the TCP header and the payload of an untagged
/// Ethernet IPv4/TCP frame start.
fn offsets(f: &[u8]) -> (usize, usize, usize) {
    let ip = 14;
    let tcp = ip + usize::from(f[ip] & 0x0f) * 4;
    let payload = tcp + usize::from(f[tcp + 12] >> 4) * 4;
    (ip, tcp, payload)
}

/// The right TCP checksum of frame `f`.
fn tcp_checksum(f: &[u8]) -> u16 {
    let (ip, tcp, payload) = offsets(f);
    let iph = Ipv4HeaderSlice::from_slice(&f[ip..]).expect("ipv4");
    let th = TcpHeaderSlice::from_slice(&f[tcp..]).expect("tcp");
    th.to_header()
        .calc_checksum_ipv4(&iph.to_header(), &f[payload..])
        .expect("checksum")
}

/// Set the TCP checksum of `f` (`None`: the right one).
fn set_tcp_checksum(f: &mut [u8], sum: Option<u16>) {
    let (_, tcp, _) = offsets(f);
    let sum = sum.unwrap_or_else(|| tcp_checksum(f));
    f[tcp + 16..tcp + 18].copy_from_slice(&sum.to_be_bytes());
}

/// Whether `f` is a TCP segment from the client carrying payload.
fn client_data(f: &[u8]) -> bool {
    let (ip, _, payload) = offsets(f);
    f[ip + 12..ip + 16] == [10, 1, 0, 10] && f.len() > payload
}

/// A copy of data segment `f` with zeros for payload and a wrong checksum.
fn junk_copy(f: &[u8]) -> Vec<u8> {
    let mut j = f.to_vec();
    let (_, _, payload) = offsets(&j);
    j[payload..].fill(0);
    let right = tcp_checksum(&j);
    set_tcp_checksum(&mut j, Some(right.wrapping_add(1)));
    j
}

/// The weights alerts of `events`: category, signature id and the known
/// file named, sorted.
fn weight_alerts(events: &[Event]) -> Vec<(AlertCategory, u32, Option<String>)> {
    let mut v: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a)
                if matches!(
                    a.alert.category,
                    AlertCategory::WeightsFormat
                        | AlertCategory::WeightsKnown
                        | AlertCategory::WeightsTensor
                ) =>
            {
                Some((
                    a.alert.category,
                    a.alert.signature_id,
                    a.evidence
                        .get("known_file")
                        .and_then(|k| k.as_str())
                        .map(str::to_string),
                ))
            }
            _ => None,
        })
        .collect();
    v.sort_by_key(|(c, id, f)| (c.as_str(), *id, f.clone()));
    v
}

/// What most tests start from: a temporary directory, the registered
/// file, the detectors, the clean upload and its weights alerts.
struct Case {
    dir: tempfile::TempDir,
    file: WeightFile,
    det: Detectors,
    clean: Vec<(Micros, Vec<u8>)>,
    want: Vec<(AlertCategory, u32, Option<String>)>,
}

fn case() -> Case {
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    let det = detectors(dir.path(), &file);
    let clean = upload(&file);
    let want = clean_alerts(dir.path(), &det, &clean);
    Case {
        dir,
        file,
        det,
        clean,
        want,
    }
}

/// A copy of data frame `f` with zeros for payload (checksums right).
fn zeroed(f: &[u8]) -> Vec<u8> {
    let mut j = f.to_vec();
    let (_, _, p) = offsets(&j);
    j[p..].fill(0);
    refresh(&mut j);
    j
}

/// The weights alerts of the clean capture `clean`.
fn clean_alerts(
    dir: &Path,
    det: &Detectors,
    clean: &[(Micros, Vec<u8>)],
) -> Vec<(AlertCategory, u32, Option<String>)> {
    let files = write(dir, "clean.pcap", clean.to_vec());
    weight_alerts(&replay_with(&files, settings(1, ChecksumMode::Yes), det).1)
}

fn settings(workers: usize, checksums: ChecksumMode) -> Settings {
    let mut s = Settings {
        workers,
        ..Default::default()
    };
    s.config.checksum_validation = checksums;
    s
}

fn write(dir: &Path, name: &str, frames: Vec<(Micros, Vec<u8>)>) -> Vec<PathBuf> {
    let p = dir.join(name);
    write_pcap(&p, frames);
    vec![p]
}

/// Each data segment of the upload preceded by a copy with zeros and a
/// wrong TCP checksum: the host drops the copies, so must the sensor —
/// the same alerts as the clean capture, `weights_known` included. With
/// validation off the junk wins and the registered file is not found
/// (what the attack did before).
#[test]
fn junk_copies_with_bad_tcp_checksums_do_not_blind_the_sensor() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    assert!(file.bytes.len() > 1_100_000, "{}", file.bytes.len());
    let det = detectors(dir.path(), &file);
    let clean = upload(&file);
    let mut attack = Vec::new();
    let mut junk = 0u64;
    for (ts, f) in &clean {
        if client_data(f) {
            attack.push((*ts, junk_copy(f)));
            junk += 1;
        }
        attack.push((*ts, f.clone()));
    }
    let clean = write(dir.path(), "clean.pcap", clean);
    let attack = write(dir.path(), "attack.pcap", attack);

    let (_, events) = replay_with(&clean, settings(1, ChecksumMode::Yes), &det);
    let want = weight_alerts(&events);
    assert!(
        want.iter()
            .any(|(c, _, f)| *c == AlertCategory::WeightsKnown && f.is_some()),
        "{want:?}"
    );
    for mode in [ChecksumMode::Yes, ChecksumMode::Auto] {
        for workers in [1, 2] {
            let (s, events) = replay_with(&attack, settings(workers, mode), &det);
            assert_eq!(weight_alerts(&events), want, "{mode:?}, {workers} workers");
            assert_eq!(s.stats.get("decoder", "invalid_tcp_checksum"), junk);
            assert_eq!(s.stats.get("decoder", "checksum_offloaded"), 0);
            assert_eq!(s.stats.get("tcp", "duplicates"), 0, "{mode:?}");
        }
    }
    let (_, events) = replay_with(&attack, settings(1, ChecksumMode::No), &det);
    let blind = weight_alerts(&events);
    assert!(
        !blind
            .iter()
            .any(|(c, _, _)| *c == AlertCategory::WeightsKnown),
        "without validation the junk is reassembled: {blind:?}"
    );
}

/// A capture taken on a host with checksum offload: every TCP checksum
/// zero and every IPv4 header checksum of the client's packets zero.
/// `auto` takes both senders as offloaded and finds the upload; `yes`
/// drops everything.
#[test]
fn offloaded_capture_still_works_in_auto_mode() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    let det = detectors(dir.path(), &file);
    let clean = upload(&file);
    let packets = clean.len() as u64;
    let want = clean_alerts(dir.path(), &det, &clean);
    let offloaded: Vec<_> = clean
        .into_iter()
        .map(|(ts, mut f)| {
            set_tcp_checksum(&mut f, Some(0));
            if f[14 + 12..14 + 16] == [10, 1, 0, 10] {
                f[14 + 10..14 + 12].fill(0);
            }
            (ts, f)
        })
        .collect();
    let files = write(dir.path(), "offloaded.pcap", offloaded);
    for workers in [1, 2] {
        let (s, events) = replay_with(&files, settings(workers, ChecksumMode::Auto), &det);
        assert_eq!(weight_alerts(&events), want, "{workers} workers");
        assert_eq!(s.stats.get("decoder", "checksum_offloaded"), packets);
        assert_eq!(s.stats.get("decoder", "invalid_tcp_checksum"), 0);
    }
    let (s, events) = replay_with(&files, settings(1, ChecksumMode::Yes), &det);
    assert!(weight_alerts(&events).is_empty());
    assert_eq!(s.stats.get("decoder", "decoded"), 0);
    assert_eq!(
        s.stats.get("decoder", "invalid_tcp_checksum")
            + s.stats.get("decoder", "invalid_ipv4_checksum"),
        packets
    );
}

/// Make frame `f` consistent again after its payload or IPv4 header
/// changed: IPv4 total length, header checksum and TCP checksum.
fn refresh(f: &mut [u8]) {
    let ip = 14;
    let total = u16::try_from(f.len() - ip).expect("fits");
    f[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    let sum = Ipv4HeaderSlice::from_slice(&f[ip..])
        .expect("ipv4")
        .to_header()
        .calc_header_checksum();
    f[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
    set_tcp_checksum(f, None);
}

/// The sequence number of TCP frame `f`.
fn seq(f: &[u8]) -> u32 {
    let (_, tcp, _) = offsets(f);
    u32::from_be_bytes([f[tcp + 4], f[tcp + 5], f[tcp + 6], f[tcp + 7]])
}

/// The protocol-anomaly alerts of `events`: their evidence.
fn anomalies(events: &[Event]) -> Vec<eve::Evidence> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) if a.alert.category == AlertCategory::ProtocolAnomaly => {
                Some(a.evidence.clone())
            }
            _ => None,
        })
        .collect()
}

/// Out-of-order junk that the receiving host replaces: before each pair of
/// the upload's data segments (k, k+1), a copy of k+1 with zeros arrives
/// first (buffered), then one real segment covering both — it starts
/// before the junk, so a BSD, Linux or Windows host keeps its bytes. The
/// sensor follows the receiver's policy: the default (`bsd`) and a
/// per-network `linux` give the clean alerts; `first` (the old rule), as
/// the default or for the server's network, keeps the junk and loses the
/// registered file. Every run raises one `protocol_anomaly` alert per flow.
#[test]
fn overlaps_follow_the_receivers_os_policy_and_raise_an_anomaly() {
    use capture::reassembly::OsPolicy;
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    let det = detectors(dir.path(), &file);
    let clean = upload(&file);
    let (_, events) = replay_with(
        &write(dir.path(), "clean.pcap", clean.clone()),
        settings(1, ChecksumMode::Yes),
        &det,
    );
    let want = weight_alerts(&events);
    assert!(anomalies(&events).is_empty());
    let mut attack = Vec::new();
    let mut pending: Option<(Micros, Vec<u8>)> = None;
    for (ts, f) in clean {
        if !client_data(&f) {
            attack.push((ts, f));
            continue;
        }
        match pending.take() {
            None => pending = Some((ts, f)),
            Some((t0, first)) => {
                let junk = zeroed(&f);
                let mut both = first.clone();
                both.extend_from_slice(&f[offsets(&f).2..]);
                refresh(&mut both);
                assert!(seq(&junk) > seq(&both));
                attack.push((t0, junk));
                attack.push((t0, both));
            }
        }
    }
    if let Some(last) = pending {
        attack.push(last);
    }
    let files = write(dir.path(), "overlaps.pcap", attack);
    let server: ipnet::IpNet = "10.2.0.0/16".parse().expect("net");
    let runs: [(&str, OsPolicy, Option<OsPolicy>, bool); 4] = [
        ("default bsd", OsPolicy::Bsd, None, true),
        ("first", OsPolicy::First, None, false),
        (
            "first for the server's network",
            OsPolicy::Bsd,
            Some(OsPolicy::First),
            false,
        ),
        (
            "linux for the server's network",
            OsPolicy::First,
            Some(OsPolicy::Linux),
            true,
        ),
    ];
    for (what, default, net, whole) in runs {
        let mut s = settings(1, ChecksumMode::Yes);
        s.config.os_policy = default;
        if let Some(p) = net {
            s.config.host_os_policy.insert(p, vec![server]);
        }
        let (stats, events) = replay_with(&files, s, &det);
        let got = weight_alerts(&events);
        if whole {
            assert_eq!(got, want, "{what}");
        } else {
            assert!(
                !got.iter()
                    .any(|(c, _, _)| *c == AlertCategory::WeightsKnown),
                "{what}: {got:?}"
            );
        }
        let a = anomalies(&events);
        assert_eq!(a.len(), 1, "{what}: {a:?}");
        assert_eq!(a[0]["event"], "stream.reassembly_overlap_different_data");
        assert_eq!(a[0]["direction"], "toserver");
        assert_eq!(
            a[0]["kept"],
            if whole { "later_copy" } else { "earlier_copy" }
        );
        assert!(stats.stats.get("tcp", "overlap_diff_data") > 100, "{what}");
    }
}

/// A junk copy with a right checksum delivered in order before the real
/// segment: the sensor cannot take back what it delivered (neither can
/// the host, had it received it), but the real copy differs from the
/// delivered bytes it overlaps, and the flow raises the anomaly.
#[test]
fn in_order_junk_then_real_bytes_raise_the_anomaly() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    let det = detectors(dir.path(), &file);
    let mut attack = Vec::new();
    for (ts, f) in upload(&file) {
        if client_data(&f) && attack.len() == 40 {
            let junk = zeroed(&f);
            attack.push((ts, junk));
        }
        attack.push((ts, f));
    }
    let files = write(dir.path(), "junk_first.pcap", attack);
    let (stats, events) = replay_with(&files, settings(1, ChecksumMode::Yes), &det);
    let a = anomalies(&events);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kept"], "earlier_copy");
    assert_eq!(a[0]["os_policy"], "bsd");
    assert_eq!(stats.stats.get("tcp", "overlap_diff_data"), 1);
}

/// The upload's fileinfo: size and SHA-256 must be the file's.
fn uploaded(events: &[Event]) -> (u64, Option<String>, eve::FileState) {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Fileinfo(f) if f.fileinfo.direction == eve::Direction::ToServer => {
                Some((f.fileinfo.size, f.fileinfo.sha256.clone(), f.fileinfo.state))
            }
            _ => None,
        })
        .expect("the upload's fileinfo")
}

fn sha_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Set the IPv4 TTL of frame `f` (checksums fixed).
fn set_ttl(f: &mut [u8], ttl: u8) {
    f[14 + 8] = ttl;
    refresh(f);
}

/// Resets from either side with a sequence number far from the expected
/// one, in the middle of the upload: the host ignores them, so must the
/// sensor (before, any reset tore the flow down and truncated the upload).
#[test]
fn resets_with_a_bad_sequence_number_do_not_end_the_flow() {
    let Case {
        dir,
        file,
        det,
        clean,
        want,
    } = case();
    let mut attack = Vec::new();
    let mut data = 0;
    for (ts, f) in clean {
        if client_data(&f) {
            data += 1;
            if data == 100 || data == 400 {
                for from_client in [true, false] {
                    let mut rst = f[..offsets(&f).2].to_vec();
                    let (ip, tcp, _) = offsets(&rst);
                    if !from_client {
                        // Swap addresses and ports: the server "resets".
                        let (s, d) = (
                            rst[ip + 12..ip + 16].to_vec(),
                            rst[ip + 16..ip + 20].to_vec(),
                        );
                        rst[ip + 12..ip + 16].copy_from_slice(&d);
                        rst[ip + 16..ip + 20].copy_from_slice(&s);
                        let (sp, dp) = (rst[tcp..tcp + 2].to_vec(), rst[tcp + 2..tcp + 4].to_vec());
                        rst[tcp..tcp + 2].copy_from_slice(&dp);
                        rst[tcp + 2..tcp + 4].copy_from_slice(&sp);
                    }
                    let bad = seq(&rst).wrapping_add(7_000_000);
                    rst[tcp + 4..tcp + 8].copy_from_slice(&bad.to_be_bytes());
                    rst[tcp + 13] = 0x04; // RST only
                    refresh(&mut rst);
                    attack.push((ts, rst));
                }
            }
        }
        attack.push((ts, f));
    }
    let (s, events) = replay_with(
        &write(dir.path(), "resets.pcap", attack),
        settings(1, ChecksumMode::Yes),
        &det,
    );
    assert_eq!(weight_alerts(&events), want);
    assert_eq!(s.stats.get("tcp", "rst_invalid"), 4);
    let (size, sha, state) = uploaded(&events);
    assert_eq!(size, file.bytes.len() as u64);
    assert_eq!(sha.as_deref(), Some(sha_hex(&file.bytes).as_str()));
    assert_eq!(state, eve::FileState::Closed);
}

/// TTL-limited junk: a zeroed copy of every data segment with a TTL that
/// expires before the host (1), then the real one (64). The junk is held
/// back, the real copy replaces it: the clean alerts, every copy counted in
/// `tcp.held`, and the flow's anomaly alert keeps the later copy. A SYN with
/// a TTL far above the data's (an attempt to get every real segment held)
/// only delays the bytes until acknowledged.
#[test]
fn ttl_limited_junk_is_held_and_replaced() {
    let Case {
        dir,
        file,
        det,
        clean,
        want,
    } = case();
    let mut attack = Vec::new();
    let mut junk = 0u64;
    for (ts, f) in &clean {
        if client_data(f) {
            let mut j = zeroed(f);
            set_ttl(&mut j, 1);
            attack.push((*ts, j));
            junk += 1;
        }
        attack.push((*ts, f.clone()));
    }
    let files = write(dir.path(), "ttl.pcap", attack);
    for workers in [1, 2] {
        let (s, events) = replay_with(&files, settings(workers, ChecksumMode::Yes), &det);
        assert_eq!(weight_alerts(&events), want, "{workers} workers");
        assert_eq!(s.stats.get("tcp", "held"), junk);
        let a = anomalies(&events);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["kept"], "later_copy");
        let (_, sha, _) = uploaded(&events);
        assert_eq!(sha.as_deref(), Some(sha_hex(&file.bytes).as_str()));
    }
    // Off, the junk is reassembled first and the registered file is lost.
    let mut off = settings(1, ChecksumMode::Yes);
    off.config.stream_ttl_tolerance = 0;
    let (_, events) = replay_with(&files, off, &det);
    assert!(
        !weight_alerts(&events)
            .iter()
            .any(|(c, _, _)| *c == AlertCategory::WeightsKnown)
    );

    let mut high_syn = clean;
    set_ttl(&mut high_syn[0].1, 255);
    let (s, events) = replay_with(
        &write(dir.path(), "high_syn.pcap", high_syn),
        settings(1, ChecksumMode::Yes),
        &det,
    );
    assert_eq!(weight_alerts(&events), want);
    assert!(s.stats.get("tcp", "held") > 500);
    let (_, sha, _) = uploaded(&events);
    assert_eq!(sha.as_deref(), Some(sha_hex(&file.bytes).as_str()));
}

/// The first 64 KiB of the upload (request head and safetensors header
/// included) sent one byte per segment: reassembled and detected as the
/// clean capture is.
#[test]
fn one_byte_segments_still_reassemble_and_detect() {
    let Case {
        dir,
        file,
        det,
        clean,
        want,
    } = case();
    let mut tiny = Vec::new();
    let mut sent = 0usize;
    for (ts, f) in clean {
        if client_data(&f) && sent < 64 << 10 {
            let (_, tcp, p) = offsets(&f);
            for i in 0..f.len() - p {
                let mut one = f[..p + 1].to_vec();
                one[p] = f[p + i];
                let s = seq(&f).wrapping_add(i as u32);
                one[tcp + 4..tcp + 8].copy_from_slice(&s.to_be_bytes());
                refresh(&mut one);
                tiny.push((ts, one));
            }
            sent += f.len() - p;
            continue;
        }
        tiny.push((ts, f));
    }
    let (s, events) = replay_with(
        &write(dir.path(), "tiny.pcap", tiny),
        settings(1, ChecksumMode::Yes),
        &det,
    );
    assert_eq!(weight_alerts(&events), want);
    assert!(s.packets() > 64_000);
    let (_, sha, _) = uploaded(&events);
    assert_eq!(sha.as_deref(), Some(sha_hex(&file.bytes).as_str()));
}

/// One hand-built TCP connection 10.0.0.1:40400 → 10.0.0.2:9000 (a port
/// no parser claims: each direction is one raw object).
struct Hand {
    frames: Vec<(Micros, Vec<u8>)>,
}

const C_ISN: u32 = 1_000;
const S_ISN: u32 = 50_000;

impl Hand {
    /// A segment; `flags` of "SAFR", `ack`: the acknowledgment number
    /// when "A", `urg`: the urgent pointer.
    fn push(
        &mut self,
        to_server: bool,
        seq: u32,
        flags: &str,
        ack: u32,
        urg: Option<u16>,
        payload: &[u8],
    ) {
        let (src, dst, sp, dp) = if to_server {
            ([10, 0, 0, 1], [10, 0, 0, 2], 40400, 9000)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 9000, 40400)
        };
        let mut b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        for (c, on) in [('S', true), ('F', true), ('R', true)] {
            if on && flags.contains(c) {
                b = match c {
                    'S' => b.syn(),
                    'F' => b.fin(),
                    _ => b.rst(),
                };
            }
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if let Some(u) = urg {
            b = b.urg(u);
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("frame");
        let ts = 1_714_564_800_000_000 + self.frames.len() as u64 * 1000;
        self.frames.push((ts, v));
    }

    /// The client's raw object after replaying with `f` applied to the
    /// settings: its bytes' SHA-256 and size, and the stats.
    fn replay(
        self,
        dir: &Path,
        name: &str,
        f: impl FnOnce(&mut Settings),
    ) -> ((Option<String>, u64), eve::Stats) {
        let mut s = settings(1, ChecksumMode::Yes);
        f(&mut s);
        let (summary, events) = replay_with(&write(dir, name, self.frames), s, &Detectors::none());
        let (size, sha, _) = uploaded(&events);
        ((sha, size), summary.stats)
    }
}

/// SYN payloads: junk on a SYN the server does not acknowledge is dropped
/// (the real bytes follow at the same sequence numbers); a SYN payload the
/// SYN-ACK acknowledges (TCP Fast Open) is kept.
#[test]
fn syn_data_counts_only_when_the_syn_ack_takes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let real = b"HELLOWORLD";
    // Junk on the SYN, acknowledged only up to the SYN.
    let mut h = Hand { frames: Vec::new() };
    h.push(true, C_ISN, "S", 0, None, b"JUNK!");
    h.push(false, S_ISN, "SA", C_ISN + 1, None, b"");
    h.push(true, C_ISN + 1, "A", S_ISN + 1, None, real);
    h.push(true, C_ISN + 11, "FA", S_ISN + 1, None, b"");
    h.push(false, S_ISN + 1, "FA", C_ISN + 12, None, b"");
    let ((sha, size), stats) = h.replay(dir.path(), "syn_junk.pcap", |_| {});
    assert_eq!((sha.as_deref(), size), (Some(sha_hex(real).as_str()), 10));
    assert_eq!(stats.get("tcp", "syn_data_ignored"), 1);
    // Fast Open: the SYN-ACK acknowledges the SYN's five bytes.
    let mut h = Hand { frames: Vec::new() };
    h.push(true, C_ISN, "S", 0, None, b"HELLO");
    h.push(false, S_ISN, "SA", C_ISN + 6, None, b"");
    h.push(true, C_ISN + 6, "A", S_ISN + 1, None, b"WORLD");
    h.push(true, C_ISN + 11, "FA", S_ISN + 1, None, b"");
    h.push(false, S_ISN + 1, "FA", C_ISN + 12, None, b"");
    let ((sha, size), stats) = h.replay(dir.path(), "tfo.pcap", |_| {});
    assert_eq!((sha.as_deref(), size), (Some(sha_hex(real).as_str()), 10));
    assert_eq!(stats.get("tcp", "syn_data_ignored"), 0);
}

/// Urgent data: "W!ORLD" with the urgent pointer after "!" — the host's
/// socket takes "!" out of band, so the stream is "HELLOWORLD" (`oob`,
/// default); `inline` keeps it.
#[test]
fn urgent_byte_is_taken_out_of_band() {
    let dir = tempfile::tempdir().expect("tmp");
    let build = || {
        let mut h = Hand { frames: Vec::new() };
        h.push(true, C_ISN, "S", 0, None, b"");
        h.push(false, S_ISN, "SA", C_ISN + 1, None, b"");
        h.push(true, C_ISN + 1, "A", S_ISN + 1, None, b"HELLO");
        h.push(true, C_ISN + 6, "A", S_ISN + 1, Some(2), b"W!ORLD");
        h.push(true, C_ISN + 12, "FA", S_ISN + 1, None, b"");
        h.push(false, S_ISN + 1, "FA", C_ISN + 13, None, b"");
        h
    };
    let ((sha, size), stats) = build().replay(dir.path(), "urg.pcap", |_| {});
    assert_eq!(
        (sha.as_deref(), size),
        (Some(sha_hex(b"HELLOWORLD").as_str()), 10)
    );
    assert_eq!(stats.get("tcp", "urgent_oob"), 1);
    let ((sha, size), _) = build().replay(dir.path(), "urg_inline.pcap", |s| {
        s.config.urgent_policy = capture::config::UrgentPolicy::Inline;
    });
    assert_eq!(
        (sha.as_deref(), size),
        (Some(sha_hex(b"HELLOW!ORLD").as_str()), 11)
    );
}

/// The upload over IPv4 fragments of at most 600 bytes; before the second
/// fragment of every client datagram, a shorter zeroed copy that starts 8
/// bytes into it. The real fragment starts before the junk, so a BSD host
/// (the default policy) keeps the real bytes: the clean alerts, every
/// datagram with junk counted in `decoder.fragment_overlap_diff`, and one
/// `protocol_anomaly` alert (`ipv4.frag_overlap`). Under `first` the junk
/// stays, the datagrams fail their TCP checksum and the file is lost
/// (before, etherparse let the later fragment win silently).
#[test]
fn overlapping_fragments_follow_the_policy_and_raise_an_anomaly() {
    use capture::reassembly::OsPolicy;
    let dir = tempfile::tempdir().expect("tmp");
    let file = weights();
    let det = detectors(dir.path(), &file);
    let mut o = SessionOptions::ipv4(41_300, 80);
    o.fragment_mtu = Some(600);
    let mut frames = Frames::default();
    scenario::http_upload_put(
        &mut frames,
        &o,
        "/upload/model.safetensors",
        &Payload::Bytes(&file.bytes),
    )
    .expect("session");
    let clean = frames.0;
    let want = clean_alerts(dir.path(), &det, &clean);
    assert!(!want.is_empty());
    let ip = 14;
    let frag_offset = |f: &[u8]| u16::from_be_bytes([f[ip + 6], f[ip + 7]]) & 0x1fff;
    let mut attack = Vec::new();
    let mut junk = 0u64;
    let mut datagrams = std::collections::HashSet::new();
    for (ts, f) in clean {
        let from_client = f[ip + 12..ip + 16] == [10, 1, 0, 10];
        if from_client && frag_offset(&f) > 0 && f.len() > ip + 20 + 16 {
            let mut j = f.clone();
            j.drain(ip + 20..ip + 28);
            j[ip + 20..].fill(0);
            let off = (frag_offset(&f) + 1) | (u16::from_be_bytes([f[ip + 6], f[ip + 7]]) & 0xe000);
            j[ip + 6..ip + 8].copy_from_slice(&off.to_be_bytes());
            let total = u16::try_from(j.len() - ip).expect("fits");
            j[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
            let sum = Ipv4HeaderSlice::from_slice(&j[ip..])
                .expect("ipv4")
                .to_header()
                .calc_header_checksum();
            j[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
            attack.push((ts, j));
            junk += 1;
            datagrams.insert([f[ip + 4], f[ip + 5]]);
        }
        attack.push((ts, f));
    }
    let datagrams = datagrams.len() as u64;
    assert!(junk > 1000 && datagrams > 800, "{junk} {datagrams}");
    let files = write(dir.path(), "fragments.pcap", attack);
    for workers in [1, 2] {
        let (s, events) = replay_with(&files, settings(workers, ChecksumMode::Yes), &det);
        assert_eq!(weight_alerts(&events), want, "{workers} workers");
        assert_eq!(s.stats.get("decoder", "fragment_overlap_diff"), datagrams);
        let a = anomalies(&events);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0]["event"], "ipv4.frag_overlap");
        assert_eq!(a[0]["os_policy"], "bsd");
    }
    let mut first = settings(1, ChecksumMode::Yes);
    first.config.os_policy = OsPolicy::First;
    let (s, events) = replay_with(&files, first, &det);
    assert!(
        !weight_alerts(&events)
            .iter()
            .any(|(c, _, _)| *c == AlertCategory::WeightsKnown)
    );
    assert_eq!(s.stats.get("decoder", "invalid_tcp_checksum"), datagrams);
}
