//! The `[dashboard]` section of `weightwatch.toml`.

use crate::store::Database;
use serde::Deserialize;

/// Dashboard settings (every key documented in `docs/dashboard.md` and the
/// commented `weightwatch.example.toml`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// The database: a SQLite file path or a `postgres://user@host:port/db`
    /// URL (`--db` overrides it; default `weightwatch.db`).
    pub db: Option<String>,
    /// Alerts (and the flow, fileinfo and stats events) older than this many
    /// days are deleted by the retention job; 0 keeps everything.
    pub retention_days: u32,
    /// Seconds between two runs of the retention job.
    pub purge_interval_secs: u64,
    /// Largest accepted request body in bytes (ingest batches); larger is 413.
    pub max_body_bytes: usize,
    /// Most events in one ingest batch; a longer array is rejected with 413.
    pub max_batch_events: usize,
    /// Ingest requests per second allowed for one token (sustained).
    pub ingest_requests_per_second: u32,
    /// Ingest requests one token may send in a burst above the sustained rate.
    pub ingest_burst: u32,
    /// Failed sign-ins allowed per client address per minute (then 429
    /// for that address, whatever the name).
    pub login_attempts_per_minute: u32,
    /// Longest wait imposed on one name from one address after failed
    /// sign-ins (the wait doubles with each failure from 1 second).
    pub login_backoff_max_secs: u64,
    /// Password hashes (argon2, about 19 MiB each) computed at once.
    pub password_hash_concurrency: usize,
    /// Sign-ins that may wait for a hashing slot; beyond that 503 at once.
    pub password_hash_queue: usize,
    /// Hours an analyst session lasts.
    pub session_hours: u32,
    /// Minutes a session may go unused before it ends (0: no idle limit).
    pub session_idle_minutes: u32,
    /// Every analyst must give a TOTP code (or a recovery code) at sign-in;
    /// users without one cannot sign in (`serve --require-mfa`).
    pub require_mfa: bool,
    /// Prompt text in alert evidence (keys containing `prompt`) is cut to
    /// this many characters before it is stored; 0 stores no prompt text.
    pub prompt_max_chars: usize,
    /// Replace all prompt text by its SHA-256 before storing.
    pub redact_prompts: bool,
    /// Mark the session cookie `Secure` (set when served behind HTTPS).
    pub secure_cookie: bool,
    /// Live-update messages buffered per subscriber before a slow one is cut off.
    pub stream_buffer: usize,
    /// Pooled connections for queries: read-only SQLite connections (the
    /// writer is separate), or PostgreSQL connections (one more listens for
    /// live updates).
    pub read_connections: usize,
    /// Events dated more than this many seconds after the server's clock
    /// are rejected.
    pub max_clock_skew_secs: u64,
    /// Seconds a client has to send a request's headers (from the moment
    /// the server waits for them, including between keep-alive requests).
    pub header_read_timeout_secs: u64,
    /// A connection that neither sends nor receives a byte for this many
    /// seconds is closed (a stalled body upload, a client that reads nothing).
    pub idle_timeout_secs: u64,
    /// Connections served at once; further clients wait in the listen queue.
    pub max_connections: usize,
    /// A sensor (or analyzer) that sends nothing for this many seconds is
    /// reported silent once (audit log, live stream, sensors page) until it
    /// sends again; 0 turns the watch off.
    pub stale_after_secs: u64,
    /// Alerts sharing a grouping key (registered file and source host, flow
    /// or object, host and destination of egress, analyzer cluster or
    /// account) join one incident while the key's last alert is at most
    /// this many seconds older (see `crate::incidents`).
    pub incident_window_secs: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            db: None,
            retention_days: 90,
            purge_interval_secs: 3600,
            max_body_bytes: 16 << 20,
            max_batch_events: 10_000,
            ingest_requests_per_second: 100,
            ingest_burst: 200,
            login_attempts_per_minute: 10,
            login_backoff_max_secs: 900,
            password_hash_concurrency: 2,
            password_hash_queue: 16,
            session_hours: 12,
            session_idle_minutes: 30,
            require_mfa: false,
            prompt_max_chars: 500,
            redact_prompts: false,
            secure_cookie: false,
            stream_buffer: 1024,
            read_connections: 4,
            max_clock_skew_secs: 3600,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 512,
            stale_after_secs: 600,
            incident_window_secs: 24 * 3600,
        }
    }
}

impl DashboardConfig {
    /// The database to use: `flag` (`--db`) when given, else `db` here,
    /// else `weightwatch.db`.
    pub fn database(&self, flag: Option<&str>) -> Database {
        Database::parse(flag.or(self.db.as_deref()).unwrap_or("weightwatch.db"))
    }
}
