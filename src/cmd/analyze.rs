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
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let mut sink = crate::sinks::build(&args.sinks, &config)?;
    let opts = analyzer::AnalyzeOptions {
        logs: args.logs,
        scores_out: args.scores_out,
        features_out: args.features_out,
        labels: args.labels,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        sensor_id: Some(config.sensor_id()),
    };
    let report = analyzer::run(&opts, &config.analyzer, &mut sink);
    // Deliver what was emitted even when the run failed part-way.
    let closed = eve::EventSink::close(&mut sink);
    let report = report?;
    closed?;
    eprintln!("{}", report.summary());
    if let Some(ev) = &report.evaluation {
        println!("{ev}");
    }
    Ok(())
}
