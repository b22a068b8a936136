//! Light-hydra members under rotated clients (issue 12, item 3): a member
//! whose clients rotate and whose conversations are made up has no
//! candidate pair at all, and joins the condemned cluster (or the group of
//! flagged members) whose requests ask what it asks, in the hours it is
//! active (`joining.rs`).

use super::cohesion::scenarios;
use super::parts::{analyse, labelled};
use analyzer::analysis::{Analysis, Via};
use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::Transform;

/// Generator seed 61 (200 accounts, 2 days), `multi_turn,clients` on every
/// attack row: without joining, light-hydra members go unflagged; with
/// it, every one is flagged, every account it adds is a light-hydra
/// member, and no benign account is flagged.
#[test]
fn light_hydra_members_under_rotated_clients_join_their_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = super::evasion::generate_and_evade(
        dir.path(),
        (61, 200, 2),
        vec![Transform::MultiTurn, Transform::Clients],
        1.0,
        7,
    );
    let of = scenarios(&out.labels);
    let benign_ids = labelled(&out.labels, "benign");
    let with = analyse(&out.requests, &AnalyzerConfig::default());
    let without = analyse(
        &out.requests,
        &AnalyzerConfig {
            join_cosine: 2.0,
            ..AnalyzerConfig::default()
        },
    );
    let hydra = |a: &Analysis| {
        let members: Vec<_> = a
            .accounts
            .iter()
            .filter(|r| of[&r.account_id] == "light_hydra")
            .collect();
        let flagged = members.iter().filter(|r| r.flagged()).count();
        (flagged, members.len())
    };
    let (before, n) = hydra(&without);
    let (after, _) = hydra(&with);
    assert!(n >= 10, "{n} light-hydra members");
    assert!(before < n, "without joining {before} of {n} are flagged");
    assert_eq!(after, n, "with joining {after} of {n} are flagged");
    for (w, wo) in with.accounts.iter().zip(&without.accounts) {
        if w.flagged() != wo.flagged() {
            assert_eq!(of[&w.account_id], "light_hydra", "{} joined", w.account_id);
            assert!(matches!(w.via, Via::Cluster(_) | Via::Joined(_)));
        }
    }
    let benign = |a: &Analysis| {
        a.accounts
            .iter()
            .filter(|r| r.flagged() && benign_ids.contains(&r.account_id))
            .count()
    };
    assert_eq!(benign(&with), 0);
    assert_eq!(benign(&without), 0);
    assert!(
        with.clusters.iter().any(|c| !c.joined.is_empty()),
        "members joined a condemned cluster"
    );
}
