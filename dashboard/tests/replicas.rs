//! Replicas: several `serve` processes on one PostgreSQL database behave as
//! one dashboard. Ingest through one, read, search and triage through the
//! other; the live stream (alerts, statuses, incidents) reaches
//! subscribers of every replica (`LISTEN/NOTIFY`); retention runs on one replica at a time (advisory
//! lock); concurrent resends of the same events store each once; one TOTP
//! code sent to both replicas at once signs in once.

use crate::common::*;
use crate::pg_cluster;
use dashboard::store::{Database, EventStore, NewEvent, PgStore};
use dashboard::{DashboardConfig, Scope};
use eve::AlertCategory;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Two servers on one fresh database.
fn two_replicas(cfg: DashboardConfig) -> (TestServer, TestServer) {
    let db = Database::Postgres(pg_cluster::fresh_database());
    let a = TestServer::on_db(cfg.clone(), db.clone(), tempfile::tempdir().unwrap());
    let b = TestServer::on_db(cfg, db, tempfile::tempdir().unwrap());
    (a, b)
}

pub(super) fn alert(id: &str, secs: i64, sni: &str) -> Value {
    sensor_alert(
        id,
        secs,
        AlertCategory::WeightsFormat,
        1,
        secs as u64,
        "10.0.0.7",
        "203.0.113.7",
        sni,
    )
}

#[test]
fn ingest_on_one_replica_is_read_searched_triaged_and_streamed_on_the_other() {
    let (a, b) = two_replicas(DashboardConfig::default());
    let ingest = a.token(Scope::Ingest);
    let read = a.token(Scope::Read);
    let triage = b.token(Scope::Triage);
    let mut on_a = Stream::open(&a, &read);
    let mut on_b = Stream::open(&b, &read);

    // Through A, seen live on B (and A), then read and searched on B.
    a.ingest(&ingest, &[alert("r-1", 1, "weights.replica-test.example")]);
    for stream in [&mut on_b, &mut on_a] {
        let (kind, data) = stream.next();
        assert_eq!(kind, "alert");
        assert_eq!(data["event_id"], "r-1");
        assert_eq!(data["status"], "new");
    }
    // The incident it made reaches B's subscribers too.
    let inc = on_b.next_incident();
    assert_eq!(
        (inc["alert_count"].as_i64(), inc["status"].as_str()),
        (Some(1), Some("new"))
    );
    let found = b.all_alerts(&read, "q=REPLICA-TEST");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["event_id"], "r-1");
    let id = found[0]["id"].as_i64().unwrap();

    // Triage on B: A's subscribers see the new status, A reads it.
    let r = b.post_json(
        &format!("/api/v1/alerts/{id}/triage"),
        Some(&triage),
        &json!({"status": "investigating", "note": "from replica b"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for stream in [&mut on_a, &mut on_b] {
        let (kind, data) = stream.next();
        assert_eq!(kind, "status");
        assert_eq!(data, json!({"id": id, "status": "investigating"}));
    }
    let detail = a.get(&format!("/api/v1/alerts/{id}"), Some(&read)).json();
    assert_eq!(detail["alert"]["status"], "investigating", "{detail}");

    // An update larger than a NOTIFY payload (8000 bytes) still arrives whole.
    let mut big = alert("r-big", 2, "big.example");
    big["alert"]["signature"] = json!(format!("weights upload {}", "x".repeat(20_000)));
    a.ingest(&ingest, &[big.clone()]);
    let (kind, data) = on_b.next();
    assert_eq!(kind, "alert");
    assert_eq!(strip_store_fields(data), big);

    // A batch's alerts share notifications (as many as fit one payload;
    // the large one between them goes through the table): every one
    // arrives, in the batch's order.
    let mut batch: Vec<Value> = (0..40)
        .map(|i| alert(&format!("r-batch-{i}"), 10 + i, "batch.example"))
        .collect();
    let mut big = alert("r-batch-big", 9, "big.example");
    big["alert"]["signature"] = json!(format!("weights upload {}", "y".repeat(9_000)));
    batch.insert(20, big);
    a.ingest(&ingest, &batch);
    for want in &batch {
        let (kind, data) = on_b.next();
        assert_eq!(kind, "alert");
        assert_eq!(data["event_id"], want["event_id"]);
    }
}

#[test]
fn concurrent_resends_on_two_replicas_store_each_event_once() {
    let cfg = DashboardConfig {
        ingest_requests_per_second: 10_000,
        ingest_burst: 10_000,
        ..DashboardConfig::default()
    };
    let (a, b) = two_replicas(cfg);
    let ingest = a.token(Scope::Ingest);
    let read = a.token(Scope::Read);
    // The same 20 batches sent to both replicas at once, one replica in
    // reverse order (the rows of one batch are locked in opposite orders).
    let batches: Vec<Vec<Value>> = (0..20)
        .map(|n| {
            (0..50)
                .map(|i| alert(&format!("c-{n}-{i}"), n * 50 + i, "c.example"))
                .collect()
        })
        .collect();
    let send = |s: &TestServer, reverse: bool| {
        let mut accepted = 0;
        for batch in &batches {
            let mut batch = batch.clone();
            if reverse {
                batch.reverse();
            }
            let (acc, dup) = s.ingest(&ingest, &batch);
            assert_eq!(acc + dup, batch.len() as u64);
            accepted += acc;
        }
        accepted
    };
    let accepted = std::thread::scope(|scope| {
        let (ra, rb, send) = (&a, &b, &send);
        let ta = scope.spawn(move || send(ra, false));
        let tb = scope.spawn(move || send(rb, true));
        ta.join().unwrap() + tb.join().unwrap()
    });
    assert_eq!(
        accepted,
        20 * 50,
        "each event accepted by exactly one replica"
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in [&a, &b] {
        counts.clear();
        for v in s.all_alerts(&read, "") {
            *counts
                .entry(v["event_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        assert_eq!(counts.len(), 20 * 50);
        assert!(counts.values().all(|&n| n == 1), "stored twice");
    }
    let sensors = b.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensors["sensors"][0]["events"], 20 * 50, "{sensors}");
}

#[test]
fn retention_runs_on_one_replica_at_a_time() {
    let url = pg_cluster::fresh_database();
    let store = PgStore::connect(&url, 1).unwrap();
    let events: Vec<NewEvent> = (0..30)
        .map(|i| {
            let v = alert(&format!("old-{i}"), i, "old.example");
            let e: eve::Event = serde_json::from_value(v.clone()).unwrap();
            NewEvent::from_eve(&e, v.to_string())
        })
        .collect();
    store.ingest(&events, 1_000).unwrap();
    // Another replica is purging: it holds the retention lock.
    let name = url.rsplit('/').next().unwrap().to_string();
    let holder = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} -X -q -h 127.0.0.1 -U postgres -p {} -d {name} \
             -c 'SELECT pg_advisory_lock({})' -c 'SELECT pg_sleep(600)'",
            pg_cluster::shared().bin_path("psql").display(),
            pg_cluster::shared().port(),
            dashboard::store::postgres::PURGE_LOCK,
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut holder = Kill(holder);
    // Wait until the lock is held (bounded: fails instead of hanging).
    let held = |s: &str| {
        pg_cluster::shared()
            .psql(
                &name,
                &format!(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {s}"
                ),
            )
            .unwrap()
            .trim()
            .to_string()
    };
    let lock = dashboard::store::postgres::PURGE_LOCK;
    let low = (lock & 0xffff_ffff).to_string();
    for _ in 0..600 {
        if held(&low) == "1" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(held(&low), "1", "the other replica holds the lock");
    assert_eq!(
        store.purge_before(2_000).unwrap(),
        0,
        "it leaves the purge to the holder"
    );
    // The holder is gone (its session ends, and with it the lock): purging resumes.
    pg_cluster::shared()
        .psql(
            &name,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_locks \
                 WHERE locktype = 'advisory' AND objid = {low}"
            ),
        )
        .unwrap();
    let _ = holder.0.kill();
    let _ = holder.0.wait();
    let mut purged = 0;
    for _ in 0..600 {
        purged = store.purge_before(2_000).unwrap();
        if purged > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(purged, 30);
}

#[test]
fn statements_prepared_before_another_replicas_migration_are_prepared_again() {
    let url = pg_cluster::fresh_database();
    let store = PgStore::connect(&url, 1).unwrap();
    let event = |id: &str| {
        let v = alert(id, 1, "plan.example");
        let e: eve::Event = serde_json::from_value(v.clone()).unwrap();
        NewEvent::from_eve(&e, v.to_string())
    };
    // Every pooled connection has the ingest statements prepared.
    for i in 0..3 {
        assert_eq!(
            store
                .ingest(&[event(&format!("p-{i}"))], 1)
                .unwrap()
                .accepted,
            1
        );
    }
    // Another replica's migration changes a column the insert returns.
    let name = url.rsplit('/').next().unwrap();
    pg_cluster::shared()
        .psql(
            name,
            "ALTER TABLE events ALTER COLUMN event_id TYPE varchar(500)",
        )
        .unwrap();
    for i in 3..6 {
        let out = store.ingest(&[event(&format!("p-{i}"))], 1).unwrap();
        assert_eq!(out.accepted, 1);
    }
}

#[test]
fn replicas_ingesting_one_file_at_once_make_one_incident() {
    let (a, b) = two_replicas(DashboardConfig::default());
    let ingest = a.token(Scope::Ingest);
    let read = a.token(Scope::Read);
    std::thread::scope(|sc| {
        for (n, server) in [(0u64, &a), (1, &b)] {
            let ingest = &ingest;
            sc.spawn(move || {
                for i in 0..20u64 {
                    let f = n * 100 + i;
                    let lo = f * 5;
                    let alert = super::incidents::known(
                        &format!("r-{f}"),
                        i as i64,
                        f + 1,
                        "10.0.0.1",
                        "ee55",
                        json!([[lo, lo + 5]]),
                    );
                    server.ingest(ingest, &[alert]);
                }
            });
        }
    });
    let r = a.get("/api/v1/incidents", Some(&read)).json();
    let list = r["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["alert_count"], 40);
    assert_eq!(list[0]["files"][0]["covered_bytes"], 200);
}

#[test]
fn one_totp_code_sent_to_both_replicas_at_once_signs_in_once() {
    let (a, b) = two_replicas(DashboardConfig::default());
    let e = dashboard::admin::add_user_totp(&a.db, "lea", "correct horse battery staple").unwrap();
    let code = super::mfa::totp_now(&e.uri);
    let start = std::sync::Barrier::new(2);
    let mut statuses: Vec<u16> = std::thread::scope(|scope| {
        let runs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|s| {
                let (start, code) = (&start, &code);
                scope.spawn(move || {
                    start.wait();
                    super::mfa::sign_in_from(s, "127.0.0.1", "lea", code).0
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 401], "exactly one replica accepts the code");
}
