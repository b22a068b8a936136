//! Sparse accounts joined to a condemned cluster by what they ask.
//!
//! A light hydra (issue 12: a 200-account cluster at 30 requests per
//! account a day or fewer, through rotating addresses) whose clients
//! rotate and whose rewrites vary models, output caps and wording leaves
//! some members with no candidate pair at all: no address, block, client,
//! template or main request shape is shared with any one peer
//! (docs/analyzer.md, session 17). What is left is what they ask. Each
//! request carries a hash-sampled pair of its content words
//! ([`crate::text::TextFeatures::words`]), sampled consistently across
//! prompts, so an entity's sampled words are a bag of its vocabulary
//! whatever order, filler or client a rewrite gives it.
//!
//! A sparse account that is in no cluster and flagged on nothing joins the
//! condemned account cluster whose flagged members' merged vocabulary it
//! shares: the cosine of the two bags' word shares, each word weighted by
//! its inverse document frequency over all accounts (words every product
//! sends weigh nothing). It is compared only with the streams of clusters
//! already condemned, never pairwise, so no new pair among benign
//! accounts is made, and the pass costs one walk over the requests (a
//! document frequency per 16-bit word value: 65,536 counters) plus one
//! over the candidates' and the condemned members' requests.

use crate::analysis::{AccountResult, ClusterResult};
use crate::config::AnalyzerConfig;
use crate::requests::Req;
use rustc_hash::FxHashMap as HashMap;

/// The 16-bit word values of a request's sample (0 halves are empty).
fn words(w: u32) -> impl Iterator<Item = u16> {
    [w as u16, (w >> 16) as u16]
        .into_iter()
        .filter(|&v| v != 0)
}

/// A bag of sampled words weighted by inverse document frequency, with
/// its Euclidean norm.
struct Bag {
    weights: HashMap<u16, f64>,
    norm: f64,
}

impl Bag {
    /// The bag of `reqs` (any number of streams): each word's share of
    /// the requests holding it, times its `idf`.
    fn of<'a>(reqs: impl Iterator<Item = &'a Req>, idf: &[f64]) -> Bag {
        let mut counts: HashMap<u16, u32> = HashMap::default();
        let mut n = 0u32;
        for r in reqs {
            n += 1;
            for w in words(r.words) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let weights: HashMap<u16, f64> = counts
            .into_iter()
            .map(|(w, c)| (w, f64::from(c) / f64::from(n.max(1)) * idf[usize::from(w)]))
            .collect();
        let norm = weights.values().map(|v| v * v).sum::<f64>().sqrt();
        Bag { weights, norm }
    }

    /// Cosine similarity (0 when either bag is empty).
    fn cosine(&self, other: &Bag) -> f64 {
        if self.norm == 0.0 || other.norm == 0.0 {
            return 0.0;
        }
        let (small, big) = if self.weights.len() <= other.weights.len() {
            (self, other)
        } else {
            (other, self)
        };
        let dot: f64 = small
            .weights
            .iter()
            .map(|(w, v)| v * big.weights.get(w).copied().unwrap_or(0.0))
            .sum();
        dot / (self.norm * other.norm)
    }
}

/// Inverse document frequency of every 16-bit word value over the
/// accounts with requests: ln(accounts / accounts sending it), 0 for a
/// word no account sends.
fn idf(per_account: &[&[Req]]) -> Vec<f64> {
    let mut df = vec![0u32; 1 << 16];
    let mut last = vec![u32::MAX; 1 << 16];
    let mut senders = 0u32;
    for (a, reqs) in per_account.iter().enumerate() {
        senders += u32::from(!reqs.is_empty());
        for w in reqs.iter().flat_map(|r| words(r.words)) {
            let w = usize::from(w);
            if last[w] != a as u32 {
                last[w] = a as u32;
                df[w] += 1;
            }
        }
    }
    df.into_iter()
        .map(|d| {
            if d == 0 {
                0.0
            } else {
                (f64::from(senders) / f64::from(d)).ln()
            }
        })
        .collect()
}

/// An account that joins a condemned cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Joining {
    /// The account's index.
    pub account: u32,
    /// The cluster's index in the clusters given to [`joining`].
    pub cluster: usize,
    /// Cosine of its vocabulary with the cluster's flagged members'.
    pub cosine: f64,
}

/// The accounts (of `accounts`, their requests `per_account`) that join a
/// condemned account cluster of `clusters` by what they ask: unflagged,
/// in no cluster, sending at least `join_min_requests` and at most
/// `join_daily_requests` a day on the days they are active, with a
/// vocabulary cosine of at least `join_cosine` with the merged requests
/// of a condemned account cluster's flagged members (the best such
/// cluster). Empty when `join_cosine` is above 1 or no account cluster is
/// condemned.
pub(crate) fn joining(
    per_account: &[&[Req]],
    accounts: &[AccountResult],
    clusters: &[ClusterResult],
    cfg: &AnalyzerConfig,
) -> Vec<Joining> {
    let condemned: Vec<usize> = (0..clusters.len())
        .filter(|&c| clusters[c].flagged && clusters[c].clients.is_empty())
        .collect();
    if cfg.join_cosine > 1.0 || condemned.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<usize> = (0..accounts.len())
        .filter(|&a| {
            let acct = &accounts[a];
            let f = &acct.features;
            !acct.verdict.flagged
                && acct.cluster_id.is_none()
                && f.requests >= cfg.join_min_requests
                && f.requests as f64 <= cfg.join_daily_requests * f64::from(f.active_days.max(1))
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let idf = idf(per_account);
    let streams: Vec<(usize, Bag)> = condemned
        .into_iter()
        .map(|c| {
            let flagged = clusters[c]
                .cluster
                .members
                .iter()
                .filter(|&&m| accounts[m as usize].verdict.flagged);
            let reqs = flagged.flat_map(|&m| per_account[m as usize].iter());
            (c, Bag::of(reqs, &idf))
        })
        .collect();
    candidates
        .into_iter()
        .filter_map(|a| {
            let bag = Bag::of(per_account[a].iter(), &idf);
            streams
                .iter()
                .map(|(c, s)| (*c, bag.cosine(s)))
                .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
                .inspect(|b| if std::env::var_os("WW_DEBUG_JOIN").is_some() && b.1 >= 0.3 { eprintln!("JOIN {} {:.3} {} {}", accounts[a].account_id, b.1, clusters[b.0].cluster.id, accounts[a].features.requests) })
                .filter(|&(_, cosine)| cosine >= cfg.join_cosine)
                .map(|(cluster, cosine)| Joining {
                    account: a as u32,
                    cluster,
                    cosine,
                })
        })
        .collect()
}
