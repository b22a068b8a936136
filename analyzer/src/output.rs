//! Tables for analysts: `scores.csv` (one row per account) and the
//! feature table as Parquet (polars writer): per account over the whole
//! input and per account and window.

use crate::analysis::Analysis;
use crate::config::AnalyzerConfig;
use crate::features::{self, Context, Features, HOUR_MS};
use crate::store::{Req, Store};
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

/// Write `account_id,score,flagged,cluster_id,top_signals`.
pub fn write_scores(analysis: &Analysis, path: &Path) -> Result<(), OutputError> {
    let err = |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "account_id,score,flagged,cluster_id,top_signals").map_err(err)?;
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
            "{},{:.4},{},{},{}",
            csv_field(&a.account_id),
            a.verdict.score,
            a.flagged(),
            csv_field(a.cluster_id.as_deref().unwrap_or("")),
            csv_field(&top_signals(a))
        )
        .map_err(err)?;
    }
    w.flush().map_err(err)
}

/// One row of the feature table: an account over the whole input, over
/// one window, or its requests through one of its API keys.
struct FeatureRow<'a> {
    account: &'a crate::analysis::AccountResult,
    /// `None`: the whole input.
    window: Option<(i64, i64)>,
    /// The API key (index), for a per-key row.
    key: Option<u32>,
    features: std::borrow::Cow<'a, Features>,
}

impl FeatureRow<'_> {
    fn scope(&self) -> &'static str {
        match (self.window, self.key) {
            (Some(_), _) => "window",
            (None, Some(_)) => "key",
            (None, None) => "all",
        }
    }
}

/// Per-key features of accounts with several API keys: each key over the
/// account's own requests through it, whole input, in account then key order.
fn key_rows<'a>(
    analysis: &'a Analysis,
    store: &Store,
    cfg: &AnalyzerConfig,
    ctx: &Context,
) -> Vec<FeatureRow<'a>> {
    let multi: Vec<usize> = (0..analysis.accounts.len())
        .filter(|&i| analysis.accounts[i].features.keys >= 2)
        .collect();
    let per_account = crate::par::map(&multi, crate::par::threads(cfg.threads), |&i| {
        let mut by_key: std::collections::BTreeMap<u32, Vec<&Req>> = Default::default();
        for r in store.account_reqs(i) {
            by_key.entry(r.key).or_default().push(r);
        }
        by_key
            .into_iter()
            .map(|(k, reqs)| FeatureRow {
                account: &analysis.accounts[i],
                window: None,
                key: Some(k),
                features: std::borrow::Cow::Owned(features::compute(&reqs, ctx, cfg)),
            })
            .collect::<Vec<_>>()
    });
    per_account.into_iter().flatten().collect()
}

/// Per-account features of each window of `feature_window_hours` with
/// traffic (windows aligned to the epoch), in account then time order.
fn window_rows<'a>(
    analysis: &'a Analysis,
    store: &Store,
    cfg: &AnalyzerConfig,
    ctx: &Context,
) -> Vec<FeatureRow<'a>> {
    if cfg.feature_window_hours == 0 {
        return Vec::new();
    }
    let win = HOUR_MS * i64::from(cfg.feature_window_hours);
    let all: Vec<usize> = (0..analysis.accounts.len()).collect();
    let per_account = crate::par::map(&all, crate::par::threads(cfg.threads), |&i| {
        let reqs: Vec<&Req> = store.account_reqs(i).iter().collect();
        reqs.chunk_by(|x, y| x.ts.div_euclid(win) == y.ts.div_euclid(win))
            .map(|chunk| {
                let start = chunk[0].ts.div_euclid(win) * win;
                let wctx = Context {
                    start,
                    end: start + win,
                    new_models: ctx.new_models.clone(),
                };
                FeatureRow {
                    account: &analysis.accounts[i],
                    window: Some((start, start + win)),
                    key: None,
                    features: std::borrow::Cow::Owned(features::compute(chunk, &wctx, cfg)),
                }
            })
            .collect::<Vec<_>>()
    });
    per_account.into_iter().flatten().collect()
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
/// `key`, with `api_key_id`), and one per account and window with traffic
/// (`scope` = `window`; see `feature_window_hours`). Identity and verdict
/// columns (the verdict only on `all` rows), then one column per feature
/// (see [`crate::features::Features`]).
pub fn write_features(
    analysis: &Analysis,
    store: &Store,
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
        .unwrap_or_else(|| Context::new(&store.reqs, i64::MAX, cfg));
    let mut rows: Vec<FeatureRow<'_>> = analysis
        .accounts
        .iter()
        .map(|a| FeatureRow {
            account: a,
            window: None,
            key: None,
            features: std::borrow::Cow::Borrowed(&a.features),
        })
        .collect();
    rows.extend(key_rows(analysis, store, cfg, &ctx));
    rows.extend(window_rows(analysis, store, cfg, &ctx));
    let names: Vec<String> = match serde_json::to_value(Features::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(rows.len()); names.len()];
    for r in &rows {
        let m = match serde_json::to_value(r.features.as_ref()) {
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
