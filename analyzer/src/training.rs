//! Fitting a model on labelled log sets and reporting how it holds up:
//! per set (in sample); leave one attack style out (the style's accounts
//! removed from fitting, then scored), which is the nearest thing to a
//! behaviour nobody has seen yet; and one set held out (split in halves by
//! account, and left out whole), which is the nearest thing to other
//! accounts, or another generator, the model was not fitted on.

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

/// One labelled account's model inputs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LabelledRow {
    /// The account (its hash decides its fold and its half in a split).
    pub account: String,
    /// Its model inputs ([`crate::model::inputs::INPUTS`] order).
    pub inputs: Vec<f64>,
    /// `true`: labelled distill.
    pub distill: bool,
    /// Its scenario (attack style or benign population).
    pub scenario: String,
}

/// The model inputs of one set's labelled accounts (serialisable, so a
/// fitter can keep them between runs instead of re-reading the logs).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SetRows {
    /// The set's name.
    pub name: String,
    /// One row per labelled account.
    pub rows: Vec<LabelledRow>,
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
    /// The threshold of the model that scored it.
    pub threshold: f64,
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

/// How the fitter is run (beyond the regression's own [`FitOptions`]).
#[derive(Clone, Debug, Default)]
pub struct Protocol {
    /// The regression's options (`target_fpr` is the threshold's target).
    pub fit: FitOptions,
    /// Folds by account for the threshold: with `k >= 2` the threshold is
    /// the `target_fpr` quantile of the benign accounts' *out-of-fold*
    /// scores (each scored by the model fitted on the other folds), not of
    /// the in-sample scores, which are optimistically low; `0`: in sample.
    pub threshold_folds: usize,
    /// With folds: ship the average of the fold models (their log-odds
    /// averaged, an exact linear model) instead of one fit on all rows.
    pub bag: bool,
    /// The threshold is the highest of each training set's own benign
    /// quantile, so that no set's benign accounts exceed `target_fpr`
    /// (pooled, a set of easy benign accounts dilutes a hard one's).
    pub per_set_threshold: bool,
    /// Report each attack style's recall when it was left out of fitting.
    pub leave_one_out: bool,
    /// A set (by name) to measure out of sample: split in halves by
    /// account (fit on one half and the other sets, score the other half,
    /// both ways), left out whole (fit on the other sets only), and the
    /// reverse (fit on it alone, score the other sets): across generators
    /// in both directions when it comes from another generator.
    pub holdout: Option<String>,
    /// Keep only what the training sets agree on (each set is an
    /// environment, fitted alone first).
    pub invariance: Invariance,
}

/// Which weights a fit keeps by agreement between environments (its
/// training sets, each fitted alone with the same options): an input whose
/// weight takes one sign in one set and the other in another is used
/// against its meaning by one of them — one generator's benign population
/// shows what another's attackers do — and does not transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Invariance {
    /// No selection.
    #[default]
    None,
    /// An input whose weights disagree in sign between two sets (both
    /// beyond [`SIGN_TOLERANCE`]) gets weight 0.
    Drop,
    /// As `Drop`, and every other input keeps the sign the sets agree on.
    Sign,
}

impl std::str::FromStr for Invariance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Invariance::None),
            "drop" => Ok(Invariance::Drop),
            "sign" => Ok(Invariance::Sign),
            _ => Err(format!("{s}: expected none, drop or sign")),
        }
    }
}

/// A standardised weight smaller than this takes no side in the sign
/// agreement of [`Invariance`].
pub const SIGN_TOLERANCE: f64 = 0.05;

/// One out-of-sample measurement of `--holdout`.
#[derive(Clone, Debug)]
pub struct Holdout {
    /// What was fitted on, in words.
    pub fitted_on: String,
    /// The held-out accounts' scores.
    pub score: SetScore,
    /// Per scenario of the held-out accounts: flagged of accounts
    /// (attack styles: the caught; benign populations: the false
    /// positives), only those with a miss or a false positive.
    pub by_scenario: Vec<(String, usize, usize)>,
}

/// Flagged of accounts per scenario, where the verdict was wrong for some.
fn by_scenario(rows: &[&LabelledRow], m: &Model) -> Vec<(String, usize, usize)> {
    let mut n: std::collections::BTreeMap<&str, (bool, usize, usize)> = Default::default();
    for r in rows {
        let e = n.entry(&r.scenario).or_insert((r.distill, 0, 0));
        e.2 += 1;
        if m.score(&r.inputs, &[]).score >= m.threshold {
            e.1 += 1;
        }
    }
    n.into_iter()
        .filter(|(_, (attack, flagged, all))| if *attack { flagged < all } else { *flagged > 0 })
        .map(|(s, (_, flagged, all))| (s.to_string(), flagged, all))
        .collect()
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
    /// The holdout measurements, when asked for.
    pub holdouts: Vec<Holdout>,
}

/// Read and analyse a labelled set (with `model`, which matters for the
/// verdicts, for the reference baselines of small peer groups, and for
/// which unlabelled accounts count as peers) and return its labelled
/// inputs.
pub fn rows_of(
    set: &LabelledSet,
    cfg: &AnalyzerConfig,
    model: &Model,
) -> Result<SetRows, AnalyzeError> {
    let labels: Labels = eval::read_labels(&set.labels)?;
    let (_, analysis, _) = load_and_analyze(&set.logs, cfg, model)?;
    let (rows, peers) = labelled_inputs(&analysis, &labels, &model.reference_peers());
    Ok(SetRows {
        name: set.name.clone(),
        rows,
        peers,
    })
}

/// A stable 64-bit hash of an account id: the first 8 bytes of its
/// SHA-256 (the same on every machine and version, so a split can be
/// rerun by anyone). Its lowest bit is the account's half in a split,
/// the rest decides its fold.
fn account_hash(account: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(account.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The account's half (0 or 1) in a holdout split.
pub fn half_of(account: &str) -> u64 {
    account_hash(account) & 1
}

/// The account's fold out of `k` for the out-of-fold threshold.
pub fn fold_of(account: &str, k: usize) -> usize {
    ((account_hash(account) >> 1) % k.max(1) as u64) as usize
}

/// A training row and the index of the set it comes from.
pub type Row<'a> = (usize, &'a LabelledRow);

fn fit_one(rows: &[Row<'_>], opt: &FitOptions) -> Result<Model, model::ModelError> {
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.1.inputs.clone()).collect();
    let y: Vec<bool> = rows.iter().map(|r| r.1.distill).collect();
    let g: Vec<&str> = rows.iter().map(|r| r.1.scenario.as_str()).collect();
    model::fit_grouped(&x, &y, &g, opt)
}

/// One fit on `rows`, with the sign constraints `invariance` derives from
/// fitting each set alone (sets with only one class take no part).
fn fit_plain(
    rows: &[Row<'_>],
    opt: &FitOptions,
    invariance: Invariance,
) -> Result<Model, model::ModelError> {
    if invariance == Invariance::None {
        return fit_one(rows, opt);
    }
    let sets: BTreeSet<usize> = rows.iter().map(|r| r.0).collect();
    let mut per_set = Vec::new();
    for set in sets {
        let part: Vec<Row<'_>> = rows.iter().copied().filter(|r| r.0 == set).collect();
        if part.iter().any(|r| r.1.distill) && part.iter().any(|r| !r.1.distill) {
            // The signs are those of one regression per set.
            let single = FitOptions {
                modes: 1,
                ..opt.clone()
            };
            per_set.push(fit_one(&part, &single)?.modes.swap_remove(0).coef);
        }
    }
    let signs = agreed_signs(&per_set, invariance);
    fit_one(
        rows,
        &FitOptions {
            signs,
            ..opt.clone()
        },
    )
}

/// Per input, the constraint `invariance` puts on its weight given each
/// environment's weights.
fn agreed_signs(per_set: &[Vec<f64>], invariance: Invariance) -> Vec<model::Sign> {
    use model::Sign;
    let n = per_set.first().map_or(0, Vec::len);
    (0..n)
        .map(|j| {
            let up = per_set.iter().any(|w| w[j] > SIGN_TOLERANCE);
            let down = per_set.iter().any(|w| w[j] < -SIGN_TOLERANCE);
            match (up, down, invariance) {
                (true, true, _) => Sign::Zero,
                (_, _, Invariance::None | Invariance::Drop) => Sign::Any,
                (true, false, Invariance::Sign) => Sign::NonNegative,
                (false, true, Invariance::Sign) => Sign::NonPositive,
                (false, false, Invariance::Sign) => Sign::Any,
            }
        })
        .collect()
}

/// Fit on `rows` as the protocol says: one fit (or the fold models'
/// average), the threshold from in-sample or out-of-fold benign scores,
/// pooled or per set.
pub fn fit_rows(rows: &[Row<'_>], p: &Protocol) -> Result<Model, model::ModelError> {
    if p.bag && (p.fit.clip.is_some() || p.fit.modes > 1) {
        // Clipped models and models of several modes are not linear in
        // the raw inputs: their average is not a model of this form.
        return Err(model::ModelError::Fit(
            "averaging fold models (bag) cannot be combined with clipping or several modes".into(),
        ));
    }
    let mut full = fit_plain(rows, &p.fit, p.invariance)?;
    let k = p.threshold_folds;
    // Each benign account's score (with its set) by a model that did not
    // see it, or (k < 2) by the model itself.
    let mut benign: Vec<(usize, f64)> = Vec::new();
    if k < 2 {
        benign.extend(
            rows.iter()
                .filter(|r| !r.1.distill)
                .map(|r| (r.0, full.score(&r.1.inputs, &[]).score)),
        );
    } else {
        let mut folds = Vec::new();
        for fold in 0..k {
            let (held, fit): (Vec<Row<'_>>, Vec<Row<'_>>) =
                rows.iter().partition(|r| fold_of(&r.1.account, k) == fold);
            let m = fit_plain(&fit, &p.fit, p.invariance)?;
            benign.extend(
                held.iter()
                    .filter(|r| !r.1.distill)
                    .map(|r| (r.0, m.score(&r.1.inputs, &[]).score)),
            );
            folds.push(m);
        }
        if p.bag {
            full = average(&full, &folds);
        }
    }
    full.threshold = if p.per_set_threshold {
        let mut by_set: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for (set, score) in benign {
            by_set.entry(set).or_default().push(score);
        }
        by_set
            .values_mut()
            .map(|v| model::threshold_for(v, p.fit.target_fpr))
            .fold(0.5, f64::max)
    } else {
        let mut all: Vec<f64> = benign.into_iter().map(|(_, s)| s).collect();
        model::threshold_for(&mut all, p.fit.target_fpr)
    };
    Ok(full)
}

/// The model whose log-odds are the mean of `models`' log-odds, written
/// with `like`'s centring and scaling (each model is one linear mode in
/// the raw inputs, so the mean is too: exact, and contributions stay per
/// input).
fn average(like: &Model, models: &[Model]) -> Model {
    let n = like.center.len();
    let k = models.len() as f64;
    // Raw-input slope and constant of each model, averaged.
    let mut slope = vec![0.0; n];
    let mut constant = 0.0;
    for m in models {
        let mode = &m.modes[0];
        constant += mode.intercept / k;
        for (j, s) in slope.iter_mut().enumerate() {
            let a = mode.coef[j] / m.scale[j];
            *s += a / k;
            constant -= a * m.center[j] / k;
        }
    }
    let mut out = like.clone();
    out.modes.truncate(1);
    out.modes[0].coef = slope.iter().zip(&like.scale).map(|(a, s)| a * s).collect();
    out.modes[0].intercept = constant
        + slope
            .iter()
            .zip(&like.center)
            .map(|(a, c)| a * c)
            .sum::<f64>();
    out
}

/// Score a set's rows under a model. Account-level: cluster evidence is
/// not part of this table (the full analysis adds it).
pub fn score_set(set: &SetRows, m: &Model) -> SetScore {
    score_rows(&set.name, &set.rows.iter().collect::<Vec<_>>(), m)
}

fn score_rows(name: &str, rows: &[&LabelledRow], m: &Model) -> SetScore {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in rows {
        let s = m.score(&r.inputs, &[]).score;
        if r.distill { a.push(s) } else { b.push(s) }
    }
    let over = |v: &[f64]| v.iter().filter(|s| **s >= m.threshold).count() as f64;
    SetScore {
        name: name.to_string(),
        attacks: a.len(),
        benign: b.len(),
        roc_auc: eval::roc_auc(&a, &b),
        threshold: m.threshold,
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
/// (not fitted on) and, as the protocol asks, each attack style left out
/// of fitting and the holdout set out of sample.
pub fn train(
    sets: &[SetRows],
    checks: &[SetRows],
    protocol: &Protocol,
) -> Result<TrainingReport, model::ModelError> {
    let all = || {
        sets.iter()
            .enumerate()
            .flat_map(|(i, s)| s.rows.iter().map(move |r| (i, r)))
    };
    let peers: Vec<_> = sets.iter().map(|s| s.peers.clone()).collect();
    let p = &Protocol {
        fit: FitOptions {
            reference: crate::model::inputs::Peers::mean(&peers),
            ..protocol.fit.clone()
        },
        ..protocol.clone()
    };
    let model = fit_rows(&all().collect::<Vec<_>>(), p)?;
    let scores = sets.iter().map(|s| score_set(s, &model)).collect();
    let mut left_out = Vec::new();
    if p.leave_one_out {
        let styles: BTreeSet<&str> = all()
            .filter(|r| r.1.distill)
            .map(|r| r.1.scenario.as_str())
            .collect();
        for style in styles {
            let m = fit_rows(
                &all().filter(|r| r.1.scenario != style).collect::<Vec<_>>(),
                p,
            )?;
            let held: Vec<_> = all().filter(|r| r.1.scenario == style).collect();
            left_out.push(LeftOut {
                scenario: style.to_string(),
                accounts: held.len(),
                flagged: held
                    .iter()
                    .filter(|r| m.score(&r.1.inputs, &[]).score >= m.threshold)
                    .count(),
            });
        }
    }
    let holdouts = match &p.holdout {
        Some(name) => holdout(sets, name, p)?,
        None => Vec::new(),
    };
    Ok(TrainingReport {
        checks: checks.iter().map(|s| score_set(s, &model)).collect(),
        model,
        sets: scores,
        left_out,
        holdouts,
    })
}

/// The out-of-sample measurements of one set: each half (by account) fitted
/// without it, the whole set left out, and the reverse (fitted on the set
/// alone, the other sets scored together).
fn holdout(sets: &[SetRows], name: &str, p: &Protocol) -> Result<Vec<Holdout>, model::ModelError> {
    let Some(h) = sets.iter().position(|s| s.name == name) else {
        return Err(model::ModelError::Fit(format!(
            "--holdout {name}: no such set (sets: {})",
            sets.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let others = || {
        sets.iter()
            .enumerate()
            .filter(move |(i, _)| *i != h)
            .flat_map(|(i, s)| s.rows.iter().map(move |r| (i, r)))
    };
    let other_names: Vec<&str> = sets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != h)
        .map(|(_, s)| s.name.as_str())
        .collect();
    let mut out = Vec::new();
    for half in [0, 1] {
        let (test, fit): (Vec<&LabelledRow>, Vec<&LabelledRow>) = sets[h]
            .rows
            .iter()
            .partition(|r| half_of(&r.account) == half);
        let fit = fit.into_iter().map(|r| (h, r)).chain(others());
        let m = fit_rows(&fit.collect::<Vec<_>>(), p)?;
        let other_half = if half == 0 { "B" } else { "A" };
        let this_half = if half == 0 { "A" } else { "B" };
        out.push(Holdout {
            fitted_on: format!("half {other_half} + {}", other_names.join(" + ")),
            score: score_rows(&format!("{name} half {this_half}"), &test, &m),
            by_scenario: by_scenario(&test, &m),
        });
    }
    if !other_names.is_empty() {
        let m = fit_rows(&others().collect::<Vec<_>>(), p)?;
        out.push(Holdout {
            fitted_on: other_names.join(" + "),
            score: score_set(&sets[h], &m),
            by_scenario: by_scenario(&sets[h].rows.iter().collect::<Vec<_>>(), &m),
        });
        let alone: Vec<Row<'_>> = sets[h].rows.iter().map(|r| (h, r)).collect();
        let m = fit_rows(&alone, p)?;
        let scored: Vec<&LabelledRow> = others().map(|r| r.1).collect();
        out.push(Holdout {
            fitted_on: name.to_string(),
            score: score_rows("the other sets", &scored, &m),
            by_scenario: by_scenario(&scored, &m),
        });
    }
    Ok(out)
}

impl fmt::Display for TrainingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "threshold {:.4} (benign FPR target {:.3} on the training accounts, in sample or out of fold as fitted_on says)",
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
            writeln!(f, "{s}")?;
        }
        if !self.holdouts.is_empty() {
            writeln!(
                f,
                "\nheld out (not fitted on; each at its own model's threshold):"
            )?;
            for h in &self.holdouts {
                writeln!(
                    f,
                    "{}  threshold {:.4}  fitted on {}",
                    h.score, h.score.threshold, h.fitted_on
                )?;
                let wrong: Vec<String> = h
                    .by_scenario
                    .iter()
                    .map(|(s, flagged, all)| format!("{s} {flagged}/{all}"))
                    .collect();
                writeln!(f, "    flagged of, where wrong: {}", wrong.join(", "))?;
            }
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

impl fmt::Display for SetScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<28} {:>7} {:>7} {:>8.3} {:>7.3} {:>7.4} {:>12.3}",
            self.name,
            self.attacks,
            self.benign,
            self.roc_auc,
            self.recall,
            self.fpr,
            self.recall_at_fpr_1pct
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inputs::INPUTS;

    /// A deterministic pseudo-random stream (xorshift) in [0, 1).
    struct Stream(u64);
    impl Stream {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Accounts with one weak signal input and every other input noise:
    /// a fit with little penalty learns the noise of its own accounts.
    fn accounts(prefix: &str, n: usize, seed: u64) -> Vec<LabelledRow> {
        let mut r = Stream(seed);
        (0..n)
            .map(|i| {
                let distill = i % 5 == 0;
                let mut inputs: Vec<f64> = (0..INPUTS.len()).map(|_| r.next()).collect();
                inputs[0] += if distill { 0.6 } else { 0.0 };
                LabelledRow {
                    account: format!("{prefix}{i}"),
                    inputs,
                    distill,
                    scenario: if distill { "attack" } else { "benign" }.into(),
                }
            })
            .collect()
    }

    fn protocol(folds: usize, bag: bool) -> Protocol {
        Protocol {
            fit: FitOptions {
                l2: 0.1,
                target_fpr: 0.02,
                ..FitOptions::default()
            },
            threshold_folds: folds,
            bag,
            ..Protocol::default()
        }
    }

    #[test]
    fn out_of_fold_threshold_holds_the_fpr_on_new_accounts_better_than_in_sample() {
        let train = accounts("t", 300, 7);
        let fresh = accounts("f", 3000, 11);
        let rows: Vec<Row<'_>> = train.iter().map(|r| (0, r)).collect();
        let fresh: Vec<&LabelledRow> = fresh.iter().collect();
        let in_sample = fit_rows(&rows, &protocol(0, false)).unwrap();
        let oof = fit_rows(&rows, &protocol(5, false)).unwrap();
        // Same weights, another threshold.
        assert_eq!(in_sample.modes[0].coef, oof.modes[0].coef);
        let fpr = |m: &Model| score_rows("fresh", &fresh, m).fpr;
        assert!(
            fpr(&in_sample) > 0.025,
            "the overfitted in-sample threshold (target 0.02) lets through {} of new benign accounts",
            fpr(&in_sample)
        );
        assert!(
            fpr(&oof) < fpr(&in_sample),
            "out of fold {} vs in sample {}",
            fpr(&oof),
            fpr(&in_sample)
        );
    }

    #[test]
    fn per_set_threshold_keeps_each_sets_benign_rate_under_the_target() {
        // Set 0: benign accounts far from the attacks; set 1: benign
        // accounts that overlap them. Pooled, the easy set dilutes the
        // hard one's false positives.
        // Only input 0 varies: with noise in every input the result would
        // hang on how a fit of this size overfits the noise, which moves
        // with the number of inputs.
        let one_input = |mut rows: Vec<LabelledRow>| {
            for r in &mut rows {
                r.inputs[1..].fill(0.0);
            }
            rows
        };
        let mut easy = one_input(accounts("e", 600, 5));
        for r in easy.iter_mut().filter(|r| !r.distill) {
            r.inputs[0] -= 3.0;
        }
        let hard = one_input(accounts("h", 200, 9));
        let rows: Vec<Row<'_>> = easy
            .iter()
            .map(|r| (0, r))
            .chain(hard.iter().map(|r| (1, r)))
            .collect();
        let hard: Vec<&LabelledRow> = hard.iter().collect();
        let pooled = fit_rows(&rows, &protocol(5, false)).unwrap();
        let per_set = fit_rows(
            &rows,
            &Protocol {
                per_set_threshold: true,
                ..protocol(5, false)
            },
        )
        .unwrap();
        let fpr = |m: &Model| score_rows("hard", &hard, m).fpr;
        assert!(fpr(&pooled) > 0.02, "pooled: {}", fpr(&pooled));
        assert!(fpr(&per_set) <= 0.02, "per set: {}", fpr(&per_set));
    }

    #[test]
    fn averaged_fold_models_score_the_mean_of_their_log_odds() {
        let train = accounts("t", 200, 3);
        let rows: Vec<Row<'_>> = train.iter().map(|r| (0, r)).collect();
        let opt = protocol(0, false).fit;
        let models: Vec<Model> = (0..3)
            .map(|k| {
                let part: Vec<Row<'_>> = rows
                    .iter()
                    .copied()
                    .filter(|r| fold_of(&r.1.account, 3) != k)
                    .collect();
                fit_one(&part, &opt).unwrap()
            })
            .collect();
        let like = fit_one(&rows, &opt).unwrap();
        let avg = average(&like, &models);
        for r in &rows {
            let r = r.1;
            let mean = models
                .iter()
                .map(|m| m.score(&r.inputs, &[]).logit)
                .sum::<f64>()
                / 3.0;
            assert!((avg.score(&r.inputs, &[]).logit - mean).abs() < 1e-9);
        }
    }

    #[test]
    fn invariance_drops_an_input_whose_sign_flips_between_sets() {
        // Input 0 is the signal in both sets; input 1 is higher for the
        // attacks in set "a" and for the benign accounts in the larger set
        // "b" (its benign population shows what "a"'s attackers do).
        let mut a = accounts("a", 200, 5);
        let mut b = accounts("b", 600, 9);
        for r in a.iter_mut().filter(|r| r.distill) {
            r.inputs[1] += 0.8;
        }
        for r in b.iter_mut().filter(|r| !r.distill) {
            r.inputs[1] += 0.8;
        }
        let rows: Vec<Row<'_>> = a
            .iter()
            .map(|r| (0, r))
            .chain(b.iter().map(|r| (1, r)))
            .collect();
        let fit = |invariance| {
            fit_rows(
                &rows,
                &Protocol {
                    invariance,
                    ..protocol(0, false)
                },
            )
            .unwrap()
        };
        let pooled = fit(Invariance::None);
        assert!(
            pooled.modes[0].coef[1] < -0.1,
            "pooled: {}",
            pooled.modes[0].coef[1]
        );
        let dropped = fit(Invariance::Drop);
        assert_eq!(dropped.modes[0].coef[1], 0.0);
        assert!(
            dropped.modes[0].coef[0] > 0.5,
            "signal {}",
            dropped.modes[0].coef[0]
        );
        let signed = fit(Invariance::Sign);
        assert_eq!(signed.modes[0].coef[1], 0.0);
        assert!(signed.modes[0].coef[0] > 0.5);
        // Each set alone agrees on input 0's sign and not on input 1's.
        let per_set: Vec<Vec<f64>> = [0, 1]
            .map(|s| {
                let part: Vec<Row<'_>> = rows.iter().copied().filter(|r| r.0 == s).collect();
                fit_one(&part, &protocol(0, false).fit)
                    .unwrap()
                    .modes
                    .swap_remove(0)
                    .coef
            })
            .into();
        let signs = agreed_signs(&per_set, Invariance::Sign);
        assert_eq!(signs[0], model::Sign::NonNegative);
        assert_eq!(signs[1], model::Sign::Zero);
    }

    #[test]
    fn holdout_splits_a_set_by_account_and_leaves_it_out_whole() {
        let set = |name: &str, prefix: &str, seed| SetRows {
            name: name.into(),
            rows: accounts(prefix, 200, seed),
            peers: Default::default(),
        };
        let sets = [set("a", "a", 5), set("b", "b", 9)];
        let p = Protocol {
            holdout: Some("a".into()),
            ..protocol(5, false)
        };
        let report = train(&sets, &[], &p).unwrap();
        let [h0, h1, whole, reverse] = &report.holdouts[..] else {
            panic!("{:?}", report.holdouts)
        };
        // The halves partition the set's accounts, and hashing decides.
        assert_eq!(h0.score.attacks + h1.score.attacks, 40);
        assert_eq!(h0.score.benign + h1.score.benign, 160);
        let in_a = sets[0]
            .rows
            .iter()
            .filter(|r| half_of(&r.account) == 0)
            .count();
        assert_eq!(h0.score.attacks + h0.score.benign, in_a);
        assert!(in_a > 60 && in_a < 140, "{in_a} of 200 in half A");
        assert_eq!(whole.fitted_on, "b");
        assert_eq!((whole.score.attacks, whole.score.benign), (40, 160));
        // The reverse: fitted on "a" alone, "b" scored.
        assert_eq!(reverse.fitted_on, "a");
        assert_eq!((reverse.score.attacks, reverse.score.benign), (40, 160));
        assert!(reverse.score.roc_auc > 0.6, "{:?}", reverse.score);
        assert!(
            train(
                &sets,
                &[],
                &Protocol {
                    holdout: Some("c".into()),
                    ..p
                }
            )
            .is_err()
        );
    }
}
