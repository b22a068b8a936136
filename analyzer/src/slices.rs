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

use crate::config::AnalyzerConfig;
use crate::requests::{Req, Requests};
use rustc_hash::FxHashMap;

/// One client program's requests in an account that has several.
pub(crate) struct Slice<'r> {
    /// The account (index in the store).
    pub account: u32,
    /// The client program: user agent index (high bits) and system prompt
    /// hash (low 16 bits).
    pub client: u64,
    /// Its requests, time-ordered.
    pub reqs: Vec<&'r Req>,
}

/// The minority client slices of account `a` with time-ordered requests
/// `reqs`: each client program sending at most half the account's
/// requests and at least `slice_min_requests`, when the account has
/// several. Slices larger than `min_requests` are client facets judged on
/// their own already; they are linked too, so a campaign's larger hosted
/// pieces join its small ones.
pub(crate) fn of_account<'r>(a: u32, reqs: &'r [Req], cfg: &AnalyzerConfig) -> Vec<Slice<'r>> {
    let mut counts: FxHashMap<u64, u64> = FxHashMap::default();
    for r in reqs {
        *counts.entry(client(r)).or_default() += 1;
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
        if let Ok(i) = kept.binary_search(&client(r)) {
            slices[i].reqs.push(r);
        }
    }
    slices
}

/// The requests of `reqs` sent by any of `clients` (in order).
pub(crate) fn requests<'r>(reqs: &'r [Req], clients: &[u64]) -> Vec<&'r Req> {
    reqs.iter()
        .filter(|r| clients.contains(&client(r)))
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
