//! Every event the sensor writes for the fixture captures, and for a sample
//! of the public corpus, validates against Suricata's own EVE schema
//! (`../shared/spec/suricata-eve-schema.json`, Suricata's `etc/schema.json`)
//! with added fields allowed and nothing else relaxed: a field Suricata
//! defines must have Suricata's type. Alerts carry `gid` and `rev`, and each
//! signature id one fixed `signature` text, the one in `capture::detect::sig`.

use crate::engine_support::{corpus_dir, corpus_files};
use capture::detect::known::{ChunkParams, Index};
use capture::detect::{DetectConfig, PolicyConfig, build, sig};
use capture::{Settings, run_offline};
use eve::sink::eve_file::EveFileSink;
use fixtures::catalog;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/suricata-eve-schema.json")
}

/// Suricata's schema with `additionalProperties: false` dropped everywhere
/// (our documented extensions are added fields); every type, pattern and
/// enum of a field Suricata defines stays.
fn allow_added_fields(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                m.remove("additionalProperties");
            }
            m.values_mut().for_each(allow_added_fields);
        }
        Value::Array(a) => a.iter_mut().for_each(allow_added_fields),
        _ => {}
    }
}

/// Replay `pcap` with every detector through the EVE file sink into
/// `out` (a fresh file); `None` when the capture is refused outright.
fn write_eve(pcap: &Path, index: &Path, out: &Path) -> Option<Vec<Value>> {
    // A low upload threshold, so the egress signatures fire on the fixtures.
    let policy = PolicyConfig {
        upload_alert_bytes: 64 * 1024,
        ..PolicyConfig::default()
    };
    let detectors = build(&policy, &DetectConfig::default(), Some(index)).expect("detectors");
    let settings = Settings {
        sensor_id: "schema-test".into(),
        ..Settings::default()
    };
    let mut sink = EveFileSink::open(out.to_str().unwrap(), None, 1).expect("eve file");
    let ran = run_offline(&[pcap.to_path_buf()], &settings, &detectors, &mut sink);
    drop(sink);
    ran.ok()?;
    let text = std::fs::read_to_string(out).expect("read eve.json");
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect(),
    )
}

#[test]
fn every_event_validates_against_suricatas_schema() {
    let schema_file = schema_path();
    if !schema_file.exists() {
        // The contract lives beside the checkout (../shared/spec); a clone
        // elsewhere has none to check against.
        eprintln!(
            "SKIP: Suricata's EVE schema not found at {}",
            schema_file.display()
        );
        return;
    }
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_file)
            .unwrap_or_else(|e| panic!("{}: {e}", schema_file.display())),
    )
    .expect("schema is JSON");
    allow_added_fields(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("weights.idx");
    let known = fixtures::weights::pcaps::known_file();
    let mut idx = Index::new(ChunkParams::default(), 1).unwrap();
    idx.add(
        &format!("/lab/models/{}", known.name),
        known.bytes.as_slice(),
    )
    .unwrap();
    idx.write(&index).unwrap();

    // The committed fixtures, and the weight-transfer and tunnelled
    // captures the catalog generates on demand (they raise the alerts).
    let fixtures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcaps");
    let mut captures: Vec<PathBuf> = corpus_files(&fixtures_dir);
    for e in catalog::all() {
        if e.name.starts_with("weights_") || e.name.starts_with("tunnel_") {
            captures.push(e.write_files(dir.path()).expect("generate capture"));
        }
    }
    let fixture_count = captures.len();
    match corpus_dir() {
        Some(c) => {
            // Every third file, in name order: the same sample each run.
            captures.extend(corpus_files(&c).into_iter().step_by(3));
        }
        None => eprintln!("corpus not found at ../shared/corpus/pcap-public: fixtures only"),
    }

    let mut events = 0usize;
    let mut refused = 0usize;
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut texts: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut violations = Vec::new();
    for (i, pcap) in captures.iter().enumerate() {
        let out = dir.path().join(format!("eve-{i}.json"));
        let Some(lines) = write_eve(pcap, &index, &out) else {
            assert!(i >= fixture_count, "{} was refused", pcap.display());
            refused += 1;
            continue;
        };
        for v in lines {
            events += 1;
            *per_type
                .entry(v["event_type"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
            for err in validator.iter_errors(&v) {
                if violations.len() < 20 {
                    violations.push(format!(
                        "{}: {} at {}: {err}",
                        pcap.display(),
                        v["event_type"],
                        err.instance_path()
                    ));
                }
            }
            if events == 1 {
                // The schema is in force: the RFC 3339 offset this sensor
                // wrote before, or a mistyped Suricata field, fails.
                let mut old = v.clone();
                let ts = old["timestamp"]
                    .as_str()
                    .unwrap()
                    .replace("+0000", "+00:00");
                old["timestamp"] = ts.into();
                assert!(!validator.is_valid(&old), "{old}");
                let mut mistyped = v.clone();
                mistyped["flow_id"] = "1".into();
                assert!(!validator.is_valid(&mistyped), "{mistyped}");
            }
            if v["event_type"] == "alert" {
                let a = &v["alert"];
                assert_eq!(a["gid"], 1, "{v}");
                assert!(a["rev"].as_u64().is_some_and(|r| r >= 1), "{v}");
                assert!(v["evidence"]["detail"].is_string(), "{v}");
                texts
                    .entry(a["signature_id"].as_u64().unwrap())
                    .or_default()
                    .insert(a["signature"].as_str().unwrap().to_string());
            }
        }
    }
    eprintln!(
        "{} captures ({fixture_count} fixtures), {refused} refused outright, {events} events {per_type:?}",
        captures.len()
    );
    assert!(
        violations.is_empty(),
        "schema violations:\n{}",
        violations.join("\n")
    );
    for t in ["flow", "fileinfo", "alert", "stats"] {
        assert!(per_type.get(t).is_some_and(|&n| n > 0), "no {t} events");
    }
    // One fixed text per signature id, the table's.
    for (sid, seen) in &texts {
        let want = sig::all()
            .find(|s| u64::from(s.sid) == *sid)
            .unwrap_or_else(|| panic!("sid {sid} is not in capture::detect::sig"));
        assert_eq!(seen, &BTreeSet::from([want.msg.to_string()]), "sid {sid}");
    }
    eprintln!("signatures raised: {texts:?}");
    assert!(texts.len() >= 5, "signatures raised: {texts:?}");
}

/// The signature table: ids unique, one message per id, and every id in
/// `docs/eve.md`'s table with that message.
#[test]
fn signature_table_is_unique_and_documented() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/eve.md"))
        .unwrap();
    let mut sids = BTreeSet::new();
    let mut msgs = BTreeSet::new();
    for s in sig::all() {
        assert!(sids.insert(s.sid), "sid {} twice", s.sid);
        assert!(msgs.insert(s.msg), "message {:?} twice", s.msg);
        let row = format!("| {} | {} | {} |", s.sid, s.rev, s.msg);
        assert!(doc.contains(&row), "docs/eve.md lacks the row {row}");
    }
}
