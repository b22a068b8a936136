//! The JSON API over a real socket: ingest, idempotency, rejections, filters,
//! pagination, auth scopes, triage, accounts, sensors, stream, metrics.

use super::STORE;
use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use eve::AlertCategory;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};

#[test]
fn ingest_stores_events_as_sent_with_flow_context() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let alert = sensor_alert(
        "a-1",
        100,
        AlertCategory::WeightsFormat,
        1,
        7,
        "10.0.0.5",
        "203.0.113.9",
        "upload.example.net",
    );
    let batch = vec![
        flow("f-1", 101, 7, "10.0.0.5", "203.0.113.9", 1_500_000_000),
        fileinfo(
            "i-1",
            100,
            7,
            "10.0.0.5",
            "203.0.113.9",
            "model.safetensors",
            "/put/model",
        ),
        alert.clone(),
        // Another flow that must not be joined to the alert.
        flow("f-2", 101, 8, "10.0.0.6", "203.0.113.10", 10),
    ];
    assert_eq!(s.ingest(&ingest, &batch), (4, 0));

    let alerts = s.all_alerts(&read, "");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "new");
    assert_eq!(strip_store_fields(alerts[0].clone()), alert);

    let id = alerts[0]["id"].as_i64().unwrap();
    let d = s.get(&format!("/api/v1/alerts/{id}"), Some(&read)).json();
    assert_eq!(strip_store_fields(d["alert"].clone()), alert);
    let flows = d["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["event_id"], "f-1");
    assert_eq!(d["fileinfo"].as_array().unwrap().len(), 1);
    assert_eq!(
        d["fileinfo"][0]["fileinfo"]["filename"],
        "model.safetensors"
    );
    assert_eq!(s.get("/api/v1/alerts/999999", Some(&read)).status, 404);
}

#[test]
fn retried_batches_store_nothing_twice() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let batch: Vec<Value> = (0..50)
        .map(|i| {
            sensor_alert(
                &format!("id-{i}"),
                i,
                AlertCategory::EgressVolume,
                2,
                i as u64,
                "10.0.0.1",
                "198.51.100.1",
                "x.example",
            )
        })
        .collect();
    assert_eq!(s.ingest(&ingest, &batch), (50, 0));
    assert_eq!(s.ingest(&ingest, &batch), (0, 50));
    // A batch that overlaps half, and repeats an id inside itself.
    let mut overlap: Vec<Value> = batch[25..].to_vec();
    overlap.push(sensor_alert(
        "id-new",
        60,
        AlertCategory::EgressVolume,
        2,
        99,
        "10.0.0.1",
        "198.51.100.1",
        "x",
    ));
    overlap.push(sensor_alert(
        "id-new",
        60,
        AlertCategory::EgressVolume,
        2,
        99,
        "10.0.0.1",
        "198.51.100.1",
        "x",
    ));
    assert_eq!(s.ingest(&ingest, &overlap), (1, 26));
    let all = s.all_alerts(&read, "");
    assert_eq!(all.len(), 51);
    let ids: BTreeSet<&str> = all
        .iter()
        .map(|a| a["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 51);
}

#[test]
fn mixed_batches_keep_the_valid_events_and_say_what_was_wrong() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let good1 = sensor_alert(
        "g-1",
        1,
        AlertCategory::WeightsKnown,
        1,
        1,
        "10.0.0.1",
        "192.0.2.1",
        "a",
    );
    let good2 = sensor_alert(
        "g-2",
        2,
        AlertCategory::WeightsKnown,
        1,
        2,
        "10.0.0.1",
        "192.0.2.1",
        "a",
    );
    let mut no_ts = good1.clone();
    no_ts["event_id"] = json!("bad-ts");
    no_ts.as_object_mut().unwrap().remove("timestamp");
    let mut bad_cat = good1.clone();
    bad_cat["event_id"] = json!("bad-cat");
    bad_cat["alert"]["category"] = json!("not_a_category");
    let batch = json!([good1, no_ts, "just a string", good2, {"event_id": ""}, bad_cat]);
    let r = s.post_json("/api/v1/events", Some(&ingest), &batch.to_string());
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["duplicates"], 0);
    let rejected = v["rejected"].as_array().unwrap();
    let idx: Vec<u64> = rejected
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2, 4, 5]);
    assert_eq!(rejected[0]["event_id"], "bad-ts");
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("timestamp"),
        "{}",
        rejected[0]
    );
    assert_eq!(rejected[1]["event_id"], Value::Null);
    assert_eq!(rejected[3]["event_id"], "bad-cat");
    assert!(
        rejected[3]["error"]
            .as_str()
            .unwrap()
            .contains("not_a_category")
    );
    let ids: BTreeSet<String> = s
        .all_alerts(&read, "")
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, BTreeSet::from(["g-1".to_string(), "g-2".to_string()]));
}

#[test]
fn malformed_bodies_and_limits() {
    let cfg = DashboardConfig {
        max_body_bytes: 64 * 1024,
        max_batch_events: 10,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    let ingest = s.token(Scope::Ingest);
    for body in ["", "{not json", "{\"event_id\": \"x\"}", "42", "null"] {
        let r = s.post_json("/api/v1/events", Some(&ingest), body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.body);
        assert!(r.json()["error"].is_string());
    }
    let big = format!("[\"{}\"]", "x".repeat(100 * 1024));
    assert_eq!(
        s.post_json("/api/v1/events", Some(&ingest), &big).status,
        413
    );
    let many = Value::from(vec![json!({}); 11]).to_string();
    assert_eq!(
        s.post_json("/api/v1/events", Some(&ingest), &many).status,
        413
    );
    // An empty array is a valid (empty) batch.
    let r = s.post_json("/api/v1/events", Some(&ingest), "[]");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"accepted": 0, "duplicates": 0, "rejected": []})
    );
    // The server is unharmed.
    assert_eq!(s.get("/healthz", None).status, 200);
}

#[test]
fn ingest_is_rate_limited_per_token() {
    let cfg = DashboardConfig {
        ingest_requests_per_second: 1,
        ingest_burst: 2,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    let ingest = s.token(Scope::Ingest);
    let statuses: Vec<Resp> = (0..20)
        .map(|_| s.post_json("/api/v1/events", Some(&ingest), "[]"))
        .collect();
    let limited = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("some request is limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    // Another token has its own budget.
    let other = s.token(Scope::Ingest);
    assert_eq!(
        s.post_json("/api/v1/events", Some(&other), "[]").status,
        200
    );
}

fn seed_varied(s: &TestServer) -> Vec<Value> {
    let ingest = s.token(Scope::Ingest);
    let cats = [
        AlertCategory::WeightsFormat,
        AlertCategory::EgressVolume,
        AlertCategory::WeightsTensor,
    ];
    let mut events = Vec::new();
    for i in 0..60i64 {
        let cat = cats[(i % 3) as usize];
        let sev = (i % 3 + 1) as u8;
        let src = format!("10.0.0.{}", i % 4);
        let dest = format!("198.51.100.{}", i % 5);
        let sni = if i % 7 == 0 {
            "Exfil.Evil.example"
        } else {
            "cdn.example"
        };
        events.push(sensor_alert(
            &format!("s-{i}"),
            i * 60,
            cat,
            sev,
            i as u64,
            &src,
            &dest,
            sni,
        ));
    }
    events.push(account_alert("acct-1", 30, "acct-42", 0.91, Some("c-1")));
    events.push(cluster_alert("clus-1", 31, "c-1", &["acct-42", "acct-43"]));
    s.ingest(&ingest, &events);
    events
}

fn ids(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect()
}

fn expect(events: &[Value], pred: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| pred(e))
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filters_select_exactly_the_matching_alerts() {
    let s = TestServer::start_on(STORE);
    let read = s.token(Scope::Read);
    let events = seed_varied(&s);
    let secs = |e: &Value| eve::Timestamp::parse(e["timestamp"].as_str().unwrap()).unwrap();

    let got = ids(&s.all_alerts(&read, "category=egress_volume"));
    assert_eq!(
        got,
        expect(&events, |e| e["alert"]["category"] == "egress_volume")
    );
    assert_eq!(got.len(), 20);

    let got = ids(&s.all_alerts(&read, "severity=1"));
    assert_eq!(got, expect(&events, |e| e["alert"]["severity"] == 1));

    let got = ids(&s.all_alerts(&read, "src=10.0.0.2&dest=198.51.100.3"));
    assert_eq!(
        got,
        expect(&events, |e| e["src_ip"] == "10.0.0.2"
            && e["dest_ip"] == "198.51.100.3")
    );
    assert!(!got.is_empty());

    let got = ids(&s.all_alerts(&read, "sensor=analyzer-1"));
    assert_eq!(got, BTreeSet::from(["acct-1".into(), "clus-1".into()]));

    // Account matches its own alerts and the clusters it is a member of.
    let got = ids(&s.all_alerts(&read, "account=acct-43"));
    assert_eq!(got, BTreeSet::from(["clus-1".into()]));
    let got = ids(&s.all_alerts(&read, "account=acct-42"));
    assert_eq!(got, BTreeSet::from(["acct-1".into(), "clus-1".into()]));
    assert!(s.all_alerts(&read, "account=acct-4").is_empty());

    // Free text is case-insensitive and searches the SNI.
    let got = ids(&s.all_alerts(&read, "q=exfil.EVIL"));
    assert_eq!(
        got,
        expect(&events, |e| e["tls"]["sni"] == "Exfil.Evil.example")
    );

    // Time range: [from, to).
    let from = ts(600).to_string();
    let to = ts(1200).to_string();
    let q = format!("from={}&to={}", urlenc(&from), urlenc(&to));
    let got = ids(&s.all_alerts(&read, &q));
    assert_eq!(
        got,
        expect(&events, |e| secs(e) >= ts(600) && secs(e) < ts(1200))
    );
    assert_eq!(got.len(), 10);

    // Combined with status after a triage.
    let triage = s.token(Scope::Triage);
    let first = &s.all_alerts(&read, "category=weights_format")[0];
    let id = first["id"].as_i64().unwrap();
    let r = s.post_json(
        &format!("/api/v1/alerts/{id}/triage"),
        Some(&triage),
        r#"{"status": "investigating", "note": "looking"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = s.all_alerts(&read, "status=investigating&category=weights_format");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], id);
    assert_eq!(s.all_alerts(&read, "status=new").len(), events.len() - 1);

    for bad in [
        "severity=4",
        "category=nope",
        "status=done",
        "from=yesterday",
        "limit=0",
        "limit=10001",
        "cursor=abc",
    ] {
        let r = s.get(&format!("/api/v1/alerts?{bad}"), Some(&read));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn cursor_pagination_visits_every_alert_once_newest_first() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    // 250 alerts, many sharing a timestamp, so the cursor must break ties.
    let events: Vec<Value> = (0..250)
        .map(|i| {
            sensor_alert(
                &format!("p-{i}"),
                i / 10,
                AlertCategory::EgressVolume,
                2,
                i as u64,
                "10.0.0.1",
                "192.0.2.1",
                "a",
            )
        })
        .collect();
    for chunk in events.chunks(100) {
        s.ingest(&ingest, chunk);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/alerts?limit=100&cursor={c}"),
            None => "/api/v1/alerts?limit=100".to_string(),
        };
        let v = s.get(&path, Some(&read)).json();
        let page = v["alerts"].as_array().unwrap().clone();
        pages.push(page.len());
        seen.extend(page);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, vec![100, 100, 50]);
    assert_eq!(ids(&seen), ids(&events));
    assert_eq!(seen.len(), 250);
    let keys: Vec<(String, i64)> = seen
        .iter()
        .map(|a| {
            (
                a["timestamp"].as_str().unwrap().to_string(),
                a["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first, ties by id");
    // Exactly one full page: no cursor when nothing follows.
    let v = s.get("/api/v1/alerts?limit=250", Some(&read)).json();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 250);
    assert_eq!(v["next_cursor"], Value::Null);
}

/// Every authenticated route.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/events"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alerts/1"),
    ("POST", "/api/v1/alerts/1/triage"),
    ("GET", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/acct-42"),
    ("GET", "/api/v1/sensors"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/stream"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/alerts"),
    ("GET", "/alerts/1"),
    ("POST", "/alerts/1/triage"),
    ("GET", "/accounts"),
    ("GET", "/accounts/acct-42"),
    ("GET", "/audit"),
    ("POST", "/logout"),
    ("GET", "/no/such/page"),
    ("GET", "/api/v1/no-such-route"),
];

#[test]
fn every_route_denies_anonymous_and_bad_tokens() {
    let s = TestServer::start_on(STORE);
    seed_varied(&s);
    for (method, path) in ROUTES {
        let r = request(method, &s.url(path), None, Some("[]"), &[]);
        if path.starts_with("/api/") || *path == "/metrics" {
            assert_eq!(r.status, 401, "{method} {path}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        } else {
            assert_eq!(r.status, 303, "{method} {path}");
            assert_eq!(r.header("location"), Some("/login"), "{method} {path}");
        }
        let r = request(
            method,
            &s.url(path),
            Some("ww_not-a-real-token"),
            Some("[]"),
            &[],
        );
        assert_eq!(r.status, 401, "bad token: {method} {path}");
        // A forged session cookie is no session.
        let r = request(
            method,
            &s.url(path),
            None,
            Some("[]"),
            &[("cookie", "ww_session=forged")],
        );
        assert!(
            r.status == 401 || r.status == 303,
            "cookie: {method} {path}"
        );
    }
    assert_eq!(s.get("/healthz", None).status, 200);
    assert_eq!(s.get("/login", None).status, 200);
}

#[test]
fn scopes_do_not_leak() {
    let s = TestServer::start_on(STORE);
    seed_varied(&s);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let triage = s.token(Scope::Triage);
    let admin = s.token(Scope::Admin);
    let triage_body = r#"{"status": "resolved", "note": "n"}"#;
    // An ingest token can neither read nor triage, via API or UI.
    let api_routes = ROUTES
        .iter()
        .filter(|(_, p)| p.starts_with("/api/v1/") || *p == "/metrics")
        .filter(|(_, p)| !matches!(*p, "/api/v1/events" | "/api/v1/no-such-route"));
    for (method, path) in api_routes {
        let body = if path.ends_with("triage") {
            triage_body
        } else {
            ""
        };
        let r = request(method, &s.url(path), Some(&ingest), Some(body), &[]);
        assert!(
            r.status == 403,
            "ingest token on {method} {path}: {}",
            r.status
        );
    }
    // A read token cannot ingest or triage.
    assert_eq!(s.post_json("/api/v1/events", Some(&read), "[]").status, 403);
    assert_eq!(
        s.post_json("/api/v1/alerts/1/triage", Some(&read), triage_body)
            .status,
        403
    );
    assert_eq!(s.get("/api/v1/alerts", Some(&read)).status, 200);
    assert_eq!(s.get("/metrics", Some(&read)).status, 200);
    // Triage can read and triage but not ingest.
    assert_eq!(
        s.post_json("/api/v1/events", Some(&triage), "[]").status,
        403
    );
    assert_eq!(
        s.post_json("/api/v1/alerts/1/triage", Some(&triage), triage_body)
            .status,
        200
    );
    // Admin can do everything.
    assert_eq!(
        s.post_json("/api/v1/events", Some(&admin), "[]").status,
        200
    );
    assert_eq!(
        s.post_json("/api/v1/alerts/1/triage", Some(&admin), triage_body)
            .status,
        200
    );
    // A revoked token is dead.
    let id = dashboard::admin::list_tokens(&s.db)
        .unwrap()
        .iter()
        .find(|t| t.scope == Scope::Read)
        .unwrap()
        .id;
    assert!(dashboard::admin::revoke_token(&s.db, id).unwrap());
    assert_eq!(s.get("/api/v1/alerts", Some(&read)).status, 401);
}

#[test]
fn triage_is_audited_append_only() {
    let s = TestServer::start_on(STORE);
    seed_varied(&s);
    let triage = s.token(Scope::Triage);
    let read = s.token(Scope::Read);
    let path = "/api/v1/alerts/3/triage";
    for (status, note) in [
        ("investigating", "on it"),
        ("false_positive", "backup job <b>"),
    ] {
        let r = s.post_json(
            path,
            Some(&triage),
            &json!({"status": status, "note": note}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["status"], status);
    }
    assert_eq!(
        s.post_json(path, Some(&triage), r#"{"status": "closed"}"#)
            .status,
        400
    );
    assert_eq!(s.post_json(path, Some(&triage), "not json").status, 400);
    assert_eq!(
        s.post_json(
            "/api/v1/alerts/99999/triage",
            Some(&triage),
            r#"{"status": "resolved"}"#
        )
        .status,
        404
    );
    let d = s.get("/api/v1/alerts/3", Some(&read)).json();
    assert_eq!(d["alert"]["status"], "false_positive");
    let audit = d["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 2);
    assert!(
        audit[0]["detail"]
            .as_str()
            .unwrap()
            .contains("new → investigating: on it")
    );
    assert!(
        audit[1]["detail"]
            .as_str()
            .unwrap()
            .contains("investigating → false_positive")
    );
    assert!(audit[1]["actor"].as_str().unwrap().starts_with("token:"));
    let all = s.get("/api/v1/audit", Some(&read)).json();
    assert_eq!(all["audit"].as_array().unwrap().len(), 2);
    // The table refuses edits even from inside the database (a trigger).
    for sql in ["DELETE FROM audit", "UPDATE audit SET detail = 'x'"] {
        let refused = run_sql(&s.db, sql).expect_err("audit rows cannot change");
        assert!(refused.contains("append-only"), "{refused}");
    }
}

#[test]
fn accounts_sensors_and_metrics() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    s.ingest(
        &ingest,
        &[
            account_alert("d-1", 10, "acct-low", 0.71, None),
            account_alert("d-2", 11, "acct-high", 0.97, Some("c-9")),
            account_alert("d-3", 5, "acct-high", 0.50, Some("c-9")),
            cluster_alert("c-1", 12, "c-9", &["acct-high", "acct-member"]),
            stats("st-1", 10, "sensor-a", 1000, 3),
            stats("st-2", 20, "sensor-a", 2000, 5),
            flow("f-1", 20, 1, "10.0.0.1", "192.0.2.1", 99),
        ],
    );
    let v = s.get("/api/v1/accounts", Some(&read)).json();
    let accts = v["accounts"].as_array().unwrap();
    let names: Vec<&str> = accts
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["acct-high", "acct-low", "acct-member"]);
    // The newest alert's score wins over an older one ingested later.
    assert_eq!(accts[0]["score"], 0.97);
    assert_eq!(accts[0]["alert_count"], 2);
    assert_eq!(accts[0]["cluster_id"], "c-9");
    assert_eq!(accts[0]["features"]["signals"][0]["value"], 0.93);
    assert_eq!(accts[2]["cluster_id"], "c-9");

    let d = s.get("/api/v1/accounts/acct-high", Some(&read)).json();
    assert_eq!(d["cluster_members"], json!(["acct-high", "acct-member"]));
    assert_eq!(d["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(s.get("/api/v1/accounts/nobody", Some(&read)).status, 404);

    let v = s.get("/api/v1/sensors", Some(&read)).json();
    let sensors = v["sensors"].as_array().unwrap();
    let a = sensors
        .iter()
        .find(|x| x["sensor_id"] == "sensor-a")
        .unwrap();
    assert_eq!(a["packets"], 2000);
    assert_eq!(a["drops"], 5);
    assert_eq!(a["events"], 3);
    assert!(sensors.iter().any(|x| x["sensor_id"] == "analyzer-1"));

    let m = s.get("/metrics", Some(&read));
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    assert!(
        m.body.contains("weightwatch_dashboard_alerts_stored 4"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("weightwatch_dashboard_ingest_events_total"),
        "{}",
        m.body
    );
}

#[test]
fn security_headers_on_every_response() {
    let s = TestServer::start_on(STORE);
    let read = s.token(Scope::Read);
    for (path, tok) in [
        ("/healthz", None),
        ("/login", None),
        ("/api/v1/alerts", Some(read.as_str())),
    ] {
        let r = s.get(path, tok);
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

#[test]
fn purge_account_removes_its_data() {
    let s = TestServer::start_on(STORE);
    seed_varied(&s);
    let read = s.token(Scope::Read);
    let counts = dashboard::admin::purge_account(&s.db, "acct-42").unwrap();
    assert_eq!(counts.alerts, 1);
    assert_eq!(counts.clusters_rewritten, 1);
    assert!(s.all_alerts(&read, "account=acct-42").is_empty());
    assert_eq!(s.get("/api/v1/accounts/acct-42", Some(&read)).status, 404);
    let cl = s.all_alerts(&read, "account=acct-43");
    assert_eq!(cl[0]["members"], json!(["acct-43"]));
    let everything = s.get("/api/v1/alerts?limit=10000", Some(&read)).body;
    assert!(!everything.contains("acct-42"));
    let audit = s.get("/api/v1/audit", Some(&read)).json();
    assert_eq!(audit["audit"][0]["action"], "purge_account");
    assert!(!audit.to_string().contains("acct-42"));
}

#[test]
fn stream_delivers_new_alerts_live() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        sock,
        "GET /api/v1/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {read}\r\nAccept: text/event-stream\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut lines = BufReader::new(sock.try_clone().unwrap()).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.contains("200"), "{status}");
    // Headers end with an empty line; only then is the subscription live.
    for l in lines.by_ref() {
        if l.unwrap().is_empty() {
            break;
        }
    }
    s.ingest(
        &ingest,
        &[sensor_alert(
            "live-1",
            1,
            AlertCategory::WeightsFormat,
            1,
            1,
            "10.0.0.1",
            "192.0.2.1",
            "a",
        )],
    );
    let mut saw_event = false;
    for l in lines {
        let l = l.unwrap();
        if l.contains("event: alert") {
            saw_event = true;
        }
        if saw_event && l.contains("data:") {
            assert!(l.contains("\"event_id\":\"live-1\""), "{l}");
            assert!(l.contains("\"status\":\"new\""), "{l}");
            return;
        }
    }
    panic!("stream ended without the alert");
}
