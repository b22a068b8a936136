//! The whole analysis over the first `n` requests of a [`Requests`]: features and
//! verdicts per account, per API key and per cluster, combined into one
//! result per account.

use crate::attach;
use crate::cluster::{self, Cluster};
use crate::config::AnalyzerConfig;
use crate::features::{self, Baselines, Context, Features};
use crate::group;
use crate::joining;
use crate::model::Model;
use crate::model::inputs::{self, Peers};
use crate::par;
use crate::parts::{self, Part, PartKey};
use crate::requests::{Req, Requests};
use crate::score::{self, Judge, Verdict};
use crate::slices;
use serde::Serialize;
use std::collections::BTreeMap;

/// What decided an account's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Its own traffic.
    Account,
    /// One of its API keys (e.g. a reseller's extraction key).
    ApiKey(String),
    /// One of its client programs: user agent and system prompt (a
    /// harvesting script run beside a product's traffic).
    Client(String),
    /// One of its job parts (see [`crate::parts`]): requests of one
    /// client setting that ask differently from the rest of the account
    /// (a harvest run inside a product's key and clients).
    Part(String),
    /// The cluster it belongs to.
    Cluster(String),
    /// A group of accounts flagged on their own, in no cluster, whose
    /// merged requests it asks like ([`crate::joining`]).
    Joined(String),
}

/// The result for one account.
#[derive(Clone, Debug, Serialize)]
pub struct AccountResult {
    /// Index in the store.
    pub index: u32,
    /// Account id.
    pub account_id: String,
    /// Features of its whole traffic.
    pub features: Features,
    /// The deciding verdict (account, key or cluster).
    pub verdict: Verdict,
    /// Which entity decided.
    pub via: Via,
    /// The cluster it belongs to, if any.
    pub cluster_id: Option<String>,
    /// Counted in its peer group's baseline: it scored under
    /// `peer_trim_score` against the whole population (see
    /// [`benign_peers`]).
    pub peer: bool,
    /// For an account with several API keys: the features of its own
    /// requests through each key (key index, features), in key order —
    /// the facets judged and the feature table's `key` rows.
    pub keys: Vec<(u32, Features)>,
    /// For an account judged facet by facet: its candidate job parts (a
    /// minority of its requests asking differently from the rest), the
    /// parts judged and the feature table's `part` rows.
    pub parts: Vec<Part>,
}

impl AccountResult {
    /// Alerted on?
    pub fn flagged(&self) -> bool {
        self.verdict.flagged
    }
}

/// The result for one cluster.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterResult {
    /// Members and links.
    pub cluster: Cluster,
    /// Features of the members' traffic taken together.
    pub features: Features,
    /// Verdict on the aggregate.
    pub verdict: Verdict,
    /// The features of the cluster as a group: the merged traffic's
    /// content with the median member's volume, timing and infrastructure
    /// ([`group::per_member`]).
    pub group_features: Features,
    /// Verdict on the group.
    pub group: Verdict,
    /// Members whose own traffic scores at least `cluster_member_score`.
    pub members_with_content: usize,
    /// Which members take the cluster's verdict (`None`: not flagged).
    pub condemns: Option<Condemned>,
    /// The cluster is alerted on as a whole.
    pub flagged: bool,
    /// For a cluster of client or setting slices ([`crate::slices`]):
    /// each member's slice keys in the cluster ([`slices::Slicing::key`]:
    /// for client slices, user agent index << 16 | system prompt hash),
    /// parallel to `cluster.members`; its traffic in the cluster is those
    /// slices' requests. Empty for a cluster of whole accounts.
    pub clients: Vec<Vec<u64>>,
    /// What its slices are cut by (meaningful when `clients` is not empty).
    pub slicing: slices::Slicing,
    /// Accounts in no cluster that joined it, condemned, by what they ask
    /// ([`crate::joining`]): account index and vocabulary cosine.
    pub joined: Vec<(u32, f64)>,
}

impl ClusterResult {
    /// The verdict its condemned members take, and the features it was
    /// reached on: the group's for [`Condemned::Small`], else the merged
    /// traffic's.
    pub fn deciding(&self) -> (&Verdict, &Features) {
        match self.condemns {
            Some(Condemned::Small(_)) => (&self.group, &self.group_features),
            _ => (&self.verdict, &self.features),
        }
    }
}

/// Everything the analysis found.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// Span and new models.
    #[serde(skip)]
    pub context: Option<Context>,
    /// Peer baselines.
    pub baselines: Baselines,
    /// The peer groups of the model's peer-relative inputs.
    #[serde(skip)]
    pub peers: Peers,
    /// One per account, in store order.
    pub accounts: Vec<AccountResult>,
    /// Clusters of at least `min_cluster_size`.
    pub clusters: Vec<ClusterResult>,
    /// How many accounts send each client setting ([`parts::holders`]),
    /// over the requests analysed.
    #[serde(skip)]
    pub holders: rustc_hash::FxHashMap<PartKey, u32>,
}

/// What a member brings to its cluster's judgement: its own score and how
/// many requests it sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Member {
    /// Its score on its own whole traffic (not a facet's or a part's), or
    /// on its slices in a cluster of slices.
    pub score: f64,
    /// Its requests.
    pub requests: u64,
}

/// Which members of a flagged cluster take its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Condemned {
    /// Every member: at least half of them score `cluster_member_score`
    /// on their own.
    All,
    /// The members run from a shared place that score this much on their
    /// own (`cluster_shared_member_score`).
    Placed(f64),
    /// The members with fewer requests than this (`min_requests`): too
    /// small to be judged alone, they take the group's verdict
    /// ([`crate::group`]), not the merged traffic's.
    Small(u64),
}

impl Condemned {
    /// Whether member `m` of cluster `c` takes the cluster's verdict.
    pub fn takes(self, c: &Cluster, m: u32, own: Member) -> bool {
        match self {
            Condemned::All => true,
            Condemned::Placed(bar) => own.score >= bar && c.placed.binary_search(&m).is_ok(),
            Condemned::Small(bar) => own.requests < bar,
        }
    }
}

/// Which members of cluster `c` take a verdict of the cluster
/// (`own[i]`: member `c.members[i]`), or `None` when the cluster does not
/// condemn its members; `merged` and `group`: whether the cluster's merged
/// traffic and its group ([`crate::group::per_member`]) are flagged.
///
/// A cluster whose merged traffic is flagged condemns every member when at
/// least half of them score `cluster_member_score` on their own: most
/// members look like the merged traffic, not one bad apple (who is flagged
/// on its own) among benign look-alikes, nor a platform's tenants behind
/// one system prompt whose traffic only adds up. The half may also be
/// counted among the members that speak for themselves, when at least
/// `min_cluster_size` members send `min_requests` or more: those, and any
/// scoring the bar with fewer. A member too small to be judged alone
/// scores near 0 whatever it sends, so counting it as acquitting would
/// let an operator dilute the judged pieces of a job (pieces split at 20
/// requests a day: a quarter large enough to be judged, every one of them
/// scoring the bar) with smaller pieces of the same job. Accounts run from one
/// place — most links share a source block or exact addresses, as one
/// operator's machinery does when it splits a job over many accounts —
/// need less: at least half the members linked to another by a shared
/// place and scoring `cluster_shared_member_score`, and then only those
/// take the verdict (their part in the job; a look-alike that scores
/// less, or is not behind the shared addresses, keeps its own). A job
/// split into pieces of 30 requests a day leaves each piece too small to
/// score 0.5 but not to carry the job's content; independent customers
/// who resemble each other (long-form writers) rarely share their
/// addresses.
///
/// Split finer (10 requests a day), each piece sends fewer than
/// `min_requests` and scores near 0: its own score says nothing, for or
/// against. When at least `cluster_small_members` of the members are that
/// small, the cluster is
/// judged as a group — the merged traffic's content with each member's
/// own volume, timing and infrastructure — and, when the group is
/// flagged, its small members take the group's verdict (members large
/// enough to be judged keep their own). This comes before the
/// shared-place rule, which reads the members' own scores: a small
/// piece's score says nothing, so a bar on it (0.3) would leave out the
/// pieces of the same job that happen to score under it.
pub(crate) fn condemned(
    c: &Cluster,
    own: &[Member],
    merged: bool,
    group: bool,
    cfg: &AnalyzerConfig,
) -> Option<Condemned> {
    let half = |n: usize| n * 2 >= c.members.len();
    let count = |k: Condemned| {
        c.members
            .iter()
            .zip(own)
            .filter(|&(&m, &o)| k.takes(c, m, o))
            .count()
    };
    if merged {
        let bar = cfg.cluster_member_score;
        let high = own.iter().filter(|o| o.score >= bar).count();
        // Members that speak for themselves: enough requests to be judged
        // alone, or a score over the bar all the same.
        let judged = own.iter().filter(|o| o.requests >= cfg.min_requests);
        let speaking = high + judged.clone().filter(|o| o.score < bar).count();
        if half(high) || (judged.count() >= cfg.min_cluster_size && high * 2 >= speaking) {
            return Some(Condemned::All);
        }
    }
    // Most members too small to be judged alone: the group decides for
    // them, before any rule that reads their own scores.
    let small = Condemned::Small(cfg.min_requests);
    let share = count(small) as f64 / c.members.len().max(1) as f64;
    if group && share >= cfg.cluster_small_members {
        return Some(small);
    }
    let l = &c.links;
    let placed = Condemned::Placed(cfg.cluster_shared_member_score);
    (merged && l.links > 0 && l.shared_blocks * 2 >= l.links && half(count(placed)))
        .then_some(placed)
}

/// The cluster's own automation signal: many accounts acting in step
/// (synchronized hourly activity on most links) are one operator's machinery.
/// It needs the members' merged traffic in `coordination_hours_of_day`
/// distinct hours of the day: activity vectors that cover an hour or two of
/// the day are "synchronized" by a shared schedule (benchmark runs started
/// in the same clock hour, daily jobs), not by a shared operator, however
/// many days they run; an operator's machinery spreads over the day, so a
/// campaign is judged within hours of its start rather than after half a
/// day of merged traffic.
pub(crate) fn coordination(c: &Cluster, f: &Features, cfg: &AnalyzerConfig) -> score::Signal {
    let l = &c.links;
    let sync = if l.links == 0 {
        0.0
    } else {
        l.synchronized as f64 / l.links as f64
    };
    score::signal(
        "coordinated_accounts",
        score::Family::Automation,
        sync,
        0.5,
        c.members.len() >= cfg.min_cluster_size
            && sync >= 0.5
            && f.hours_of_day >= cfg.coordination_hours_of_day,
        format!(
            "{} accounts active in {} distinct hours of the day (needs >= {}); {} links: {} synchronized (mean cosine {:.2}), {} shared source blocks, {} shared templates (mean Jaccard {:.2}), {} same request shape, {} same client",
            c.members.len(),
            f.hours_of_day,
            cfg.coordination_hours_of_day,
            l.links,
            l.synchronized,
            l.mean_sync_cosine,
            l.shared_blocks,
            l.shared_templates,
            l.mean_template_jaccard,
            l.same_shape,
            l.same_client
        ),
    )
}

/// Clusters of client slices linked across accounts, or of setting
/// slices ([`crate::slices`]), judged as account clusters are, each host
/// account a member with the requests of its slices in the cluster; a
/// condemned host, unless flagged already, takes the verdict.
fn slice_clusters(
    store: &Requests,
    per_account: &[&[Req]],
    accounts: &mut [AccountResult],
    ctx: &Context,
    judge: &Judge<'_>,
    slicing: slices::Slicing,
) -> Vec<ClusterResult> {
    let cfg = judge.cfg;
    let threads = par::threads(cfg.threads);
    let indices: Vec<u32> = (0..per_account.len() as u32).collect();
    let mut all: Vec<slices::Slice<'_>> = par::map(&indices, threads, |&a| {
        slices::of_account(a, per_account[a as usize], slicing, cfg)
    })
    .into_iter()
    .flatten()
    .collect();
    let owner: Vec<u32> = all.iter().map(|s| s.account).collect();
    let entities: Vec<Vec<&Req>> = all
        .iter_mut()
        .map(|s| std::mem::take(&mut s.reqs))
        .collect();
    let found = match slicing {
        slices::Slicing::Client => cluster::clusters_of_parts(
            &entities,
            &owner,
            |m| slices::name(store, &all[m as usize]),
            "sl",
            ctx,
            cfg,
        ),
        slices::Slicing::Setting => slices::setting_clusters(store, &all, cfg),
    };
    // Each cluster over its host accounts: a host's slices in the cluster
    // (one, or several client programs) are its member's requests.
    let found: Vec<(Cluster, Vec<Vec<u32>>)> = found
        .into_iter()
        .filter_map(|mut c| {
            let mut hosts: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
            for &m in &c.members {
                hosts.entry(owner[m as usize]).or_default().push(m);
            }
            if hosts.len() < cfg.min_cluster_size.max(2) {
                return None;
            }
            let mut placed: Vec<u32> = c.placed.iter().map(|&m| owner[m as usize]).collect();
            placed.sort_unstable();
            placed.dedup();
            c.placed = placed;
            // Its links are between slices, and a slice cluster's members
            // are not judged by attachment ([`takers`]).
            c.edges = Vec::new();
            c.members = hosts.keys().copied().collect();
            Some((c, hosts.into_values().collect()))
        })
        .collect();
    let judged = par::map(&found, threads, |(c, hosted)| {
        // A host's slices are disjoint (one client program each): its
        // requests in the cluster are theirs, merged in time order.
        let member_reqs: Vec<Vec<&Req>> = hosted
            .iter()
            .map(|ms| {
                let mut reqs: Vec<&Req> = ms
                    .iter()
                    .flat_map(|&m| entities[m as usize].iter().copied())
                    .collect();
                reqs.sort_by_key(|r| r.ts);
                reqs
            })
            .collect();
        let mut merged: Vec<&Req> = member_reqs.iter().flatten().copied().collect();
        merged.sort_by_key(|r| r.ts);
        let f = features::compute(&merged, ctx, cfg);
        let v = score::score_with(&f, judge, vec![coordination(c, &f, cfg)]);
        let member_feats: Vec<Features> = member_reqs
            .iter()
            .map(|reqs| features::compute(reqs, ctx, cfg))
            .collect();
        let refs: Vec<&Features> = member_feats.iter().collect();
        let g = group::per_member(&f, &refs);
        let gv = score::score_with(&g, judge, vec![coordination(c, &f, cfg)]);
        let own: Vec<Member> = member_feats
            .iter()
            .map(|mf| Member {
                score: score::probability(mf, judge),
                requests: mf.requests,
            })
            .collect();
        // Members under the bar go with a majority over it, as in account
        // clusters; when those over it are a majority only of the members
        // that speak for themselves, those under it must carry the job.
        let low = under_bar(&own, cfg);
        let carried = condemned(c, &own, v.flagged, gv.flagged, cfg) != Some(Condemned::All)
            || low.len() * 2 <= own.len()
            || {
                let reqs = low
                    .iter()
                    .flat_map(|&i| member_reqs[i].iter().copied())
                    .collect();
                let feats: Vec<&Features> = low.iter().map(|&i| &member_feats[i]).collect();
                carried(reqs, &feats, ctx, judge)
            };
        ((f, v, g, gv), own, carried)
    });
    found
        .into_iter()
        .zip(judged)
        .map(|((c, hosted), (judged, own, carried))| {
            let clients = hosted
                .iter()
                .map(|ms| ms.iter().map(|&m| all[m as usize].client).collect())
                .collect();
            conclude(
                c,
                judged,
                &own,
                (clients, slicing),
                (carried, &[]),
                accounts,
                cfg,
            )
        })
        .collect()
}

/// What a cluster's judgement found: its merged traffic's features and
/// verdict, and its group's ([`group::per_member`]).
type Judged = (Features, Verdict, Features, Verdict);

/// Cluster `c`, judged (`judged`), with its members' own judgements `own`
/// (parallel to `c.members`): which members it condemns
/// ([`condemned`]); each condemned member not flagged already takes the
/// verdict, and the cluster as its `cluster_id` — in a cluster of client
/// or setting slices (`clients` not empty) only members whose slices are too small
/// to be judged alone or score `cluster_shared_member_score` on their own.
///
/// `carried`: whether the members under `cluster_member_score` carry the
/// job on their own ([`carried`]; for a slice cluster; an account cluster
/// asks it of each member: [`attach::attached`], with `copied` its pairs
/// of members holding copies of the same requests); when they do not, a cluster
/// condemned through its members ([`Condemned::All`]) takes only the
/// members over the bar ([`takers`]).
fn conclude(
    c: Cluster,
    (f, v, g, gv): Judged,
    own: &[Member],
    (clients, slicing): (Vec<Vec<u64>>, slices::Slicing),
    (carried, copied): (bool, &[(u32, u32)]),
    accounts: &mut [AccountResult],
    cfg: &AnalyzerConfig,
) -> ClusterResult {
    let members_with_content = own
        .iter()
        .filter(|o| o.score >= cfg.cluster_member_score)
        .count();
    let condemns = condemned(&c, own, v.flagged, gv.flagged, cfg);
    let taken = match condemns {
        Some(Condemned::Small(_)) => &gv,
        _ => &v,
    };
    let sliced = !clients.is_empty();
    let takers = takers(condemns, &c, own, (sliced, carried), copied, cfg);
    for (&m, takes) in c.members.iter().zip(takers) {
        let a = &mut accounts[m as usize];
        if takes && !a.verdict.flagged {
            a.verdict = taken.clone();
            a.via = Via::Cluster(c.id.clone());
            a.cluster_id = Some(c.id.clone());
        }
    }
    ClusterResult {
        cluster: c,
        features: f,
        verdict: v,
        group_features: g,
        group: gv,
        members_with_content,
        condemns,
        flagged: condemns.is_some(),
        clients,
        slicing,
        joined: Vec::new(),
    }
}

/// Whether the members of a slice cluster that score under
/// `cluster_member_score` on their own ([`under_bar`]: their slices'
/// requests `merged`, their slices' features `members`) carry the job
/// without the members over it: their traffic judged as a group
/// ([`group::per_member`]: merged content, the median member's volume,
/// timing and infrastructure) is flagged. A campaign's small slices still
/// ask for its job together; a few individual developers whose second
/// model happens to share a setting with a campaign's hosts (5-19
/// requests each, scoring 0.01) ask for a developer's traffic, and the
/// hosts beside them are flagged on their own. True when no member is
/// under the bar.
fn carried(mut merged: Vec<&Req>, members: &[&Features], ctx: &Context, judge: &Judge<'_>) -> bool {
    if members.is_empty() {
        return true;
    }
    merged.sort_by_key(|r| r.ts);
    let f = features::compute(&merged, ctx, judge.cfg);
    score::score_with(&group::per_member(&f, members), judge, Vec::new()).flagged
}

/// The members of a cluster (`own[i]`) under `cluster_member_score`.
fn under_bar(own: &[Member], cfg: &AnalyzerConfig) -> Vec<usize> {
    (0..own.len())
        .filter(|&i| own[i].score < cfg.cluster_member_score)
        .collect()
}

/// Which members of cluster `c` (`own[i]`: member `c.members[i]`) take
/// the verdict of a cluster that `condemns`, in a cluster of slices or not
/// (`sliced`) whose members under the member bar do or do not carry the
/// job (`carried`): [`takes_verdict`], where in an account cluster
/// condemned through its members ([`Condemned::All`]) a member under the
/// bar carries the job only when it is attached to the members over it
/// ([`attach::attached`]; `copied`: its pairs of members holding copies of
/// the same requests, [`attach::copied`]).
fn takers(
    condemns: Option<Condemned>,
    c: &Cluster,
    own: &[Member],
    (sliced, carried): (bool, bool),
    copied: &[(u32, u32)],
    cfg: &AnalyzerConfig,
) -> Vec<bool> {
    let attached = match condemns {
        Some(Condemned::All) if !sliced => attach::attached(c, own, copied, cfg),
        _ => vec![carried; own.len()],
    };
    c.members
        .iter()
        .zip(own)
        .zip(attached)
        .map(|((&m, &o), carries)| takes_verdict(condemns, c, m, o, (sliced, carries), cfg))
        .collect()
}

/// Whether member `m` of cluster `c` (its own judgement `o`) takes the
/// verdict of a cluster that `condemns` ([`Condemned::takes`]), in a
/// cluster of slices or not (`sliced`) whose members under the member
/// bar do or do not carry the job (`carried`, [`carried`]). A member of a
/// slice cluster whose slices are large enough to be judged alone and
/// look ordinary there is a look-alike linked to the campaign (a power
/// user's curl script through the same proxies), not a host of it: it
/// keeps its own verdict. A member under `cluster_member_score` whose
/// fellows under it do not carry the job keeps its own verdict too.
fn takes_verdict(
    condemns: Option<Condemned>,
    c: &Cluster,
    m: u32,
    o: Member,
    (sliced, carried): (bool, bool),
    cfg: &AnalyzerConfig,
) -> bool {
    let host =
        !sliced || o.requests < cfg.min_requests || o.score >= cfg.cluster_shared_member_score;
    let carries = carried || o.score >= cfg.cluster_member_score;
    condemns.is_some_and(|k| k.takes(c, m, o)) && host && carries
}

/// What account `a` brings to its cluster's judgement: the score of its
/// whole traffic, not of a facet. A product that hosts a harvest in one
/// client or key is flagged through that facet on its own; its whole
/// traffic is a product's, and it does not make the cluster of products
/// it belongs to look like distillers who send it all.
pub(crate) fn member(a: &AccountResult, judge: &Judge<'_>) -> Member {
    Member {
        score: match a.via {
            Via::Account => a.verdict.score,
            _ => score::probability(&a.features, judge),
        },
        requests: a.features.requests,
    }
}

fn refs(reqs: &[Req]) -> Vec<&Req> {
    reqs.iter().collect()
}

/// The peer baselines of the accounts that do not already look like
/// distillers, and for each account whether it is among them.
///
/// A peer baseline is meant to describe ordinary customers. Taken over
/// every account, it moves with how many distillers a log holds: the
/// generator's sets hold 25 % (the external set 7 %), a lab's own logs far
/// fewer, and with the distillers gone the same benign accounts sit
/// further from the median (generator seed 4 without its attack accounts:
/// 8 long-form accounts flagged, 0 with them; docs/analyzer.md, session
/// 13). So the accounts are first scored against the whole population,
/// and the baselines are then taken over those scoring under
/// `peer_trim_score` (a kind left with fewer than [`inputs::MIN_PEERS`]
/// takes the model's reference, as any small group does). A cluster is
/// judged the same way as a group (`groups`: its merged traffic with the
/// median member's volume, timing and infrastructure, [`group::per_member`]),
/// and when the group scores `peer_trim_score` none of its members is a
/// peer: one operator's job split into thousands of pieces, each too small
/// to score high alone, would otherwise become the median its ordinary
/// customers are judged against (issue 12). In both passes no cluster
/// weighs more than [`inputs::CLUSTER_WEIGHT`] accounts
/// ([`inputs::operator_weights`]), so what the group trim misses is
/// bounded too. Models are fitted against baselines of their sets'
/// benign accounts, weighted the same way ([`crate::labelled_inputs`]),
/// which this approximates without labels.
/// `peer_trim_score` >= 1 keeps every account.
fn benign_peers(
    feats: &[Features],
    groups: &[(&Cluster, &Features)],
    baselines: &Baselines,
    cfg: &AnalyzerConfig,
    model: &Model,
    threads: usize,
) -> (Peers, Vec<bool>) {
    let reference = model.reference_peers();
    let weighted = |keep: &[bool]| -> Peers {
        let w = inputs::operator_weights(
            feats.len(),
            groups.iter().map(|(c, _)| c.members.as_slice()),
            keep,
        );
        let population: Vec<(&Features, f64)> = feats
            .iter()
            .zip(keep)
            .zip(w)
            .filter(|((_, k), _)| **k)
            .map(|((f, _), w)| (f, w))
            .collect();
        Peers::of(&population, &reference)
    };
    let active: Vec<bool> = feats.iter().map(|f| f.requests > 0).collect();
    let all = weighted(&active);
    if cfg.peer_trim_score >= 1.0 {
        return (all, active);
    }
    let judge = Judge {
        cfg,
        baselines,
        peers: &all,
        model,
    };
    let mut keep = par::map(feats, threads, |f| {
        f.requests > 0 && score::probability(f, &judge) < cfg.peer_trim_score
    });
    let distilling = par::map(groups, threads, |(_, g)| {
        score::probability(g, &judge) >= cfg.peer_trim_score
    });
    for ((c, _), out) in groups.iter().zip(distilling) {
        if out {
            for &m in &c.members {
                keep[m as usize] = false;
            }
        }
    }
    (weighted(&keep), keep)
}

/// Analyse the requests sent before `until` (ms; `i64::MAX` for all),
/// judged by `model`.
pub fn analyze(store: &Requests, until: i64, cfg: &AnalyzerConfig, model: &Model) -> Analysis {
    let ctx = store.context(until, cfg);
    let per_account: Vec<&[Req]> = (0..store.accounts.len())
        .map(|a| {
            let reqs = store.account_reqs(a);
            &reqs[..reqs.partition_point(|r| r.ts < until)]
        })
        .collect();
    let threads = par::threads(cfg.threads);
    let feats: Vec<Features> = par::map_largest_first(
        &per_account,
        threads,
        |reqs| reqs.len(),
        |reqs| features::compute(&refs(reqs), &ctx, cfg),
    );
    let baselines = Baselines::of(&feats.iter().filter(|f| f.requests > 0).collect::<Vec<_>>());
    // Clusters link accounts by what they send, not by how they score, and
    // their features are the members' traffic: both come before the peer
    // baselines, which leave out the clusters that distill as a group.
    let found = cluster::clusters(store, &per_account, &ctx, cfg);
    let rows = |c: &Cluster| {
        c.members
            .iter()
            .map(|&m| per_account[m as usize].len())
            .sum()
    };
    let cluster_feats = par::map_largest_first(&found, threads, rows, |c| {
        let reqs = Requests::merged_by_time(c.members.iter().map(|&m| per_account[m as usize]));
        let f = features::compute(&reqs, &ctx, cfg);
        let member_feats: Vec<&Features> = c.members.iter().map(|&m| &feats[m as usize]).collect();
        let g = group::per_member(&f, &member_feats);
        (f, g)
    });
    let groups: Vec<(&Cluster, &Features)> = found
        .iter()
        .zip(&cluster_feats)
        .map(|(c, (_, g))| (c, g))
        .collect();
    let (peer_groups, in_peers) = benign_peers(&feats, &groups, &baselines, cfg, model, threads);
    let judge = Judge {
        cfg,
        baselines: &baselines,
        peers: &peer_groups,
        model,
    };
    let judge = &judge;
    let mut accounts: Vec<AccountResult> = feats
        .into_iter()
        .enumerate()
        .zip(in_peers)
        .map(|((i, f), peer)| {
            let verdict = score::score(&f, judge);
            AccountResult {
                index: i as u32,
                account_id: store.accounts.names[i].clone(),
                features: f,
                verdict,
                via: Via::Account,
                cluster_id: None,
                peer,
                keys: Vec::new(),
                parts: Vec::new(),
            }
        })
        .collect();

    // Facets: an account with several API keys, or several client
    // programs (user agent and system prompt), is also judged facet by
    // facet, so a harvesting job run as a fraction of a real product's
    // traffic — through its own key, or its own script on a shared key —
    // is not averaged away by the product's honest traffic; and so is each
    // job part that asks differently from the rest of its account (the
    // same script behind the product's own clients).
    let multi_key: Vec<usize> = accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.features.keys >= 2)
        .map(|(i, _)| i)
        .collect();
    let key_features = par::map(&multi_key, threads, |&a| {
        key_facets(store, a, per_account[a], &ctx, cfg)
    });
    for (&a, keys) in multi_key.iter().zip(key_features) {
        accounts[a].keys = keys;
    }
    let candidates: Vec<usize> = accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.verdict.flagged && a.features.requests >= 2 * cfg.min_requests)
        .map(|(i, _)| i)
        .collect();
    let holders = parts::holders(&per_account, threads);
    let facet_verdicts = par::map(&candidates, threads, |&a| {
        let (best, tried) = best_facet(&accounts[a].keys, per_account[a], judge, &ctx);
        let parts = parts::candidates(per_account[a], &holders, &ctx, cfg);
        let part = best_part(&parts, tried, judge);
        (best, parts, part)
    });
    let mut part_verdicts = Vec::new();
    for (&a, (best, parts, part)) in candidates.iter().zip(facet_verdicts) {
        let acct = &mut accounts[a];
        acct.parts = parts;
        if let Some((key, v)) = part {
            part_verdicts.push((a, key, v));
        }
        let Some((facet, v)) = best else {
            continue;
        };
        if v.score > acct.verdict.score {
            acct.via = match facet {
                Facet::Key(k) => Via::ApiKey(store.keys.names[k as usize].clone()),
                Facet::Client(id) => {
                    let ua = store
                        .uas
                        .names
                        .get((id >> 16) as usize)
                        .map_or("-", |s| s.as_str());
                    Via::Client(format!("{ua} (system prompt #{:04x})", id & 0xffff))
                }
            };
            acct.verdict = v;
        }
    }

    let pairs: Vec<(&Cluster, &(Features, Features))> = found.iter().zip(&cluster_feats).collect();
    let judged = par::map(&pairs, threads, |&(c, (f, g))| {
        let v = score::score_with(f, judge, vec![coordination(c, f, cfg)]);
        let gv = score::score_with(g, judge, vec![coordination(c, f, cfg)]);
        (v, gv)
    });
    let mut clusters = Vec::new();
    for ((c, (f, g)), (v, gv)) in found.into_iter().zip(cluster_feats).zip(judged) {
        let own: Vec<Member> = c
            .members
            .iter()
            .map(|&m| member(&accounts[m as usize], judge))
            .collect();
        for &m in &c.members {
            accounts[m as usize].cluster_id = Some(c.id.clone());
        }
        // Only a cluster whose merged traffic is flagged can condemn its
        // members through them (`condemned`).
        let copied = if v.flagged {
            attach::copied(&c, |m| per_account[m as usize])
        } else {
            Vec::new()
        };
        clusters.push(conclude(
            c,
            (f, v, g, gv),
            &own,
            (Vec::new(), slices::Slicing::Client),
            (true, &copied),
            &mut accounts,
            cfg,
        ));
    }
    if cfg.slice_min_requests > 0 {
        // Client slices first, then the setting slices: a harvest behind
        // its host's own clients.
        for slicing in [slices::Slicing::Client, slices::Slicing::Setting] {
            clusters.extend(slice_clusters(
                store,
                &per_account,
                &mut accounts,
                &ctx,
                judge,
                slicing,
            ));
        }
    }
    // A job part's verdict is the account's own, taken after the clusters:
    // it condemns the account that hosts the job, and does not count as
    // the account looking like its cluster (a host is linked to its peers
    // by its own traffic, not by the part).
    for (a, key, v) in part_verdicts {
        let acct = &mut accounts[a];
        if acct.verdict.flagged || v.score <= acct.verdict.score {
            continue;
        }
        let p = acct.parts.iter().find(|p| p.key == key);
        acct.via = Via::Part(format!(
            "{} ({} of {} requests, discrepancy {:.2})",
            key.describe(store),
            p.map_or(0, |p| p.features.requests),
            acct.features.requests,
            p.map_or(0.0, |p| p.discrepancy)
        ));
        acct.verdict = v;
    }
    // Last, sparse accounts still flagged on nothing and in no cluster
    // join a condemned cluster, or a group of flagged accounts, that asks
    // what they ask.
    let joined = joining::joining(&per_account, &accounts, &clusters, &ctx, cfg);
    for j in joined.joinings {
        let (verdict, via) = match &joined.anchors[j.anchor] {
            joining::Anchor::Cluster(c) => {
                let c = &mut clusters[*c];
                c.joined.push((j.account, j.cosine));
                let id = c.cluster.id.clone();
                accounts[j.account as usize].cluster_id = Some(id.clone());
                (c.deciding().0.clone(), Via::Cluster(id))
            }
            joining::Anchor::Flagged(members) => {
                let best = members
                    .iter()
                    .map(|&m| &accounts[m as usize])
                    .max_by(|x, y| x.verdict.score.total_cmp(&y.verdict.score))
                    .expect("a group has members");
                let via = Via::Joined(format!(
                    "asks as {} accounts flagged on their own do, {} the highest scoring (vocabulary cosine {:.2})",
                    members.len(),
                    best.account_id,
                    j.cosine
                ));
                (best.verdict.clone(), via)
            }
        };
        let acct = &mut accounts[j.account as usize];
        acct.verdict = verdict;
        acct.via = via;
    }
    Analysis {
        context: Some(ctx),
        baselines,
        peers: peer_groups,
        accounts,
        clusters,
        holders,
    }
}

/// The features of account `a`'s own requests (of `reqs`, its requests)
/// through each of its API keys, in key order: its key facets.
pub(crate) fn key_facets(
    store: &Requests,
    a: usize,
    reqs: &[Req],
    ctx: &Context,
    cfg: &AnalyzerConfig,
) -> Vec<(u32, Features)> {
    let mut by_key: BTreeMap<u32, Vec<&Req>> = BTreeMap::new();
    for r in reqs {
        if store.key_account.get(r.key as usize) == Some(&(a as u32)) {
            by_key.entry(r.key).or_default().push(r);
        }
    }
    by_key
        .into_iter()
        .map(|(k, reqs)| (k, features::compute(&reqs, ctx, cfg)))
        .collect()
}

/// A facet of an account judged on its own requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Facet {
    /// An API key (index).
    Key(u32),
    /// A client program: user agent index (high bits) and system prompt
    /// hash (low 16 bits).
    Client(u64),
}

/// The best facet of an account with requests `reqs` and key facets
/// `keys`: each key with enough requests, and each client program (user
/// agent and system prompt) when it has several, scored; the best, its
/// odds divided by the number of facets tried, and that number.
pub(crate) fn best_facet(
    keys: &[(u32, Features)],
    reqs: &[Req],
    judge: &Judge<'_>,
    ctx: &Context,
) -> (Option<(Facet, Verdict)>, usize) {
    let cfg = judge.cfg;
    let mut clients: BTreeMap<u64, Vec<&Req>> = BTreeMap::new();
    for r in reqs {
        let client = (u64::from(r.ua) << 16) | u64::from(r.system_prompt);
        clients.entry(client).or_default().push(r);
    }
    let enough = |n: u64| n >= cfg.min_requests;
    let mut scored: Vec<(Facet, Verdict)> = keys
        .iter()
        .filter(|(_, f)| enough(f.requests))
        .map(|(k, f)| (Facet::Key(*k), score::score(f, judge)))
        .collect();
    if clients.len() >= 2 {
        scored.extend(
            clients
                .into_iter()
                .filter(|(_, reqs)| enough(reqs.len() as u64))
                .map(|(c, reqs)| {
                    (
                        Facet::Client(c),
                        score::score(&features::compute(&reqs, ctx, cfg), judge),
                    )
                }),
        );
    }
    // The best of m facets is the maximum of m tries: its odds are
    // divided by m (a Bonferroni correction in odds), so an account
    // with many clients is not flagged by chance.
    let tries = scored.len();
    let best = scored
        .into_iter()
        .max_by(|x, y| x.1.score.total_cmp(&y.1.score))
        .map(|(facet, v)| (facet, v.with_odds_divided_by(tries as f64)));
    (best, tries)
}

/// The best of an account's candidate job `parts`, scored alone, its odds
/// divided by the number of tries: the parts and the `facets_tried` before
/// them (the account's key and client facets).
pub(crate) fn best_part(
    parts: &[Part],
    facets_tried: usize,
    judge: &Judge<'_>,
) -> Option<(PartKey, Verdict)> {
    let tries = facets_tried + parts.len();
    parts
        .iter()
        .map(|p| (p.key, part_verdict(p, judge)))
        .max_by(|x, y| x.1.score.total_cmp(&y.1.score))
        .map(|(key, v)| (key, v.with_odds_divided_by(tries as f64)))
}

/// A candidate part scored alone. A part under `min_requests` is a
/// candidate only when no other account sends its setting
/// ([`parts::candidates`]); it is scored on its full evidence, not pulled
/// toward "no evidence" for its size as a small account is: its setting
/// unseen in the population and what it asks differing from the rest of
/// its own account are the evidence that it is one job, which a small
/// account's few requests lack.
fn part_verdict(p: &Part, judge: &Judge<'_>) -> Verdict {
    if p.features.requests >= judge.cfg.min_requests {
        return score::score(&p.features, judge);
    }
    let cfg = AnalyzerConfig {
        min_requests: p.features.requests.max(1),
        ..judge.cfg.clone()
    };
    score::score(
        &p.features,
        &Judge {
            cfg: &cfg,
            ..*judge
        },
    )
}

/// An account's features over one window of `feature_window_hours`.
#[derive(Clone, Debug)]
pub struct WindowFeatures {
    /// Index of the account in [`Analysis::accounts`].
    pub account: usize,
    /// Window start and end (ms; aligned to the epoch).
    pub window: (i64, i64),
    /// Features of the account's requests in the window alone.
    pub features: Features,
}

/// Per-account features of each window of `feature_window_hours` with
/// traffic, in account then time order (the feature table's `window` rows;
/// computed only when that table is asked for).
pub fn windows(store: &Requests, analysis: &Analysis, cfg: &AnalyzerConfig) -> Vec<WindowFeatures> {
    let Some(ctx) = &analysis.context else {
        return Vec::new();
    };
    if cfg.feature_window_hours == 0 {
        return Vec::new();
    }
    let win = features::HOUR_MS * i64::from(cfg.feature_window_hours);
    let all: Vec<usize> = (0..analysis.accounts.len()).collect();
    let per_account = par::map(&all, par::threads(cfg.threads), |&i| {
        let reqs: Vec<&Req> = store.account_reqs(i).iter().collect();
        reqs.chunk_by(|x, y| x.ts.div_euclid(win) == y.ts.div_euclid(win))
            .map(|chunk| {
                let start = chunk[0].ts.div_euclid(win) * win;
                let wctx = Context {
                    start,
                    end: start + win,
                    new_models: ctx.new_models.clone(),
                };
                WindowFeatures {
                    account: i,
                    window: (start, start + win),
                    features: features::compute(chunk, &wctx, cfg),
                }
            })
            .collect::<Vec<_>>()
    });
    per_account.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::{Condemned, Member, condemned, takers, takes_verdict};
    use crate::cluster::{Cluster, Edge, LinkStats};
    use crate::config::AnalyzerConfig;

    /// Links between members, none of them one machinery's.
    fn links(mut pairs: Vec<(u32, u32)>) -> Vec<Edge> {
        pairs.sort_unstable();
        pairs
            .into_iter()
            .map(|(a, b)| Edge {
                a,
                b,
                machinery: false,
            })
            .collect()
    }

    fn cluster(n: u32) -> Cluster {
        Cluster {
            id: "cl-test".into(),
            members: (0..n).collect(),
            links: LinkStats::default(),
            placed: Vec::new(),
            edges: Vec::new(),
        }
    }

    fn members(judged: &[f64], small: &[f64]) -> Vec<Member> {
        let m = |requests| move |&score| Member { score, requests };
        judged
            .iter()
            .map(m(120))
            .chain(small.iter().map(m(20)))
            .collect()
    }

    /// A job split into pieces of mixed sizes: the pieces large enough to
    /// be judged alone all score the bar, the smaller ones score near 0
    /// whatever they send. Counted over every member the judged pieces are
    /// a minority; counted over the members that speak for themselves they
    /// are all of them.
    #[test]
    fn small_members_do_not_acquit_the_pieces_that_can_be_judged() {
        let cfg = AnalyzerConfig::default();
        let own = members(&[0.9, 0.8, 0.7, 0.95], &[0.05; 12]);
        let c = cluster(own.len() as u32);
        assert_eq!(condemned(&c, &own, true, false, &cfg), Some(Condemned::All));
        // Not without the merged traffic flagged.
        assert_eq!(condemned(&c, &own, false, false, &cfg), None);
        // A small member that scores the bar speaks too, for or against.
        let own = members(&[0.9, 0.8, 0.1, 0.2], &[0.6, 0.05, 0.05, 0.05]);
        assert_eq!(
            condemned(&cluster(8), &own, true, false, &cfg),
            Some(Condemned::All)
        );
    }

    /// Fewer than `min_cluster_size` members large enough to be judged do
    /// not speak for a crowd of small ones, and judged members that look
    /// ordinary acquit as before.
    #[test]
    fn few_or_ordinary_judged_members_do_not_condemn_the_small_ones() {
        let cfg = AnalyzerConfig::default();
        let two = members(&[0.9, 0.9], &[0.05; 10]);
        assert_eq!(condemned(&cluster(12), &two, true, false, &cfg), None);
        let ordinary = members(&[0.9, 0.2, 0.1, 0.3], &[0.05; 10]);
        assert_eq!(condemned(&cluster(14), &ordinary, true, false, &cfg), None);
    }

    /// A slice cluster condemned through the slices that can be judged
    /// (three hosts' setting slices over the bar) beside four developers'
    /// tiny slices of the same setting: when the tiny slices do not carry
    /// the job as a group they keep their own verdicts; when they do (a
    /// campaign's small slices), they take the cluster's.
    #[test]
    fn slices_under_the_bar_take_the_verdict_only_when_they_carry_the_job() {
        let cfg = AnalyzerConfig::default();
        let own = members(&[0.98, 0.88, 0.84], &[0.007, 0.006, 0.008, 0.01]);
        let c = cluster(own.len() as u32);
        let k = condemned(&c, &own, true, false, &cfg);
        assert_eq!(k, Some(Condemned::All));
        let took = |carried| {
            (0..own.len())
                .filter(|&i| takes_verdict(k, &c, i as u32, own[i], (true, carried), &cfg))
                .count()
        };
        assert_eq!(took(false), 3);
        assert_eq!(took(true), 7);
    }

    /// A `mix`ed harvest's accounts (seven, over the bar) in one community
    /// with the product population whose traffic they carry: four batch
    /// accounts linked to each other and, one of them, to two harvesters;
    /// the account whose traffic was copied, linked to one harvester; a
    /// harvester its rewrites pulled under the bar, linked to four fellows
    /// over it and one batch account; and one linked to a single fellow
    /// over the bar and to that harvester, reached in a second round. Only
    /// the two harvesters take the cluster's verdict among those under the
    /// bar.
    #[test]
    fn look_alikes_linked_mostly_to_each_other_keep_their_own_verdicts() {
        let cfg = AnalyzerConfig::default();
        let own = members(
            &[
                0.9, 0.95, 0.85, 0.99, 0.9, 0.8, 0.9, 0.05, 0.02, 0.1, 0.03, 0.04, 0.2, 0.1,
            ],
            &[],
        );
        let mut c = cluster(own.len() as u32);
        // Every pair within a block linked.
        let block = |r: std::ops::Range<u32>| {
            r.clone()
                .flat_map(move |a| (a + 1..r.end).map(move |b| (a, b)))
        };
        let mut edges: Vec<(u32, u32)> = block(0..7).chain(block(7..11)).collect();
        edges.extend([(0, 7), (1, 7), (2, 11), (0, 12), (1, 12), (2, 12), (3, 12)]);
        edges.extend([(8, 12), (4, 13), (12, 13)]);
        c.edges = links(edges);
        let k = condemned(&c, &own, true, false, &cfg);
        assert_eq!(k, Some(Condemned::All));
        let took: Vec<u32> = takers(k, &c, &own, (false, true), &[], &cfg)
            .into_iter()
            .zip(&c.members)
            .filter_map(|(t, &m)| t.then_some(m))
            .collect();
        assert_eq!(took, vec![0, 1, 2, 3, 4, 5, 6, 12, 13]);
        // Pieces too small to be judged keep going with the cluster,
        // however they are linked.
        let small = members(&[0.9, 0.95, 0.85, 0.99, 0.9, 0.8, 0.9], &[0.05; 7]);
        assert!(
            takers(k, &c, &small, (false, true), &[], &cfg)
                .into_iter()
                .all(|t| t)
        );
    }

    /// A job split into pieces behind one operator's addresses, most of
    /// them too small to be judged alone: the group decides for every
    /// small piece, not only for those that reach the shared-place bar
    /// (seed 9 paced at 20 a day with rotated clients: 44 of a 91-piece
    /// light hydra's pieces under 0.3 were left out).
    #[test]
    fn the_group_decides_for_small_pieces_before_the_shared_place_rule() {
        let cfg = AnalyzerConfig::default();
        let own = members(
            &[],
            &[0.35, 0.4, 0.45, 0.35, 0.4, 0.35, 0.05, 0.1, 0.05, 0.08],
        );
        let mut c = cluster(own.len() as u32);
        c.links = LinkStats {
            links: 12,
            shared_blocks: 12,
            ..LinkStats::default()
        };
        c.placed = c.members.clone();
        assert_eq!(
            condemned(&c, &own, true, true, &cfg),
            Some(Condemned::Small(cfg.min_requests))
        );
        // Without the group flagged, the shared-place rule still decides.
        assert_eq!(
            condemned(&c, &own, true, false, &cfg),
            Some(Condemned::Placed(cfg.cluster_shared_member_score))
        );
    }
}
