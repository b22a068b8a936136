//! The block-parallel JSON Lines reader gives exactly what the sequential
//! one gives: the same rows in the same order with the same text features,
//! the same interned names, blocks and samples, and the same bad rows
//! at the same line numbers — on a generated log that spans several read
//! blocks, with bad lines of every kind scattered through it. The store's
//! parallel grouping by account (far-dated rows dropped) gives what a plain
//! stable sort of the rows read gives, on any number of threads.

use analyzer::config::AnalyzerConfig;
use analyzer::features::{Context, DAY_MS};
use analyzer::ingest::{self, IngestReport};
use analyzer::requests::{Req, Requests, flag};
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
    let store = vec![
        format!("{:?}", store.ingested().collect::<Vec<_>>()),
        format!("{:?}", store.accounts.names),
        format!("{:?}", store.keys.names),
        format!("{:?}", store.key_account),
        format!("{:?}", store.blocks.names),
        format!("{:?}", store.uas.names),
        format!("{:?}", store.models.names),
        format!("{:?}", store.samples),
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

/// Ingest `path` on `threads` threads, unfinished.
fn store_of(path: &Path, threads: usize) -> Requests {
    let cfg = AnalyzerConfig {
        threads,
        ..AnalyzerConfig::default()
    };
    let text = TextAnalyzer::new().unwrap();
    let mut store = Requests::default();
    ingest::ingest(&[path.to_path_buf()], &cfg, &mut store, &text, None);
    store
}

#[test]
fn grouping_by_account_on_any_threads_is_a_stable_sort_without_far_rows() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 11,
        accounts: 40,
        days: 1,
        ..Default::default()
    };
    let summary = fixtures::logs::generate(&spec, dir.path()).unwrap();
    let good = std::fs::read_to_string(&summary.requests).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    // Out of time order within accounts (the grouping must sort), and two
    // rows dated far away (1970, 2999) that it must drop.
    let n = lines.len();
    lines[n / 3..n / 2].reverse();
    let ts = |l: &str| l.split("\"ts\":\"").nth(1).unwrap()[..24].to_string();
    for (at, when) in [
        (n / 4, "1970-01-01T00:00:00.000Z"),
        (n / 2, "2999-01-01T00:00:00.000Z"),
    ] {
        let far = lines[at].replace(&ts(&lines[at]), when);
        lines.insert(at, far);
    }
    let path = dir.path().join("shuffled.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();

    let cfg = AnalyzerConfig::default();
    let mut reference: Option<Vec<Req>> = None;
    for threads in [1, 2, 3] {
        let mut store = store_of(&path, threads);
        let read: Vec<Req> = store.ingested().copied().collect();
        assert_eq!(read.len(), lines.len(), "threads {threads}");
        // The reference: the quartile rule of `finish`, then a stable sort
        // by account and time of the rows in input order.
        let mut sorted: Vec<i64> = read.iter().map(|r| r.ts).collect();
        sorted.sort_unstable();
        let (q1, q3) = (sorted[read.len() / 4], sorted[3 * read.len() / 4]);
        let margin = ((q3 - q1) * 3).max(DAY_MS);
        let mut expected: Vec<Req> = read
            .iter()
            .filter(|r| (q1 - margin..=q3 + margin).contains(&r.ts))
            .copied()
            .collect();
        expected.sort_by_key(|r| (r.account, r.ts));
        assert_eq!(read.len() - expected.len(), 2, "two far rows");

        let far = store.finish(DAY_MS, threads);
        assert_eq!(far, 2, "threads {threads}");
        // `finish` also marks made-up turns (`flag::ORPHAN`, only on
        // multi-turn requests); the grouping is compared without it.
        assert!(
            store
                .reqs
                .iter()
                .all(|r| !r.has(flag::ORPHAN) || r.turns > 0)
        );
        let mut grouped = store.reqs.clone();
        grouped.iter_mut().for_each(|r| r.flags &= !flag::ORPHAN);
        assert_eq!(
            format!("{grouped:?}"),
            format!("{expected:?}"),
            "threads {threads}"
        );
        let mut joined = Vec::new();
        for a in 0..store.accounts.len() {
            let run = store.account_reqs(a);
            assert!(run.iter().all(|r| r.account as usize == a));
            joined.extend_from_slice(run);
        }
        assert_eq!(joined.len(), store.reqs.len());
        // The span and new models from the runs equal a pass over every row.
        let (first, last) = store.time_range().unwrap();
        assert_eq!(first, expected.iter().map(|r| r.ts).min().unwrap());
        assert_eq!(last, expected.iter().map(|r| r.ts).max().unwrap());
        for until in [
            i64::MIN,
            first,
            first + 1,
            (first + last) / 2,
            last,
            last + 1,
            i64::MAX,
        ] {
            assert_eq!(
                format!("{:?}", store.context(until, &cfg)),
                format!("{:?}", Context::new(&expected, until, &cfg)),
                "threads {threads}, until {until}"
            );
        }
        match &reference {
            None => reference = Some(store.reqs.clone()),
            Some(r) => assert_eq!(format!("{r:?}"), format!("{:?}", store.reqs)),
        }
    }
    // Nothing read: nothing kept, no span.
    let mut empty = Requests::default();
    assert_eq!(empty.finish(DAY_MS, 2), 0);
    assert!(empty.reqs.is_empty() && empty.time_range().is_none());
}
