//! `weightwatch purge`: delete an account's data on request.

use crate::config::Config;

/// Arguments of `weightwatch purge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The account whose alerts, features and stored prompts are deleted.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The dashboard's database: a SQLite file (created and migrated when
    /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
    /// `[dashboard]`, else weightwatch.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
}

/// Run the purge.
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let c = dashboard::admin::purge_account(
        config.dashboard.database(args.db.as_deref()),
        &args.account,
    )?;
    eprintln!(
        "purged account: {} alerts deleted, {} cluster alerts rewritten",
        c.alerts, c.clusters_rewritten
    );
    Ok(())
}
