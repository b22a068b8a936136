//! Evasion (session 11): rows rewritten by `fixtures::logs::evade` (every
//! transform at once) are valid input to the analyzer's reader: no row is
//! counted bad and every row is read.

use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::{EvadeSpec, EvadeSummary, Transform, evade};

/// A generated log (`(seed, accounts, days)`) under `dir/in`, and the same
/// log with `transforms` applied to its attack accounts under `dir/out`
/// (at most 30 requests a day per account for `pacing`).
fn generate_and_evade(
    dir: &std::path::Path,
    (seed, accounts, days): (u64, usize, u32),
    transforms: Vec<Transform>,
    share: f64,
    evade_seed: u64,
) -> (fixtures::logs::LogSummary, EvadeSummary) {
    let spec = fixtures::logs::LogSpec {
        seed,
        accounts,
        days,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.join("in")).unwrap();
    let out = evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms,
        share,
        seed: evade_seed,
        per_day: 30,
        out_dir: dir.join("out"),
    })
    .unwrap();
    (logs, out)
}

#[test]
fn every_evaded_row_is_valid_input() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = generate_and_evade(dir.path(), (12, 40, 1), Transform::ALL.to_vec(), 0.5, 2);
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

/// Benign accounts flagged in a full analysis of `logs` (no replay).
fn benign_flagged(logs: &std::path::Path, labels: &std::path::Path) -> usize {
    let opts = analyzer::AnalyzeOptions {
        logs: vec![logs.to_path_buf()],
        labels: Some(labels.to_path_buf()),
        no_replay: true,
        ..analyzer::AnalyzeOptions::default()
    };
    let mut sink = eve::sink::memory::MemorySink::new();
    let report = analyzer::run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    let ev = report.evaluation.expect("labels given");
    eprintln!("{}:\n{ev}", logs.display());
    ev.false_positives
}

/// Issue 12: one operator's harvest split into hundreds of accounts of at
/// most 30 requests a day (`pacing`) outnumbers the benign accounts; the
/// peer baselines it floods must not turn the ordinary accounts it left
/// untouched into false positives (before the MAD floor of
/// `model::inputs::MAD_FLOOR` their z-scores hit the clip: 11 of the 60
/// benign accounts here were flagged, none without the flood).
#[test]
fn a_flood_of_small_accounts_flags_no_more_benign_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = 80;
    let (logs, paced) = generate_and_evade(
        dir.path(),
        (13, accounts, 2),
        vec![Transform::Pacing],
        1.0,
        11,
    );
    assert!(
        paced.accounts_added > accounts as u64,
        "a flood: more new accounts than the log had"
    );
    let before = benign_flagged(&logs.requests, &logs.labels);
    let flooded = benign_flagged(&paced.requests, &paced.labels);
    assert!(
        flooded <= before + 1,
        "the flood flagged {flooded} benign accounts, {before} without it"
    );
}

/// `account_id -> (label, scenario)` of a `labels.csv`.
fn labels(path: &std::path::Path) -> std::collections::HashMap<String, (String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut c = l.split(',');
            Some((
                c.next()?.to_string(),
                (c.next()?.to_string(), c.next()?.to_string()),
            ))
        })
        .collect()
}

/// Issue 12 item 4: a harvest that is a fraction of an ordinary account's
/// traffic, sharing its key (`mix`: a benign account's rows copied into
/// each attack account). The light hydra's members each carry a different
/// donor's traffic beside ~20 harvest requests a day, so neither a member
/// nor the cluster's merged traffic looks like harvesting; the request
/// shapes most members share are the job's, and judged alone they are.
/// Without the shared-shape facet (`facets::cluster_verdict`) no mixed
/// light-hydra member here is flagged.
#[test]
fn a_harvest_mixed_into_ordinary_accounts_is_found_by_its_shared_request_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mixed) = generate_and_evade(dir.path(), (13, 120, 3), vec![Transform::Mix], 0.3, 11);
    let cfg = AnalyzerConfig::default();
    let model = analyzer::configured_model(&cfg).unwrap();
    let (_, analysis, _) = analyzer::load_and_analyze(&[mixed.requests], &cfg, &model).unwrap();
    let labels = labels(&mixed.labels);
    let scenario = |a: &analyzer::analysis::AccountResult| labels[&a.account_id].1.clone();
    let benign_flagged: Vec<String> = analysis
        .accounts
        .iter()
        .filter(|a| a.flagged() && labels[&a.account_id].0 == "benign")
        .map(|a| format!("{} ({})", a.account_id, scenario(a)))
        .collect();
    assert!(benign_flagged.is_empty(), "benign flagged: {benign_flagged:?}");
    let hydra: Vec<&analyzer::analysis::AccountResult> = analysis
        .accounts
        .iter()
        .filter(|a| scenario(a) == "light_hydra")
        .collect();
    let by_shapes = |a: &&&analyzer::analysis::AccountResult| {
        a.flagged()
            && analysis.clusters.iter().any(|c| {
                c.flagged
                    && c.decided_by.is_some()
                    && a.cluster_id.as_deref() == Some(c.cluster.id.as_str())
            })
    };
    let found = hydra.iter().filter(by_shapes).count();
    assert!(
        hydra.len() >= 8 && found * 4 >= hydra.len() * 3,
        "{found} of {} mixed light-hydra members flagged through shared request shapes",
        hydra.len()
    );
}
