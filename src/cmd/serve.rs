//! `weightwatch serve`: the dashboard.

use crate::config::Config;
use anyhow::Context;

/// Arguments of `weightwatch serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dashboard's database: a SQLite file (created and migrated when
    /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
    /// `[dashboard]`, else weightwatch.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

/// Run the dashboard server until Ctrl-C or SIGTERM.
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let db = config.dashboard.database(args.db.as_deref());
    dashboard::serve(&config.dashboard, &db, &args.listen)
        .with_context(|| format!("serving {db} on {}", args.listen))
}
