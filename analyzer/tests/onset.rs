//! Alerts are stamped when their verdict first held (`analyzer::onset`):
//! at one of the entity's own requests, inside the log window, with the
//! window end and the time to detect in the evidence, at moments that
//! differ from alert to alert; and the stamping changes no verdict.

use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, run};
use eve::event::EventKind;
use eve::sink::memory::MemorySink;
use eve::time::Timestamp;
use fixtures::logs::{LogSpec, generate};

fn time(v: &serde_json::Value) -> i64 {
    Timestamp::parse(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .unix_micros()
}

#[test]
fn alerts_are_stamped_when_their_verdict_first_held() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LogSpec {
        seed: 7,
        accounts: 120,
        days: 2,
        ..LogSpec::default()
    };
    let summary = generate(&spec, dir.path()).unwrap();
    let opts = AnalyzeOptions {
        logs: vec![summary.requests.clone()],
        ..AnalyzeOptions::default()
    };
    let mut sink = MemorySink::new();
    let report = run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    assert!(report.alerts >= 3, "{}", report.summary());
    let window = (
        spec.start_ms * 1000,
        (spec.start_ms + i64::from(spec.days) * 86_400_000) * 1000,
    );
    let hour = 3_600_000_000i64;
    let (mut stamps, mut before_last) = (Vec::new(), 0);
    for e in sink.events() {
        let EventKind::Alert(a) = &e.kind else {
            continue;
        };
        let ev = &a.evidence;
        let at = e.timestamp.unix_micros();
        assert_eq!(at, time(&ev["detected_at"]), "{ev:#?}");
        let (first, last) = (
            time(&ev["time_range"]["first"]),
            time(&ev["time_range"]["last"]),
        );
        let end = time(&ev["window_end"]);
        assert!((window.0..window.1).contains(&end), "{ev:#?}");
        assert!(last <= end);
        let ttd = &ev["time_to_detect"];
        let requests = ttd["requests"].as_u64().unwrap();
        assert!(requests >= 1 && requests <= ev["volume"]["requests"].as_u64().unwrap());
        if ttd["method"].as_str().unwrap().starts_with("held only") {
            assert_eq!(at, end, "{ev:#?}");
        } else {
            // One of the entity's own requests.
            assert!(first <= at && at <= last, "{ev:#?}");
            before_last += usize::from(at < last);
        }
        let hours = ttd["hours"].as_f64().unwrap();
        let want = ((at - first) as f64 / hour as f64 * 10.0).round() / 10.0;
        assert!((hours - want).abs() < 1e-9, "{hours} vs {want}");
        stamps.push(at);
    }
    assert_eq!(stamps.len(), report.alerts);
    // Caught before their traffic ended, at moments of their own.
    assert!(
        before_last * 2 > stamps.len(),
        "{before_last} of {} alerts before the entity's last request",
        stamps.len()
    );
    let n = stamps.len();
    stamps.sort_unstable();
    stamps.dedup();
    assert_eq!(stamps.len(), n, "alerts share a moment");
}
