//! The pages: overview, alerts, alert, accounts, account, audit log.

use super::format::{self, Row, Signal};
use super::render::render;
use super::session::check_csrf;
use crate::access::{Reader, Triager};
use crate::auth::{Need, Principal};
use crate::error::ApiError;
use crate::query::AlertQuery;
use crate::state::{AppState, now_micros};
use crate::store::{AccountRow, AuditEntry, ChartSpan, Status, StoredAlert};
use crate::triage::set_status;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What every page shows around its content.
pub struct Chrome {
    /// Page title.
    pub title: String,
    /// Who is signed in.
    pub user: String,
    /// CSRF token for forms (empty for token principals).
    pub csrf: String,
    /// Which nav entry is current.
    pub nav: &'static str,
}

pub(crate) fn chrome(p: &Principal, title: impl Into<String>, nav: &'static str) -> Chrome {
    let (user, csrf) = match p {
        Principal::User { name, csrf, .. } => (name.clone(), csrf.clone()),
        Principal::Token { .. } => (p.actor(), String::new()),
    };
    Chrome {
        title: title.into(),
        user,
        csrf,
        nav,
    }
}

/// One alert as a table row.
pub struct AlertRow {
    id: i64,
    time: String,
    severity: i64,
    severity_label: &'static str,
    category: String,
    category_label: String,
    signature: String,
    subject: String,
    sensor: String,
    status: String,
    status_label: &'static str,
}

fn status_label(s: &str) -> &'static str {
    s.parse::<Status>().map(Status::label).unwrap_or("?")
}

fn alert_row(a: &StoredAlert) -> AlertRow {
    let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    let s = |p: &[&str]| {
        let mut cur = &v;
        for k in p {
            cur = match cur.get(k) {
                Some(x) => x,
                None => return String::new(),
            };
        }
        match cur {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let severity = v["alert"]["severity"].as_i64().unwrap_or(3);
    let category = s(&["alert", "category"]);
    let subject = if !s(&["account_id"]).is_empty() {
        format!("account {}", s(&["account_id"]))
    } else if !s(&["cluster_id"]).is_empty() {
        format!("cluster {}", s(&["cluster_id"]))
    } else {
        let name = [s(&["tls", "sni"]), s(&["http", "hostname"])]
            .into_iter()
            .find(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        format!("{} → {}{}", s(&["src_ip"]), s(&["dest_ip"]), name)
    };
    AlertRow {
        id: a.id,
        time: format::event_time(&v["timestamp"]),
        severity,
        severity_label: format::severity(severity),
        // Suricata's categories are its classification texts: shown as they are.
        category_label: match format::category(&category) {
            "Other" if !category.is_empty() => category.clone(),
            label => label.to_string(),
        },
        category,
        signature: s(&["alert", "signature"]),
        subject,
        sensor: s(&["sensor_id"]),
        status: a.status.clone(),
        status_label: status_label(&a.status),
    }
}

/// A bar of an SVG chart (all numbers; the class picks the colour).
pub struct Bar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    class: String,
    title: String,
}

/// A legend entry.
pub struct Legend {
    class: String,
    label: &'static str,
    total: i64,
}

/// A ranked row with a share of the largest.
pub struct Ranked {
    label: String,
    detail: String,
    value: String,
    raw: i64,
    max: i64,
}

/// A sensor's health.
pub struct SensorView {
    id: String,
    last_seen: String,
    last_event: String,
    events: String,
    packets: String,
    drops: String,
    drop_pct: String,
    stale: bool,
}

/// An account row.
pub struct AccountView {
    id: String,
    score: String,
    /// The score as log-odds (ranks scores that all print as 1.0000).
    log_odds: String,
    score_raw: f64,
    cluster: String,
    alerts: String,
    last: String,
    status: String,
    status_label: &'static str,
}

fn account_view(a: &AccountRow) -> AccountView {
    AccountView {
        id: a.account_id.clone(),
        score: a.score.map(format::float).unwrap_or_else(|| "—".into()),
        log_odds: a.score.map(format::log_odds).unwrap_or_default(),
        score_raw: a.score.unwrap_or(0.0).clamp(0.0, 1.0),
        cluster: a.cluster_id.clone().unwrap_or_default(),
        alerts: format::int(a.alert_count),
        last: format::time(a.last_ts),
        status: a.status.clone().unwrap_or_default(),
        status_label: a.status.as_deref().map(status_label).unwrap_or(""),
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    bars: Vec<Bar>,
    legend: Vec<Legend>,
    chart_from: String,
    chart_to: String,
    chart_max: String,
    spans: Vec<SpanLink>,
    /// Why the span shown is not the default one (empty when it is, or
    /// when it was asked for).
    span_note: String,
    before_chart: String,
    open: [String; 3],
    total: String,
    sources: Vec<Ranked>,
    destinations: Vec<Ranked>,
    accounts: Vec<AccountView>,
    sensors: Vec<SensorView>,
}

/// One choice of chart span on the overview.
pub struct SpanLink {
    /// Query value (`24h`, `7d`, `30d`, `all`).
    value: &'static str,
    /// Whether it is the span shown.
    current: bool,
}

/// Query of the overview page.
#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    /// Chart span: `24h`, `7d`, `30d` or `all`; by default a week, or the
    /// span that fits the data when its newest alert is older than a week
    /// ([`ChartSpan::fitting`]).
    span: Option<String>,
}

const CHART_W: f64 = 960.0;
const CHART_H: f64 = 220.0;

/// `GET /`.
pub async fn overview(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, ApiError> {
    let asked = match q.span.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            ChartSpan::parse(s)
                .ok_or_else(|| ApiError::bad_request("span must be one of 24h, 7d, 30d, all"))?,
        ),
    };
    let now = now_micros();
    let mut span = asked.unwrap_or_default();
    let mut o = st.overview(span).await?;
    let mut span_note = String::new();
    if asked.is_none()
        && let Some(fitted) = ChartSpan::fitting(o.alert_range, now)
    {
        if fitted != span {
            span = fitted;
            o = st.overview(span).await?;
        }
        if let Some((_, newest)) = o.alert_range {
            span_note = format!(
                "The newest alert is from {} ({}), older than a week: the chart spans {} to hold the data.",
                format::time(newest),
                format::ago(newest, now),
                span.as_str()
            );
        }
    }
    // Stack the categories per bucket.
    let mut per_bucket = vec![vec![0i64; eve::AlertCategory::ALL.len()]; o.buckets];
    for (cat, b, n) in &o.timeline {
        if let Some(ci) = eve::AlertCategory::ALL
            .iter()
            .position(|c| c.as_str() == cat)
        {
            per_bucket[*b][ci] += n;
        }
    }
    let max = per_bucket
        .iter()
        .map(|b| b.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let bw = CHART_W / o.buckets as f64;
    let mut bars = Vec::new();
    for (bi, counts) in per_bucket.iter().enumerate() {
        let mut y = CHART_H;
        for (ci, n) in counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let h = CHART_H * *n as f64 / max as f64;
            y -= h;
            let cat = eve::AlertCategory::ALL[ci].as_str();
            let start = o.timeline_start + bi as i64 * o.bucket_micros;
            bars.push(Bar {
                x: bi as f64 * bw + 1.0,
                y,
                w: (bw - 2.0).max(1.0),
                h,
                class: format!("cat-{cat}"),
                title: format!(
                    "{}: {} at {}",
                    format::category(cat),
                    n,
                    format::time(start)
                ),
            });
        }
    }
    let legend = eve::AlertCategory::ALL
        .iter()
        .enumerate()
        .map(|(ci, c)| Legend {
            class: format!("cat-{}", c.as_str()),
            label: format::category(c.as_str()),
            total: per_bucket.iter().map(|b| b[ci]).sum(),
        })
        .filter(|l| l.total > 0)
        .collect();
    let src_max = o.top_sources.first().map(|x| x.1).unwrap_or(1).max(1);
    let dst_max = o.top_destinations.first().map(|x| x.2).unwrap_or(1).max(1);
    let page = OverviewPage {
        chrome: chrome(&p, "Overview", "overview"),
        bars,
        legend,
        chart_from: format::time(o.timeline_start),
        chart_to: format::time(o.timeline_start + o.bucket_micros * o.buckets as i64),
        chart_max: format::int(max),
        spans: ChartSpan::ALL
            .into_iter()
            .map(|c| SpanLink {
                value: c.as_str(),
                current: c == span,
            })
            .collect(),
        span_note,
        before_chart: if o.before_chart > 0 {
            format::int(o.before_chart)
        } else {
            String::new()
        },
        open: o.open_by_severity.map(format::int),
        total: format::int(o.total_alerts),
        sources: o
            .top_sources
            .iter()
            .map(|(ip, b)| Ranked {
                label: ip.clone(),
                detail: String::new(),
                value: format::bytes((*b).max(0) as u64),
                raw: *b,
                max: src_max,
            })
            .collect(),
        destinations: o
            .top_destinations
            .iter()
            .map(|(ip, sni, b)| Ranked {
                label: ip.clone(),
                detail: sni.clone().unwrap_or_default(),
                value: format::bytes((*b).max(0) as u64),
                raw: *b,
                max: dst_max,
            })
            .collect(),
        accounts: o.top_accounts.iter().map(account_view).collect(),
        sensors: o
            .sensors
            .iter()
            .map(|s| {
                let (packets, drops) = s.packets_and_drops();
                SensorView {
                    id: s.sensor_id.clone(),
                    last_seen: format::ago(s.last_received, now),
                    last_event: format::time(s.last_event_ts),
                    events: format::int(s.events),
                    packets: format::int(packets as i64),
                    drops: format::int(drops as i64),
                    drop_pct: if packets > 0 {
                        format!("{:.2} %", drops as f64 * 100.0 / (packets + drops) as f64)
                    } else {
                        "—".into()
                    },
                    stale: now - s.last_received > 10 * 60 * 1_000_000,
                }
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    q: AlertQuery,
    rows: Vec<AlertRow>,
    next: Option<String>,
    categories: Vec<(&'static str, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
    live: bool,
    /// Text too short for the search index (the page says it scans).
    short_text: bool,
}

/// `GET /alerts`: the filterable list; updates live through `app.js`.
pub async fn alerts(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Query(q): Query<AlertQuery>,
) -> Result<Response, ApiError> {
    let mut filter = q.to_filter()?;
    if q.limit.is_none() {
        filter.limit = 100;
    }
    let page = st.db(move |s| s.alerts(&filter)).await?;
    let next = page.next_cursor.map(|c| {
        let mut nq = q.clone();
        nq.cursor = Some(c.to_string());
        query_string(&nq)
    });
    // Live rows are added only to the first page of a list whose filters
    // the browser can check itself.
    let live = q.cursor.is_none()
        && [&q.from, &q.to, &q.src, &q.dest, &q.account, &q.q]
            .iter()
            .all(|v| v.as_deref().unwrap_or("").is_empty());
    let short_text =
        q.q.as_deref()
            .is_some_and(|t| !t.trim().is_empty() && !crate::store::search::uses_index(t));
    let page = AlertsPage {
        chrome: chrome(&p, "Alerts", "alerts"),
        rows: page.alerts.iter().map(alert_row).collect(),
        q,
        next,
        categories: eve::AlertCategory::ALL
            .iter()
            .map(|c| (c.as_str(), format::category(c.as_str())))
            .collect(),
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), s.label()))
            .collect(),
        live,
        short_text,
    };
    Ok(render(&page))
}

fn query_string(q: &AlertQuery) -> String {
    let pairs = [
        ("from", &q.from),
        ("to", &q.to),
        ("category", &q.category),
        ("severity", &q.severity),
        ("status", &q.status),
        ("sensor", &q.sensor),
        ("src", &q.src),
        ("dest", &q.dest),
        ("account", &q.account),
        ("q", &q.q),
        ("cursor", &q.cursor),
        ("limit", &q.limit),
    ];
    encode_pairs(&pairs)
}

/// `k=v&…` of the pairs with a non-empty value, values percent-encoded:
/// the query string of a list page's filters (alerts, incidents).
pub(super) fn encode_pairs(pairs: &[(&str, &Option<String>)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(&percent_encode(v));
        }
    }
    out
}

/// Percent-encode a query value (everything but unreserved characters).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A related event (flow or file) as a titled table.
pub struct Related {
    title: String,
    rows: Vec<Row>,
}

/// An audit line for display.
pub struct AuditView {
    time: String,
    actor: String,
    action: String,
    alert_id: Option<i64>,
    detail: String,
}

fn audit_view(e: &AuditEntry) -> AuditView {
    AuditView {
        time: format::time(e.ts),
        actor: e.actor.clone(),
        action: e.action.clone(),
        alert_id: e.alert_id,
        detail: e.detail.clone(),
    }
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage {
    chrome: Chrome,
    row: AlertRow,
    summary: String,
    facts: Vec<(String, String)>,
    account: Option<String>,
    members: Vec<String>,
    evidence: Vec<Row>,
    context: Vec<Related>,
    related: Vec<Related>,
    statuses: Vec<(&'static str, &'static str)>,
    audit: Vec<AuditView>,
    can_triage: bool,
    /// Response actions offered (names).
    actions: Vec<String>,
    /// The incident the alert belongs to.
    incident: Option<i64>,
}

fn obj_rows(v: &Value, key: &str) -> Option<Vec<Row>> {
    v.get(key).and_then(Value::as_object).map(format::rows)
}

/// A flow or fileinfo event as a table, without the envelope ids.
fn related(v: &Value) -> Related {
    let mut m: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
    let kind = m
        .remove("event_type")
        .and_then(|t| t.as_str().map(String::from))
        .unwrap_or_default();
    let time = m
        .remove("timestamp")
        .map(|t| format::event_time(&t))
        .unwrap_or_default();
    m.remove("event_id");
    let title = match kind.as_str() {
        "flow" => format!("Flow, {time}"),
        "fileinfo" => {
            let name = v["fileinfo"]["filename"].as_str().unwrap_or("(no name)");
            format!("File {name}, {time}")
        }
        other => format!("{other}, {time}"),
    };
    Related {
        title,
        rows: format::rows(&m),
    }
}

/// `GET /alerts/{id}`.
pub async fn alert(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (d, incident) = st
        .db(move |s| Ok((s.alert(id)?, s.incident_of(id)?)))
        .await?;
    let d = d.ok_or_else(ApiError::not_found)?;
    let v: Value = serde_json::from_str(&d.alert.body).unwrap_or(Value::Null);
    let row = alert_row(&d.alert);
    let mut facts = vec![
        ("Time".to_string(), row.time.clone()),
        ("Category".to_string(), row.category_label.clone()),
        ("Severity".to_string(), row.severity_label.to_string()),
        (
            "Rule".to_string(),
            format!(
                "{} (#{})",
                v["alert"]["signature"].as_str().unwrap_or(""),
                v["alert"]["signature_id"]
            ),
        ),
        ("Sensor".to_string(), row.sensor.clone()),
    ];
    if v.get("src_ip").is_some() {
        facts.push((
            "Connection".into(),
            format!(
                "{}:{} → {}:{} {} {}",
                v["src_ip"].as_str().unwrap_or(""),
                v["src_port"],
                v["dest_ip"].as_str().unwrap_or(""),
                v["dest_port"],
                v["proto"].as_str().unwrap_or(""),
                v["app_proto"].as_str().unwrap_or("")
            ),
        ));
        facts.push((
            "Community ID".into(),
            v["community_id"].as_str().unwrap_or("").into(),
        ));
        facts.push(("Flow id".into(), v["flow_id"].to_string()));
    }
    if let Some(c) = v["cluster_id"].as_str() {
        facts.push(("Cluster".into(), c.into()));
    }
    facts.push((
        "Event id".into(),
        v["event_id"].as_str().unwrap_or("").into(),
    ));
    let mut context = Vec::new();
    for (key, title) in [("fileinfo", "Object"), ("http", "HTTP"), ("tls", "TLS")] {
        if let Some(rows) = obj_rows(&v, key) {
            context.push(Related {
                title: title.into(),
                rows,
            });
        }
    }
    let related_events = d
        .flows
        .iter()
        .chain(d.files.iter())
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .map(|e| related(&e))
        .collect();
    let page = AlertPage {
        chrome: chrome(&p, format!("Alert {id}"), "alerts"),
        summary: format::summary(&v),
        facts,
        account: v["account_id"].as_str().map(String::from),
        members: v["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        evidence: obj_rows(&v, "evidence").unwrap_or_default(),
        context,
        related: related_events,
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), s.label()))
            .collect(),
        audit: d.audit.iter().map(audit_view).collect(),
        can_triage: p.allows(Need::Triage),
        actions: st.action_names(),
        incident,
        row,
    };
    Ok(render(&page))
}

/// The triage form of an alert or an incident.
#[derive(Deserialize)]
pub struct TriageForm {
    pub(super) csrf: String,
    pub(super) status: String,
    #[serde(default)]
    pub(super) note: String,
}

/// `POST /alerts/{id}/triage` (form; CSRF-checked), back to the alert.
pub async fn triage(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Result<Form<TriageForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(f) = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_csrf(&who.0, &headers, &f.csrf)?;
    set_status(&st, &who, id, &f.status, &f.note).await?;
    Ok(Redirect::to(&format!("/alerts/{id}")).into_response())
}

/// The response-action form.
#[derive(Deserialize)]
pub struct ActionForm {
    pub(super) csrf: String,
    pub(super) name: String,
}

/// `POST /alerts/{id}/action` (form; CSRF-checked): run a response action
/// (audited), back to the alert.
pub async fn run_action(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(f) = form.map_err(|e| ApiError::bad_request(e.body_text()))?;
    check_csrf(&who.0, &headers, &f.csrf)?;
    crate::respond::run(&st, &who, id, &f.name).await?;
    Ok(Redirect::to(&format!("/alerts/{id}")).into_response())
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountView>,
}

/// `GET /accounts`: accounts by distillation score.
pub async fn accounts(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
) -> Result<Response, ApiError> {
    let rows = st.db(|s| s.accounts(1000)).await?;
    Ok(render(&AccountsPage {
        chrome: chrome(&p, "Accounts", "accounts"),
        accounts: rows.iter().map(account_view).collect(),
    }))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    account: AccountView,
    summary: String,
    signals: Vec<Signal>,
    timeline_name: String,
    timeline: Vec<Bar>,
    timeline_max: String,
    timeline_from: String,
    timeline_to: String,
    volume: Vec<Row>,
    prompts: Vec<String>,
    members: Vec<String>,
    features: Vec<Row>,
    alerts: Vec<AlertRow>,
}

/// `GET /accounts/{id}`.
pub async fn account(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = st
        .db(move |s| s.account(&id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let latest: Value = d
        .latest
        .as_ref()
        .and_then(|a| serde_json::from_str(&a.body).ok())
        .unwrap_or(Value::Null);
    let ev = latest
        .get("evidence")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (timeline_name, points) = format::timeline(&ev).unwrap_or_default();
    let tmax = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0);
    let bw = CHART_W / points.len().max(1) as f64;
    let timeline = points
        .iter()
        .enumerate()
        .map(|(i, (label, n))| {
            let h = CHART_H * n.max(0.0) / tmax;
            Bar {
                x: i as f64 * bw + 1.0,
                y: CHART_H - h,
                w: (bw - 2.0).max(1.0),
                h,
                class: "cat-distillation".into(),
                title: format!("{label}: {}", format::float(*n)),
            }
        })
        .collect();
    let page = AccountPage {
        chrome: chrome(&p, format!("Account {}", d.account.account_id), "accounts"),
        account: account_view(&d.account),
        summary: if latest.is_null() {
            "No distillation alert names this account itself; it appears as a cluster member."
                .into()
        } else {
            format::summary(&latest)
        },
        signals: format::signals(&ev),
        timeline_name,
        timeline,
        timeline_max: format::float(tmax),
        timeline_from: points.first().map(|p| p.0.clone()).unwrap_or_default(),
        timeline_to: points.last().map(|p| p.0.clone()).unwrap_or_default(),
        volume: ev
            .get("volume")
            .and_then(Value::as_object)
            .map(format::rows)
            .unwrap_or_default(),
        prompts: format::prompts(&ev),
        members: d.members,
        features: format::rows(&ev),
        alerts: d.alerts.iter().map(alert_row).collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditView>,
}

/// `GET /audit`: the newest analyst actions.
pub async fn audit(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
) -> Result<Response, ApiError> {
    let rows = st.db(|s| s.audit(1000)).await?;
    Ok(render(&AuditPage {
        chrome: chrome(&p, "Audit log", "audit"),
        entries: rows.iter().map(audit_view).collect(),
    }))
}
