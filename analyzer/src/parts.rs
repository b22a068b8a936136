//! An account's job parts (issue 12 item 4): its requests grouped by what
//! the client program sets — model, system prompt, output cap, whether it
//! asks for log-probabilities, embeddings — so that a harvesting job run
//! inside a product's key, through the product's own user agents and
//! addresses, can be judged on its own requests.
//!
//! A part is a *candidate* only when it is a minority of its account (at
//! most half its requests, at least `min_requests`; at least
//! `slice_min_requests`, and never under 5, when no other account of the
//! input sends its setting: [`holders`]) **and** asks for
//! different things than the rest of the account: the discrepancy
//! ([`discrepancy`]) between the part's and the rest's requests, over what
//! a request asks (its topic, the size of its own message, its turns) —
//! not over anything the grouping already fixes — reaches
//! `part_min_discrepancy`. A general assistant or a power user whose
//! traffic is split by model or output cap sends the same kind of
//! questions through every setting, so its parts do not differ from their
//! rest and are not tried (session 12 tried shape facets without that
//! requirement and flagged them). A part that is exactly one client
//! program's or one API key's requests is that facet, judged already, and
//! is not tried again. The settings each too few to be a part alone are
//! also taken together as one more part ([`PartKey::LEFTOVER`], under the
//! same size and discrepancy rules): a harvest of a few dozen requests in
//! a setting its peers send too (a hydra's members hosted in several
//! products, a logprob extractor's default settings), or one that changes
//! its settings request by request, is judged on its own requests rather
//! than not at all. The account's requests with made-up turns (prior
//! turns that continue nothing earlier of their key and setting,
//! [`flag::ORPHAN`]) are one more part, whatever their settings
//! ([`PartKey::MADE_UP`], same rules): a harvest that wraps its prompts
//! in invented conversations and is sent partly in its host's own
//! settings is no setting's minority, but its made-up turns are its own
//! (a product's real follow-ups continue its earlier requests). The candidates are scored alone with the bundled
//! model, the best with its odds divided by the number of facets and
//! parts tried ([`crate::analysis::best_part`]), and its verdict is the
//! account's when it scores higher and nothing else flagged the account
//! (taken after the clusters: a part condemns its host, and does not make
//! the host look like its cluster).

use crate::config::AnalyzerConfig;
use crate::features::{self, CODE_BINS, Context, Features};
use crate::requests::{Req, Requests, flag};
use rustc_hash::{FxHashMap, FxHashSet};

/// What a client program sets, packed: model (bits 0-15), system prompt
/// hash (16-31), output cap in bits of `max_tokens` (32-39),
/// log-probabilities asked (40), embeddings (41). Temperature and `n` are
/// left out: harvesting jobs rotate them request by request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PartKey(u64);

impl PartKey {
    /// The part a request belongs to.
    pub fn of(r: &Req) -> PartKey {
        PartKey(
            u64::from(r.model)
                | u64::from(r.system_prompt) << 16
                | u64::from(r.max_tokens_bits) << 32
                | u64::from(r.logprob_depth() > 0.0) << 40
                | u64::from(r.has(flag::EMBED)) << 41,
        )
    }

    /// The part holding an account's settings that are each too few to
    /// be judged alone ([`candidates`]), taken together.
    pub const LEFTOVER: PartKey = PartKey(1 << 63);

    /// The part holding an account's requests with made-up turns
    /// ([`flag::ORPHAN`]) in every setting ([`candidates`]).
    pub const MADE_UP: PartKey = PartKey(1 << 62);

    /// Whether request `r` belongs to this part, given the account's
    /// settings taken together as [`PartKey::LEFTOVER`].
    fn holds(&self, r: &Req, leftover: &FxHashSet<PartKey>) -> bool {
        match *self {
            PartKey::MADE_UP => r.has(flag::ORPHAN),
            PartKey::LEFTOVER => leftover.contains(&PartKey::of(r)),
            key => PartKey::of(r) == key,
        }
    }

    /// The packed settings.
    pub fn bits(&self) -> u64 {
        self.0
    }

    /// The part of packed settings `bits` (as [`PartKey::bits`] gives).
    pub fn from_bits(bits: u64) -> PartKey {
        PartKey(bits)
    }

    /// The settings in words, for a verdict's `decided_by`: e.g. `model
    /// atlas-2, output cap < 2^13, no system prompt, log-probabilities`.
    pub fn describe(&self, store: &Requests) -> String {
        let k = self.0;
        if *self == PartKey::LEFTOVER {
            return "settings each too few to judge, together".to_string();
        }
        if *self == PartKey::MADE_UP {
            return "made-up turns, in every setting".to_string();
        }
        let model = store
            .models
            .names
            .get((k & 0xffff) as usize)
            .map_or("-", String::as_str);
        let sys = (k >> 16) & 0xffff;
        let cap = (k >> 32) & 0xff;
        let mut s = format!("model {model}");
        if cap == 0 {
            s.push_str(", no output cap");
        } else {
            s.push_str(&format!(", output cap < 2^{cap}"));
        }
        if sys == 0 {
            s.push_str(", no system prompt");
        } else {
            s.push_str(&format!(", system prompt #{sys:04x}"));
        }
        if k >> 40 & 1 == 1 {
            s.push_str(", log-probabilities");
        }
        if k >> 41 & 1 == 1 {
            s.push_str(", embeddings");
        }
        s
    }
}

/// A candidate part of an account.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Part {
    /// What its client program sets.
    pub key: PartKey,
    /// How differently it asks than the rest of its account ([`discrepancy`]).
    pub discrepancy: f64,
    /// Features of its requests alone.
    pub features: Features,
}

/// Codes per request in [`discrepancy`].
const ASK_CODES: usize = 3;

/// What a request asks, one small code per aspect, each below
/// [`CODE_BINS`]: its topic, the size of its own message (bits of its
/// tokens), and its turns: none (0), a follow-up of an earlier request of
/// its key (bits of its turns), or prior turns that continue nothing
/// ([`flag::ORPHAN`]: made up, as the `multi_turn` evasion wraps a
/// harvest's prompts; counted as the number of turns, such a harvest asks
/// like its host's real conversations). None is set by the client
/// program's settings that define a part (the output cap would make every
/// part's answers differ from the rest's by construction).
fn ask_codes(r: &Req) -> [usize; ASK_CODES] {
    let bits = |v: u32| (32 - v.leading_zeros()) as usize;
    let turns = if r.has(flag::ORPHAN) {
        CODE_BINS - 1
    } else {
        bits(u32::from(r.turns)).min(CODE_BINS - 2)
    };
    [
        usize::from(r.topic) % CODE_BINS,
        bits(u32::from(r.message_tokens)),
        turns,
    ]
}

pub(crate) type Hist = [[u32; CODE_BINS]; ASK_CODES];

/// What is tallied of one tested part in [`candidates`]' pass.
struct Tally {
    key: PartKey,
    requests: u64,
    /// Histograms of its [`ask_codes`].
    asks: Hist,
    /// The one client program (user agent, system prompt) and the one
    /// API key all its requests share, if they do.
    client: Option<(u32, u16)>,
    api_key: Option<u32>,
    mixed_client: bool,
    mixed_key: bool,
    /// How many of its requests have made-up turns.
    made_up: u64,
}

/// How many accounts send each setting ([`PartKey`]) among `accounts`
/// (each account's requests, read on `threads` threads): the population
/// a part's setting is compared with in [`candidates`]. One pass over the
/// requests; memory is the distinct settings of each account.
pub fn holders(accounts: &[&[Req]], threads: usize) -> FxHashMap<PartKey, u32> {
    let own = crate::par::map(accounts, threads, |reqs| {
        let mut keys: Vec<PartKey> = reqs.iter().map(PartKey::of).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    });
    let mut held: FxHashMap<PartKey, u32> = FxHashMap::default();
    for k in own.into_iter().flatten() {
        *held.entry(k).or_default() += 1;
    }
    held
}

/// The candidate parts of an account with time-ordered requests `reqs`
/// (see the module documentation): of its parts with at least
/// `min_requests` requests — or at least `slice_min_requests` when no
/// other account sends that setting (`holders`, [`holders`]: one for its
/// own) — and at most half of the account's, the `part_max` largest are
/// tested, and so are the settings under those sizes together
/// ([`PartKey::LEFTOVER`]) when they hold `slice_min_requests` (at least 5)
/// and at most half of the account, and so are its requests with made-up
/// turns ([`PartKey::MADE_UP`]) under the same size rule; those that
/// differ from the rest of the account are
/// returned with their features. A part of at least `min_requests` that
/// is exactly the requests of one client program or one API key is left
/// out: it is that facet, judged already. O(requests) beside the features.
pub fn candidates(
    reqs: &[Req],
    holders: &FxHashMap<PartKey, u32>,
    ctx: &Context,
    cfg: &AnalyzerConfig,
) -> Vec<Part> {
    let n = reqs.len() as u64;
    let mut counts: FxHashMap<PartKey, u64> = FxHashMap::default();
    for r in reqs {
        *counts.entry(PartKey::of(r)).or_default() += 1;
    }
    // Made-up turns are a part in an account of one setting too.
    let made_up = reqs.iter().filter(|r| r.has(flag::ORPHAN)).count() as u64;
    let small = cfg.slice_min_requests.max(5);
    if counts.len() < 2 && made_up < small {
        return Vec::new();
    }
    let least = |k: &PartKey| {
        let unseen = holders.get(k).is_none_or(|&h| h <= 1);
        if unseen {
            cfg.slice_min_requests.max(5)
        } else {
            cfg.min_requests
        }
    };
    // The settings each too few to be a part alone, and their requests.
    let mut leftover: FxHashSet<PartKey> = FxHashSet::default();
    let mut leftover_n = 0;
    for (k, &c) in &counts {
        if c < least(k) {
            leftover.insert(*k);
            leftover_n += c;
        }
    }
    let mut sizes: Vec<(PartKey, u64)> = counts
        .into_iter()
        .filter(|(k, c)| *c >= least(k) && 2 * c <= n)
        .collect();
    sizes.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sizes.truncate(cfg.part_max);
    // Beside the `part_max` largest; `part_max` 0 turns every part off.
    if cfg.part_max > 0 && leftover_n >= small && 2 * leftover_n <= n {
        sizes.push((PartKey::LEFTOVER, leftover_n));
    }
    if cfg.part_max > 0 && made_up >= small && 2 * made_up <= n {
        sizes.push((PartKey::MADE_UP, made_up));
    }
    if sizes.is_empty() {
        return Vec::new();
    }
    let mut tested: Vec<Tally> = sizes
        .into_iter()
        .map(|(key, requests)| Tally {
            key,
            requests,
            asks: [[0; CODE_BINS]; ASK_CODES],
            client: None,
            api_key: None,
            mixed_client: false,
            mixed_key: false,
            made_up: 0,
        })
        .collect();
    let mut all: Hist = [[0; CODE_BINS]; ASK_CODES];
    let mut clients: FxHashMap<(u32, u16), u64> = FxHashMap::default();
    let mut api_keys: FxHashMap<u32, u64> = FxHashMap::default();
    for r in reqs {
        let codes = ask_codes(r);
        for (i, &c) in codes.iter().enumerate() {
            all[i][c] += 1;
        }
        let client = (r.ua, r.system_prompt);
        *clients.entry(client).or_default() += 1;
        *api_keys.entry(r.key).or_default() += 1;
        // A request is in its setting's part (or the leftover) and, when
        // its turns are made up, in that part too.
        for t in tested.iter_mut().filter(|t| t.key.holds(r, &leftover)) {
            for (i, &c) in codes.iter().enumerate() {
                t.asks[i][c] += 1;
            }
            t.mixed_client |= t.client.is_some_and(|c| c != client);
            t.client = Some(client);
            t.mixed_key |= t.api_key.is_some_and(|k| k != r.key);
            t.api_key = Some(r.key);
            t.made_up += u64::from(r.has(flag::ORPHAN));
        }
    }
    tested
        .iter()
        // The made-up turns that are exactly another tested part's
        // requests are that part, not a second try of the same requests.
        .filter(|t| {
            t.key != PartKey::MADE_UP
                || !tested.iter().any(|o| {
                    o.key != PartKey::MADE_UP && o.requests == made_up && o.made_up == made_up
                })
        })
        .filter(|t| {
            // Facets are judged from `min_requests`: a smaller part is
            // tried even when it is one client's or one key's requests.
            if t.requests < cfg.min_requests {
                return true;
            }
            let client_facet =
                !t.mixed_client && t.client.and_then(|c| clients.get(&c)) == Some(&t.requests);
            let key_facet =
                !t.mixed_key && t.api_key.and_then(|k| api_keys.get(&k)) == Some(&t.requests);
            !client_facet && !key_facet
        })
        .filter_map(|t| {
            let d = discrepancy(&t.asks, t.requests, &all, n);
            (d >= cfg.part_min_discrepancy).then(|| {
                let reqs: Vec<&Req> = reqs.iter().filter(|r| t.key.holds(r, &leftover)).collect();
                Part {
                    key: t.key,
                    discrepancy: d,
                    features: features::compute(&reqs, ctx, cfg),
                }
            })
        })
        .collect()
}

/// The [`ask_codes`] histograms of `reqs`, and how many there are.
pub(crate) fn asks_of<'r>(reqs: impl IntoIterator<Item = &'r Req>) -> (Hist, u64) {
    let mut h: Hist = [[0; CODE_BINS]; ASK_CODES];
    let mut n = 0;
    for r in reqs {
        for (i, &c) in ask_codes(r).iter().enumerate() {
            h[i][c] += 1;
        }
        n += 1;
    }
    (h, n)
}

/// How differently the requests `slice` (some of an account's, e.g. a
/// setting slice, [`crate::slices`]) ask than the rest of the account
/// (`account`: its [`asks_of`], taken once for all its slices):
/// [`discrepancy`]; 0 when either side has fewer than two requests.
pub(crate) fn slice_discrepancy(slice: &[&Req], account: &(Hist, u64)) -> f64 {
    let (all, n) = account;
    let (part, m) = asks_of(slice.iter().copied());
    if m < 2 || *n < m + 2 {
        return 0.0;
    }
    discrepancy(&part, m, all, *n)
}

/// The unbiased squared maximum mean discrepancy between a part's `m`
/// requests (histograms `part`) and the rest of its account (`all` over
/// `n` requests, less the part), under the kernel "share of the
/// [`ask_codes`] two requests have in common": 0 in expectation when
/// they ask alike, up to 2 when they never share a code.
pub fn discrepancy(part: &Hist, m: u64, all: &Hist, n: u64) -> f64 {
    let mut rest: Hist = *all;
    for (r, p) in rest.iter_mut().zip(part) {
        for (x, y) in r.iter_mut().zip(p) {
            *x -= y;
        }
    }
    features::mmd(part, m, &rest, n - m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::mark_orphans;

    /// One request of an account's only key: `model` and output cap
    /// `cap_bits` (the setting), `turns` prior turns, `input` and
    /// `output` tokens, one topic and message size throughout.
    fn req(ts: i64, model: u16, cap_bits: u8, turns: u16, input: u32, output: u32) -> Req {
        Req {
            ts,
            model,
            max_tokens_bits: cap_bits,
            turns,
            prompt_tokens: input,
            completion_tokens: output,
            topic: 3,
            message_tokens: 50,
            ..Req::default()
        }
    }

    #[test]
    fn made_up_turns_in_a_setting_of_their_own_ask_unlike_the_hosts_conversations() {
        // A product's key: real three-request conversations (each input
        // holds the one before and its answer) in its own setting, and a
        // hosted harvest in another setting whose prompts are wrapped in
        // 2 or 4 made-up turns, as many as the product's follow-ups have,
        // with inputs long enough to "continue" the product's requests
        // (and half of them on the product's topic).
        let mut run = Vec::new();
        for c in 0..40i64 {
            let t = c * 600_000;
            product_conversation(&mut run, t);
            let mut h = req(t + 90_000, 2, 0, if c % 2 == 0 { 2 } else { 4 }, 2_000, 800);
            h.topic = 3 + (c % 2) as u8;
            run.push(h);
        }
        run.sort_by_key(|r| r.ts);
        mark_orphans(&mut run);
        let (made_up, own): (Vec<&Req>, Vec<&Req>) = run.iter().partition(|r| r.model == 2);
        assert!(made_up.iter().all(|r| r.has(flag::ORPHAN)));
        assert!(own.iter().all(|r| !r.has(flag::ORPHAN)));
        let bar = AnalyzerConfig::default().part_min_discrepancy;
        let d = slice_discrepancy(&made_up, &asks_of(&run));
        assert!(d >= bar, "discrepancy {d}");
        // Counted by their number alone, the made-up turns ask like the
        // product's own.
        let mut plain = run.clone();
        plain.iter_mut().for_each(|r| r.flags &= !flag::ORPHAN);
        let harvest: Vec<&Req> = plain.iter().filter(|r| r.model == 2).collect();
        let d = slice_discrepancy(&harvest, &asks_of(&plain));
        assert!(d < bar, "discrepancy without continuity {d}");
    }

    /// One real three-request conversation of a product's key from `t`
    /// (model 1, cap 2^10): each input holds the one before and its answer.
    fn product_conversation(run: &mut Vec<Req>, t: i64) {
        run.push(req(t, 1, 10, 0, 200, 300));
        run.push(req(t + 60_000, 1, 10, 2, 550, 300));
        run.push(req(t + 120_000, 1, 10, 4, 900, 300));
    }

    /// A product's key sending real three-request conversations in
    /// setting (model 1, cap 2^10) for `conversations` ten-minute slots,
    /// and in every other slot a harvest request with two made-up prior
    /// turns in model `harvest_model` (cap 2^10), on another topic and
    /// with a longer message; time-ordered and marked.
    fn product_hosting(conversations: i64, harvest_model: u16) -> Vec<Req> {
        let mut run = Vec::new();
        for c in 0..conversations {
            let t = c * 600_000;
            product_conversation(&mut run, t);
            if c % 2 == 0 {
                let mut h = req(t + 90_000, harvest_model, 10, 2, 150, 900);
                h.topic = 9;
                h.message_tokens = 400;
                run.push(h);
            }
        }
        run.sort_by_key(|r| r.ts);
        mark_orphans(&mut run);
        run
    }

    fn candidates_of(run: &[Req]) -> Vec<(PartKey, u64)> {
        let cfg = AnalyzerConfig::default();
        let ctx = Context::of_span(run[0].ts, run[run.len() - 1].ts, [], &cfg);
        candidates(run, &FxHashMap::default(), &ctx, &cfg)
            .iter()
            .map(|p| (p.key, p.features.requests))
            .collect()
    }

    #[test]
    fn made_up_turns_in_the_hosts_own_setting_are_a_part() {
        // The harvest shares the product's only setting: no setting is a
        // minority, but its 20 made-up requests are a part of their own.
        let run = product_hosting(40, 1);
        assert_eq!(candidates_of(&run), vec![(PartKey::MADE_UP, 20)]);
    }

    #[test]
    fn made_up_turns_that_are_a_settings_part_are_not_tried_twice() {
        // The harvest alone in its own setting, every request made up:
        // its setting's part and its made-up turns are the same requests,
        // tested once.
        let run = product_hosting(40, 2);
        let found = candidates_of(&run);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, 20);
        assert_ne!(found[0].0, PartKey::MADE_UP);
    }
}
