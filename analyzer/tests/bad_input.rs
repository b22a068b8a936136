//! Bad input never ends a run: broken JSON, missing fields, wrong types,
//! bad values, blank lines, non-UTF-8, empty files, compressed garbage and
//! truncated archives are counted by reason and reported with file and line,
//! and every valid row around them is still analysed.

use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, run};
use eve::sink::memory::MemorySink;
use std::io::Write;
use std::path::Path;

fn row(i: usize, account: &str) -> String {
    format!(
        r#"{{"ts":"2026-11-21T10:{:02}:{:02}.000Z","request_id":"r{i}","account_id":"{account}","api_key_id":"k1","src_ip":"203.0.113.{}","endpoint":"/v1/chat/completions","model":"atlas-2","prompt":"hello number {i}","prompt_tokens":12,"completion_tokens":40,"status":200}}"#,
        (i / 60) % 60,
        i % 60,
        i % 250
    )
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn bad_rows_are_counted_reported_and_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // JSONL: 4 good rows among every kind of bad line.
    let mut lines = vec![row(0, "a1"), row(1, "a1")];
    lines.push(r#"{"ts": "2026-11-21T10:00:00.000Z", "request_id": "#.into()); // broken JSON
    lines.push(row(2, "a1").replace(r#""account_id":"a1","#, "")); // missing field
    lines.push(row(3, "a1").replace(r#""prompt_tokens":12"#, r#""prompt_tokens":"twelve""#)); // wrong type
    lines.push(row(4, "a1").replace("2026-11-21T10", "yesterday at 10")); // bad timestamp
    lines.push(row(5, "a1").replace("203.0.113.5", "not-an-ip")); // bad address
    lines.push(String::new()); // blank line
    lines.push("[1,2,3]".into()); // not an object
    lines.push(row(6, "a1").replace(r#""status":200"#, r#""status":null"#)); // null required field
    lines.push(row(7, "a2"));
    lines.push(row(8, "a2").replace(r#""prompt_tokens":12"#, r#""prompt_tokens":12.0"#)); // lenient: still valid
    let mut jsonl = lines.join("\n").into_bytes();
    jsonl.extend_from_slice(b"\n\xff\xfe{not utf8}\n");
    write(d, "mixed.jsonl", &jsonl);
    // An empty file and one with only whitespace.
    write(d, "empty.jsonl", b"");
    write(d, "blank.csv", b"\n\n");
    // Compressed garbage: gzip and zstd magic followed by noise.
    write(
        d,
        "garbage.jsonl.gz",
        b"\x1f\x8b\x08\x00garbage garbage garbage",
    );
    write(
        d,
        "garbage.jsonl.zst",
        b"\x28\xb5\x2f\xfdnot really zstd at all",
    );
    // A gzip cut in the middle: the rows before the cut still count.
    let body: String = (100..400).map(|i| row(i, "a3") + "\n").collect();
    let full = gz(body.as_bytes());
    write(d, "truncated.jsonl.gz", &full[..full.len() * 2 / 3]);
    // CSV: one good row, one with a non-numeric token count, one without account.
    let csv = "ts,request_id,account_id,api_key_id,src_ip,endpoint,model,prompt,prompt_tokens,completion_tokens,status\n\
        2026-11-21T11:00:00.000Z,c1,a4,k4,198.51.100.7,/v1/chat/completions,atlas-2,\"hi, there\",10,20,200\n\
        2026-11-21T11:00:01.000Z,c2,a4,k4,198.51.100.7,/v1/chat/completions,atlas-2,hi,ten,20,200\n\
        2026-11-21T11:00:02.000Z,c3,,k4,198.51.100.7,/v1/chat/completions,atlas-2,hi,10,20,200\n";
    write(d, "rows.csv", csv.as_bytes());
    // A Parquet file that is not one.
    write(d, "broken.parquet", b"PAR1 this is not a parquet file PAR1");

    // Four parsing threads (the block-parallel reader) and one (sequential)
    // must report exactly the same.
    let cfg = AnalyzerConfig {
        threads: 4,
        ..AnalyzerConfig::default()
    };
    let opts = AnalyzeOptions {
        logs: vec![d.to_path_buf()],
        ..AnalyzeOptions::default()
    };
    let mut sink = MemorySink::new();
    let report = run(&opts, &cfg, &mut sink).expect("bad input never fails the run");
    let sequential = AnalyzerConfig {
        threads: 1,
        ..AnalyzerConfig::default()
    };
    let one = run(&opts, &sequential, &mut MemorySink::new()).unwrap();
    assert_eq!(one.ingest.bad_by_reason, report.ingest.bad_by_reason);
    assert_eq!(one.ingest.rows, report.ingest.rows);
    let places = |r: &analyzer::Report| -> Vec<(String, u64, String)> {
        r.ingest
            .examples
            .iter()
            .map(|e| (e.file.display().to_string(), e.line, e.reason.clone()))
            .collect()
    };
    assert_eq!(places(&one), places(&report));
    let bad = &report.ingest.bad_by_reason;
    eprintln!("{}", report.summary());
    let get = |k: &str| bad.get(k).copied().unwrap_or(0);
    assert_eq!(get("invalid_json"), 1);
    assert_eq!(get("missing_field:account_id"), 2, "JSONL and CSV");
    assert_eq!(get("wrong_type:prompt_tokens"), 2, "JSONL and CSV");
    assert_eq!(get("bad_value:ts"), 1);
    assert_eq!(get("bad_value:src_ip"), 1);
    assert_eq!(get("blank_line"), 1);
    assert_eq!(get("not_an_object"), 1);
    assert_eq!(get("missing_field:status"), 1);
    assert_eq!(get("invalid_utf8"), 1);
    assert_eq!(get("empty_file"), 2);
    assert_eq!(
        get("decompress_error"),
        3,
        "two garbage files and one truncated"
    );
    assert_eq!(get("unreadable_parquet"), 1);
    // Valid rows: 4 from mixed.jsonl, 1 from rows.csv, and the truncated
    // archive's rows up to the cut (some, not all, of 300).
    let truncated = report
        .ingest
        .files
        .iter()
        .find(|f| f.path.ends_with("truncated.jsonl.gz"))
        .unwrap();
    assert!(
        truncated.rows > 0 && truncated.rows < 300,
        "{}",
        truncated.rows
    );
    assert!(truncated.error.is_some());
    assert_eq!(report.ingest.rows, 4 + 1 + truncated.rows);
    // Examples carry file and line.
    let ex = report
        .ingest
        .examples
        .iter()
        .find(|e| e.reason == "invalid_json")
        .unwrap();
    assert!(ex.file.ends_with("mixed.jsonl"));
    assert_eq!(ex.line, 3);
    let ex = report
        .ingest
        .examples
        .iter()
        .find(|e| e.reason == "wrong_type:prompt_tokens" && e.file.ends_with("rows.csv"))
        .unwrap();
    assert_eq!(
        ex.line, 3,
        "CSV rows are named by their line, header included"
    );
    // The run finished and counted everything in its stats event.
    let stats = sink.events().into_iter().find_map(|e| match e.kind {
        eve::event::EventKind::Stats(s) => Some(s),
        _ => None,
    });
    let stats = stats.unwrap();
    assert_eq!(stats.stats.get("analyzer", "rows"), report.ingest.rows);
    assert_eq!(
        stats.stats.get("analyzer", "bad_rows"),
        report.ingest.bad_total()
    );
    assert_eq!(report.analysis.accounts.len(), 4);
}

#[test]
fn example_limit_bounds_the_report_not_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..500).map(|i| format!("{{broken {i}\n")).collect();
    write(dir.path(), "bad.jsonl", lines.as_bytes());
    let cfg = AnalyzerConfig {
        bad_row_examples: 3,
        ..AnalyzerConfig::default()
    };
    let opts = AnalyzeOptions {
        logs: vec![dir.path().join("bad.jsonl")],
        ..AnalyzeOptions::default()
    };
    let report = run(&opts, &cfg, &mut MemorySink::new()).unwrap();
    assert_eq!(report.ingest.bad_by_reason.get("invalid_json"), Some(&500));
    assert_eq!(report.ingest.examples.len(), 3);
    assert_eq!(report.ingest.rows, 0);
}

/// Generated logs plus one row dated `ts` from an account of its own.
fn with_far_row(dir: &Path, ts: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let logs = fixtures::logs::generate(
        &fixtures::logs::LogSpec {
            seed: 9,
            accounts: 40,
            days: 2,
            ..fixtures::logs::LogSpec::default()
        },
        dir,
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&logs.requests).unwrap();
    text.push_str(&row(1, "acct_far").replace("2026-11-21T10:00:01.000Z", ts));
    text.push('\n');
    let far = dir.join("with_far.jsonl");
    std::fs::write(&far, text).unwrap();
    (logs.requests, far)
}

#[test]
fn a_row_dated_far_away_changes_no_other_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let run_on = |p: &Path, labels: Option<std::path::PathBuf>| {
        let opts = AnalyzeOptions {
            logs: vec![p.to_path_buf()],
            labels,
            ..AnalyzeOptions::default()
        };
        run(&opts, &AnalyzerConfig::default(), &mut MemorySink::new()).unwrap()
    };
    for ts in [
        "1970-01-01T00:00:01.000Z",
        "2099-06-01T00:00:00.000Z",
        "9999-12-31T23:59:59.000Z",
    ] {
        let sub = dir.path().join(&ts[..4]);
        std::fs::create_dir_all(&sub).unwrap();
        let (clean, far) = with_far_row(&sub, ts);
        let a = run_on(&clean, None);
        // With labels, so the time-to-detect replay runs too: it must
        // step over the input's real span, not to the year 9999.
        let b = run_on(&far, Some(sub.join("labels.csv")));
        assert_eq!(b.ingest.far_timestamps, 1, "{ts}");
        assert_eq!(b.ingest.rows, a.ingest.rows);
        assert!(b.summary().contains("far outside"), "{}", b.summary());
        let scores = |r: &analyzer::Report| {
            r.analysis
                .accounts
                .iter()
                .filter(|x| x.features.requests > 0)
                .map(|x| (x.account_id.clone(), x.verdict.score, x.verdict.flagged))
                .collect::<Vec<_>>()
        };
        assert_eq!(scores(&a), scores(&b), "{ts}");
    }
}

fn bad(report: &analyzer::Report, reason: &str) -> u64 {
    report
        .ingest
        .bad_by_reason
        .get(reason)
        .copied()
        .unwrap_or(0)
}

fn analyze_dir(d: &Path, cfg: &AnalyzerConfig) -> analyzer::Report {
    let opts = AnalyzeOptions {
        logs: vec![d.to_path_buf()],
        ..AnalyzeOptions::default()
    };
    run(&opts, cfg, &mut MemorySink::new()).unwrap()
}

#[test]
fn a_ragged_row_or_an_open_quote_costs_one_csv_row_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let header = "ts,request_id,account_id,api_key_id,src_ip,endpoint,model,prompt,prompt_tokens,completion_tokens,status";
    let good = |i: usize| {
        format!(
            "2026-11-21T10:00:{i:02}.000Z,r{i},a1,k1,203.0.113.9,/v1/chat/completions,atlas-2,\"hello, number {i}\",12,40,200"
        )
    };
    let mut lines = vec![header.to_string(), good(0), good(1)];
    lines.push(format!("{},EXTRA", good(2))); // ragged: one cell too many
    lines.push("2026-11-21T10:00:03.000Z,r3,a1".into()); // ragged: too few
    lines.push(good(4).replace("\"hello, number 4\"", "\"never closed, 4")); // open quote
    lines.push(good(5));
    // A quoted field over two lines is one valid record.
    lines.push(good(6).replace("\"hello, number 6\"", "\"two\nlines\""));
    lines.push(good(7));
    write(d, "t.csv", lines.join("\n").as_bytes());
    let r = analyze_dir(d, &AnalyzerConfig::default());
    assert_eq!(r.ingest.rows, 5, "{}", r.summary());
    assert_eq!(bad(&r, "ragged_row"), 2, "{}", r.summary());
    assert_eq!(bad(&r, "unbalanced_quote"), 1, "{}", r.summary());
    assert_eq!(r.ingest.bad_total(), 3);
}

#[test]
fn long_lines_and_runs_of_blank_lines_are_bounded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = AnalyzerConfig {
        max_line_bytes: 64 << 10,
        ..AnalyzerConfig::default()
    };
    // One 20 MiB line (gzip: 20 KiB on disk) between good rows, then a
    // million newlines, then a good row.
    let mut text = Vec::new();
    text.extend_from_slice(row(0, "a1").as_bytes());
    text.push(b'\n');
    text.extend_from_slice(b"{\"prompt\":\"");
    text.resize(text.len() + (20 << 20), b'x');
    text.extend_from_slice(b"\"}\n");
    text.extend_from_slice(row(1, "a1").as_bytes());
    text.push(b'\n');
    text.resize(text.len() + 1_000_000, b'\n');
    text.extend_from_slice(row(2, "a1").as_bytes());
    text.push(b'\n');
    write(d, "big.jsonl.gz", &gz(&text));
    for threads in [1, 2] {
        let cfg = AnalyzerConfig {
            threads,
            ..cfg.clone()
        };
        let r = analyze_dir(d, &cfg);
        assert_eq!(r.ingest.rows, 3, "threads {threads}: {}", r.summary());
        assert_eq!(bad(&r, "line_too_long"), 1, "threads {threads}");
        assert_eq!(bad(&r, "blank_line"), 1_000_000, "threads {threads}");
        let long = r
            .ingest
            .examples
            .iter()
            .find(|e| e.reason == "line_too_long")
            .unwrap();
        assert_eq!(long.line, 2, "the long line is named by its number");
        assert!(r.ingest.examples.len() <= cfg.bad_row_examples);
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_in_a_logs_directory_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.jsonl", format!("{}\n", row(0, "a1")).as_bytes());
    let fifo = d.join("pipe.jsonl");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    // Nothing ever writes to the FIFO: opening it would block forever.
    let r = analyze_dir(d, &AnalyzerConfig::default());
    assert_eq!(r.ingest.rows, 1);
    assert_eq!(bad(&r, "not_a_regular_file"), 1);
    assert!(r.summary().contains("pipe.jsonl"), "{}", r.summary());
}
