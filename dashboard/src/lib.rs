//! The weightwatch dashboard: an axum server with an authenticated ingest API,
//! a durable SQLite store and a triage web UI.

pub mod config;
