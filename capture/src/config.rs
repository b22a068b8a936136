//! The `[capture]` section of `weightwatch.toml`: engine limits and timeouts.

use serde::Deserialize;

/// Engine settings (documented in `docs/configuration.md`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {}
