//! The same store and API tests on PostgreSQL (`pg_cluster`), and
//! replicas: several servers on one database.

pub const STORE: crate::common::Backend = crate::common::Backend::Postgres;

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
#[path = "pg_deletes.rs"]
mod pg_deletes;
#[path = "pg_tls.rs"]
mod pg_tls;
#[path = "replicas.rs"]
mod replicas;
#[path = "search.rs"]
mod search;
#[path = "suricata.rs"]
mod suricata;
#[path = "ui.rs"]
mod ui;
#[path = "upgrade.rs"]
mod upgrade;
