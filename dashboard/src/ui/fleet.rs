//! `GET /sensors`: the fleet page: every sensor and analyzer, its version,
//! whether it is reporting, its counters per interval, its alerts per category and its
//! spool.

use super::format;
use super::pages::{Chrome, chrome};
use super::render;
use crate::access::Reader;
use crate::error::ApiError;
use crate::state::{AppState, now_micros};
use crate::store::SensorRow;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;

/// One sensor as the page shows it.
struct FleetRow {
    id: String,
    version: String,
    silent_since: Option<String>,
    last_seen: String,
    last_event: String,
    events: String,
    packets: String,
    drops: String,
    interval: String,
    categories: Vec<(String, String)>,
    spool: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "sensors.html")]
struct SensorsPage {
    chrome: Chrome,
    rows: Vec<FleetRow>,
    silent: usize,
    stale_after: String,
}

fn row(s: &SensorRow, now: i64) -> FleetRow {
    let (packets, drops) = s.packets_and_drops();
    let interval = match s.interval() {
        Some(i) => format!(
            "{} packets, {} dropped in {} s",
            format::int(i.packets as i64),
            format::int(i.drops as i64),
            i.secs
        ),
        None => "—".into(),
    };
    let spool = s
        .spool()
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (format::key(k), format::value(k, v)))
                .collect()
        })
        .unwrap_or_default();
    FleetRow {
        id: s.sensor_id.clone(),
        version: s.version().unwrap_or("—").to_string(),
        silent_since: s.stale_since.map(|t| format::ago(t, now)),
        last_seen: format::ago(s.last_received, now),
        last_event: format::time(s.last_event_ts),
        events: format::int(s.events),
        packets: format::int(packets as i64),
        drops: format::int(drops as i64),
        interval,
        categories: s
            .alerts_by_category
            .iter()
            .map(|(c, n)| {
                // Suricata's classifications have no label of ours: as sent.
                let label = match format::category(c) {
                    "Other" => c.clone(),
                    l => l.to_string(),
                };
                (label, format::int(*n))
            })
            .collect(),
        spool,
    }
}

/// `GET /sensors`.
pub async fn sensors(
    State(st): State<Arc<AppState>>,
    Reader(p): Reader,
) -> Result<Response, ApiError> {
    let rows = st.db(|s| s.sensors()).await?;
    let now = now_micros();
    let rows: Vec<FleetRow> = rows.iter().map(|s| row(s, now)).collect();
    Ok(render(&SensorsPage {
        chrome: chrome(&p, "Sensors", "sensors"),
        silent: rows.iter().filter(|r| r.silent_since.is_some()).count(),
        rows,
        stale_after: match st.cfg.stale_after_secs {
            0 => "never (the watch is off)".into(),
            n => format!("after {n} s without an event"),
        },
    }))
}
