//! The incident pages: the list (filters as the alert list's, plus kind)
//! and one incident (facts, file coverage, timeline, its alerts linking to
//! their pages, triage of the whole incident, response actions on it).

use super::format;
use super::pages::{ActionForm, Chrome, TriageForm, chrome, encode_pairs};
use super::render;
use super::session::check_csrf;
use crate::access::{Reader, Triager};
use crate::auth::Need;
use crate::error::ApiError;
use crate::incidents::timeline::{Moment, timeline};
use crate::incidents::{Incident, Kind, exposure};
use crate::query::IncidentQuery;
use crate::state::AppState;
use crate::store::Status;
use crate::triage::set_incident_status;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// One incident as a list row.
struct IncidentRow {
    id: i64,
    title: String,
    kind: &'static str,
    severity: i64,
    severity_label: &'static str,
    status: String,
    status_label: &'static str,
    first: String,
    last: String,
    alerts: String,
    bytes: String,
    coverage: String,
}

fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::RegisteredFile => "Registered file",
        Kind::Cluster => "Analyzer cluster",
        Kind::Account => "Analyzer account",
        Kind::Transfer => "Transfer",
        Kind::Egress => "Egress",
    }
}

fn percent(f: f64) -> String {
    format!("{:.1} %", f * 100.0)
}

fn row(i: &Incident) -> IncidentRow {
    IncidentRow {
        id: i.id,
        title: i.title.clone(),
        kind: kind_label(i.kind),
        severity: i64::from(i.severity),
        severity_label: format::severity(i64::from(i.severity)),
        status: i.status.clone(),
        status_label: i.status.parse::<Status>().map(Status::label).unwrap_or("?"),
        first: format::time(i.first_ts),
        last: format::time(i.last_ts),
        alerts: format::int(i.alert_count),
        bytes: format::bytes(i.bytes()),
        coverage: i.coverage().map(percent).unwrap_or_else(|| "—".into()),
    }
}

/// A span of seconds in words: `45 s`, `12 min`, `3.5 h`, `2.1 days`.
fn duration(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.0} s"),
        s if s < 3600.0 => format!("{:.0} min", s / 60.0),
        s if s < 86_400.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

/// One uploading host and how long each registered file would take it.
struct ExposureRow {
    host: String,
    rate: String,
    times: Vec<String>,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: Chrome,
    /// Registered files (names) heading the time-to-exfiltrate table.
    exposure_files: Vec<String>,
    exposure: Vec<ExposureRow>,
    exposure_window: String,
    /// The last exfiltration test caught: (alert id, time, sensor, detail).
    canary: Option<(i64, String, String, String)>,
    rows: Vec<IncidentRow>,
    /// New and updated incidents arrive over the live stream (`app.js`).
    live: bool,
    q: IncidentQuery,
    next: Option<String>,
    kinds: Vec<(&'static str, &'static str)>,
    categories: Vec<(&'static str, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
}

/// `GET /incidents`.
pub async fn incidents(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, ApiError> {
    let filter = q.to_filter()?;
    let (page, m, canary) = st
        .db(move |s| Ok((s.incidents(&filter)?, s.exposure()?, s.last_canary()?)))
        .await?;
    let canary = canary.map(|a| {
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
        let text = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        (
            a.id,
            format::event_time(&v["timestamp"]),
            text("/sensor_id"),
            text("/evidence/detail"),
        )
    });
    let next = page.next_cursor.map(|c| {
        let mut nq = q.clone();
        nq.cursor = Some(c.to_string());
        query_string(&nq)
    });
    let span = exposure::RATE_SPAN_MICROS;
    Ok(render(&IncidentsPage {
        chrome: chrome(&p, "Incidents", "incidents"),
        exposure_files: m
            .files
            .iter()
            .map(|f| {
                let short = f.name.rsplit('/').next().unwrap_or(&f.name);
                format!("{short} ({})", format::bytes(f.size))
            })
            .collect(),
        exposure: m
            .hosts
            .iter()
            .map(|(host, bytes)| ExposureRow {
                host: host.clone(),
                rate: format!(
                    "{}/s",
                    format::bytes((*bytes).max(0) as u64 / (span / 1_000_000) as u64)
                ),
                times: m
                    .files
                    .iter()
                    .map(|f| exposure::seconds(f.size, *bytes, span).map_or("—".into(), duration))
                    .collect(),
            })
            .collect(),
        canary,
        exposure_window: m
            .until
            .map(|t| format!("{} to {}", format::time(t - span), format::time(t)))
            .unwrap_or_default(),
        rows: page.incidents.iter().map(row).collect(),
        // Only the first page of a list whose filters the browser can
        // check itself (kind, category, severity, status) updates live.
        live: q.cursor.is_none()
            && [&q.from, &q.to, &q.q]
                .iter()
                .all(|v| v.as_deref().unwrap_or("").is_empty()),
        q,
        next,
        kinds: Kind::ALL
            .iter()
            .map(|k| (k.as_str(), kind_label(*k)))
            .collect(),
        categories: eve::AlertCategory::ALL
            .iter()
            .map(|c| (c.as_str(), format::category(c.as_str())))
            .collect(),
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), s.label()))
            .collect(),
    }))
}

fn query_string(q: &IncidentQuery) -> String {
    let pairs = [
        ("from", &q.from),
        ("to", &q.to),
        ("kind", &q.kind),
        ("category", &q.category),
        ("severity", &q.severity),
        ("status", &q.status),
        ("q", &q.q),
        ("cursor", &q.cursor),
        ("limit", &q.limit),
    ];
    encode_pairs(&pairs)
}

/// A registered file's coverage as the page shows it.
struct FileView {
    name: String,
    sha256: String,
    size: String,
    covered: String,
    coverage: String,
    /// Width of the bar, percent (a number: no markup from data).
    bar: f64,
    ranges: usize,
    compacted: bool,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    row: IncidentRow,
    facts: Vec<(String, String)>,
    files: Vec<FileView>,
    moments: Vec<Moment>,
    shown: usize,
    statuses: Vec<(&'static str, &'static str)>,
    can_triage: bool,
    /// Response actions offered (names).
    actions: Vec<String>,
}

/// `GET /incidents/{id}`.
pub async fn incident(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let d = st
        .db(move |s| s.incident(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let i = &d.incident;
    let mut facts = vec![
        ("Kind".to_string(), kind_label(i.kind).to_string()),
        ("First alert".into(), format::time(i.first_ts)),
        ("Last alert".into(), format::time(i.last_ts)),
        ("Alerts".into(), format::int(i.alert_count)),
        ("Bytes".into(), format::bytes(i.bytes())),
        ("Flows".into(), format::int(i.state.flows.len() as i64)),
    ];
    if let Some(s) = &i.src {
        facts.push(("Source".into(), s.clone()));
    }
    if !i.state.dests.is_empty() {
        let d: Vec<&str> = i.state.dests.iter().map(String::as_str).collect();
        facts.push(("Destinations".into(), d.join(", ")));
    }
    let cats: Vec<&str> = i
        .state
        .categories
        .iter()
        .map(|c| format::category(c))
        .collect();
    facts.push(("Categories".into(), cats.join(", ")));
    let files = i
        .state
        .files
        .iter()
        .map(|(sha, f)| {
            let c = f.seen.coverage(f.size);
            FileView {
                name: f.name.clone(),
                sha256: sha.clone(),
                size: format::bytes(f.size),
                covered: format::bytes(f.seen.covered()),
                coverage: percent(c),
                bar: (c * 1000.0).round() / 10.0,
                ranges: f.seen.ranges.len(),
                compacted: f.seen.compacted,
            }
        })
        .collect();
    Ok(render(&IncidentPage {
        chrome: chrome(&p, format!("Incident {id}"), "incidents"),
        row: row(i),
        facts,
        files,
        shown: d.alerts.len(),
        moments: timeline(&d),
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), s.label()))
            .collect(),
        can_triage: p.allows(Need::Triage),
        actions: st.action_names(),
    }))
}

/// `POST /incidents/{id}/triage` (form; CSRF-checked): the incident and
/// its alerts take the status; back to the incident.
pub async fn triage(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Result<Form<TriageForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(f) = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_csrf(&who.0, &headers, &f.csrf)?;
    set_incident_status(&st, &who, id, &f.status, &f.note).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}

/// `POST /incidents/{id}/action` (form; CSRF-checked): run a response
/// action on the incident (audited on it), back to the incident.
pub async fn run_action(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(f) = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_csrf(&who.0, &headers, &f.csrf)?;
    crate::respond::run_on_incident(&st, &who, id, &f.name).await?;
    Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
}
