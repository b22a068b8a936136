//! `weightwatch index`: the known-weights index.

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch index …`
#[derive(clap::Subcommand, Debug)]
pub enum IndexCommand {
    /// Cut weight files into content-defined chunks and store compact chunk
    /// fingerprints for `capture --index`.
    Build {
        /// Weight files (or directories of them) to register.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where to write the index.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
    },
    /// Print what an index holds: files, sizes, chunk counts.
    Show {
        /// The index file.
        #[arg(value_name = "FILE")]
        index: PathBuf,
    },
}

/// Run an index subcommand.
pub fn run(_cmd: IndexCommand, _config: Config) -> anyhow::Result<()> {
    super::not_built("index", 4)
}
