//! Sparse accounts joined to a condemned cluster by what they ask and
//! when.
//!
//! A light hydra (issue 12: a 200-account cluster at 30 requests per
//! account a day or fewer, through rotating addresses) whose clients
//! rotate and whose rewrites vary models, output caps and wording leaves
//! some members with no candidate pair at all: no address, block, client,
//! template or main request shape is shared with any one peer
//! (docs/analyzer.md, session 17). What is left is what they ask and
//! when. Each request carries a hash-sampled pair of its content words
//! ([`crate::text::TextFeatures::words`]), sampled consistently across
//! prompts, so an entity's sampled words are a bag of its vocabulary
//! whatever order, filler or client a rewrite gives it; and a member's
//! requests are a thinning of its operator's one queue, so its hourly
//! activity follows the queue's.
//!
//! A sparse account that is in no cluster and flagged on nothing joins an
//! anchor — the flagged members of a condemned account cluster, or a
//! group of accounts flagged on their own that ask alike — when it asks
//! what the anchor's merged requests ask (the cosine of the two bags'
//! word shares, each word weighted by its inverse document frequency over
//! all accounts, so words every product sends weigh nothing) and is
//! active in the anchor's hours (the hourly-activity cosine that links
//! accounts in `cluster.rs`, at its loose bar). It is compared only with
//! anchors, never pairwise, so no pair among benign accounts is made; the
//! pass costs one walk over the requests (a document frequency per 16-bit
//! word value: 65,536 counters) and one over the anchors' and the
//! candidates' requests, plus the flagged accounts times the groups.

use crate::analysis::{AccountResult, ClusterResult, Via};
use crate::cluster::{hour_slot, sparse_cosine};
use crate::config::AnalyzerConfig;
use crate::features::Context;
use crate::requests::Req;
use rustc_hash::FxHashMap as HashMap;

/// The 16-bit word values of a request's sample (0 halves are empty).
fn words(w: u32) -> impl Iterator<Item = u16> {
    [w as u16, (w >> 16) as u16].into_iter().filter(|&v| v != 0)
}

/// Word counts and hourly activity of one or several accounts' requests,
/// grown one account at a time, with the sums of squares of the
/// idf-weighted counts and of the hourly counts (the norms).
#[derive(Default)]
struct Stream {
    words: HashMap<u16, f64>,
    words_sq: f64,
    hours: HashMap<i64, f64>,
    hours_sq: f64,
}

/// Add `by` to `map[key]`, keeping `sq` the sum of the squared values.
fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, f64>, sq: &mut f64, key: K, by: f64) {
    let v = map.entry(key).or_default();
    *sq += by * (2.0 * *v + by);
    *v += by;
}

impl Stream {
    /// Add `reqs`, words weighted by `idf`, hours in `cluster.rs`'s slots
    /// ([`hour_slot`]).
    fn add(&mut self, reqs: &[Req], idf: &[f64], ctx: &Context) {
        for r in reqs {
            for w in words(r.words) {
                bump(&mut self.words, &mut self.words_sq, w, idf[usize::from(w)]);
            }
            bump(
                &mut self.hours,
                &mut self.hours_sq,
                hour_slot(r.ts, ctx),
                1.0,
            );
        }
    }

    /// The stream of `reqs` alone.
    fn of(reqs: &[Req], idf: &[f64], ctx: &Context) -> Stream {
        let mut s = Stream::default();
        s.add(reqs, idf, ctx);
        s
    }

    /// Vocabulary and hourly-activity cosines with `other`.
    fn likeness(&self, other: &Stream) -> (f64, f64) {
        (
            sparse_cosine(
                &self.words,
                self.words_sq.sqrt(),
                &other.words,
                other.words_sq.sqrt(),
            ),
            sparse_cosine(
                &self.hours,
                self.hours_sq.sqrt(),
                &other.hours,
                other.hours_sq.sqrt(),
            ),
        )
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

/// What a sparse account can join.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Anchor {
    /// A condemned account cluster: its index in the clusters given to
    /// [`joining`].
    Cluster(usize),
    /// At least `min_cluster_size` sparse accounts flagged on their own
    /// whole traffic, in no cluster, that ask alike (account indices).
    Flagged(Vec<u32>),
}

/// An account that joins an anchor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Joining {
    /// The account's index.
    pub account: u32,
    /// The anchor's index in [`Joined::anchors`].
    pub anchor: usize,
    /// Cosine of its vocabulary with the anchor's merged vocabulary.
    pub cosine: f64,
}

/// The anchors and the accounts that join them.
pub(crate) struct Joined {
    /// What can be joined.
    pub anchors: Vec<Anchor>,
    /// Who joins what.
    pub joinings: Vec<Joining>,
}

/// Whether account `a` may stand for or join an anchor: in no cluster,
/// sparse — at least `join_min_requests` requests and at most
/// `join_daily_requests` a day on the days it is active.
fn sparse(a: &AccountResult, cfg: &AnalyzerConfig) -> bool {
    let f = &a.features;
    a.cluster_id.is_none()
        && f.requests >= cfg.join_min_requests
        && f.requests as f64 <= cfg.join_daily_requests * f64::from(f.active_days.max(1))
}

/// The accounts (of `accounts`, their requests `per_account`) that join
/// an anchor: unflagged, in no cluster, sending at least
/// `join_min_requests` and at most `join_daily_requests` a day on the
/// days they are active, with a vocabulary cosine of at least
/// `join_cosine` with an anchor's merged requests (the most similar
/// anchor) and an hourly-activity cosine of at least `loose_sync_cosine`
/// with them. The anchors: the flagged members of each condemned account
/// cluster of `clusters`, and each group of at least `min_cluster_size`
/// sparse accounts flagged on their own whole traffic, in no cluster, that
/// ask alike (a light hydra's members that score on their own; a hosted
/// harvest's or a slow harvester's account sends more and anchors
/// nothing) (each joins the group whose merged vocabulary it is most similar
/// to at `join_cosine`, else starts one, in account order). Nothing when
/// `join_cosine` is above 1.
pub(crate) fn joining(
    per_account: &[&[Req]],
    accounts: &[AccountResult],
    clusters: &[ClusterResult],
    ctx: &Context,
    cfg: &AnalyzerConfig,
) -> Joined {
    let mut joined = Joined {
        anchors: Vec::new(),
        joinings: Vec::new(),
    };
    if cfg.join_cosine > 1.0 {
        return joined;
    }
    let candidates: Vec<usize> = (0..accounts.len())
        .filter(|&a| !accounts[a].verdict.flagged && sparse(&accounts[a], cfg))
        .collect();
    if candidates.is_empty() {
        return joined;
    }
    let idf = idf(per_account);
    let mut streams: Vec<Stream> = Vec::new();
    for (c, cluster) in clusters.iter().enumerate() {
        if !cluster.flagged || !cluster.clients.is_empty() {
            continue;
        }
        let mut s = Stream::default();
        for &m in &cluster.cluster.members {
            if accounts[m as usize].verdict.flagged {
                s.add(per_account[m as usize], &idf, ctx);
            }
        }
        joined.anchors.push(Anchor::Cluster(c));
        streams.push(s);
    }
    let mut groups: Vec<(Vec<u32>, Stream)> = Vec::new();
    for (a, acct) in accounts.iter().enumerate() {
        if !acct.verdict.flagged || acct.via != Via::Account || !sparse(acct, cfg) {
            continue;
        }
        let own = Stream::of(per_account[a], &idf, ctx);
        let best = groups
            .iter()
            .map(|(_, s)| own.likeness(s).0)
            .enumerate()
            .filter(|&(_, c)| c >= cfg.join_cosine)
            .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)));
        let g = match best {
            Some((g, _)) => g,
            None => {
                groups.push((Vec::new(), Stream::default()));
                groups.len() - 1
            }
        };
        groups[g].0.push(a as u32);
        groups[g].1.add(per_account[a], &idf, ctx);
    }
    for (members, s) in groups {
        if members.len() >= cfg.min_cluster_size.max(2) {
            joined.anchors.push(Anchor::Flagged(members));
            streams.push(s);
        }
    }
    joined.joinings = candidates
        .into_iter()
        .filter_map(|a| {
            let own = Stream::of(per_account[a], &idf, ctx);
            streams
                .iter()
                .map(|s| own.likeness(s))
                .enumerate()
                .filter(|(_, (_, hours))| *hours >= cfg.loose_sync_cosine)
                .max_by(|x, y| x.1.0.total_cmp(&y.1.0).then(y.0.cmp(&x.0)))
                .filter(|&(_, (words, _))| words >= cfg.join_cosine)
                .map(|(anchor, (cosine, _))| Joining {
                    account: a as u32,
                    anchor,
                    cosine,
                })
        })
        .collect();
    joined
}

#[cfg(test)]
mod tests {
    use super::{Stream, idf};
    use crate::features::{Context, HOUR_MS};
    use crate::requests::Req;

    fn req(ts: i64, words: u32) -> Req {
        Req {
            ts,
            words,
            ..Req::default()
        }
    }

    /// The norms kept while a stream grows are the norms of what it holds,
    /// a word every account sends weighs nothing, and a stream is as like
    /// itself as can be.
    #[test]
    fn streams_keep_their_norms_and_weigh_words_by_rarity() {
        let ctx = Context {
            start: 0,
            end: 48 * HOUR_MS,
            new_models: Vec::new(),
        };
        let a = [
            req(0, 1 | 2 << 16),
            req(HOUR_MS, 1 | 3 << 16),
            req(HOUR_MS, 3),
        ];
        let b = [req(5 * HOUR_MS, 1 | 4 << 16)];
        let idf = idf(&[&a[..], &b[..]]);
        assert_eq!(idf[1], 0.0, "sent by both accounts");
        assert!((idf[3] - 2f64.ln()).abs() < 1e-12);
        let mut s = Stream::of(&a, &idf, &ctx);
        s.add(&b, &idf, &ctx);
        let words: f64 = s.words.values().map(|v| v * v).sum();
        let hours: f64 = s.hours.values().map(|v| v * v).sum();
        assert!((s.words_sq - words).abs() < 1e-9);
        assert!((s.hours_sq - hours).abs() < 1e-9);
        assert_eq!(s.hours[&1], 2.0);
        let (w, h) = s.likeness(&s);
        assert!((w - 1.0).abs() < 1e-12 && (h - 1.0).abs() < 1e-12);
        let (w, h) = Stream::of(&a, &idf, &ctx).likeness(&Stream::of(&b, &idf, &ctx));
        assert_eq!((w, h), (0.0, 0.0), "no rare word and no hour in common");
    }
}
