//! PostgreSQL schema migrations, tracked in the one-row `schema_version`
//! table.
//!
//! Migration N (1-based) brings the schema from version N-1 to N, in one
//! transaction with the version bump, under an advisory lock: replicas
//! starting together migrate once, and a crash leaves a whole version.
//! Never edit a released migration; append one.

use super::super::model::{StoreError, StoreResult};
use tokio_postgres::Client;

/// Advisory lock key held while migrating ("wwschema" as bytes).
const MIGRATE_LOCK: i64 = 0x7777_7363_6865_6d61;

/// The migrations, oldest first. The tables are those of the SQLite store
/// (store/migrations.rs), with PostgreSQL's types; the free-text index is a
/// `pg_trgm` GIN index on `alerts.search` (store/search.rs explains the
/// semantics both stores keep).
const MIGRATIONS: &[&str] = &[
    // 1: events, alerts and their context; accounts, sensors; audit; auth;
    // oversized live updates (postgres/live.rs).
    r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    ts BIGINT NOT NULL,
    received BIGINT NOT NULL,
    sensor_id TEXT,
    flow_id BIGINT,
    community_id TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_received ON events(received);
CREATE INDEX events_flow ON events(flow_id, sensor_id) WHERE flow_id IS NOT NULL;
CREATE INDEX events_community ON events(community_id) WHERE community_id IS NOT NULL;

CREATE TABLE alerts (
    id BIGINT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    category TEXT NOT NULL,
    severity BIGINT NOT NULL,
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
CREATE INDEX alerts_search ON alerts USING gin (search gin_trgm_ops);

CREATE TABLE flows (
    id BIGINT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    src_ip TEXT NOT NULL,
    dest_ip TEXT NOT NULL,
    sni TEXT,
    bytes_toserver BIGINT NOT NULL,
    bytes_toclient BIGINT NOT NULL
);
CREATE INDEX flows_ts ON flows(ts);

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    score DOUBLE PRECISION,
    cluster_id TEXT,
    last_alert BIGINT,
    last_ts BIGINT NOT NULL,
    alert_count BIGINT NOT NULL
);
CREATE INDEX accounts_score ON accounts(score);

CREATE TABLE clusters (
    cluster_id TEXT PRIMARY KEY,
    members TEXT NOT NULL,
    last_alert BIGINT,
    last_ts BIGINT NOT NULL
);

CREATE TABLE sensors (
    sensor_id TEXT PRIMARY KEY,
    last_event_ts BIGINT NOT NULL,
    last_received BIGINT NOT NULL,
    events BIGINT NOT NULL,
    stats TEXT,
    stats_ts BIGINT
);

CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id BIGINT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_alert ON audit(alert_id);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TABLE tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL,
    revoked BIGINT,
    sensors TEXT
);

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    phc TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires BIGINT NOT NULL
);

CREATE TABLE live_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
"#,
    // 2: the fleet view (as SQLite's migration 6).
    r#"
ALTER TABLE sensors ADD COLUMN prev_stats TEXT;
ALTER TABLE sensors ADD COLUMN prev_stats_ts BIGINT;
ALTER TABLE sensors ADD COLUMN stale_since BIGINT;
CREATE TABLE sensor_categories (
    sensor_id TEXT NOT NULL,
    category TEXT NOT NULL,
    alerts BIGINT NOT NULL,
    PRIMARY KEY (sensor_id, category)
);
INSERT INTO sensor_categories (sensor_id, category, alerts)
    SELECT sensor_id, category, count(*) FROM alerts
    WHERE sensor_id IS NOT NULL GROUP BY sensor_id, category;
"#,
    // 3: zero trust (as SQLite's migration 5): a user's TOTP secret and
    // recovery code hashes, a session's last use, a token's expiry.
    r#"
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN recovery TEXT;
ALTER TABLE sessions ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN expires BIGINT;
"#,
    // 4: incidents (as SQLite's migration 7).
    r#"
CREATE TABLE incidents (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    severity BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    alert_count BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    coverage DOUBLE PRECISION,
    categories TEXT NOT NULL,
    src_ip TEXT,
    search TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX incidents_last ON incidents(last_ts, id);
CREATE INDEX incidents_status ON incidents(status, last_ts, id);
CREATE TABLE incident_keys (
    key TEXT PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    last_ts BIGINT NOT NULL
);
CREATE INDEX incident_keys_incident ON incident_keys(incident_id);
CREATE TABLE incident_alerts (
    alert_id BIGINT PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,
    incident_id BIGINT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE
);
CREATE INDEX incident_alerts_incident ON incident_alerts(incident_id);
ALTER TABLE audit ADD COLUMN incident_id BIGINT;
CREATE INDEX audit_incident ON audit(incident_id) WHERE incident_id IS NOT NULL;
"#,
    // 5: single-use TOTP codes (as SQLite's migration 8).
    r#"
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
"#,
    // 6: ingest cost. The foreign keys of the per-event tables checked
    // every inserted row with a query that also locked the parent row
    // (a WAL record per alert); the rows ingest inserts reference rows the
    // same transaction inserted or locked, so the checks never failed.
    // Their `ON DELETE CASCADE` is kept as statement-level triggers, one
    // set-based delete per statement instead of one per row
    // (docs/performance.md, "Dashboard on PostgreSQL: ingest cost per event").
    // Written to run again on a schema that has it (a test that marks the
    // database older reruns it).
    r#"
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_id_fkey;
ALTER TABLE flows DROP CONSTRAINT IF EXISTS flows_id_fkey;
ALTER TABLE incident_keys DROP CONSTRAINT IF EXISTS incident_keys_incident_id_fkey;
ALTER TABLE incident_alerts DROP CONSTRAINT IF EXISTS incident_alerts_alert_id_fkey;
ALTER TABLE incident_alerts DROP CONSTRAINT IF EXISTS incident_alerts_incident_id_fkey;

CREATE OR REPLACE FUNCTION events_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM alerts WHERE id IN (SELECT id FROM gone);
    DELETE FROM flows WHERE id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS events_cascade ON events;
CREATE TRIGGER events_cascade AFTER DELETE ON events
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION events_cascade();

CREATE OR REPLACE FUNCTION alerts_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_alerts WHERE alert_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alerts_cascade ON alerts;
CREATE TRIGGER alerts_cascade AFTER DELETE ON alerts
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION alerts_cascade();

CREATE OR REPLACE FUNCTION incidents_cascade() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM incident_keys WHERE incident_id IN (SELECT id FROM gone);
    DELETE FROM incident_alerts WHERE incident_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS incidents_cascade ON incidents;
CREATE TRIGGER incidents_cascade AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION incidents_cascade();
"#,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Bring the database `client` is connected to up to the latest version.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    // Checked first: an up-to-date database opened read-only (a standby,
    // `default_transaction_read_only`) must open without writing.
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await
            .or_else(|e| {
                // Two replicas creating the table at once: one wins, the
                // other sees the unique violation on the catalog.
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
    }
    loop {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .await?;
        let found: i64 = match tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
        {
            Some(r) => r.get(0),
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                    .await?;
                0
            }
        };
        if found > latest() {
            return Err(StoreError::TooNew {
                found,
                supported: latest(),
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE schema_version SET version = $1", &[&(found + 1)])
            .await?;
        tx.commit().await?;
        tracing::info!(version = found + 1, "database migrated");
    }
}
