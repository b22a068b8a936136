//! Response actions an analyst runs on an alert (`[[actions]]` in
//! `weightwatch.toml`): the one path both the JSON API and the alert page's
//! buttons take. Each request and each outcome goes to the audit log.

use crate::access::Triager;
use crate::error::ApiError;
use crate::state::{AppState, now_micros};
use crate::store::{AuditEntry, Store};
use axum::http::StatusCode;
use eve::actions::{ActionConfig, ActionError, Actions, Outcome, Triggered};
use std::path::Path;
use std::sync::Arc;

/// Start the configured actions for the dashboard; each finished run is
/// audited as `action_result` by `action:<name>`.
pub fn start(
    configs: &[ActionConfig],
    spool_dir: &Path,
    store: Arc<dyn Store>,
) -> Result<Actions, ActionError> {
    let hook = Arc::new(move |o: &Outcome| {
        let entry = AuditEntry {
            id: 0,
            ts: now_micros(),
            actor: format!("action:{}", o.action),
            action: "action_result".to_string(),
            alert_id: None,
            detail: format!(
                "event {}: {} — {}",
                o.event_id,
                if o.ok { "done" } else { "failed" },
                o.detail
            ),
        };
        if let Err(e) = store.audit_append(&entry) {
            tracing::error!("auditing an action's outcome: {e}");
        }
    });
    Actions::start(configs, spool_dir, Some(hook))
}

/// Run action `name` on alert `id` for `who`; audited. Returns what became
/// of the request (`queued`, `rate_limited`, `queue_full`, `skipped`).
pub async fn run(
    st: &Arc<AppState>,
    who: &Triager,
    id: i64,
    name: &str,
) -> Result<&'static str, ApiError> {
    let detail = st
        .db(move |s| s.alert(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let event: eve::Event = serde_json::from_str(&detail.alert.body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the stored alert is not a weightwatch event: {e}"),
        )
    })?;
    let triggered = {
        let mut guard = st
            .actions
            .lock()
            .map_err(|_| ApiError::internal("actions lock poisoned"))?;
        guard
            .as_mut()
            .and_then(|a| a.trigger(name, &event))
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no action {name:?}")))?
    };
    let result = match triggered {
        Triggered::Queued => "queued",
        Triggered::RateLimited => "rate_limited",
        Triggered::QueueFull => "queue_full",
        Triggered::Skipped => "skipped",
    };
    let entry = AuditEntry {
        id: 0,
        ts: now_micros(),
        actor: who.0.actor(),
        action: "action".to_string(),
        alert_id: Some(id),
        detail: format!("{name}: {result} (event {})", event.event_id),
    };
    st.db(move |s| s.audit_append(&entry)).await?;
    Ok(result)
}
