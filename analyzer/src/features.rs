//! Features of an entity — an account, an API key or a cluster of accounts —
//! over a time-ordered set of its requests, and the global context they are
//! measured against (the input's span, newly released models).

use crate::config::AnalyzerConfig;
use crate::continuity::{Continuity, Turn};
use crate::requests::{Req, flag};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::Serialize;

/// ms per hour.
pub const HOUR_MS: i64 = 3_600_000;

/// ms per day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// What all entities share: the span of the input and the models released
/// inside it.
#[derive(Clone, Debug)]
pub struct Context {
    /// First request (ms).
    pub start: i64,
    /// Last request (ms).
    pub end: i64,
    /// Models first seen after `new_model_after` of the span: (model index, first seen).
    pub new_models: Vec<(u16, i64)>,
}

impl Context {
    /// Measure the span and find new models over the requests before
    /// `until` (ms; `i64::MAX` for all), in any order.
    pub fn new(reqs: &[Req], until: i64, cfg: &AnalyzerConfig) -> Self {
        let (mut start, mut end) = (i64::MAX, i64::MIN);
        let mut first: HashMap<u16, i64> = HashMap::default();
        for r in reqs.iter().filter(|r| r.ts < until) {
            start = start.min(r.ts);
            end = end.max(r.ts);
            if !r.has(flag::EMBED) {
                let t = first.entry(r.model).or_insert(r.ts);
                *t = (*t).min(r.ts);
            }
        }
        Self::of_span(start, end, first, cfg)
    }

    /// The context of requests from `start` to `end` (ms; `start > end`:
    /// none) whose models were first seen as in `first` (model, ms).
    pub fn of_span(
        mut start: i64,
        mut end: i64,
        first: impl IntoIterator<Item = (u16, i64)>,
        cfg: &AnalyzerConfig,
    ) -> Self {
        if start > end {
            (start, end) = (0, 0);
        }
        let cut = start + ((end - start) as f64 * cfg.new_model_after) as i64;
        let mut new_models: Vec<(u16, i64)> = first.into_iter().filter(|&(_, t)| t > cut).collect();
        new_models.sort();
        Context {
            start,
            end,
            new_models,
        }
    }
}

/// The per-entity feature table (one row of `--features-out`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Features {
    /// Requests.
    pub requests: u64,
    /// Requests per day of the entity's own span (first to last request,
    /// at least one day).
    pub requests_per_day: f64,
    /// Distinct clock hours with traffic.
    pub active_hours: u32,
    /// Distinct hours of the day (0–23) with traffic.
    pub hours_of_day: u32,
    /// Share of the hours of the entity's own span (at least a day) with
    /// traffic.
    pub duty_cycle: f64,
    /// Distinct days with traffic.
    pub active_days: u32,
    /// Share of the input's UTC days (from its first request's day to its
    /// last's) on which the entity sent anything: persistence over the
    /// whole input, which a benchmark run or a research probe (a burst on
    /// a day or two) lacks and a sustained extraction job has.
    pub active_days_share: f64,
    /// Log-probabilities asked for over the input's clock hours (from its
    /// first request's hour to its last's): the sum over those hours of
    /// the deepest [`Req::logprob_depth`] asked in the hour, divided by
    /// the hours. Output-layer extraction sustained over the input, which
    /// a researcher's probe or a benchmark's logprob run (an hour or a
    /// few) lacks. Hours rather than days: a researcher who probes a
    /// little every working day has every day and still few hours. Depth
    /// rather than "at the maximum" (session 9's `toplp_hours_share`,
    /// which it equals when every request asks for the maximum or none):
    /// asking for one alternative fewer than the maximum, or a different
    /// number per request, must not take the evidence away (session 12);
    /// asking for far fewer takes it down with what the extraction gets.
    pub logprob_hours_share: f64,
    /// Coefficient of variation of inter-arrival gaps (low = machine-regular).
    pub interarrival_cv: f64,
    /// Most requests in one window of `window_hours`.
    pub peak_window_requests: u64,
    /// Mean input tokens.
    pub prompt_tokens_mean: f64,
    /// Mean output tokens of answered requests (429s and errors carry no
    /// output, so counting them would measure rate limiting, not output).
    pub completion_tokens_mean: f64,
    /// Output tokens per input token, over answered requests.
    pub completion_prompt_ratio: f64,
    /// Share with `conversation_turns == 0` (or absent).
    pub single_turn_share: f64,
    /// Share of the multi-turn requests (`conversation_turns > 0`, not
    /// embeddings) that continue an earlier request of the same API key:
    /// more prior turns, an input of at least that request's input and
    /// answer, at most 30 minutes later (`crate::continuity`). People's
    /// and products' conversations continue (external set: 0.89-1.0); a
    /// made-up preamble around independent prompts, or a few-shot batch
    /// job's constant one, does not. 0 without multi-turn requests.
    pub continuation_share: f64,
    /// Share with logprobs.
    pub logprobs_share: f64,
    /// Share with top_logprobs at the maximum.
    pub top_logprobs_max_share: f64,
    /// Mean [`Req::logprob_depth`]: how much of the output distribution
    /// the entity asked for, per request (1: every request at the
    /// `top_logprobs` maximum; 0: no log-probabilities). Equals
    /// `top_logprobs_max_share` when requests ask for the maximum or none,
    /// and unlike it does not drop to 0 when they ask for one fewer.
    pub top_logprobs_depth: f64,
    /// Share at temperature 0.
    pub temp0_share: f64,
    /// Share with n > 1.
    pub n_gt1_share: f64,
    /// Share with max_tokens <= 1.
    pub max_tokens1_share: f64,
    /// Share with logit_bias.
    pub logit_bias_share: f64,
    /// Mean biased tokens of requests with logit_bias.
    pub logit_bias_keys_mean: f64,
    /// Share of embeddings requests.
    pub embeddings_share: f64,
    /// Share of requests with only `prompt_sha256`.
    pub redacted_share: f64,
    /// Distinct prompts (text or hash) per request.
    pub distinct_prompt_ratio: f64,
    /// Prompts never sent before by the entity, per day, counted after its
    /// first 24 hours (0 when it spans less). Volume-aware novelty: a
    /// harvester keeps sending new prompts day after day, while a fixed
    /// set (benchmark items, a batch re-run) is used up in its first pass,
    /// and unlike `distinct_prompt_ratio` it does not fall merely because
    /// the volume is high.
    pub new_prompts_per_day: f64,
    /// Largest shift of one UTC day's sampling parameters against the
    /// entity's own earlier days: an unbiased squared maximum mean
    /// discrepancy over per-request parameter codes (see [`self_shift`]);
    /// 0 when no day and its history both hold [`SHIFT_MIN_REQUESTS`]. A
    /// switch into harvesting, a harvesting job added to an ordinary key,
    /// or settings rotated to look varied change what a day's requests ask
    /// for; a person's client or a product's keeps its settings.
    pub self_shift: f64,
    /// Single-turn texted completion requests (the pool of text signals).
    pub text_pool: u64,
    /// Distinct template skeletons in the pool.
    pub templates: u64,
    /// Share of the pool in the 10 largest templates.
    pub top_template_share: f64,
    /// Share of the pool in harvesting templates (large, every slot new).
    pub harvest_template_share: f64,
    /// Capability categories among harvesting-template prompts.
    pub harvest_breadth: u32,
    /// Mean output tokens of answered harvesting-template prompts.
    pub harvest_completion_mean: f64,
    /// Capability categories with real traffic in the pool.
    pub topic_breadth: u32,
    /// Normalised entropy of the pool's categories.
    pub topic_entropy: f64,
    /// Share of covered categories first reached after the first quarter
    /// of the on-topic prompts.
    pub coverage_growth: f64,
    /// Vocabulary novelty: the mean, over the entity's texted prompts
    /// after its first [`NOVELTY_MIN_PAST`], of the share of a prompt's
    /// sampled content words that none of its previous [`NOVELTY_WINDOW`]
    /// texted prompts held (0 when no prompt was judged). People, and
    /// products serving many people, ask in an open vocabulary; a harvester
    /// fills templates and topic lists from a closed one and keeps reusing
    /// it, however many distinct prompts that makes (session 10,
    /// docs/analyzer.md). Over the last prompts rather than all of them, so
    /// a large entity is not judged less novel for its volume alone.
    pub vocab_novelty: f64,
    /// Prompts of the pool that matched a capability category.
    pub topic_prompts: u64,
    /// Share of the pool eliciting reasoning traces.
    pub reasoning_share: f64,
    /// Prompts eliciting reasoning traces.
    pub reasoning_count: u64,
    /// Share of distinct prompts among them (re-sent benchmark items
    /// harvest nothing new).
    pub reasoning_distinct: f64,
    /// Languages of the elicitation phrases (bit mask of `text::LANGUAGES`).
    pub reasoning_languages: u8,
    /// Identity probes.
    pub probe_count: u64,
    /// Identity probes per texted request.
    pub probe_share: f64,
    /// Share of 429 answers.
    pub rate_429_share: f64,
    /// 429 answers.
    pub rate_429_count: u64,
    /// Share of other errors.
    pub error_share: f64,
    /// Share of traffic after the move on the newly released model.
    pub new_model_share: f64,
    /// Hours from the model's release to this entity's first use of it.
    pub new_model_lag_hours: f64,
    /// Similarity of the prompt distribution before and after the move.
    pub new_model_overlap: f64,
    /// Distinct source addresses per request (near 1: every request from a
    /// new address, as through rotating proxies).
    pub ips_per_request: f64,
    /// Share of completion requests asking for >= 4096 output tokens.
    pub max_tokens_high_share: f64,
    /// Share of requests carrying a system prompt.
    pub system_prompt_share: f64,
    /// Distinct system prompts (16-bit hashes).
    pub system_prompts: u32,
    /// Share of answered completion requests whose output is long (>= 300
    /// tokens) and at least four times the question: short questions,
    /// long answers, what a distillation data set is made of. The question
    /// is the whole input, but for a multi-turn request that continues no
    /// earlier request of its key (see `continuation_share`): its own
    /// message, not the made-up conversation around it.
    pub long_output_share: f64,
    /// Distinct source blocks (/24, /48).
    pub blocks: u32,
    /// Distinct user agents.
    pub user_agents: u32,
    /// Distinct API keys.
    pub keys: u32,
    /// First request (ms).
    pub first_ts: i64,
    /// Last request (ms).
    pub last_ts: i64,
    /// Requests over time (alert evidence `requests_per_hour`; not a
    /// column of the feature table).
    #[serde(skip)]
    pub series: Series,
}

/// Request counts per step of whole hours from the entity's first hour to
/// its last, at most `series_points` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    /// First hour (ms since the epoch, a whole UTC hour).
    pub start_ms: i64,
    /// Hours per point (1 unless the time range is longer than
    /// `series_points` hours).
    pub step_hours: u32,
    /// Requests in `[start + i·step, start + (i+1)·step)` hours.
    pub counts: Vec<u32>,
}

impl Series {
    /// Counts of `reqs` (time-ordered) from `first_ts` to `last_ts`.
    fn of(reqs: &[&Req], first_ts: i64, last_ts: i64, max_points: usize) -> Series {
        let h0 = first_ts.div_euclid(HOUR_MS);
        let span = (last_ts.div_euclid(HOUR_MS) - h0 + 1).max(1) as usize;
        let step = span.div_ceil(max_points.max(1)).max(1);
        let mut counts = vec![0u32; span.div_ceil(step)];
        for r in reqs {
            let i = (r.ts.div_euclid(HOUR_MS) - h0).max(0) as usize / step;
            if let Some(c) = counts.get_mut(i) {
                *c = c.saturating_add(1);
            }
        }
        Series {
            start_ms: h0 * HOUR_MS,
            step_hours: step as u32,
            counts,
        }
    }
}

fn share(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Compute the features of one entity from its requests (time-ordered).
pub fn compute(reqs: &[&Req], ctx: &Context, cfg: &AnalyzerConfig) -> Features {
    let mut f = Features {
        requests: reqs.len() as u64,
        ..Features::default()
    };
    if reqs.is_empty() {
        return f;
    }
    let n = reqs.len() as u64;
    f.first_ts = reqs[0].ts;
    f.last_ts = reqs[reqs.len() - 1].ts;
    // Rates over the entity's own span (at least a day), not the input's:
    // one far-off row elsewhere in the input must not change them.
    let span_ms = (f.last_ts - f.first_ts).max(DAY_MS);
    f.requests_per_day = n as f64 * DAY_MS as f64 / span_ms as f64;

    // Requests are time-ordered, so distinct hours, days and windows are
    // runs: counted without sets.
    let (mut active_hours, mut active_days) = (0u32, 0u32);
    let (mut last_hour, mut last_day) = (i64::MIN, i64::MIN);
    let mut hod = [false; 24];
    let win = HOUR_MS * i64::from(cfg.window_hours.max(1));
    // The current window's bounds: a request inside them is in it without
    // a division (`win` is not a constant: each `div_euclid` by it is a
    // hardware divide).
    let (mut win_start, mut win_end, mut in_win, mut peak_win) = (i64::MAX, i64::MIN, 0u64, 0u64);
    let (mut sum_pt, mut nonembed) = (0u64, 0u64);
    let (mut ans_pt, mut ans_ct, mut answered) = (0u64, 0u64, 0u64);
    let mut counts = [0u64; 16];
    let mut lb_keys = 0u64;
    let mut prompts = HashSet::default();
    let mut hashed = 0u64;
    // New prompts after the entity's first day (see `new_prompts_per_day`).
    let late = f.first_ts.saturating_add(DAY_MS);
    let mut late_new = 0u64;
    let mut blocks = HashSet::default();
    let mut uas = HashSet::default();
    let mut keys = HashSet::default();
    let mut texted = 0u64;
    let mut ips = HashSet::default();
    let mut sys = HashSet::default();
    let (mut max_hi, mut long_out) = (0u64, 0u64);
    // Deepest log-probabilities of each hour, summed (see
    // `logprob_hours_share`), and over all requests.
    let (mut depth_hours, mut hour_depth, mut depth_sum) = (0.0f64, 0.0f64, 0.0f64);
    let mut continuity = Continuity::default();
    let (mut multi, mut continued) = (0u64, 0u64);
    // Consecutive requests mostly share their address, block, client and
    // key: a value the request before had is in its set already.
    let mut prev: Option<&Req> = None;
    for &r in reqs {
        let new = |v: fn(&Req) -> u32| prev.is_none_or(|p| v(p) != v(r));
        if new(|x| x.ip) {
            ips.insert(r.ip);
        }
        if r.system_prompt != 0 && new(|x| u32::from(x.system_prompt)) {
            sys.insert(r.system_prompt);
        }
        let h = r.ts.div_euclid(HOUR_MS);
        if h != last_hour {
            last_hour = h;
            depth_hours += hour_depth;
            hour_depth = 0.0;
            active_hours += 1;
            hod[h.rem_euclid(24) as usize] = true;
            let d = h.div_euclid(24);
            if d != last_day {
                last_day = d;
                active_days += 1;
            }
        }
        let depth = r.logprob_depth();
        hour_depth = hour_depth.max(depth);
        depth_sum += depth;
        if r.ts < win_start || r.ts >= win_end {
            win_start = r.ts.div_euclid(win).saturating_mul(win);
            win_end = win_start.saturating_add(win);
            in_win = 0;
        }
        in_win += 1;
        peak_win = peak_win.max(in_win);
        for (bit, c) in counts.iter_mut().enumerate() {
            if r.flags & (1 << bit) != 0 {
                *c += 1;
            }
        }
        if !r.has(flag::EMBED) {
            // A made-up conversation around a prompt continues nothing:
            // its answer is measured against its own message.
            let question = match continuity.observe(r) {
                Turn::Single => r.prompt_tokens,
                Turn::Continues => {
                    multi += 1;
                    continued += 1;
                    r.prompt_tokens
                }
                Turn::Orphan => {
                    multi += 1;
                    if r.message_tokens > 0 {
                        u32::from(r.message_tokens).min(r.prompt_tokens)
                    } else {
                        r.prompt_tokens
                    }
                }
            };
            sum_pt += u64::from(r.prompt_tokens);
            nonembed += 1;
            if !r.has(flag::S429) && !r.has(flag::ERROR) {
                ans_pt += u64::from(r.prompt_tokens);
                ans_ct += u64::from(r.completion_tokens);
                answered += 1;
                if r.completion_tokens >= 300
                    && u64::from(r.completion_tokens) >= 4 * u64::from(question)
                {
                    long_out += 1;
                }
            }
            if r.max_tokens_bits >= 13 {
                max_hi += 1;
            }
            if !r.has(flag::NO_PROMPT) {
                if prompts.insert(r.prompt_hash) && r.ts >= late {
                    late_new += 1;
                }
                hashed += 1;
            }
            if r.has(flag::TEXT) {
                texted += 1;
            }
        }
        if r.has(flag::LOGIT_BIAS) {
            lb_keys += u64::from(r.logit_bias_keys());
        }
        if new(|x| x.block) {
            blocks.insert(r.block);
        }
        if new(|x| x.ua) {
            uas.insert(r.ua);
        }
        if new(|x| x.key) {
            keys.insert(r.key);
        }
        prev = Some(r);
    }
    let c = |f: u16| counts[f.trailing_zeros() as usize];
    f.active_hours = active_hours;
    f.hours_of_day = hod.iter().filter(|x| **x).count() as u32;
    f.duty_cycle = f.active_hours as f64 / (span_ms as f64 / HOUR_MS as f64).ceil();
    f.active_days = active_days;
    let input_days = ctx.end.div_euclid(DAY_MS) - ctx.start.div_euclid(DAY_MS) + 1;
    f.active_days_share = (f64::from(active_days) / input_days.max(1) as f64).min(1.0);
    let input_hours = ctx.end.div_euclid(HOUR_MS) - ctx.start.div_euclid(HOUR_MS) + 1;
    depth_hours += hour_depth;
    f.logprob_hours_share = (depth_hours / input_hours.max(1) as f64).min(1.0);
    f.peak_window_requests = peak_win;
    f.prompt_tokens_mean = share(sum_pt, nonembed);
    f.completion_tokens_mean = share(ans_ct, answered);
    f.completion_prompt_ratio = share(ans_ct, ans_pt);
    f.single_turn_share = share(c(flag::SINGLE_TURN), n);
    f.continuation_share = share(continued, multi);
    f.logprobs_share = share(c(flag::LOGPROBS), n);
    f.top_logprobs_max_share = share(c(flag::TOPLP_MAX), n);
    f.top_logprobs_depth = depth_sum / n as f64;
    f.temp0_share = share(c(flag::TEMP0), n);
    f.n_gt1_share = share(c(flag::N_GT1), n);
    f.max_tokens1_share = share(c(flag::MAX1), n);
    f.logit_bias_share = share(c(flag::LOGIT_BIAS), n);
    f.logit_bias_keys_mean = share(lb_keys, c(flag::LOGIT_BIAS));
    f.embeddings_share = share(c(flag::EMBED), n);
    f.redacted_share = share(c(flag::REDACTED), n);
    f.distinct_prompt_ratio = share(prompts.len() as u64, hashed);
    if f.last_ts >= late {
        // Per day after the first, at least one (a short tail is not
        // extrapolated into a rate).
        let days = ((f.last_ts - late) as f64 / DAY_MS as f64).max(1.0);
        f.new_prompts_per_day = late_new as f64 / days;
    }
    f.probe_count = c(flag::PROBE);
    f.probe_share = share(f.probe_count, texted);
    f.rate_429_count = c(flag::S429);
    f.rate_429_share = share(f.rate_429_count, n);
    f.error_share = share(c(flag::ERROR), n);
    f.ips_per_request = share(ips.len() as u64, n);
    f.max_tokens_high_share = share(max_hi, nonembed);
    f.system_prompt_share = share(c(flag::SYSTEM_PROMPT), n);
    f.system_prompts = sys.len() as u32;
    f.long_output_share = share(long_out, answered);
    f.blocks = blocks.len() as u32;
    f.user_agents = uas.len() as u32;
    f.keys = keys.len() as u32;
    f.interarrival_cv = interarrival_cv(reqs);
    f.self_shift = self_shift(reqs);
    f.vocab_novelty = vocab_novelty(reqs);
    f.series = Series::of(reqs, f.first_ts, f.last_ts, cfg.series_points);
    text_features(&mut f, reqs, cfg);
    new_model(&mut f, reqs, ctx);
    f
}

/// Earlier texted prompts a prompt's words are compared with in
/// [`Features::vocab_novelty`].
pub const NOVELTY_WINDOW: usize = 200;

/// Texted prompts an entity sends before the first one judged in
/// [`Features::vocab_novelty`].
pub const NOVELTY_MIN_PAST: usize = 10;

/// [`Features::vocab_novelty`] of time-ordered requests: one pass over the
/// texted ones, a window of the last [`NOVELTY_WINDOW`] word samples and
/// a count per sampled word in it (O(requests), memory bounded by the
/// window).
fn vocab_novelty(reqs: &[&Req]) -> f64 {
    let words = |w: u32| [w as u16, (w >> 16) as u16].into_iter().filter(|&v| v != 0);
    let mut window = std::collections::VecDeque::with_capacity(NOVELTY_WINDOW + 1);
    let mut held: HashMap<u16, u32> = HashMap::default();
    let (mut sum, mut judged, mut past) = (0.0, 0u64, 0usize);
    for r in reqs
        .iter()
        .filter(|r| r.has(flag::TEXT) && !r.has(flag::EMBED))
    {
        let n = words(r.words).count();
        if past >= NOVELTY_MIN_PAST && n > 0 {
            let new = words(r.words).filter(|w| !held.contains_key(w)).count();
            sum += new as f64 / n as f64;
            judged += 1;
        }
        past += 1;
        for w in words(r.words) {
            *held.entry(w).or_default() += 1;
        }
        window.push_back(r.words);
        if window.len() > NOVELTY_WINDOW {
            for w in window.pop_front().into_iter().flat_map(words) {
                if let Some(c) = held.get_mut(&w) {
                    *c -= 1;
                    if *c == 0 {
                        held.remove(&w);
                    }
                }
            }
        }
    }
    if judged == 0 {
        0.0
    } else {
        sum / judged as f64
    }
}

/// Fewest requests a day, and its history, need for [`self_shift`].
pub const SHIFT_MIN_REQUESTS: u64 = 10;

/// Values each per-request code of a two-sample discrepancy ([`mmd`]) is
/// folded into.
pub(crate) const CODE_BINS: usize = 64;

/// Codes per request in [`self_shift`].
const SHIFT_CODES: usize = 4;

/// What sampling a request asks for, one small code per parameter
/// (temperature in tenths, output cap in bits, logprobs, top_logprobs at
/// the maximum), each below [`CODE_BINS`]. These are set by the client
/// program, so a person's or a product's stay put from day to day; a job
/// that rotates its sampling settings, or a harvesting job added beside
/// ordinary use, changes them. (Prompt and answer sizes, turns and the
/// model were measured too: people change what they ask from day to day
/// more than harvesters do, and every account moves onto a newly
/// released model, which `new_model_share` already measures.)
fn param_codes(r: &Req) -> [usize; SHIFT_CODES] {
    [
        usize::from(r.temperature_tenths) % CODE_BINS,
        usize::from(r.max_tokens_bits) % CODE_BINS,
        usize::from(r.has(flag::LOGPROBS)),
        usize::from(r.has(flag::TOPLP_MAX)),
    ]
}

/// The unbiased squared maximum mean discrepancy between two samples of
/// `n` and `m` requests given as histograms of per-request codes (`a` and
/// `b`, one histogram per code), under the kernel "share of the codes two
/// requests have in common" (the mean of one delta kernel per code): the
/// mean over codes of `Σa(a−1)/n(n−1) + Σb(b−1)/m(m−1) − 2Σab/nm`. 0 in
/// expectation for samples of one distribution, so a small sample is not a
/// difference by sampling noise alone; each sample needs at least 2
/// requests. Written here rather than taken from a crate: no maintained
/// Rust crate computes a two-sample MMD over categorical histograms, and
/// the statistic is these few lines.
pub(crate) fn mmd(a: &[[u32; CODE_BINS]], n: u64, b: &[[u32; CODE_BINS]], m: u64) -> f64 {
    let (nf, mf) = (n as f64, m as f64);
    let mut total = 0.0;
    for (a, b) in a.iter().zip(b.iter()) {
        let (mut aa, mut bb, mut ab) = (0.0, 0.0, 0.0);
        for (&x, &y) in a.iter().zip(b.iter()) {
            let (x, y) = (f64::from(x), f64::from(y));
            aa += x * (x - 1.0);
            bb += y * (y - 1.0);
            ab += x * y;
        }
        total += aa / (nf * (nf - 1.0)) + bb / (mf * (mf - 1.0)) - 2.0 * ab / (nf * mf);
    }
    total / a.len() as f64
}

/// The largest per-day shift of an entity's sampling parameters against
/// its own earlier days (`reqs` time-ordered): for each UTC day with at
/// least [`SHIFT_MIN_REQUESTS`] requests after at least as many earlier
/// ones, the unbiased squared MMD between that day's requests and all
/// earlier ones, the [`mmd`] of their [`param_codes`] (unbiased, so a
/// small day is not a shift by sampling noise alone in expectation); one
/// pass, O(requests + days × codes × bins).
fn self_shift(reqs: &[&Req]) -> f64 {
    let mut hist = [[0u32; CODE_BINS]; SHIFT_CODES];
    let mut day = [[0u32; CODE_BINS]; SHIFT_CODES];
    let (mut m, mut n) = (0u64, 0u64);
    let mut cur = i64::MIN;
    let mut best = 0.0f64;
    let mut close = |hist: &mut [[u32; CODE_BINS]; SHIFT_CODES],
                     day: &mut [[u32; CODE_BINS]; SHIFT_CODES],
                     m: &mut u64,
                     n: &mut u64| {
        if *n >= SHIFT_MIN_REQUESTS && *m >= SHIFT_MIN_REQUESTS {
            best = best.max(mmd(day, *n, hist, *m));
        }
        for (h, d) in hist.iter_mut().zip(day.iter_mut()) {
            for (x, y) in h.iter_mut().zip(d.iter_mut()) {
                *x += *y;
                *y = 0;
            }
        }
        *m += *n;
        *n = 0;
    };
    for r in reqs {
        let d = r.ts.div_euclid(DAY_MS);
        if d != cur {
            close(&mut hist, &mut day, &mut m, &mut n);
            cur = d;
        }
        for (i, c) in param_codes(r).into_iter().enumerate() {
            day[i][c] += 1;
        }
        n += 1;
    }
    close(&mut hist, &mut day, &mut m, &mut n);
    best
}

fn interarrival_cv(reqs: &[&Req]) -> f64 {
    if reqs.len() < 3 {
        return f64::NAN;
    }
    let gaps = || reqs.windows(2).map(|w| (w[1].ts - w[0].ts) as f64);
    let n = (reqs.len() - 1) as f64;
    let mean = gaps().sum::<f64>() / n;
    if mean <= 0.0 {
        return 0.0;
    }
    let var = gaps().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean
}

/// Topic breadth and normalised entropy of category counts.
fn breadth(counts: &[u64], total: u64, min_share: f64) -> (u32, f64) {
    let floor = ((total as f64 * min_share).ceil() as u64).max(2);
    let b = counts.iter().skip(1).filter(|&&c| c >= floor).count() as u32;
    let named: u64 = counts.iter().skip(1).sum();
    let mut h = 0.0;
    for &c in counts.iter().skip(1) {
        if c > 0 && named > 0 {
            let p = c as f64 / named as f64;
            h -= p * p.ln();
        }
    }
    let k = (counts.len() - 1) as f64;
    (b, if k > 1.0 { h / k.ln() } else { 0.0 })
}

/// Text signals over the pool: single-turn completion requests with text.
fn text_features(f: &mut Features, reqs: &[&Req], cfg: &AnalyzerConfig) {
    let pool: Vec<&Req> = reqs
        .iter()
        .copied()
        .filter(|r| r.has(flag::TEXT) && r.has(flag::SINGLE_TURN) && !r.has(flag::EMBED))
        .collect();
    let n = pool.len() as u64;
    f.text_pool = n;
    if n == 0 {
        return;
    }
    let cats = crate::text::TAXONOMY.len() + 1;
    let mut topics = vec![0u64; cats];
    let mut first_seen = vec![u64::MAX; cats];
    let mut templates: HashMap<u64, (u64, HashSet<u32>)> = HashMap::default();
    let mut on_topic = 0u64;
    let mut reasoning_prompts: HashSet<u32> = HashSet::default();
    for r in &pool {
        let t = r.topic as usize % cats;
        topics[t] += 1;
        if t != 0 {
            if first_seen[t] == u64::MAX {
                first_seen[t] = on_topic;
            }
            on_topic += 1;
        }
        if r.reasoning_langs != 0 {
            f.reasoning_count += 1;
            f.reasoning_languages |= r.reasoning_langs;
            reasoning_prompts.insert(r.prompt_hash);
        }
        if r.template != 0 {
            let e = templates.entry(u64::from(r.template)).or_default();
            e.0 += 1;
            e.1.insert(r.prompt_hash);
        }
    }
    f.reasoning_share = share(f.reasoning_count, n);
    f.reasoning_distinct = share(reasoning_prompts.len() as u64, f.reasoning_count);
    let (b, h) = breadth(&topics, n, cfg.topic_min_share);
    f.topic_breadth = b;
    f.topic_entropy = h;
    let floor = ((n as f64 * cfg.topic_min_share).ceil() as u64).max(2);
    let covered: Vec<usize> = (1..cats).filter(|&t| topics[t] >= floor).collect();
    f.topic_prompts = n - topics[0];
    let late = covered
        .iter()
        .filter(|&&t| first_seen[t] > f.topic_prompts / 4)
        .count();
    f.coverage_growth = share(late as u64, covered.len() as u64);
    f.templates = templates.len() as u64;
    let mut sizes: Vec<u64> = templates.values().map(|v| v.0).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    f.top_template_share = share(sizes.iter().take(10).sum(), n);
    let harvest: HashSet<u64> = templates
        .iter()
        .filter(|(_, (c, d))| {
            *c >= cfg.template_min_requests && share(d.len() as u64, *c) >= cfg.slot_diversity
        })
        .map(|(t, _)| *t)
        .collect();
    let mut h_topics = vec![0u64; cats];
    let (mut h_n, mut h_ct, mut h_answered) = (0u64, 0u64, 0u64);
    for r in pool
        .iter()
        .filter(|r| harvest.contains(&u64::from(r.template)))
    {
        h_n += 1;
        if !r.has(flag::S429) && !r.has(flag::ERROR) {
            h_ct += u64::from(r.completion_tokens);
            h_answered += 1;
        }
        h_topics[r.topic as usize % cats] += 1;
    }
    f.harvest_template_share = share(h_n, n);
    f.harvest_completion_mean = share(h_ct, h_answered);
    f.harvest_breadth = breadth(&h_topics, h_n, cfg.topic_min_share).0;
}

/// Histogram of log2 prompt sizes: the prompt distribution when text is redacted.
fn size_hist(reqs: &[&Req]) -> [f64; 24] {
    let mut h = [0.0; 24];
    for r in reqs {
        h[(32 - r.prompt_tokens.leading_zeros()).min(23) as usize] += 1.0;
    }
    let s: f64 = h.iter().sum();
    if s > 0.0 {
        h.iter_mut().for_each(|x| *x /= s);
    }
    h
}

/// The entity's move onto a newly released model, if any.
fn new_model(f: &mut Features, reqs: &[&Req], ctx: &Context) {
    for &(model, release) in &ctx.new_models {
        let Some(first) = reqs.iter().find(|r| r.model == model).map(|r| r.ts) else {
            continue;
        };
        let (before, after): (Vec<&Req>, Vec<&Req>) = reqs
            .iter()
            .copied()
            .filter(|r| !r.has(flag::EMBED))
            .partition(|r| r.ts < first);
        let on_new = after.iter().filter(|r| r.model == model).count() as u64;
        let s = share(on_new, after.len() as u64);
        if s < f.new_model_share || before.is_empty() {
            continue;
        }
        let moved: Vec<&Req> = after.iter().copied().filter(|r| r.model == model).collect();
        let t_before: HashSet<u64> = before
            .iter()
            .filter(|r| r.template != 0)
            .map(|r| u64::from(r.template))
            .collect();
        let t_after: HashSet<u64> = moved
            .iter()
            .filter(|r| r.template != 0)
            .map(|r| u64::from(r.template))
            .collect();
        let overlap = if t_before.is_empty() || t_after.is_empty() {
            // No templates (redacted or free text): compare prompt-size distributions.
            let (a, b) = (size_hist(&before), size_hist(&moved));
            a.iter().zip(b.iter()).map(|(x, y)| x.min(*y)).sum()
        } else {
            share(
                t_before.intersection(&t_after).count() as u64,
                t_before.union(&t_after).count() as u64,
            )
        };
        f.new_model_share = s;
        f.new_model_lag_hours = (first - release) as f64 / HOUR_MS as f64;
        f.new_model_overlap = overlap;
    }
}

/// Median and median absolute deviation of a peer population.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Median.
    pub median: f64,
    /// MAD (scaled by 1.4826 to match a standard deviation for normal data).
    pub mad: f64,
}

impl Baseline {
    /// From values (NaN ignored).
    pub fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Baseline::default();
        }
        let med = median(&mut v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        Baseline {
            median: med,
            mad: 1.4826 * median(&mut dev),
        }
    }

    /// Robust z-score of `x`.
    pub fn z(&self, x: f64) -> f64 {
        let scale = self.mad.max(self.median.abs() * 0.05).max(1e-9);
        (x - self.median) / scale
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The peer baselines features are scored against.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Baselines {
    /// Requests per day.
    pub requests_per_day: Baseline,
    /// Active hours.
    pub active_hours: Baseline,
    /// Output tokens per request.
    pub completion_tokens_mean: Baseline,
}

impl Baselines {
    /// Over the scored accounts.
    pub fn of(features: &[&Features]) -> Self {
        Baselines {
            requests_per_day: Baseline::of(features.iter().map(|f| f.requests_per_day)),
            active_hours: Baseline::of(features.iter().map(|f| f64::from(f.active_hours))),
            completion_tokens_mean: Baseline::of(features.iter().map(|f| f.completion_tokens_mean)),
        }
    }
}
