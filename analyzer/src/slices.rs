//! Client slices linked across accounts (issue 12, items 3 and 4): one
//! operator's script run inside several other accounts' keys — a hydra's
//! members hosted in products' keys, a job run on leaked keys — sends
//! from its own client program and addresses, as a minority of each
//! host's traffic, often with too few requests to judge in any one host
//! (a tenth of a small product's traffic is a few dozen requests).
//!
//! Each account with several client programs (user agent and system
//! prompt, as the client facets of `analysis::best_facet`) contributes
//! each minority client's requests as a *slice*; slices are linked as
//! accounts are (`cluster::clusters_of_parts`: shared templates, source
//! blocks and addresses, client, request shape, timing, topic mix), never
//! two slices of one account. A cluster of slices from several accounts
//! is judged as an account cluster is — its merged traffic, its members'
//! own scores, or as a group when most slices are too small to judge
//! alone (`analysis::condemned`) — and a condemned slice's host takes the
//! cluster's verdict. Benign accounts that share an integration (a
//! platform calling many customers' keys from its own addresses) are
//! linked the same way and judged by what the merged slices ask.
//!
//! *Setting slices* are the second pass, for a harvest run behind its
//! host's own user agents and addresses (`fixtures evade --transform host
//! --adopt-clients`): there is no client of the operator's own to link,
//! but the job keeps its settings (model, system prompt, output cap,
//! log-probabilities: [`PartKey`]). An account's minority setting is a
//! slice only when it asks differently from the rest of its account
//! (the job parts' discrepancy, [`parts::slice_discrepancy`], at least
//! `part_min_discrepancy`): an individual developer who tries a second
//! model sends it the same kind of questions, a harvest in a product's
//! key does not. The slices of one setting in several accounts are one
//! cluster ([`setting_clusters`]), judged as client-slice clusters are;
//! they are not linked by content, which a hydra's members, each sending
//! its own part of one sweep, do not share. Settings that many benign
//! developers share as a minority (a second model with no output cap) are
//! left out by the discrepancy, not by how common they are: a campaign's
//! setting can be a common one too.

use crate::cluster::Cluster;
use crate::config::AnalyzerConfig;
use crate::parts::{self, PartKey};
use crate::requests::{Req, Requests};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// What an account's requests are sliced by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Slicing {
    /// The client program: user agent and system prompt ([`client`]).
    #[default]
    Client,
    /// The client settings of a job part ([`PartKey`]).
    Setting,
}

impl Slicing {
    /// A request's slice key under this slicing.
    pub(crate) fn key(self, r: &Req) -> u64 {
        match self {
            Slicing::Client => client(r),
            Slicing::Setting => PartKey::of(r).bits(),
        }
    }
}

/// One client program's (or setting's) requests in an account that has
/// several.
pub(crate) struct Slice<'r> {
    /// The account (index in the store).
    pub account: u32,
    /// Its key ([`Slicing::key`]): for a client slice, user agent index
    /// (high bits) and system prompt hash (low 16 bits).
    pub client: u64,
    /// Its requests, time-ordered.
    pub reqs: Vec<&'r Req>,
}

/// The minority slices of account `a` with time-ordered requests `reqs`
/// under `slicing`: each client program (or setting) sending at most half
/// the account's requests and at least `slice_min_requests`, when the
/// account has several; setting slices only when they ask differently
/// from the rest of the account (see the module documentation). Client
/// slices larger than `min_requests` are client facets judged on their
/// own already; they are linked too, so a campaign's larger hosted pieces
/// join its small ones.
pub(crate) fn of_account<'r>(
    a: u32,
    reqs: &'r [Req],
    slicing: Slicing,
    cfg: &AnalyzerConfig,
) -> Vec<Slice<'r>> {
    let mut counts: FxHashMap<u64, u64> = FxHashMap::default();
    for r in reqs {
        *counts.entry(slicing.key(r)).or_default() += 1;
    }
    let n = reqs.len() as u64;
    let mut kept: Vec<u64> = counts
        .into_iter()
        .filter(|&(_, c)| c >= cfg.slice_min_requests && 2 * c <= n)
        .map(|(k, _)| k)
        .collect();
    if kept.is_empty() {
        return Vec::new();
    }
    kept.sort_unstable();
    let mut slices: Vec<Slice<'r>> = kept
        .iter()
        .map(|&c| Slice {
            account: a,
            client: c,
            reqs: Vec::new(),
        })
        .collect();
    for r in reqs {
        if let Ok(i) = kept.binary_search(&slicing.key(r)) {
            slices[i].reqs.push(r);
        }
    }
    if slicing == Slicing::Setting && !slices.is_empty() {
        let account = parts::asks_of(reqs);
        slices.retain(|s| parts::slice_discrepancy(&s.reqs, &account) >= cfg.part_min_discrepancy);
    }
    slices
}

/// The requests of `reqs` whose key under `slicing` is one of `keys` (in
/// order).
pub(crate) fn requests<'r>(reqs: &'r [Req], slicing: Slicing, keys: &[u64]) -> Vec<&'r Req> {
    reqs.iter()
        .filter(|r| keys.contains(&slicing.key(r)))
        .collect()
}

/// Setting slices (`slices`, at most one per account and setting) as
/// clusters: the slices of each setting held by at least
/// `min_cluster_size` (and two) accounts, one cluster per setting, its
/// members indices into `slices`, its id derived from its accounts' names.
/// Not linked pair by pair, so without link statistics.
pub(crate) fn setting_clusters(
    store: &Requests,
    slices: &[Slice<'_>],
    cfg: &AnalyzerConfig,
) -> Vec<Cluster> {
    let mut by_setting: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for (i, s) in slices.iter().enumerate() {
        by_setting.entry(s.client).or_default().push(i as u32);
    }
    by_setting
        .into_values()
        .filter(|members| members.len() >= cfg.min_cluster_size.max(2))
        .map(|members| {
            let mut names: Vec<&str> = members
                .iter()
                .map(|&m| store.accounts.names[slices[m as usize].account as usize].as_str())
                .collect();
            names.sort_unstable();
            Cluster {
                id: format!(
                    "ss-{:012x}",
                    xxhash_rust::xxh3::xxh3_64(names.join("\n").as_bytes()) >> 16
                ),
                members,
                links: Default::default(),
                placed: Vec::new(),
                edges: Vec::new(),
            }
        })
        .collect()
}

/// A request's client program, as [`Slice::client`].
pub(crate) fn client(r: &Req) -> u64 {
    (u64::from(r.ua) << 16) | u64::from(r.system_prompt)
}

/// A slice's name for cluster ids and explanations: its account id, its
/// user agent and system prompt hash.
pub(crate) fn name(store: &Requests, s: &Slice<'_>) -> String {
    let ua = store
        .uas
        .names
        .get((s.client >> 16) as usize)
        .map_or("-", String::as_str);
    format!(
        "{} / {ua} (system prompt #{:04x})",
        store.accounts.names[s.account as usize],
        s.client & 0xffff
    )
}
