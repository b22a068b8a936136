//! Weight-transfer captures from the fixtures catalog (`weights_*`,
//! generated on demand) replayed through the capture engine with every
//! detector: each format over HTTP download / PUT / multipart / chunked /
//! gzip / raw TCP, headerless tensors, a partial transfer, a mid-stream
//! capture, TLS and SSH uploads to an outside host, negative traps.
//! (The public corpus is replayed with every detector by `engine_corpus`.)

use capture::detect::known::{ChunkParams, Index};
use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use capture::{Settings, run_offline};
use eve::sink::memory::MemorySink;
use eve::{AlertCategory, AlertEvent, Event, EventKind};
use fixtures::catalog;
use fixtures::weights::pcaps;
use std::path::{Path, PathBuf};

struct Run {
    events: Vec<Event>,
    _dir: tempfile::TempDir,
}

fn index_file(dir: &Path) -> PathBuf {
    let f = pcaps::known_file();
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    idx.add(&format!("/lab/models/{}", f.name), f.bytes.as_slice())
        .expect("add");
    let p = dir.join("weights.idx");
    idx.write(&p).expect("write index");
    p
}

fn replay(entry: &str, policy: PolicyConfig, with_index: bool) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = catalog::find(entry).unwrap_or_else(|| panic!("catalog entry {entry}"));
    let pcap = e.write_files(dir.path()).expect("generate capture");
    let idx = with_index.then(|| index_file(dir.path()));
    let detectors: Detectors =
        build(&policy, &DetectConfig::default(), idx.as_deref()).expect("detectors");
    let settings = Settings {
        workers: 2,
        sensor_id: "detect-test".into(),
        ..Settings::default()
    };
    let mut sink = MemorySink::new();
    run_offline(&[pcap], &settings, &detectors, &mut sink).expect("replay");
    Run {
        events: sink.events(),
        _dir: dir,
    }
}

fn alerts(run: &Run) -> Vec<&AlertEvent> {
    run.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some(a.as_ref()),
            _ => None,
        })
        .collect()
}

fn of(run: &Run, c: AlertCategory) -> Vec<&AlertEvent> {
    alerts(run)
        .into_iter()
        .filter(|a| a.alert.category == c)
        .collect()
}

fn sorted_formats(v: &[&AlertEvent]) -> Vec<String> {
    let mut f: Vec<String> = v
        .iter()
        .filter_map(|a| a.evidence["format"].as_str().map(String::from))
        .collect();
    f.sort();
    f
}

fn expected_formats() -> Vec<String> {
    let mut f: Vec<String> = pcaps::format_files()
        .iter()
        .map(|(f, _)| f.expected_format().to_string())
        .collect();
    f.sort();
    f
}

#[test]
fn every_format_over_every_transport() {
    for entry in [
        "weights_http_download",
        "weights_http_put",
        "weights_http_multipart",
        "weights_http_chunked",
        "weights_http_gzip",
        "weights_raw_tcp",
    ] {
        let run = replay(entry, PolicyConfig::default(), false);
        let found = of(&run, AlertCategory::WeightsFormat);
        assert_eq!(sorted_formats(&found), expected_formats(), "{entry}");
        for a in &found {
            let fi = a
                .fileinfo
                .as_ref()
                .unwrap_or_else(|| panic!("{entry}: alert without fileinfo"));
            assert_eq!(
                fi.format.map(|f| f.as_str()),
                a.evidence["format"].as_str(),
                "{entry}"
            );
        }
        // fileinfo events carry the format too.
        let formatted = run
            .events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Fileinfo(f) if f.fileinfo.format.is_some_and(|f| f.as_str() != "raw_tensor")))
            .count();
        assert_eq!(
            formatted,
            expected_formats().len(),
            "{entry}: fileinfo.format set on each weight file"
        );
        // Nothing else is called weights in a format: the multipart JSON reply is silent.
        assert!(of(&run, AlertCategory::TensorData).is_empty(), "{entry}");
    }
}

#[test]
fn headerless_tensors_are_named_by_dtype() {
    let run = replay("weights_headerless", PolicyConfig::default(), false);
    let mut dtypes: Vec<String> = of(&run, AlertCategory::WeightsTensor)
        .iter()
        .filter_map(|a| a.evidence["dtype"].as_str().map(String::from))
        .collect();
    dtypes.sort();
    assert_eq!(dtypes, ["bf16", "f16", "f32", "f8_e4m3", "i8"]);
    assert!(of(&run, AlertCategory::WeightsFormat).is_empty());
}

#[test]
fn partial_transfer_is_recognised_and_matched() {
    let run = replay("weights_partial", PolicyConfig::default(), true);
    assert_eq!(
        sorted_formats(&of(&run, AlertCategory::WeightsFormat)),
        ["safetensors"]
    );
    let known = of(&run, AlertCategory::WeightsKnown);
    assert_eq!(known.len(), 1);
    let cov = known[0].evidence["coverage"].as_f64().expect("coverage");
    assert!((0.2..=0.41).contains(&cov), "coverage {cov}");
}

#[test]
fn midstream_capture_without_the_header_still_alerts() {
    let run = replay("weights_midstream", PolicyConfig::default(), true);
    assert!(
        of(&run, AlertCategory::WeightsFormat).is_empty(),
        "the header was not captured"
    );
    let tensor = of(&run, AlertCategory::WeightsTensor);
    assert_eq!(tensor.len(), 1);
    assert_eq!(tensor[0].evidence["dtype"], "bf16");
    let known = of(&run, AlertCategory::WeightsKnown);
    assert_eq!(known.len(), 1);
    assert!(
        known[0].evidence["known_file"]
            .as_str()
            .is_some_and(|n| n.ends_with("model.safetensors"))
    );
}

#[test]
fn encrypted_upload_to_an_outside_host_alerts_egress_and_size() {
    let size = pcaps::known_file().bytes.len() as u64;
    let policy = PolicyConfig {
        upload_alert_bytes: size / 2,
        ..PolicyConfig::default()
    };
    let run = replay("weights_encrypted_upload", policy, true);
    let egress = of(&run, AlertCategory::EgressVolume);
    let protos: Vec<&str> = egress
        .iter()
        .filter_map(|a| a.evidence["app_proto"].as_str())
        .collect();
    assert!(
        protos.contains(&"tls") && protos.contains(&"ssh"),
        "{protos:?}"
    );
    let tls_egress = egress
        .iter()
        .find(|a| a.evidence["app_proto"] == "tls")
        .expect("tls egress");
    assert_eq!(tls_egress.evidence["destination_name"], pcaps::TLS_SNI);
    // Egress alerts leave while the upload runs, before the flow's end. The
    // size matches leave when the server answers after the upload and the
    // client speaks again (TLS: HTTP response, then close_notify; SSH: the
    // server's reply, then channel close): before the end.
    let flow_end = |id: u64| {
        run.events.iter().find_map(|e| match &e.kind {
            EventKind::Flow(f) if e.net.as_ref().map(|n| n.flow_id) == Some(id) => Some(f.flow.end),
            _ => None,
        })
    };
    let mut early = 0;
    for e in &run.events {
        let (EventKind::Alert(a), Some(n)) = (&e.kind, &e.net) else {
            continue;
        };
        let end = flow_end(n.flow_id).expect("flow event of the alert's flow");
        let proto = a.evidence["app_proto"].as_str().unwrap_or("");
        match a.alert.category {
            AlertCategory::EgressVolume => assert!(e.timestamp < end, "{a:?}"),
            AlertCategory::EncryptedSizeMatch => {
                assert!(proto == "tls" || proto == "ssh", "{a:?}");
                assert_eq!(a.evidence["decided"], "peer_answered", "{a:?}");
                assert!(e.timestamp < end, "{a:?}");
            }
            _ => continue,
        }
        early += 1;
    }
    assert_eq!(early, egress.len() + 2);
    let size_match = of(&run, AlertCategory::EncryptedSizeMatch);
    for proto in ["tls", "ssh"] {
        assert!(
            size_match.iter().any(|a| a.evidence["app_proto"] == proto),
            "{proto} upload of {size} bytes: {size_match:?}"
        );
    }
    assert_eq!(size_match.len(), 2, "{size_match:?}");
    for a in &size_match {
        assert_eq!(a.evidence["known_size"], size);
    }
}

#[test]
fn negative_traps_raise_no_weights_alert() {
    let run = replay("weights_negatives", PolicyConfig::default(), true);
    let weights: Vec<_> = alerts(&run)
        .into_iter()
        .filter(|a| a.alert.category.is_weights())
        .collect();
    assert!(weights.is_empty(), "{weights:?}");
    let td = of(&run, AlertCategory::TensorData);
    assert_eq!(td.len(), 1, "the uint8 image .npy");
    assert_eq!(td[0].alert.severity, 3);
}

/// Every capture of the public corpus (`../shared/corpus/pcap-public`,
/// skipped with a message when absent) replayed with every detector and a
/// known-weights index of the fixtures' weight files: no weights alert and no
/// size match on this ordinary traffic.
#[test]
fn corpus_with_an_index_raises_no_weights_alert() {
    let Some(dir) = crate::engine_support::corpus_dir() else {
        eprintln!("SKIP: corpus not found at ../shared/corpus/pcap-public");
        return;
    };
    let files = crate::engine_support::corpus_files(&dir);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    let known = pcaps::known_file();
    idx.add(&known.name, known.bytes.as_slice()).expect("add");
    for (_, f) in pcaps::format_files() {
        idx.add(&f.name, f.bytes.as_slice()).expect("add");
    }
    let ip = tmp.path().join("weights.idx");
    idx.write(&ip).expect("write index");
    let det = build(
        &PolicyConfig::default(),
        &DetectConfig::default(),
        Some(&ip),
    )
    .expect("build");
    let mut packets = 0;
    for f in &files {
        let (summary, events) = crate::engine_support::replay(std::slice::from_ref(f), 2, &det);
        packets += summary.packets();
        for e in &events {
            if let EventKind::Alert(a) = &e.kind {
                assert!(
                    !a.alert.category.is_weights()
                        && a.alert.category != AlertCategory::EncryptedSizeMatch,
                    "{}: {:?}",
                    f.display(),
                    a
                );
            }
        }
    }
    assert!(
        files.len() > 100 && packets > 1000,
        "{} files, {packets} packets",
        files.len()
    );
}

/// Every weight file of the format captures registered: each one sent whole
/// over HTTP PUT and over raw TCP is found by the chunk matcher and named.
#[test]
fn registered_files_sent_whole_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    let files = pcaps::format_files();
    for (_, f) in &files {
        idx.add(&format!("/lab/{}", f.name), f.bytes.as_slice())
            .expect("add");
    }
    // Files with fewer than `known_min_chunks` identifying chunks cannot alert.
    let min = DetectConfig::default().known_min_chunks as usize;
    let findable: Vec<String> = (0..files.len())
        .filter(|i| idx.chunks.iter().filter(|c| c.file == *i as u32).count() >= min)
        .map(|i| idx.files[i].name.clone())
        .collect();
    assert!(findable.len() >= files.len() / 2, "{findable:?}");
    let ip = dir.path().join("weights.idx");
    idx.write(&ip).expect("write index");
    let det = build(
        &PolicyConfig::default(),
        &DetectConfig::default(),
        Some(&ip),
    )
    .expect("build");
    for entry in ["weights_http_put", "weights_raw_tcp"] {
        let e = catalog::find(entry).expect("catalog entry");
        let pcap = e.write_files(dir.path()).expect("generate capture");
        let mut sink = MemorySink::new();
        run_offline(&[pcap], &Settings::default(), &det, &mut sink).expect("replay");
        let events = sink.events();
        let mut named: Vec<String> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Alert(a) if a.alert.category == AlertCategory::WeightsKnown => {
                    a.evidence["known_file"].as_str().map(str::to_string)
                }
                _ => None,
            })
            .collect();
        named.sort();
        let mut want = findable.clone();
        want.sort();
        assert_eq!(named, want, "{entry}");
    }
}
