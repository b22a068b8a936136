//! Analyst verdicts on distillation alerts as labels the analyzer reads
//! (`weightwatch analyze --labels`): CSV `account_id,label,scenario`.
//!
//! A `resolved` distillation alert is a true positive: its account (or
//! every member of a cluster alert) is labelled `distill`, scenario
//! `analyst_tp`. A `false_positive` one labels them `benign`, scenario
//! `analyst_fp`. Alerts still `new` or `investigating` carry no verdict and
//! are not exported. When an account has several verdicts, the latest
//! triage wins. Rows are ordered by account id.

use crate::store::{AlertStore, Status, StoreResult, Verdict};
use std::collections::BTreeMap;

/// The CSV header.
pub const HEADER: &str = "account_id,label,scenario";

/// One account's label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The account id.
    pub account_id: String,
    /// Whether analysts confirmed it distils the model.
    pub distill: bool,
}

impl Label {
    /// The `label` column: `distill` or `benign`.
    pub fn label(&self) -> &'static str {
        if self.distill { "distill" } else { "benign" }
    }

    /// The `scenario` column: `analyst_tp` or `analyst_fp`.
    pub fn scenario(&self) -> &'static str {
        if self.distill {
            "analyst_tp"
        } else {
            "analyst_fp"
        }
    }
}

/// One label per account from `verdicts`, the latest triage winning;
/// ordered by account id.
pub fn from_verdicts(verdicts: &[Verdict]) -> Vec<Label> {
    let mut latest: BTreeMap<&str, (i64, i64, bool)> = BTreeMap::new();
    for v in verdicts {
        let distill = match v.status {
            Status::Resolved => true,
            Status::FalsePositive => false,
            Status::New | Status::Investigating => continue,
        };
        let order = (v.triaged, v.alert_id);
        for account in &v.accounts {
            let e = latest
                .entry(account.as_str())
                .or_insert((i64::MIN, i64::MIN, distill));
            if order >= (e.0, e.1) {
                *e = (order.0, order.1, distill);
            }
        }
    }
    latest
        .into_iter()
        .map(|(account, (_, _, distill))| Label {
            account_id: account.to_string(),
            distill,
        })
        .collect()
}

/// The labels as CSV (RFC 4180: a field with a comma, quote or line break
/// is quoted, quotes doubled), header first, lines ending in `\n`.
pub fn to_csv(labels: &[Label]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for l in labels {
        out.push_str(&csv_field(&l.account_id));
        out.push(',');
        out.push_str(l.label());
        out.push(',');
        out.push_str(l.scenario());
        out.push('\n');
    }
    out
}

/// The labels CSV of every verdict in `store`.
pub fn export(store: &dyn AlertStore) -> StoreResult<String> {
    Ok(to_csv(&from_verdicts(&store.distillation_verdicts()?)))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(alert_id: i64, status: Status, triaged: i64, accounts: &[&str]) -> Verdict {
        Verdict {
            alert_id,
            status,
            triaged,
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn latest_triage_wins_and_fields_are_quoted() {
        let labels = from_verdicts(&[
            verdict(1, Status::Resolved, 10, &["b"]),
            verdict(2, Status::FalsePositive, 12, &["b", "a,\"x\""]),
            verdict(3, Status::Resolved, 11, &["c"]),
        ]);
        assert_eq!(
            to_csv(&labels),
            "account_id,label,scenario\n\"a,\"\"x\"\"\",benign,analyst_fp\n\
             b,benign,analyst_fp\nc,distill,analyst_tp\n"
        );
    }
}
