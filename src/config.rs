//! `weightwatch.toml`: one file for every part. Each section belongs to the
//! crate that uses it; unknown keys are an error that names the key.
//! Command-line flags override what the file says.

use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Id written into every event this process produces (default: hostname).
    pub sensor_id: Option<String>,
    /// `[capture]`: engine limits and timeouts.
    pub capture: capture::CaptureConfig,
    /// `[policy]`: internal networks, allowed destinations, upload thresholds.
    pub policy: capture::detect::PolicyConfig,
    /// `[detect]`: detector thresholds.
    pub detect: capture::detect::DetectConfig,
    /// `[analyzer]`: distillation thresholds and weights.
    pub analyzer: analyzer::config::AnalyzerConfig,
    /// `[dashboard]`: server settings.
    pub dashboard: dashboard::config::DashboardConfig,
    /// `[sinks]`: where events go.
    pub sinks: SinkConfig,
    /// `[intel]`: threat-intelligence lists the sensor matches flows against.
    pub intel: capture::detect::intel::IntelConfig,
    /// `[[actions]]`: what to do with matching alerts (webhooks, programs),
    /// run where the alert is made and offered to analysts in the dashboard.
    pub actions: Vec<eve::actions::ActionConfig>,
}

/// `[sinks]`: where events go (flags `--eve`, `--dashboard`, `--token` override).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// EVE JSON Lines output: a path, or `-` for stdout.
    pub eve: Option<String>,
    /// Rotate the EVE file when it would exceed this many bytes (0: never).
    pub eve_rotate_bytes: u64,
    /// Rotated EVE files kept (`eve.json.1` … `.N`).
    pub eve_rotate_keep: usize,
    /// Dashboard base URL, e.g. `http://127.0.0.1:8080`.
    pub dashboard_url: Option<String>,
    /// Ingest token for the dashboard (prefer `WEIGHTWATCH_TOKEN` in the environment).
    pub dashboard_token: Option<String>,
    /// Spool directory for events not yet acknowledged by the dashboard.
    pub spool_dir: PathBuf,
    /// Upper bound of the spool on disk; new events are dropped (counted, warned) beyond it.
    pub spool_max_bytes: u64,
    /// Events per POST.
    pub batch_events: usize,
    /// CA certificate (PEM) trusted for an `https://` dashboard instead of
    /// the public web roots (flag `--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            eve: None,
            eve_rotate_bytes: 0,
            eve_rotate_keep: 5,
            dashboard_url: None,
            dashboard_token: None,
            spool_dir: PathBuf::from("weightwatch-spool"),
            spool_max_bytes: 1 << 30,
            batch_events: 500,
            ca_cert: None,
        }
    }
}

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "weightwatch.toml";

impl Config {
    /// Read `path`, or `./weightwatch.toml` when present, or the defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG).is_file() => PathBuf::from(DEFAULT_CONFIG),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in config {}", path.display()))
    }

    /// Parse TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }

    /// The sensor id: the config's, else the host name, else `weightwatch`.
    pub fn sensor_id(&self) -> String {
        self.sensor_id
            .clone()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "weightwatch".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[sinks]\nevee = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("evee"), "{err:#}");
        let err = Config::parse("bogus = 1\n").unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../weightwatch.example.toml");
        Config::parse(text).expect("the example config is valid");
    }

    #[test]
    fn packaged_config_parses() {
        let text = include_str!("../packaging/weightwatch.toml");
        let config = Config::parse(text).expect("the packaged config is valid");
        assert_eq!(config.capture.stats_interval_secs, 60);
    }
}
