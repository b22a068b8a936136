//! The JSON API: ingest, read, triage.

use crate::access::{Ingester, Reader, Triager};
use crate::auth::Principal;
use crate::config::DashboardConfig;
use crate::error::ApiError;
use crate::exporter;
use crate::ingest;
use crate::labels;
use crate::query::{AlertQuery, DEFAULT_LIMIT, IncidentQuery, MAX_LIMIT};
use crate::state::{AppState, LiveMsg, now_micros};
use crate::store::StoredAlert;
use crate::triage::{set_incident_status, set_status};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_stream::StreamExt;

/// `POST /api/v1/events`: a JSON array of EVE events, stored in one transaction.
///
/// The body is read as it arrives, counting the array's elements: too many
/// (or too many bytes) is 413 before the rest is read. Parsing and checking
/// run on the blocking pool, never on the threads that serve requests.
pub async fn ingest(
    State(st): State<Arc<AppState>>,
    Ingester(p): Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(not_until) = st.ingest_limiter.check_key(&p.rate_key()) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        metrics::counter!(exporter::INGEST_THROTTLED).increment(1);
        return Err(ApiError::rate_limited(wait.as_secs_f64().ceil() as u64));
    }
    let body = read_batch(&headers, body, &st.cfg).await?;
    let cfg = st.cfg.clone();
    let sensors = p.sensors().map(<[String]>::to_vec);
    let ingest::Validated {
        events,
        positions,
        mut rejected,
    } = tokio::task::spawn_blocking(move || -> Result<ingest::Validated, ApiError> {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
        drop(body);
        let Value::Array(items) = value else {
            return Err(ApiError::bad_request("body must be a JSON array of events"));
        };
        if items.len() > cfg.max_batch_events {
            return Err(too_many(items.len(), cfg.max_batch_events));
        }
        let checks = ingest::Checks {
            now: now_micros(),
            sensors: sensors.as_deref(),
        };
        Ok(ingest::validate_batch(items, &cfg, &checks))
    })
    .await
    .map_err(ApiError::internal)??;
    let started = std::time::Instant::now();
    // The live messages are rendered here too: an alert's JSON can be as
    // large as the batch, and the async threads must stay free.
    let live = st.subscribers() > 0 || st.replicated();
    let (outcome, conflicts, messages) = if events.is_empty() {
        Default::default()
    } else {
        let received = now_micros();
        st.db(move |s| {
            let o = s.ingest(&events, received)?;
            let ids: Vec<(usize, String)> = o
                .conflicts
                .iter()
                .map(|&i| (positions[i], events[i].event_id.clone()))
                .collect();
            let messages: Vec<LiveMsg> = if live {
                let alerts = o.new_alerts.iter().map(|a| LiveMsg {
                    kind: "alert",
                    data: a.to_json().to_string().into(),
                });
                let incidents = o.incidents.iter().map(|i| LiveMsg {
                    kind: "incident",
                    data: i.to_json(false).to_string().into(),
                });
                alerts.chain(incidents).collect()
            } else {
                Vec::new()
            };
            Ok((o, ids, messages))
        })
        .await?
    };
    metrics::histogram!(exporter::INGEST_COMMIT).record(started.elapsed().as_secs_f64());
    metrics::counter!(exporter::INGEST_EVENTS, "result" => "accepted")
        .increment(outcome.accepted as u64);
    metrics::counter!(exporter::INGEST_EVENTS, "result" => "duplicate")
        .increment(outcome.duplicates as u64);
    metrics::counter!(exporter::INGEST_EVENTS, "result" => "conflict")
        .increment(conflicts.len() as u64);
    metrics::counter!(exporter::INGEST_EVENTS, "result" => "rejected")
        .increment(rejected.len() as u64);
    rejected.extend(conflicts.into_iter().map(|(index, id)| ingest::Rejection {
        index,
        event_id: Some(id),
        error: "conflict: this event_id is already stored with other content".into(),
    }));
    rejected.sort_by_key(|r| r.index);
    st.publish(messages).await;
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

fn too_many(events: usize, max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("batch of {events} events exceeds max_batch_events = {max}"),
    )
}

/// Read an ingest body, refusing it (413) as soon as it is longer than
/// `max_body_bytes` or holds more than `max_batch_events` events.
async fn read_batch(
    headers: &HeaderMap,
    body: Body,
    cfg: &DashboardConfig,
) -> Result<Vec<u8>, ApiError> {
    let too_long = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds max_body_bytes = {}", cfg.max_body_bytes),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > cfg.max_body_bytes) {
        return Err(too_long());
    }
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    let mut scan = ingest::BatchScan::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?;
        if out.len() + chunk.len() > cfg.max_body_bytes {
            return Err(too_long());
        }
        scan.feed(&chunk);
        if scan.at_least() > cfg.max_batch_events {
            return Err(too_many(scan.at_least(), cfg.max_batch_events));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `GET /api/v1/alerts`.
pub async fn alerts(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
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
    _: Reader,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
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

/// `GET /api/v1/incidents`: incidents, most recently active first, with
/// the alert list's filters (and `kind`).
pub async fn incidents(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = q.to_filter()?;
    let page = st.db(move |s| s.incidents(&filter)).await?;
    Ok(Json(json!({
        "incidents": page.incidents.iter().map(|i| i.to_json(false)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}

/// `GET /api/v1/incidents/{id}`: the incident (with each file's covered
/// ranges), its timeline, its alerts and the audit of its triage.
pub async fn incident(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let d = st
        .db(move |s| s.incident(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(d.to_json()))
}

/// `POST /api/v1/incidents/{id}/triage` with `{"status": …, "note": …}`:
/// the incident and every one of its alerts take the status (audited).
/// Session (cookie) callers must send the CSRF token in `X-CSRF-Token`.
pub async fn triage_incident(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_header_csrf(&who, &headers)?;
    let b: TriageBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let i = set_incident_status(&st, &who, id, &b.status, &b.note).await?;
    Ok(Json(i.to_json(false)))
}

/// `GET /api/v1/exfiltration-time`: for the busiest uploading hosts of the
/// last hour of flows, how long each registered file the dashboard knows
/// would take to leave at that host's rate (`crate::incidents::exposure`).
pub async fn exfiltration_time(
    State(st): State<Arc<AppState>>,
    _: Reader,
) -> Result<Json<Value>, ApiError> {
    let m = st.db(|s| s.exposure()).await?;
    Ok(Json(crate::incidents::exposure::to_json(&m)))
}

/// `GET /api/v1/canary`: `{"last_detected": alert | null}`, the newest
/// alert of a registered canary file (`evidence.canary`): the last
/// exfiltration test the sensors caught.
pub async fn canary(State(st): State<Arc<AppState>>, _: Reader) -> Result<Json<Value>, ApiError> {
    let a = st.db(|s| s.last_canary()).await?;
    Ok(Json(
        json!({ "last_detected": a.as_ref().map(StoredAlert::to_json) }),
    ))
}

/// Session callers must send their CSRF token in `X-CSRF-Token`.
fn check_header_csrf(who: &Triager, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Principal::User { csrf, .. } = &who.0 {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !crate::auth::constant_time_eq(sent, csrf) {
            return Err(ApiError::forbidden("missing or wrong CSRF token"));
        }
    }
    Ok(())
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

/// `POST /api/v1/alerts/{id}/triage` with `{"status": …, "note": …}`.
/// Session (cookie) callers must send the CSRF token in `X-CSRF-Token`.
pub async fn triage(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_header_csrf(&who, &headers)?;
    let b: TriageBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let a = set_status(&st, &who, id, &b.status, &b.note).await?;
    Ok(Json(a.to_json()))
}

/// `POST /api/v1/alerts/{id}/actions/{name}`: run response action `name` on
/// the alert (audited). Session callers send the CSRF token in
/// `X-CSRF-Token`. Answers `{"action": name, "result": "queued" | …}`.
pub async fn run_action(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path((id, name)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_header_csrf(&who, &headers)?;
    let result = crate::respond::run(&st, &who, id, &name).await?;
    Ok(Json(json!({"action": name, "result": result})))
}

/// `POST /api/v1/incidents/{id}/actions/{name}`: run response action
/// `name` on the incident (its JSON as `GET /api/v1/incidents/{id}`
/// answers it; audited on the incident). Session callers send the CSRF
/// token in `X-CSRF-Token`. Answers `{"action": name, "result": …}` as
/// for an alert.
pub async fn run_incident_action(
    State(st): State<Arc<AppState>>,
    who: Triager,
    Path((id, name)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_header_csrf(&who, &headers)?;
    let result = crate::respond::run_on_incident(&st, &who, id, &name).await?;
    Ok(Json(json!({"action": name, "result": result})))
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
    _: Reader,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows = st.db(move |s| s.accounts(limit)).await?;
    Ok(Json(json!({ "accounts": rows })))
}

/// `GET /api/v1/accounts/{id}`.
pub async fn account(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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

/// `GET /api/v1/sensors`: the fleet: every sensor and analyzer, its
/// version, last seen, counters (total and between its two newest stats reports), alerts per
/// category, spool counters when reported, and whether it went silent.
pub async fn sensors(State(st): State<Arc<AppState>>, _: Reader) -> Result<Json<Value>, ApiError> {
    let rows = st.db(|s| s.sensors()).await?;
    let time = |t: i64| eve::Timestamp::from_unix_micros(t).to_string();
    let out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let (packets, drops) = r.packets_and_drops();
            let by_category: serde_json::Map<String, Value> = r
                .alerts_by_category
                .iter()
                .map(|(c, n)| (c.clone(), json!(n)))
                .collect();
            json!({
                "sensor_id": r.sensor_id,
                "version": r.version(),
                "last_event": time(r.last_event_ts),
                "last_seen": time(r.last_received),
                "stale": r.stale_since.is_some(),
                "stale_since": r.stale_since.map(time),
                "events": r.events,
                "packets": packets,
                "drops": drops,
                "interval": r.interval(),
                "alerts_by_category": by_category,
                "spool": r.spool(),
                "stats": r.stats,
                "stats_time": r.stats_ts.map(time),
            })
        })
        .collect();
    Ok(Json(json!({ "sensors": out })))
}

/// `GET /api/v1/audit`: the newest audit lines.
pub async fn audit(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows = st.db(move |s| s.audit(limit)).await?;
    Ok(Json(json!({ "audit": rows })))
}

/// `GET /api/v1/labels.csv`: analysts' verdicts on distillation alerts as
/// the analyzer's labels CSV (`account_id,label,scenario`; see
/// [`crate::labels`]).
pub async fn labels(State(st): State<Arc<AppState>>, _: Reader) -> Result<Response, ApiError> {
    let csv = st.db(|s| labels::export(s)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"labels.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}
