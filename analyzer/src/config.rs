//! The `[analyzer]` section of `weightwatch.toml`.

use serde::Deserialize;

/// Analyzer thresholds and weights (documented in `docs/configuration.md`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzerConfig {}
