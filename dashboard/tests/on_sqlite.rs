//! The store and API tests on SQLite, and what only SQLite has.

pub const STORE: crate::common::Backend = crate::common::Backend::Sqlite;

#[path = "actions.rs"]
mod actions;
#[path = "api.rs"]
mod api;
#[path = "durability.rs"]
mod durability;
#[path = "eve_input.rs"]
mod eve_input;
#[path = "fleet.rs"]
mod fleet;
#[path = "health.rs"]
mod health;
#[path = "hostile_events.rs"]
mod hostile_events;
#[path = "incidents.rs"]
mod incidents;
#[path = "labels.rs"]
mod labels;
#[path = "login_limits.rs"]
mod login_limits;
#[path = "metrics.rs"]
mod metrics;
#[path = "mfa.rs"]
mod mfa;
#[path = "search.rs"]
mod search;
#[path = "search_sqlite.rs"]
mod search_sqlite;
#[path = "suricata.rs"]
mod suricata;
#[path = "ui.rs"]
mod ui;
#[path = "upgrade.rs"]
mod upgrade;
#[path = "upgrade_sqlite.rs"]
mod upgrade_sqlite;
