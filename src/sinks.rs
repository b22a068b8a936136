//! Sink flags shared by `capture` and `analyze`, and building the sinks.

use crate::config::Config;
use anyhow::Context;
use eve::sink::Fanout;
use eve::sink::eve_file::{EveFileSink, ReopenFlag};
use eve::sink::http::{HttpSink, HttpSinkConfig};

/// Where events go (overrides `[sinks]` in the config).
#[derive(clap::Args, Debug, Default)]
pub struct SinkArgs {
    /// EVE JSON Lines output: a file (appended) or `-` for stdout.
    #[arg(long, value_name = "PATH|-")]
    pub eve: Option<String>,
    /// Rotate the EVE file when it would exceed this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub eve_rotate_bytes: Option<u64>,
    /// Send events to a dashboard at this base URL (batched, spooled to disk).
    #[arg(long, value_name = "URL")]
    pub dashboard: Option<String>,
    /// Ingest token for the dashboard.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WEIGHTWATCH_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Spool directory for events the dashboard has not acknowledged.
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<std::path::PathBuf>,
    /// Trust only this CA certificate (PEM) for an https:// dashboard (a
    /// private CA) instead of the public web roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Build the fan-out of every configured sink, and the `[[actions]]` (a
/// sink that acts on matching alerts). With `reopen`, the EVE file is
/// reopened whenever it is set (the sensor sets it on SIGHUP).
pub fn build(
    args: &SinkArgs,
    config: &Config,
    reopen: Option<&ReopenFlag>,
) -> anyhow::Result<Fanout> {
    let cfg = &config.sinks;
    let mut out = Fanout::new();
    if let Some(path) = args.eve.as_ref().or(cfg.eve.as_ref()) {
        let rotate = args.eve_rotate_bytes.unwrap_or(cfg.eve_rotate_bytes);
        let mut eve = EveFileSink::open(path, Some(rotate), cfg.eve_rotate_keep)?;
        if let Some(flag) = reopen {
            eve = eve.reopen_on(flag.clone());
        }
        out.push(Box::new(eve));
    }
    if let Some(url) = args.dashboard.as_ref().or(cfg.dashboard_url.as_ref()) {
        let token = args
            .token
            .as_ref()
            .or(cfg.dashboard_token.as_ref())
            .context("--dashboard needs an ingest token: --token or WEIGHTWATCH_TOKEN")?;
        let spool_dir = args
            .spool_dir
            .clone()
            .unwrap_or_else(|| cfg.spool_dir.clone());
        let mut http = HttpSinkConfig::new(url.clone(), token.clone(), spool_dir);
        http.spool_max_bytes = cfg.spool_max_bytes;
        http.batch_events = cfg.batch_events;
        http.ca_cert = args.ca_cert.clone().or_else(|| cfg.ca_cert.clone());
        out.push(Box::new(HttpSink::start(http)?));
    }
    if !config.actions.is_empty() {
        let actions = eve::actions::Actions::start(&config.actions, &cfg.spool_dir, None)?;
        out.push(Box::new(actions));
    }
    Ok(out)
}
