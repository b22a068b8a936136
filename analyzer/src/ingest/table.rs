//! Parquet input through polars' reader. Each row is checked by the same
//! rules as a JSON line. (CSV is read record by record in `csv_rows`.)

use super::Sink;
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

/// Read a whole Parquet file (already decompressed) into the sink.
pub(super) fn read(path: &Path, bytes: Vec<u8>, sink: &mut Sink<'_>) -> Option<String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return None; // empty: reported by the caller
    }
    let cursor = Cursor::new(bytes);
    let df = match ParquetReader::new(cursor).finish() {
        Ok(df) => df,
        Err(e) => {
            sink.file_error(path, 0, "unreadable_parquet", &e.to_string());
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
        match row::from_value(&value, false) {
            Ok(r) => sink.row(&r),
            Err(reason) => {
                let excerpt = value.to_string();
                sink.bad(path, i as u64 + 1, &reason, &excerpt);
            }
        }
    }
    None
}
