//! The HTTP server: shared state, the router, authentication middleware,
//! security headers and the retention job.

use crate::auth::{self, Principal};
use crate::config::DashboardConfig;
use crate::error::{ApiError, DashboardError};
use crate::store::{ChartSpan, Overview, SqliteStore, Store, StoreResult};
use crate::{api, exporter, stream, ui};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tower_http::set_header::SetResponseHeaderLayer;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ww_session";

/// Content-Security-Policy of every response: only our own script and
/// stylesheet, no inline code, no framing, forms post only to us.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A live update for `/api/v1/stream` subscribers.
#[derive(Clone, Debug)]
pub struct LiveMsg {
    /// SSE event name: `alert` or `status`.
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
    /// Ingest requests per token.
    pub ingest_limiter: DefaultKeyedRateLimiter<String>,
    /// Sign-in attempts per client address and per user name.
    pub login_limiter: DefaultKeyedRateLimiter<String>,
    /// The overview's aggregates, reused for [`OVERVIEW_TTL`] (they scan
    /// the week's alerts, so many open dashboards must not recompute them).
    overview: Mutex<Option<(std::time::Instant, ChartSpan, Arc<Overview>)>>,
}

/// How long the overview's aggregates are reused.
pub const OVERVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    fn new(store: Arc<dyn Store>, cfg: DashboardConfig) -> Self {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let (tx, _) = broadcast::channel(cfg.stream_buffer.max(16));
        AppState {
            ingest_limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(nz(cfg.ingest_requests_per_second))
                    .allow_burst(nz(cfg.ingest_burst)),
            ),
            login_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(
                cfg.login_attempts_per_minute
            ))),
            store,
            cfg,
            live: Mutex::new(Some(tx)),
            overview: Mutex::new(None),
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

    /// Publish a live update (dropped when nobody listens).
    pub fn publish(&self, msg: LiveMsg) {
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

    fn close_streams(&self) {
        if let Ok(mut g) = self.live.lock() {
            g.take();
        }
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

/// A bound, not yet serving, dashboard server.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Server {
    /// Open (create, migrate) the SQLite database at `db` and bind `listen`
    /// (e.g. `127.0.0.1:8080`; port 0 picks a free port).
    pub async fn bind(
        cfg: &DashboardConfig,
        db: &Path,
        listen: &str,
    ) -> Result<Server, DashboardError> {
        let db = db.to_path_buf();
        let readers = cfg.read_connections;
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&db, readers))
            .await
            .map_err(std::io::Error::other)??;
        Server::with_store(cfg, Arc::new(store), listen).await
    }

    /// Bind `listen` serving an already opened store.
    pub async fn with_store(
        cfg: &DashboardConfig,
        store: Arc<dyn Store>,
        listen: &str,
    ) -> Result<Server, DashboardError> {
        crate::exporter::init();
        let listener = TcpListener::bind(listen).await?;
        Ok(Server {
            listener,
            state: Arc::new(AppState::new(store, cfg.clone())),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` completes, then finish in-flight requests
    /// (live streams are closed) and return.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        let state = self.state.clone();
        let retention = tokio::spawn(retention_loop(state.clone()));
        let app = router(state.clone());
        tracing::info!(addr = %self.listener.local_addr()?, "dashboard listening");
        let closer = state.clone();
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            closer.close_streams();
        })
        .await;
        retention.abort();
        result.map_err(DashboardError::from)
    }
}

/// Serve on the current thread until Ctrl-C or SIGTERM (a blocking wrapper
/// around [`Server::bind`] and [`Server::serve`] for callers without tokio).
pub fn serve(cfg: &DashboardConfig, db: &Path, listen: &str) -> Result<(), DashboardError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = Server::bind(cfg, db, listen).await?;
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
        state.login_limiter.retain_recent();
        state.login_limiter.shrink_to_fit();
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

fn router(state: Arc<AppState>) -> Router {
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(ui::login_page).post(ui::login_submit))
        .route("/static/{*path}", get(ui::static_file));
    let protected = Router::new()
        .route(
            "/api/v1/events",
            post(api::ingest).layer(DefaultBodyLimit::max(state.cfg.max_body_bytes)),
        )
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/alerts/{id}", get(api::alert))
        .route("/api/v1/alerts/{id}/triage", post(api::triage))
        .route("/api/v1/accounts", get(api::accounts))
        .route("/api/v1/accounts/{id}", get(api::account))
        .route("/api/v1/sensors", get(api::sensors))
        .route("/api/v1/audit", get(api::audit))
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

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who sent this request: a bearer token, or a session cookie.
/// `Err` when credentials were sent but are not valid.
async fn identify(
    state: &Arc<AppState>,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "malformed Authorization header")
            })?;
        let hash = auth::hash_secret(token);
        return match state.db(move |s| s.token_lookup(&hash)).await? {
            Some((id, scope)) => Ok(Some(Principal::Token { id, scope })),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked token",
            )),
        };
    }
    if let Some(secret) = cookie(headers, SESSION_COOKIE) {
        let hash = auth::hash_secret(secret);
        let h = hash.clone();
        let now = now_micros();
        if let Some(sess) = state.db(move |s| s.session_lookup(&h, now)).await? {
            return Ok(Some(Principal::User {
                name: sess.user,
                csrf: sess.csrf,
                session_hash: hash,
            }));
        }
    }
    Ok(None)
}

/// Deny by default: every route behind this layer needs a principal.
/// API clients get 401; browsers are sent to the sign-in page.
async fn require_auth(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    match identify(&state, req.headers()).await {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Ok(None) => unauthenticated(req.uri().path()),
        Err(e) => {
            let mut r = e.into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

fn unauthenticated(path: &str) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        let mut r =
            ApiError::new(StatusCode::UNAUTHORIZED, "authentication required").into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    } else {
        Redirect::to("/login").into_response()
    }
}
