//! The guided tour the demo prints at its end: which pages to open first
//! and what each shows, from the alerts the demo actually sent.

use eve::{AlertCategory, AlertEvent, Event};
use serde_json::Value;
use std::fmt::Write;

/// What the tour points at, noted as the alerts go by.
#[derive(Debug, Default)]
pub struct Tour {
    /// The first known-weights alert: (time, destination, protocol, file).
    known: Option<(String, String, String, String)>,
    /// Sensor alerts and their earliest time.
    sensor: (u64, Option<String>),
    /// The first flagged cluster: (id, members, detected at, hours to detect).
    cluster: Option<(String, usize, String, f64)>,
    /// The highest-scored account alert: (score, account, detected at, hours).
    account: Option<(f64, String, String, f64)>,
    /// Analyzer alerts and their earliest and latest time.
    analyzer: (u64, Option<String>, Option<String>),
}

fn detected(e: &serde_json::Map<String, Value>, fallback: &str) -> (String, f64) {
    let at = e
        .get("detected_at")
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_string();
    let hours = e
        .get("time_to_detect")
        .and_then(|t| t.get("hours"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    (at, hours)
}

/// `2026-11-04T09:00:00.000000+0000` → `2026-11-04 09:00 UTC`.
fn short(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => t.to_string(),
    }
}

impl Tour {
    /// Note one alert on its way to the dashboard.
    pub fn note(&mut self, event: &Event, a: &AlertEvent) {
        let time = event.timestamp.to_string();
        match a.alert.category {
            AlertCategory::Distillation | AlertCategory::DistillationCluster => {
                let n = &mut self.analyzer;
                n.0 += 1;
                if n.1.as_ref().is_none_or(|t| time < *t) {
                    n.1 = Some(time.clone());
                }
                if n.2.as_ref().is_none_or(|t| time > *t) {
                    n.2 = Some(time.clone());
                }
            }
            _ => {
                self.sensor.0 += 1;
                if self.sensor.1.as_ref().is_none_or(|t| time < *t) {
                    self.sensor.1 = Some(time.clone());
                }
            }
        }
        match a.alert.category {
            AlertCategory::WeightsKnown if self.known.is_none() => {
                let net = event.net.as_ref();
                let dest = net.map_or("?".to_string(), |n| n.dest_ip.to_string());
                let proto = match net.and_then(|n| n.app_proto.as_deref()) {
                    None | Some("raw") => "raw TCP".to_string(),
                    Some(p) => p.to_uppercase(),
                };
                let file = a
                    .fileinfo
                    .as_ref()
                    .and_then(|f| f.filename.clone())
                    .unwrap_or_default();
                self.known = Some((time, dest, proto, file));
            }
            AlertCategory::DistillationCluster if self.cluster.is_none() => {
                let (at, hours) = detected(&a.evidence, &time);
                let members = a.members.as_ref().map_or(0, Vec::len);
                let id = a.cluster_id.clone().unwrap_or_default();
                self.cluster = Some((id, members, at, hours));
            }
            AlertCategory::Distillation => {
                let score = a
                    .evidence
                    .get("score")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                if self.account.as_ref().is_none_or(|b| score > b.0)
                    && let Some(id) = &a.account_id
                {
                    let (at, hours) = detected(&a.evidence, &time);
                    self.account = Some((score, id.clone(), at, hours));
                }
            }
            _ => {}
        }
    }

    /// The tour, with links under `base` (the dashboard's URL; empty for
    /// paths, with `served_by` saying how to serve them).
    pub fn render(&self, base: &str, served_by: Option<&str>) -> String {
        let mut s = String::from("\nGuided tour (open in this order):\n");
        if let Some(how) = served_by {
            let _ = writeln!(s, "  (pages of the dashboard served by: {how})");
        }
        let mut step = 0;
        let mut line = |s: &mut String, text: String| {
            step += 1;
            let _ = writeln!(s, "  {step}. {text}");
        };
        line(
            &mut s,
            format!(
                "{base}/  the overview: {} sensor alerts (captures replayed from {}) and {} analyzer alerts ({} to {}) on one chart.",
                self.sensor.0,
                self.sensor.1.as_deref().map_or("-".into(), short),
                self.analyzer.0,
                self.analyzer.1.as_deref().map_or("-".into(), short),
                self.analyzer.2.as_deref().map_or("-".into(), short),
            ),
        );
        if let Some((t, dest, proto, file)) = &self.known {
            let file = if file.is_empty() {
                String::new()
            } else {
                format!(" ({file})")
            };
            line(
                &mut s,
                format!(
                    "{base}/alerts?category=weights_known  open the first: the lab's registered weights{file} leaving over {proto} to {dest} at {}; the evidence shows the chunks that matched the known-weights index.",
                    short(t)
                ),
            );
        }
        if let Some((id, members, at, hours)) = &self.cluster {
            line(
                &mut s,
                format!(
                    "{base}/alerts?category=distillation_cluster  cluster {id}: {members} accounts extracting the model together, caught {} ({hours:.1} h after their first request); members and links in the evidence.",
                    short(at)
                ),
            );
        }
        if let Some((score, id, at, hours)) = &self.account {
            line(
                &mut s,
                format!(
                    "{base}/accounts/{id}  the highest-scored account ({score:.3}): signals against thresholds and its hourly requests, caught {} ({hours:.1} h in).",
                    short(at)
                ),
            );
        }
        line(
            &mut s,
            format!(
                "triage one of them (status and a note), then {base}/audit shows who did what."
            ),
        );
        s
    }
}
