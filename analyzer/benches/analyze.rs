//! `cargo bench -p analyzer --bench analyze -- FILE...`: the whole analysis
//! (ingest, text features, per-account/key/cluster features, templates,
//! clusters, scores, alerts to a counting sink) on request logs, with rows/s,
//! MB/s, CPU seconds, peak memory (VmHWM) and the time of each phase.
//! Without FILE it generates a small labelled set first (seed 1, 200
//! accounts × 2 days) so the bench always runs; the 10-million-row
//! comparison with Python polars and DuckDB is in docs/performance.md.
//! The same numbers come from `weightwatch bench analyze FILE...`.

use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, run};
use eve::sink::memory::CountingSink;
use std::path::PathBuf;

/// A line of `/proc/self/status` in bytes (`VmHWM`: peak RSS).
fn status_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// User + system CPU seconds of this process (`/proc/self/stat`, clock ticks
/// of 1/100 s on Linux).
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is a log path.
    let mut logs: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let _tmp;
    if logs.is_empty() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let spec = fixtures::logs::LogSpec {
            seed: 1,
            accounts: 200,
            days: 2,
            ..Default::default()
        };
        let summary = fixtures::logs::generate(&spec, dir.path()).expect("generate logs");
        eprintln!("no FILE given: generated {} rows", summary.rows);
        logs.push(summary.requests);
        _tmp = dir;
    }
    let cfg = AnalyzerConfig::default();
    let opts = AnalyzeOptions {
        logs,
        ..Default::default()
    };
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let start = std::time::Instant::now();
    let mut sink = CountingSink::default();
    let report = match run(&opts, &cfg, &mut sink) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("analysis failed: {e}");
            std::process::exit(1);
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    let rows = report.ingest.rows + report.ingest.bad_total();
    let t = report.timings;
    println!("rows          {rows}");
    println!("bytes         {}", report.ingest.bytes);
    println!("seconds       {secs:.2}");
    println!("cpu_seconds   {cpu:.2}");
    println!("rows/s        {:.0}", rows as f64 / secs.max(1e-9));
    println!(
        "MB/s          {:.1}",
        report.ingest.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    println!(
        "phases_s      ingest {:.2}  analysis {:.2}  output {:.2}",
        t.ingest, t.analysis, t.output
    );
    println!(
        "peak_rss_MB   {:.0}",
        status_bytes("VmHWM:").unwrap_or(0) as f64 / 1e6
    );
    println!(
        "accounts      {} ({} flagged, {} clusters flagged, {} events)",
        report.analysis.accounts.len(),
        report.flagged_accounts(),
        report.flagged_clusters(),
        sink.events
    );
}
