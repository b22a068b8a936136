//! When each alerted verdict first held: the moment an alert is stamped
//! with. The entity's traffic is replayed in time order and judged as the
//! analysis would have judged it then — its own cumulative requests up to a
//! moment, the log's clock at that moment (span and new models of the
//! requests seen so far), against the whole input's peer baselines and
//! peer groups — first at checkpoints every `window_hours`, then, between
//! the last checkpoint at which the verdict did not hold and the first at
//! which it did, by bisection over the entity's requests to the request at
//! which it crossed the threshold (held there, not one request before).
//!
//! An account is judged with its facets (API keys, client programs) and
//! then its candidate job parts (`parts.rs`) as in
//! [`crate::analysis::analyze`]; a cluster on its members' merged traffic
//! with its coordination signal (links as found on the whole input), or
//! as a group ([`crate::group`]), and, as there, only when enough of its
//! members score enough on their own whole traffic so far (not a facet's
//! or a part's), or are too small to be judged alone
//! ([`analysis::condemned`]); a cluster of client slices
//! ([`crate::slices`]) on its members' slices alone. A verdict that held
//! only on the whole input (peer context aside, every prefix scored under
//! the threshold) is stamped at the end of the input.

use crate::analysis::{self, AccountResult, Analysis, ClusterResult, Member};
use crate::config::AnalyzerConfig;
use crate::features::{self, Context, Features, HOUR_MS};
use crate::group;
use crate::model::Model;
use crate::parts::{self, PartKey};
use crate::requests::{Req, Requests};
use crate::score::{self, Judge, Verdict};
use crate::slices;
use rustc_hash::FxHashMap;

/// When an entity's verdict first held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Onset {
    /// Time of the request at which the verdict first held (ms; the end of
    /// the input when it held only there).
    pub at: i64,
    /// The entity's requests up to and including that one.
    pub requests: u64,
    /// Whether a replayed prefix held (false: only the whole input did).
    pub replayed: bool,
}

/// The log's clock: what [`Context::new`] would find over the requests
/// up to any moment, without walking the log again for each moment.
struct Clock {
    start: i64,
    /// Each model's first non-embedding request (model, ms).
    first_seen: Vec<(u16, i64)>,
}

impl Clock {
    fn of(store: &Requests) -> Clock {
        Clock {
            start: store.time_range().map_or(i64::MAX, |(first, _)| first),
            first_seen: store.first_seen().to_vec(),
        }
    }

    /// The context of the requests up to and including time `t` (ms).
    fn at(&self, t: i64, cfg: &AnalyzerConfig) -> Context {
        let (start, end) = if self.start <= t {
            (self.start, t)
        } else {
            (0, 0)
        };
        let cut = start + ((end - start) as f64 * cfg.new_model_after) as i64;
        Context {
            start,
            end,
            new_models: self
                .first_seen
                .iter()
                .copied()
                .filter(|&(_, s)| s <= t && s > cut)
                .collect(),
        }
    }
}

/// What every replay of one analysis shares.
pub struct Replay<'a> {
    store: &'a Requests,
    judge: Judge<'a>,
    clock: Clock,
    /// How many accounts send each setting over the whole input
    /// ([`parts::holders`], counted by the analysis).
    holders: &'a FxHashMap<PartKey, u32>,
    /// The input's last request (ms).
    end: i64,
}

impl<'a> Replay<'a> {
    /// Replays of `analysis` (of all of `store`, judged by `model`).
    pub fn new(
        store: &'a Requests,
        analysis: &'a Analysis,
        cfg: &'a AnalyzerConfig,
        model: &'a Model,
    ) -> Replay<'a> {
        Replay {
            store,
            judge: Judge {
                cfg,
                baselines: &analysis.baselines,
                peers: &analysis.peers,
                model,
            },
            clock: Clock::of(store),
            holders: &analysis.holders,
            end: store.time_range().map_or(0, |(_, last)| last),
        }
    }

    /// The input's last request (ms): the end of the window analysed.
    pub fn window_end(&self) -> i64 {
        self.end
    }

    /// The deciding verdict of account `a` on its requests `reqs` (a
    /// prefix of its own, up to time `t`): its own, or its best facet's,
    /// or its best job part's, when that scores higher and the ones before
    /// did not hold.
    fn account_verdict(&self, a: usize, reqs: &[Req], t: i64) -> Verdict {
        let cfg = self.judge.cfg;
        let ctx = self.clock.at(t, cfg);
        let refs: Vec<&Req> = reqs.iter().collect();
        let f = features::compute(&refs, &ctx, cfg);
        let own = score::score(&f, &self.judge);
        if own.flagged || f.requests < 2 * cfg.min_requests {
            return own;
        }
        let keys = if f.keys >= 2 {
            analysis::key_facets(self.store, a, reqs, &ctx, cfg)
        } else {
            Vec::new()
        };
        let (best, tried) = analysis::best_facet(&keys, reqs, &self.judge, &ctx);
        let own = match best {
            Some((_, v)) if v.score > own.score => v,
            _ => own,
        };
        if own.flagged {
            return own;
        }
        let parts = parts::candidates(reqs, self.holders, &ctx, cfg);
        match analysis::best_part(&parts, tried, &self.judge) {
            Some((_, v)) if v.score > own.score => v,
            _ => own,
        }
    }

    /// When account `acct`'s verdict first held.
    pub fn account(&self, acct: &AccountResult) -> Onset {
        let a = acct.index as usize;
        let reqs = self.store.account_reqs(a);
        let times: Vec<i64> = reqs.iter().map(|r| r.ts).collect();
        self.first_held(&times, |k| {
            self.account_verdict(a, &reqs[..=k], reqs[k].ts).flagged
        })
    }

    /// When cluster `c`'s verdict first held.
    pub fn cluster(&self, c: &ClusterResult) -> Onset {
        let cfg = self.judge.cfg;
        // A cluster of client slices replays each member's slices only.
        let sliced: Vec<Vec<Req>> = c
            .cluster
            .members
            .iter()
            .zip(&c.clients)
            .map(|(&m, clients)| {
                let reqs = self.store.account_reqs(m as usize);
                slices::requests(reqs, c.slicing, clients)
                    .into_iter()
                    .copied()
                    .collect()
            })
            .collect();
        let members: Vec<&[Req]> = if sliced.is_empty() {
            c.cluster
                .members
                .iter()
                .map(|&m| self.store.account_reqs(m as usize))
                .collect()
        } else {
            sliced.iter().map(Vec::as_slice).collect()
        };
        // The members' traffic merged once: its requests up to any time
        // are a prefix (the same requests, in the same order, as merging
        // the members' own prefixes).
        let all = Requests::merged_by_time(members.iter().copied());
        let times: Vec<i64> = all.iter().map(|r| r.ts).collect();
        let holds = |k: usize| {
            let t = times[k];
            let upto = |r: &[Req]| r.partition_point(|x| x.ts <= t);
            let merged = &all[..times.partition_point(|&x| x <= t)];
            let ctx = self.clock.at(t, cfg);
            let f = features::compute(merged, &ctx, cfg);
            let signals = || vec![analysis::coordination(&c.cluster, &f, cfg)];
            let v = score::score_with(&f, &self.judge, signals());
            // Each member's own traffic so far (none yet: not judged).
            let judged: Vec<Option<(Features, Verdict)>> = members
                .iter()
                .map(|r| {
                    let r = &r[..upto(r)];
                    // A member is judged on its whole traffic (or its
                    // slices), without facets or parts, as in the analysis.
                    (!r.is_empty()).then(|| {
                        let f = features::compute(&r.iter().collect::<Vec<_>>(), &ctx, cfg);
                        let v = score::score(&f, &self.judge);
                        (f, v)
                    })
                })
                .collect();
            let member_feats: Vec<&Features> = judged.iter().flatten().map(|(f, _)| f).collect();
            let g = group::per_member(&f, &member_feats);
            let gv = score::score_with(&g, &self.judge, signals());
            if !v.flagged && !gv.flagged {
                return false;
            }
            let own: Vec<Member> = judged
                .iter()
                .map(|j| {
                    j.as_ref().map_or(
                        Member {
                            score: 0.0,
                            requests: 0,
                        },
                        |(f, v)| Member {
                            score: v.score,
                            requests: f.requests,
                        },
                    )
                })
                .collect();
            analysis::condemned(&c.cluster, &own, v.flagged, gv.flagged, cfg).is_some()
        };
        self.first_held(&times, holds)
    }

    /// The first of the entity's requests (at `times`, sorted) at which
    /// `holds(k)` (the verdict on requests `..=k`) is true: checkpoints
    /// every `window_hours`, then bisection between the last checkpoint
    /// that did not hold and the first that did.
    fn first_held(&self, times: &[i64], holds: impl Fn(usize) -> bool) -> Onset {
        let whole = Onset {
            at: self.end,
            requests: times.len() as u64,
            replayed: false,
        };
        let Some(&first) = times.first() else {
            return whole;
        };
        let step = HOUR_MS * i64::from(self.judge.cfg.window_hours.max(1));
        // `lo`: a prefix known not to hold (None: none tried yet).
        let mut lo: Option<usize> = None;
        let mut cut = first.div_euclid(step) * step + step;
        let hi = loop {
            // The last request before the checkpoint.
            let k = times.partition_point(|&t| t < cut).saturating_sub(1);
            if lo.is_none_or(|lo| k > lo) {
                if holds(k) {
                    break Some(k);
                }
                lo = Some(k);
            }
            if k + 1 >= times.len() {
                break None;
            }
            cut += step;
        };
        let Some(mut hi) = hi else {
            return whole;
        };
        let onset = |k: usize| Onset {
            at: times[k],
            requests: k as u64 + 1,
            replayed: true,
        };
        // Bisection: `lo` does not hold, `hi` does.
        let mut lo = match lo {
            Some(lo) => lo,
            // The first checkpoint held: perhaps from the first request.
            None if hi == 0 || holds(0) => return onset(0),
            None => 0,
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if holds(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        onset(hi)
    }
}
