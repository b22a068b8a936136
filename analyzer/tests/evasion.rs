//! Evasion (session 11): rows rewritten by `fixtures::logs::evade` (every
//! transform at once) are valid input to the analyzer's reader: no row is
//! counted bad and every row is read.

use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::{EvadeSpec, EvadeSummary, Transform, evade};

/// A generated log (`(seed, accounts, days)`) under `dir/in`, and the same
/// log with `transforms` applied to its attack accounts under `dir/out`
/// (at most 30 requests a day per account for `pacing`).
pub(crate) fn generate_and_evade(
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
        adopt_clients: false,
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

/// Session 13 (issue 12 item 4): harvests hosted in benign accounts with
/// the hosts' own clients are valid input, every row is read, and the
/// evaluation counts one attack account per hosted harvest (the attack
/// accounts are gone, their hosts labelled in their place).
#[test]
fn hosted_rows_are_valid_input_and_hosts_are_the_attack_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 12,
        accounts: 40,
        days: 1,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.path().join("in")).unwrap();
    let out = evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms: vec![Transform::Host],
        share: 0.3,
        seed: 2,
        per_day: 30,
        adopt_clients: true,
        out_dir: dir.path().join("out"),
    })
    .unwrap();
    assert!(!out.hosted_shares.is_empty());
    let (_, _, report) = analyzer::load_and_analyze(
        std::slice::from_ref(&out.requests),
        &AnalyzerConfig::default(),
        &analyzer::configured_model(&AnalyzerConfig::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(report.bad_total(), 0, "{:?}", report.bad_by_reason);
    assert_eq!(report.rows, out.rows_out);
    let ev = evaluate(&out.requests, &out.labels);
    assert_eq!(
        ev.true_positives + ev.false_negatives,
        out.hosted_shares.len()
    );
}

/// The evaluation of a full analysis of `logs` (no replay).
fn evaluate(logs: &std::path::Path, labels: &std::path::Path) -> analyzer::eval::Evaluation {
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
    ev
}

/// Benign accounts flagged in a full analysis of `logs` (no replay).
fn benign_flagged(logs: &std::path::Path, labels: &std::path::Path) -> usize {
    evaluate(logs, labels).false_positives
}

/// Session 12 (issue 12, the `params` evasion): output-layer extraction
/// that asks for fewer `top_logprobs` than the maximum, a different number
/// per request, with temperature, `top_p` and `max_tokens` jittered, is
/// still flagged, and the logprob researchers beside it are not (session
/// 11's inputs counted requests at the maximum exactly: under this
/// transform the generator's logit extractors went 3 -> 0 of 3 at seed 4).
#[test]
fn logprob_extraction_below_the_maximum_is_still_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (_, evaded) = generate_and_evade(dir.path(), (14, 80, 2), vec![Transform::Params], 1.0, 11);
    let ev = evaluate(&evaded.requests, &evaded.labels);
    let style = |rows: &[analyzer::eval::StyleRow], name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .map(|r| (r.flagged, r.accounts))
            .unwrap_or_else(|| panic!("no {name} accounts"))
    };
    let (caught, of) = style(&ev.attacks, "logit_extraction");
    assert_eq!(caught, of, "logit extractors flagged under `params`");
    assert_eq!(style(&ev.benign, "logprob_researcher").0, 0);
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
