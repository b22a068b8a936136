//! End-to-end tests of the `weightwatch` binary (one test binary; a module per area).

mod actions;
mod budgets;
mod canary;
mod capture_cli;
mod cli;
mod demo;
mod incidents;
mod index;
mod inspect;
mod intel;
mod packaging;
#[path = "../dashboard/tests/pg_cluster.rs"]
#[allow(
    dead_code,
    reason = "the dashboard's tests' PostgreSQL cluster; this binary uses part of it"
)]
mod pg_cluster;
mod replicas;
mod tls;
