//! Suricata's own EVE, as a Suricata sensor writes it and Vector or Filebeat
//! ship it: events without an `event_id`, of the types `alert`, `fileinfo`,
//! `flow`, `tls`, `http` and `stats`.
//!
//! Each is stored as it came, plus two fields: `event_id`, derived (UUID v5)
//! from the event's content, so that a resent line is a duplicate and not a
//! second event; and `sensor_id`, Suricata's `host` (its `sensor-name`) when
//! the event has no `sensor_id`. Fields are checked with Suricata's types;
//! added fields are kept. An event that a shipper wrapped as a JSON string
//! in `message` (Vector's and Filebeat's raw line) is unwrapped first.

use super::{Checks, MAX_ID_CHARS, check_fields, counter, not_future, sensor_allowed};
use crate::config::DashboardConfig;
use crate::store::{AlertIndex, FlowIndex, Indexed, NewEvent};
use serde_json::{Map, Value};

/// The Suricata event types the dashboard takes.
pub const TYPES: [&str; 6] = ["alert", "fileinfo", "flow", "tls", "http", "stats"];

/// Check one Suricata event and index it.
pub(super) fn validate(
    item: Value,
    cfg: &DashboardConfig,
    checks: &Checks,
) -> Result<NewEvent, (Option<String>, String)> {
    let mut item = unwrap_message(item);
    // Serializing a JSON value cannot fail; its keys come out sorted, so
    // the same event always derives the same id.
    let canonical = serde_json::to_string(&item).unwrap_or_default();
    let event_id = eve::derived_event_id(&format!("suricata|{canonical}"));
    let fail = |error: String| (Some(event_id.clone()), error);
    let Some(obj) = item.as_object_mut() else {
        return Err(fail("event is not a JSON object".into()));
    };
    check_fields(obj).map_err(fail)?;
    let event_type = match obj.get("event_type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
        Some(Value::String(t)) => {
            return Err(fail(format!(
                "event_type {t:?} is not taken without an event_id (Suricata's {} are)",
                TYPES.join(", ")
            )));
        }
        Some(_) => return Err(fail("event_type is not a string".into())),
        None => return Err(fail("event_id and event_type are missing".into())),
    };
    // check_fields has parsed it.
    let ts = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|s| eve::Timestamp::parse(s).ok())
        .ok_or_else(|| fail("timestamp is missing".into()))?;
    not_future("timestamp", &ts, cfg, checks).map_err(fail)?;
    let sensor = match (obj.get("sensor_id"), obj.get("host")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (_, Some(Value::String(h))) if !h.is_empty() && h.chars().count() <= MAX_ID_CHARS => {
            Some(h.clone())
        }
        (_, Some(_)) => {
            return Err(fail(format!(
                "host is not a string of 1-{MAX_ID_CHARS} characters"
            )));
        }
        _ => None,
    };
    sensor_allowed(sensor.as_deref(), checks).map_err(fail)?;
    let flow_id = match obj.get("flow_id") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| fail("flow_id is not an unsigned integer".into()))?,
        ),
    };
    let community_id = match obj.get("community_id") {
        None => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => return Err(fail("community_id is not a string".into())),
    };
    let index = index(obj, &event_type, sensor.as_deref(), cfg, checks).map_err(fail)?;
    if sensor.is_some() && !obj.contains_key("sensor_id") {
        obj.insert("sensor_id".into(), sensor.clone().into());
    }
    obj.insert("event_id".into(), event_id.clone().into());
    let body = serde_json::to_string(&item).map_err(|e| fail(format!("re-encoding: {e}")))?;
    Ok(NewEvent {
        event_id,
        event_type,
        ts: ts.unix_micros(),
        sensor_id: sensor,
        flow_id,
        community_id,
        index,
        body,
    })
}

/// The type-specific checks and columns of an event of `event_type`.
fn index(
    obj: &Map<String, Value>,
    event_type: &str,
    sensor: Option<&str>,
    cfg: &DashboardConfig,
    checks: &Checks,
) -> Result<Indexed, String> {
    Ok(match event_type {
        "alert" => Indexed::Alert(alert(obj, sensor)?),
        "flow" => flow(obj, cfg, checks)?,
        "stats" => {
            let stats = object(obj, "stats")?;
            Indexed::Stats(Value::Object(stats.clone()).to_string())
        }
        "fileinfo" => {
            let f = object(obj, "fileinfo")?;
            if let Some(size) = f.get("size") {
                let n = size
                    .as_u64()
                    .ok_or_else(|| "fileinfo.size is not an unsigned integer".to_string())?;
                counter("fileinfo.size", n)?;
            }
            Indexed::Nothing
        }
        other => {
            object(obj, other)?;
            Indexed::Nothing
        }
    })
}

/// The event inside a shipper's wrapper: an object without `event_type`
/// whose `message` is the EVE line as a string.
fn unwrap_message(item: Value) -> Value {
    let inner = match &item {
        Value::Object(o) if !o.contains_key("event_type") => o
            .get("message")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .filter(|v| v.get("event_type").is_some()),
        _ => None,
    };
    inner.unwrap_or(item)
}

/// The object under `key`, which the event type requires.
fn object<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a Map<String, Value>, String> {
    match obj.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(format!("{key} is not an object")),
        None => Err(format!("{key} is missing")),
    }
}

fn str_at<'a>(obj: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut cur = obj;
    for p in parents {
        cur = cur.get(*p)?.as_object()?;
    }
    cur.get(*last)?.as_str()
}

fn alert(obj: &Map<String, Value>, sensor: Option<&str>) -> Result<AlertIndex, String> {
    let a = object(obj, "alert")?;
    let signature = match a.get("signature") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err("alert.signature is missing or not a string".into()),
    };
    for key in ["signature_id", "gid", "rev"] {
        if let Some(v) = a.get(key)
            && v.as_u64().is_none()
        {
            return Err(format!("alert.{key} is not an unsigned integer"));
        }
    }
    if a.get("signature_id").is_none() {
        return Err("alert.signature_id is missing".into());
    }
    let severity = match a.get("severity") {
        None => 3,
        Some(v) => v
            .as_u64()
            .filter(|&s| s >= 1)
            .ok_or_else(|| "alert.severity is not a positive integer".to_string())?,
    };
    let category = match a.get("category") {
        None => "",
        Some(Value::String(c)) => c.as_str(),
        Some(_) => return Err("alert.category is not a string".into()),
    };
    let mut parts: Vec<&str> = vec![signature, category];
    parts.extend(sensor);
    for path in [
        &["src_ip"][..],
        &["dest_ip"],
        &["app_proto"],
        &["tls", "sni"],
        &["http", "hostname"],
        &["http", "url"],
        &["http", "http_user_agent"],
        &["fileinfo", "filename"],
        &["fileinfo", "sha256"],
    ] {
        parts.extend(str_at(obj, path));
    }
    Ok(AlertIndex {
        category: category.to_string(),
        // Suricata's priorities run past 3; the dashboard's scale stops at low.
        severity: severity.min(3) as u8,
        src_ip: str_at(obj, &["src_ip"]).map(String::from),
        dest_ip: str_at(obj, &["dest_ip"]).map(String::from),
        account_id: None,
        cluster_id: None,
        members: Vec::new(),
        score: None,
        search: parts.join("\n").to_lowercase(),
    })
}

fn flow(
    obj: &Map<String, Value>,
    cfg: &DashboardConfig,
    checks: &Checks,
) -> Result<Indexed, String> {
    let f = object(obj, "flow")?;
    let mut n = [0u64; 4];
    for (i, key) in [
        "pkts_toserver",
        "pkts_toclient",
        "bytes_toserver",
        "bytes_toclient",
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(v) = f.get(key) {
            n[i] = v
                .as_u64()
                .ok_or_else(|| format!("flow.{key} is not an unsigned integer"))?;
            counter(&format!("flow.{key}"), n[i])?;
        }
    }
    let time = |key: &str| -> Result<Option<eve::Timestamp>, String> {
        match f.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => eve::Timestamp::parse(s)
                .map(Some)
                .map_err(|_| format!("flow.{key} is not a time")),
            Some(_) => Err(format!("flow.{key} is not a time")),
        }
    };
    let (start, end) = (time("start")?, time("end")?);
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(format!("flow.start {s} is after flow.end {e}"));
    }
    if let Some(e) = end {
        not_future("flow.end", &e, cfg, checks)?;
    }
    Ok(
        match (str_at(obj, &["src_ip"]), str_at(obj, &["dest_ip"])) {
            (Some(src), Some(dest)) => Indexed::Flow(FlowIndex {
                src_ip: src.to_string(),
                dest_ip: dest.to_string(),
                sni: str_at(obj, &["tls", "sni"]).map(String::from),
                bytes_toserver: n[2],
                bytes_toclient: n[3],
            }),
            _ => Indexed::Nothing,
        },
    )
}
