//! SQLite only: a database at schema version 5 (the release before the
//! fleet view: MFA, idle sessions and token expiry) upgrades to the latest
//! keeping what 5 added, with the per-category alert counts built from its
//! alerts; a database at version 6 (before incidents) gets the incident
//! tables, and its new alerts are grouped while the old ones stay as they
//! were.

use crate::common::*;
use dashboard::store::{Database, migrations};
use dashboard::{DashboardConfig, Scope};
use eve::AlertCategory;

/// What migrations 7 (incidents) and 8 (single-use TOTP codes) added,
/// undone: the tables as version 6 left them.
const AS_VERSION_6: &str = "DROP TABLE incident_alerts; DROP TABLE incident_keys;
     DROP TABLE incidents; DROP INDEX audit_incident; ALTER TABLE audit DROP COLUMN incident_id;
     ALTER TABLE users DROP COLUMN totp_last_step;";

#[test]
fn a_version_6_database_gets_incidents_for_its_new_alerts() {
    let s = TestServer::start();
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let alert = |id: &str, secs: i64| {
        sensor_alert(
            id,
            secs,
            AlertCategory::WeightsFormat,
            2,
            1,
            "10.0.0.1",
            "192.0.2.1",
            "x.example",
        )
    };
    s.ingest(&ingest, &[alert("old", 10)]);
    let Database::Sqlite(db) = s.db.clone() else {
        unreachable!("a SQLite test server")
    };
    let s = s.stop();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(&format!("{AS_VERSION_6} PRAGMA user_version = 6;"))
        .unwrap();
    let s = s.start_again(DashboardConfig::default());
    let none = s.get("/api/v1/incidents", Some(&read)).json();
    assert_eq!(none["incidents"], serde_json::json!([]));
    s.ingest(&ingest, &[alert("new", 20)]);
    let list = s.get("/api/v1/incidents", Some(&read)).json();
    let list = list["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["alert_count"], 1, "the old alert is not grouped");
}

#[test]
fn a_version_5_database_gets_the_fleet_columns_and_keeps_its_credentials() {
    let s = TestServer::start();
    let ingest = s.token(Scope::Ingest);
    let far = chrono::Utc::now().timestamp_micros() + 86_400_000_000;
    let read =
        dashboard::admin::create_token_expiring(&s.db, Scope::Read, "r", &[], Some(far)).unwrap();
    dashboard::admin::add_user_totp(&s.db, "gus", "correct horse battery staple").unwrap();
    s.ingest(
        &ingest,
        &[
            sensor_alert(
                "u-1",
                10,
                AlertCategory::WeightsFormat,
                2,
                1,
                "10.0.0.1",
                "192.0.2.1",
                "x.example",
            ),
            sensor_alert(
                "u-2",
                11,
                AlertCategory::EgressVolume,
                2,
                2,
                "10.0.0.1",
                "192.0.2.1",
                "x.example",
            ),
        ],
    );
    let before = s.get("/api/v1/sensors", Some(&read)).json();
    let Database::Sqlite(db) = s.db.clone() else {
        unreachable!("a SQLite test server")
    };
    let s = s.stop();
    {
        // What version 5 wrote: no fleet columns, no per-category counts.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "ALTER TABLE sensors DROP COLUMN prev_stats;
             ALTER TABLE sensors DROP COLUMN prev_stats_ts;
             ALTER TABLE sensors DROP COLUMN stale_since; DROP TABLE sensor_categories;
             {AS_VERSION_6}
             PRAGMA user_version = 5;",
        ))
        .unwrap();
    }
    let s = s.start_again(DashboardConfig::default());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, migrations::latest());
    assert_eq!(version, 8);
    // Version 5's token expiry and second factor are still there.
    let after = s.get("/api/v1/sensors", Some(&read));
    assert_eq!(after.status, 200, "{}", after.body);
    let after = after.json();
    let cats = |v: &serde_json::Value| {
        v["sensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["sensor_id"].clone(), s["alerts_by_category"].clone()))
            .collect::<Vec<_>>()
    };
    assert!(
        cats(&before)
            .iter()
            .any(|(_, c)| c["weights_format"] == 1 && c["egress_volume"] == 1),
        "{before}"
    );
    assert_eq!(cats(&after), cats(&before));
    let (expires, totp): (Option<i64>, Option<String>) = conn
        .query_row(
            "SELECT (SELECT expires FROM tokens WHERE name = 'r'),
                    (SELECT totp_secret FROM users WHERE name = 'gus')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(expires, Some(far));
    assert!(totp.is_some_and(|t| !t.is_empty()));
}
