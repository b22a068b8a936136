//! `GET /metrics`: Prometheus text format, or OpenMetrics when the scraper
//! asks for it (`Accept: application/openmetrics-text`).
//!
//! Counters and histograms are recorded through the `metrics` facade into a
//! process-wide Prometheus recorder; store-size gauges are read at scrape time.
//! Every family is described (HELP) and every counter, with each of its
//! label values, exists from the start at 0, so a scrape right after start
//! has the whole set and rates need no first increment.

use crate::access::Reader;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Status;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};

/// Events received by `POST /api/v1/events`, by `result`.
pub const INGEST_EVENTS: &str = "weightwatch_dashboard_ingest_events_total";
/// The `result` values of [`INGEST_EVENTS`].
pub const INGEST_RESULTS: [&str; 4] = ["accepted", "duplicate", "conflict", "rejected"];
/// Ingest requests refused by the rate limit.
pub const INGEST_THROTTLED: &str = "weightwatch_dashboard_ingest_throttled_total";
/// Time to commit one ingest batch.
pub const INGEST_COMMIT: &str = "weightwatch_dashboard_ingest_commit_seconds";
/// Alert status changes, by new `status`.
pub const TRIAGE: &str = "weightwatch_dashboard_triage_total";
/// Sign-in attempts, by `result`.
pub const LOGINS: &str = "weightwatch_dashboard_logins_total";
/// The `result` values of [`LOGINS`].
pub const LOGIN_RESULTS: [&str; 4] = ["ok", "failed", "throttled", "busy"];

const EVENTS_STORED: &str = "weightwatch_dashboard_events_stored";
const ALERTS_STORED: &str = "weightwatch_dashboard_alerts_stored";
const ALERTS_OPEN: &str = "weightwatch_dashboard_alerts_open";
const SUBSCRIBERS: &str = "weightwatch_dashboard_stream_subscribers";

/// Content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics 1.0.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the Prometheus recorder once per process, describe every family
/// and register every counter at 0. If another recorder was installed first
/// (by an embedding program), ours renders only gauges.
pub fn init() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::debug!("a metrics recorder was already installed");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        INGEST_EVENTS,
        "Events received for ingest, by result (accepted, duplicate, conflict, rejected)"
    );
    for result in INGEST_RESULTS {
        metrics::counter!(INGEST_EVENTS, "result" => result).increment(0);
    }
    metrics::describe_counter!(
        INGEST_THROTTLED,
        "Ingest requests refused by the per-token rate limit"
    );
    metrics::counter!(INGEST_THROTTLED).increment(0);
    metrics::describe_histogram!(
        INGEST_COMMIT,
        Unit::Seconds,
        "Time to store one ingest batch, commit included"
    );
    metrics::describe_counter!(TRIAGE, "Alert status changes, by the new status");
    for status in Status::ALL {
        metrics::counter!(TRIAGE, "status" => status.as_str()).increment(0);
    }
    metrics::describe_counter!(
        LOGINS,
        "Sign-in attempts, by result (ok, failed, throttled, busy)"
    );
    for result in LOGIN_RESULTS {
        metrics::counter!(LOGINS, "result" => result).increment(0);
    }
    metrics::describe_gauge!(EVENTS_STORED, "Events in the store");
    metrics::describe_gauge!(ALERTS_STORED, "Alerts in the store");
    metrics::describe_gauge!(ALERTS_OPEN, "Alerts whose status is new or investigating");
    metrics::describe_gauge!(SUBSCRIBERS, "Clients of the live alert stream");
}

/// Whether the `Accept` header asks for OpenMetrics (with a non-zero q).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
}

/// The Prometheus text exposition rewritten as OpenMetrics 1.0: no blank
/// lines, counter families named without their `_total` suffix (which their
/// samples keep), and the closing `# EOF`.
pub fn to_openmetrics(text: &str) -> String {
    let mut counters: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, "counter")) = rest.split_once(' ')
        {
            counters.push(name);
        }
    }
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let family = if counters.contains(&name) {
                    name.strip_suffix("_total").unwrap_or(name)
                } else {
                    name
                };
                out.push_str(prefix);
                out.push_str(family);
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

/// Render the metrics (scope read).
pub async fn render(
    State(st): State<Arc<AppState>>,
    _: Reader,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let c = st.db(|s| s.counts()).await?;
    metrics::gauge!(EVENTS_STORED).set(c.events as f64);
    metrics::gauge!(ALERTS_STORED).set(c.alerts as f64);
    metrics::gauge!(ALERTS_OPEN).set(c.open_alerts as f64);
    metrics::gauge!(SUBSCRIBERS).set(st.subscribers() as f64);
    let text = init().render();
    Ok(if wants_openmetrics(&headers) {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_TEXT)],
            to_openmetrics(&text),
        )
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, v.parse().unwrap());
            m
        };
        // What Prometheus sends.
        assert!(wants_openmetrics(&h(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(&h("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(&h("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(&HeaderMap::new()));
    }
}
