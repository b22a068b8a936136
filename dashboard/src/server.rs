//! The HTTP server: binding, the router (public and authenticated routes),
//! security headers, graceful shutdown and the retention job.

use crate::access::require_auth;
use crate::config::DashboardConfig;
use crate::error::{ApiError, DashboardError};
use crate::state::{AppState, now_micros};
use crate::store::{Database, Store};
use crate::{api, exporter, stream, ui};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::routing::{get, post};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

/// Content-Security-Policy of every response: only our own script and
/// stylesheet, no inline code, no framing, forms post only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A bound, not yet serving, dashboard server.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<crate::tls::TlsFiles>>,
}

impl Server {
    /// Open (create, migrate) the database `db` (a SQLite file path or a
    /// PostgreSQL URL) and bind `listen` (e.g. `127.0.0.1:8080`; port 0
    /// picks a free port).
    pub async fn bind(
        cfg: &DashboardConfig,
        db: impl Into<Database>,
        listen: &str,
    ) -> Result<Server, DashboardError> {
        let db: Database = db.into();
        let readers = cfg.read_connections;
        let store = tokio::task::spawn_blocking(move || db.open(readers))
            .await
            .map_err(std::io::Error::other)??;
        Server::with_store(cfg, store, listen).await
    }

    /// Bind `listen` serving an already opened store.
    pub async fn with_store(
        cfg: &DashboardConfig,
        store: Arc<dyn Store>,
        listen: &str,
    ) -> Result<Server, DashboardError> {
        crate::exporter::init();
        store.set_incident_window(
            i64::try_from(cfg.incident_window_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
        );
        let listener = TcpListener::bind(listen).await?;
        Ok(Server {
            listener,
            state: Arc::new(AppState::new(store, cfg.clone())),
            tls: None,
        })
    }

    /// Offer these response actions on every alert (analysts run them; each
    /// request and outcome is audited). Webhooks without their own spool
    /// directory spool under `spool_dir`.
    pub fn with_actions(
        self,
        actions: &[eve::actions::ActionConfig],
        spool_dir: &Path,
    ) -> Result<Server, DashboardError> {
        if !actions.is_empty() {
            let started = crate::respond::start(actions, spool_dir, self.state.store.clone())?;
            if let Ok(mut g) = self.state.actions.lock() {
                *g = Some(started);
            }
        }
        Ok(self)
    }

    /// Serve HTTPS with this certificate chain and key (PEM files); the
    /// session cookie is then always `Secure`. [`Server::tls`] reloads them.
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> Result<Server, DashboardError> {
        self.tls = Some(Arc::new(crate::tls::TlsFiles::load(cert, key)?));
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.cfg.secure_cookie = true;
        }
        Ok(self)
    }

    /// The TLS files in use (to reload them), when serving HTTPS.
    pub fn tls(&self) -> Option<Arc<crate::tls::TlsFiles>> {
        self.tls.clone()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` completes, then finish in-flight requests
    /// (live streams are closed) and return. Connections are limited as
    /// [`crate::conn`] says.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        let state = self.state.clone();
        // Joined here, not in `with_store`: the replica hook keeps a weak
        // reference, which would stop `with_tls` from adjusting the state.
        state.join_replicas().await?;
        let retention = tokio::spawn(retention_loop(state.clone()));
        let fleet = tokio::spawn(fleet_loop(state.clone()));
        let app = router(state.clone());
        tracing::info!(addr = %self.listener.local_addr()?, "dashboard listening");
        let closer = state.clone();
        crate::conn::serve(
            self.listener,
            app,
            &state.cfg,
            self.tls,
            shutdown,
            move || closer.close_streams(),
        )
        .await;
        retention.abort();
        fleet.abort();
        // Let running actions finish (bounded by their timeouts).
        let actions = state.actions.lock().ok().and_then(|mut g| g.take());
        if let Some(mut a) = actions {
            let _ = tokio::task::spawn_blocking(move || eve::EventSink::close(&mut a)).await;
        }
        Ok(())
    }
}

/// What [`serve`] serves, besides the dashboard's settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The database: a SQLite file or a PostgreSQL URL.
    pub db: Database,
    /// Address to listen on.
    pub listen: String,
    /// Response actions offered on alerts.
    pub actions: Vec<eve::actions::ActionConfig>,
    /// Default spool directory of webhook actions.
    pub action_spool_dir: std::path::PathBuf,
    /// HTTPS: certificate chain and private key (PEM), reloaded on SIGHUP.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Serve on the current thread until Ctrl-C or SIGTERM (a blocking wrapper
/// around [`Server::bind`] and [`Server::serve`] for callers without tokio).
pub fn serve(cfg: &DashboardConfig, opts: &ServeOptions) -> Result<(), DashboardError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut server = Server::bind(cfg, &opts.db, &opts.listen)
            .await?
            .with_actions(&opts.actions, &opts.action_spool_dir)?;
        if let Some((cert, key)) = &opts.tls {
            server = server.with_tls(cert, key)?;
        }
        #[cfg(unix)]
        if let Some(tls) = server.tls() {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if let Err(e) = tls.reload() {
                        tracing::error!("keeping the current certificate: {e}");
                    }
                }
            });
        }
        server.serve(shutdown_signal()).await
    })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Deletes expired events on a schedule and forgets idle rate-limit keys.
async fn retention_loop(state: Arc<AppState>) {
    let period = std::time::Duration::from_secs(state.cfg.purge_interval_secs.max(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        state.ingest_limiter.retain_recent();
        state.login.prune();
        let days = state.cfg.retention_days;
        if days == 0 {
            continue;
        }
        let cutoff = now_micros() - i64::from(days) * 86_400_000_000;
        match state.db(move |s| s.purge_before(cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, days, "retention: purged old events"),
            Err(e) => tracing::warn!(error = e.message, "retention purge failed"),
        }
    }
}

/// The stale-sensor watch: a sensor silent for `stale_after_secs` is
/// reported once (audit line, log line, `sensor` live update), checked four times per
/// interval (at most once a minute). With several servers on one database
/// the store hands each silence to one of them.
async fn fleet_loop(state: Arc<AppState>) {
    let after = state.cfg.stale_after_secs;
    if after == 0 {
        return;
    }
    let period = std::time::Duration::from_secs((after / 4).clamp(1, 60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let now = now_micros();
        let silent_since =
            now.saturating_sub(i64::try_from(after).unwrap_or(i64::MAX / 2) * 1_000_000);
        let quiet = match state.db(move |s| s.mark_stale(silent_since, now)).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = e.message, "stale-sensor watch failed");
                continue;
            }
        };
        for sensor in quiet {
            // The store wrote the audit line with the mark.
            tracing::warn!(sensor = %sensor, secs = after, "sensor silent");
            state
                .publish(vec![crate::state::LiveMsg {
                    kind: "sensor",
                    data: serde_json::json!({"sensor_id": sensor, "stale": true})
                        .to_string()
                        .into(),
                }])
                .await;
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(ui::login_page).post(ui::login_submit))
        .route("/static/{*path}", get(ui::static_file));
    let protected = Router::new()
        // The ingest handler limits its body itself (bytes and events, as
        // they arrive).
        .route("/api/v1/events", post(api::ingest))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/alerts/{id}", get(api::alert))
        .route("/api/v1/alerts/{id}/triage", post(api::triage))
        .route("/api/v1/alerts/{id}/actions/{name}", post(api::run_action))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/exfiltration-time", get(api::exfiltration_time))
        .route("/api/v1/canary", get(api::canary))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/incidents/{id}/triage", post(api::triage_incident))
        .route(
            "/api/v1/incidents/{id}/actions/{name}",
            post(api::run_incident_action),
        )
        .route("/api/v1/accounts", get(api::accounts))
        .route("/api/v1/accounts/{id}", get(api::account))
        .route("/api/v1/sensors", get(api::sensors))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/labels.csv", get(api::labels))
        .route("/api/v1/stream", get(stream::stream))
        .route("/metrics", get(exporter::render))
        .merge(ui::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_auth));
    public
        .merge(protected)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

/// `GET /healthz`: `ok` while the store takes writes, else 503 (the cause
/// is logged, not told to the unauthenticated caller).
async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.db(|s| s.check_writable()).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        // The cause is logged (ApiError::internal).
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ok: the store cannot be written\n",
        ),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}
