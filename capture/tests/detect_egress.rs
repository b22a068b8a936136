//! Egress volume (per flow and per rolling window, shared across threads)
//! and the encrypted size match, on synthetic flow views.

use crate::detect_common::{drive, net, view};
use capture::detect::egress::{EgressFlowDetector, EgressWindowDetector, Policy};
use capture::detect::known::{ChunkParams, Index};
use capture::detect::sizematch::SizeMatchDetector;
use capture::detect::{DetectConfig, FlowDetector, PolicyConfig, build};
use eve::AlertCategory;
use fixtures::weights::Rng;
use std::sync::Arc;

const MB: u64 = 1 << 20;

fn policy(threshold: u64) -> Arc<Policy> {
    let cfg = PolicyConfig {
        internal_networks: vec!["10.0.0.0/8".into(), "fd00::/8".into()],
        allowed_destinations: vec!["203.0.113.0/24".into(), ".backup.corp.example".into()],
        upload_alert_bytes: threshold,
        ..PolicyConfig::default()
    };
    Arc::new(Policy::from_config(&cfg).expect("valid policy"))
}

#[test]
fn one_flow_alerts_the_moment_it_crosses_the_threshold() {
    let det = EgressFlowDetector::new(policy(100 * MB));
    for app in ["tls", "ssh", "raw", "http"] {
        let n = net("10.1.2.3", "198.51.100.7", 443, app, 1);
        let mut scan = det
            .begin(&view(&n, Some("files.example.net"), 0, None, 0.0))
            .expect("egress flow");
        let steps: Vec<u64> = (0..30).map(|i| i * 5 * MB).collect();
        let found = drive(scan.as_mut(), &n, Some("files.example.net"), &steps);
        assert_eq!(found.len(), 1, "{app}: one alert per flow");
        let (i, f) = &found[0];
        assert_eq!(*i, 20, "{app}: at the first step at or over 100 MiB");
        assert_eq!(f.category, AlertCategory::EgressVolume);
        assert_eq!(f.evidence["flow_bytes_out"], 100 * MB);
        assert_eq!(f.evidence["destination_name"], "files.example.net");
    }
}

#[test]
fn allowed_destinations_and_internal_traffic_are_silent() {
    let det = EgressFlowDetector::new(policy(MB));
    let cases = [
        ("10.1.2.3", "203.0.113.9", None),
        ("10.1.2.3", "198.51.100.7", Some("backup.corp.example")),
        (
            "10.1.2.3",
            "198.51.100.7",
            Some("s3.eu.backup.corp.example"),
        ),
        // Names compare without case, a trailing root dot ignored.
        (
            "10.1.2.3",
            "198.51.100.7",
            Some("S3.EU.Backup.Corp.Example."),
        ),
        ("10.1.2.3", "10.9.9.9", None),
        ("198.51.100.1", "198.51.100.7", None),
    ];
    for (src, dst, sni) in cases {
        let n = net(src, dst, 443, "tls", 2);
        if let Some(mut scan) = det.begin(&view(&n, sni, 0, None, 0.0)) {
            let found = drive(scan.as_mut(), &n, sni, &[0, 10 * MB, 20 * MB]);
            assert!(found.is_empty(), "{src} -> {dst} {sni:?}");
        }
    }
    // A look-alike of an allowed suffix is denied.
    let n = net("10.1.2.3", "198.51.100.7", 443, "tls", 3);
    let mut scan = det.begin(&view(&n, None, 0, None, 0.0)).expect("egress");
    let found = drive(
        scan.as_mut(),
        &n,
        Some("evilbackup.corp.example"),
        &[0, 2 * MB],
    );
    assert_eq!(found.len(), 1);
    // IPv6 ULA inside.
    let n = net("fd00::5", "2001:db8::7", 22, "ssh", 4);
    let mut scan = det.begin(&view(&n, None, 0, None, 0.0)).expect("egress v6");
    assert_eq!(drive(scan.as_mut(), &n, None, &[0, 2 * MB]).len(), 1);
}

#[test]
fn server_side_egress_counts_bytes_to_the_client() {
    let det = EgressFlowDetector::new(policy(MB));
    // An outside client pulls from an internal server.
    let n = net("198.51.100.7", "10.1.2.3", 8080, "http", 5);
    let mut scan = det.begin(&view(&n, None, 0, None, 0.0)).expect("egress");
    let mut v = view(&n, None, 100, None, 1.0);
    v.payload_toclient = 3 * MB;
    let f = scan
        .progress(&v)
        .expect("download by an outsider is egress");
    assert_eq!(f.evidence["internal_host"], "10.1.2.3");
}

#[test]
fn window_sums_flows_of_one_pair_across_threads_and_alerts_once() {
    let det = Arc::new(EgressWindowDetector::new(policy(100 * MB), true));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let det = det.clone();
            std::thread::spawn(move || {
                let mut alerts = 0;
                for k in 0..5u64 {
                    let n = net("10.0.0.8", "198.51.100.9", 443, "tls", t * 100 + k);
                    let mut scan = det.begin(&view(&n, None, 0, None, 0.0)).expect("egress");
                    // 5 flows x 4 threads x 8 MiB = 160 MiB over the window.
                    for step in 1..=4u64 {
                        let v = view(
                            &n,
                            None,
                            step * 2 * MB,
                            None,
                            (t * 5 + k) as f64 + step as f64,
                        );
                        alerts += usize::from(scan.progress(&v).is_some());
                    }
                }
                alerts
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    assert_eq!(total, 1, "exactly one window alert for the pair");
}

#[test]
fn window_forgets_old_bytes() {
    let det = EgressWindowDetector::new(policy(10 * MB), true);
    let mut alerts = 0;
    for k in 0..10u64 {
        // 6 MiB every 1000 s with a 3600 s window: at most 4 in a window = 24 MiB -> alerts;
        // with 2 MiB each only 8 MiB ever sits in the window.
        let n = net("10.0.0.9", "198.51.100.10", 443, "tls", 50 + k);
        let mut scan = det.begin(&view(&n, None, 0, None, 0.0)).expect("egress");
        alerts += usize::from(
            scan.progress(&view(&n, None, 2 * MB, None, k as f64 * 1000.0))
                .is_some(),
        );
    }
    assert_eq!(alerts, 0);
}

fn index_with(sizes: &[usize]) -> Index {
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    let mut r = Rng::new(77);
    for (i, s) in sizes.iter().enumerate() {
        idx.add(
            &format!("/models/big/model-0000{}-of-00002.safetensors", i + 1),
            r.bytes(*s).as_slice(),
        )
        .expect("add");
    }
    idx
}

#[test]
fn encrypted_upload_of_a_registered_size_matches() {
    let sizes = [3_000_000usize, 2_200_000];
    let idx = index_with(&sizes);
    let cfg = Arc::new(DetectConfig::default());
    let det = SizeMatchDetector::new(&idx, policy(100 * MB), cfg);
    let cases: [(u64, &str, Option<&str>, bool); 6] = [
        (3_000_000 + 900, "tls", Some("upload.example.org"), true),
        (3_000_000 - 2000, "ssh", None, true),
        (5_200_000 + 4000, "tls", None, true),
        (3_500_000, "tls", None, false),
        (3_000_000 + 900, "tls", Some("x.backup.corp.example"), false),
        (3_000_000 + 900, "http", None, false),
    ];
    for (plain, app, sni, expect) in cases {
        let n = net("10.3.3.3", "198.51.100.20", 443, app, 9);
        let mut scan = det
            .begin(&view(&n, sni, 0, None, 0.0))
            .expect("upload flow");
        let f = scan.end(&view(&n, sni, plain + 50_000, Some(plain), 30.0));
        assert_eq!(f.is_some(), expect, "{plain} {app} {sni:?}: {f:?}");
        if let Some(f) = f {
            assert_eq!(f.category, AlertCategory::EncryptedSizeMatch);
        }
    }
}

#[test]
fn build_wires_every_detector_and_names_bad_config() {
    let d = build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("defaults");
    let names: Vec<_> = d.object.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["format", "encoded", "tensor_stats"]);
    let flows: Vec<_> = d.flow.iter().map(|f| f.name()).collect();
    assert_eq!(flows, ["egress_flow", "egress_window"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("w.idx");
    index_with(&[1_500_000]).write(&p).expect("write");
    let d =
        build(&PolicyConfig::default(), &DetectConfig::default(), Some(&p)).expect("with index");
    assert_eq!(d.object.len(), 4);
    assert_eq!(d.flow.len(), 3);

    let bad = PolicyConfig {
        internal_networks: vec!["10.0.0.0/33".into()],
        ..PolicyConfig::default()
    };
    let err = build(&bad, &DetectConfig::default(), None)
        .err()
        .expect("bad CIDR")
        .to_string();
    assert!(err.contains("10.0.0.0/33"), "{err}");
    let bad = DetectConfig {
        disabled: vec!["formats".into()],
        ..DetectConfig::default()
    };
    let err = build(&PolicyConfig::default(), &bad, None)
        .err()
        .expect("bad name")
        .to_string();
    assert!(err.contains("formats"), "{err}");
    let missing = build(
        &PolicyConfig::default(),
        &DetectConfig::default(),
        Some(&dir.path().join("none")),
    );
    assert!(missing.is_err());
}

/// A progress call: (plaintext to server, payload to client, seconds).
type Step = (u64, u64, f64);
/// Steps, and the step at which the alert must leave with its reason.
type Case<'a> = (&'a [Step], Option<(usize, &'a str)>);

/// The size match leaves once the upload stopped at a matching size — the
/// peer answered, or the total stayed put for `size_match_quiet_secs` — not
/// only at the flow's end; an upload passing through a registered size on
/// its way up does not match.
#[test]
fn size_match_leaves_when_the_upload_stops_not_while_it_passes_by() {
    let idx = index_with(&[3_000_000]);
    let det = SizeMatchDetector::new(&idx, policy(100 * MB), Arc::new(DetectConfig::default()));
    let n = net("10.3.3.3", "198.51.100.20", 22, "ssh", 11);
    let at = |plain: u64, toclient: u64, secs: f64| {
        let mut v = view(&n, None, plain + plain / 50, Some(plain), secs);
        v.payload_toclient = toclient;
        v
    };
    let near = 3_000_000 - 2000;
    // (plaintext, bytes to client, seconds) per progress call; the step at
    // which the alert must leave, and why.
    let cases: [Case<'_>; 4] = [
        (
            &[(1_000_000, 4096, 1.0), (near, 5000, 2.0), (near, 6000, 2.1)],
            Some((2, "peer_answered")),
        ),
        (
            &[(near, 5000, 2.0), (near, 5000, 4.0), (near, 5000, 7.5)],
            Some((2, "upload_quiet")),
        ),
        // Still growing: through the size and beyond, the server answering
        // all along (SSH window adjustments).
        (
            &[
                (near, 5000, 2.0),
                (3_000_500, 6000, 2.1),
                (3_900_000, 7000, 3.0),
            ],
            None,
        ),
        // Another size entirely.
        (&[(5_000_000, 4096, 1.0), (5_000_000, 9000, 2.0)], None),
    ];
    for (steps, expect) in cases {
        let mut scan = det.begin(&at(0, 0, 0.0)).expect("upload flow");
        let got = steps.iter().enumerate().find_map(|(i, (p, c, s))| {
            scan.progress(&at(*p, *c, *s))
                .map(|f| (i, f.evidence["decided"].as_str().unwrap_or("").to_string()))
        });
        assert_eq!(
            got.as_ref().map(|(i, w)| (*i, w.as_str())),
            expect,
            "{steps:?}"
        );
        if got.is_none() {
            let last = steps.last().expect("steps");
            let f = scan.end(&at(last.0, last.1, last.2 + 1.0));
            assert!(f.is_none(), "{steps:?}: {f:?}");
        }
    }
}
