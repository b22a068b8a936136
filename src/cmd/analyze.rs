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
    /// Refit the model on these labels (account_id,label,scenario — e.g.
    /// analysts' verdicts from `weightwatch labels export`) before scoring;
    /// the refit shrinks toward the model in use.
    #[arg(long, value_name = "FILE")]
    pub fit_labels: Option<PathBuf>,
    /// Write the refitted model here (use it with `[analyzer] model` or
    /// --model).
    #[arg(long, value_name = "FILE", requires = "fit_labels")]
    pub model_out: Option<PathBuf>,
    /// Use this model file instead of `[analyzer] model` / the bundled one.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// With --labels: skip the time-to-detect replay (it re-analyses every
    /// prefix of the input).
    #[arg(long)]
    pub no_replay: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

/// Run the analyzer.
pub fn run(args: Args, mut config: Config) -> anyhow::Result<()> {
    if let Some(m) = &args.model {
        config.analyzer.model = m.display().to_string();
    }
    let mut sink = crate::sinks::build(&args.sinks, &config, None)?;
    let opts = analyzer::AnalyzeOptions {
        logs: args.logs,
        scores_out: args.scores_out,
        features_out: args.features_out,
        labels: args.labels,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        sensor_id: Some(config.sensor_id()),
        fit_labels: args.fit_labels,
        model_out: args.model_out,
        no_replay: args.no_replay,
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
