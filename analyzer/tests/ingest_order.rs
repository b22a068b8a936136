//! The block-parallel JSON Lines reader gives exactly what the sequential
//! one gives: the same rows in the same order with the same text features,
//! the same interned names, samples and addresses, and the same bad rows
//! at the same line numbers — on a generated log that spans several read
//! blocks, with bad lines of every kind scattered through it.

use analyzer::config::AnalyzerConfig;
use analyzer::ingest::{self, IngestReport};
use analyzer::requests::Requests;
use analyzer::text::TextAnalyzer;
use std::collections::BTreeMap;
use std::path::Path;

/// Everything ingest produced, as comparable text.
fn read(path: &Path, threads: usize) -> (IngestReport, Vec<String>) {
    let cfg = AnalyzerConfig {
        threads,
        max_line_bytes: 4096,
        bad_row_examples: 10_000,
        ..AnalyzerConfig::default()
    };
    let text = TextAnalyzer::new().unwrap();
    let mut store = Requests::default();
    let report = ingest::ingest(&[path.to_path_buf()], &cfg, &mut store, &text, None);
    let mut ips: Vec<Vec<String>> = store
        .ips
        .iter()
        .map(|s| s.iter().map(|ip| ip.to_string()).collect())
        .collect();
    ips.iter_mut().for_each(|s| s.sort());
    let store = vec![
        format!("{:?}", store.reqs),
        format!("{:?}", store.accounts.names),
        format!("{:?}", store.keys.names),
        format!("{:?}", store.key_account),
        format!("{:?}", store.blocks.names),
        format!("{:?}", store.uas.names),
        format!("{:?}", store.models.names),
        format!("{:?}", store.samples),
        format!("{ips:?}"),
    ];
    (report, store)
}

#[test]
fn parallel_and_sequential_ingest_give_identical_rows_features_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 5,
        accounts: 40,
        days: 1,
        ..Default::default()
    };
    let summary = fixtures::logs::generate(&spec, dir.path()).unwrap();
    let good = std::fs::read(&summary.requests).unwrap();
    // Every 400th line is followed by a bad one of the next kind; good
    // lines every 7th end in CRLF.
    let kinds = [
        "invalid_json",
        "missing_field:account_id",
        "blank_line",
        "invalid_utf8",
        "not_an_object",
        "wrong_type:prompt_tokens",
        "line_too_long",
    ];
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    let mut bad_lines: Vec<(u64, &str)> = Vec::new();
    let mut out = Vec::new();
    let mut line_no = 0u64;
    let lines: Vec<&[u8]> = good
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(line);
        out.extend_from_slice(if i % 7 == 3 { b"\r\n" } else { b"\n" });
        line_no += 1;
        if i % 400 != 399 {
            continue;
        }
        let kind = kinds[(i / 400) % kinds.len()];
        let s = String::from_utf8_lossy(line);
        let bad: Vec<u8> = match kind {
            "invalid_json" => line[..line.len() / 2].to_vec(),
            "missing_field:account_id" => s.replace("\"account_id\":", "\"acct\":").into(),
            "blank_line" => b"   ".to_vec(),
            "invalid_utf8" => [&line[..20], b"\xff\xfe", &line[20..]].concat(),
            "not_an_object" => b"[1,2,3]".to_vec(),
            "wrong_type:prompt_tokens" => s
                .replace("\"prompt_tokens\":", "\"prompt_tokens\":\"many\",\"pt\":")
                .into(),
            _ => format!("{{\"prompt\":\"{}\"}}", "x".repeat(5000)).into(),
        };
        out.extend_from_slice(&bad);
        out.push(b'\n');
        line_no += 1;
        *expected.entry(kind).or_default() += 1;
        bad_lines.push((line_no, kind));
    }
    // Several of the parallel reader's 4 MiB blocks, so rows and bad lines
    // fall on both sides of block boundaries.
    assert!(out.len() > 12 << 20, "{} bytes", out.len());
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, &out).unwrap();

    let (seq, seq_store) = read(&path, 1);
    let expected: BTreeMap<String, u64> = expected
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    assert_eq!(seq.bad_by_reason, expected);
    assert_eq!(seq.rows, lines.len() as u64);
    let places: Vec<(u64, String)> = seq
        .examples
        .iter()
        .map(|e| (e.line, e.reason.clone()))
        .collect();
    let injected: Vec<(u64, String)> = bad_lines.iter().map(|(l, k)| (*l, k.to_string())).collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(sorted, injected, "every bad line named by its number");
    for threads in [2, 3] {
        let (par, par_store) = read(&path, threads);
        assert_eq!(par.rows, seq.rows, "threads {threads}");
        assert_eq!(par.bad_by_reason, seq.bad_by_reason, "threads {threads}");
        let ex = |r: &IngestReport| -> Vec<(u64, String, String)> {
            r.examples
                .iter()
                .map(|e| (e.line, e.reason.clone(), e.excerpt.clone()))
                .collect()
        };
        assert_eq!(ex(&par), ex(&seq), "threads {threads}");
        for (a, b) in par_store.iter().zip(&seq_store) {
            assert!(a == b, "threads {threads}: the stores differ");
        }
    }
}
