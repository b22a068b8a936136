//! Tables for analysts: `scores.csv` (one row per account) and the
//! per-account feature table as Parquet (polars writer).

use crate::analysis::Analysis;
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

/// The `top_signals` cell: fired signal names, `;`-separated.
pub fn top_signals(a: &crate::analysis::AccountResult) -> String {
    a.verdict
        .fired()
        .map(|s| s.name)
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
            u8::from(a.flagged()),
            csv_field(a.cluster_id.as_deref().unwrap_or("")),
            csv_field(&top_signals(a))
        )
        .map_err(err)?;
    }
    w.flush().map_err(err)
}

/// Write the feature table: identity and verdict columns, then one column
/// per feature (see [`crate::features::Features`]).
pub fn write_features(analysis: &Analysis, path: &Path) -> Result<(), OutputError> {
    let perr = |source| OutputError::Parquet {
        path: path.display().to_string(),
        source,
    };
    let rows: Vec<serde_json::Map<String, Value>> = analysis
        .accounts
        .iter()
        .map(|a| match serde_json::to_value(&a.features) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        })
        .collect();
    let names: Vec<String> = rows
        .first()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut cols: Vec<Column> = vec![
        Column::new(
            "account_id".into(),
            analysis
                .accounts
                .iter()
                .map(|a| a.account_id.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "score".into(),
            analysis
                .accounts
                .iter()
                .map(|a| a.verdict.score)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "flagged".into(),
            analysis
                .accounts
                .iter()
                .map(|a| a.flagged())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "cluster_id".into(),
            analysis
                .accounts
                .iter()
                .map(|a| a.cluster_id.clone())
                .collect::<Vec<Option<String>>>(),
        ),
        Column::new(
            "top_signals".into(),
            analysis
                .accounts
                .iter()
                .map(top_signals)
                .collect::<Vec<_>>(),
        ),
    ];
    for name in &names {
        let values: Vec<Option<f64>> = rows
            .iter()
            .map(|m| m.get(name).and_then(Value::as_f64))
            .collect();
        cols.push(Column::new(name.as_str().into(), values));
    }
    let mut df = DataFrame::new_infer_height(cols).map_err(perr)?;
    let file = std::fs::File::create(path).map_err(|source| OutputError::Io {
        path: path.display().to_string(),
        source,
    })?;
    ParquetWriter::new(file).finish(&mut df).map_err(perr)?;
    Ok(())
}
