//! One `[[actions]]` entry of `weightwatch.toml`.

use super::ActionError;
use crate::event::AlertCategory;
use serde::Deserialize;
use std::path::PathBuf;

/// One `[[actions]]` entry: which alerts, and what to do with them (exactly
/// one of `webhook` and `command`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    /// Name used in logs, the audit log and the dashboard's action buttons.
    pub name: String,
    /// POST the alert's JSON (or, run from the dashboard on an incident,
    /// the incident's) to this URL (`https://` unless the host is a
    /// loopback address).
    #[serde(default)]
    pub webhook: Option<String>,
    /// Environment variable holding the webhook's HMAC-SHA256 key; the
    /// signature goes in `X-Weightwatch-Signature: sha256=<hex>`.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Run this program (no shell) with the alert's (or incident's) JSON on
    /// standard input. Arguments may hold `{dest_ip}`, `{src_ip}`,
    /// `{dest_port}`, `{account_id}`, `{category}`, `{event_id}`, replaced
    /// by the alert's values (an incident has `src_ip`, and `dest_ip` or
    /// `account_id` when it has one); a subject without the value is
    /// skipped (counted).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Alert categories acted on (empty: every category).
    #[serde(default)]
    pub categories: Vec<AlertCategory>,
    /// Least severe alert acted on: 1 only the highest, 3 every alert.
    #[serde(default = "default_min_severity")]
    pub min_severity: u8,
    /// At most this many runs per minute (a token bucket of this size,
    /// refilled evenly); 0 means no limit.
    #[serde(default = "default_max_per_minute")]
    pub max_per_minute: u32,
    /// Alerts waiting for the action's thread(s); beyond, new ones are
    /// dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Command: seconds before the program is killed.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Command: programs running at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Webhook: spool directory (default: `<[sinks] spool_dir>/action-<name>`).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Webhook: upper bound of the spool on disk.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
}

fn default_min_severity() -> u8 {
    3
}
fn default_max_per_minute() -> u32 {
    60
}
fn default_queue() -> usize {
    1000
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_concurrency() -> usize {
    2
}
fn default_spool_max_bytes() -> u64 {
    64 << 20
}

impl ActionConfig {
    /// An action called `name` with every default and no target (set
    /// `webhook` or `command`).
    pub fn named(name: impl Into<String>) -> Self {
        ActionConfig {
            name: name.into(),
            webhook: None,
            secret_env: None,
            command: None,
            categories: Vec::new(),
            min_severity: default_min_severity(),
            max_per_minute: default_max_per_minute(),
            queue: default_queue(),
            timeout_secs: default_timeout_secs(),
            concurrency: default_concurrency(),
            spool_dir: None,
            spool_max_bytes: default_spool_max_bytes(),
        }
    }

    /// Check the entry is consistent.
    pub(super) fn check(&self) -> Result<(), ActionError> {
        let bad = |problem: &str| {
            Err(ActionError::Config {
                name: self.name.clone(),
                problem: problem.to_string(),
            })
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("name must be non-empty letters, digits, '-' or '_'");
        }
        match (&self.webhook, &self.command) {
            (Some(_), Some(_)) => return bad("give either webhook or command, not both"),
            (None, None) => {
                return bad("give webhook = \"https://…\" or command = [\"program\", …]");
            }
            (None, Some(c)) if c.is_empty() || c[0].is_empty() => {
                return bad("command needs at least the program");
            }
            (Some(url), None) => {
                let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
                    .iter()
                    .any(|p| url.starts_with(p));
                if !url.starts_with("https://") && !loopback {
                    return bad("webhook must be https:// (http:// only to a loopback address)");
                }
                if self.secret_env.is_none() {
                    return bad("a webhook needs secret_env, the variable holding its signing key");
                }
            }
            _ => {}
        }
        if let Some(var) = &self.secret_env
            && std::env::var_os(var).is_none_or(|v| v.is_empty())
        {
            return bad(&format!(
                "the environment variable {var} (secret_env) is not set"
            ));
        }
        if !(1..=3).contains(&self.min_severity) {
            return bad("min_severity must be 1, 2 or 3");
        }
        if self.queue == 0 || self.concurrency == 0 || self.timeout_secs == 0 {
            return bad("queue, concurrency and timeout_secs must be at least 1");
        }
        Ok(())
    }
}
