//! The weightwatch dashboard: an axum server with an authenticated ingest API,
//! a durable SQLite store and a triage web UI.
//!
//! Embed it with [`Server::bind`] + [`Server::serve`] (async) or [`serve`]
//! (blocking); administer it with [`admin`]. See `docs/dashboard.md`.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod exporter;
pub mod ingest;
pub mod server;
pub mod store;
pub mod stream;
pub mod ui;

pub use auth::Scope;
pub use config::DashboardConfig;
pub use error::DashboardError;
pub use server::{Server, serve, shutdown_signal};
