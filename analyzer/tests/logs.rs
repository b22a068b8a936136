//! What the tests share about request logs: the clock of the hand-written
//! ones, running the whole analysis on a log, and the external labelled
//! set when it is beside the workspace.

use analyzer::analysis::AccountResult;
use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, Report, run};
use eve::sink::memory::MemorySink;
use std::io::Read;

/// One hour in milliseconds.
pub const HOUR: i64 = 3_600_000;
/// 2026-11-02T00:00:00Z, in milliseconds since the epoch.
pub const T0: i64 = 1_793_577_600_000;

/// RFC 3339 for a time (ms) in the days after `T0` (the tests stay in
/// November).
pub fn ts(ms: i64) -> String {
    let secs = (ms - T0).div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        2 + days,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// The whole analysis of `log` (JSON Lines) with `cfg`, alerts to memory;
/// every row must be good.
pub fn analyze_log(log: &str, cfg: &AnalyzerConfig) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(&path, log).unwrap();
    let opts = AnalyzeOptions {
        logs: vec![path],
        ..AnalyzeOptions::default()
    };
    let report = run(&opts, cfg, &mut MemorySink::new()).unwrap();
    assert_eq!(report.ingest.bad_total(), 0);
    report
}

/// The result for account `id` (which must be there).
pub fn account<'r>(report: &'r Report, id: &str) -> &'r AccountResult {
    report
        .analysis
        .accounts
        .iter()
        .find(|a| a.account_id == id)
        .unwrap_or_else(|| panic!("no account {id}"))
}

/// The external labelled set's requests, decompressed, or `None` (and a
/// SKIP line) when `../shared/data/apilogs-external` is not there.
pub fn external_requests() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/apilogs-external/requests.jsonl.zst");
    let Ok(file) = std::fs::File::open(&path) else {
        eprintln!("SKIP: {} is not beside the workspace", path.display());
        return None;
    };
    let mut text = String::new();
    zstd::Decoder::new(file)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    Some(text)
}
