//! Administration without a running server: tokens, users, account purge,
//! label export. These open the database directly (a SQLite file or a
//! PostgreSQL URL; both allow this next to running servers) and are what
//! `weightwatch token|user|purge|labels` and the demo call.

use crate::auth::{self, Scope};
use crate::error::DashboardError;
use crate::labels;
use crate::state::now_micros;
use crate::store::{AuditEntry, Database, PurgeCounts, Store, TokenRow};
use std::sync::Arc;

fn open(db: impl Into<Database>) -> Result<Arc<dyn Store>, DashboardError> {
    Ok(db.into().open(1)?)
}

/// Create a token with `scope` and label `name`; returns the secret, which
/// is not stored (only its SHA-256 is) and cannot be shown again.
pub fn create_token(
    db: impl Into<Database>,
    scope: Scope,
    name: &str,
) -> Result<String, DashboardError> {
    create_token_for(db, scope, name, &[])
}

/// [`create_token`], bound to the sensor ids in `sensors` when there are
/// any: events it submits must name one of them as `sensor_id` (the rest
/// of the batch is rejected event by event).
pub fn create_token_for(
    db: impl Into<Database>,
    scope: Scope,
    name: &str,
    sensors: &[String],
) -> Result<String, DashboardError> {
    create_token_expiring(db, scope, name, sensors, None)
}

/// [`create_token_for`], refused after `expires` (Unix microseconds) when given.
pub fn create_token_expiring(
    db: impl Into<Database>,
    scope: Scope,
    name: &str,
    sensors: &[String],
    expires: Option<i64>,
) -> Result<String, DashboardError> {
    if let Some(bad) = sensors
        .iter()
        .find(|s| s.is_empty() || s.chars().count() > crate::ingest::MAX_ID_CHARS)
    {
        return Err(DashboardError::BadSensorId(bad.clone()));
    }
    let store = open(db)?;
    let secret = auth::new_secret("ww_");
    let bound = (!sensors.is_empty()).then_some(sensors);
    store.token_insert(
        name,
        scope,
        &auth::hash_secret(&secret),
        bound,
        expires,
        now_micros(),
    )?;
    Ok(secret)
}

/// Every token (never the secrets).
pub fn list_tokens(db: impl Into<Database>) -> Result<Vec<TokenRow>, DashboardError> {
    Ok(open(db)?.token_list()?)
}

/// Revoke a token; false when there was no live token with that id.
pub fn revoke_token(db: impl Into<Database>, id: i64) -> Result<bool, DashboardError> {
    Ok(open(db)?.token_revoke(id, now_micros())?)
}

/// The analysts' verdicts on distillation alerts as a labels CSV for the
/// analyzer (see [`crate::labels`]). The database must exist.
pub fn export_labels(db: impl Into<Database>) -> Result<String, DashboardError> {
    let db: Database = db.into();
    if let Database::Sqlite(path) = &db
        && !path.exists()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such database", path.display()),
        )
        .into());
    }
    Ok(labels::export(open(db)?.as_ref())?)
}

/// Read a password from the terminal without echoing it.
pub fn prompt_password(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}

/// Whether `name` is usable as a login.
fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
}

/// Add an analyst, or set a new password (which ends their sessions).
pub fn add_user(db: impl Into<Database>, name: &str, password: &str) -> Result<(), DashboardError> {
    if !valid_user_name(name) {
        return Err(DashboardError::BadUserName(name.to_string()));
    }
    let phc = auth::hash_password(password)?;
    open(db)?.user_upsert(name, &phc, now_micros())?;
    Ok(())
}

/// Add an analyst (or reset their password) with TOTP as a second factor:
/// a new secret and new recovery codes, returned once to show the user.
pub fn add_user_totp(
    db: impl Into<Database>,
    name: &str,
    password: &str,
) -> Result<crate::mfa::Enrollment, DashboardError> {
    let db: Database = db.into();
    add_user(&db, name, password)?;
    let (secret, enrollment, hashes) = crate::mfa::enroll(name);
    open(db)?.user_set_mfa(name, Some(&secret), &hashes)?;
    Ok(enrollment)
}

/// Group every alert that is in no incident (stored before incidents
/// existed) into incidents, oldest first, as ingest would have, with
/// `window_secs` as the grouping window; in transactions of 1000 alerts,
/// so it can run next to a live server. Returns the alerts looked at.
pub fn group_ungrouped_alerts(
    db: impl Into<Database>,
    window_secs: u64,
) -> Result<u64, DashboardError> {
    let store = open(db)?;
    store.set_incident_window(
        i64::try_from(window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
    );
    let (mut after, mut seen) = (0, 0u64);
    while let Some((last, n)) = store.group_ungrouped(after, 1000)? {
        seen += n as u64;
        after = last;
    }
    Ok(seen)
}

/// Delete an account's alerts and features, remove it from cluster member
/// lists, and record the purge (by the account id's SHA-256, so the audit
/// log does not keep the id) in the audit log.
pub fn purge_account(
    db: impl Into<Database>,
    account: &str,
) -> Result<PurgeCounts, DashboardError> {
    let store = open(db)?;
    let counts = store.purge_account(account)?;
    store.audit_append(&AuditEntry {
        id: 0,
        ts: now_micros(),
        actor: "cli".into(),
        action: "purge_account".into(),
        alert_id: None,
        incident_id: None,
        detail: format!(
            "account sha256:{} — {} alerts deleted, {} cluster alerts rewritten",
            auth::hash_secret(account),
            counts.alerts,
            counts.clusters_rewritten
        ),
    })?;
    Ok(counts)
}
