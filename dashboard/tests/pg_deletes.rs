//! PostgreSQL only: deletes reach every row that hangs off an event or an
//! incident. The per-event tables have no foreign keys (their per-row
//! checks were most of a batch's overhead beyond the indexes); statement
//! triggers delete what `ON DELETE CASCADE` deleted (migration 6).

use crate::common::*;
use crate::pg_cluster;
use dashboard::store::{EventStore, NewEvent, PgStore};
use eve::AlertCategory;
use serde_json::Value;

fn new_event(v: Value) -> NewEvent {
    let e: eve::Event = serde_json::from_value(v.clone()).unwrap();
    NewEvent::from_eve(&e, v.to_string())
}

/// Counts of rows in `db`: alerts, flows, memberships, incident keys,
/// incidents, and the rows whose parent is gone.
fn counts(db: &str) -> Vec<i64> {
    pg_cluster::shared()
        .psql(
            db,
            "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM flows),
                    (SELECT count(*) FROM incident_alerts), (SELECT count(*) FROM incident_keys),
                    (SELECT count(*) FROM incidents),
                    (SELECT count(*) FROM alerts a WHERE NOT EXISTS
                       (SELECT 1 FROM events e WHERE e.id = a.id))
                  + (SELECT count(*) FROM flows f WHERE NOT EXISTS
                       (SELECT 1 FROM events e WHERE e.id = f.id))
                  + (SELECT count(*) FROM incident_alerts m WHERE NOT EXISTS
                       (SELECT 1 FROM alerts a WHERE a.id = m.alert_id)
                       OR NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = m.incident_id))
                  + (SELECT count(*) FROM incident_keys k WHERE NOT EXISTS
                       (SELECT 1 FROM incidents i WHERE i.id = k.incident_id))",
        )
        .unwrap()
        .trim()
        .split('|')
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn retention_and_purges_leave_no_rows_behind() {
    let url = pg_cluster::fresh_database();
    let db = url.rsplit('/').next().unwrap().to_string();
    let store = PgStore::connect(&url, 1).unwrap();
    // Old: two sources' alerts (two incidents) and their flows.
    let old: Vec<NewEvent> = (0..20)
        .flat_map(|i| {
            let src = if i % 2 == 0 { "10.0.0.1" } else { "10.0.0.2" };
            [
                new_event(sensor_alert(
                    &format!("old-a{i}"),
                    i,
                    AlertCategory::WeightsFormat,
                    1,
                    i as u64,
                    src,
                    "203.0.113.9",
                    "old.example",
                )),
                new_event(flow(
                    &format!("old-f{i}"),
                    i,
                    i as u64,
                    src,
                    "203.0.113.9",
                    1 << 20,
                )),
            ]
        })
        .collect();
    store.ingest(&old, 1_000).unwrap();
    // New: a third source's alerts and an analyzer account.
    let mut new: Vec<NewEvent> = (0..5)
        .map(|i| {
            new_event(sensor_alert(
                &format!("new-a{i}"),
                100 + i,
                AlertCategory::WeightsFormat,
                1,
                100 + i as u64,
                "10.0.0.3",
                "203.0.113.9",
                "new.example",
            ))
        })
        .collect();
    new.push(new_event(account_alert("acct-a", 110, "acct-9", 0.9, None)));
    store.ingest(&new, 5_000).unwrap();
    let before = counts(&db);
    assert_eq!(&before[..3], &[26, 20, 26], "{before:?}");
    assert!(before[4] >= 3, "incidents formed: {before:?}");
    assert_eq!(before[5], 0, "{before:?}");

    // Retention: the old events go, and with them their alerts, flows,
    // memberships, and the incidents left empty with their keys.
    assert_eq!(store.purge_before(2_000).unwrap(), 40);
    let after = counts(&db);
    assert_eq!(&after[..3], &[6, 0, 6], "{after:?}");
    assert!(
        after[4] >= 1 && after[4] < before[4],
        "{before:?} {after:?}"
    );
    assert_eq!(after[5], 0, "no row outlives its parent: {after:?}");

    // An account purge deletes through the same triggers.
    assert_eq!(store.purge_account("acct-9").unwrap().alerts, 1);
    let left = counts(&db);
    assert_eq!(&left[..3], &[5, 0, 5], "{left:?}");
    assert_eq!(left[5], 0, "{left:?}");

    // Deleting an incident takes its keys and memberships.
    pg_cluster::shared()
        .psql(&db, "DELETE FROM incidents")
        .unwrap();
    assert_eq!(counts(&db), vec![5, 0, 0, 0, 0, 0]);
}
