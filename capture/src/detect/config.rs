//! The `[policy]` and `[detect]` sections of `weightwatch.toml`.

use serde::Deserialize;

/// Egress policy: what is ours and where uploads may go (deny by default).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Our side: CIDRs of internal hosts. Bytes from these to anything outside
    /// them are egress.
    pub internal_networks: Vec<String>,
    /// Destinations uploads may go to: CIDRs (`203.0.113.0/24`) and name
    /// suffixes matched against TLS SNI / HTTP Host (`.backup.corp.example`
    /// matches that name and every name under it). Everything else is denied.
    pub allowed_destinations: Vec<String>,
    /// Alert when one flow, or one (internal host, destination) pair within
    /// `window_secs`, uploads more than this many bytes to a destination not
    /// allowed.
    pub upload_alert_bytes: u64,
    /// Length of the rolling per-(host, destination) window, seconds.
    pub window_secs: u64,
    /// Upper bound on (host, destination) pairs tracked at once; the oldest
    /// idle ones are dropped beyond it.
    pub max_tracked_pairs: usize,
    /// Egress byte budgets per internal host and per (host, destination)
    /// over rolling windows (`[[policy.budgets]]`); none by default.
    pub budgets: Vec<super::budget::BudgetConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            internal_networks: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
                .map(String::from)
                .to_vec(),
            allowed_destinations: Vec::new(),
            upload_alert_bytes: 100 * 1024 * 1024,
            window_secs: 3600,
            max_tracked_pairs: 100_000,
            budgets: Vec::new(),
        }
    }
}

/// Detector thresholds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Detectors switched off by name: `format`, `tensor_stats`,
    /// `known_weights`, `egress_flow`, `egress_window`, `size_match`.
    pub disabled: Vec<String>,
    /// Objects (by header-declared, framing-declared or seen size) smaller
    /// than this raise no format alert.
    pub min_object_bytes: u64,
    /// Bytes of each object's start buffered for format fingerprints.
    pub format_scan_bytes: u64,
    /// Objects declared smaller than this are not examined by tensor statistics.
    pub stats_min_bytes: u64,
    /// Bytes per tensor-statistics window.
    pub stats_window_bytes: u64,
    /// Distance between the starts of consecutive windows.
    pub stats_stride_bytes: u64,
    /// Windows that must agree on one dtype before alerting.
    pub stats_windows_required: u32,
    /// Windows examined per object at most (then the scan gives up).
    pub stats_max_windows: u32,
    /// Known weights: matched chunks of one registered file needed to alert.
    pub known_min_chunks: u32,
    /// Known weights: objects with fewer matched chunks still count toward
    /// their sending host's tally of the file for this long (seconds, from
    /// the first); once the host has `known_min_chunks` distinct chunks of
    /// the file, its objects alert (0: no per-host tally).
    pub known_host_window_secs: u64,
    /// Known weights: an object's last partial chunk and its first bytes
    /// are kept per (sender, receiver) for this long (seconds, between the
    /// objects' starts) to be stitched to the pair's previous and next
    /// object, so the chunk spanning the cut between two requests is
    /// matched whole (0: no stitching).
    pub known_stitch_secs: u64,
    /// Known weights: bytes kept for stitching at most, all pairs together
    /// (at most one maximum chunk a piece); the oldest pairs go first.
    pub known_stitch_bytes: usize,
    /// Known weights: alert while the object is still running once this many
    /// bytes matched (otherwise at its end, with the final coverage).
    pub known_early_alert_bytes: u64,
    /// Known weights: every byte of an object's first this-many bytes is
    /// chunked and looked up; beyond it only sampled windows are.
    pub known_full_scan_bytes: u64,
    /// Known weights: bytes per sampled window beyond the full-scan prefix.
    pub known_window_bytes: u64,
    /// Known weights: distance between the starts of consecutive sampled
    /// windows (equal to `known_window_bytes`: every byte is scanned).
    pub known_window_stride_bytes: u64,
    /// Size match: absolute tolerance in bytes (HTTP headers, framing).
    pub size_match_tolerance_bytes: u64,
    /// Size match: relative tolerance (record-overhead estimation error).
    pub size_match_tolerance_ratio: f64,
    /// Size match: registered files smaller than this are not compared.
    pub size_match_min_bytes: u64,
    /// Size match: an upload whose plaintext total stayed within tolerance of
    /// a registered size for this long (seen by two progress calls) is
    /// reported before the flow ends, even if the peer did not answer.
    pub size_match_quiet_secs: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            disabled: Vec::new(),
            min_object_bytes: 64 * 1024,
            format_scan_bytes: 1024 * 1024,
            stats_min_bytes: 192 * 1024,
            stats_window_bytes: 64 * 1024,
            stats_stride_bytes: 128 * 1024,
            stats_windows_required: 2,
            stats_max_windows: 16,
            known_min_chunks: 2,
            known_host_window_secs: 24 * 3600,
            known_stitch_secs: 300,
            known_stitch_bytes: 64 << 20,
            known_early_alert_bytes: 64 * 1024 * 1024,
            known_full_scan_bytes: 4 * 1024 * 1024,
            known_window_bytes: 512 * 1024,
            known_window_stride_bytes: 8 * 1024 * 1024,
            size_match_tolerance_bytes: 16 * 1024,
            size_match_tolerance_ratio: 0.002,
            size_match_min_bytes: 1024 * 1024,
            size_match_quiet_secs: 5,
        }
    }
}

/// Every detector name, for validating `disabled`.
pub const DETECTOR_NAMES: [&str; 8] = [
    "format",
    "encoded",
    "tensor_stats",
    "known_weights",
    "egress_flow",
    "egress_window",
    "egress_budget",
    "size_match",
];

impl DetectConfig {
    /// Check ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(d) = self
            .disabled
            .iter()
            .find(|d| !DETECTOR_NAMES.contains(&d.as_str()))
        {
            return Err(format!(
                "detect.disabled: unknown detector {d:?} (known: {DETECTOR_NAMES:?})"
            ));
        }
        if !(4096..=64 << 20).contains(&self.format_scan_bytes) {
            return Err("detect.format_scan_bytes must be between 4096 and 64 MiB".into());
        }
        if !(4096..=16 << 20).contains(&self.stats_window_bytes) {
            return Err("detect.stats_window_bytes must be between 4096 and 16 MiB".into());
        }
        if self.stats_stride_bytes < self.stats_window_bytes {
            return Err("detect.stats_stride_bytes must be at least stats_window_bytes".into());
        }
        if self.stats_windows_required == 0 || self.stats_max_windows < self.stats_windows_required
        {
            return Err("detect.stats_windows_required must be 1..=stats_max_windows".into());
        }
        if self.known_min_chunks == 0 {
            return Err("detect.known_min_chunks must be at least 1".into());
        }
        if self.known_stitch_secs > 0 && !(1 << 20..=1 << 32).contains(&self.known_stitch_bytes) {
            return Err("detect.known_stitch_bytes must be between 1 MiB and 4 GiB".into());
        }
        if !(256 << 10..=1 << 30).contains(&self.known_window_bytes) {
            return Err("detect.known_window_bytes must be between 256 KiB and 1 GiB".into());
        }
        if self.known_window_stride_bytes < self.known_window_bytes {
            return Err(
                "detect.known_window_stride_bytes must be at least known_window_bytes".into(),
            );
        }
        if !(0.0..0.5).contains(&self.size_match_tolerance_ratio) {
            return Err("detect.size_match_tolerance_ratio must be in [0, 0.5)".into());
        }
        Ok(())
    }

    /// Whether detector `name` is on.
    pub fn enabled(&self, name: &str) -> bool {
        !self.disabled.iter().any(|d| d == name)
    }
}
