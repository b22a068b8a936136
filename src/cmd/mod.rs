//! The command line: one module per subcommand, each with its own clap
//! arguments and a `run` function.

mod analyze;
mod bench;
mod canary;
mod capture;
mod demo;
mod fixtures;
mod incidents;
mod index;
mod inspect;
mod labels;
mod model;
mod purge;
mod serve;
mod token;
mod user;

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Watches a mirror port and LLM API logs for model-weight exfiltration and
/// distillation, and serves the alerts to analysts.
#[derive(Parser, Debug)]
#[command(name = "weightwatch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Command-line flags override it.
    /// Default: ./weightwatch.toml when present.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace). WEIGHTWATCH_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sensor: watch a live interface or replay pcap/pcapng files, reassemble
    /// TCP, parse HTTP/TLS/SSH and fingerprint weight-shaped transfers.
    Capture(capture::Args),
    /// Register the lab's own weight files: build a known-weights chunk index.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Name the model format of files (the sensor's parsers, one JSON
    /// object per file): what a file holds before it is registered.
    Inspect(inspect::Args),
    /// Analyzer: flag accounts and clusters that distil the model, from API
    /// request logs (JSONL, Parquet, CSV; gzip/zstd).
    Analyze(analyze::Args),
    /// The analyzer's model: fit it on labelled log sets, show it.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Dashboard: authenticated ingest API, alert store and triage web UI.
    Serve(serve::Args),
    /// Manage dashboard API tokens (printed once; only a hash is stored).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage analyst logins for the dashboard.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Delete an account's data from the dashboard store.
    Purge(purge::Args),
    /// Dashboard incidents: group alerts stored before incidents existed.
    Incidents(incidents::Args),
    /// Export analysts' triage verdicts as labels for the analyzer.
    #[command(subcommand)]
    Labels(labels::LabelsCommand),
    /// The whole loop on the bundled fixtures: capture + analyze into a fresh
    /// store, then serve the dashboard.
    Demo(demo::Args),
    /// Measure throughput (capture engine, detectors, analyzer).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Exfiltration test: upload a synthetic weights file through the
    /// monitored path and check the alert reaches the dashboard in time.
    Canary(canary::Args),
    /// Generate fixtures: pcaps, weight files, labelled API logs.
    #[command(subcommand)]
    Fixtures(fixtures::FixturesCommand),
}

/// Load the configuration and run the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Capture(a) => capture::run(a, config),
        Command::Index(c) => index::run(c, config),
        Command::Inspect(a) => inspect::run(a, config),
        Command::Analyze(a) => analyze::run(a, config),
        Command::Model(c) => model::run(c, config),
        Command::Serve(a) => serve::run(a, config),
        Command::Token(c) => token::run(c, config),
        Command::User(c) => user::run(c, config),
        Command::Purge(a) => purge::run(a, config),
        Command::Incidents(a) => incidents::run(a, config),
        Command::Labels(c) => labels::run(c, config),
        Command::Demo(a) => demo::run(a, config),
        Command::Bench(c) => bench::run(c, config),
        Command::Fixtures(c) => fixtures::run(c, config),
        Command::Canary(a) => canary::run(a, config),
    }
}
