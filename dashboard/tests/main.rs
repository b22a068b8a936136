//! Integration tests (one binary per crate; modules below). Every test runs
//! a real server on 127.0.0.1 port 0 and talks to it over the socket.
//!
//! The store and API tests run once per store: `sqlite::…` on a SQLite file,
//! `postgres::…` on a real PostgreSQL the tests start themselves
//! (`pg_cluster`: one cluster per run, a fresh database per test). Each test
//! module reads which one from `super::STORE`.

#![allow(
    clippy::duplicate_mod,
    reason = "each store/API test file is compiled once per store (sqlite::, postgres::)"
)]

mod common;
mod pg_cluster;

mod browser;
mod connections;
mod tls;

#[path = "on_sqlite.rs"]
mod sqlite;

#[path = "on_postgres.rs"]
mod postgres;
