//! Job parts (session 14, issue 12 item 4): a harvest hosted in a benign
//! account, behind the host's own user agents and addresses (`host` with
//! adopted clients), is found through its part — the requests of its own
//! client settings, which ask differently from the rest of the account —
//! and the same generated log without hosting flags no account through a
//! part. A harvest under `min_requests` is a part of its own only when
//! its setting is one no other account sends; otherwise it is judged with
//! the account's other settings too few to judge alone, together.

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

/// The generator's seed 4, `accounts` accounts over 2 days, under
/// `dir/in`.
fn seed_four(dir: &Path, accounts: usize) -> fixtures::logs::LogSummary {
    let spec = fixtures::logs::LogSpec {
        seed: 4,
        accounts,
        days: 2,
        ..Default::default()
    };
    fixtures::logs::generate(&spec, &dir.join("in")).unwrap()
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
    let logs = seed_four(dir, accounts);
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

/// A log made from generator seed 4 (`accounts` x 2 days) under `dir`:
/// the first `take` requests of one reasoning harvest are moved into each
/// of the `hosts` smallest coding agents' keys that send at least ten
/// times as many — the host's
/// account, key, address and user agent — with model `model`, and the
/// distiller's other requests dropped; every other row is kept. Returns
/// the log, its labels (the hosts labelled `distill`, the distiller
/// gone) and the hosts' ids.
fn small_harvest_hosted(
    dir: &Path,
    accounts: usize,
    take: usize,
    hosts: usize,
    model: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    use serde_json::Value;
    let logs = seed_four(dir, accounts);
    let labels = std::fs::read_to_string(&logs.labels).unwrap();
    let scenario = |s: &str| -> Vec<String> {
        labels
            .lines()
            .filter(|l| l.ends_with(&format!(",{s}")))
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let distiller = scenario("reasoning_harvest").into_iter().next().unwrap();
    let rows: Vec<Value> = std::fs::read_to_string(&logs.requests)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let id = |r: &Value| r["account_id"].as_str().unwrap().to_string();
    let mut candidates: Vec<(usize, String)> = scenario("coding_agent")
        .into_iter()
        .map(|p| (rows.iter().filter(|r| id(r) == p).count(), p))
        .collect();
    // The smallest hosts with at least ten times the harvest: a tenth of
    // their traffic or less.
    candidates.retain(|p| p.0 >= 10 * take);
    candidates.sort_unstable();
    let chosen: Vec<String> = candidates.into_iter().take(hosts).map(|p| p.1).collect();
    let mut out = String::new();
    let mut moved = 0;
    for r in &rows {
        if id(r) != distiller {
            out.push_str(&serde_json::to_string(r).unwrap());
            out.push('\n');
        } else if moved < take {
            moved += 1;
            for host in &chosen {
                let own = rows.iter().find(|h| id(h) == *host).unwrap();
                let mut m = r.clone();
                for f in ["account_id", "api_key_id", "src_ip", "user_agent"] {
                    m[f] = own[f].clone();
                }
                m["model"] = Value::from(model);
                m["request_id"] = Value::from(format!("{}_{host}", r["request_id"]));
                out.push_str(&serde_json::to_string(&m).unwrap());
                out.push('\n');
            }
        }
    }
    assert_eq!(
        moved, take,
        "the distiller sends fewer than {take} requests"
    );
    let requests = dir.join("hosted.jsonl");
    std::fs::write(&requests, out).unwrap();
    let mut new_labels = String::new();
    for l in labels.lines() {
        let acct = l.split(',').next().unwrap();
        if acct == distiller {
            continue;
        }
        if chosen.iter().any(|h| h == acct) {
            new_labels.push_str(&format!("{acct},distill,reasoning_harvest\n"));
        } else {
            new_labels.push_str(l);
            new_labels.push('\n');
        }
    }
    let labels_out = dir.join("labels.csv");
    std::fs::write(&labels_out, new_labels).unwrap();
    (requests, labels_out, chosen)
}

/// The part an account was flagged through and its size, if it was.
fn flagged_part(a: &Analysis, id: &str) -> Option<u64> {
    let r = a.accounts.iter().find(|r| r.account_id == id).unwrap();
    let Via::Part(_) = &r.via else { return None };
    r.flagged()
        .then(|| r.parts.iter().map(|p| p.features.requests).min().unwrap())
}

#[test]
fn a_small_harvest_is_judged_as_a_part_whether_or_not_other_accounts_send_its_setting() {
    let cfg = AnalyzerConfig::default();
    let take = 30;
    assert!((take as u64) < cfg.min_requests);
    // One host: the harvest's setting (a model nobody else asks) is
    // unseen in the population, so its 30 requests are a part.
    let dir = tempfile::tempdir().unwrap();
    let (log, labels, hosts) = small_harvest_hosted(dir.path(), 120, take, 1, "atlas-9-private");
    let one = analyse(&log, &cfg);
    let host = &hosts[0];
    let size = flagged_part(&one, host);
    eprintln!("host {host} flagged through a part of {size:?} requests");
    assert!(
        size.is_some_and(|n| n < cfg.min_requests),
        "{host} not flagged through its {take}-request part"
    );
    let benign = labelled(&labels, "benign");
    for id in by_part(&one) {
        assert!(!benign.contains(id), "{id} is benign but flagged by a part");
    }

    // The same job in two hosts: its setting is sent by two accounts, so
    // it is not a part of its own under `min_requests`; it is judged with
    // each host's other settings too few to judge alone, together (here
    // the harvest's alone), and flags both hosts. Before that part, neither
    // host was flagged through a part.
    let dir = tempfile::tempdir().unwrap();
    let (log, labels, hosts) = small_harvest_hosted(dir.path(), 120, take, 2, "atlas-9-private");
    let two = analyse(&log, &cfg);
    for host in &hosts {
        let r = two.accounts.iter().find(|r| r.account_id == *host).unwrap();
        eprintln!("{host}: {:?} {:.3}", r.via, r.verdict.score);
        assert!(
            flagged_part(&two, host).is_some_and(|n| n < cfg.min_requests),
            "{host} not flagged through its small settings together"
        );
        let Via::Part(what) = &r.via else {
            unreachable!()
        };
        assert!(what.starts_with("settings each too few"), "{what}");
    }
    let benign = labelled(&labels, "benign");
    for id in by_part(&two) {
        assert!(!benign.contains(id), "{id} is benign but flagged by a part");
    }
}

/// Generator seed 4 (`accounts` x 2 days) with every harvest's prompts
/// wrapped in made-up turns behind rotated clients (`multi_turn,clients`
/// at share 1, evade seed 31), then each harvest hosted at 0.3 of a
/// benign host's traffic (`host`, evade seed 46), under `dir`.
fn hosted_with_made_up_turns(dir: &Path, accounts: usize) -> fixtures::logs::evade::EvadeSummary {
    let logs = seed_four(dir, accounts);
    let rotated = evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms: vec![Transform::MultiTurn, Transform::Clients],
        share: 1.0,
        seed: 31,
        per_day: 30,
        adopt_clients: false,
        out_dir: dir.join("mc"),
    })
    .unwrap();
    evade(&EvadeSpec {
        input: rotated.requests.clone(),
        labels: rotated.labels.clone(),
        transforms: vec![Transform::Host],
        share: 0.3,
        seed: 46,
        per_day: 30,
        adopt_clients: false,
        out_dir: dir.join("out"),
    })
    .unwrap()
}

#[test]
fn a_hosted_harvest_in_made_up_conversations_is_judged_on_its_made_up_turns() {
    // Each harvest is sent partly in its host's own settings, so no
    // setting's part holds it; its made-up turns (prior turns that
    // continue nothing of the key) are its own, and are one part across
    // settings.
    let dir = tempfile::tempdir().unwrap();
    let hosted = hosted_with_made_up_turns(dir.path(), 80);
    let a = analyse(&hosted.requests, &AnalyzerConfig::default());
    let hosts = labelled(&hosted.labels, "distill");
    let made_up: Vec<&str> = a
        .accounts
        .iter()
        .filter(|r| {
            r.flagged() && matches!(&r.via, Via::Part(what) if what.starts_with("made-up turns"))
        })
        .map(|r| r.account_id.as_str())
        .collect();
    eprintln!("flagged through made-up turns: {made_up:?}");
    assert!(
        !made_up.is_empty(),
        "no host flagged through its made-up turns"
    );
    for id in by_part(&a) {
        assert!(hosts.contains(id), "{id} is benign but flagged by a part");
    }
}
