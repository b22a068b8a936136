//! `weightwatch purge`: delete an account's data on request.

use crate::config::Config;
use std::path::PathBuf;

/// Arguments of `weightwatch purge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The account whose alerts, features and stored prompts are deleted.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The dashboard's database.
    #[arg(long, value_name = "PATH", default_value = "weightwatch.db")]
    pub db: PathBuf,
}

/// Run the purge.
pub fn run(args: Args, _config: Config) -> anyhow::Result<()> {
    let c = dashboard::admin::purge_account(&args.db, &args.account)?;
    eprintln!(
        "purged account: {} alerts deleted, {} cluster alerts rewritten",
        c.alerts, c.clusters_rewritten
    );
    Ok(())
}
