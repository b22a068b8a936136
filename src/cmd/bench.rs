//! `weightwatch bench`: throughput measurements (benchmarks, never tests).

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch bench …`
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Capture engine and detectors: packets/s, MB/s, Gbit/s for one and N
    /// workers, and peak memory, on a pcap read from page cache.
    Capture {
        /// The pcap to replay.
        file: PathBuf,
        /// Worker counts to measure (default: 1 and the number of cores).
        #[arg(long, value_name = "N", num_args = 1..)]
        workers: Vec<usize>,
    },
    /// Analyzer: rows/s and peak memory of the whole analysis.
    Analyze {
        /// Request logs to analyze.
        #[arg(num_args = 1.., required = true)]
        logs: Vec<PathBuf>,
    },
}

/// Run a benchmark.
pub fn run(_cmd: BenchCommand, _config: Config) -> anyhow::Result<()> {
    super::not_built("bench", 3)
}
