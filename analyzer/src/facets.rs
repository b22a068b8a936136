//! Facets: parts of an entity's traffic judged on their own by the same
//! model, so a harvesting job run as a fraction of an ordinary account's
//! (or a cluster's) traffic is not averaged away by the honest part.
//!
//! An account's facets are its API keys, its client programs (user agent
//! and system prompt) and its request shapes (what a client program sets
//! on every request: model, output cap, system prompt, sampling and
//! output-layer flags, turns). A job that shares key, client and address
//! with a product (issue 12 item 4, `fixtures evade --transform mix`)
//! still sends its own kind of request. A cluster's merged traffic is
//! also judged on the request shapes most of its members share
//! ([`SharedShapes`]): a campaign's members run one job, each member's
//! honest traffic is its own.
//!
//! The best of `m` facets is the maximum of `m` tries, so its odds are
//! divided by `m` before the threshold (a Bonferroni correction in odds).

use crate::analysis::{Via, coordination};
use crate::cluster::{self, Cluster};
use crate::config::AnalyzerConfig;
use crate::features::{self, Context, Features};
use crate::requests::{Req, Requests, flag};
use crate::score::{self, Judge, Verdict};
use std::collections::{BTreeMap, BTreeSet};

/// What a client program sets on a request, whatever it asks: the
/// model, the output cap (bits of `max_tokens`), the system prompt and the
/// shape flags (single turn, logprobs, `top_logprobs` at the maximum,
/// temperature 0, n > 1, `max_tokens <= 1`, logit bias, embeddings, a
/// system prompt sent). The cluster links compare the same shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape {
    /// Model index.
    pub model: u16,
    /// `max_tokens` as bits of its value (0: absent).
    pub max_tokens_bits: u8,
    /// 16-bit hash of the system prompt (0: none).
    pub system_prompt: u16,
    /// The request's [`flag`] bits that belong to its shape.
    pub flags: u16,
}

impl Shape {
    /// The shape of `r`.
    pub fn of(r: &Req) -> Shape {
        Shape {
            model: r.model,
            max_tokens_bits: r.max_tokens_bits,
            system_prompt: r.system_prompt,
            flags: r.flags & cluster::SHAPE_FLAGS,
        }
    }

    /// In words, for an analyst: `model orion-2-large, max_tokens < 8192,
    /// no system prompt, single-turn, temperature 0`.
    pub fn describe(&self, store: &Requests) -> String {
        let model = store
            .models
            .names
            .get(usize::from(self.model))
            .map_or("-", |s| s.as_str());
        let cap = match self.max_tokens_bits {
            0 => "no max_tokens".to_string(),
            b => format!("max_tokens < {}", 1u64 << b.min(63)),
        };
        let sys = match self.system_prompt {
            0 => "no system prompt".to_string(),
            h => format!("system prompt #{h:04x}"),
        };
        let mut parts = vec![format!("model {model}"), cap, sys];
        let has = |f: u16| self.flags & f != 0;
        parts.push(if has(flag::SINGLE_TURN) { "single-turn" } else { "multi-turn" }.into());
        for (f, name) in [
            (flag::EMBED, "embeddings"),
            (flag::LOGPROBS, "logprobs"),
            (flag::TOPLP_MAX, "top_logprobs at max"),
            (flag::TEMP0, "temperature 0"),
            (flag::N_GT1, "n > 1"),
            (flag::MAX1, "max_tokens <= 1"),
            (flag::LOGIT_BIAS, "logit_bias"),
        ] {
            if has(f) {
                parts.push(name.into());
            }
        }
        parts.join(", ")
    }
}

/// One facet of an entity's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facet {
    /// The account's requests through one API key.
    Key(u32),
    /// Its requests from one client program.
    Client {
        /// User-agent index.
        ua: u32,
        /// 16-bit hash of the system prompt (0: none).
        system_prompt: u16,
    },
}

impl Facet {
    /// What decided a verdict taken from this facet.
    pub fn via(&self, store: &Requests) -> Via {
        match *self {
            Facet::Key(k) => Via::ApiKey(store.keys.names[k as usize].clone()),
            Facet::Client { ua, system_prompt } => {
                let ua = store.uas.names.get(ua as usize).map_or("-", |s| s.as_str());
                Via::Client(format!("{ua} (system prompt #{system_prompt:04x})"))
            }
        }
    }
}

/// The features of account `a`'s own requests (of `reqs`, its requests)
/// through each of its API keys, in key order: its key facets.
pub fn key_facets(
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

/// `reqs` grouped by `key`, in key order, when there are at least two
/// groups (one group is the whole entity, already judged).
fn split<'r, K: Ord>(reqs: impl Iterator<Item = &'r Req>, key: impl Fn(&Req) -> K) -> Vec<(K, Vec<&'r Req>)> {
    let mut by: BTreeMap<K, Vec<&Req>> = BTreeMap::new();
    for r in reqs {
        by.entry(key(r)).or_default().push(r);
    }
    if by.len() < 2 {
        return Vec::new();
    }
    by.into_iter().collect()
}

/// The best of the scored facets, its odds divided by how many were
/// scored: the best of `m` facets is the maximum of `m` tries, so an
/// entity with many facets is not flagged by chance.
fn best_of(scored: Vec<(Facet, Verdict)>) -> Option<(Facet, Verdict)> {
    let tries = scored.len();
    scored
        .into_iter()
        .max_by(|x, y| x.1.score.total_cmp(&y.1.score))
        .map(|(facet, v)| (facet, v.with_odds_divided_by(tries as f64)))
}

/// The best facet of an account with requests `reqs` and key facets
/// `keys`: each key, and each client program when it has several, with
/// at least `min_requests` requests, scored; the best, its odds divided
/// by the number of facets scored.
pub fn best_facet(
    keys: &[(u32, Features)],
    reqs: &[Req],
    judge: &Judge<'_>,
    ctx: &Context,
) -> Option<(Facet, Verdict)> {
    let cfg = judge.cfg;
    let enough = |n: usize| n as u64 >= cfg.min_requests;
    let mut scored: Vec<(Facet, Verdict)> = keys
        .iter()
        .filter(|(_, f)| enough(f.requests as usize))
        .map(|(k, f)| (Facet::Key(*k), score::score(f, judge)))
        .collect();
    let clients = split(reqs.iter(), |r| (r.ua, r.system_prompt));
    scored.extend(
        clients
            .into_iter()
            .filter(|(_, reqs)| enough(reqs.len()))
            .map(|((ua, system_prompt), reqs)| {
                let f = features::compute(&reqs, ctx, cfg);
                (Facet::Client { ua, system_prompt }, score::score(&f, judge))
            }),
    );
    best_of(scored)
}

/// The request shapes a cluster's members share: those that at least half
/// of the members sent at all. A campaign's members run one job, so they
/// share its shapes; the honest traffic each member carries beside it
/// (its own product's, its own users') is its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedShapes(pub BTreeSet<Shape>);

impl SharedShapes {
    /// The shapes shared by at least half of `members` (each member's
    /// requests).
    pub fn of<'r>(members: impl ExactSizeIterator<Item = &'r [Req]>) -> SharedShapes {
        let n = members.len();
        let mut used: BTreeMap<Shape, usize> = BTreeMap::new();
        for reqs in members {
            let own: BTreeSet<Shape> = reqs.iter().map(Shape::of).collect();
            for s in own {
                *used.entry(s).or_default() += 1;
            }
        }
        SharedShapes(
            used.into_iter()
                .filter(|&(_, m)| m * 2 >= n)
                .map(|(s, _)| s)
                .collect(),
        )
    }

    /// Whether `r` has one of the shapes.
    pub fn holds(&self, r: &Req) -> bool {
        self.0.contains(&Shape::of(r))
    }

    /// In words, for an analyst (at most the first three shapes).
    pub fn describe(&self, store: &Requests) -> String {
        let mut parts: Vec<String> = self.0.iter().take(3).map(|s| s.describe(store)).collect();
        if self.0.len() > 3 {
            parts.push(format!("{} more", self.0.len() - 3));
        }
        format!("shapes shared by most members: {}", parts.join("; "))
    }
}

/// The verdict on cluster `c` with merged traffic `merged` (time-ordered),
/// its features `f` and its members' requests `members`: on the whole
/// traffic with the coordination signal, or, when that does not hold and
/// the requests of the shapes most members share ([`SharedShapes`]) are
/// fewer and score higher (odds divided by the two tries), on those, and
/// the shapes are returned too.
pub fn cluster_verdict<'r>(
    c: &Cluster,
    members: impl ExactSizeIterator<Item = &'r [Req]>,
    merged: &[&Req],
    f: &Features,
    judge: &Judge<'_>,
    ctx: &Context,
) -> (Verdict, Option<SharedShapes>) {
    let cfg = judge.cfg;
    let judged = |f: &Features| score::score_with(f, judge, vec![coordination(c, f, cfg)]);
    let whole = judged(f);
    if whole.flagged {
        return (whole, None);
    }
    let shared = SharedShapes::of(members);
    let part: Vec<&Req> = merged.iter().copied().filter(|r| shared.holds(r)).collect();
    if (part.len() as u64) < cfg.min_requests || part.len() == merged.len() {
        return (whole, None);
    }
    let v = judged(&features::compute(&part, ctx, cfg)).with_odds_divided_by(2.0);
    if v.score > whole.score {
        (v, Some(shared))
    } else {
        (whole, None)
    }
}

/// A member's score toward a cluster decided by its shared shapes: its
/// own deciding score `own`, or its requests `reqs` of those shapes
/// scored alone when that is higher (a member's part in the job).
pub fn member_score(
    own: f64,
    reqs: &[Req],
    shared: &SharedShapes,
    judge: &Judge<'_>,
    ctx: &Context,
) -> f64 {
    let part: Vec<&Req> = reqs.iter().filter(|r| shared.holds(r)).collect();
    if part.is_empty() || part.len() == reqs.len() {
        return own;
    }
    own.max(score::score(&features::compute(&part, ctx, judge.cfg), judge).score)
}
