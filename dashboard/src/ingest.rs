//! Validation of ingested events and the prompt policy applied before storage.

use crate::config::DashboardConfig;
use crate::store::NewEvent;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest accepted `event_id`.
pub const MAX_EVENT_ID_CHARS: usize = 200;

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

/// Split a batch into storable events and rejections.
pub fn validate_batch(items: Vec<Value>, cfg: &DashboardConfig) -> (Vec<NewEvent>, Vec<Rejection>) {
    let mut ok = Vec::with_capacity(items.len());
    let mut bad = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match validate(item, cfg) {
            Ok(e) => ok.push(e),
            Err((event_id, error)) => bad.push(Rejection {
                index,
                event_id,
                error,
            }),
        }
    }
    (ok, bad)
}

/// Check one event against the event model and apply the prompt policy.
fn validate(mut item: Value, cfg: &DashboardConfig) -> Result<NewEvent, (Option<String>, String)> {
    let Some(obj) = item.as_object() else {
        return Err((None, "event is not a JSON object".into()));
    };
    let event_id = match obj.get("event_id") {
        Some(Value::String(s)) if s.is_empty() => {
            return Err((None, "event_id is empty".into()));
        }
        Some(Value::String(s)) if s.chars().count() > MAX_EVENT_ID_CHARS => {
            return Err((
                None,
                format!("event_id is longer than {MAX_EVENT_ID_CHARS} characters"),
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err((None, "event_id is not a string".into())),
        None => return Err((None, "event_id is missing".into())),
    };
    let event: eve::Event = serde_json::from_value(item.clone())
        .map_err(|e| (Some(event_id.clone()), format!("not a valid event: {e}")))?;
    if let Some(evidence) = item.get_mut("evidence") {
        apply_prompt_policy(evidence, cfg, false);
    }
    let body = serde_json::to_string(&item)
        .map_err(|e| (Some(event_id.clone()), format!("re-encoding: {e}")))?;
    Ok(NewEvent { event, body })
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
    fn rejections_say_why() {
        let cfg = DashboardConfig::default();
        let (ok, bad) = validate_batch(
            vec![json!(1), json!({"event_id": 5}), json!({"event_id": "x"})],
            &cfg,
        );
        assert!(ok.is_empty());
        assert_eq!(bad.len(), 3);
        assert_eq!(bad[2].event_id.as_deref(), Some("x"));
        assert!(
            bad[2].error.contains("not a valid event"),
            "{}",
            bad[2].error
        );
    }
}
