//! Evaluation against labels (`account_id,label,scenario`): account-level
//! precision and recall, false-positive rate per benign style, recall per
//! attack style, and time to detect — the requests an attacker had sent
//! before the first alert when the logs are replayed in time order (the
//! analysis re-run on growing prefixes, one per `window_hours`) — and,
//! since the score ranks, ROC-AUC and recall at fixed false-positive rates.

use crate::analysis::{self, Analysis};
use crate::config::AnalyzerConfig;
use crate::features::HOUR_MS;
use crate::model::Model;
use crate::requests::Requests;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// Reading labels failed.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not `account_id,label,scenario`.
    #[error("{path}:{line}: expected account_id,label,scenario with label benign|distill")]
    Format {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
    },
}

/// Ground truth per account: (is an attack, scenario).
pub type Labels = HashMap<String, (bool, String)>;

/// Read a labels CSV (header optional; quoted fields as in RFC 4180, so an
/// account id may hold commas: the dashboard's export quotes them).
pub fn read_labels(path: &Path) -> Result<Labels, LabelError> {
    let text = std::fs::read(path).map_err(|source| LabelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let format = |line: u64| LabelError::Format {
        path: path.display().to_string(),
        line: line as usize,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_slice());
    let mut out = Labels::new();
    for (i, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 1, |p| p.line());
        let record = record.map_err(|_| format(line))?;
        let cell = |k: usize| record.get(k).map(str::trim).unwrap_or("");
        if record.iter().all(|c| c.trim().is_empty()) || (i == 0 && cell(0) == "account_id") {
            continue;
        }
        let attack = match cell(1) {
            "distill" => true,
            "benign" => false,
            _ => return Err(format(line)),
        };
        out.insert(cell(0).to_string(), (attack, cell(2).to_string()));
    }
    Ok(out)
}

/// Numbers for one scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StyleRow {
    /// Scenario name.
    pub scenario: String,
    /// Labelled accounts seen in the logs.
    pub accounts: usize,
    /// Of them flagged.
    pub flagged: usize,
    /// Median requests sent before the first alert (attacks).
    pub ttd_requests_median: Option<u64>,
    /// Median hours from the account's first request to the first alert (attacks).
    pub ttd_hours_median: Option<f64>,
}

/// The evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evaluation {
    /// Attack accounts flagged.
    pub true_positives: usize,
    /// Benign accounts flagged.
    pub false_positives: usize,
    /// Attack accounts missed.
    pub false_negatives: usize,
    /// Benign accounts not flagged.
    pub true_negatives: usize,
    /// Accounts in the logs without a label (not counted above).
    pub unlabelled: usize,
    /// Flagged accounts whose verdict lists no fired signal (must be 0).
    pub unexplained: usize,
    /// Area under the ROC curve of the account scores (ties count half).
    pub roc_auc: f64,
    /// Recall when the threshold is set so that at most 1 % of benign
    /// accounts score at or above it.
    pub recall_at_fpr_1pct: f64,
    /// The same at 0.1 %.
    pub recall_at_fpr_01pct: f64,
    /// Per benign style.
    pub benign: Vec<StyleRow>,
    /// Per attack style.
    pub attacks: Vec<StyleRow>,
}

impl Evaluation {
    /// TP / (TP + FP).
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    /// TP / (TP + FN).
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    /// FP / benign accounts.
    pub fn fp_rate(&self) -> f64 {
        ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Area under the ROC curve: the probability that a random attack account
/// scores above a random benign one (ties count half).
pub fn roc_auc(attack: &[f64], benign: &[f64]) -> f64 {
    if attack.is_empty() || benign.is_empty() {
        return 0.0;
    }
    let mut b = benign.to_vec();
    b.sort_by(f64::total_cmp);
    let mut sum = 0.0;
    for &a in attack {
        let below = b.partition_point(|x| *x < a);
        let ties = b[below..].partition_point(|x| *x <= a);
        sum += below as f64 + 0.5 * ties as f64;
    }
    sum / (attack.len() as f64 * b.len() as f64)
}

/// Recall at a benign false-positive rate: the share of attack scores
/// strictly above the benign score that at most `fpr` of benign accounts
/// reach.
pub fn recall_at_fpr(attack: &[f64], benign: &[f64], fpr: f64) -> f64 {
    if attack.is_empty() || benign.is_empty() {
        return 0.0;
    }
    let cut = crate::model::benign_cut(&mut benign.to_vec(), fpr).unwrap_or(f64::NEG_INFINITY);
    attack.iter().filter(|a| **a > cut).count() as f64 / attack.len() as f64
}

fn median_u64(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Compare `analysis` (of the whole store) with `labels`; with `replay`,
/// also replay growing prefixes under that model for time to detect.
pub fn evaluate(
    store: &Requests,
    analysis: &Analysis,
    labels: &Labels,
    cfg: &AnalyzerConfig,
    replay: Option<&Model>,
) -> Evaluation {
    let mut ev = Evaluation::default();
    let (mut attack_scores, mut benign_scores) = (Vec::new(), Vec::new());
    let mut styles: BTreeMap<(bool, String), StyleRow> = BTreeMap::new();
    for a in &analysis.accounts {
        let Some((attack, scenario)) = labels.get(&a.account_id) else {
            ev.unlabelled += 1;
            continue;
        };
        let flagged = a.flagged();
        if flagged && !a.verdict.explained() {
            ev.unexplained += 1;
        }
        if *attack {
            attack_scores.push(a.verdict.score);
        } else {
            benign_scores.push(a.verdict.score);
        }
        match (attack, flagged) {
            (true, true) => ev.true_positives += 1,
            (true, false) => ev.false_negatives += 1,
            (false, true) => ev.false_positives += 1,
            (false, false) => ev.true_negatives += 1,
        }
        let row = styles.entry((*attack, scenario.clone())).or_default();
        row.scenario = scenario.clone();
        row.accounts += 1;
        row.flagged += usize::from(flagged);
    }

    ev.roc_auc = roc_auc(&attack_scores, &benign_scores);
    ev.recall_at_fpr_1pct = recall_at_fpr(&attack_scores, &benign_scores, 0.01);
    ev.recall_at_fpr_01pct = recall_at_fpr(&attack_scores, &benign_scores, 0.001);
    // Time to detect: replay growing prefixes.
    let mut detected: HashMap<u32, (u64, f64)> = HashMap::new();
    if let (Some(model), Some((first, last))) = (replay, store.time_range()) {
        let step = HOUR_MS * i64::from(cfg.window_hours.max(1));
        let mut cut = first + step;
        loop {
            let partial = analysis::analyze(store, cut, cfg, model);
            for a in partial.accounts.iter().filter(|a| a.flagged()) {
                if detected.contains_key(&a.index) {
                    continue;
                }
                if labels.get(&a.account_id).is_some_and(|l| l.0) {
                    let hours = (cut - a.features.first_ts) as f64 / HOUR_MS as f64;
                    detected.insert(a.index, (a.features.requests, hours));
                }
            }
            if cut > last {
                break;
            }
            cut += step;
        }
    }
    for ((attack, scenario), row) in styles.iter_mut() {
        if !*attack {
            continue;
        }
        let mut reqs = Vec::new();
        let mut hours = Vec::new();
        for a in &analysis.accounts {
            if labels.get(&a.account_id).is_some_and(|l| &l.1 == scenario)
                && let Some((r, h)) = detected.get(&a.index)
            {
                reqs.push(*r);
                hours.push((*h * 10.0) as u64);
            }
        }
        row.ttd_requests_median = median_u64(reqs);
        row.ttd_hours_median = median_u64(hours).map(|h| h as f64 / 10.0);
    }
    for ((attack, _), row) in styles {
        if attack {
            ev.attacks.push(row)
        } else {
            ev.benign.push(row)
        }
    }
    ev
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accounts: {} attack, {} benign ({} unlabelled)",
            self.true_positives + self.false_negatives,
            self.false_positives + self.true_negatives,
            self.unlabelled
        )?;
        writeln!(
            f,
            "precision {:.3}  recall {:.3}  false-positive rate {:.4} ({} of {} benign)  unexplained verdicts {}",
            self.precision(),
            self.recall(),
            self.fp_rate(),
            self.false_positives,
            self.false_positives + self.true_negatives,
            self.unexplained
        )?;
        writeln!(
            f,
            "ROC-AUC {:.3}  recall at FPR 1% {:.3}  at FPR 0.1% {:.3}",
            self.roc_auc, self.recall_at_fpr_1pct, self.recall_at_fpr_01pct
        )?;
        writeln!(
            f,
            "\n{:<24} {:>8} {:>8} {:>8}",
            "benign style", "accounts", "flagged", "FP rate"
        )?;
        for r in &self.benign {
            writeln!(
                f,
                "{:<24} {:>8} {:>8} {:>8.3}",
                r.scenario,
                r.accounts,
                r.flagged,
                ratio(r.flagged, r.accounts)
            )?;
        }
        writeln!(
            f,
            "\n{:<24} {:>8} {:>8} {:>8} {:>14} {:>10}",
            "attack style", "accounts", "flagged", "recall", "ttd requests", "ttd hours"
        )?;
        for r in &self.attacks {
            writeln!(
                f,
                "{:<24} {:>8} {:>8} {:>8.3} {:>14} {:>10}",
                r.scenario,
                r.accounts,
                r.flagged,
                ratio(r.flagged, r.accounts),
                r.ttd_requests_median.map_or("-".into(), |x| x.to_string()),
                r.ttd_hours_median.map_or("-".into(), |x| format!("{x:.1}"))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Result<Labels, LabelError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels.csv");
        std::fs::write(&p, text).unwrap();
        read_labels(&p)
    }

    #[test]
    fn labels_with_and_without_header_and_quoted_ids() {
        let l =
            labels("account_id,label,scenario\n\"acct,1\",distill,analyst_tp\nacct2,benign,x\n")
                .unwrap();
        assert_eq!(l["acct,1"], (true, "analyst_tp".to_string()));
        assert_eq!(l["acct2"], (false, "x".to_string()));
        let l = labels("a1,distill,s\na2,benign,t\n").unwrap();
        assert_eq!(l.len(), 2);
        assert!(l["a1"].0 && !l["a2"].0);
        assert!(labels("").unwrap().is_empty());
    }

    #[test]
    fn a_bad_label_names_its_line() {
        let e = labels("account_id,label,scenario\na1,distill,s\na2,maybe,s\n").unwrap_err();
        assert!(e.to_string().contains(":3:"), "{e}");
    }

    #[test]
    fn auc_and_recall_at_fpr() {
        assert_eq!(roc_auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(roc_auc(&[0.5], &[0.5]), 0.5);
        let benign: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        // 1 % of benign reach 0.99: attacks must score above it.
        assert_eq!(recall_at_fpr(&[0.995, 0.98], &benign, 0.01), 0.5);
    }
}
