//! Which members of an account cluster condemned through its members are
//! attached to the members over the bar, as members of their job are
//! ([`attached`]), and which pairs of members hold copies of the same
//! requests ([`copied`]).

use crate::analysis::Member;
use crate::cluster::Cluster;
use crate::config::AnalyzerConfig;
use crate::requests::Req;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The pairs of members of cluster `c` (member ids, the smaller first,
/// sorted) that both sent at least one request with the same prompt at
/// the same millisecond; `reqs(m)`: member `m`'s requests. Two accounts
/// do not send the same prompt in the same millisecond by chance: one
/// holds a copy of the other's rows (a `mix`ed harvest carrying a
/// customer's traffic: docs/log-generator.md), and what links them is
/// the copy, not a shared job. Requests without a prompt (hash 0) are
/// left out.
pub(crate) fn copied<'a>(c: &Cluster, reqs: impl Fn(u32) -> &'a [Req]) -> Vec<(u32, u32)> {
    let mut first: HashMap<(i64, u32), u32> = HashMap::default();
    let mut pairs: HashSet<(u32, u32)> = HashSet::default();
    for &m in &c.members {
        for r in reqs(m).iter().filter(|r| r.prompt_hash != 0) {
            let other = *first.entry((r.ts, r.prompt_hash)).or_insert(m);
            if other != m {
                pairs.insert((other.min(m), other.max(m)));
            }
        }
    }
    let mut pairs: Vec<(u32, u32)> = pairs.into_iter().collect();
    pairs.sort_unstable();
    pairs
}

/// Union-find root of `x`.
fn root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Whether each member of account cluster `c` (`own[i]`: member
/// `c.members[i]`) is attached to the members scoring
/// `cluster_member_score` on their own, as a member of their job is;
/// `copied`: the pairs of members holding copies of the same requests
/// ([`copied`]). A member under the bar that sends `min_requests` or more
/// (its own score speaks) is attached when at least two of its links go
/// to attached members and more of them than to the members under the
/// bar that speak and are not attached, or when it is one machinery's
/// piece with an attached member; attachment spreads from the members
/// over the bar in rounds, so a job whose members mostly score under the
/// bar (a harvest hosted in products' keys) is reached through its
/// fellows. Members over the bar and members too small to be judged (a
/// piece's score says nothing, for or against) are attached; links to the
/// small ones count neither way.
///
/// A `mix`ed harvest (docs/log-generator.md) carries its product
/// traffic's addresses, clients and templates, so its accounts link to
/// the product's own accounts; Leiden keeps the two dense blocks in one
/// community when they touch through enough links, and the harvesters'
/// majority over the bar condemned the whole product population (issue
/// 12, red20's failure (a)). Those look-alikes link mostly to each other
/// (an enterprise batch account: 2 links to harvesters, 17 to its fellow
/// batch accounts) or through one link to one harvester (the account whose
/// traffic was copied: a satellite); a hydra member its rewrites pulled
/// under the bar links mostly to the members over it. The links a
/// member has through copies of the same requests count as one link
/// together: the account whose rows two harvesters copied is linked to
/// both by its own rows, once, not by two jobs.
///
/// One machinery's pieces are one entity: members linked by a shared
/// place and the same main client ([`crate::cluster::Edge::machinery`])
/// are attached together once one of them is (pieces too small to be
/// judged included: they take the verdict). Members in a pair holding
/// copies of the same requests are left out of it: a harvester carrying
/// a customer's copied rows shows that customer's addresses and client,
/// and so links by place and client to the customer's fellow accounts
/// (seed 31 `mix` 0.6: 6 labelling pipelines of one company attached
/// through it). A product
/// key's job split into pieces (`pacing`) leaves every piece with the
/// product's traffic, which dilutes the harvest under the bar, and with
/// the product's addresses and client, which link the pieces to each
/// other more than to any other job's: the pieces are a block under the
/// bar, as look-alikes are, but one operator's block, and the pieces of
/// it that score over the bar speak for all of it.
pub(crate) fn attached(
    c: &Cluster,
    own: &[Member],
    copied: &[(u32, u32)],
    cfg: &AnalyzerConfig,
) -> Vec<bool> {
    let bar = cfg.cluster_member_score;
    let index: HashMap<u32, usize> = c.members.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    // Members holding copies of another member's rows, or whose rows
    // another holds: the addresses and client they show may be the other
    // account's.
    let carriers: HashSet<u32> = copied.iter().flat_map(|&(a, b)| [a, b]).collect();
    // Each member's neighbours, and whether the link is a copy.
    let mut neighbours: Vec<Vec<(usize, bool)>> = vec![Vec::new(); own.len()];
    let mut machinery: Vec<usize> = (0..own.len()).collect();
    for e in &c.edges {
        if let (Some(&i), Some(&j)) = (index.get(&e.a), index.get(&e.b)) {
            let copy = copied.binary_search(&(e.a, e.b)).is_ok();
            neighbours[i].push((j, copy));
            neighbours[j].push((i, copy));
            if e.machinery && !carriers.contains(&e.a) && !carriers.contains(&e.b) {
                let (ri, rj) = (root(&mut machinery, i), root(&mut machinery, j));
                machinery[ri.max(rj)] = ri.min(rj);
            }
        }
    }
    let machinery: Vec<usize> = (0..own.len()).map(|i| root(&mut machinery, i)).collect();
    let speaks_low: Vec<bool> = own
        .iter()
        .map(|o| o.score < bar && o.requests >= cfg.min_requests)
        .collect();
    // Members over the bar, then those the rounds attach.
    let mut anchored: Vec<bool> = own.iter().map(|o| o.score >= bar).collect();
    loop {
        // The machineries with a member attached: over the bar, too small
        // to be judged (it takes the verdict), or joined in a round.
        let mut held: HashSet<usize> = HashSet::default();
        held.extend(
            (0..own.len())
                .filter(|&i| anchored[i] || !speaks_low[i])
                .map(|i| machinery[i]),
        );
        let joining: Vec<usize> = (0..own.len())
            .filter(|&i| speaks_low[i] && !anchored[i])
            .filter(|&i| {
                if held.contains(&machinery[i]) {
                    return true;
                }
                let to = |anchor: bool| {
                    let (mut links, mut copies) = (0, 0);
                    for &(j, copy) in &neighbours[i] {
                        if anchored[j] == anchor && (anchor || speaks_low[j]) {
                            if copy {
                                copies = 1;
                            } else {
                                links += 1;
                            }
                        }
                    }
                    links + copies
                };
                let (attached, loose) = (to(true), to(false));
                attached >= 2 && attached > loose
            })
            .collect();
        if joining.is_empty() {
            break;
        }
        joining.into_iter().for_each(|i| anchored[i] = true);
    }
    // A member whose own traffic looks like no part of the job keeps its
    // verdict: it was reached by the ties of the accounts it works beside.
    (0..own.len())
        .map(|i| !speaks_low[i] || (anchored[i] && own[i].score >= cfg.cluster_member_floor))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{attached, copied};
    use crate::analysis::Member;
    use crate::cluster::{Cluster, Edge, LinkStats};
    use crate::config::AnalyzerConfig;
    use crate::requests::Req;

    fn cluster(n: u32, edges: impl IntoIterator<Item = (u32, u32, bool)>) -> Cluster {
        let mut edges: Vec<Edge> = edges
            .into_iter()
            .map(|(a, b, machinery)| Edge {
                a: a.min(b),
                b: a.max(b),
                machinery,
            })
            .collect();
        edges.sort_unstable();
        Cluster {
            id: "cl-test".into(),
            members: (0..n).collect(),
            links: LinkStats::default(),
            placed: Vec::new(),
            edges,
        }
    }

    /// Every pair in `r`, with the machinery flag `machinery`.
    fn block(r: std::ops::Range<u32>, machinery: bool) -> Vec<(u32, u32, bool)> {
        r.clone()
            .flat_map(|a| (a + 1..r.end).map(move |b| (a, b, machinery)))
            .collect()
    }

    fn judged(scores: &[f64]) -> Vec<Member> {
        scores
            .iter()
            .map(|&score| Member {
                score,
                requests: 60,
            })
            .collect()
    }

    /// Two jobs' pieces in one community (seed 46 paced at 20 a day with
    /// rotated clients, in small): job A's 6 pieces all over the bar, job
    /// B — a product key's job, its product traffic in every piece — 2
    /// pieces over the bar and 8 under it, the 10 linked to each other by
    /// the product's addresses and client and each under-bar piece to one
    /// of A's. Linked mostly to each other, B's pieces under the bar were
    /// spared as look-alikes are; one machinery's pieces, they go with
    /// the two that speak for the job. The same block linked by content
    /// only (many products' look-alikes) keeps its own verdicts.
    #[test]
    fn one_machinerys_pieces_are_attached_together() {
        let cfg = AnalyzerConfig::default();
        let mut scores = vec![0.9; 6];
        scores.extend([0.8, 0.7]);
        scores.extend([0.2, 0.1, 0.3, 0.05, 0.15, 0.25, 0.1, 0.2]);
        let own = judged(&scores);
        let across: Vec<(u32, u32, bool)> = (8..16).map(|b| (b % 6, b, false)).collect();
        let pieces = |machinery| {
            let mut e = block(0..6, false);
            e.extend(block(6..16, machinery));
            e.extend(across.iter().copied());
            cluster(16, e)
        };
        assert!(attached(&pieces(true), &own, &[], &cfg).iter().all(|&a| a));
        let look_alikes = attached(&pieces(false), &own, &[], &cfg);
        assert_eq!(look_alikes.iter().filter(|&&a| !a).count(), 8);
        // None of B's pieces over the bar, two too small to be judged
        // (they take the verdict whatever they score): they speak for the
        // machinery too (seed 55 paced: 40 of a mixed key's pieces).
        let mut own = own;
        own[6] = Member {
            score: 0.02,
            requests: 20,
        };
        own[7] = Member {
            score: 0.01,
            requests: 20,
        };
        assert!(attached(&pieces(true), &own, &[], &cfg).iter().all(|&a| a));
        let look_alikes = attached(&pieces(false), &own, &[], &cfg);
        assert_eq!(look_alikes.iter().filter(|&&a| !a).count(), 8);
    }

    /// A harvest hosted in some keys of one company (generator seed 5,
    /// `host` 0.3, in small): 4 hosts over the bar on their whole traffic,
    /// linked to each other by the harvest and to their 3 teammates by the
    /// company's addresses and client; the teammates, linked to each other
    /// the same way, score 0.001-0.005 on their own. One machinery with
    /// the hosts and more links to them than to each other, they took the
    /// hosts' verdict; they keep their own. A light-hydra member under the
    /// bar (0.09, multi-turn rewrites) linked the same way still takes it.
    #[test]
    fn a_hosts_ordinary_teammates_keep_their_own_verdicts() {
        let cfg = AnalyzerConfig::default();
        let own = judged(&[0.7, 0.66, 0.6, 0.55, 0.001, 0.005, 0.003, 0.09]);
        let mut e = block(0..7, true);
        e.extend((0..4).map(|h| (h, 7, false)));
        let c = cluster(8, e);
        assert_eq!(
            attached(&c, &own, &[], &cfg),
            vec![true, true, true, true, false, false, false, true]
        );
        // Without the floor, the company's teammates take the verdict.
        let no_floor = AnalyzerConfig {
            cluster_member_floor: 0.0,
            ..AnalyzerConfig::default()
        };
        assert!(attached(&c, &own, &[], &no_floor).iter().all(|&a| a));
    }

    /// An account whose rows two harvesters copied (`mix`) is linked to
    /// each of them by those rows: two links, both to members over the
    /// bar, which attached it. Its own rows link it once. A fellow of it
    /// (the same company's addresses and client) is linked by place and
    /// client to it and to a harvester that carries its copied rows: not
    /// one machinery with them. A member under the bar with two links of
    /// its own to the harvesters is still attached, and the copies are
    /// found from the rows themselves.
    #[test]
    fn copies_of_one_accounts_rows_link_it_once() {
        let cfg = AnalyzerConfig::default();
        let own = judged(&[0.9, 0.95, 0.9, 0.05, 0.3, 0.1]);
        let mut e = block(0..3, false);
        e.extend([(3, 0, true), (3, 1, true), (4, 0, false), (4, 1, false)]);
        e.extend([(5, 0, true), (5, 3, true)]);
        let c = cluster(6, e);
        // The donor's rows, and the harvesters' with copies of them.
        let req = |ts, prompt_hash| Req {
            ts,
            prompt_hash,
            ..Req::default()
        };
        let donor: Vec<Req> = (0..20).map(|i| req(i * 1_000, 7 + i as u32)).collect();
        let harvest = |from: i64, copy: std::ops::Range<usize>| -> Vec<Req> {
            let mut h: Vec<Req> = (0..30)
                .map(|i| req(from + i * 977, 900 + i as u32))
                .collect();
            h.extend(donor[copy].iter().copied());
            h.sort_by_key(|r| r.ts);
            h
        };
        let rows = [
            harvest(5, 0..12),
            harvest(11, 8..20),
            harvest(17, 0..0),
            donor.clone(),
            (0..20).map(|i| req(i * 1_000 + 1, 7 + i as u32)).collect(),
            (0..20).map(|i| req(i * 1_000 + 2, 7 + i as u32)).collect(),
        ];
        let copies = copied(&c, |m| &rows[m as usize]);
        assert_eq!(copies, vec![(0, 1), (0, 3), (1, 3)]);
        assert_eq!(
            attached(&c, &own, &copies, &cfg),
            vec![true, true, true, false, true, false]
        );
        // Without the copies told apart, the donor takes the verdict.
        assert!(attached(&c, &own, &[], &cfg).iter().all(|&a| a));
    }
}
