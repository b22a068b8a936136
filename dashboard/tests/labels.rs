//! Analyst verdicts exported as the analyzer's labels: distillation alerts
//! ingested and triaged over HTTP, the CSV fetched over HTTP and through the
//! function `weightwatch labels export` calls.

use super::STORE;
use crate::common::{self, TestServer, sensor_alert};
use dashboard::Scope;
use dashboard::store::Database;
use eve::AlertCategory;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The analyzer's `distillation` alert (signature 3000001) about `account`.
fn account_alert(id: &str, secs: i64, account: &str) -> Value {
    let mut v = common::account_alert(id, secs, account, 0.9, None);
    v["alert"]["signature_id"] = json!(3_000_001);
    v
}

/// The analyzer's `distillation_cluster` alert (signature 3000002).
fn cluster_alert(id: &str, secs: i64, cluster: &str, members: &[&str]) -> Value {
    let mut v = common::cluster_alert(id, secs, cluster, members);
    v["alert"]["signature_id"] = json!(3_000_002);
    v
}

#[test]
fn triage_verdicts_export_as_labels_latest_wins() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let triage = s.token(Scope::Triage);
    let read = s.token(Scope::Read);
    let quoted = "acct,\"q\"";
    let events = [
        account_alert("a1", 100, "acct-a"),
        account_alert("a2", 110, "acct-a"),
        account_alert("b1", 120, "acct-b"),
        account_alert("c1", 130, "acct-c"),
        account_alert("d1", 140, "acct-d"),
        account_alert("f1", 150, "acct-f"),
        account_alert("q1", 160, quoted),
        cluster_alert("k1", 170, "cl-1", &["acct-d", "acct-e"]),
        sensor_alert(
            "s1",
            180,
            AlertCategory::WeightsFormat,
            1,
            7,
            "10.0.0.1",
            "192.0.2.1",
            "upload.example.net",
        ),
    ];
    assert_eq!(s.ingest(&ingest, &events), (events.len() as u64, 0));
    let ids: HashMap<String, i64> = s
        .all_alerts(&read, "")
        .iter()
        .map(|a| {
            (
                a["event_id"].as_str().unwrap().to_string(),
                a["id"].as_i64().unwrap(),
            )
        })
        .collect();
    // In this order: acct-d is confirmed on its own alert, then its cluster
    // is judged a false positive (the later verdict wins for acct-d); acct-f
    // is a false positive first, then confirmed; acct-a's second alert is
    // only being investigated; acct-c and the sensor alert are not
    // distillation verdicts.
    for (event_id, status) in [
        ("a1", "resolved"),
        ("a2", "investigating"),
        ("b1", "false_positive"),
        ("d1", "resolved"),
        ("k1", "false_positive"),
        ("f1", "false_positive"),
        ("f1", "resolved"),
        ("q1", "resolved"),
        ("s1", "resolved"),
    ] {
        let r = s.post_json(
            &format!("/api/v1/alerts/{}/triage", ids[event_id]),
            Some(&triage),
            &json!({"status": status, "note": "verdict"}).to_string(),
        );
        assert_eq!(r.status, 200, "{event_id}: {}", r.body);
    }
    let expected = "account_id,label,scenario\n\
                    \"acct,\"\"q\"\"\",distill,analyst_tp\n\
                    acct-a,distill,analyst_tp\n\
                    acct-b,benign,analyst_fp\n\
                    acct-d,benign,analyst_fp\n\
                    acct-e,benign,analyst_fp\n\
                    acct-f,distill,analyst_tp\n";

    let r = s.get("/api/v1/labels.csv", Some(&read));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(r.body, expected);
    assert_eq!(s.get("/api/v1/labels.csv", Some(&ingest)).status, 403);
    assert_eq!(s.get("/api/v1/labels.csv", None).status, 401);

    assert_eq!(dashboard::admin::export_labels(&s.db).unwrap(), expected);
}

#[test]
fn no_verdicts_is_a_header_and_a_missing_database_an_error() {
    let s = TestServer::start_on(STORE);
    let read = s.token(Scope::Read);
    let r = s.get("/api/v1/labels.csv", Some(&read));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "account_id,label,scenario\n");
    match &s.db {
        Database::Sqlite(path) => {
            let missing = path.with_file_name("missing.db");
            assert!(dashboard::admin::export_labels(&missing).is_err());
            assert!(!missing.exists(), "exporting must not create a database");
        }
        Database::Postgres(url) => {
            let missing = format!("{url}_missing");
            assert!(dashboard::admin::export_labels(missing.as_str()).is_err());
        }
    }
}
