//! `weightwatch model`: fit the analyzer's model on labelled log sets, and
//! show a model.

use crate::config::Config;
use analyzer::model::{FitOptions, Model};
use analyzer::training::{self, LabelledSet};
use anyhow::{Context, bail};
use std::path::PathBuf;

/// `weightwatch model …`
#[derive(clap::Subcommand, Debug)]
pub enum ModelCommand {
    /// Fit a model from scratch on one or more labelled log sets and report
    /// each set in sample and (with --leave-one-out) each attack style
    /// left out of fitting.
    Fit(FitArgs),
    /// Print a model's inputs and weights (default: the configured one).
    Show {
        /// A model file; default: `[analyzer] model`, else the bundled one.
        file: Option<PathBuf>,
    },
}

/// Arguments of `weightwatch model fit`.
#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// A labelled set as LOGS=LABELS (LOGS: a file or directory of request
    /// logs; LABELS: account_id,label,scenario). Repeat for several sets;
    /// each set's peer groups are its own accounts.
    #[arg(long = "set", required = true, value_name = "LOGS=LABELS")]
    pub sets: Vec<String>,
    /// Where to write the model (JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Ridge penalty on the standardised weights.
    #[arg(long, default_value_t = 10.0)]
    pub l2: f64,
    /// Benign false-positive rate the threshold is chosen for (training
    /// accounts).
    #[arg(long, default_value_t = 0.005)]
    pub target_fpr: f64,
    /// Also fit once per attack style without it and report its recall.
    #[arg(long)]
    pub leave_one_out: bool,
}

/// Run `weightwatch model …`.
pub fn run(cmd: ModelCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Fit(a) => fit(a, config),
        ModelCommand::Show { file } => {
            let m = match file {
                Some(f) => Model::load(&f)?,
                None => analyzer::configured_model(&config.analyzer)?,
            };
            println!("fitted on: {}", m.fitted_on);
            println!(
                "threshold {:.4}, intercept {:+.3}",
                m.threshold, m.intercept
            );
            let mut rows: Vec<_> = m.inputs.iter().zip(&m.coef).collect();
            rows.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            for (name, w) in rows {
                println!("{name:<28} {w:+.3}");
            }
            Ok(())
        }
    }
}

fn fit(a: FitArgs, config: Config) -> anyhow::Result<()> {
    let mut sets = Vec::new();
    for s in &a.sets {
        let Some((logs, labels)) = s.split_once('=') else {
            bail!("--set {s}: expected LOGS=LABELS");
        };
        sets.push(LabelledSet {
            name: set_name(logs),
            logs: vec![PathBuf::from(logs)],
            labels: PathBuf::from(labels),
        });
    }
    let current = analyzer::configured_model(&config.analyzer)?;
    let mut rows = Vec::new();
    for s in &sets {
        eprintln!("reading {}", s.logs[0].display());
        rows.push(
            training::rows_of(s, &config.analyzer, &current)
                .with_context(|| format!("set {}", s.name))?,
        );
    }
    let counts: Vec<String> = rows
        .iter()
        .zip(&sets)
        .map(|(r, s)| {
            let pos = r.rows.iter().filter(|x| x.1).count();
            format!(
                "{} ({} distill, {} benign)",
                s.logs[0].display(),
                pos,
                r.rows.len() - pos
            )
        })
        .collect();
    let opt = FitOptions {
        l2: a.l2,
        target_fpr: a.target_fpr,
        prior: None,
        description: format!("weightwatch model fit on {}", counts.join("; ")),
        reference: Default::default(),
    };
    let report = training::train(&rows, &opt, a.leave_one_out)?;
    report.model.save(&a.out)?;
    println!("{report}");
    eprintln!("model written to {}", a.out.display());
    Ok(())
}

/// A short name for a set: the file name, with its folder when the file
/// name alone says nothing (`n1/requests.jsonl`).
fn set_name(logs: &str) -> String {
    let p = PathBuf::from(logs);
    let file = p
        .file_name()
        .map_or(logs.to_string(), |n| n.to_string_lossy().into_owned());
    match p.parent().and_then(|d| d.file_name()) {
        Some(dir) if file.starts_with("requests") => {
            format!("{}/{}", dir.to_string_lossy(), file)
        }
        _ => file,
    }
}
