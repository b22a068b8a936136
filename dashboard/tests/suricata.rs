//! Suricata's own EVE into the dashboard: a real Suricata 7 replays a
//! fixture capture (`fixtures/pcaps/mixed_flows.pcap`) with a small rule
//! set; its `eve.json` lines (alert, fileinfo, flow, tls, http, stats) are
//! POSTed as they are, through a token bound to the sensor name Suricata
//! writes as `host`, and must be stored and shown by the API and the pages.
//! Skips, saying so, when Suricata is not installed (`scripts/setup.sh
//! --tests` installs it from Debian's backports suite).

use super::STORE;
use crate::common::*;
use dashboard::Scope;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const SENSOR: &str = "suricata-lab";

const CONFIG: &str = r#"%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,192.168.0.0/16,172.16.0.0/12,fc00::/7]"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "80"
sensor-name: suricata-lab
classification-file: classification.config
reference-config-file: reference.config
rule-files:
  - test.rules
stats:
  enabled: yes
  interval: 1
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
        - http
        - tls
        - files
        - flow
        - stats:
            totals: yes
            threads: no
app-layer:
  protocols:
    http:
      enabled: yes
    tls:
      enabled: yes
"#;

const RULES: &str = r#"alert http any any -> any any (msg:"LAB HTTP request for a model file"; flow:established,to_server; http.method; content:"GET"; classtype:policy-violation; sid:9000001; rev:2;)
alert tls any any -> any any (msg:"LAB TLS client hello with SNI"; flow:established,to_server; tls.sni; content:"."; sid:9000002; rev:1;)
"#;

/// Run Suricata on `pcap`; its EVE lines, or `None` when it is not installed.
fn suricata_eve(pcap: &Path, dir: &Path) -> Option<Vec<String>> {
    let version = Command::new("suricata").arg("-V").output().ok()?;
    eprintln!("{}", String::from_utf8_lossy(&version.stdout).trim());
    std::fs::write(dir.join("suricata.yaml"), CONFIG).unwrap();
    std::fs::write(dir.join("test.rules"), RULES).unwrap();
    std::fs::write(
        dir.join("classification.config"),
        "config classification: policy-violation,Potential Corporate Privacy Violation,1\n",
    )
    .unwrap();
    std::fs::write(dir.join("reference.config"), "").unwrap();
    let log = dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let out = Command::new("suricata")
        .current_dir(dir)
        .args([
            "-c",
            "suricata.yaml",
            "-S",
            "test.rules",
            "-k",
            "none",
            "-r",
        ])
        .arg(pcap)
        .arg("-l")
        .arg(&log)
        .output()
        .expect("run suricata");
    assert!(
        out.status.success(),
        "suricata failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(log.join("eve.json")).expect("eve.json");
    Some(text.lines().map(String::from).collect())
}

#[test]
fn suricatas_own_eve_is_stored_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcaps/mixed_flows.pcap");
    let Some(lines) = suricata_eve(&pcap, dir.path()) else {
        eprintln!(
            "SKIP suricatas_own_eve_is_stored_and_shown: suricata is not installed \
             (scripts/setup.sh --tests installs Suricata 7 from Debian backports)"
        );
        return;
    };
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    for t in ["alert", "fileinfo", "flow", "tls", "http", "stats"] {
        assert!(
            count(t) > 0,
            "Suricata wrote no {t} event:\n{}",
            lines.join("\n")
        );
    }
    // As Suricata writes them: its timestamps, `host`, no event_id.
    assert!(
        events
            .iter()
            .all(|e| e["timestamp"].as_str().unwrap().ends_with("+0000")
                && e.get("event_id").is_none()
                && e.get("sensor_id").is_none())
    );

    let s = TestServer::start_on(STORE);
    let bound =
        dashboard::admin::create_token_for(&s.db, Scope::Ingest, "lab", &[SENSOR.into()]).unwrap();
    let read = s.token(Scope::Read);
    let body = format!("[{}]", lines.join(","));
    let r = s.post_json("/api/v1/events", Some(&bound), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], events.len(), "{}", r.body);
    // The same lines again (a shipper's retry): duplicates, not new events.
    let r = s.post_json("/api/v1/events", Some(&bound), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["duplicates"], events.len(), "{}", r.body);

    // Shippers: Filebeat adds fields next to the event, Vector's raw file
    // source wraps the line in `message`; RFC 3339 offsets are fine too.
    let mut decorated = events
        .iter()
        .find(|e| e["event_type"] == "fileinfo")
        .unwrap()
        .clone();
    decorated["agent"] = json!({"type": "filebeat", "version": "8.15.0"});
    decorated["log"] = json!({"file": {"path": "/var/log/suricata/eve.json"}});
    let mut rfc = events
        .iter()
        .find(|e| e["event_type"] == "flow")
        .unwrap()
        .clone();
    rfc["timestamp"] = rfc["timestamp"]
        .as_str()
        .unwrap()
        .replace("+0000", "+00:00")
        .into();
    let wrapped =
        json!({"message": lines[1], "source_type": "file", "file": "/var/log/suricata/eve.json"});
    let r = s.post_json(
        "/api/v1/events",
        Some(&bound),
        &json!([decorated, rfc, wrapped]).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 2, "{}", r.body);
    assert_eq!(
        r.json()["duplicates"],
        1,
        "the wrapped line is the one sent before: {}",
        r.body
    );

    // Another sensor's events through the bound token, a type the
    // dashboard does not take, a far-future time, a mistyped Suricata
    // field: refused one by one (422), naming the problem.
    let mut other = events[0].clone();
    other["host"] = "elsewhere".into();
    let dns = json!({"timestamp": events[0]["timestamp"], "event_type": "dns", "host": SENSOR, "dns": {}});
    let mut future = events[0].clone();
    future["timestamp"] = "2099-01-01T00:00:00.000000+0000".into();
    let mut mistyped = events[0].clone();
    mistyped["alert"]["signature_id"] = "9000001".into();
    let r = s.post_json(
        "/api/v1/events",
        Some(&bound),
        &json!([other, dns, future, mistyped]).to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let rejected = r.json()["rejected"].clone();
    let error = |i: usize| rejected[i]["error"].as_str().unwrap().to_string();
    assert!(error(0).contains("elsewhere"), "{rejected}");
    assert!(error(1).contains("\"dns\""), "{rejected}");
    assert!(
        error(2).contains("ahead of the server's clock"),
        "{rejected}"
    );
    assert!(error(3).contains("alert.signature_id"), "{rejected}");
    assert!(rejected[3]["event_id"].is_string(), "{rejected}");

    // The API: Suricata's alerts with its rule fields, the sensor by name.
    let alerts = s.all_alerts(&read, "");
    assert_eq!(alerts.len(), count("alert"), "{alerts:?}");
    for a in &alerts {
        assert_eq!(a["sensor_id"], SENSOR);
        assert_eq!(a["host"], SENSOR);
        assert_eq!(a["alert"]["gid"], 1);
        assert!(a["event_id"].is_string());
    }
    let http_alert = alerts
        .iter()
        .find(|a| a["alert"]["signature_id"] == 9000001)
        .expect("the HTTP rule's alert");
    assert_eq!(http_alert["alert"]["rev"], 2);
    assert_eq!(
        http_alert["alert"]["category"],
        "Potential Corporate Privacy Violation"
    );
    let tls_alert = alerts
        .iter()
        .find(|a| a["alert"]["signature_id"] == 9000002)
        .expect("the TLS rule's alert");
    let by_sensor = s.all_alerts(&read, &format!("sensor={SENSOR}&q=lab+http"));
    assert_eq!(by_sensor.len(), 1, "{by_sensor:?}");
    let sensors = s.get("/api/v1/sensors", Some(&read)).json();
    let lab = sensors["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["sensor_id"] == SENSOR)
        .expect("the Suricata sensor");
    assert!(
        lab["events"].as_u64().unwrap() >= events.len() as u64,
        "{lab}"
    );
    assert!(
        lab["stats"]["decoder"]["pkts"].as_u64().unwrap() > 0,
        "{lab}"
    );

    // The pages: the alert list, an alert with its flow and file, the
    // overview's top talkers from Suricata's flows.
    let page = |path: &str| {
        let r = s.get(path, Some(&read));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    };
    let list = page("/alerts");
    for needle in [
        "LAB HTTP request for a model file",
        "LAB TLS client hello with SNI",
        "Potential Corporate Privacy Violation",
        SENSOR,
    ] {
        assert!(list.contains(needle), "/alerts lacks {needle:?}");
    }
    let detail = page(&format!("/alerts/{}", http_alert["id"]));
    for needle in [
        "LAB HTTP request for a model file (#9000001)",
        "Flow, ",
        "File /",
    ] {
        assert!(
            detail.contains(needle),
            "alert page lacks {needle:?}:\n{detail}"
        );
    }
    let tls_detail = page(&format!("/alerts/{}", tls_alert["id"]));
    assert!(tls_detail.contains("Flow, "), "{tls_detail}");
    let overview = page("/");
    let dest = http_alert["dest_ip"].as_str().unwrap();
    assert!(overview.contains(dest), "overview lacks {dest}");
}
