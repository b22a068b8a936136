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
    let want = weight_alerts(
        &replay_with(
            &write(dir.path(), "clean.pcap", clean.clone()),
            settings(1, ChecksumMode::Yes),
            &det,
        )
        .1,
    );
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
