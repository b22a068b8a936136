//! Events serialize to the field names of `shared/spec/event-output.md` and
//! read back unchanged.

use eve::*;
use serde_json::{Value, json};

fn net() -> NetworkFields {
    let mut n = NetworkFields::new(
        42,
        "10.0.0.5".parse().unwrap(),
        51000,
        "198.51.100.7".parse().unwrap(),
        443,
        Proto::Tcp,
    );
    n.app_proto = Some("tls".into());
    n
}

fn roundtrip(e: &Event) -> Value {
    let line = e.to_json_line();
    assert!(!line.contains('\n'));
    let back: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(&back, e, "event reads back unchanged");
    serde_json::from_str(&line).unwrap()
}

#[test]
fn alert_has_spec_fields() {
    let mut ev = Evidence::new();
    ev.insert("format".into(), json!("safetensors"));
    ev.insert("tensor_count".into(), json!(291));
    let mut body = AlertEvent::new(
        Alert::new(
            "safetensors weights",
            1_000_001,
            AlertCategory::WeightsFormat,
            1,
        ),
        ev,
    );
    body.tls = Some(TlsInfo {
        sni: Some("evil.example".into()),
        ..Default::default()
    });
    let e = Event::new(
        Timestamp::from_unix_micros(1_700_000_000_000_001),
        EventKind::Alert(Box::new(body)),
    )
    .sensor("s1")
    .network(net());
    let v = roundtrip(&e);
    assert_eq!(v["event_type"], "alert");
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000001+0000");
    assert_eq!(v["flow_id"], 42);
    assert_eq!(v["src_ip"], "10.0.0.5");
    assert_eq!(v["dest_port"], 443);
    assert_eq!(v["proto"], "TCP");
    assert_eq!(v["app_proto"], "tls");
    assert!(v["community_id"].as_str().unwrap().starts_with("1:"));
    assert_eq!(v["alert"]["category"], "weights_format");
    assert_eq!(v["alert"]["severity"], 1);
    assert_eq!(v["alert"]["signature_id"], 1_000_001);
    assert_eq!(v["alert"]["gid"], 1);
    assert_eq!(v["alert"]["rev"], 1);
    assert_eq!(v["evidence"]["tensor_count"], 291);
    assert_eq!(v["tls"]["sni"], "evil.example");
    assert_eq!(v["sensor_id"], "s1");
    assert!(uuid_like(v["event_id"].as_str().unwrap()));
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

#[test]
fn fileinfo_and_flow_have_spec_fields() {
    let fi = FileinfoEvent {
        fileinfo: FileInfo {
            filename: Some("/model.safetensors".into()),
            size: 1234,
            sha256: Some("ab".repeat(32)),
            state: FileState::Closed,
            gaps: false,
            direction: Direction::ToClient,
            format: Some(WeightFormat::RawTensor),
            content_type: Some("application/octet-stream".into()),
        },
        http: Some(HttpInfo {
            hostname: Some("h".into()),
            url: Some("/model.safetensors".into()),
            http_method: Some("GET".into()),
            status: Some(200),
            ..Default::default()
        }),
        tls: None,
    };
    let e = Event::new(Timestamp::now(), EventKind::Fileinfo(fi)).network(net());
    let v = roundtrip(&e);
    assert_eq!(v["event_type"], "fileinfo");
    assert_eq!(v["fileinfo"]["state"], "CLOSED");
    assert_eq!(v["fileinfo"]["direction"], "toclient");
    assert_eq!(v["fileinfo"]["format"], "raw_tensor");
    assert_eq!(v["http"]["http_method"], "GET");
    assert_eq!(v["http"]["status"], 200);

    let t = Timestamp::now();
    let flow = FlowEvent {
        flow: FlowRecord {
            pkts_toserver: 1,
            pkts_toclient: 2,
            bytes_toserver: 3,
            bytes_toclient: 4,
            start: t,
            end: t,
            state: FlowState::Closed,
            reason: FlowReason::Timeout,
            plaintext_toserver: None,
            plaintext_toclient: None,
        },
        tls: None,
        ssh: None,
        tcp: Some(TcpInfo {
            gaps: true,
            midstream: false,
            gap_bytes: 10,
        }),
    };
    let v = roundtrip(&Event::new(t, EventKind::Flow(flow)).network(net()));
    assert_eq!(v["event_type"], "flow");
    assert_eq!(v["flow"]["bytes_toclient"], 4);
    assert_eq!(v["flow"]["state"], "closed");
    assert_eq!(v["flow"]["reason"], "timeout");
    assert_eq!(v["tcp"]["gaps"], true);
}

#[test]
fn analyzer_alert_and_stats() {
    let mut body = AlertEvent::new(
        Alert::new(
            "distillation cluster",
            2_000_002,
            AlertCategory::DistillationCluster,
            1,
        ),
        Evidence::new(),
    );
    body.cluster_id = Some("c-1".into());
    body.members = Some(vec!["a1".into(), "a2".into()]);
    let v = roundtrip(&Event::new(
        Timestamp::now(),
        EventKind::Alert(Box::new(body)),
    ));
    assert_eq!(v["alert"]["category"], "distillation_cluster");
    assert_eq!(v["members"][1], "a2");
    assert!(
        v.get("flow_id").is_none(),
        "analyzer alerts carry no flow fields"
    );

    let mut s = Stats::default();
    s.add("capture", "packets", 10);
    s.add("decoder", "truncated_ipv4", 2);
    let v = roundtrip(&Event::new(
        Timestamp::now(),
        EventKind::Stats(StatsEvent { stats: s }),
    ));
    assert_eq!(v["event_type"], "stats");
    assert_eq!(v["stats"]["capture"]["packets"], 10);
    assert_eq!(v["stats"]["decoder"]["truncated_ipv4"], 2);
    assert!(
        v["stats"].get("version").is_none(),
        "no version key unless one is set"
    );

    // The producer's version travels beside the counter sections.
    let mut s = Stats {
        version: Some("9.8.7".into()),
        ..Stats::default()
    };
    s.add("capture", "packets", 1);
    let v = roundtrip(&Event::new(
        Timestamp::now(),
        EventKind::Stats(StatsEvent { stats: s }),
    ));
    assert_eq!(v["stats"]["version"], "9.8.7");
    assert_eq!(v["stats"]["capture"]["packets"], 1);
}

#[test]
fn derived_ids_are_stable() {
    let a = Event::with_derived_id(
        Timestamp::now(),
        EventKind::Stats(StatsEvent::default()),
        "x",
    );
    let b = Event::with_derived_id(
        Timestamp::now(),
        EventKind::Stats(StatsEvent::default()),
        "x",
    );
    assert_eq!(a.event_id, b.event_id);
    assert_ne!(a.event_id, derived_event_id("y"));
}

/// Ids derived from a prefix and a suffix are the UUIDs v5 of the whole
/// name in weightwatch's namespace, as the sensor has always written them
/// (a stored event keeps its id across sensor versions).
#[test]
fn prefixed_ids_are_uuid_v5_of_the_whole_name() {
    let ns = uuid::Uuid::from_u128(0x5d2c_8a8e_6a0e_4f5e_9a8b_77c1_0e4e_a001);
    // A prefix longer than SHA-1's 64-byte block, and short ones.
    let long = "sensor-1|tcp|2001:db8::1:443|2001:db8::2:51000|vlan:10.20|1714564800123456";
    for prefix in ["", "s|tcp|10.0.0.1:80|10.0.0.2:40000|1", long] {
        let ids = EventIdPrefix::new(prefix);
        for (suffix, n) in [("|fileinfo|", 0u32), ("|flow|update|", 12), ("|alert|", 7)] {
            let got = ids.id(format_args!("{suffix}{n}"));
            let name = format!("{prefix}{suffix}{n}");
            assert_eq!(got, uuid::Uuid::new_v5(&ns, name.as_bytes()).to_string());
            assert_eq!(got, derived_event_id(&name));
        }
        assert_eq!(ids.id(format_args!("")), derived_event_id(prefix));
    }
}

#[test]
fn foreign_fields_are_tolerated() {
    let line = r#"{"timestamp":"2026-11-21T10:00:00.000000+00:00","event_id":"x","event_type":"stats","stats":{"uptime":3},"extra":{"a":1}}"#;
    let e: Event = serde_json::from_str(line).unwrap();
    assert_eq!(e.event_type(), "stats");
}

#[test]
fn every_timestamp_form_reads_back_as_the_same_event() {
    let forms = [
        "2026-11-21T10:00:00.123456+0000",
        "2026-11-21T10:00:00.123456+00:00",
        "2026-11-21T10:00:00.123456Z",
        "2026-11-21T11:00:00.123456+0100",
    ];
    let events: Vec<Event> = forms
        .iter()
        .map(|ts| {
            let line = format!(
                r#"{{"timestamp":"{ts}","event_id":"x","event_type":"flow","flow_id":1,"community_id":"1:x","src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":2,"proto":"TCP","flow":{{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":60,"bytes_toclient":0,"start":"{ts}","end":"{ts}","state":"new","reason":"timeout"}}}}"#
            );
            serde_json::from_str(&line).unwrap()
        })
        .collect();
    assert!(events.windows(2).all(|w| w[0] == w[1]));
    // Written back in Suricata's form only.
    let v: serde_json::Value = serde_json::from_str(&events[1].to_json_line()).unwrap();
    assert_eq!(v["timestamp"], "2026-11-21T10:00:00.123456+0000");
    assert_eq!(v["flow"]["start"], "2026-11-21T10:00:00.123456+0000");
}
