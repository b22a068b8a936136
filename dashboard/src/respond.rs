//! Response actions an analyst runs on an alert or an incident
//! (`[[actions]]` in `weightwatch.toml`): the one path both the JSON API and
//! the pages' buttons take. Each request and each outcome goes to the audit
//! log, on the alert or the incident it was about.

use crate::access::Triager;
use crate::error::ApiError;
use crate::incidents::{Incident, Kind};
use crate::state::{AppState, now_micros};
use crate::store::{AuditEntry, IncidentDetail, Store};
use axum::http::StatusCode;
use eve::actions::{ActionConfig, ActionError, Actions, Outcome, Placeholder, Subject, Triggered};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// What an action ran on, as the subject's id says it (`alert:ID`,
/// `incident:ID`): the dashboard gives every subject it runs one of these,
/// so an outcome is audited on its row (an alert's own `event_id`, which
/// its sender chose, is never read as one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Alert(i64),
    Incident(i64),
}

impl Target {
    fn id(self) -> String {
        match self {
            Target::Alert(id) => format!("alert:{id}"),
            Target::Incident(id) => format!("incident:{id}"),
        }
    }

    fn parse(s: &str) -> Option<Target> {
        let (kind, id) = s.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "alert" => Some(Target::Alert(id)),
            "incident" => Some(Target::Incident(id)),
            _ => None,
        }
    }

    /// `(alert_id, incident_id)` of its audit lines.
    fn rows(self) -> (Option<i64>, Option<i64>) {
        match self {
            Target::Alert(id) => (Some(id), None),
            Target::Incident(id) => (None, Some(id)),
        }
    }

    fn label(self) -> String {
        match self {
            Target::Alert(id) => format!("alert {id}"),
            Target::Incident(id) => format!("incident {id}"),
        }
    }
}

/// Start the configured actions for the dashboard; each finished run is
/// audited as `action_result` by `action:<name>` on its alert or incident.
pub fn start(
    configs: &[ActionConfig],
    spool_dir: &Path,
    store: Arc<dyn Store>,
) -> Result<Actions, ActionError> {
    let hook = Arc::new(move |o: &Outcome| {
        let target = Target::parse(&o.id);
        let (alert_id, incident_id) = target.map_or((None, None), Target::rows);
        let entry = AuditEntry {
            id: 0,
            ts: now_micros(),
            actor: format!("action:{}", o.action),
            action: "action_result".to_string(),
            alert_id,
            incident_id,
            detail: format!(
                "{}: {} — {}",
                target.map_or_else(|| o.id.clone(), Target::label),
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
    let subject = Subject::alert(&event).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the stored alert is not an alert event",
        )
    })?;
    let note = format!("event {}", event.event_id);
    trigger(st, who, Target::Alert(id), name, subject, note).await
}

/// Run action `name` on incident `id` for `who`: the action gets the
/// incident's JSON as `GET /api/v1/incidents/{id}` answers it, and the
/// placeholders [`incident_subject`] gives. Audited on the incident.
pub async fn run_on_incident(
    st: &Arc<AppState>,
    who: &Triager,
    id: i64,
    name: &str,
) -> Result<&'static str, ApiError> {
    let detail = st
        .db(move |s| s.incident(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let subject = incident_subject(&detail);
    let note = detail.incident.title.clone();
    trigger(st, who, Target::Incident(id), name, subject, note).await
}

/// An incident as an action's subject: its JSON, and the placeholders it
/// has: `src_ip` (its source host), `dest_ip` (when it has exactly one
/// destination: always for egress and transfer incidents), `account_id`
/// (an account incident's account; a cluster incident's only when its
/// alerts name exactly one account, several being in the JSON instead).
fn incident_subject(d: &IncidentDetail) -> Subject {
    let i: &Incident = &d.incident;
    let mut s = Subject::document(Target::Incident(i.id).id(), d.to_json().to_string());
    if let Some(src) = &i.src {
        s = s.with(Placeholder::SrcIp, src.clone());
    }
    if let [dest] = &i.state.dests.iter().collect::<Vec<_>>()[..] {
        s = s.with(Placeholder::DestIp, (*dest).clone());
    }
    let account = match i.kind {
        Kind::Account => Some(i.state.subject.clone()),
        Kind::Cluster => {
            let mut named = BTreeSet::new();
            for a in &d.alerts {
                let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
                named.extend(v["account_id"].as_str().map(String::from));
                if let Some(m) = v["members"].as_array() {
                    named.extend(m.iter().filter_map(|x| x.as_str().map(String::from)));
                }
            }
            let mut it = named.into_iter();
            match (it.next(), it.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(a) = account {
        s = s.with(Placeholder::AccountId, a);
    }
    s
}

/// Hand `subject` to action `name` (404 when there is none) and audit the
/// request on `target` (`note` says what it was about).
async fn trigger(
    st: &Arc<AppState>,
    who: &Triager,
    target: Target,
    name: &str,
    subject: Subject,
    note: String,
) -> Result<&'static str, ApiError> {
    let subject = subject.with_id(target.id());
    let triggered = {
        let mut guard = st
            .actions
            .lock()
            .map_err(|_| ApiError::internal("actions lock poisoned"))?;
        guard
            .as_mut()
            .and_then(|a| a.trigger(name, &subject))
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no action {name:?}")))?
    };
    let result = match triggered {
        Triggered::Queued => "queued",
        Triggered::RateLimited => "rate_limited",
        Triggered::QueueFull => "queue_full",
        Triggered::Skipped => "skipped",
    };
    let (alert_id, incident_id) = target.rows();
    let entry = AuditEntry {
        id: 0,
        ts: now_micros(),
        actor: who.0.actor(),
        action: "action".to_string(),
        alert_id,
        incident_id,
        detail: format!("{name}: {result} ({}: {note})", target.label()),
    };
    st.db(move |s| s.audit_append(&entry)).await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets_read_back_and_other_ids_are_no_target() {
        for t in [Target::Alert(7), Target::Incident(12)] {
            assert_eq!(Target::parse(&t.id()), Some(t));
        }
        assert_eq!(Target::parse("e-1"), None);
        assert_eq!(Target::parse("incident:x"), None);
    }
}
