//! Fitting a model on labelled log sets and reporting how it holds up:
//! per set (in sample), and leave one attack style out (the style's
//! accounts removed from fitting, then scored), which is the nearest thing
//! to a behaviour nobody has seen yet.

use crate::config::AnalyzerConfig;
use crate::eval::{self, Labels};
use crate::model::{self, FitOptions, Model};
use crate::{AnalyzeError, labelled_inputs, load_and_analyze};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// One labelled log set.
#[derive(Clone, Debug)]
pub struct LabelledSet {
    /// A short name for reports.
    pub name: String,
    /// Log files or directories.
    pub logs: Vec<PathBuf>,
    /// Its labels (`account_id,label,scenario`).
    pub labels: PathBuf,
}

/// The model inputs of one set's labelled accounts (serialisable, so a
/// fitter can keep them between runs instead of re-reading the logs).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SetRows {
    /// The set's name.
    pub name: String,
    /// Inputs, label (`true`: distill) and scenario per account.
    pub rows: Vec<(Vec<f64>, bool, String)>,
    /// The set's peer baselines.
    pub peers: crate::model::inputs::Peers,
}

/// Scores of one set under a model.
#[derive(Clone, Debug)]
pub struct SetScore {
    /// The set's name.
    pub name: String,
    /// Attack and benign accounts.
    pub attacks: usize,
    /// Benign accounts.
    pub benign: usize,
    /// ROC-AUC.
    pub roc_auc: f64,
    /// Recall at the model's threshold.
    pub recall: f64,
    /// Benign false-positive rate at the model's threshold.
    pub fpr: f64,
    /// Recall at FPR 1 % (threshold set on this set's benign accounts).
    pub recall_at_fpr_1pct: f64,
}

/// Recall of one attack style when it was left out of fitting.
#[derive(Clone, Debug)]
pub struct LeftOut {
    /// The attack scenario.
    pub scenario: String,
    /// Its accounts over all sets.
    pub accounts: usize,
    /// Flagged by the model fitted without them, at that model's threshold.
    pub flagged: usize,
}

/// What fitting found.
#[derive(Clone, Debug)]
pub struct TrainingReport {
    /// The fitted model.
    pub model: Model,
    /// Each set in sample.
    pub sets: Vec<SetScore>,
    /// Each check set (scored, not fitted on).
    pub checks: Vec<SetScore>,
    /// Leave-one-style-out, when asked for.
    pub left_out: Vec<LeftOut>,
}

/// Read and analyse a labelled set (with `model`, which only matters for
/// the verdicts, not for the inputs) and return its labelled inputs.
pub fn rows_of(
    set: &LabelledSet,
    cfg: &AnalyzerConfig,
    model: &Model,
) -> Result<SetRows, AnalyzeError> {
    let labels: Labels = eval::read_labels(&set.labels)?;
    let (_, analysis, _) = load_and_analyze(&set.logs, cfg, model)?;
    Ok(SetRows {
        name: set.name.clone(),
        rows: labelled_inputs(&analysis, &labels),
        peers: analysis.peers.clone(),
    })
}

fn fit_rows<'a>(
    rows: impl Iterator<Item = &'a (Vec<f64>, bool, String)>,
    opt: &FitOptions,
) -> Result<Model, model::ModelError> {
    let (mut x, mut y, mut g) = (Vec::new(), Vec::new(), Vec::new());
    for (xi, yi, gi) in rows {
        x.push(xi.clone());
        y.push(*yi);
        g.push(gi.as_str());
    }
    model::fit_grouped(&x, &y, &g, opt)
}

/// Score a set's rows under a model. Account-level: cluster evidence is
/// not part of this table (the full analysis adds it).
pub fn score_set(set: &SetRows, m: &Model) -> SetScore {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (x, y, _) in &set.rows {
        let s = m.score(x, &[]).score;
        if *y { a.push(s) } else { b.push(s) }
    }
    let over = |v: &[f64]| v.iter().filter(|s| **s >= m.threshold).count() as f64;
    SetScore {
        name: set.name.clone(),
        attacks: a.len(),
        benign: b.len(),
        roc_auc: eval::roc_auc(&a, &b),
        recall: if a.is_empty() {
            0.0
        } else {
            over(&a) / a.len() as f64
        },
        fpr: if b.is_empty() {
            0.0
        } else {
            over(&b) / b.len() as f64
        },
        recall_at_fpr_1pct: eval::recall_at_fpr(&a, &b, 0.01),
    }
}

/// Fit one model on all sets; report each set in sample, each of `checks`
/// (not fitted on) and, with `leave_one_out`, each attack style left out
/// of fitting.
pub fn train(
    sets: &[SetRows],
    checks: &[SetRows],
    opt: &FitOptions,
    leave_one_out: bool,
) -> Result<TrainingReport, model::ModelError> {
    let all = || sets.iter().flat_map(|s| s.rows.iter());
    let peers: Vec<_> = sets.iter().map(|s| s.peers.clone()).collect();
    let opt = &FitOptions {
        reference: crate::model::inputs::Peers::mean(&peers),
        ..opt.clone()
    };
    let model = fit_rows(all(), opt)?;
    let scores = sets.iter().map(|s| score_set(s, &model)).collect();
    let mut left_out = Vec::new();
    if leave_one_out {
        let styles: BTreeSet<&str> = all()
            .filter(|(_, y, _)| *y)
            .map(|(_, _, s)| s.as_str())
            .collect();
        for style in styles {
            let m = fit_rows(all().filter(|(_, _, s)| s != style), opt)?;
            let held: Vec<_> = all().filter(|(_, _, s)| s == style).collect();
            left_out.push(LeftOut {
                scenario: style.to_string(),
                accounts: held.len(),
                flagged: held
                    .iter()
                    .filter(|(x, _, _)| m.score(x, &[]).score >= m.threshold)
                    .count(),
            });
        }
    }
    Ok(TrainingReport {
        checks: checks.iter().map(|s| score_set(s, &model)).collect(),
        model,
        sets: scores,
        left_out,
    })
}

impl fmt::Display for TrainingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "threshold {:.4} (benign FPR target {:.3} on the training accounts)",
            self.model.threshold, self.model.target_fpr
        )?;
        writeln!(
            f,
            "{:<28} {:>7} {:>7} {:>8} {:>7} {:>7} {:>12}",
            "set (account scores)", "attack", "benign", "ROC-AUC", "recall", "FPR", "recall@FPR1%"
        )?;
        for (i, s) in self.sets.iter().chain(&self.checks).enumerate() {
            if i == self.sets.len() {
                writeln!(f, "not fitted on:")?;
            }
            writeln!(
                f,
                "{:<28} {:>7} {:>7} {:>8.3} {:>7.3} {:>7.4} {:>12.3}",
                s.name, s.attacks, s.benign, s.roc_auc, s.recall, s.fpr, s.recall_at_fpr_1pct
            )?;
        }
        if !self.left_out.is_empty() {
            writeln!(
                f,
                "\nleave one style out: recall of a style fitted without it"
            )?;
            for l in &self.left_out {
                writeln!(
                    f,
                    "{:<28} {:>4} of {:>4}  {:.3}",
                    l.scenario,
                    l.flagged,
                    l.accounts,
                    l.flagged as f64 / l.accounts.max(1) as f64
                )?;
            }
        }
        Ok(())
    }
}
