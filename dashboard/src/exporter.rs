//! `GET /metrics`: Prometheus text format.
//!
//! Counters and histograms are recorded through the `metrics` facade into a
//! process-wide Prometheus recorder; store-size gauges are read at scrape time.

use crate::access::Reader;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the Prometheus recorder once per process. If another recorder
/// was installed first (by an embedding program), ours renders only gauges.
pub fn init() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::debug!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Render the metrics (scope read).
pub async fn render(
    State(st): State<Arc<AppState>>,
    _: Reader,
) -> Result<impl IntoResponse, ApiError> {
    let c = st.db(|s| s.counts()).await?;
    metrics::gauge!("weightwatch_dashboard_events_stored").set(c.events as f64);
    metrics::gauge!("weightwatch_dashboard_alerts_stored").set(c.alerts as f64);
    metrics::gauge!("weightwatch_dashboard_alerts_open").set(c.open_alerts as f64);
    metrics::gauge!("weightwatch_dashboard_stream_subscribers").set(st.subscribers() as f64);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        init().render(),
    ))
}
