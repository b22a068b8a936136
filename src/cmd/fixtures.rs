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
pub fn run(cmd: FixturesCommand, _config: Config) -> anyhow::Result<()> {
    match cmd {
        FixturesCommand::Pcaps { out, large } => pcaps(&out, large),
        FixturesCommand::Logs { .. } => super::not_built("fixtures logs", 3),
    }
}

/// `weightwatch fixtures pcaps`: write every catalog capture and its
/// `.expect.json` sidecar into `out` (the large ones only with `--large`).
fn pcaps(out: &std::path::Path, large: bool) -> anyhow::Result<()> {
    let written = fixtures::catalog::write_all(out, large)
        .map_err(|e| anyhow::anyhow!("writing fixtures into {}: {e}", out.display()))?;
    for p in &written {
        println!("{}", p.display());
    }
    eprintln!("{} captures written to {}", written.len(), out.display());
    Ok(())
}
