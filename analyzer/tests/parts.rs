//! Job parts (session 14, issue 12 item 4): a harvest hosted in a benign
//! account, behind the host's own user agents and addresses (`host` with
//! adopted clients), is found through its part — the requests of its own
//! client settings, which ask differently from the rest of the account —
//! and the same generated log without hosting flags no account through a
//! part.

use analyzer::analysis::{Analysis, Via};
use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::{EvadeSpec, Transform, evade};
use std::collections::HashSet;
use std::path::Path;

/// The analysis of `logs` under `cfg` (the configured model).
pub(crate) fn analyse(logs: &Path, cfg: &AnalyzerConfig) -> Analysis {
    let model = analyzer::configured_model(cfg).unwrap();
    analyzer::load_and_analyze(&[logs.to_path_buf()], cfg, &model)
        .unwrap()
        .1
}

/// Generator seed 4 (`accounts` x 2 days) with each harvest hosted at
/// `share` of a benign host's traffic behind the host's own user agents
/// and addresses (`host`, adopted clients, evade seed 11), under `dir`:
/// the log before hosting, and after.
pub(crate) fn hosted_behind_adopted_clients(
    dir: &Path,
    accounts: usize,
    share: f64,
) -> (
    fixtures::logs::LogSummary,
    fixtures::logs::evade::EvadeSummary,
) {
    let spec = fixtures::logs::LogSpec {
        seed: 4,
        accounts,
        days: 2,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.join("in")).unwrap();
    let hosted = evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms: vec![Transform::Host],
        share,
        seed: 11,
        per_day: 30,
        adopt_clients: true,
        out_dir: dir.join("out"),
    })
    .unwrap();
    (logs, hosted)
}

/// Accounts labelled `label` in a labels file.
pub(crate) fn labelled(labels: &Path, label: &str) -> HashSet<String> {
    std::fs::read_to_string(labels)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            let id = f.next()?;
            (f.next()? == label).then(|| id.to_string())
        })
        .collect()
}

fn by_part(a: &Analysis) -> Vec<&str> {
    a.accounts
        .iter()
        .filter(|r| r.flagged() && matches!(r.via, Via::Part(_)))
        .map(|r| r.account_id.as_str())
        .collect()
}

#[test]
fn a_harvest_hosted_behind_its_hosts_clients_is_flagged_through_its_part() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, hosted) = hosted_behind_adopted_clients(dir.path(), 80, 0.3);
    let cfg = AnalyzerConfig::default();
    let with_parts = analyse(&hosted.requests, &cfg);
    let hosts = labelled(&hosted.labels, "distill");
    let found = by_part(&with_parts);
    eprintln!("flagged through a part: {found:?}");
    assert!(
        !found.is_empty(),
        "no hosted harvest flagged through its part"
    );
    for id in &found {
        assert!(hosts.contains(*id), "{id} is benign but flagged by a part");
    }

    // Without parts (none tested), the same accounts are not flagged.
    let without = analyse(
        &hosted.requests,
        &AnalyzerConfig {
            part_max: 0,
            ..AnalyzerConfig::default()
        },
    );
    for id in &found {
        let a = without
            .accounts
            .iter()
            .find(|a| a.account_id == *id)
            .unwrap();
        assert!(!a.flagged(), "{id} flagged without parts too");
    }

    // The log before hosting: no account is flagged through a part.
    let plain = analyse(&logs.requests, &cfg);
    assert_eq!(by_part(&plain), Vec::<&str>::new());
}
