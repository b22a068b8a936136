//! Volume-aware novelty of redacted prompts (`new_prompts_per_day`) and
//! the hours-of-the-day rule of a cluster's `coordinated_accounts`, on
//! hand-written request logs: what each explanatory signal must tell
//! apart, and what the model then decides, not the generator's styles.

use crate::logs::{HOUR, T0, account, ts};
use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, Report, run};
use eve::sink::memory::MemorySink;
use std::fmt::Write as _;
use std::path::Path;

struct Row<'a> {
    ms: i64,
    account: &'a str,
    ip: String,
    prompt: Prompt,
}

enum Prompt {
    /// Redacted: only the hash (64 hex digits).
    Hash(u64),
    /// Text.
    Text(String),
}

fn write_log(path: &Path, rows: &[Row]) {
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let prompt = match &r.prompt {
            Prompt::Hash(h) => format!("\"prompt_sha256\":\"{h:064x}\""),
            Prompt::Text(t) => format!("\"prompt\":{}", serde_json::json!(t)),
        };
        writeln!(
            out,
            "{{\"ts\":\"{}\",\"request_id\":\"r{i}\",\"account_id\":\"{a}\",\"api_key_id\":\"k_{a}\",\"src_ip\":\"{ip}\",\"user_agent\":\"python-httpx/0.27.2\",\"endpoint\":\"/v1/chat/completions\",\"model\":\"m-1\",{prompt},\"conversation_turns\":0,\"prompt_tokens\":40,\"completion_tokens\":1500,\"status\":200}}",
            ts(r.ms),
            a = r.account,
            ip = r.ip,
        )
        .unwrap();
    }
    std::fs::write(path, out).unwrap();
}

fn analyze(rows: &[Row], cfg: &AnalyzerConfig) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    write_log(&path, rows);
    let opts = AnalyzeOptions {
        logs: vec![path],
        ..AnalyzeOptions::default()
    };
    let report = run(&opts, cfg, &mut MemorySink::new()).unwrap();
    assert_eq!(report.ingest.bad_total(), 0);
    assert_eq!(report.ingest.rows, rows.len() as u64);
    report
}

fn fired(report: &Report, account: &str, signal: &str) -> bool {
    crate::logs::account(report, account)
        .verdict
        .fired()
        .any(|s| s.name == signal)
}

/// Three days at 2,000 requests a day, evenly spaced, redacted.
/// `harvester`: 40 % of its prompts from a fixed pool of 150, the rest new
/// every time (distinct share ~0.62, ~1,200 new prompts a day).
/// `rerunner`: the same 1,500 prompts every day (distinct share 0.25, no
/// new prompt after its first day).
fn redacted_rows() -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    let per_day = 2000i64;
    let step = 24 * HOUR / per_day;
    let mut fresh = 1_000_000u64;
    for i in 0..3 * per_day {
        let ms = T0 + i * step;
        let h = if i % 5 < 2 {
            (i as u64 * 7) % 150
        } else {
            fresh += 1;
            fresh
        };
        rows.push(Row {
            ms,
            account: "acct_harvester",
            ip: "198.51.100.7".into(),
            prompt: Prompt::Hash(h),
        });
        rows.push(Row {
            ms: ms + 1,
            account: "acct_rerunner",
            ip: "203.0.113.9".into(),
            prompt: Prompt::Hash(5_000_000 + (i % 1500) as u64),
        });
    }
    rows
}

#[test]
fn redacted_novelty_counts_new_prompts_per_day_not_only_their_share() {
    let rows = redacted_rows();
    let cfg = AnalyzerConfig::default();
    let report = analyze(&rows, &cfg);
    let acct = |id: &str| account(&report, id);
    let h = acct("acct_harvester");
    let f = &h.features;
    assert!(f.distinct_prompt_ratio < cfg.redacted_distinct, "{f:?}");
    // 1,200 new prompts a day after the first day (2 days counted).
    assert!(
        (f.new_prompts_per_day - 1200.0).abs() < 5.0,
        "{}",
        f.new_prompts_per_day
    );
    assert!(fired(&report, "acct_harvester", "redacted_harvest"));
    assert!(h.flagged(), "{:?}", h.verdict);
    let detail = &h
        .verdict
        .fired()
        .find(|s| s.name == "redacted_harvest")
        .unwrap()
        .detail;
    assert!(detail.contains("new prompts per day"), "{detail}");

    let r = acct("acct_rerunner");
    assert_eq!(r.features.new_prompts_per_day, 0.0);
    assert!((r.features.distinct_prompt_ratio - 0.25).abs() < 1e-9);
    assert!(!fired(&report, "acct_rerunner", "redacted_harvest"));
    assert!(!r.flagged());

    // Without the rate (share only, as before) the harvester is missed:
    // the rate is what catches it.
    let share_only = AnalyzerConfig {
        redacted_new_per_day: f64::INFINITY,
        ..AnalyzerConfig::default()
    };
    let report = analyze(&rows, &share_only);
    assert!(!fired(&report, "acct_harvester", "redacted_harvest"));
}

#[test]
fn new_prompts_per_day_needs_more_than_a_day() {
    // One day of all-new prompts: the share judges it, the rate is 0.
    let rows: Vec<Row> = (0..1000)
        .map(|i| Row {
            ms: T0 + i * 60_000,
            account: "acct_short",
            ip: "198.51.100.7".into(),
            prompt: Prompt::Hash(i as u64),
        })
        .collect();
    let report = analyze(&rows, &AnalyzerConfig::default());
    let f = &report.analysis.accounts[0].features;
    assert_eq!(f.new_prompts_per_day, 0.0);
    assert_eq!(f.distinct_prompt_ratio, 1.0);
    assert!(fired(&report, "acct_short", "redacted_harvest"));
}

/// Three accounts from one /24 with one client, each asking for reasoning
/// traces with new prompts, active in the same `hours` (hours after `T0`),
/// at scattered times within each hour (not machine-regular, so no account
/// fires an automation signal of its own).
fn cluster_rows(hours: &[i64], per_hour: i64) -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    for (k, account) in ["acct_a", "acct_b", "acct_c"].into_iter().enumerate() {
        for (j, &h) in hours.iter().enumerate() {
            for i in 0..per_hour {
                let n = j as i64 * per_hour + i;
                let scatter = (n * 2_654_435_761 + k as i64 * 40_503) % HOUR;
                rows.push(Row {
                    ms: T0 + h * HOUR + scatter,
                    account,
                    ip: format!("192.0.2.{}", 10 + k),
                    prompt: Prompt::Text(format!(
                        "Explain the case {account}-{n} in detail and think step by step."
                    )),
                });
            }
        }
    }
    rows.sort_by_key(|r| r.ms);
    rows
}

fn coordination_fired(report: &Report) -> bool {
    assert_eq!(report.analysis.clusters.len(), 1, "one cluster of three");
    report.analysis.clusters[0]
        .verdict
        .fired()
        .any(|s| s.name == "coordinated_accounts")
}

#[test]
fn coordination_needs_merged_traffic_spread_over_the_day() {
    let cfg = AnalyzerConfig::default();
    // One burst in the same hour (benchmark runs started together):
    // synchronized, but a shared start time — no coordination, no alert.
    let burst = analyze(&cluster_rows(&[0], 300), &cfg);
    assert!(fired(&burst, "acct_a", "reasoning_elicitation"));
    assert!(!coordination_fired(&burst));
    assert!(!burst.analysis.clusters[0].flagged);
    assert!(burst.analysis.accounts.iter().all(|a| !a.flagged()));
    // A daily job in the same clock hour for five days: five active hours
    // but one hour of the day — a shared schedule, still no coordination.
    let daily: Vec<i64> = (0..5).map(|d| d * 24 + 2).collect();
    let schedule = analyze(&cluster_rows(&daily, 60), &cfg);
    assert!(!coordination_fired(&schedule));
    assert!(schedule.analysis.accounts.iter().all(|a| !a.flagged()));
    // The same accounts in step for eight hours of one day (fewer than the
    // 12 active hours every per-account automation signal needs):
    // coordinated.
    let hours: Vec<i64> = (0..8).collect();
    let campaign = analyze(&cluster_rows(&hours, 40), &cfg);
    assert!(coordination_fired(&campaign));
    // The signal explains the cluster verdict; the model decides it
    // (docs/analyzer.md: coordination is not a model input).
    let evidence = &campaign.analysis.clusters[0].verdict;
    assert!(!evidence.contributions.is_empty());
}
