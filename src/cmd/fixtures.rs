//! `weightwatch fixtures`: generate test and demo inputs.

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch fixtures …`
#[derive(clap::Subcommand, Debug)]
pub enum FixturesCommand {
    /// Regenerate the committed pcap fixtures byte for byte (or the large
    /// ones on demand).
    Pcaps {
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "fixtures/pcaps")]
        out: PathBuf,
        /// Also write the large captures (not committed).
        #[arg(long)]
        large: bool,
    },
    /// Write labelled synthetic API request logs plus labels.csv.
    Logs {
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of accounts.
        #[arg(long, default_value_t = 400)]
        accounts: usize,
        /// Days of traffic.
        #[arg(long, default_value_t = 3)]
        days: u32,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Run a fixtures subcommand.
pub fn run(_cmd: FixturesCommand, _config: Config) -> anyhow::Result<()> {
    super::not_built("fixtures", 3)
}
