//! `weightwatch incidents`: maintenance of the dashboard's incidents.

use crate::config::Config;

/// Arguments of `weightwatch incidents`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Group the alerts stored before incidents existed (in no incident
    /// yet) into incidents, oldest first, as ingest would have; incidents
    /// that exist are kept (with their triage) and joined where the keys
    /// match. Safe next to running servers, and to run again.
    Backfill {
        /// The dashboard's database: a SQLite file or a
        /// `postgres://user@host:port/db` URL [default: `db` in
        /// `[dashboard]`, else weightwatch.db].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<String>,
    },
}

/// Run the subcommand.
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    match args.command {
        Sub::Backfill { db } => {
            let n = dashboard::admin::group_ungrouped_alerts(
                config.dashboard.database(db.as_deref()),
                config.dashboard.incident_window_secs,
            )?;
            eprintln!("grouped {n} alerts that were in no incident");
            Ok(())
        }
    }
}
