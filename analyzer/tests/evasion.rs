//! Evasion (session 11): rows rewritten by `fixtures::logs::evade` (every
//! transform at once) are valid input to the analyzer's reader: no row is
//! counted bad and every row is read.

use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::{EvadeSpec, Transform, evade};

#[test]
fn every_evaded_row_is_valid_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 12,
        accounts: 40,
        days: 1,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.path().join("in")).unwrap();
    let out = evade(&EvadeSpec {
        input: logs.requests,
        labels: logs.labels,
        transforms: Transform::ALL.to_vec(),
        share: 0.5,
        seed: 2,
        per_day: 30,
        out_dir: dir.path().join("out"),
    })
    .unwrap();
    assert!(out.rows_changed > 0);
    let (_, _, report) = analyzer::load_and_analyze(
        &[out.requests],
        &AnalyzerConfig::default(),
        &analyzer::configured_model(&AnalyzerConfig::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(report.bad_total(), 0, "{:?}", report.bad_by_reason);
    assert_eq!(report.rows, out.rows_out);
}
