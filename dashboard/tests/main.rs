//! Integration tests (one binary per crate; modules below). Every test runs
//! a real server on 127.0.0.1 port 0 and talks to it over the socket.

mod common;

mod actions;
mod api;
mod browser;
mod connections;
mod durability;
mod eve_input;
mod health;
mod hostile_events;
mod labels;
mod login_limits;
mod metrics;
mod mfa;
mod search;
mod suricata;
mod tls;
mod ui;
mod upgrade;
