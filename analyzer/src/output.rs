//! Tables for analysts: `scores.csv` (one row per account) and the
//! feature table as Parquet (polars writer): per account over the whole
//! input and per account and window.

use crate::analysis::Analysis;
use crate::config::AnalyzerConfig;
use crate::features::Features;
use crate::requests::Requests;
use polars::prelude::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Writing an output table failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Building or writing the Parquet table.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: PolarsError,
    },
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The `top_signals` cell: the model inputs that add most toward
/// distillation (largest positive contributions first), `;`-separated.
pub fn top_signals(a: &crate::analysis::AccountResult) -> String {
    a.verdict
        .contributions
        .iter()
        .filter(|c| c.contribution > 0.0)
        .map(|c| c.input)
        .take(6)
        .collect::<Vec<_>>()
        .join(";")
}

/// Write `account_id,score,flagged,cluster_id,top_signals,model_mode`.
pub fn write_scores(analysis: &Analysis, path: &Path) -> Result<(), OutputError> {
    let err = |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(
        w,
        "account_id,score,flagged,cluster_id,top_signals,model_mode"
    )
    .map_err(err)?;
    let mut rows: Vec<_> = analysis.accounts.iter().collect();
    rows.sort_by(|a, b| {
        b.verdict
            .score
            .total_cmp(&a.verdict.score)
            .then(a.account_id.cmp(&b.account_id))
    });
    for a in rows {
        writeln!(
            w,
            "{},{:.4},{},{},{},{}",
            csv_field(&a.account_id),
            a.verdict.score,
            a.flagged(),
            csv_field(a.cluster_id.as_deref().unwrap_or("")),
            csv_field(&top_signals(a)),
            csv_field(&a.verdict.model_mode)
        )
        .map_err(err)?;
    }
    w.flush().map_err(err)
}

/// One row of the feature table: an account over the whole input, over
/// one window, its requests through one of its API keys, or one of its
/// candidate job parts.
struct FeatureRow<'a> {
    account: &'a crate::analysis::AccountResult,
    /// `None`: the whole input.
    window: Option<(i64, i64)>,
    /// The API key (index), for a per-key row.
    key: Option<u32>,
    /// The job part, for a per-part row.
    part: Option<&'a crate::parts::Part>,
    features: &'a Features,
}

impl FeatureRow<'_> {
    fn scope(&self) -> &'static str {
        match (self.window, self.key, self.part) {
            (Some(_), _, _) => "window",
            (None, Some(_), _) => "key",
            (None, None, Some(_)) => "part",
            (None, None, None) => "all",
        }
    }
}

/// A column of UTC instants (Parquet `TIMESTAMP(MILLIS, UTC)`), so readers
/// get times, not strings to parse.
fn instants(name: &str, ms: Vec<i64>) -> Result<Column, PolarsError> {
    Column::new(name.into(), ms).cast(&DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    ))
}

/// Write the feature table: one row per account over the whole input
/// (`scope` = `all`), one per key of accounts with several keys (`scope` =
/// `key`, with `api_key_id`), one per candidate job part of an account
/// judged facet by facet (`scope` = `part`, with `part`: its client
/// settings and `part_discrepancy`; see `parts.rs`), and one per account
/// and window with traffic
/// (`scope` = `window`; see `feature_window_hours`). Identity and verdict
/// columns (the verdict only on `all` rows), then one column per feature
/// (see [`crate::features::Features`]).
pub fn write_features(
    analysis: &Analysis,
    windows: &[crate::analysis::WindowFeatures],
    store: &Requests,
    cfg: &AnalyzerConfig,
    path: &Path,
) -> Result<(), OutputError> {
    let perr = |source| OutputError::Parquet {
        path: path.display().to_string(),
        source,
    };
    let ctx = analysis
        .context
        .clone()
        .unwrap_or_else(|| store.context(i64::MAX, cfg));
    let mut rows: Vec<FeatureRow<'_>> = analysis
        .accounts
        .iter()
        .map(|a| FeatureRow {
            account: a,
            window: None,
            key: None,
            part: None,
            features: &a.features,
        })
        .collect();
    rows.extend(analysis.accounts.iter().flat_map(|a| {
        a.keys.iter().map(move |(k, f)| FeatureRow {
            account: a,
            window: None,
            key: Some(*k),
            part: None,
            features: f,
        })
    }));
    rows.extend(analysis.accounts.iter().flat_map(|a| {
        a.parts.iter().map(move |p| FeatureRow {
            account: a,
            window: None,
            key: None,
            part: Some(p),
            features: &p.features,
        })
    }));
    rows.extend(windows.iter().map(|w| FeatureRow {
        account: &analysis.accounts[w.account],
        window: Some(w.window),
        key: None,
        part: None,
        features: &w.features,
    }));
    let names: Vec<String> = match serde_json::to_value(Features::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(rows.len()); names.len()];
    for r in &rows {
        let m = match serde_json::to_value(r.features) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for (name, col) in names.iter().zip(values.iter_mut()) {
            col.push(m.get(name).and_then(Value::as_f64));
        }
    }
    let all = |r: &FeatureRow<'_>| r.scope() == "all";
    let mut cols: Vec<Column> = vec![
        Column::new(
            "account_id".into(),
            rows.iter()
                .map(|r| r.account.account_id.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "scope".into(),
            rows.iter().map(FeatureRow::scope).collect::<Vec<_>>(),
        ),
        Column::new(
            "api_key_id".into(),
            rows.iter()
                .map(|r| {
                    r.key
                        .and_then(|k| store.keys.names.get(k as usize))
                        .map(String::as_str)
                })
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            "part".into(),
            rows.iter()
                .map(|r| r.part.map(|p| p.key.describe(store)))
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "part_discrepancy".into(),
            rows.iter()
                .map(|r| r.part.map(|p| p.discrepancy))
                .collect::<Vec<Option<f64>>>(),
        ),
        instants(
            "window_start",
            rows.iter()
                .map(|r| r.window.map_or(ctx.start, |w| w.0))
                .collect(),
        )
        .map_err(perr)?,
        instants(
            "window_end",
            rows.iter()
                .map(|r| r.window.map_or(ctx.end, |w| w.1))
                .collect(),
        )
        .map_err(perr)?,
        Column::new(
            "score".into(),
            rows.iter()
                .map(|r| all(r).then_some(r.account.verdict.score))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "flagged".into(),
            rows.iter()
                .map(|r| all(r).then_some(r.account.flagged()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "cluster_id".into(),
            rows.iter()
                .map(|r| r.account.cluster_id.clone())
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "top_signals".into(),
            rows.iter()
                .map(|r| all(r).then(|| top_signals(r.account)))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "model_mode".into(),
            rows.iter()
                .map(|r| all(r).then(|| r.account.verdict.model_mode.clone()))
                .collect::<Vec<_>>(),
        ),
    ];
    for (name, v) in names.iter().zip(values) {
        cols.push(Column::new(name.as_str().into(), v));
    }
    let mut df = DataFrame::new_infer_height(cols).map_err(perr)?;
    let file = std::fs::File::create(path).map_err(|source| OutputError::Io {
        path: path.display().to_string(),
        source,
    })?;
    ParquetWriter::new(file).finish(&mut df).map_err(perr)?;
    Ok(())
}
