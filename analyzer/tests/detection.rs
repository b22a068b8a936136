//! Detection quality on generated, labelled logs: the done-when criteria of
//! the analyzer issue (recall >= 0.95 at a false-positive rate <= 1 %,
//! every hydra member flagged, every alert explained in numbers) on small
//! sets (120 accounts x 3 days, so the debug-mode test stays fast). The
//! bundled model was fitted on 400 x 3 sets of seeds 1-3 and the external
//! set (docs/analyzer.md); seed 7 and seed 11 were never part of fitting,
//! and no set of this size was.

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
        days: 3,
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
    assert!(ev.roc_auc >= 0.98, "seed {seed}: ROC-AUC {:.3}", ev.roc_auc);
    for name in ["hydra", "light_hydra"] {
        let hydra = ev
            .attacks
            .iter()
            .find(|r| r.scenario == name)
            .expect("hydra accounts generated");
        assert!(hydra.accounts >= 8);
        assert_eq!(hydra.flagged, hydra.accounts, "every {name} member flagged");
    }
    for style in &ev.attacks {
        assert!(
            style.accounts > 0 && style.ttd_requests_median.is_some(),
            "{} detected in replay",
            style.scenario
        );
    }

    // Every alert explains itself: the model's score and threshold, its
    // largest contributions (value, peer baseline, part of the log-odds)
    // adding up toward the verdict, the named signals with values and
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
        let score = a.evidence["score"].as_f64().unwrap();
        assert!(score >= a.evidence["threshold"].as_f64().unwrap());
        let contributions = a.evidence["contributions"].as_array().unwrap();
        assert!(!contributions.is_empty());
        for c in contributions {
            assert!(
                c["input"].is_string()
                    && c["value"].is_number()
                    && c["baseline"].is_number()
                    && c["contribution"].is_number()
            );
        }
        let positive: f64 = contributions
            .iter()
            .filter_map(|c| c["contribution"].as_f64())
            .filter(|c| *c > 0.0)
            .sum();
        assert!(
            positive > 1.0,
            "evidence toward the verdict: {contributions:?}"
        );
        for s in a.evidence["signals"].as_array().unwrap() {
            assert!(s["value"].is_number() && s["threshold"].is_number() && s["name"].is_string());
        }
        assert!(!a.evidence["families"].as_array().unwrap().is_empty());
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
        assert_eq!(series["step_hours"], 1, "three days fit in hourly points");
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
fn detects_every_attack_style_without_false_positives_fitting_seed() {
    check(1);
}

#[test]
fn detects_every_attack_style_without_false_positives_unseen_seed() {
    check(7);
}

#[test]
fn detects_every_attack_style_without_false_positives_second_unseen_seed() {
    check(11);
}
