//! Peer baselines describe ordinary customers, however many distillers a
//! log holds (session 13, `peer_trim_score`).

use analyzer::config::AnalyzerConfig;
use analyzer::model::inputs::{INPUTS, Transform};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The completion peers' medians of the peer-relative inputs.
fn peer_medians(logs: &Path, cfg: &AnalyzerConfig) -> Vec<f64> {
    let model = analyzer::configured_model(cfg).unwrap();
    let (_, analysis, _) = analyzer::load_and_analyze(&[logs.to_path_buf()], cfg, &model).unwrap();
    INPUTS
        .iter()
        .zip(&analysis.peers.groups[0])
        .filter(|(d, _)| matches!(d.transform, Transform::PeerZ))
        .map(|(_, b)| b.median)
        .collect()
}

/// The log's rows of its benign accounts only.
fn benign_only(logs: &Path, labels: &Path, out: &Path) -> PathBuf {
    let benign: Vec<String> = std::fs::read_to_string(labels)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("benign"))
        .map(|l| format!("\"account_id\":\"{}\"", l.split(',').next().unwrap()))
        .collect();
    let path = out.join("benign.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in std::io::BufReader::new(std::fs::File::open(logs).unwrap()).lines() {
        let line = line.unwrap();
        if benign.iter().any(|b| line.contains(b.as_str())) {
            writeln!(w, "{line}").unwrap();
        }
    }
    path
}

/// The generator's logs hold a quarter distillers, a lab's own far fewer.
/// Measured against every account, the medians of the peer-relative inputs
/// (volume, answer length, output/input ratio, new prompts) sit between
/// the benign and the attack populations, so the same benign account is
/// judged differently in a log with distillers and in one without
/// (session 13: generator seed 4 without its attack accounts flagged its 8
/// long-form accounts). Trimmed, the baselines of the whole log stay
/// within half the distance of the untrimmed ones from those of its
/// benign accounts alone.
#[test]
fn peer_baselines_stay_with_the_benign_accounts_when_distillers_are_many() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 16,
        accounts: 120,
        days: 2,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.path().join("in")).unwrap();
    let benign = benign_only(&logs.requests, &logs.labels, dir.path());
    let trimmed = AnalyzerConfig::default();
    let untrimmed = AnalyzerConfig {
        peer_trim_score: 1.0,
        ..AnalyzerConfig::default()
    };
    let clean = peer_medians(&benign, &untrimmed);
    let distance = |cfg: &AnalyzerConfig| -> f64 {
        peer_medians(&logs.requests, cfg)
            .iter()
            .zip(&clean)
            .map(|(a, b)| (a - b).abs())
            .sum()
    };
    let (with_trim, without) = (distance(&trimmed), distance(&untrimmed));
    eprintln!("distance from the benign medians: trimmed {with_trim:.3}, untrimmed {without:.3}");
    assert!(
        without > 0.3,
        "the distillers move the untrimmed medians ({without:.3})"
    );
    assert!(
        with_trim < 0.5 * without,
        "trimmed {with_trim:.3} against untrimmed {without:.3}"
    );
}

/// Issue 12: one operator's harvest split into a flood of pieces of at
/// most 20 requests a day, each too small to score high on its own, must
/// not become the peer baseline its ordinary customers are judged
/// against (generator seed 4 at 20 a day: 2,890 pieces beside 303 benign
/// accounts moved new prompts per day's median 48 -> 17.6 and flagged 11
/// benign accounts). The pieces link into clusters: a cluster whose
/// members distill as a group leaves the baselines, and no cluster weighs
/// more than `inputs::CLUSTER_WEIGHT` accounts in them. Here (seed 4,
/// 120 x 2, 20 a day; the group trim does the work) requests per day's
/// median moves 0.44 of the benign MAD with the rule (0.34 without the
/// cap) and 1.10 without either; new prompts per day 0.21.
#[test]
fn a_flood_of_pieces_does_not_move_the_peer_baselines() {
    use fixtures::logs::evade::{EvadeSpec, Transform as Evasion, evade};
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 4,
        accounts: 120,
        days: 2,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.path().join("in")).unwrap();
    let paced = evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms: vec![Evasion::Pacing],
        share: 1.0,
        seed: 12,
        per_day: 20,
        adopt_clients: false,
        out_dir: dir.path().join("out"),
    })
    .unwrap();
    assert!(
        paced.accounts_added > 2 * spec.accounts as u64,
        "a flood: {} pieces beside {} accounts",
        paced.accounts_added,
        spec.accounts
    );
    let cfg = AnalyzerConfig::default();
    let model = analyzer::configured_model(&cfg).unwrap();
    let baselines = |logs: &Path| {
        let (_, analysis, _) =
            analyzer::load_and_analyze(&[logs.to_path_buf()], &cfg, &model).unwrap();
        analysis.peers.groups[0].clone()
    };
    let clean = baselines(&benign_only(&logs.requests, &logs.labels, dir.path()));
    let flooded = baselines(&paced.requests);
    for name in ["requests_per_day", "new_prompts_per_day"] {
        let i = analyzer::model::inputs::index(name).unwrap();
        let (c, f) = (clean[i], flooded[i]);
        let moved = (f.median - c.median).abs() / c.mad;
        eprintln!(
            "{name}: benign only {:.3} (MAD {:.3}), flooded {:.3}: {moved:.2} MADs",
            c.median, c.mad, f.median
        );
        assert!(moved < 0.6, "{name} moved {moved:.2} MADs under the flood");
    }
}
