//! Incidents over the socket, on both stores: alerts grouped at ingest by
//! transfer, by (host, registered file) across flows, by egress pair;
//! linked incidents merged; the window; coverage as the union of the
//! alerts' file ranges; triage of the whole incident (audited, CSRF);
//! filters and keyset pages; the pages escape what attackers control.
//! (Two replicas ingesting one file's alerts at once: `replicas.rs`.)

use super::STORE;
use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use eve::AlertCategory;
use serde_json::{Value, json};

const HOUR: i64 = 3600;

/// A sensor alert of `category` on flow `flow` from `src`, with `evidence`
/// merged into the common one.
fn alert(
    id: &str,
    secs: i64,
    category: AlertCategory,
    flow: u64,
    src: &str,
    evidence: Value,
) -> Value {
    let mut v = sensor_alert(
        id,
        secs,
        category,
        2,
        flow,
        src,
        "198.51.100.7",
        "drop.example",
    );
    for (k, x) in evidence.as_object().unwrap() {
        v["evidence"][k] = x.clone();
    }
    v
}

/// A `weights_known` alert that saw `ranges` of registered file `sha` (1000 bytes).
pub fn known(id: &str, secs: i64, flow: u64, src: &str, sha: &str, ranges: Value) -> Value {
    alert(
        id,
        secs,
        AlertCategory::WeightsKnown,
        flow,
        src,
        json!({"known_file": "/models/<b>m</b>.safetensors", "known_file_bytes": 1000,
               "known_file_sha256": sha, "file_ranges": ranges, "object_bytes_seen": 500}),
    )
}

fn incidents(s: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/incidents?{query}"), Some(token));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["incidents"].as_array().unwrap().clone()
}

fn detail(s: &TestServer, token: &str, id: i64) -> Value {
    let r = s.get(&format!("/api/v1/incidents/{id}"), Some(token));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn a_transfer_its_file_across_flows_and_linked_incidents_group_into_one() {
    let s = TestServer::start_on(STORE);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    // One weights transfer: four alerts on flow 1, in two batches.
    s.ingest(
        &ingest,
        &[
            alert(
                "t-fmt",
                0,
                AlertCategory::WeightsFormat,
                1,
                "10.0.0.1",
                json!({}),
            ),
            alert(
                "t-ten",
                1,
                AlertCategory::WeightsTensor,
                1,
                "10.0.0.1",
                json!({"bytes_seen": 300}),
            ),
        ],
    );
    s.ingest(
        &ingest,
        &[
            alert(
                "t-egr",
                2,
                AlertCategory::EgressVolume,
                1,
                "10.0.0.1",
                json!({"internal_host": "10.0.0.1", "destination": "198.51.100.7", "flow_bytes_out": 600}),
            ),
            known("t-kno", 3, 1, "10.0.0.1", "aa11", json!([[0, 400]])),
        ],
    );
    let all = incidents(&s, &read, "");
    assert_eq!(all.len(), 1, "{all:#?}");
    let inc = &all[0];
    assert_eq!(inc["kind"], "file");
    assert_eq!(inc["alert_count"], 4);
    assert_eq!(
        inc["bytes"], 600,
        "the flow's largest count, not a sum per alert"
    );
    assert_eq!(inc["coverage"], 0.4);

    // The same file from the same host, hours later on other flows: the
    // same incident; the union of ranges is the coverage.
    s.ingest(
        &ingest,
        &[
            known("l-1", 2 * HOUR, 2, "10.0.0.1", "aa11", json!([[300, 700]])),
            known("l-2", 5 * HOUR, 3, "10.0.0.1", "aa11", json!([[700, 1000]])),
            // Another host sending the file: another incident.
            known("o-1", 5 * HOUR, 4, "10.0.0.2", "aa11", json!([[0, 100]])),
        ],
    );
    let files = incidents(&s, &read, "kind=file");
    assert_eq!(files.len(), 2);
    let main = files.iter().find(|i| i["src_ip"] == "10.0.0.1").unwrap();
    assert_eq!(main["alert_count"], 6);
    assert_eq!(main["coverage"], 1.0);
    assert_eq!(main["files"][0]["covered_bytes"], 1000);
    let id = main["id"].as_i64().unwrap();
    let d = detail(&s, &read, id);
    assert_eq!(d["incident"]["files"][0]["ranges"], json!([[0, 1000]]));
    let timeline: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["time"].as_str().unwrap())
        .collect();
    assert_eq!(timeline.len(), 6);
    assert!(timeline.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Two incidents (a format alert on flow 7, a known alert of another
    // file on flow 8) linked by a third alert (that file, on flow 7):
    // merged into the older.
    s.ingest(
        &ingest,
        &[alert(
            "m-fmt",
            10 * HOUR,
            AlertCategory::WeightsFormat,
            7,
            "10.0.0.3",
            json!({}),
        )],
    );
    s.ingest(
        &ingest,
        &[known(
            "m-k8",
            10 * HOUR + 1,
            8,
            "10.0.0.3",
            "bb22",
            json!([[0, 500]]),
        )],
    );
    assert_eq!(incidents(&s, &read, "q=10.0.0.3").len(), 2);
    s.ingest(
        &ingest,
        &[known(
            "m-k7",
            10 * HOUR + 2,
            7,
            "10.0.0.3",
            "bb22",
            json!([[500, 900]]),
        )],
    );
    let merged = incidents(&s, &read, "q=10.0.0.3");
    assert_eq!(merged.len(), 1, "{merged:#?}");
    assert_eq!(merged[0]["alert_count"], 3);
    assert_eq!(merged[0]["coverage"], 0.9);
    // Every alert is reachable from its incident and links back to it.
    let d = detail(&s, &read, merged[0]["id"].as_i64().unwrap());
    let ids: Vec<&str> = d["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m-fmt", "m-k8", "m-k7"]);
}

#[test]
fn the_window_splits_and_triage_moves_the_incident_as_one() {
    let cfg = DashboardConfig {
        incident_window_secs: HOUR as u64,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    let (ingest, read, triage) = (
        s.token(Scope::Ingest),
        s.token(Scope::Read),
        s.token(Scope::Triage),
    );
    s.ingest(
        &ingest,
        &[
            known("w-1", 0, 1, "10.0.0.1", "cc33", json!([[0, 10]])),
            known("w-2", HOUR / 2, 2, "10.0.0.1", "cc33", json!([[10, 20]])),
            // More than the window after w-2: a new incident.
            known("w-3", 2 * HOUR, 3, "10.0.0.1", "cc33", json!([[20, 30]])),
        ],
    );
    let list = incidents(&s, &read, "");
    assert_eq!(list.len(), 2);
    // Newest activity first; keyset pages of one.
    let first = incidents(&s, &read, "limit=1");
    assert_eq!(first[0]["alert_count"], 1);
    let r = s.get("/api/v1/incidents?limit=1", Some(&read)).json();
    let cursor = r["next_cursor"].as_str().unwrap().to_string();
    let second = incidents(&s, &read, &format!("limit=1&cursor={cursor}"));
    assert_eq!(second[0]["alert_count"], 2);
    let id = second[0]["id"].as_i64().unwrap();

    // Read tokens may not triage; triage tokens move the incident and its alerts.
    let body = r#"{"status":"resolved","note":"file left, key rotated"}"#;
    let path = format!("/api/v1/incidents/{id}/triage");
    assert_eq!(s.post_json(&path, Some(&read), body).status, 403);
    assert_eq!(
        s.post_json("/api/v1/incidents/999999/triage", Some(&triage), body)
            .status,
        404
    );
    let bad = s.post_json(&path, Some(&triage), r#"{"status":"done"}"#);
    assert_eq!(bad.status, 400);
    let r = s.post_json(&path, Some(&triage), body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "resolved");
    let d = detail(&s, &read, id);
    assert!(
        d["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved")
    );
    assert_eq!(d["audit"].as_array().unwrap().len(), 1);
    assert!(
        d["audit"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("new → resolved")
    );
    for a in d["alerts"].as_array().unwrap() {
        let ad = s
            .get(&format!("/api/v1/alerts/{}", a["id"]), Some(&read))
            .json();
        let line = ad["audit"][0]["detail"].as_str().unwrap();
        assert!(line.contains(&format!("(incident {id})")), "{line}");
    }
    // The other incident is untouched; filters see the statuses.
    assert_eq!(incidents(&s, &read, "status=resolved").len(), 1);
    assert_eq!(incidents(&s, &read, "status=new").len(), 1);
    assert_eq!(incidents(&s, &read, "category=weights_known").len(), 2);
    assert_eq!(incidents(&s, &read, "category=weights_format").len(), 0);
    assert_eq!(incidents(&s, &read, "severity=1").len(), 0);
    assert_eq!(incidents(&s, &read, "kind=egress").len(), 0);
    assert_eq!(
        s.get("/api/v1/incidents?kind=nope", Some(&read)).status,
        400
    );
    // An alert on w-2's flow that is also of w-3's file links both: they
    // merge into the older (resolved) one, which the new alert reopens.
    s.ingest(
        &ingest,
        &[known(
            "w-4",
            HOUR / 2 + 10,
            2,
            "10.0.0.1",
            "cc33",
            json!([[30, 40]]),
        )],
    );
    let all = incidents(&s, &read, "");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (all[0]["id"].as_i64(), all[0]["alert_count"].as_i64()),
        (Some(id), Some(4))
    );
    assert_eq!(incidents(&s, &read, "status=resolved").len(), 0);
    assert_eq!(s.get("/api/v1/incidents", None).status, 401);
}

#[test]
fn the_pages_list_and_show_an_incident_escaped_and_linked() {
    let s = TestServer::start_on(STORE);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    s.ingest(
        &ingest,
        &[known("p-1", 0, 1, "10.0.0.9", "dd44", json!([[0, 250]]))],
    );
    let id = incidents(&s, &read, "")[0]["id"].as_i64().unwrap();
    let bearer = format!("Bearer {read}");
    let get = |path: &str| {
        request(
            "GET",
            &s.url(path),
            None,
            None,
            &[("authorization", &bearer)],
        )
    };
    let list = get("/incidents");
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&format!("href=\"/incidents/{id}\"")));
    assert!(list.body.contains("25.0 %"), "coverage shown");
    let page = get(&format!("/incidents/{id}"));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<b>m</b>"), "file name escaped");
    assert!(
        page.body.contains("&#60;b&#62;m&#60;/b&#62;"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/alerts/1\""),
        "alerts link to their pages"
    );
    let alert_page = get("/alerts/1");
    assert!(
        alert_page
            .body
            .contains(&format!("href=\"/incidents/{id}\"")),
        "the alert links to its incident"
    );
    assert_eq!(get("/incidents/424242").status, 404);
}

#[test]
fn time_to_exfiltrate_follows_each_hosts_upload_rate_over_the_last_hour() {
    let s = TestServer::start_on(STORE);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    let empty = s.get("/api/v1/exfiltration-time", Some(&read)).json();
    assert_eq!(empty["hosts"], json!([]));
    let size: u64 = 3_600_000;
    let mut a = known("x-k", 0, 50, "10.0.0.5", "ff66", json!([[0, 100]]));
    a["evidence"]["known_file_bytes"] = size.into();
    let (a1, a2, b1) = (1_000_000u64, 800_000u64, 360_000u64);
    s.ingest(
        &ingest,
        &[
            a,
            // Two hours before the newest flow: outside the hour measured.
            flow(
                "x-old",
                -7200,
                51,
                "10.0.0.5",
                "198.51.100.1",
                9_000_000_000,
            ),
            flow("x-a1", 0, 52, "10.0.0.5", "198.51.100.1", a1),
            flow("x-a2", 1800, 53, "10.0.0.5", "198.51.100.1", a2),
            flow("x-b1", 3000, 54, "10.0.0.6", "198.51.100.2", b1),
        ],
    );
    let r = s.get("/api/v1/exfiltration-time", Some(&read));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let hosts = v["hosts"].as_array().unwrap();
    let got: Vec<(&str, u64, f64)> = hosts
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap(),
                h["bytes"].as_u64().unwrap(),
                h["files"][0]["seconds"].as_f64().unwrap(),
            )
        })
        .collect();
    let secs = |bytes: u64| size as f64 / (bytes as f64 / 3600.0);
    assert_eq!(
        got,
        [
            ("10.0.0.5", a1 + a2, secs(a1 + a2)),
            ("10.0.0.6", b1, secs(b1))
        ]
    );
    assert_eq!(v["files"][0]["size"], size);
    let page = request(
        "GET",
        &s.url("/incidents"),
        None,
        None,
        &[("authorization", &format!("Bearer {read}"))],
    );
    assert!(page.body.contains("Time to exfiltrate"));
    assert!(page.body.contains("2.0 h"), "10.0.0.5: 3.6 MB at 500 B/s");
    assert!(page.body.contains("10.0 h"), "10.0.0.6: 3.6 MB at 100 B/s");
}

#[test]
fn the_last_caught_canary_is_the_last_successful_exfiltration_test() {
    let s = TestServer::start_on(STORE);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    let none = s.get("/api/v1/canary", Some(&read)).json();
    assert_eq!(none["last_detected"], Value::Null);
    let canary = |id: &str, secs: i64| {
        let mut v = known(id, secs, 60, "10.0.0.8", "c0c0", json!([[0, 10]]));
        v["evidence"]["canary"] = true.into();
        v
    };
    s.ingest(
        &ingest,
        &[
            canary("c-old", 10),
            canary("c-new", 20),
            // A leak after the test, not a canary.
            known("c-leak", 30, 61, "10.0.0.8", "d1d1", json!([[0, 10]])),
        ],
    );
    let v = s.get("/api/v1/canary", Some(&read)).json();
    assert_eq!(v["last_detected"]["event_id"], "c-new");
    let page = request(
        "GET",
        &s.url("/incidents"),
        None,
        None,
        &[("authorization", &format!("Bearer {read}"))],
    );
    let id = v["last_detected"]["id"].as_i64().unwrap();
    assert!(page.body.contains("caught the canary"));
    assert!(page.body.contains(&format!("href=\"/alerts/{id}\"")));
}

#[test]
fn new_and_updated_incidents_reach_the_live_stream() {
    let s = TestServer::start_on(STORE);
    let (ingest, read, triage) = (
        s.token(Scope::Ingest),
        s.token(Scope::Read),
        s.token(Scope::Triage),
    );
    let mut live = Stream::open(&s, &read);
    let sha = "cd".repeat(32);
    // A new incident arrives as the list shows it …
    s.ingest(
        &ingest,
        &[known("live-1", 10, 1, "10.1.0.10", &sha, json!([[0, 400]]))],
    );
    let first = live.next_incident();
    let listed = incidents(&s, &read, "kind=file");
    let id = listed[0]["id"].as_i64().unwrap();
    assert_eq!(first, listed[0], "the live update is the list's row");
    assert_eq!(first["alert_count"], 1);
    // … an alert of another flow joining it updates it …
    s.ingest(
        &ingest,
        &[known(
            "live-2",
            20,
            2,
            "10.1.0.10",
            &sha,
            json!([[400, 1000]]),
        )],
    );
    let joined = live.next_incident();
    assert_eq!(joined["id"], id);
    assert_eq!(joined["alert_count"], 2);
    assert_eq!(joined["coverage"], 1.0);
    // … and so does its triage.
    let r = s.post_json(
        &format!("/api/v1/incidents/{id}/triage"),
        Some(&triage),
        &json!({"status": "investigating", "note": "live"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let triaged = live.next_incident();
    assert_eq!(
        (triaged["id"].as_i64(), triaged["status"].as_str()),
        (Some(id), Some("investigating"))
    );
}

#[test]
fn alerts_stored_before_incidents_are_grouped_by_the_backfill() {
    let s = TestServer::start_on(STORE);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    let sha = "ef".repeat(32);
    s.ingest(
        &ingest,
        &[
            known("b-1", 10, 1, "10.1.0.10", &sha, json!([[0, 600]])),
            known("b-2", 20, 2, "10.1.0.10", &sha, json!([[600, 1000]])),
            known("b-3", 30, 3, "10.9.0.9", &sha, json!([[0, 10]])),
        ],
    );
    let grouped = incidents(&s, &read, "");
    assert_eq!(grouped.len(), 2, "{grouped:?}");
    // As a database from before incidents: the alerts, no incidents.
    run_sql(
        &s.db,
        "DELETE FROM incident_alerts; DELETE FROM incident_keys; DELETE FROM incidents;",
    )
    .unwrap();
    assert!(incidents(&s, &read, "").is_empty());
    // The backfill (next to the running server) groups them as ingest did.
    let n = dashboard::admin::group_ungrouped_alerts(s.db.clone(), 24 * 3600).unwrap();
    assert_eq!(n, 3);
    let rebuilt = incidents(&s, &read, "");
    let strip = |v: &[Value]| -> Vec<(Value, Value, Value, Value)> {
        v.iter()
            .map(|i| {
                (
                    i["kind"].clone(),
                    i["src_ip"].clone(),
                    i["alert_count"].clone(),
                    i["coverage"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&rebuilt), strip(&grouped));
    assert_eq!(rebuilt[1]["coverage"], 1.0, "{rebuilt:?}");
    // Run again: nothing left to group.
    assert_eq!(
        dashboard::admin::group_ungrouped_alerts(s.db.clone(), 24 * 3600).unwrap(),
        0
    );
}
