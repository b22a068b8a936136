//! The JSON API: ingest, read, triage.

use crate::auth::{Need, Principal};
use crate::error::ApiError;
use crate::ingest;
use crate::server::{AppState, LiveMsg, now_micros};
use crate::store::{AlertFilter, Cursor, Status, StoredAlert};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest page of the alert list.
pub const MAX_LIMIT: usize = 10_000;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// 403 unless `p` may do `need`.
pub fn require(p: &Principal, need: Need) -> Result<(), ApiError> {
    if p.allows(need) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not {}",
            p.actor(),
            match need {
                Need::Ingest => "submit events",
                Need::Read => "read",
                Need::Triage => "triage alerts",
            }
        )))
    }
}

/// `POST /api/v1/events`: a JSON array of EVE events, stored in one transaction.
pub async fn ingest(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Result<Response, ApiError> {
    require(&p, Need::Ingest)?;
    if let Err(not_until) = st.ingest_limiter.check_key(&p.rate_key()) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        metrics::counter!("weightwatch_dashboard_ingest_throttled_total").increment(1);
        return Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(ApiError::bad_request("body must be a JSON array of events"));
    };
    if items.len() > st.cfg.max_batch_events {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "batch of {} events exceeds max_batch_events = {}",
                items.len(),
                st.cfg.max_batch_events
            ),
        ));
    }
    let (valid, rejected) = ingest::validate_batch(items, &st.cfg);
    let started = std::time::Instant::now();
    let outcome = if valid.is_empty() {
        Default::default()
    } else {
        let received = now_micros();
        st.db(move |s| s.ingest(&valid, received)).await?
    };
    metrics::histogram!("weightwatch_dashboard_ingest_commit_seconds")
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("weightwatch_dashboard_ingest_events_total", "result" => "accepted")
        .increment(outcome.accepted as u64);
    metrics::counter!("weightwatch_dashboard_ingest_events_total", "result" => "duplicate")
        .increment(outcome.duplicates as u64);
    metrics::counter!("weightwatch_dashboard_ingest_events_total", "result" => "rejected")
        .increment(rejected.len() as u64);
    for a in &outcome.new_alerts {
        st.publish(LiveMsg {
            kind: "alert",
            data: a.to_json().to_string().into(),
        });
    }
    let status = if rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        Json(json!({
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": rejected,
        })),
    )
        .into_response())
}

/// Query string of `GET /api/v1/alerts` (and the alert list page).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AlertQuery {
    /// Start of the time range: RFC 3339 or Unix seconds.
    pub from: Option<String>,
    /// End of the time range (exclusive).
    pub to: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Severity 1..=3.
    pub severity: Option<String>,
    /// Triage status.
    pub status: Option<String>,
    /// Sensor id.
    pub sensor: Option<String>,
    /// Source address.
    pub src: Option<String>,
    /// Destination address.
    pub dest: Option<String>,
    /// Account id.
    pub account: Option<String>,
    /// Free text.
    pub q: Option<String>,
    /// Page position.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = v.parse::<i64>() {
        return secs
            .checked_mul(1_000_000)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: out of range")));
    }
    eve::Timestamp::parse(v)
        .map(|t| t.unix_micros())
        .map_err(|e| ApiError::bad_request(format!("{name}: not RFC 3339 or Unix seconds: {e}")))
}

impl AlertQuery {
    /// Validate into a store filter.
    pub fn to_filter(&self) -> Result<AlertFilter, ApiError> {
        let category = nonempty(&self.category);
        if let Some(c) = &category
            && !eve::AlertCategory::ALL.iter().any(|x| x.as_str() == c)
        {
            return Err(ApiError::bad_request(format!("unknown category {c:?}")));
        }
        let severity = match nonempty(&self.severity) {
            Some(s) => match s.parse::<u8>() {
                Ok(n @ 1..=3) => Some(n),
                _ => return Err(ApiError::bad_request("severity must be 1, 2 or 3")),
            },
            None => None,
        };
        let limit = match nonempty(&self.limit) {
            Some(l) => match l.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit must be 1..={MAX_LIMIT}"
                    )));
                }
            },
            None => DEFAULT_LIMIT,
        };
        Ok(AlertFilter {
            from: nonempty(&self.from)
                .map(|v| parse_time("from", &v))
                .transpose()?,
            to: nonempty(&self.to)
                .map(|v| parse_time("to", &v))
                .transpose()?,
            category,
            severity,
            status: nonempty(&self.status)
                .map(|s| s.parse::<Status>())
                .transpose()
                .map_err(ApiError::bad_request)?,
            sensor: nonempty(&self.sensor),
            src: nonempty(&self.src),
            dest: nonempty(&self.dest),
            account: nonempty(&self.account),
            text: nonempty(&self.q),
            cursor: nonempty(&self.cursor)
                .map(|c| c.parse::<Cursor>())
                .transpose()
                .map_err(ApiError::bad_request)?,
            limit,
        })
    }
}

/// `GET /api/v1/alerts`.
pub async fn alerts(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let filter = q.to_filter()?;
    let page = st.db(move |s| s.alerts(&filter)).await?;
    Ok(Json(json!({
        "alerts": page.alerts.iter().map(StoredAlert::to_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}

fn parse_bodies(bodies: &[String]) -> Vec<Value> {
    bodies
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect()
}

/// `GET /api/v1/alerts/{id}`: the alert, its flow and fileinfo events, its audit trail.
pub async fn alert(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let d = st
        .db(move |s| s.alert(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({
        "alert": d.alert.to_json(),
        "flows": parse_bodies(&d.flows),
        "fileinfo": parse_bodies(&d.files),
        "audit": d.audit,
    })))
}

/// Body of `POST /api/v1/alerts/{id}/triage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageBody {
    /// New status.
    pub status: String,
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// Longest triage note kept.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Set an alert's status for `p`, audit it, and tell live subscribers.
pub async fn do_triage(
    st: &Arc<AppState>,
    p: &Principal,
    id: i64,
    status: &str,
    note: &str,
) -> Result<StoredAlert, ApiError> {
    require(p, Need::Triage)?;
    let status: Status = status.parse().map_err(ApiError::bad_request)?;
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let note = note.trim().to_string();
    let actor = p.actor();
    let updated = st
        .db(move |s| s.triage(id, status, &note, &actor, now_micros()))
        .await?
        .ok_or_else(ApiError::not_found)?;
    metrics::counter!("weightwatch_dashboard_triage_total", "status" => status.as_str())
        .increment(1);
    st.publish(LiveMsg {
        kind: "status",
        data: json!({"id": id, "status": status.as_str()})
            .to_string()
            .into(),
    });
    Ok(updated)
}

/// `POST /api/v1/alerts/{id}/triage` with `{"status": …, "note": …}`.
/// Session (cookie) callers must send the CSRF token in `X-CSRF-Token`.
pub async fn triage(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if let Principal::User { csrf, .. } = &p {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !crate::auth::constant_time_eq(sent, csrf) {
            return Err(ApiError::forbidden("missing or wrong CSRF token"));
        }
    }
    let b: TriageBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let a = do_triage(&st, &p, id, &b.status, &b.note).await?;
    Ok(Json(a.to_json()))
}

/// `limit` query parameter of the list endpoints.
#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    /// Rows wanted.
    pub limit: Option<usize>,
}

/// `GET /api/v1/accounts`: accounts by score with features and cluster.
pub async fn accounts(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows = st.db(move |s| s.accounts(limit)).await?;
    Ok(Json(json!({ "accounts": rows })))
}

/// `GET /api/v1/accounts/{id}`.
pub async fn account(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let d = st
        .db(move |s| s.account(&id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({
        "account": d.account,
        "cluster_members": d.members,
        "alerts": d.alerts.iter().map(StoredAlert::to_json).collect::<Vec<_>>(),
    })))
}

/// Packets, drops and drop ratio from a sensor's newest `stats` counters.
pub fn packet_stats(stats: Option<&Value>) -> (u64, u64) {
    let get = |k: &str| {
        stats
            .and_then(|s| s.get("capture"))
            .and_then(|c| c.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    (
        get("packets"),
        get("kernel_drops").saturating_add(get("queue_drops")),
    )
}

/// `GET /api/v1/sensors`: last seen and packet/drop counters.
pub async fn sensors(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let rows = st.db(|s| s.sensors()).await?;
    let out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let (packets, drops) = packet_stats(r.stats.as_ref());
            json!({
                "sensor_id": r.sensor_id,
                "last_event": eve::Timestamp::from_unix_micros(r.last_event_ts).to_string(),
                "last_seen": eve::Timestamp::from_unix_micros(r.last_received).to_string(),
                "events": r.events,
                "packets": packets,
                "drops": drops,
                "stats": r.stats,
            })
        })
        .collect();
    Ok(Json(json!({ "sensors": out })))
}

/// `GET /api/v1/audit`: the newest audit lines.
pub async fn audit(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&p, Need::Read)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows = st.db(move |s| s.audit(limit)).await?;
    Ok(Json(json!({ "audit": rows })))
}
