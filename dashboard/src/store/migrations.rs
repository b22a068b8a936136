//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Migration N (1-based) brings the schema from version N-1 to N. Each runs in
//! its own transaction together with the version bump, so a crash leaves the
//! database at a whole version. Never edit a released migration; append one.

use super::model::{StoreError, StoreResult};
use rusqlite::Connection;

/// The migrations, oldest first.
const MIGRATIONS: &[&str] = &[
    // 1: events, alerts and their context; accounts, sensors; audit; auth.
    r#"
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    received INTEGER NOT NULL,
    sensor_id TEXT,
    flow_id INTEGER,
    community_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_received ON events(received);
CREATE INDEX events_flow ON events(flow_id, sensor_id) WHERE flow_id IS NOT NULL;
CREATE INDEX events_community ON events(community_id) WHERE community_id IS NOT NULL;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    ts INTEGER NOT NULL,
    category TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    sensor_id TEXT,
    src_ip TEXT,
    dest_ip TEXT,
    account_id TEXT,
    cluster_id TEXT,
    members TEXT,
    search TEXT NOT NULL
);
CREATE INDEX alerts_ts ON alerts(ts, id);
CREATE INDEX alerts_category ON alerts(category, ts, id);
CREATE INDEX alerts_status ON alerts(status, ts, id);
CREATE INDEX alerts_severity ON alerts(severity, ts, id);
CREATE INDEX alerts_sensor ON alerts(sensor_id, ts, id);
CREATE INDEX alerts_src ON alerts(src_ip, ts, id);
CREATE INDEX alerts_dest ON alerts(dest_ip, ts, id);
CREATE INDEX alerts_account ON alerts(account_id, ts, id) WHERE account_id IS NOT NULL;

CREATE TABLE flows (
    id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    ts INTEGER NOT NULL,
    src_ip TEXT NOT NULL,
    dest_ip TEXT NOT NULL,
    sni TEXT,
    bytes_toserver INTEGER NOT NULL,
    bytes_toclient INTEGER NOT NULL
);
CREATE INDEX flows_ts ON flows(ts);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    score REAL,
    cluster_id TEXT,
    last_alert INTEGER,
    last_ts INTEGER NOT NULL,
    alert_count INTEGER NOT NULL
);
CREATE INDEX accounts_score ON accounts(score);

CREATE TABLE clusters (
    cluster_id TEXT PRIMARY KEY,
    members TEXT NOT NULL,
    last_alert INTEGER,
    last_ts INTEGER NOT NULL
);

CREATE TABLE sensors (
    sensor_id TEXT PRIMARY KEY,
    last_event_ts INTEGER NOT NULL,
    last_received INTEGER NOT NULL,
    events INTEGER NOT NULL,
    stats TEXT,
    stats_ts INTEGER
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX audit_alert ON audit(alert_id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    revoked INTEGER
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    phc TEXT NOT NULL,
    created INTEGER NOT NULL
);

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires INTEGER NOT NULL
);
"#,
    // 2: trigram index for free-text search (store/search.rs). External
    // content (alerts.search), so the text is not stored twice; `detail=none`
    // and `columnsize=0` keep only which rows hold each trigram. Triggers keep
    // it in step with every delete (including the cascade from `events`) and
    // rewrite of the search text (the insert trigger is replaced by migration
    // 3); `rebuild` indexes the alerts an older version stored.
    r#"
CREATE VIRTUAL TABLE alerts_fts USING fts5(
    search,
    content = 'alerts',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1',
    detail = none,
    columnsize = 0
);
CREATE TRIGGER alerts_fts_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alerts_fts (rowid, search) VALUES (new.id, new.search);
END;
CREATE TRIGGER alerts_fts_delete AFTER DELETE ON alerts BEGIN
    INSERT INTO alerts_fts (alerts_fts, rowid, search) VALUES ('delete', old.id, old.search);
END;
CREATE TRIGGER alerts_fts_update AFTER UPDATE OF id, search ON alerts BEGIN
    INSERT INTO alerts_fts (alerts_fts, rowid, search) VALUES ('delete', old.id, old.search);
    INSERT INTO alerts_fts (rowid, search) VALUES (new.id, new.search);
END;
INSERT INTO alerts_fts (alerts_fts) VALUES ('rebuild');
"#,
    // 3: new alerts are indexed by the ingest transaction in one statement
    // (sqlite.rs `index_text`): the per-row trigger flushed one FTS5 segment
    // per alert.
    r#"
DROP TRIGGER alerts_fts_insert;
"#,
    // 4: a token may be bound to the sensor ids it speaks for (a JSON array
    // of strings; NULL: any sensor).
    r#"
ALTER TABLE tokens ADD COLUMN sensors TEXT;
"#,
    // 5: zero trust. A user's TOTP secret (base32; NULL: password only) and
    // one-time recovery codes (JSON array of their SHA-256); when a session
    // was last used (idle timeout; sessions from before end at once); a
    // token's expiry (NULL: none).
    r#"
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN recovery TEXT;
ALTER TABLE sessions ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN expires INTEGER;
"#,
    // 6: the fleet view: each sensor's previous stats report (counters per
    // interval), when it was found silent (the stale-sensor alert), and its
    // alerts per category (counted at ingest).
    r#"
ALTER TABLE sensors ADD COLUMN prev_stats TEXT;
ALTER TABLE sensors ADD COLUMN prev_stats_ts INTEGER;
ALTER TABLE sensors ADD COLUMN stale_since INTEGER;
CREATE TABLE sensor_categories (
    sensor_id TEXT NOT NULL,
    category TEXT NOT NULL,
    alerts INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, category)
);
INSERT INTO sensor_categories (sensor_id, category, alerts)
    SELECT sensor_id, category, count(*) FROM alerts
    WHERE sensor_id IS NOT NULL GROUP BY sensor_id, category;
"#,
    // 7: incidents (dashboard/src/incidents/): the incident rows (columns
    // the list filters on, the rest as JSON `state`), which incident each
    // grouping key last linked (the key is the primary key, so one key
    // names one incident), each alert's incident, and audit lines of
    // incident triage. Alerts stored before are not grouped.
    r#"
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    severity INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    coverage REAL,
    categories TEXT NOT NULL,
    src_ip TEXT,
    search TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX incidents_last ON incidents(last_ts, id);
CREATE INDEX incidents_status ON incidents(status, last_ts, id);
CREATE TABLE incident_keys (
    key TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    last_ts INTEGER NOT NULL
);
CREATE INDEX incident_keys_incident ON incident_keys(incident_id);
CREATE TABLE incident_alerts (
    alert_id INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE
);
CREATE INDEX incident_alerts_incident ON incident_alerts(incident_id);
ALTER TABLE audit ADD COLUMN incident_id INTEGER;
CREATE INDEX audit_incident ON audit(incident_id) WHERE incident_id IS NOT NULL;
"#,
    // 8: TOTP codes are single-use: the last 30 s step a user's code was
    // accepted for (0: none); a code is accepted only for a later step.
    r#"
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;
"#,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Bring `conn` up to the latest version.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > latest() {
        return Err(StoreError::TooNew {
            found,
            supported: latest(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}
