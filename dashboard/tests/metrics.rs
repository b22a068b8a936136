//! `GET /metrics` as a scraper sees it: every family described, every
//! counter there from the start, `promtool check metrics` clean, and
//! OpenMetrics when asked for (checked by the reference parser of
//! `prometheus_client`).

use super::STORE;
use crate::common::*;
use dashboard::Scope;
use std::io::Write;
use std::process::{Command, Stdio};

/// Every family the dashboard exports, and every counter series.
const FAMILIES: [&str; 9] = [
    "weightwatch_dashboard_ingest_events_total",
    "weightwatch_dashboard_ingest_throttled_total",
    "weightwatch_dashboard_triage_total",
    "weightwatch_dashboard_logins_total",
    "weightwatch_dashboard_events_stored",
    "weightwatch_dashboard_alerts_stored",
    "weightwatch_dashboard_alerts_open",
    "weightwatch_dashboard_stream_subscribers",
    "weightwatch_dashboard_ingest_commit_seconds",
];
const SERIES: [&str; 13] = [
    r#"weightwatch_dashboard_ingest_events_total{result="accepted"}"#,
    r#"weightwatch_dashboard_ingest_events_total{result="duplicate"}"#,
    r#"weightwatch_dashboard_ingest_events_total{result="conflict"}"#,
    r#"weightwatch_dashboard_ingest_events_total{result="rejected"}"#,
    "weightwatch_dashboard_ingest_throttled_total",
    r#"weightwatch_dashboard_triage_total{status="new"}"#,
    r#"weightwatch_dashboard_triage_total{status="investigating"}"#,
    r#"weightwatch_dashboard_triage_total{status="resolved"}"#,
    r#"weightwatch_dashboard_triage_total{status="false_positive"}"#,
    r#"weightwatch_dashboard_logins_total{result="ok"}"#,
    r#"weightwatch_dashboard_logins_total{result="failed"}"#,
    r#"weightwatch_dashboard_logins_total{result="throttled"}"#,
    r#"weightwatch_dashboard_logins_total{result="busy"}"#,
];

/// Run `program args` with `input` on stdin: `None` when it is not installed.
fn pipe(program: &str, args: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[test]
fn prometheus_text_is_complete_from_the_start_and_lint_clean() {
    let s = TestServer::start_on(STORE);
    let read = s.token(Scope::Read);
    // Scraped before anything was ingested, triaged or signed in here.
    let m = s.get("/metrics", Some(&read));
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for family in FAMILIES {
        assert!(
            m.body.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{}",
            m.body
        );
        assert!(
            m.body.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}:\n{}",
            m.body
        );
    }
    for series in SERIES {
        let present = m.body.lines().any(|l| {
            l.strip_prefix(series)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some()
        });
        assert!(present, "{series} is not there from the start:\n{}", m.body);
    }
    match pipe("promtool", &["check", "metrics"], &m.body) {
        Some((ok, out)) => assert!(ok && out.trim().is_empty(), "promtool:\n{out}"),
        None => {
            eprintln!("SKIP promtool check: promtool is not installed (Debian package prometheus)")
        }
    }
}

#[test]
fn openmetrics_is_served_when_asked_for() {
    let s = TestServer::start_on(STORE);
    let read = s.token(Scope::Read);
    s.ingest(
        &s.token(Scope::Ingest),
        &[flow("om-1", 0, 1, "10.0.0.5", "203.0.113.9", 1000)],
    );
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let m = request(
        "GET",
        &s.url("/metrics"),
        Some(&read),
        None,
        &[("accept", accept)],
    );
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(m.body.ends_with("# EOF\n"), "{}", m.body);
    assert!(!m.body.contains("\n\n"), "{}", m.body);
    // Counter families are named without `_total`; their samples keep it.
    assert!(
        m.body
            .contains("# TYPE weightwatch_dashboard_ingest_events counter"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains(r#"weightwatch_dashboard_ingest_events_total{result="accepted"} "#),
        "{}",
        m.body
    );
    // The reference parser (strict: it raises on anything malformed).
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        fams = list(p(sys.stdin.read()))\n\
        print(len(fams))\n";
    match pipe("/usr/bin/python3", &["-c", script], &m.body) {
        Some((true, out)) => {
            assert_eq!(out.trim(), FAMILIES.len().to_string(), "{}", m.body)
        }
        Some((false, out)) if out.contains("No module named") => {
            eprintln!("SKIP OpenMetrics parser: python3-prometheus-client is not installed")
        }
        Some((false, out)) => panic!("OpenMetrics parser refused:\n{out}\n{}", m.body),
        None => eprintln!("SKIP OpenMetrics parser: /usr/bin/python3 is not installed"),
    }
    // Without the Accept header: the Prometheus text format.
    let plain = s.get("/metrics", Some(&read));
    assert!(
        plain
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!plain.body.contains("# EOF"));
}
