//! CSV and Parquet input through polars' readers. Each row is checked by the
//! same rules as a JSON line (CSV cells are strings, so numbers and booleans
//! may be given as text there).

use super::{Format, Sink};
use crate::row;
use polars::prelude::*;
use serde_json::{Map, Number, Value};
use std::io::Cursor;
use std::path::Path;

fn to_json(v: AnyValue<'_>) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(x) => Value::from(x),
        AnyValue::Int16(x) => Value::from(x),
        AnyValue::Int32(x) => Value::from(x),
        AnyValue::Int64(x) => Value::from(x),
        AnyValue::UInt8(x) => Value::from(x),
        AnyValue::UInt16(x) => Value::from(x),
        AnyValue::UInt32(x) => Value::from(x),
        AnyValue::UInt64(x) => Value::from(x),
        AnyValue::Float32(x) => Number::from_f64(f64::from(x)).map_or(Value::Null, Value::Number),
        AnyValue::Float64(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string()),
    }
}

/// Read a whole CSV or Parquet file (already decompressed) into the sink.
pub(super) fn read(
    path: &Path,
    format: Format,
    bytes: Vec<u8>,
    sink: &mut Sink<'_>,
) -> Option<String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return None; // empty: reported by the caller
    }
    let cursor = Cursor::new(bytes);
    let df = match format {
        Format::Parquet => ParquetReader::new(cursor).finish(),
        _ => CsvReadOptions::default()
            .with_has_header(true)
            // Every column as text: types are checked per row, so one bad
            // cell makes one bad row, not a failed file.
            .with_infer_schema_length(Some(0))
            .with_ignore_errors(true)
            .into_reader_with_file_handle(cursor)
            .finish(),
    };
    let df = match df {
        Ok(df) => df,
        Err(e) => {
            let reason = match format {
                Format::Parquet => "unreadable_parquet",
                _ => "unreadable_csv",
            };
            sink.file_error(path, 0, reason, &e.to_string());
            return Some(e.to_string());
        }
    };
    // A table without the schema's key columns is another kind of file
    // (e.g. labels.csv beside the logs): one file problem, not N bad rows.
    let names: Vec<String> = df.columns().iter().map(|c| c.name().to_string()).collect();
    if !names.iter().any(|n| n == "ts") || !names.iter().any(|n| n == "account_id") {
        let detail = format!("columns: {}", names.join(","));
        sink.file_error(path, 0, "not_a_request_log", &detail);
        return Some(detail);
    }
    let strings = format == Format::Csv;
    let columns: Vec<(String, &Column)> = df
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c))
        .collect();
    for i in 0..df.height() {
        let mut obj = Map::new();
        for (name, col) in &columns {
            let v = col.get(i).map(to_json).unwrap_or(Value::Null);
            obj.insert(name.clone(), v);
        }
        let value = Value::Object(obj);
        match row::from_value(&value, strings) {
            Ok(r) => sink.row(&r),
            Err(reason) => {
                let excerpt = value.to_string();
                sink.bad(path, i as u64 + 1, &reason, &excerpt);
            }
        }
    }
    None
}
