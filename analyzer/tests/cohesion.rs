//! Cluster cohesion (session 12, issue 12): a benign group linked to a
//! harvesting campaign through a few accounts that share something with
//! both is not condemned with it, and the hydras are still caught.

use super::parts::analyse;
use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::Transform;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

/// `account_id -> scenario` of a labels file.
pub(crate) fn scenarios(labels: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut r = csv::Reader::from_path(labels).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        out.insert(row[0].to_string(), row[2].to_string());
    }
    out
}

/// The rows of `accounts` in `log`, in file order.
fn rows_of(log: &Path, accounts: &[&str]) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for line in std::io::BufReader::new(std::fs::File::open(log).unwrap()).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = v["account_id"].as_str().unwrap();
        if accounts.contains(&id) {
            out.entry(id.to_string()).or_default().push(v);
        }
    }
    out
}

/// `account_id -> is an attack account` of a labels file.
fn attack_labels(labels: &Path) -> HashMap<String, bool> {
    let mut r = csv::Reader::from_path(labels).unwrap();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            (row[0].to_string(), &row[1] == "distill")
        })
        .collect()
}

/// Flagged attack accounts and flagged benign accounts of `analysis`.
fn flagged_by_label(
    analysis: &analyzer::analysis::Analysis,
    labels: &HashMap<String, bool>,
) -> (usize, usize) {
    let (attacks, benign): (Vec<_>, Vec<_>) = analysis
        .accounts
        .iter()
        .filter(|a| a.flagged())
        .partition(|a| labels[&a.account_id]);
    (attacks.len(), benign.len())
}

/// The analysis of `log` under `with`, after checking that it catches
/// more attack accounts than the analysis under `without` (the same with
/// a rule turned off) and flags no more benign ones.
fn gains_over(
    log: &Path,
    labels: &HashMap<String, bool>,
    with: &AnalyzerConfig,
    without: &AnalyzerConfig,
) -> analyzer::analysis::Analysis {
    let with = analyse(log, with);
    let (caught_without, benign_without) = flagged_by_label(&analyse(log, without), labels);
    let (caught, benign) = flagged_by_label(&with, labels);
    assert!(
        caught > caught_without,
        "pieces caught: {caught} with the rule, {caught_without} without"
    );
    assert!(
        benign <= benign_without,
        "benign flagged: {benign} with the rule, {benign_without} without"
    );
    with
}

/// Flagged accounts of `scenario` and their number.
fn flagged(
    analysis: &analyzer::analysis::Analysis,
    of: &HashMap<String, String>,
    scenario: &str,
) -> (usize, usize) {
    let members: Vec<_> = analysis
        .accounts
        .iter()
        .filter(|a| of.get(&a.account_id).is_some_and(|s| s == scenario))
        .collect();
    (
        members.iter().filter(|a| a.flagged()).count(),
        members.len(),
    )
}

#[test]
fn a_benign_group_chained_to_harvesters_is_not_flagged_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, paced) = super::evasion::generate_and_evade(
        dir.path(),
        (13, 120, 2),
        vec![Transform::Pacing],
        1.0,
        11,
    );
    let of = scenarios(&paced.labels);
    let pick = |scenario: &str, n: usize| -> Vec<&str> {
        let mut ids: Vec<&str> = of
            .iter()
            .filter(|(_, s)| *s == scenario)
            .map(|(a, _)| a.as_str())
            .collect();
        ids.sort_unstable();
        ids.truncate(n);
        ids
    };
    // Bridges: each sends one classroom account's requests and one paced
    // harvester's (same addresses, client and hours as the one, templates
    // and shapes of the other): a chain of links from a benign group into
    // a harvesting campaign.
    let classroom = pick("classroom", 3);
    let harvesters = pick("single_distiller", 3);
    assert_eq!((classroom.len(), harvesters.len()), (3, 3));
    let all: Vec<&str> = classroom.iter().chain(&harvesters).copied().collect();
    let rows = rows_of(&paced.requests, &all);
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(&paced.requests)
        .unwrap();
    for (i, (c, h)) in classroom.iter().zip(&harvesters).enumerate() {
        for mut row in rows[*c].iter().chain(&rows[*h]).cloned() {
            row["account_id"] = format!("bridge_{i}").into();
            row["api_key_id"] = format!("key_bridge_{i}").into();
            row["request_id"] = format!("bridge_{i}_{}", row["request_id"]).into();
            writeln!(out, "{row}").unwrap();
        }
    }
    drop(out);

    let analyse = |cfg: &AnalyzerConfig| analyse(&paced.requests, cfg);
    // Whole linked components (the clusters before session 12): the chain
    // puts the classroom in the harvesters' cluster and condemns it.
    let whole = analyse(&AnalyzerConfig {
        community_resolution: 0.0,
        ..AnalyzerConfig::default()
    });
    let (chained, n) = flagged(&whole, &of, "classroom");
    assert!(
        chained * 2 > n,
        "the chain condemns the classroom with whole components: {chained} of {n}"
    );
    // Communities: the classroom is its own group, judged on its own.
    let split = analyse(&AnalyzerConfig::default());
    let (condemned, n) = flagged(&split, &of, "classroom");
    assert_eq!(
        condemned, 0,
        "{condemned} of {n} classroom accounts flagged"
    );
    // The hydras are caught as they were: the hydra whole, the paced
    // light hydra (its splits are tiny here) no less than before.
    let (caught, n) = flagged(&split, &of, "hydra");
    assert!(n >= 8);
    assert_eq!(caught, n, "every hydra member flagged");
    let (caught, n) = flagged(&split, &of, "light_hydra");
    let (before, _) = flagged(&whole, &of, "light_hydra");
    assert!(
        caught >= before,
        "light hydra: {caught} of {n} flagged, {before} with whole components"
    );
}

/// Session 14 (issue 12): one operator's jobs split into pieces of at most
/// 30 requests a day, sent from the operator's own addresses, are caught
/// through their clusters although most pieces score under
/// `cluster_member_score` on their own: the members linked by a shared
/// place that score `cluster_shared_member_score` take the verdict, and
/// no one else does — no benign account more is flagged than without the
/// rule, and every account flagged that way is an attack account behind
/// the shared addresses.
#[test]
fn a_job_split_over_accounts_run_from_one_place_is_caught_through_its_part() {
    use analyzer::analysis::{Condemned, Via};
    let dir = tempfile::tempdir().unwrap();
    let (_, paced) = super::evasion::generate_and_evade(
        dir.path(),
        (15, 80, 2),
        vec![Transform::Pacing],
        1.0,
        11,
    );
    let of = scenarios(&paced.labels);
    let labels = attack_labels(&paced.labels);
    // Client slices (`slices.rs`) link the same pieces through their
    // shared harvesting client and catch them too: off on both sides, so
    // the comparison is the shared-place rule's alone.
    let no_slices = AnalyzerConfig {
        slice_min_requests: 0,
        ..AnalyzerConfig::default()
    };
    let with = gains_over(
        &paced.requests,
        &labels,
        &no_slices,
        &AnalyzerConfig {
            cluster_shared_member_score: 1.0,
            ..no_slices.clone()
        },
    );
    let placed: Vec<_> = with
        .clusters
        .iter()
        .filter(|c| matches!(c.condemns, Some(Condemned::Placed(_))))
        .collect();
    assert!(!placed.is_empty(), "a cluster condemned through its part");
    // The cluster's alert says why its members were condemned.
    let opts = analyzer::AnalyzeOptions {
        logs: vec![paced.requests.clone()],
        no_replay: true,
        ..analyzer::AnalyzeOptions::default()
    };
    let mut sink = eve::sink::memory::MemorySink::new();
    analyzer::run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    let why: Vec<String> = sink
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter_map(|v| v["evidence"]["condemned"].as_str().map(str::to_string))
        .collect();
    assert!(
        why.iter()
            .any(|w| w.contains("share source blocks or addresses")),
        "{why:?}"
    );
    for c in placed {
        let l = &c.cluster.links;
        assert!(l.shared_blocks * 2 >= l.links, "{:?}", l);
        for &m in &c.cluster.members {
            let a = &with.accounts[m as usize];
            if a.via == Via::Cluster(c.cluster.id.clone()) {
                assert!(
                    labels[&a.account_id],
                    "{} ({})",
                    a.account_id, of[&a.account_id]
                );
                assert!(c.cluster.placed.binary_search(&m).is_ok());
            }
        }
    }
}

/// Generator seed 16 (80 accounts x 2 days) with every attack account
/// split into pieces of at most 10 requests a day (`pacing`, evade seed
/// 12), under `dir`.
fn paced_at_ten_a_day(dir: &Path) -> fixtures::logs::evade::EvadeSummary {
    use fixtures::logs::evade::{EvadeSpec, evade};
    let logs = fixtures::logs::generate(
        &fixtures::logs::LogSpec {
            seed: 16,
            accounts: 80,
            days: 2,
            ..Default::default()
        },
        &dir.join("in"),
    )
    .unwrap();
    evade(&EvadeSpec {
        input: logs.requests.clone(),
        labels: logs.labels.clone(),
        transforms: vec![Transform::Pacing],
        share: 1.0,
        seed: 12,
        per_day: 10,
        adopt_clients: false,
        out_dir: dir.join("out"),
    })
    .unwrap()
}

/// Session 14 (issue 12 item 3): one operator's jobs split into pieces of
/// at most 10 requests a day leave every piece under `min_requests`, too
/// small to be judged alone, so no member rule can pass. Such a cluster is
/// judged as a group (its merged content, its median member's volume,
/// timing and infrastructure): pieces are caught that are not without the
/// rule, no benign account more is flagged, every account flagged through
/// a group verdict is an attack piece under `min_requests`, and the
/// platform tenants, classrooms, course cohorts and company teams stay
/// unflagged.
#[test]
fn a_job_split_into_pieces_too_small_to_judge_alone_is_caught_as_a_group() {
    use analyzer::analysis::{Condemned, Via};
    let dir = tempfile::tempdir().unwrap();
    let paced = paced_at_ten_a_day(dir.path());
    let of = scenarios(&paced.labels);
    let labels = attack_labels(&paced.labels);
    let cfg = AnalyzerConfig::default();
    let with = gains_over(
        &paced.requests,
        &labels,
        &cfg,
        &AnalyzerConfig {
            cluster_small_members: 2.0,
            ..cfg.clone()
        },
    );
    let groups: Vec<_> = with
        .clusters
        .iter()
        .filter(|c| matches!(c.condemns, Some(Condemned::Small(_))))
        .collect();
    assert!(!groups.is_empty(), "a cluster condemned as a group");
    for c in groups {
        assert!(c.group.flagged && c.deciding().0.score == c.group.score);
        for &m in &c.cluster.members {
            let a = &with.accounts[m as usize];
            if a.via == Via::Cluster(c.cluster.id.clone()) {
                assert!(
                    labels[&a.account_id],
                    "{} ({})",
                    a.account_id, of[&a.account_id]
                );
                assert!(a.features.requests < cfg.min_requests);
            }
        }
    }
    for kind in [
        "saas_platform",
        "classroom",
        "course_cohort",
        "company_team",
    ] {
        let (n, all) = flagged(&with, &of, kind);
        assert_eq!(n, 0, "{n} of {all} {kind} accounts flagged");
    }
}

/// Session 15: products and teams most of which host a harvest (`host` at
/// 0.1, without adopted clients) are linked into clusters with their
/// benign peers (content pipelines, batch jobs, synthetic-data vendors).
/// A host is flagged through the harvest's own client; its whole traffic
/// is a product's, so it does not count as a member that looks like the
/// cluster, and the benign peers keep their own verdicts: counting the
/// hosts' facet scores, this log flagged 4 benign accounts through their
/// clusters; on the hosts' whole traffic 1 (in a cluster where most
/// hosts score the member bar on their whole traffic: their harvest is a
/// large part of it).
#[test]
fn benign_peers_of_hosts_keep_their_own_verdict() {
    use analyzer::analysis::Via;
    let dir = tempfile::tempdir().unwrap();
    let (_, hosted) =
        super::evasion::generate_and_evade(dir.path(), (7, 200, 2), vec![Transform::Host], 0.1, 11);
    let labels = attack_labels(&hosted.labels);
    let analysis = analyse(&hosted.requests, &AnalyzerConfig::default());
    let by_facet = analysis
        .accounts
        .iter()
        .filter(|a| a.flagged() && matches!(a.via, Via::Client(_) | Via::ApiKey(_)))
        .count();
    assert!(by_facet > 0, "no host flagged through its harvest's client");
    let benign_by_cluster: Vec<String> = analysis
        .accounts
        .iter()
        .filter(|a| a.flagged() && !labels[&a.account_id] && matches!(a.via, Via::Cluster(_)))
        .map(|a| format!("{} {:?}", a.account_id, a.via))
        .collect();
    assert!(
        benign_by_cluster.len() <= 1,
        "benign accounts flagged through a cluster: {benign_by_cluster:?}"
    );
    let (caught, benign) = flagged_by_label(&analysis, &labels);
    eprintln!("{caught} attack and {benign} benign accounts flagged, {by_facet} through a facet");
}

/// Issue 12 item 3 (session 16): a template counts as harvesting once one
/// entity sends it `template_min_requests` times with every slot new. A
/// job split into pieces of 10 requests a day, pooled, passes that bar
/// with templates no piece sends that often, and the model reads a high
/// share as a batch job's templates (the external hydra's group: 0.588,
/// -1.99 log-odds). A group's `harvest_template_share` is its median
/// member's, like its volume, and the pooled share is not.
#[test]
fn a_pooled_harvest_is_not_read_as_a_groups_templates() {
    let dir = tempfile::tempdir().unwrap();
    let paced = paced_at_ten_a_day(dir.path());
    let a = analyse(&paced.requests, &AnalyzerConfig::default());
    let mut pooled = 0;
    for c in a.clusters.iter().filter(|c| c.clients.is_empty()) {
        let mut own: Vec<f64> = c
            .cluster
            .members
            .iter()
            .map(|&m| a.accounts[m as usize].features.harvest_template_share)
            .collect();
        own.sort_by(f64::total_cmp);
        let n = own.len();
        let median = if n % 2 == 1 {
            own[n / 2]
        } else {
            (own[n / 2 - 1] + own[n / 2]) / 2.0
        };
        let group = c.group_features.harvest_template_share;
        assert!(
            (group - median).abs() < 1e-12,
            "{}: {group} vs {median}",
            c.cluster.id
        );
        if c.features.harvest_template_share > group + 0.1 {
            pooled += 1;
        }
    }
    assert!(
        pooled > 0,
        "a cluster whose pooled pieces pass the harvesting bar"
    );
}

/// Issue 12 item 3 ("a SaaS platform running many tenant accounts with one
/// system prompt must not be" caught; session 19, team23): generator seed
/// 7, 200 × 2, every harvest hosted at half of a benign account's traffic
/// (`host` 0.5, evade seed 11). A hydra cluster holds light-hydra hosts
/// and a SaaS platform's account linked to them by the platform's
/// addresses, client, shape and hours; its own traffic scores 0.002, and
/// it took the cluster's verdict as one of the hosts' machinery. A member
/// that scores under `cluster_member_floor` on its own keeps its own
/// verdict; without the floor it is flagged again, and every hydra member
/// stays flagged with it.
#[test]
fn a_hosts_ordinary_teammates_keep_their_own_verdicts() {
    use analyzer::analysis::Via;
    let dir = tempfile::tempdir().unwrap();
    let (_, hosted) =
        super::evasion::generate_and_evade(dir.path(), (7, 200, 2), vec![Transform::Host], 0.5, 11);
    let labels = attack_labels(&hosted.labels);
    let styles = scenarios(&hosted.labels);
    let through_cluster = |cfg: &AnalyzerConfig| {
        let analysis = analyse(&hosted.requests, cfg);
        let hydra_missed = analysis
            .accounts
            .iter()
            .filter(|a| styles[&a.account_id] == "hydra" && !a.flagged())
            .count();
        assert_eq!(hydra_missed, 0, "hydra members missed");
        analysis
            .accounts
            .iter()
            .filter(|a| a.flagged() && !labels[&a.account_id] && matches!(a.via, Via::Cluster(_)))
            .map(|a| (a.account_id.clone(), styles[&a.account_id].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(through_cluster(&AnalyzerConfig::default()), Vec::new());
    let no_floor = AnalyzerConfig {
        cluster_member_floor: 0.0,
        ..AnalyzerConfig::default()
    };
    let teammates = through_cluster(&no_floor);
    assert!(
        teammates.iter().any(|(_, style)| style == "saas_platform"),
        "{teammates:?}"
    );
}
