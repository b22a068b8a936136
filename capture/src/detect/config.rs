//! The `[policy]` and `[detect]` sections of `weightwatch.toml`.

use serde::Deserialize;

/// Egress policy: what is ours and where uploads may go (deny by default).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {}

/// Detector thresholds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {}
