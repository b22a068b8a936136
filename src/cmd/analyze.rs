//! `weightwatch analyze`: distillation detection over API request logs.

use crate::config::Config;
use crate::sinks::SinkArgs;
use std::path::PathBuf;

/// Arguments of `weightwatch analyze`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Request logs: files or directories of JSONL, Parquet or CSV
    /// (optionally .gz/.zst), in the schema of docs/api-log-schema.md.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Write one row per account: account_id,score,flagged,cluster_id,top_signals.
    #[arg(long, value_name = "FILE")]
    pub scores_out: Option<PathBuf>,
    /// Write the per-account feature table as Parquet.
    #[arg(long, value_name = "FILE")]
    pub features_out: Option<PathBuf>,
    /// Evaluate against labels (CSV account_id,label,scenario): precision,
    /// recall, false-positive rate per benign style, recall per attack style,
    /// time to detect.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

/// Run the analyzer.
pub fn run(_args: Args, _config: Config) -> anyhow::Result<()> {
    super::not_built("analyze", 5)
}
