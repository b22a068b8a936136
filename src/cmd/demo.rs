//! `weightwatch demo`: the whole loop on the bundled fixtures.

use crate::config::Config;
use std::path::PathBuf;

/// Arguments of `weightwatch demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address for the dashboard.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Database for the demo (replaced on each run).
    #[arg(long, value_name = "PATH", default_value = "weightwatch-demo.db")]
    pub db: PathBuf,
    /// Run the pipeline, print the summary and exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
}

/// Run the demo.
pub fn run(_args: Args, _config: Config) -> anyhow::Result<()> {
    super::not_built("demo", 7)
}
