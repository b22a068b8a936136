//! Triage: setting an alert's status, the one path both the JSON API and
//! the alert page's form take.

use crate::access::Triager;
use crate::error::ApiError;
use crate::state::{AppState, LiveMsg, now_micros};
use crate::store::{Status, StoredAlert};
use serde_json::json;
use std::sync::Arc;

/// Longest triage note kept.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Set an alert's status for `who`, audit it, and tell live subscribers.
pub async fn set_status(
    st: &Arc<AppState>,
    who: &Triager,
    id: i64,
    status: &str,
    note: &str,
) -> Result<StoredAlert, ApiError> {
    let status: Status = status.parse().map_err(ApiError::bad_request)?;
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let note = note.trim().to_string();
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
