//! Free-text search (`q=`) over the HTTP API: substring and case semantics,
//! user input that looks like FTS5 syntax, both query plans (index
//! candidates and the newest-first walk), triage, retention and account
//! deletes, and the migration that builds the index for an older database.
//!
//! After each scenario the trigram index is checked against the alerts table
//! with FTS5's own `integrity-check`, so an index that drifted out of step
//! fails even where the exact re-check would hide it from search results.

use super::STORE;
use crate::common::*;
use dashboard::store::Database;
use dashboard::{DashboardConfig, Scope};
use eve::{Alert, AlertCategory, AlertEvent, Event, EventKind, HttpInfo, TlsInfo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Strings an attacker controls (SNI, URL, user agent), chosen to be FTS5
/// query syntax, quoting, or case-folding traps.
const NASTY: &[&str] = &[
    "say \"hello\" OR goodbye",
    "a* NEAR(b c) -d ^e f:g (h) AND NOT i",
    "QUOTE\"\"\"END",
    "ΣΊΣΥΦΟΣ Straße",
    "emoji 🦀🦀 crab",
    "percent%_under_score\\back 'single' ;--",
];

/// A sensor alert whose SNI, URL and user agent carry `text`.
pub fn text_alert(id: &str, secs: i64, text: &str) -> Value {
    let mut a = AlertEvent::new(
        Alert::new(
            format!("upload {id}"),
            1001,
            AlertCategory::WeightsFormat,
            2,
        ),
        serde_json::Map::new(),
    );
    a.tls = Some(TlsInfo {
        sni: Some(format!("{text} sni")),
        ..TlsInfo::default()
    });
    a.http = Some(HttpInfo {
        url: Some(format!("/put/{text}")),
        http_user_agent: Some(format!("agent {}", text.to_uppercase())),
        ..HttpInfo::default()
    });
    let mut e = Event::new(ts(secs), EventKind::Alert(Box::new(a)))
        .sensor("sensor-a")
        .network(net(secs as u64, "10.0.0.1", "192.0.2.7"));
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// The fields free text searches (docs/dashboard.md), as the API returns them.
fn searched(e: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut add = |v: &Value| {
        if let Some(s) = v.as_str() {
            parts.push(s.to_string());
        }
    };
    for p in [
        "/alert/signature",
        "/alert/category",
        "/sensor_id",
        "/src_ip",
        "/dest_ip",
        "/app_proto",
        "/tls/sni",
        "/http/hostname",
        "/http/url",
        "/http/http_user_agent",
        "/fileinfo/filename",
        "/fileinfo/sha256",
        "/account_id",
        "/cluster_id",
    ] {
        add(e.pointer(p).unwrap_or(&Value::Null));
    }
    for m in e["members"].as_array().into_iter().flatten() {
        add(m);
    }
    parts.join("\n").to_lowercase()
}

/// Percent-encode everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn ids(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect()
}

pub fn expect(events: &[Value], q: &str) -> BTreeSet<String> {
    let needle = q.trim().to_lowercase();
    events
        .iter()
        .filter(|e| searched(e).contains(&needle))
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `q`, `limit` alerts at a time, checking newest-first order.
pub fn search(s: &TestServer, token: &str, q: &str, limit: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/alerts?limit={limit}&q={}", enc(q));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.get(&path, Some(token));
        assert_eq!(r.status, 200, "{q:?}: {}", r.body);
        let v = r.json();
        let page = v["alerts"].as_array().unwrap();
        assert!(page.len() <= limit);
        out.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let order: Vec<(String, i64)> = out
        .iter()
        .map(|a| {
            (
                a["timestamp"].as_str().unwrap().to_string(),
                a["id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "{q:?}: newest first");
    assert_eq!(ids(&out).len(), out.len(), "{q:?}: no alert twice");
    out
}

/// SQLite: FTS5's own check that `alerts_fts` indexes exactly the rows of
/// `alerts` (maintained by the store's triggers and ingest). PostgreSQL:
/// the `pg_trgm` GIN index is valid (PostgreSQL maintains it).
pub fn assert_index_in_step(db: &Database) {
    let check = match db {
        Database::Sqlite(_) => {
            "INSERT INTO alerts_fts (alerts_fts, rank) VALUES ('integrity-check', 1)"
        }
        Database::Postgres(_) => {
            "DO $$ BEGIN IF NOT (SELECT indisvalid FROM pg_index
                 WHERE indexrelid = 'alerts_search'::regclass)
               THEN RAISE EXCEPTION 'alerts_search is not valid'; END IF; END $$"
        }
    };
    run_sql(db, check).expect("the text index matches the alerts");
}

#[test]
fn search_finds_substrings_case_insensitively_and_fts_syntax_is_text() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let mut events: Vec<Value> = NASTY
        .iter()
        .enumerate()
        .map(|(i, t)| text_alert(&format!("n-{i}"), i as i64, t))
        .collect();
    // Holds every trigram of "abcd" but not the string: the index offers
    // it as a candidate, the exact test must drop it.
    events.push(text_alert("trigrams", 99, "xabc bcdx"));
    events.push(account_alert("acct-a", 100, "acct-42", 0.9, Some("c-7")));
    events.push(cluster_alert(
        "clus-a",
        101,
        "c-7",
        &["acct-42", "acct-421"],
    ));
    s.ingest(&ingest, &events);

    let mut queries: Vec<String> = Vec::new();
    for t in NASTY {
        queries.push(t.to_string());
        queries.push(t.to_uppercase());
        let chars: Vec<char> = t.chars().collect();
        for w in [2, 3, 5] {
            for start in (0..chars.len().saturating_sub(w)).step_by(4) {
                queries.push(chars[start..start + w].iter().collect());
            }
        }
    }
    queries.extend(
        [
            "\"",
            "\"\"",
            "\"*\"",
            "*",
            "-",
            "NEAR",
            "near(",
            "OR",
            " OR ",
            "AND NOT",
            "^e",
            "f:g",
            "(h)",
            "STRASSE",
            "straße",
            "ΣΊΣ",
            "σίσ",
            "🦀",
            "🦀🦀 c",
            "acct-42",
            "ACCT-421",
            "c-7",
            "/PUT/",
            "sni",
            "weights_format",
            "192.0.2.7",
            "absent from every alert",
            "abcd",
            "bcdx",
        ]
        .map(String::from),
    );
    for q in &queries {
        if q.trim().is_empty() {
            continue;
        }
        let want = expect(&events, q);
        // Small pages (cursor paging) and one big page give the same set.
        assert_eq!(ids(&search(&s, &read, q, 2)), want, "q={q:?}");
        assert_eq!(ids(&search(&s, &read, q, 1000)), want, "q={q:?}");
    }
    // Spot checks that do not lean on `expect`.
    assert_eq!(
        ids(&search(&s, &read, "SAY \"HELLO\" or", 100)),
        BTreeSet::from(["n-0".to_string()])
    );
    assert_eq!(
        ids(&search(&s, &read, "acct-42", 100)),
        BTreeSet::from(["acct-a".to_string(), "clus-a".to_string()])
    );
    assert_eq!(
        ids(&search(&s, &read, "acct-421", 100)),
        BTreeSet::from(["clus-a".to_string()])
    );
    assert!(search(&s, &read, "\"*\"", 100).is_empty());
    assert!(search(&s, &read, "ABCD", 100).is_empty());
    assert_eq!(search(&s, &read, "ABC B", 100).len(), 1);
    assert_index_in_step(&s.db);
}

#[test]
fn common_and_rare_terms_page_the_same_under_filters_and_triage() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let triage = s.token(Scope::Triage);
    // 400 alerts share "bulk"; every 50th also holds "needle"; the oldest
    // 350 hold "early". With pages of 2, the newest 30 alerts are tested
    // first (a page of "bulk" is found there), then the index may hand over
    // 300 candidates: "needle" sorts its candidates, "early" has too many and
    // walks newest first. All plans run over HTTP.
    let events: Vec<Value> = (0..400)
        .map(|i| {
            let mut text = if i % 50 == 0 {
                format!("bulk Needle-{i}")
            } else {
                format!("bulk item-{i}")
            };
            if i < 350 {
                text.push_str(" early");
            }
            text_alert(&format!("b-{i}"), i, &text)
        })
        .collect();
    s.ingest(&ingest, &events);
    for (q, n) in [
        ("BULK", 400),
        ("needle", 8),
        ("needle-35", 1),
        ("item-39", 11),
        ("early", 350),
    ] {
        let want = expect(&events, q);
        assert_eq!(want.len(), n, "{q}");
        assert_eq!(ids(&search(&s, &read, q, 2)), want, "q={q}");
        assert_eq!(ids(&search(&s, &read, q, 1000)), want, "q={q}");
    }

    // Triage changes what the status filter sees, not what text finds.
    let needles = search(&s, &read, "needle", 100);
    for a in needles.iter().take(3) {
        let r = s.post_json(
            &format!("/api/v1/alerts/{}/triage", a["id"]),
            Some(&triage),
            r#"{"status": "investigating", "note": "bulk needle"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let triaged: BTreeSet<String> = ids(&needles[..3]);
    for q in ["needle", "bulk"] {
        let r = s.get(
            &format!("/api/v1/alerts?limit=1000&status=investigating&q={q}"),
            Some(&read),
        );
        assert_eq!(ids(r.json()["alerts"].as_array().unwrap()), triaged, "{q}");
    }
    let all = search(&s, &read, "needle", 3);
    assert_eq!(all.len(), 8);
    assert_eq!(
        all.iter()
            .filter(|a| a["status"] == "investigating")
            .count(),
        3
    );
    // Combined with another filter and a time range.
    let q = format!(
        "/api/v1/alerts?limit=1000&q=needle&from={}&sensor=sensor-a",
        enc(&ts(200).to_string())
    );
    let got = ids(s.get(&q, Some(&read)).json()["alerts"].as_array().unwrap());
    assert_eq!(
        got,
        (0..400)
            .filter(|i| i % 50 == 0 && *i >= 200)
            .map(|i| format!("b-{i}"))
            .collect::<BTreeSet<_>>()
    );
    assert_index_in_step(&s.db);
}

#[test]
fn retention_and_account_deletes_leave_nothing_findable() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    s.ingest(
        &ingest,
        &[
            text_alert("keep", 1, "kept alert"),
            account_alert("acct-a", 2, "acct-77", 0.9, Some("c-1")),
            cluster_alert("clus-a", 3, "c-1", &["acct-77", "acct-78"]),
        ],
    );
    // The newest row: its id is the one SQLite hands out again once deleted.
    s.ingest(&ingest, &[text_alert("old", 4, "doomed secret")]);
    let old_id = search(&s, &read, "doomed", 10)[0]["id"].as_i64().unwrap();

    // Purging an account rewrites the cluster alert's search text.
    let counts = dashboard::admin::purge_account(&s.db, "acct-77").unwrap();
    assert_eq!(counts.alerts, 1);
    assert!(search(&s, &read, "acct-77", 10).is_empty());
    assert_eq!(
        ids(&search(&s, &read, "acct-78", 10)),
        BTreeSet::from(["clus-a".to_string()])
    );
    assert_index_in_step(&s.db);

    // Make "old" look received long ago; a server with one-day retention
    // purges it on its first retention tick.
    run_sql(
        &s.db,
        "UPDATE events SET received = 0 WHERE event_id = 'old'",
    )
    .unwrap();
    let s = s.restart(DashboardConfig {
        retention_days: 1,
        purge_interval_secs: 1,
        ..DashboardConfig::default()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while s
        .get(&format!("/api/v1/alerts/{old_id}"), Some(&read))
        .status
        != 404
    {
        assert!(Instant::now() < deadline, "retention never purged");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(search(&s, &read, "doomed", 10).is_empty());
    assert!(search(&s, &read, "secret", 10).is_empty());
    assert_index_in_step(&s.db);

    // SQLite: a new alert takes the freed id; the old text must not find
    // it. (PostgreSQL never hands an id out twice.)
    s.ingest(&ingest, &[text_alert("new", 5, "fresh words")]);
    let new = search(&s, &read, "fresh", 10);
    assert_eq!(new.len(), 1);
    if STORE == Backend::Sqlite {
        assert_eq!(new[0]["id"].as_i64(), Some(old_id), "the id was reused");
    }
    assert!(search(&s, &read, "doomed", 10).is_empty());
    assert_eq!(
        ids(&search(&s, &read, "ALERT", 10)),
        BTreeSet::from(["keep".to_string()])
    );
    assert_index_in_step(&s.db);
}

#[test]
fn the_alerts_page_says_when_text_is_too_short_for_the_index() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    s.ingest(&ingest, &[text_alert("one", 1, "short text")]);
    let note = "cannot use the search index";
    for (q, short) in [
        ("ab", true),
        ("%20ab%20", true),
        ("abc", false),
        ("", false),
    ] {
        let r = s.get(&format!("/alerts?q={q}"), Some(&read));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.contains(note), short, "q={q:?}");
    }
    // Short text still searches (by scanning).
    let r = s.get("/alerts?q=RT", Some(&read));
    assert!(r.body.contains("upload one"), "{}", r.body);
}
