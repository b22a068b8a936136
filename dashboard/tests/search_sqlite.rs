//! SQLite only: the migration that builds the free-text index for a
//! database an older release wrote.

use super::search::{assert_index_in_step, expect, ids, search, text_alert};
use crate::common::*;
use dashboard::store::Database;
use dashboard::{DashboardConfig, Scope};
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn an_older_database_gets_the_index_built_on_open() {
    let s = TestServer::start();
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let events: Vec<Value> = (0..50)
        .map(|i| text_alert(&format!("m-{i}"), i, &format!("migrated host{i}.Example")))
        .collect();
    s.ingest(&ingest, &events);
    // Take the file back to schema version 1: what the previous release
    // wrote (everything but the index and its triggers, the tokens'
    // sensor binding of version 4, version 5's MFA, idle and expiry
    // columns, the fleet columns of version 6, the incidents of 7 and the
    // last TOTP step of 8).
    let Database::Sqlite(db) = s.db.clone() else {
        unreachable!("a SQLite test server")
    };
    let s = s.stop();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DROP TRIGGER alerts_fts_delete; DROP TRIGGER alerts_fts_update;
             DROP TABLE alerts_fts; ALTER TABLE tokens DROP COLUMN sensors;
             ALTER TABLE sensors DROP COLUMN prev_stats;
             ALTER TABLE sensors DROP COLUMN prev_stats_ts;
             ALTER TABLE sensors DROP COLUMN stale_since; DROP TABLE sensor_categories;
             ALTER TABLE tokens DROP COLUMN expires; ALTER TABLE users DROP COLUMN totp_secret;
             ALTER TABLE users DROP COLUMN recovery; ALTER TABLE sessions DROP COLUMN last_seen;
             DROP TABLE incident_alerts; DROP TABLE incident_keys; DROP TABLE incidents;
             DROP INDEX audit_incident; ALTER TABLE audit DROP COLUMN incident_id;
             ALTER TABLE users DROP COLUMN totp_last_step;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let fts: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'alerts_fts%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(fts, 0);
    }
    let s = s.start_again(DashboardConfig::default());
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, dashboard::store::migrations::latest());
        // The index itself (not the scan) finds the old rows.
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM alerts_fts WHERE alerts_fts MATCH '\"st1\" AND \"t1.\"'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "host1. is in exactly one alert");
    }
    assert_index_in_step(&Database::Sqlite(db.clone()));
    for (q, n) in [("HOST1", 11), ("host1.example", 1), ("migrated", 50)] {
        let want = expect(&events, q);
        assert_eq!(want.len(), n, "{q}");
        assert_eq!(ids(&search(&s, &read, q, 7)), want, "q={q}");
    }
    // And keeps it in step from then on.
    s.ingest(&ingest, &[text_alert("after", 60, "after migration")]);
    assert_eq!(
        ids(&search(&s, &read, "after mig", 10)),
        BTreeSet::from(["after".to_string()])
    );
    assert_index_in_step(&Database::Sqlite(db.clone()));
}
