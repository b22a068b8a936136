//! The weightwatch dashboard: an axum server with an authenticated ingest API,
//! a durable store (SQLite, or PostgreSQL shared by several servers) and a
//! triage web UI.
//!
//! Embed it with [`Server::bind`] + [`Server::serve`] (async) or [`serve`]
//! (blocking); administer it with [`admin`]. See `docs/dashboard.md`.
//!
//! A connection is accepted and limited by [`conn`]; a request goes
//! [`server`] (router, security headers) → [`access`] (who
//! is asking, what they may do) → a handler in [`api`] (JSON), [`stream`]
//! (server-sent events), [`exporter`] (metrics) or [`ui`] (pages) → the
//! modules both API and pages use ([`query`], [`triage`], [`respond`],
//! [`ingest`]) →
//! [`store`] (no HTTP below this line). Every handler shares [`state`].

pub mod access;
pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod exporter;
pub mod incidents;
pub mod ingest;
pub mod labels;
pub mod mfa;
pub mod query;
pub mod respond;
pub mod server;
pub mod state;
pub mod store;
pub mod stream;
pub mod throttle;
pub mod tls;
pub mod triage;
pub mod ui;

pub use auth::Scope;
pub use config::DashboardConfig;
pub use error::DashboardError;
pub use server::{ServeOptions, Server, serve, shutdown_signal};
