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
mod tls;
