//! Validation of ingested events and the prompt policy applied before storage.
//!
//! Two kinds of event come in: weightwatch's own (they carry an `event_id`
//! and are read with the `eve` event model), and Suricata's own EVE as a
//! Suricata sensor, Vector or Filebeat ships it (no `event_id`; see
//! [`suricata`]).

mod suricata;

use crate::config::DashboardConfig;
use crate::store::NewEvent;
use eve::EventKind;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Longest accepted `event_id` and `sensor_id` (characters).
pub const MAX_ID_CHARS: usize = 200;

/// Largest accepted counter (bytes, packets, sizes, stats): the store's
/// signed 64-bit integers hold no more.
pub const MAX_COUNTER: u64 = i64::MAX as u64;

/// Why one event of a batch was refused.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Rejection {
    /// Position in the batch (0-based).
    pub index: usize,
    /// The event's id, when it had a usable one.
    pub event_id: Option<String>,
    /// What was wrong.
    pub error: String,
}

/// What an event is checked against besides its own shape.
#[derive(Clone, Copy, Debug)]
pub struct Checks<'a> {
    /// The server's clock, Unix microseconds: events dated more than
    /// `max_clock_skew_secs` after it are refused.
    pub now: i64,
    /// The sensor ids the submitting token may speak for (`None`: any).
    pub sensors: Option<&'a [String]>,
}

/// A batch split into storable events and rejections.
#[derive(Debug, Default)]
pub struct Validated {
    /// The valid events, in batch order.
    pub events: Vec<NewEvent>,
    /// The batch position of each valid event.
    pub positions: Vec<usize>,
    /// The refused events.
    pub rejected: Vec<Rejection>,
}

/// Split a batch into storable events and rejections.
pub fn validate_batch(items: Vec<Value>, cfg: &DashboardConfig, checks: &Checks) -> Validated {
    let mut out = Validated {
        events: Vec::with_capacity(items.len()),
        positions: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    for (index, item) in items.into_iter().enumerate() {
        match validate(item, cfg, checks) {
            Ok(e) => {
                out.events.push(e);
                out.positions.push(index);
            }
            Err((event_id, error)) => out.rejected.push(Rejection {
                index,
                event_id,
                error,
            }),
        }
    }
    out
}

/// Check one event against the event model and the field rules, and apply
/// the prompt policy.
fn validate(
    mut item: Value,
    cfg: &DashboardConfig,
    checks: &Checks,
) -> Result<NewEvent, (Option<String>, String)> {
    let Some(obj) = item.as_object() else {
        return Err((None, "event is not a JSON object".into()));
    };
    if !obj.contains_key("event_id") {
        return suricata::validate(item, cfg, checks);
    }
    let event_id = match obj.get("event_id") {
        Some(Value::String(s)) if s.is_empty() => {
            return Err((None, "event_id is empty".into()));
        }
        Some(Value::String(s)) if s.chars().count() > MAX_ID_CHARS => {
            return Err((
                None,
                format!("event_id is longer than {MAX_ID_CHARS} characters"),
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err((None, "event_id is not a string".into())),
        None => return Err((None, "event_id is missing".into())),
    };
    let fail = |error: String| (Some(event_id.clone()), error);
    check_fields(obj).map_err(fail)?;
    if let Some(sev) = obj.get("alert").and_then(|a| a.get("severity"))
        && sev.as_u64().is_none_or(|s| !(1..=3).contains(&s))
    {
        return Err(fail("alert.severity must be 1, 2 or 3".into()));
    }
    // Read from the tree in place, not from a deep copy of it.
    let event = <eve::Event as serde::Deserialize>::deserialize(&item)
        .map_err(|e| fail(format!("not a valid event: {e}")))?;
    check_event(&event, cfg, checks).map_err(fail)?;
    if let Some(evidence) = item.get_mut("evidence") {
        apply_prompt_policy(evidence, cfg, false);
    }
    let body = serde_json::to_string(&item).map_err(|e| fail(format!("re-encoding: {e}")))?;
    Ok(NewEvent::from_eve(&event, body))
}

/// Rules on the JSON fields the event model's types would refuse with a
/// message that does not name the field.
fn check_fields(obj: &serde_json::Map<String, Value>) -> Result<(), String> {
    match obj.get("timestamp") {
        Some(Value::String(s)) if eve::Timestamp::parse(s).is_ok() => {}
        Some(_) => {
            return Err(
                "timestamp is not a time (Suricata's 2026-11-21T10:00:00.123456+0000 or RFC 3339)"
                    .into(),
            );
        }
        None => return Err("timestamp is missing".into()),
    }
    for key in ["src_ip", "dest_ip"] {
        if let Some(v) = obj.get(key)
            && v.as_str().and_then(|s| s.parse::<IpAddr>().ok()).is_none()
        {
            return Err(format!("{key} is not an IP address"));
        }
    }
    for key in ["src_port", "dest_port"] {
        if let Some(v) = obj.get(key)
            && v.as_u64().is_none_or(|p| p > u64::from(u16::MAX))
        {
            return Err(format!("{key} is not a port number (0-65535)"));
        }
    }
    match obj.get("sensor_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ID_CHARS => {}
        Some(_) => {
            return Err(format!(
                "sensor_id is not a string of 1-{MAX_ID_CHARS} characters"
            ));
        }
    }
    Ok(())
}

/// Refuse a time more than `max_clock_skew_secs` after the server's clock.
fn not_future(
    what: &str,
    t: &eve::Timestamp,
    cfg: &DashboardConfig,
    checks: &Checks,
) -> Result<(), String> {
    let skew = i64::try_from(cfg.max_clock_skew_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    if t.unix_micros() > checks.now.saturating_add(skew) {
        Err(format!(
            "{what} {t} is more than {} s ahead of the server's clock",
            cfg.max_clock_skew_secs
        ))
    } else {
        Ok(())
    }
}

/// Refuse a sensor the submitting token may not speak for.
fn sensor_allowed(sensor: Option<&str>, checks: &Checks) -> Result<(), String> {
    let Some(allowed) = checks.sensors else {
        return Ok(());
    };
    match sensor {
        Some(id) if allowed.iter().any(|a| a == id) => Ok(()),
        Some(id) => Err(format!(
            "sensor_id {id:?} is not one this token may submit events for"
        )),
        None => Err("sensor_id is missing (this token is bound to sensors)".into()),
    }
}

/// Refuse a counter the store's signed integers cannot hold.
fn counter(what: &str, n: u64) -> Result<(), String> {
    if n > MAX_COUNTER {
        Err(format!(
            "{what} {n} is out of range (at most {MAX_COUNTER})"
        ))
    } else {
        Ok(())
    }
}

/// Longest producer version a `stats` event may carry.
const MAX_VERSION: usize = 64;

/// A producer's version as the fleet view shows it: short, no control
/// characters (it is attacker-controlled text; pages escape it too).
fn version(v: &str) -> Result<(), String> {
    if v.len() > MAX_VERSION {
        Err(format!(
            "stats.version is {} bytes long (at most {MAX_VERSION})",
            v.len()
        ))
    } else if v.chars().any(char::is_control) {
        Err("stats.version holds a control character".into())
    } else {
        Ok(())
    }
}

/// Rules on the parsed event: counters in range, times in order and not in
/// the future, the sensor one the token may speak for.
fn check_event(e: &eve::Event, cfg: &DashboardConfig, checks: &Checks) -> Result<(), String> {
    not_future("timestamp", &e.timestamp, cfg, checks)?;
    sensor_allowed(e.sensor_id.as_deref(), checks)?;
    match &e.kind {
        EventKind::Alert(a) => {
            if let Some(f) = &a.fileinfo {
                counter("fileinfo.size", f.size)?;
            }
        }
        EventKind::Flow(f) => {
            let r = &f.flow;
            counter("flow.pkts_toserver", r.pkts_toserver)?;
            counter("flow.pkts_toclient", r.pkts_toclient)?;
            counter("flow.bytes_toserver", r.bytes_toserver)?;
            counter("flow.bytes_toclient", r.bytes_toclient)?;
            counter("flow.plaintext_toserver", r.plaintext_toserver.unwrap_or(0))?;
            counter("flow.plaintext_toclient", r.plaintext_toclient.unwrap_or(0))?;
            if let Some(t) = &f.tcp {
                counter("tcp.gap_bytes", t.gap_bytes)?;
            }
            if r.start > r.end {
                return Err(format!(
                    "flow.start {} is after flow.end {}",
                    r.start, r.end
                ));
            }
            not_future("flow.end", &r.end, cfg, checks)?;
        }
        EventKind::Fileinfo(f) => counter("fileinfo.size", f.fileinfo.size)?,
        EventKind::Stats(s) => {
            counter("stats.uptime", s.stats.uptime)?;
            if let Some(v) = &s.stats.version {
                version(v)?;
            }
            for (section, keys) in &s.stats.sections {
                for (key, n) in keys {
                    counter(&format!("stats.{section}.{key}"), *n)?;
                }
            }
        }
    }
    Ok(())
}

/// Counts the elements of a JSON array as its bytes arrive, so a batch with
/// too many events is refused before the rest of the body is read. Counts
/// the commas at the array's top level (outside strings and nested
/// values): a lower bound on the elements whatever the rest holds, exact
/// for a well-formed array.
#[derive(Clone, Debug, Default)]
pub struct BatchScan {
    depth: u32,
    /// The body's top-level value is an array (only its commas count).
    array: bool,
    in_string: bool,
    escaped: bool,
    commas: usize,
}

impl BatchScan {
    /// Feed the next bytes of the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    if self.depth == 0 {
                        self.array = b == b'[';
                    }
                    self.depth = self.depth.saturating_add(1);
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b',' if self.depth == 1 && self.array => self.commas += 1,
                _ => {}
            }
        }
    }

    /// Events seen so far, at least (a comma separates two).
    pub fn at_least(&self) -> usize {
        if self.commas == 0 { 0 } else { self.commas + 1 }
    }
}

/// Truncate or redact prompt text anywhere under `v`: string values (or
/// arrays of strings) of object keys that contain `prompt` (hash-valued keys
/// such as `prompt_sha256` are left alone).
pub fn apply_prompt_policy(v: &mut Value, cfg: &DashboardConfig, under_prompt_key: bool) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let key = k.to_ascii_lowercase();
                let is_prompt =
                    key.contains("prompt") && !key.contains("sha256") && !key.contains("hash");
                apply_prompt_policy(child, cfg, is_prompt);
            }
        }
        Value::Array(a) => {
            for child in a {
                apply_prompt_policy(child, cfg, under_prompt_key);
            }
        }
        Value::String(s) if under_prompt_key => *s = police_prompt(s, cfg),
        _ => {}
    }
}

fn police_prompt(s: &str, cfg: &DashboardConfig) -> String {
    if cfg.redact_prompts {
        let d = Sha256::digest(s.as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        return format!("[redacted sha256:{hex}]");
    }
    if cfg.prompt_max_chars == 0 {
        return "[prompt not stored]".into();
    }
    match s.char_indices().nth(cfg.prompt_max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompts_are_truncated_and_redacted() {
        let mut cfg = DashboardConfig {
            prompt_max_chars: 4,
            ..DashboardConfig::default()
        };
        let mut v = json!({"sample_prompts": ["abcdefgh", "ab"], "prompt_sha256": "0123456789",
                           "nested": {"prompt": "éééééé"}, "score": 0.9});
        apply_prompt_policy(&mut v, &cfg, false);
        assert_eq!(v["sample_prompts"], json!(["abcd…", "ab"]));
        assert_eq!(v["prompt_sha256"], json!("0123456789"));
        assert_eq!(v["nested"]["prompt"], json!("éééé…"));
        assert_eq!(v["score"], json!(0.9));
        cfg.redact_prompts = true;
        let mut v = json!({"prompt": "secret"});
        apply_prompt_policy(&mut v, &cfg, false);
        assert!(
            v["prompt"]
                .as_str()
                .unwrap()
                .starts_with("[redacted sha256:")
        );
        assert!(!v.to_string().contains("secret"));
    }

    #[test]
    fn batch_scan_counts_top_level_elements_only() {
        let mut scan = BatchScan::default();
        scan.feed(br#"[{"a": [1, 2, {"b": "x,y"}], "s": "q\"],"}, "#);
        assert_eq!(scan.at_least(), 2);
        scan.feed(br#"3, "4,5""#);
        assert_eq!(scan.at_least(), 3);
        scan.feed(b"]");
        assert_eq!(scan.at_least(), 3);
        let mut one = BatchScan::default();
        one.feed(b"[{\"a\": 1}]");
        assert_eq!(one.at_least(), 0);
        let mut object = BatchScan::default();
        object.feed(b"{\"a\": 1, \"b\": 2}");
        assert_eq!(object.at_least(), 0);
    }

    #[test]
    fn rejections_say_why() {
        let cfg = DashboardConfig::default();
        let checks = Checks {
            now: 0,
            sensors: None,
        };
        let v = validate_batch(
            vec![
                json!(1),
                json!({"event_id": 5}),
                json!({"event_id": "x", "timestamp": "2026-01-01T00:00:00Z"}),
            ],
            &cfg,
            &checks,
        );
        assert!(v.events.is_empty());
        let bad = v.rejected;
        assert_eq!(bad.len(), 3);
        assert_eq!(bad[2].event_id.as_deref(), Some("x"));
        assert!(
            bad[2].error.contains("not a valid event"),
            "{}",
            bad[2].error
        );
    }
}
