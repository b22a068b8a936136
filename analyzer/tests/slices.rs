//! Client slices linked across accounts (session 15, issue 12 items 3
//! and 4): a campaign's pieces hosted in several benign accounts' keys,
//! each sent from the campaign's own client and addresses as a tenth of
//! its host's traffic (`host` without adopted clients), are linked through
//! those slices and their hosts flagged by the slice cluster; with slices
//! off the same hosts are not flagged, and no benign account is flagged
//! that was not flagged without slices.

use super::parts::{analyse, labelled};
use analyzer::analysis::{Analysis, Via};
use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::Transform;
use std::collections::HashSet;

fn flagged(a: &Analysis) -> HashSet<&str> {
    a.accounts
        .iter()
        .filter(|r| r.flagged())
        .map(|r| r.account_id.as_str())
        .collect()
}

#[test]
fn a_campaign_hosted_in_several_accounts_keys_is_linked_through_its_client() {
    let dir = tempfile::tempdir().unwrap();
    let (_, hosted) =
        super::evasion::generate_and_evade(dir.path(), (4, 200, 2), vec![Transform::Host], 0.1, 11);
    let hosts = labelled(&hosted.labels, "distill");
    let with = analyse(&hosted.requests, &AnalyzerConfig::default());
    let by_slices: Vec<&str> = with
        .accounts
        .iter()
        .filter(|r| r.flagged() && matches!(&r.via, Via::Cluster(id) if id.starts_with("sl-")))
        .map(|r| r.account_id.as_str())
        .collect();
    eprintln!("flagged through linked slices: {by_slices:?}");
    assert!(
        by_slices.len() >= 3,
        "fewer than 3 hosts flagged through linked slices: {by_slices:?}"
    );
    for id in &by_slices {
        assert!(hosts.contains(*id), "{id} is benign but flagged by slices");
    }

    // The slice cluster's alert names the linking clients and says why
    // its hosts were condemned.
    let opts = analyzer::AnalyzeOptions {
        logs: vec![hosted.requests.clone()],
        no_replay: true,
        ..analyzer::AnalyzeOptions::default()
    };
    let mut sink = eve::sink::memory::MemorySink::new();
    analyzer::run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    let sliced: Vec<serde_json::Value> = sink
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|v| v["evidence"]["client_slices"].is_object())
        .collect();
    assert!(!sliced.is_empty(), "no alert of a slice cluster");
    for v in &sliced {
        assert!(v["cluster_id"].as_str().unwrap().starts_with("sl-"), "{v}");
        assert!(
            v["evidence"]["condemned"]
                .as_str()
                .unwrap()
                .starts_with("client slices linked across"),
            "{v}"
        );
        assert!(
            !v["evidence"]["client_slices"]["user_agents"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    // Without slices — and without job parts, whose settings too few to
    // judge alone, together, judge a small harvest on its own requests
    // too — the slices' accounts are not flagged.
    let without = analyse(
        &hosted.requests,
        &AnalyzerConfig {
            slice_min_requests: 0,
            part_max: 0,
            ..AnalyzerConfig::default()
        },
    );
    let before = flagged(&without);
    for id in &by_slices {
        assert!(!before.contains(id), "{id} flagged without slices too");
    }
    let benign_after: HashSet<&str> = flagged(&with)
        .into_iter()
        .filter(|id| !hosts.contains(*id))
        .collect();
    let benign_before: HashSet<&str> = before
        .into_iter()
        .filter(|id| !hosts.contains(*id))
        .collect();
    assert!(
        benign_after.is_subset(&benign_before),
        "benign accounts flagged only with slices: {:?}",
        benign_after.difference(&benign_before)
    );
}
