//! Triage: setting an alert's (or an incident's) status, the one path both
//! the JSON API and the pages' forms take.

use crate::access::Triager;
use crate::error::ApiError;
use crate::incidents::Incident;
use crate::state::{AppState, LiveMsg, now_micros};
use crate::store::{Status, StoredAlert};
use serde_json::json;
use std::sync::Arc;

/// Longest triage note kept.
pub const MAX_NOTE_CHARS: usize = 4000;

fn checked(status: &str, note: &str) -> Result<(Status, String), ApiError> {
    let status: Status = status.parse().map_err(ApiError::bad_request)?;
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok((status, note.trim().to_string()))
}

/// Set an incident's status and its alerts' for `who` (audited: one line
/// for the incident, one per alert), and tell live subscribers of each
/// alert's new status.
pub async fn set_incident_status(
    st: &Arc<AppState>,
    who: &Triager,
    id: i64,
    status: &str,
    note: &str,
) -> Result<Incident, ApiError> {
    let (status, note) = checked(status, note)?;
    let actor = who.0.actor();
    let (incident, alerts) = st
        .db(move |s| s.triage_incident(id, status, &note, &actor, now_micros()))
        .await?
        .ok_or_else(ApiError::not_found)?;
    metrics::counter!(crate::exporter::TRIAGE, "status" => status.as_str())
        .increment(alerts.len() as u64);
    let update = LiveMsg {
        kind: "incident",
        data: incident.to_json(false).to_string().into(),
    };
    st.publish(
        alerts
            .iter()
            .map(|a| LiveMsg {
                kind: "status",
                data: json!({"id": a, "status": status.as_str()})
                    .to_string()
                    .into(),
            })
            .chain(std::iter::once(update))
            .collect(),
    )
    .await;
    Ok(incident)
}

/// Set an alert's status for `who`, audit it, and tell live subscribers.
pub async fn set_status(
    st: &Arc<AppState>,
    who: &Triager,
    id: i64,
    status: &str,
    note: &str,
) -> Result<StoredAlert, ApiError> {
    let (status, note) = checked(status, note)?;
    let actor = who.0.actor();
    let updated = st
        .db(move |s| s.triage(id, status, &note, &actor, now_micros()))
        .await?
        .ok_or_else(ApiError::not_found)?;
    metrics::counter!(crate::exporter::TRIAGE, "status" => status.as_str()).increment(1);
    st.publish(vec![LiveMsg {
        kind: "status",
        data: json!({"id": id, "status": status.as_str()})
            .to_string()
            .into(),
    }])
    .await;
    Ok(updated)
}
