//! The store's value types: what goes in, what comes out, and its errors.

use crate::auth::Scope;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no (or could not be reached).
    #[error("postgresql: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgresql connection pool: {0}")]
    Pool(String),
    /// The PostgreSQL URL's TLS settings are wrong (`sslmode`,
    /// `sslrootcert`).
    #[error("postgresql TLS: {0}")]
    Tls(String),
    /// The PostgreSQL store's runtime could not start.
    #[error("starting the postgresql driver: {0}")]
    Runtime(std::io::Error),
    /// A stored JSON document did not parse (corruption or a foreign writer).
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The database was written by a newer weightwatch: it is refused
    /// before any migration runs, and left as it is.
    #[error(
        "database schema version {found} is newer than this weightwatch's {supported}: it was \
         written by a newer release; run that release, or restore a backup made before it \
         (the database was not changed)"
    )]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A lock was poisoned by a panic in another thread.
    #[error("store lock poisoned")]
    Poisoned,
    /// The database cannot be written (read-only, full, failing I/O).
    #[error("database is not writable: {0}")]
    NotWritable(&'static str),
}

/// An error and its causes, `: `-separated: the driver's own text is only
/// its kind ("db error", "error connecting to server"), the server's
/// message or the I/O or TLS failure is its cause.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// One validated event ready to be stored: the columns the store indexes,
/// and the document as ingested.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Unique id; a resend of the same content under it is a duplicate.
    pub event_id: String,
    /// `event_type` as written (`alert`, `flow`, `fileinfo`, `stats`, and
    /// from Suricata also `http`, `tls`).
    pub event_type: String,
    /// Event time, Unix microseconds.
    pub ts: i64,
    /// The sensor that wrote it (`sensor_id`, or Suricata's `host`).
    pub sensor_id: Option<String>,
    /// The sensor's flow id, for network events.
    pub flow_id: Option<u64>,
    /// Community ID, for network events.
    pub community_id: Option<String>,
    /// What the type-specific tables keep.
    pub index: Indexed,
    /// The JSON document as ingested (after prompt truncation/redaction).
    pub body: String,
}

/// The type-specific columns of an event.
#[derive(Clone, Debug)]
pub enum Indexed {
    /// An alert's filter columns.
    Alert(AlertIndex),
    /// A flow's addresses and byte counts.
    Flow(FlowIndex),
    /// A `stats` event's `stats` object (JSON), the sensor's latest health.
    Stats(String),
    /// Nothing beyond the event row (`fileinfo`, `http`, `tls`).
    Nothing,
}

/// What the alert list filters and searches on.
#[derive(Clone, Debug)]
pub struct AlertIndex {
    /// `alert.category` (weightwatch's names, or Suricata's classification text).
    pub category: String,
    /// 1 high … 3 low (Suricata's priorities above 3 count as low).
    pub severity: u8,
    /// Source address.
    pub src_ip: Option<String>,
    /// Destination address.
    pub dest_ip: Option<String>,
    /// Analyzer: the account flagged.
    pub account_id: Option<String>,
    /// Analyzer: the cluster.
    pub cluster_id: Option<String>,
    /// Analyzer: the cluster's members.
    pub members: Vec<String>,
    /// Analyzer: the account's score (`evidence.score`).
    pub score: Option<f64>,
    /// Lower-cased text the free-text filter searches.
    pub search: String,
}

/// What the overview's top talkers are made of.
#[derive(Clone, Debug)]
pub struct FlowIndex {
    /// Client address.
    pub src_ip: String,
    /// Server address.
    pub dest_ip: String,
    /// TLS server name, when known.
    pub sni: Option<String>,
    /// Bytes client → server.
    pub bytes_toserver: u64,
    /// Bytes server → client.
    pub bytes_toclient: u64,
}

impl NewEvent {
    /// Index a weightwatch event (`event`) stored as `body`.
    pub fn from_eve(event: &eve::Event, body: String) -> NewEvent {
        use eve::EventKind;
        let net = event.net.as_ref();
        let index = match &event.kind {
            EventKind::Alert(a) => Indexed::Alert(AlertIndex {
                category: a.alert.category.as_str().to_string(),
                severity: a.alert.severity,
                src_ip: net.map(|n| n.src_ip.to_string()),
                dest_ip: net.map(|n| n.dest_ip.to_string()),
                account_id: a.account_id.clone(),
                cluster_id: a.cluster_id.clone(),
                members: a.members.clone().unwrap_or_default(),
                score: a.evidence.get("score").and_then(|v| v.as_f64()),
                search: search_text(event, a),
            }),
            EventKind::Flow(f) => match net {
                Some(n) => Indexed::Flow(FlowIndex {
                    src_ip: n.src_ip.to_string(),
                    dest_ip: n.dest_ip.to_string(),
                    sni: f.tls.as_ref().and_then(|t| t.sni.clone()),
                    bytes_toserver: f.flow.bytes_toserver,
                    bytes_toclient: f.flow.bytes_toclient,
                }),
                None => Indexed::Nothing,
            },
            // Serializing a map of numbers cannot fail.
            EventKind::Stats(s) => {
                Indexed::Stats(serde_json::to_string(&s.stats).unwrap_or_default())
            }
            EventKind::Fileinfo(_) => Indexed::Nothing,
        };
        NewEvent {
            event_id: event.event_id.clone(),
            event_type: event.event_type().to_string(),
            ts: event.timestamp.unix_micros(),
            sensor_id: event.sensor_id.clone(),
            flow_id: net.map(|n| n.flow_id),
            community_id: net.map(|n| n.community_id.clone()),
            index,
            body,
        }
    }
}

/// Lower-cased text the free-text filter searches, of a weightwatch alert.
pub fn search_text(e: &eve::Event, a: &eve::AlertEvent) -> String {
    let mut parts: Vec<String> = vec![
        a.alert.signature.clone(),
        a.alert.category.as_str().to_string(),
    ];
    parts.extend(e.sensor_id.clone());
    if let Some(n) = &e.net {
        parts.push(n.src_ip.to_string());
        parts.push(n.dest_ip.to_string());
        parts.extend(n.app_proto.clone());
    }
    if let Some(t) = &a.tls {
        parts.extend(t.sni.clone());
    }
    if let Some(h) = &a.http {
        parts.extend(h.hostname.clone());
        parts.extend(h.url.clone());
        parts.extend(h.http_user_agent.clone());
    }
    if let Some(f) = &a.fileinfo {
        parts.extend(f.filename.clone());
        parts.extend(f.sha256.clone());
    }
    parts.extend(a.account_id.clone());
    parts.extend(a.cluster_id.clone());
    parts.extend(a.members.iter().flatten().cloned());
    parts.join("\n").to_lowercase()
}

/// The audit line of a sensor found silent since `silent_since` at `now`.
pub(crate) fn stale_detail(sensor: &str, silent_since: i64, now: i64) -> String {
    format!(
        "{sensor}: nothing received for {} s",
        now.saturating_sub(silent_since) / 1_000_000
    )
}

/// What one ingest batch did.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    /// Events stored for the first time.
    pub accepted: usize,
    /// Events whose `event_id` was already stored (or repeated in the batch)
    /// with the same content.
    pub duplicates: usize,
    /// Positions (in the slice given to `ingest`) of events whose
    /// `event_id` was already stored with other content; not stored.
    pub conflicts: Vec<usize>,
    /// The alerts among the accepted events, as stored (for live updates).
    pub new_alerts: Vec<StoredAlert>,
    /// The incidents those alerts made or joined, as they now are (for
    /// live updates).
    pub incidents: Vec<crate::incidents::Incident>,
}

/// Triage state of an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not looked at yet.
    New,
    /// An analyst is on it.
    Investigating,
    /// Dealt with.
    Resolved,
    /// Not a real problem.
    FalsePositive,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 4] = [
        Status::New,
        Status::Investigating,
        Status::Resolved,
        Status::FalsePositive,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Investigating => "investigating",
            Status::Resolved => "resolved",
            Status::FalsePositive => "false_positive",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "New",
            Status::Investigating => "Investigating",
            Status::Resolved => "Resolved",
            Status::FalsePositive => "False positive",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?} (new, investigating, resolved, false_positive)")
            })
    }
}

/// Filters of the incident list (all optional; combined with AND).
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    /// Incidents active at or after this time (last alert, Unix microseconds).
    pub from: Option<i64>,
    /// Incidents begun before this time (first alert).
    pub to: Option<i64>,
    /// What it groups.
    pub kind: Option<crate::incidents::Kind>,
    /// Holding an alert of this category.
    pub category: Option<String>,
    /// Highest severity exactly this (1..=3).
    pub severity: Option<u8>,
    /// Triage status.
    pub status: Option<Status>,
    /// Free text: a case-insensitive substring of title, kind, addresses,
    /// categories, file names and SHA-256.
    pub text: Option<String>,
    /// Continue after this position (newest activity first: last alert
    /// time, then id).
    pub cursor: Option<Cursor>,
    /// Page size.
    pub limit: usize,
}

/// One page of incidents.
#[derive(Clone, Debug, Default)]
pub struct IncidentPage {
    /// Most recently active first.
    pub incidents: Vec<crate::incidents::Incident>,
    /// Where the next page starts.
    pub next_cursor: Option<Cursor>,
}

/// One incident with its alerts (oldest first, at most
/// [`INCIDENT_ALERTS`]) and the audit lines of its triage.
#[derive(Clone, Debug)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: crate::incidents::Incident,
    /// Its alerts, oldest first.
    pub alerts: Vec<StoredAlert>,
    /// Audit lines of the incident's triage.
    pub audit: Vec<AuditEntry>,
}

impl IncidentDetail {
    /// The incident (with each file's covered ranges), its timeline, its
    /// alerts and its audit lines: what `GET /api/v1/incidents/{id}`
    /// answers, and what response actions run on an incident receive.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "incident": self.incident.to_json(true),
            "timeline": crate::incidents::timeline::timeline(self),
            "alerts": self.alerts.iter().map(StoredAlert::to_json).collect::<Vec<_>>(),
            "audit": self.audit,
        })
    }
}

/// Alerts an incident's detail lists at most (its count is exact).
pub const INCIDENT_ALERTS: usize = 1000;

/// An alert as stored: its row id, triage status and the event as ingested.
#[derive(Clone, Debug)]
pub struct StoredAlert {
    /// Row id (stable, used in URLs).
    pub id: i64,
    /// Triage status.
    pub status: String,
    /// The event JSON as ingested.
    pub body: String,
}

impl StoredAlert {
    /// The event as ingested plus `id` and `status`, as the read API answers.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("id".into(), self.id.into());
            m.insert("status".into(), self.status.clone().into());
        }
        v
    }
}

/// Filters of the alert list (all optional; combined with AND).
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    /// Alerts at or after this time (Unix microseconds).
    pub from: Option<i64>,
    /// Alerts before this time (Unix microseconds).
    pub to: Option<i64>,
    /// Alert category (`weights_format`, …).
    pub category: Option<String>,
    /// Severity 1..=3.
    pub severity: Option<u8>,
    /// Triage status.
    pub status: Option<Status>,
    /// Sensor id.
    pub sensor: Option<String>,
    /// Source address.
    pub src: Option<String>,
    /// Destination address.
    pub dest: Option<String>,
    /// Account id (analyzer alerts, and cluster members).
    pub account: Option<String>,
    /// Free text, matched case-insensitively against signature, names, URLs,
    /// file names, accounts.
    pub text: Option<String>,
    /// Continue after this position (from a previous page's `next_cursor`).
    pub cursor: Option<Cursor>,
    /// Page size.
    pub limit: usize,
}

/// A position in the newest-first alert order: (timestamp, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Alert timestamp, Unix microseconds.
    pub ts: i64,
    /// Alert row id.
    pub id: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ts, self.id)
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("malformed cursor {s:?}");
        let (ts, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            ts: ts.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// One page of alerts.
#[derive(Clone, Debug, Default)]
pub struct AlertPage {
    /// Newest first.
    pub alerts: Vec<StoredAlert>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<Cursor>,
}

/// An alert with the events of its flow.
#[derive(Clone, Debug)]
pub struct AlertDetail {
    /// The alert.
    pub alert: StoredAlert,
    /// `flow` events of the same flow (same sensor and flow id, or same Community ID).
    pub flows: Vec<String>,
    /// `fileinfo` events of the same flow.
    pub files: Vec<String>,
    /// Analyst actions on this alert, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// An analyst's verdict on a distillation alert: its status is `resolved`
/// (a true positive) or `false_positive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The alert's row id.
    pub alert_id: i64,
    /// Its status: [`Status::Resolved`] or [`Status::FalsePositive`].
    pub status: Status,
    /// Audit line id of the triage that set that status: later triages have
    /// larger ids.
    pub triaged: i64,
    /// The accounts it is about: the account of a `distillation` alert, the
    /// members of a `distillation_cluster` alert.
    pub accounts: Vec<String>,
}

/// One line of the append-only audit log.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When (Unix microseconds).
    pub ts: i64,
    /// Who: `user:NAME` or `token:ID`.
    pub actor: String,
    /// What: `status`, `purge_account`, `login`, …
    pub action: String,
    /// The alert acted on, if any.
    pub alert_id: Option<i64>,
    /// The incident acted on (its triage, a response action), if any.
    pub incident_id: Option<i64>,
    /// Free text: old → new status and the note, counts, …
    pub detail: String,
}

/// An account seen in analyzer alerts.
#[derive(Clone, Debug, Serialize)]
pub struct AccountRow {
    /// The account id.
    pub account_id: String,
    /// Distillation score from the newest alert's evidence (`score`).
    pub score: Option<f64>,
    /// Cluster the account belongs to.
    pub cluster_id: Option<String>,
    /// Distillation alerts stored for it.
    pub alert_count: i64,
    /// Newest alert time (Unix microseconds).
    pub last_ts: i64,
    /// Row id of the newest distillation alert.
    pub last_alert: Option<i64>,
    /// Status of that alert.
    pub status: Option<String>,
    /// The distillation features: the `evidence` of the newest alert.
    pub features: Option<serde_json::Value>,
}

/// An account with its alerts and cluster.
#[derive(Clone, Debug)]
pub struct AccountDetail {
    /// The account.
    pub account: AccountRow,
    /// Its newest distillation alert (features are in the evidence).
    pub latest: Option<StoredAlert>,
    /// All its alerts, newest first (bounded).
    pub alerts: Vec<StoredAlert>,
    /// Its cluster's members, when it belongs to one.
    pub members: Vec<String>,
}

/// A sensor (or analyzer) that sent events.
#[derive(Clone, Debug, Serialize)]
pub struct SensorRow {
    /// The sensor id.
    pub sensor_id: String,
    /// Newest event time it reported (Unix microseconds).
    pub last_event_ts: i64,
    /// When the dashboard last received from it (Unix microseconds, wall clock).
    pub last_received: i64,
    /// Events received from it.
    pub events: i64,
    /// Its newest `stats` counters (the `stats` object), if any.
    pub stats: Option<serde_json::Value>,
    /// Event time of those counters (Unix microseconds).
    pub stats_ts: Option<i64>,
    /// The counters of the report before (for counts per interval).
    pub prev_stats: Option<serde_json::Value>,
    /// Event time of the report before.
    pub prev_stats_ts: Option<i64>,
    /// When the fleet watch found it silent (the stale-sensor alert);
    /// `None` while it reports, cleared by its next event.
    pub stale_since: Option<i64>,
    /// Alerts received from it per category, most first.
    pub alerts_by_category: Vec<(String, i64)>,
}

/// What a sensor counted between its two newest `stats` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// Seconds between the reports (event time).
    pub secs: u64,
    /// Packets captured in between.
    pub packets: u64,
    /// Packets dropped in between.
    pub drops: u64,
}

/// Packets captured and dropped (kernel and queue drops) in a `stats`
/// object (0 when not reported). A Suricata sensor's packets are its
/// `capture.kernel_packets` (live) or `decoder.pkts` (a replayed file).
fn packets_and_drops_of(stats: Option<&serde_json::Value>) -> (u64, u64) {
    let get = |section: &str, k: &str| {
        stats
            .and_then(|s| s.get(section))
            .and_then(|c| c.get(k))
            .and_then(serde_json::Value::as_u64)
    };
    let packets = get("capture", "packets")
        .or_else(|| get("capture", "kernel_packets"))
        .or_else(|| get("decoder", "pkts"))
        .unwrap_or(0);
    let drop = |k: &str| get("capture", k).unwrap_or(0);
    (
        packets,
        drop("kernel_drops").saturating_add(drop("queue_drops")),
    )
}

impl SensorRow {
    /// Packets captured and packets dropped, from its newest `stats`
    /// counters (0 when not reported).
    pub fn packets_and_drops(&self) -> (u64, u64) {
        packets_and_drops_of(self.stats.as_ref())
    }

    /// Packets and drops between its two newest `stats` reports; `None`
    /// before the second report, or when the counters went down (the
    /// sensor restarted: its counters begin again at 0).
    pub fn interval(&self) -> Option<Interval> {
        let (ts, prev_ts) = (self.stats_ts?, self.prev_stats_ts?);
        let (p1, d1) = packets_and_drops_of(self.stats.as_ref());
        let (p0, d0) = packets_and_drops_of(self.prev_stats.as_ref());
        Some(Interval {
            secs: u64::try_from(ts.checked_sub(prev_ts)?).ok()? / 1_000_000,
            packets: p1.checked_sub(p0)?,
            drops: d1.checked_sub(d0)?,
        })
    }

    /// The software version it reports in its `stats` events, if any.
    pub fn version(&self) -> Option<&str> {
        self.stats.as_ref()?.get("version")?.as_str()
    }

    /// The spool counters it reports (its `stats.spool` section: events
    /// waiting to be acknowledged, the age of the oldest in seconds, bytes
    /// on disk), if it reports them.
    pub fn spool(&self) -> Option<&serde_json::Value> {
        self.stats.as_ref()?.get("spool")
    }
}

/// How much time the overview's chart spans, ending at the newest alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChartSpan {
    /// The last 24 hours.
    Day,
    /// The last 7 days (the default).
    #[default]
    Week,
    /// The last 30 days.
    Month,
    /// From the oldest alert to the newest.
    All,
}

impl ChartSpan {
    /// Every span, in the order the page offers them.
    pub const ALL: [ChartSpan; 4] = [
        ChartSpan::Day,
        ChartSpan::Week,
        ChartSpan::Month,
        ChartSpan::All,
    ];

    /// The span named in a query string (`24h`, `7d`, `30d`, `all`).
    pub fn parse(s: &str) -> Option<ChartSpan> {
        ChartSpan::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Its name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartSpan::Day => "24h",
            ChartSpan::Week => "7d",
            ChartSpan::Month => "30d",
            ChartSpan::All => "all",
        }
    }

    /// The span shown when none is asked for, if not the default week:
    /// when the newest alert is older than a week before `now` (µs;
    /// replayed captures, imported or old logs, where "the week before the
    /// newest alert" is wherever the data happens to end), the shortest
    /// span that holds every alert, from `range` (oldest, newest alert,
    /// µs). `None`: the newest alert is recent, or there is none.
    pub fn fitting(range: Option<(i64, i64)>, now: i64) -> Option<ChartSpan> {
        let (lo, hi) = range?;
        let week = ChartSpan::Week.micros()?;
        if hi >= now.saturating_sub(week) {
            return None;
        }
        ChartSpan::ALL
            .into_iter()
            .find(|s| s.micros().is_none_or(|w| hi - lo < w))
    }

    /// Its length in microseconds (`None`: all of the data).
    pub fn micros(self) -> Option<i64> {
        const HOUR: i64 = 3_600_000_000;
        match self {
            ChartSpan::Day => Some(24 * HOUR),
            ChartSpan::Week => Some(7 * 24 * HOUR),
            ChartSpan::Month => Some(30 * 24 * HOUR),
            ChartSpan::All => None,
        }
    }
}

/// Aggregates for the overview page.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// Start of the timeline (Unix microseconds).
    pub timeline_start: i64,
    /// Width of one timeline bucket (microseconds).
    pub bucket_micros: i64,
    /// Number of buckets.
    pub buckets: usize,
    /// (category, bucket index, count).
    pub timeline: Vec<(String, usize, i64)>,
    /// Alerts older than the chart's start.
    pub before_chart: i64,
    /// The oldest and the newest alert's time (µs), if any alert is stored.
    pub alert_range: Option<(i64, i64)>,
    /// Open (new or investigating) alerts per severity 1..=3.
    pub open_by_severity: [i64; 3],
    /// Total alerts stored.
    pub total_alerts: i64,
    /// Source hosts by bytes sent (address, bytes).
    pub top_sources: Vec<(String, i64)>,
    /// Destinations by bytes received (address, SNI if seen, bytes).
    pub top_destinations: Vec<(String, Option<String>, i64)>,
    /// Accounts by distillation score.
    pub top_accounts: Vec<AccountRow>,
    /// Every sensor.
    pub sensors: Vec<SensorRow>,
}

/// What a purge deleted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PurgeCounts {
    /// Events deleted (alerts included).
    pub events: usize,
    /// Alerts deleted.
    pub alerts: usize,
    /// Cluster alerts whose member list was rewritten.
    pub clusters_rewritten: usize,
}

/// An API token (never the secret).
#[derive(Clone, Debug, Serialize)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Created (Unix microseconds).
    pub created: i64,
    /// Revoked (Unix microseconds), if revoked.
    pub revoked: Option<i64>,
    /// The sensor ids it may submit events for (`None`: any).
    pub sensors: Option<Vec<String>>,
}

/// A live token as authentication sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    /// Row id.
    pub id: i64,
    /// Scope.
    pub scope: Scope,
    /// The sensor ids it may submit events for (`None`: any).
    pub sensors: Option<Vec<String>>,
}

/// A signed-in analyst's session.
#[derive(Clone, Debug)]
pub struct Session {
    /// User name.
    pub user: String,
    /// CSRF token bound to the session.
    pub csrf: String,
    /// Expiry (Unix microseconds).
    pub expires: i64,
    /// Last use (Unix microseconds), for the idle timeout.
    pub last_seen: i64,
}

/// A user's second factor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserMfa {
    /// The TOTP secret (base32), when enrolled.
    pub totp_secret: Option<String>,
    /// SHA-256 of each unused recovery code.
    pub recovery: Vec<String>,
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Events stored.
    pub events: i64,
    /// Alerts stored.
    pub alerts: i64,
    /// Alerts with status new or investigating.
    pub open_alerts: i64,
}
