//! `weightwatch model`: fit the analyzer's model on labelled log sets, and
//! show a model.

use crate::config::Config;
use analyzer::model::{Balance, FitOptions, Model};
use analyzer::training::{self, Invariance, LabelledSet, Protocol};
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
    /// A labelled set only scored, not fitted on (account level), as
    /// LOGS=LABELS; repeatable.
    #[arg(long = "check", value_name = "LOGS=LABELS")]
    pub checks: Vec<String>,
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
    /// Folds by account (sha256 of the account id) for the threshold: it
    /// is set on the benign accounts' out-of-fold scores (each scored by a
    /// model that did not see it); 0: on the in-sample scores.
    #[arg(long, default_value_t = 5)]
    pub threshold_folds: usize,
    /// With --threshold-folds: the model is the average of the fold
    /// models instead of one fit on all accounts.
    #[arg(long)]
    pub bag: bool,
    /// The threshold keeps every training set's own benign false-positive
    /// rate at most --target-fpr (the highest of the sets' quantiles),
    /// instead of the pooled rate.
    #[arg(long)]
    pub per_set_threshold: bool,
    /// Measure one set (its name as printed, e.g. `requests.jsonl.zst` or
    /// `seed1/requests.jsonl`) out of sample: split in halves by sha256 of
    /// the account id, fitted on one half and the other sets and scored on
    /// the other half (both ways), and left out whole (fitted on the other
    /// sets only: across generators when they come from another one).
    #[arg(long, value_name = "SET")]
    pub holdout: Option<String>,
    /// Keep each weight's sign as its input's prior direction says
    /// (`weightwatch model show` lists them); `false`: any sign.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub monotone: bool,
    /// Which populations weigh the same in fitting: `none` (every account
    /// of a class the same), `attacks` (every attack style the same), or
    /// `both` (every attack style and every benign population).
    #[arg(long, default_value = "none")]
    pub balance: Balance,
    /// Bounded contributions: clip each standardised input to ±C in
    /// fitting and scoring (kept in the model); default: not clipped.
    #[arg(long, value_name = "C")]
    pub clip: Option<f64>,
    /// Keep what the training sets agree on, each set fitted alone first:
    /// `drop` (an input whose weight changes sign between sets gets 0),
    /// `sign` (also every other input keeps the sets' common sign), or
    /// `none`.
    #[arg(long, default_value = "none")]
    pub invariance: Invariance,
    /// Keep the sets' model inputs in this file: read them from it when it
    /// was written for the same --set arguments, else read the logs and
    /// write it (fitting options can then be compared without re-reading).
    #[arg(long, value_name = "FILE")]
    pub rows_cache: Option<PathBuf>,
    /// Sub-models: 1 (one logistic regression) or 2 (that regression and
    /// an output-layer specialist fitted on every benign account and the
    /// distillers it scores above it; an entity's score is the higher
    /// mode's).
    #[arg(long, default_value_t = 1)]
    pub modes: usize,
}

/// What `--rows-cache` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct RowsCache {
    /// The --set arguments the rows were read from.
    sets: Vec<String>,
    /// Each set's labelled inputs.
    rows: Vec<training::SetRows>,
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
            println!("threshold {:.4}", m.threshold);
            if let Some(c) = m.clip {
                println!("standardised inputs clipped at ±{c}");
            }
            println!(
                "{} mode(s); an entity's log-odds are its highest mode's",
                m.modes.len()
            );
            let names: Vec<&str> = m.modes.iter().map(|k| k.name.as_str()).collect();
            println!("{:<28} {}", "input", names.join("  "));
            println!(
                "{:<28} {}",
                "(intercept)",
                m.modes
                    .iter()
                    .map(|k| format!("{:>w$.3}", k.intercept, w = k.name.len()))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
            // Largest weight over the modes first.
            let largest = |i: usize| m.modes.iter().map(|k| k.coef[i].abs()).fold(0.0, f64::max);
            let mut order: Vec<usize> = (0..m.inputs.len()).collect();
            order.sort_by(|&a, &b| largest(b).total_cmp(&largest(a)));
            for i in order {
                let weights: Vec<String> = m
                    .modes
                    .iter()
                    .map(|k| format!("{:>+w$.3}", k.coef[i], w = k.name.len()))
                    .collect();
                println!(
                    "{:<28} {}  (prior direction {:?})",
                    m.inputs[i],
                    weights.join("  "),
                    analyzer::model::inputs::INPUTS[i].direction
                );
            }
            Ok(())
        }
    }
}

fn fit(a: FitArgs, config: Config) -> anyhow::Result<()> {
    if a.clip.is_some_and(|c| !c.is_finite() || c <= 0.0) {
        bail!("--clip must be a positive number");
    }
    let mut sets = Vec::new();
    for s in a.sets.iter().chain(&a.checks) {
        let Some((logs, labels)) = s.split_once('=') else {
            bail!("--set {s}: expected LOGS=LABELS");
        };
        sets.push(LabelledSet {
            name: set_name(logs),
            logs: vec![PathBuf::from(logs)],
            labels: PathBuf::from(labels),
        });
    }
    let all_args: Vec<String> = a.sets.iter().chain(&a.checks).cloned().collect();
    let cached = a.rows_cache.as_ref().and_then(|p| {
        let c: RowsCache = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        (c.sets == all_args).then_some(c.rows)
    });
    let mut rows = match cached {
        Some(rows) => {
            eprintln!("inputs from the rows cache");
            rows
        }
        None => {
            let current = analyzer::configured_model(&config.analyzer)?;
            let mut rows = Vec::new();
            for s in &sets {
                eprintln!("reading {}", s.logs[0].display());
                rows.push(
                    training::rows_of(s, &config.analyzer, &current)
                        .with_context(|| format!("set {}", s.name))?,
                );
            }
            if let Some(p) = &a.rows_cache {
                let c = RowsCache {
                    sets: all_args,
                    rows,
                };
                std::fs::write(p, serde_json::to_vec(&c)?)
                    .with_context(|| format!("writing {}", p.display()))?;
                rows = c.rows;
            }
            rows
        }
    };
    let checks = rows.split_off(a.sets.len());
    let counts: Vec<String> = rows
        .iter()
        .zip(&sets)
        .map(|(r, s)| {
            let pos = r.rows.iter().filter(|x| x.distill).count();
            format!(
                "{} ({} distill, {} benign)",
                s.logs[0].display(),
                pos,
                r.rows.len() - pos
            )
        })
        .collect();
    let each_set = if a.per_set_threshold {
        " in every set"
    } else {
        ""
    };
    let threshold_from = match (a.threshold_folds, a.bag) {
        (0 | 1, _) => "in-sample benign scores".to_string(),
        (k, false) => format!("{k}-fold out-of-fold benign scores (by account)"),
        (k, true) => {
            format!("{k}-fold out-of-fold benign scores (by account); the fold models averaged")
        }
    };
    let mut how = String::new();
    if a.modes > 1 {
        how += &format!(
            "; {} modes (general; output layer: every benign account and the distillers it scores above the general mode)",
            a.modes
        );
    }
    if let Some(c) = a.clip {
        how += &format!("; standardised inputs clipped at ±{c}");
    }
    if a.invariance != Invariance::None {
        how += &format!(
            "; invariance across sets: {}",
            match a.invariance {
                Invariance::Drop => "inputs whose weight changes sign between sets dropped",
                _ => "inputs kept to the sign the sets agree on, the others dropped",
            }
        );
    }
    let protocol = Protocol {
        fit: FitOptions {
            l2: a.l2,
            target_fpr: a.target_fpr,
            prior: None,
            description: format!(
                "weightwatch model fit on {}; threshold at benign FPR {}{each_set} of {threshold_from}{how}",
                counts.join("; "),
                a.target_fpr
            ),
            reference: Default::default(),
            monotone: a.monotone,
            balance: a.balance,
            clip: a.clip,
            signs: Vec::new(),
            modes: a.modes,
        },
        threshold_folds: a.threshold_folds,
        bag: a.bag,
        per_set_threshold: a.per_set_threshold,
        leave_one_out: a.leave_one_out,
        holdout: a.holdout.clone(),
        invariance: a.invariance,
    };
    let report = training::train(&rows, &checks, &protocol)?;
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
