//! The same requests as JSONL, gzip, zstd, CSV and Parquet give the same
//! rows and the same verdicts; scores.csv and the feature table are written
//! as documented.

use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, run};
use eve::sink::memory::MemorySink;
use fixtures::logs::{LogSpec, generate};
use polars::prelude::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn scores(paths: Vec<PathBuf>, out: &Path) -> (u64, String) {
    let opts = AnalyzeOptions {
        logs: paths,
        scores_out: Some(out.to_path_buf()),
        ..AnalyzeOptions::default()
    };
    let report = run(&opts, &AnalyzerConfig::default(), &mut MemorySink::new()).unwrap();
    assert_eq!(report.ingest.bad_total(), 0, "{}", report.summary());
    (report.ingest.rows, std::fs::read_to_string(out).unwrap())
}

const COLUMNS: [&str; 14] = [
    "ts",
    "request_id",
    "account_id",
    "api_key_id",
    "src_ip",
    "user_agent",
    "endpoint",
    "model",
    "prompt",
    "conversation_turns",
    "prompt_tokens",
    "completion_tokens",
    "logprobs",
    "status",
];

/// JSONL → CSV by hand (quoted), the columns above.
fn to_csv(jsonl: &str) -> String {
    let mut out = COLUMNS.join(",") + "\n";
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| match &v[*c] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The rows of `jsonl` as a typed polars frame (the schema's types).
fn typed_frame(jsonl: &str) -> DataFrame {
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ints = [
        "conversation_turns",
        "prompt_tokens",
        "completion_tokens",
        "n",
        "max_tokens",
        "top_logprobs",
        "logit_bias_keys",
        "status",
        "latency_ms",
    ];
    let floats = ["temperature", "top_p"];
    let mut names: Vec<String> = Vec::new();
    for r in &rows {
        for k in r.as_object().unwrap().keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let columns: Vec<Column> = names
        .iter()
        .map(|n| {
            let get = |r: &serde_json::Value| r.get(n.as_str()).filter(|v| !v.is_null()).cloned();
            let name = PlSmallStr::from(n.as_str());
            if ints.contains(&n.as_str()) {
                let v: Vec<Option<i64>> = rows
                    .iter()
                    .map(|r| get(r).and_then(|v| v.as_i64()))
                    .collect();
                Column::new(name, v)
            } else if floats.contains(&n.as_str()) {
                let v: Vec<Option<f64>> = rows
                    .iter()
                    .map(|r| get(r).and_then(|v| v.as_f64()))
                    .collect();
                Column::new(name, v)
            } else if n == "logprobs" {
                let v: Vec<Option<bool>> = rows
                    .iter()
                    .map(|r| get(r).and_then(|v| v.as_bool()))
                    .collect();
                Column::new(name, v)
            } else {
                let v: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| get(r).and_then(|v| v.as_str().map(str::to_string)))
                    .collect();
                Column::new(name, v)
            }
        })
        .collect();
    DataFrame::new_infer_height(columns).unwrap()
}

#[test]
fn every_format_and_compression_gives_the_same_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = LogSpec {
        seed: 3,
        accounts: 60,
        days: 1,
        ..LogSpec::default()
    };
    let gen_dir = d.join("gen");
    let summary = generate(&spec, &gen_dir).unwrap();
    // Keep only the columns CSV carries, so every format holds the same data.
    let full = std::fs::read_to_string(&summary.requests).unwrap();
    let mut jsonl = String::new();
    for line in full.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut o = serde_json::Map::new();
        for c in COLUMNS {
            if !v[c].is_null() {
                o.insert(c.to_string(), v[c].clone());
            }
        }
        jsonl.push_str(&serde_json::Value::Object(o).to_string());
        jsonl.push('\n');
    }
    std::fs::write(d.join("r.jsonl"), &jsonl).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(jsonl.as_bytes()).unwrap();
    std::fs::write(d.join("r.jsonl.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        d.join("r.jsonl.zst"),
        zstd::encode_all(jsonl.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let csv = to_csv(&jsonl);
    std::fs::write(d.join("r.csv"), &csv).unwrap();
    // Parquet with real types, written by polars from the JSON rows.
    let mut df = typed_frame(&jsonl);
    ParquetWriter::new(std::fs::File::create(d.join("r.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();

    let (rows, reference) = scores(vec![d.join("r.jsonl")], &d.join("s0.csv"));
    assert_eq!(rows, summary.rows);
    for (i, name) in ["r.jsonl.gz", "r.jsonl.zst", "r.csv", "r.parquet"]
        .iter()
        .enumerate()
    {
        let (n, s) = scores(vec![d.join(name)], &d.join(format!("s{}.csv", i + 1)));
        assert_eq!(n, rows, "{name}");
        assert_eq!(s, reference, "{name} gives the same scores");
    }

    // scores.csv: header, one row per account, score in [0,1], flagged
    // true/false (the same form as the Parquet table's boolean).
    let lines: Vec<&str> = reference.lines().collect();
    assert_eq!(
        lines[0],
        "account_id,score,flagged,cluster_id,top_signals,model_mode"
    );
    assert_eq!(lines.len() - 1, 60);
    for l in &lines[1..] {
        let cells: Vec<&str> = l.split(',').collect();
        let score: f64 = cells[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&score));
        assert!(cells[2] == "true" || cells[2] == "false");
        assert_eq!(
            cells[2] == "true",
            score >= analyzer::model::Model::bundled().threshold
        );
    }
}

#[test]
fn feature_table_has_rows_per_account_per_key_and_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LogSpec {
        seed: 4,
        accounts: 50,
        days: 1,
        gzip: true,
        ..LogSpec::default()
    };
    let summary = generate(&spec, &dir.path().join("gen")).unwrap();
    assert!(summary.requests.to_string_lossy().ends_with(".jsonl.gz"));
    let out = dir.path().join("features.parquet");
    let opts = AnalyzeOptions {
        logs: vec![dir.path().join("gen")],
        features_out: Some(out.clone()),
        ..AnalyzeOptions::default()
    };
    let report = run(&opts, &AnalyzerConfig::default(), &mut MemorySink::new()).unwrap();
    assert_eq!(report.ingest.rows, summary.rows);
    let df = ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    for c in [
        "account_id",
        "scope",
        "api_key_id",
        "part",
        "part_discrepancy",
        "window_start",
        "window_end",
        "score",
        "flagged",
        "cluster_id",
        "requests",
        "reasoning_share",
        "topic_breadth",
        "interarrival_cv",
    ] {
        assert!(df.column(c).is_ok(), "column {c}");
    }
    // Window bounds are UTC instants, not strings; `flagged` is boolean.
    for c in ["window_start", "window_end"] {
        let dtype = df.column(c).unwrap().dtype();
        assert!(
            matches!(dtype, DataType::Datetime(TimeUnit::Milliseconds, _)),
            "{c}: {dtype:?}"
        );
    }
    assert_eq!(df.column("flagged").unwrap().dtype(), &DataType::Boolean);
    let scope = df.column("scope").unwrap().str().unwrap().clone();
    let all = df.filter(&scope.equal("all")).unwrap();
    let windows = df.filter(&scope.equal("window")).unwrap();
    assert_eq!(all.height(), 50, "one whole-input row per account");
    // One window row per account and UTC day with traffic, counted from
    // the generated file itself.
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&summary.requests).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut days = std::collections::HashSet::new();
    let mut keys: std::collections::HashMap<String, std::collections::HashMap<String, u64>> =
        Default::default();
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let account = v["account_id"].as_str().unwrap().to_string();
        days.insert((account.clone(), v["ts"].as_str().unwrap()[..10].to_string()));
        *keys
            .entry(account)
            .or_default()
            .entry(v["api_key_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(windows.height(), days.len());
    // One key row per key of each account with several keys, over the
    // account's requests through it.
    let multi: Vec<_> = keys.values().filter(|k| k.len() >= 2).collect();
    assert!(!multi.is_empty(), "the set has multi-key accounts");
    let by_key = df.filter(&scope.equal("key")).unwrap();
    assert_eq!(
        by_key.height(),
        multi.iter().map(|k| k.len()).sum::<usize>()
    );
    assert_eq!(by_key.column("api_key_id").unwrap().null_count(), 0);
    assert_eq!(all.column("api_key_id").unwrap().null_count(), all.height());
    let requests = |d: &DataFrame| -> u64 {
        d.column("requests")
            .unwrap()
            .as_materialized_series()
            .sum::<f64>()
            .unwrap() as u64
    };
    assert_eq!(requests(&all), summary.rows);
    assert_eq!(
        requests(&windows),
        summary.rows,
        "windows partition the rows"
    );
    // The verdict belongs to the whole input only.
    assert_eq!(
        windows.column("score").unwrap().null_count(),
        windows.height()
    );
    assert_eq!(all.column("score").unwrap().null_count(), 0);
}

#[test]
fn hourly_series_in_alerts_is_bounded_and_counts_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LogSpec {
        seed: 5,
        accounts: 60,
        days: 1,
        ..LogSpec::default()
    };
    let summary = generate(&spec, dir.path()).unwrap();
    // A day of traffic in at most 5 points: steps of several hours.
    let cfg = AnalyzerConfig {
        series_points: 5,
        ..AnalyzerConfig::default()
    };
    let opts = AnalyzeOptions {
        logs: vec![summary.requests.clone()],
        ..AnalyzeOptions::default()
    };
    let mut sink = MemorySink::new();
    let report = run(&opts, &cfg, &mut sink).unwrap();
    assert!(report.alerts > 0, "{}", report.summary());
    let mut seen = 0;
    let mut texts = std::collections::BTreeMap::<u32, std::collections::BTreeSet<String>>::new();
    for e in sink.events() {
        let eve::event::EventKind::Alert(a) = &e.kind else {
            continue;
        };
        // Suricata's rule fields: generator 1, a revision, one text per id.
        assert_eq!((a.alert.gid, a.alert.rev), (1, 1));
        texts
            .entry(a.alert.signature_id)
            .or_default()
            .insert(a.alert.signature.clone());
        let s = &a.evidence["requests_per_hour"];
        let counts = s["counts"].as_array().unwrap();
        let step = s["step_hours"].as_u64().unwrap();
        assert!(!counts.is_empty() && counts.len() <= 5, "{s}");
        // The points cover the time range, first hour to last.
        let first =
            eve::time::Timestamp::parse(a.evidence["time_range"]["first"].as_str().unwrap())
                .unwrap();
        let last = eve::time::Timestamp::parse(a.evidence["time_range"]["last"].as_str().unwrap())
            .unwrap();
        let start = eve::time::Timestamp::parse(s["start"].as_str().unwrap()).unwrap();
        let hour = 3_600_000_000i64;
        assert!(start <= first && first.unix_micros() - start.unix_micros() < hour);
        let hours = (last.unix_micros() - start.unix_micros()) / hour + 1;
        assert_eq!(counts.len() as i64, (hours + step as i64 - 1) / step as i64);
        let total: u64 = counts.iter().map(|c| c.as_u64().unwrap()).sum();
        assert_eq!(total, a.evidence["volume"]["requests"].as_u64().unwrap());
        seen += 1;
    }
    assert_eq!(seen, report.alerts);
    // Each id's one text is the one in docs/eve.md's signature table.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/eve.md"))
        .unwrap();
    for (sid, seen) in &texts {
        assert!(
            [analyzer::alerts::SID_ACCOUNT, analyzer::alerts::SID_CLUSTER].contains(sid),
            "{sid}"
        );
        assert_eq!(seen.len(), 1, "sid {sid}: {seen:?}");
        let row = format!("| {sid} | 1 | {} |", seen.first().unwrap());
        assert!(doc.contains(&row), "docs/eve.md lacks {row}");
    }
}
