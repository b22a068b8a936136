//! End-to-end tests of the `weightwatch` binary (one test binary; a module per area).

mod cli;
mod demo;
mod index;
mod packaging;
