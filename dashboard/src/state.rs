//! What every handler shares: the store, the settings, live updates to
//! stream subscribers, the rate limiters and sign-in limits, and the clock.

use crate::config::DashboardConfig;
use crate::error::{ApiError, DashboardError};
use crate::store::{ChartSpan, Overview, Store, StoreResult};
use crate::throttle::LoginGuard;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A live update for `/api/v1/stream` subscribers.
#[derive(Clone, Debug)]
pub struct LiveMsg {
    /// SSE event name: `alert`, `status`, `incident` or `sensor`.
    pub kind: &'static str,
    /// JSON payload.
    pub data: Arc<str>,
}

/// State shared by all handlers.
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Settings.
    pub cfg: DashboardConfig,
    /// Live updates; `None` once shutting down (which ends every stream).
    live: Mutex<Option<broadcast::Sender<LiveMsg>>>,
    /// Live updates go through the store to every server on the database
    /// (PostgreSQL `LISTEN/NOTIFY`), and come back to this one from there.
    replicated: AtomicBool,
    /// Ingest requests per token.
    pub ingest_limiter: DefaultKeyedRateLimiter<String>,
    /// Sign-in limits: failures per address, backoff per name and
    /// address, the password-hashing budget.
    pub login: LoginGuard,
    /// The overview's aggregates, reused for [`OVERVIEW_TTL`] (they scan
    /// the week's alerts, so many open dashboards must not recompute them).
    overview: Mutex<Option<(std::time::Instant, ChartSpan, Arc<Overview>)>>,
    /// Response actions analysts may run on an alert (`None`: none configured).
    pub actions: Mutex<Option<eve::actions::Actions>>,
}

/// How long the overview's aggregates are reused.
pub const OVERVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    pub(crate) fn new(store: Arc<dyn Store>, cfg: DashboardConfig) -> Self {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let (tx, _) = broadcast::channel(cfg.stream_buffer.max(16));
        AppState {
            ingest_limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(nz(cfg.ingest_requests_per_second))
                    .allow_burst(nz(cfg.ingest_burst)),
            ),
            login: LoginGuard::new(
                cfg.login_attempts_per_minute,
                std::time::Duration::from_secs(cfg.login_backoff_max_secs),
                cfg.password_hash_concurrency,
                cfg.password_hash_queue,
            ),
            store,
            cfg,
            live: Mutex::new(Some(tx)),
            replicated: AtomicBool::new(false),
            overview: Mutex::new(None),
            actions: Mutex::new(None),
        }
    }

    /// The overview aggregates for a chart span, at most [`OVERVIEW_TTL`]
    /// old.
    pub async fn overview(self: &Arc<Self>, span: ChartSpan) -> Result<Arc<Overview>, ApiError> {
        if let Ok(g) = self.overview.lock()
            && let Some((at, cached_span, o)) = g.as_ref()
            && *cached_span == span
            && at.elapsed() < OVERVIEW_TTL
        {
            return Ok(o.clone());
        }
        let o = Arc::new(self.db(move |s| s.overview(span)).await?);
        if let Ok(mut g) = self.overview.lock() {
            *g = Some((std::time::Instant::now(), span, o.clone()));
        }
        Ok(o)
    }

    /// Receive the live updates of every server on the database, when the
    /// store shares them (PostgreSQL); otherwise updates stay local.
    pub(crate) async fn join_replicas(self: &Arc<Self>) -> Result<(), DashboardError> {
        let me = Arc::downgrade(self);
        let deliver: crate::store::Deliver = Box::new(move |kind, data| {
            let kind = match kind {
                "alert" => "alert",
                "status" => "status",
                "sensor" => "sensor",
                "incident" => "incident",
                _ => return,
            };
            if let Some(st) = me.upgrade() {
                st.send_local(LiveMsg {
                    kind,
                    data: data.into(),
                });
            }
        });
        let store = self.store.clone();
        let shared = tokio::task::spawn_blocking(move || store.listen(deliver))
            .await
            .map_err(std::io::Error::other)??;
        self.replicated.store(shared, Ordering::Relaxed);
        Ok(())
    }

    /// Whether live updates reach the other servers on the database
    /// through the store (and so must be announced even when nobody
    /// subscribes here).
    pub fn replicated(&self) -> bool {
        self.replicated.load(Ordering::Relaxed)
    }

    /// Publish live updates to the subscribers of every server on the
    /// database (dropped when nobody listens).
    pub async fn publish(self: &Arc<Self>, msgs: Vec<LiveMsg>) {
        if msgs.is_empty() {
            return;
        }
        if !self.replicated() {
            for m in msgs {
                self.send_local(m);
            }
            return;
        }
        let sent = self
            .db(move |s| {
                let updates: Vec<(&str, &str)> = msgs.iter().map(|m| (m.kind, &*m.data)).collect();
                s.announce(&updates)
            })
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = e.message, "live update not announced");
        }
    }

    /// Hand a live update to this server's subscribers.
    fn send_local(&self, msg: LiveMsg) {
        if let Ok(guard) = self.live.lock()
            && let Some(tx) = guard.as_ref()
        {
            let _ = tx.send(msg);
        }
    }

    /// Subscribe to live updates; `None` when shutting down.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<LiveMsg>> {
        self.live.lock().ok()?.as_ref().map(|tx| tx.subscribe())
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.live
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|tx| tx.receiver_count()))
            .unwrap_or(0)
    }

    /// End every live stream (at shutdown).
    pub(crate) fn close_streams(&self) {
        if let Ok(mut g) = self.live.lock() {
            g.take();
        }
    }

    /// The names of the configured response actions.
    pub fn action_names(&self) -> Vec<String> {
        self.actions
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|a| a.names().map(String::from).collect()))
            .unwrap_or_default()
    }

    /// Run a store call on the blocking pool.
    pub async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
