//! The storage traits, one per domain, so a second implementation (or a
//! test double) can be written and checked a domain at a time; [`Store`]
//! is all of them, what the server holds. Methods are blocking; the server
//! calls them on tokio's blocking pool.

use super::model::{
    AccountDetail, AccountRow, AlertDetail, AlertFilter, AlertPage, AuditEntry, ChartSpan, Counts,
    IncidentDetail, IncidentFilter, IncidentPage, IngestOutcome, NewEvent, Overview, PurgeCounts,
    SensorRow, Session, Status, StoreResult, StoredAlert, TokenGrant, TokenRow, UserMfa, Verdict,
};
use crate::auth::Scope;
use crate::incidents::Incident;

/// Events: ingest and deletion.
pub trait EventStore {
    /// Store a batch in one transaction; returns after it is durable.
    fn ingest(&self, events: &[NewEvent], received: i64) -> StoreResult<IngestOutcome>;
    /// Delete events received before `cutoff` (Unix microseconds); returns events deleted.
    fn purge_before(&self, cutoff: i64) -> StoreResult<usize>;
    /// Delete everything about one account.
    fn purge_account(&self, account: &str) -> StoreResult<PurgeCounts>;
    /// `Ok` when events can be written now; an error when the database is
    /// read-only or the last write failed for want of space or I/O.
    fn check_writable(&self) -> StoreResult<()>;
}

/// Alerts: listing, detail and triage.
pub trait AlertStore {
    /// One page of alerts, newest first.
    fn alerts(&self, filter: &AlertFilter) -> StoreResult<AlertPage>;
    /// One alert with its flow context and audit trail.
    fn alert(&self, id: i64) -> StoreResult<Option<AlertDetail>>;
    /// Set an alert's status and write the audit line in one transaction.
    /// Returns the alert as updated, or `None` when there is no such alert.
    fn triage(
        &self,
        id: i64,
        status: Status,
        note: &str,
        actor: &str,
        now: i64,
    ) -> StoreResult<Option<StoredAlert>>;
    /// Every `distillation` and `distillation_cluster` alert whose status is
    /// a verdict (resolved or false positive), in the order of the triages
    /// that set those statuses.
    fn distillation_verdicts(&self) -> StoreResult<Vec<Verdict>>;
}

/// `weights_known` alerts [`IncidentStore::last_canary`] looks through at most.
pub const CANARY_SCAN: i64 = 10_000;

/// Incidents: alerts grouped at ingest (see `crate::incidents`).
pub trait IncidentStore {
    /// How long after a key's last alert another alert with the key still
    /// joins its incident (microseconds); ingest uses it from now on.
    fn set_incident_window(&self, micros: i64);
    /// One page of incidents, most recently active first.
    fn incidents(&self, filter: &IncidentFilter) -> StoreResult<IncidentPage>;
    /// One incident with its alerts and audit lines.
    fn incident(&self, id: i64) -> StoreResult<Option<IncidentDetail>>;
    /// What the time-to-exfiltrate figures are made of: the newest flow's
    /// time, the busiest uploading hosts in the span before it, and the
    /// registered files of the incidents (see
    /// `crate::incidents::exposure`).
    fn exposure(&self) -> StoreResult<crate::incidents::exposure::Measured>;
    /// The newest `weights_known` alert of a registered canary
    /// (`evidence.canary`), among the newest [`CANARY_SCAN`] of that
    /// category: the last exfiltration test the sensors caught.
    fn last_canary(&self) -> StoreResult<Option<StoredAlert>>;
    /// The incident an alert belongs to.
    fn incident_of(&self, alert_id: i64) -> StoreResult<Option<i64>>;
    /// Group up to `batch` alerts with ids above `after` that are in no
    /// incident (stored before incidents existed), oldest first, as ingest
    /// would have, in one transaction; the last id looked at and how many
    /// were, `None` when there was none.
    fn group_ungrouped(&self, after: i64, batch: usize) -> StoreResult<Option<(i64, usize)>>;
    /// Set an incident's status and every one of its alerts', with an audit
    /// line for the incident and one per alert, in one transaction.
    /// Returns the incident and its alerts' ids, or `None` when there is no
    /// such incident.
    fn triage_incident(
        &self,
        id: i64,
        status: Status,
        note: &str,
        actor: &str,
        now: i64,
    ) -> StoreResult<Option<(Incident, Vec<i64>)>>;
}

/// The audit log.
pub trait AuditStore {
    /// Append an audit line not tied to a triage (e.g. purge).
    fn audit_append(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// The newest audit lines.
    fn audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}

/// Accounts scored by the analyzer.
pub trait AccountStore {
    /// Accounts by score, highest first.
    fn accounts(&self, limit: usize) -> StoreResult<Vec<AccountRow>>;
    /// One account.
    fn account(&self, id: &str) -> StoreResult<Option<AccountDetail>>;
}

/// Summaries: sensors, the overview's aggregates, metrics counters.
pub trait SummaryStore {
    /// Every sensor.
    fn sensors(&self) -> StoreResult<Vec<SensorRow>>;
    /// Mark the sensors that have sent nothing since `silent_since` (Unix
    /// microseconds) and are not marked yet as stale since `now`; returns
    /// their ids, and append a `sensor_stale` audit line (actor `system`)
    /// for each in the same transaction. Each silence is returned once (by
    /// one call, whichever server makes it); a sensor's next event clears
    /// the mark.
    fn mark_stale(&self, silent_since: i64, now: i64) -> StoreResult<Vec<String>>;
    /// Aggregates for the overview page, the chart spanning `span`.
    fn overview(&self, span: ChartSpan) -> StoreResult<Overview>;
    /// Counters for metrics.
    fn counts(&self) -> StoreResult<Counts>;
}

/// API tokens (only their hashes).
pub trait TokenStore {
    /// Store a token hash, bound to `sensors` when given; returns its id.
    fn token_insert(
        &self,
        name: &str,
        scope: Scope,
        hash: &str,
        sensors: Option<&[String]>,
        expires: Option<i64>,
        now: i64,
    ) -> StoreResult<i64>;
    /// The live (not revoked, not expired at `now`) token with this hash.
    fn token_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<TokenGrant>>;
    /// Every token.
    fn token_list(&self) -> StoreResult<Vec<TokenRow>>;
    /// Revoke a token; false when there is no such live token.
    fn token_revoke(&self, id: i64, now: i64) -> StoreResult<bool>;
}

/// Analysts and their sessions.
pub trait UserStore {
    /// Create or update a user's password hash (PHC string).
    fn user_upsert(&self, name: &str, phc: &str, now: i64) -> StoreResult<()>;
    /// A user's password hash.
    fn user_phc(&self, name: &str) -> StoreResult<Option<String>>;
    /// Store a session (by the hash of its cookie value), last used `now`.
    fn session_insert(
        &self,
        hash: &str,
        user: &str,
        csrf: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<()>;
    /// A live session by cookie hash.
    fn session_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<Session>>;
    /// End a session.
    fn session_delete(&self, hash: &str) -> StoreResult<()>;
    /// Record that a session was used at `now`.
    fn session_touch(&self, hash: &str, now: i64) -> StoreResult<()>;
    /// Enrol a user in TOTP (or remove it with `None`) with these recovery
    /// code hashes, no step of the new secret used yet; false when there is
    /// no such user.
    fn user_set_mfa(
        &self,
        name: &str,
        totp_secret: Option<&str>,
        recovery: &[String],
    ) -> StoreResult<bool>;
    /// A user's second factor (`None`: no such user).
    fn user_mfa(&self, name: &str) -> StoreResult<Option<UserMfa>>;
    /// Use up a recovery code by its hash; false when it is not one of the
    /// user's unused codes.
    fn user_use_recovery(&self, name: &str, hash: &str) -> StoreResult<bool>;
    /// Use up TOTP time step `step` (Unix time / 30) for `name`, in one
    /// conditional update: true when it is later than the last step used
    /// (which it then becomes), false for the same or an earlier step (a
    /// replayed code; two servers given one code cannot both accept it) or
    /// no such user.
    fn user_use_totp_step(&self, name: &str, step: i64) -> StoreResult<bool>;
}

/// Where a store hands live updates it receives: `(kind, data)`.
pub type Deliver = Box<dyn Fn(&str, &str) + Send + Sync>;

/// Live updates shared by every server on one database (replicas).
pub trait LiveStore {
    /// Start delivering the updates every server on this database
    /// announces (this one included) to `deliver`, and return true; false
    /// when the store has no such channel (a SQLite file is served by one
    /// process, which delivers its updates itself).
    fn listen(&self, deliver: Deliver) -> StoreResult<bool>;
    /// Announce `(kind, data)` updates to every listening server, in order.
    /// Only called when [`LiveStore::listen`] returned true.
    fn announce(&self, updates: &[(&str, &str)]) -> StoreResult<()>;
}

/// The dashboard's storage: every domain, shareable across threads.
pub trait Store:
    EventStore
    + AlertStore
    + IncidentStore
    + AuditStore
    + AccountStore
    + SummaryStore
    + TokenStore
    + UserStore
    + LiveStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: EventStore
        + AlertStore
        + IncidentStore
        + AuditStore
        + AccountStore
        + SummaryStore
        + TokenStore
        + UserStore
        + LiveStore
        + Send
        + Sync
        + 'static
{
}
