//! Setting slices (session 16, issue 12 item 4): a campaign hosted in
//! several benign accounts' keys behind the hosts' own user agents and
//! addresses (`host` with adopted clients) keeps its client settings;
//! each host's minority setting that asks differently from the rest of
//! its account is a slice, the slices of one setting are one cluster,
//! and their hosts are flagged through it. Every account so flagged is a
//! host, the cluster's alert names the setting, and the same log before
//! hosting forms no flagged setting cluster.

use super::parts::{analyse, hosted_behind_adopted_clients, labelled};
use analyzer::analysis::{Analysis, Via};
use analyzer::config::AnalyzerConfig;

fn by_setting_slices(a: &Analysis) -> Vec<&str> {
    a.accounts
        .iter()
        .filter(|r| r.flagged() && matches!(&r.via, Via::Cluster(id) if id.starts_with("ss-")))
        .map(|r| r.account_id.as_str())
        .collect()
}

#[test]
fn a_campaign_behind_its_hosts_clients_is_found_through_its_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, hosted) = hosted_behind_adopted_clients(dir.path(), 200, 0.1);
    let cfg = AnalyzerConfig::default();
    let with = analyse(&hosted.requests, &cfg);
    let hosts = labelled(&hosted.labels, "distill");
    let found = by_setting_slices(&with);
    eprintln!("flagged through setting slices: {found:?}");
    assert!(
        found.len() >= 3,
        "fewer than 3 hosts flagged through setting slices: {found:?}"
    );
    for id in &found {
        assert!(
            hosts.contains(*id),
            "{id} is benign but flagged by setting slices"
        );
    }

    // The setting cluster's alert names the setting and says why its
    // hosts were condemned.
    let opts = analyzer::AnalyzeOptions {
        logs: vec![hosted.requests.clone()],
        no_replay: true,
        ..analyzer::AnalyzeOptions::default()
    };
    let mut sink = eve::sink::memory::MemorySink::new();
    analyzer::run(&opts, &cfg, &mut sink).unwrap();
    let alerts: Vec<serde_json::Value> = sink
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|v| v["evidence"]["setting_slices"].is_object())
        .collect();
    assert!(!alerts.is_empty(), "no alert of a setting cluster");
    for v in &alerts {
        assert!(v["cluster_id"].as_str().unwrap().starts_with("ss-"), "{v}");
        assert!(
            v["evidence"]["condemned"]
                .as_str()
                .unwrap()
                .starts_with("setting slices of one setting across"),
            "{v}"
        );
        let settings = v["evidence"]["setting_slices"]["settings"]
            .as_array()
            .unwrap();
        assert_eq!(settings.len(), 1, "{v}");
        assert!(settings[0].as_str().unwrap().starts_with("model "), "{v}");
    }

    // The log before hosting: no account is flagged through a setting.
    let plain = analyse(&logs.requests, &cfg);
    assert_eq!(by_setting_slices(&plain), Vec::<&str>::new());
}
