//! End-to-end tests of the `weightwatch` binary (one test binary; a module per area).

mod capture_cli;
mod cli;
mod demo;
mod index;
mod inspect;
mod packaging;
