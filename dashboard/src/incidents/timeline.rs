//! An incident's timeline: its alerts and the triage of the incident, in
//! time order, as the API and the incident page show it.

use crate::store::IncidentDetail;
use serde::Serialize;
use serde_json::Value;

/// One moment of an incident.
#[derive(Clone, Debug, Serialize)]
pub struct Moment {
    /// Unix microseconds.
    #[serde(skip)]
    pub ts: i64,
    /// The time, as events write it.
    pub time: String,
    /// `alert`, `triage`, or `action` (a response action run on the
    /// incident, or its outcome).
    pub kind: &'static str,
    /// The alert, for `alert`.
    pub alert_id: Option<i64>,
    /// Its category, for `alert`.
    pub category: Option<String>,
    /// Its severity, for `alert`.
    pub severity: Option<u8>,
    /// The alert's signature and detail, or the audit line
    /// (`actor: old → new: note`, `actor: action: result (…)`).
    pub text: String,
}

/// The timeline of `d`, oldest first.
pub fn timeline(d: &IncidentDetail) -> Vec<Moment> {
    let time = |t: i64| eve::Timestamp::from_unix_micros(t).to_string();
    let mut out: Vec<Moment> = d
        .alerts
        .iter()
        .filter_map(|a| {
            let v: Value = serde_json::from_str(&a.body).ok()?;
            let ts = eve::Timestamp::parse(v.get("timestamp")?.as_str()?)
                .ok()?
                .unix_micros();
            let alert = v.get("alert")?;
            let mut text = alert
                .get("signature")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(detail) = v.pointer("/evidence/detail").and_then(Value::as_str) {
                text.push_str(": ");
                text.push_str(detail);
            }
            Some(Moment {
                ts,
                time: time(ts),
                kind: "alert",
                alert_id: Some(a.id),
                category: alert
                    .get("category")
                    .and_then(Value::as_str)
                    .map(String::from),
                severity: alert
                    .get("severity")
                    .and_then(Value::as_u64)
                    .map(|s| s.clamp(1, 3) as u8),
                text,
            })
        })
        .collect();
    out.extend(d.audit.iter().map(|e| Moment {
        ts: e.ts,
        time: time(e.ts),
        kind: if e.action.starts_with("action") {
            "action"
        } else {
            "triage"
        },
        alert_id: None,
        category: None,
        severity: None,
        text: format!("{}: {}", e.actor, e.detail),
    }));
    out.sort_by_key(|m| m.ts);
    out
}
