//! The `[dashboard]` section of `weightwatch.toml`.

use serde::Deserialize;

/// Dashboard settings (documented in `docs/configuration.md`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {}
