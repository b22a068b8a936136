//! Detection quality on generated, labelled logs: the done-when criteria of
//! the analyzer issue, on a small set (so the debug-mode test stays fast)
//! for the tuning seed (1), a second seed (7; it was inspected once, before
//! the thresholds settled — see docs/analyzer.md) and an untuned seed (2;
//! first run after the thresholds were fixed, nothing changed after it).

use analyzer::config::AnalyzerConfig;
use analyzer::{AnalyzeOptions, run};
use eve::event::{AlertCategory, EventKind};
use eve::sink::memory::MemorySink;
use fixtures::logs::{LogSpec, generate};

fn check(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let spec = LogSpec {
        seed,
        accounts: 120,
        days: 2,
        ..LogSpec::default()
    };
    let summary = generate(&spec, dir.path()).unwrap();
    let opts = AnalyzeOptions {
        logs: vec![summary.requests.clone()],
        labels: Some(summary.labels.clone()),
        ..AnalyzeOptions::default()
    };
    let mut sink = MemorySink::new();
    let report = run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    assert_eq!(
        report.ingest.rows, summary.rows,
        "every generated row is valid"
    );
    assert_eq!(report.ingest.bad_total(), 0);
    let ev = report.evaluation.as_ref().unwrap();
    eprintln!("seed {seed}:\n{ev}");
    assert!(
        ev.recall() >= 0.95,
        "seed {seed}: recall {:.3}\n{ev}",
        ev.recall()
    );
    assert!(
        ev.fp_rate() <= 0.01,
        "seed {seed}: FP rate {:.4}\n{ev}",
        ev.fp_rate()
    );
    assert_eq!(ev.unexplained, 0);
    let hydra = ev
        .attacks
        .iter()
        .find(|r| r.scenario == "hydra")
        .expect("hydra accounts generated");
    assert!(hydra.accounts >= 8);
    assert_eq!(hydra.flagged, hydra.accounts, "every hydra member flagged");
    for style in &ev.attacks {
        assert!(
            style.accounts > 0 && style.ttd_requests_median.is_some(),
            "{} detected in replay",
            style.scenario
        );
    }

    // Every alert explains itself: fired signals with values and
    // thresholds, benign explanations ruled out, a time range.
    let events = sink.events();
    let alerts: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(
        alerts
            .iter()
            .any(|a| a.alert.category == AlertCategory::DistillationCluster)
    );
    for a in &alerts {
        let signals = a.evidence["signals"].as_array().unwrap();
        assert!(!signals.is_empty());
        for s in signals {
            assert!(s["value"].is_number() && s["threshold"].is_number() && s["name"].is_string());
        }
        let families = a.evidence["families"].as_array().unwrap();
        assert!(
            families.len() >= 2,
            "independent families agree: {families:?}"
        );
        assert!(
            a.evidence["benign_ruled_out"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(a.evidence["time_range"]["first"].is_string());
        // The hourly series covers every request of the entity, bounded.
        let series = &a.evidence["requests_per_hour"];
        let counts = series["counts"].as_array().unwrap();
        assert!(!counts.is_empty() && counts.len() <= AnalyzerConfig::default().series_points);
        assert_eq!(series["step_hours"], 1, "two days fit in hourly points");
        assert!(series["start"].is_string());
        let total: u64 = counts.iter().map(|c| c.as_u64().unwrap()).sum();
        assert_eq!(total, a.evidence["volume"]["requests"].as_u64().unwrap());
        match a.alert.category {
            AlertCategory::Distillation => assert!(a.account_id.is_some()),
            AlertCategory::DistillationCluster => {
                assert!(a.cluster_id.is_some() && a.members.as_ref().is_some_and(|m| m.len() >= 3))
            }
            other => panic!("unexpected category {other:?}"),
        }
    }
    // The redacted distiller is judged on metadata, and says so.
    let redacted = alerts
        .iter()
        .find(|a| a.evidence["prompts_redacted"] == true);
    assert!(redacted.is_some_and(|a| a.evidence["note"].as_str().unwrap().contains("redacted")));
}

#[test]
fn detects_every_attack_style_without_false_positives_tuning_seed() {
    check(1);
}

#[test]
fn detects_every_attack_style_without_false_positives_second_seed() {
    check(7);
}

#[test]
fn detects_every_attack_style_without_false_positives_untuned_seed() {
    check(2);
}
