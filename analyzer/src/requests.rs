//! The analysed requests, compact: one 64-byte [`Req`] per valid row with
//! strings interned and prompt text reduced to hashes and flags (prompts are
//! not kept, except a few samples per account for alerts).

use crate::continuity::{Continuity, Turn};
use crate::parts::PartKey;
use crate::row::Row;
use crate::text::{TextAnalyzer, TextFeatures};
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// Flag bits of [`Req::flags`].
pub mod flag {
    /// `logprobs: true`.
    pub const LOGPROBS: u16 = 1;
    /// `temperature: 0`.
    pub const TEMP0: u16 = 1 << 1;
    /// `n > 1`.
    pub const N_GT1: u16 = 1 << 2;
    /// `max_tokens <= 1`.
    pub const MAX1: u16 = 1 << 3;
    /// Any `logit_bias_keys > 0`.
    pub const LOGIT_BIAS: u16 = 1 << 4;
    /// `conversation_turns == 0`.
    pub const SINGLE_TURN: u16 = 1 << 5;
    /// Status 429.
    pub const S429: u16 = 1 << 6;
    /// Status >= 400 other than 429.
    pub const ERROR: u16 = 1 << 7;
    /// A model-identity probe.
    pub const PROBE: u16 = 1 << 8;
    /// The prompt was redacted (hash only).
    pub const REDACTED: u16 = 1 << 9;
    /// `/v1/embeddings`.
    pub const EMBED: u16 = 1 << 10;
    /// Prompt text was available.
    pub const TEXT: u16 = 1 << 11;
    /// `top_logprobs` at the configured maximum.
    pub const TOPLP_MAX: u16 = 1 << 12;
    /// No prompt and no hash.
    pub const NO_PROMPT: u16 = 1 << 13;
    /// A system prompt was sent.
    pub const SYSTEM_PROMPT: u16 = 1 << 14;
    /// Prior turns that no earlier request of its key with the same
    /// settings accounts for ([`crate::continuity::Turn::Orphan`], set by
    /// [`super::Requests::finish`]).
    pub const ORPHAN: u16 = 1 << 15;
}

/// One request, reduced. (`Zeroable`: the grouped array is allocated
/// zeroed, as fresh pages, rather than written with defaults first.)
#[derive(Clone, Copy, Debug, Default, bytemuck::Zeroable)]
pub struct Req {
    /// ms since the epoch.
    pub ts: i64,
    /// Template skeleton hash, 32 bits (0: none; like `prompt_hash`, two
    /// distinct skeletons of one entity share it with odds ~n²/2³³).
    pub template: u32,
    /// `conversation_turns`: messages before the prompt (saturated).
    pub turns: u16,
    /// Tokens of the prompt's own text, the newest user message (bytes / 4
    /// rounded up, saturated; 0: no text, redacted or absent): what the
    /// request asks, apart from a conversation it carries
    /// (`prompt_tokens` is the whole input).
    pub message_tokens: u16,
    /// Exact prompt hash (32 bits: two distinct prompts of one entity
    /// share it with odds ~n²/2³³, a rounding error in its distinct-prompt
    /// counts; the other 32 bits hold `words`).
    pub prompt_hash: u32,
    /// Sampled content words (see [`crate::text::TextFeatures::words`]).
    pub words: u32,
    /// Account index.
    pub account: u32,
    /// API key index.
    pub key: u32,
    /// Source /24 (IPv4) or /48 (IPv6) index.
    pub block: u32,
    /// User-agent index.
    pub ua: u32,
    /// Input tokens (saturated).
    pub prompt_tokens: u32,
    /// Output tokens (saturated).
    pub completion_tokens: u32,
    /// Model index.
    pub model: u16,
    /// [`flag`] bits.
    pub flags: u16,
    /// Biased tokens (low [`LOGIT_BIAS_BITS`] bits, saturated) and the
    /// log-probability depth asked for (the high bits; see
    /// [`Req::logprob_depth`]), packed: the row has no other byte free.
    /// Read through [`Req::logit_bias_keys`] and [`Req::logprob_depth`].
    pub output_probes: u16,
    /// Reasoning-elicitation language mask.
    pub reasoning_langs: u8,
    /// Topic (see [`crate::text::TextFeatures::topic`]).
    pub topic: u8,
    /// Hash of the exact source address (distinct addresses per request
    /// measure rotation through proxies).
    pub ip: u32,
    /// 16-bit hash of the system prompt (0: none): enough to tell one
    /// shared system prompt from many.
    pub system_prompt: u16,
    /// `max_tokens` as bits of its value (`64 - leading_zeros`; 0: absent),
    /// so 4096 is 13: what output length the client asked for.
    pub max_tokens_bits: u8,
    /// `temperature` in tenths, plus one (0: absent; 1: 0.0; 21: 2.0 or
    /// more): what sampling the client asks for, for `self_shift`.
    pub temperature_tenths: u8,
}

// The store's memory bound (docs/analyzer.md) assumes one cache line per row.
const _: () = assert!(std::mem::size_of::<Req>() == 64);

/// Bits of [`Req::output_probes`] that hold the number of biased tokens
/// (saturated at 2,047, far above any API's limit); the other 5 hold the
/// log-probability depth in 31sts.
pub const LOGIT_BIAS_BITS: u32 = 11;

/// Steps of the stored log-probability depth (5 bits).
const DEPTH_STEPS: u16 = 31;

impl Req {
    /// Set what the request keeps of its prompt's text features (the
    /// [`Reduced::of`] a row gives with `tf`): template, prompt hash,
    /// word sample, reasoning languages, topic and the probe flag.
    pub fn set_text(&mut self, tf: &TextFeatures) {
        self.template = if tf.template == 0 {
            0
        } else {
            (tf.template as u32).max(1)
        };
        self.prompt_hash = tf.prompt_hash as u32;
        self.words = tf.words;
        self.reasoning_langs = tf.reasoning_langs;
        self.topic = tf.topic;
        self.flags = (self.flags & !flag::PROBE) | if tf.probe { flag::PROBE } else { 0 };
    }

    /// Whether a flag is set.
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// Tokens biased with `logit_bias` (saturated at 2,047).
    pub fn logit_bias_keys(&self) -> u16 {
        self.output_probes & ((1 << LOGIT_BIAS_BITS) - 1)
    }

    /// How much of the output distribution the request asked for, 0..=1:
    /// the log-probabilities returned per output token (`top_logprobs`
    /// alternatives, at least 1 with `logprobs: true`) as a share of the
    /// most the API returns (`top_logprobs_max`), in steps of 1/31 rounded
    /// up (any log-probabilities at all are at least 1/31). 1 is
    /// "at the maximum"; a request without log-probabilities is 0.
    pub fn logprob_depth(&self) -> f64 {
        f64::from(self.output_probes >> LOGIT_BIAS_BITS) / f64::from(DEPTH_STEPS)
    }

    /// [`Req::output_probes`] of `logit_bias_keys` biased tokens and a
    /// request asking `top_logprobs` alternatives (`logprobs` on or off),
    /// with `top_logprobs_max` the most the API returns.
    fn output_probes(
        logit_bias_keys: u64,
        logprobs: bool,
        top_logprobs: u64,
        top_logprobs_max: u32,
    ) -> u16 {
        let keys = logit_bias_keys.min((1 << LOGIT_BIAS_BITS) - 1) as u16;
        let asked = top_logprobs.max(u64::from(logprobs));
        let max = u64::from(top_logprobs_max.max(1));
        let depth = (asked.min(max) * u64::from(DEPTH_STEPS)).div_ceil(max) as u16;
        keys | (depth << LOGIT_BIAS_BITS)
    }
}

/// A 32-bit hash of an address.
fn ip_hash(ip: IpAddr) -> u32 {
    let h = match ip {
        IpAddr::V4(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
        IpAddr::V6(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
    };
    h as u32
}

/// String interning: each distinct string gets a dense index.
///
/// Looked up once per row for each of four fields on the reader's one
/// ordering thread, so the table holds only indices and a lookup compares
/// against the names stored back to back in one buffer (a few cache lines
/// for thousands of short ids), not against one heap string per name.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    /// Indices, by the hash of their name.
    table: hashbrown::HashTable<u32>,
    /// The names back to back: name `i` ends at `ends[i]`.
    arena: String,
    ends: Vec<usize>,
    /// The strings, by index.
    pub names: Vec<String>,
}

fn name_hash(s: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(s)
}

impl Interner {
    /// The index of `s`, added when new.
    pub fn id(&mut self, s: &str) -> u32 {
        let hash = name_hash(s);
        let (arena, ends) = (&self.arena, &self.ends);
        let name = |i: u32| -> &str {
            let i = i as usize;
            let from = if i == 0 { 0 } else { ends[i - 1] };
            &arena[from..ends[i]]
        };
        if let Some(&i) = self.table.find(hash, |&i| name(i) == s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.table.insert_unique(hash, i, |&j| name_hash(name(j)));
        self.arena.push_str(s);
        self.ends.push(self.arena.len());
        self.names.push(s.to_string());
        i
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A valid row reduced to what the store keeps of it, but for the strings
/// it interns: a [`Req`] whose ids (account, key, block, user agent, model)
/// are still 0, and the source address.
#[derive(Clone, Copy, Debug)]
pub struct Reduced {
    /// The request, ids not yet set.
    pub req: Req,
    /// Client address (its block is interned).
    pub src_ip: IpAddr,
}

impl Reduced {
    /// Reduce `row`, whose prompt has the text features `text_features`
    /// (the default when it has none).
    pub fn of(
        row: &Row<'_>,
        text_features: TextFeatures,
        cfg: &crate::config::AnalyzerConfig,
    ) -> Self {
        let mut flags = 0u16;
        let mut set = |c: bool, f: u16| {
            if c {
                flags |= f
            }
        };
        set(row.logprobs == Some(true), flag::LOGPROBS);
        set(row.temperature == Some(0.0), flag::TEMP0);
        set(row.n.is_some_and(|n| n > 1), flag::N_GT1);
        set(row.max_tokens.is_some_and(|m| m <= 1), flag::MAX1);
        set(row.logit_bias_keys.is_some_and(|k| k > 0), flag::LOGIT_BIAS);
        set(
            row.conversation_turns.is_none_or(|t| t == 0),
            flag::SINGLE_TURN,
        );
        set(row.status == 429, flag::S429);
        set(row.status >= 400 && row.status != 429, flag::ERROR);
        set(row.endpoint.contains("embeddings"), flag::EMBED);
        set(row.system_prompt_hash.is_some(), flag::SYSTEM_PROMPT);
        set(
            row.top_logprobs
                .is_some_and(|t| t >= u64::from(cfg.top_logprobs_max)),
            flag::TOPLP_MAX,
        );
        let tf = match (&row.prompt, &row.prompt_sha256) {
            (Some(_), _) => {
                set(true, flag::TEXT);
                text_features
            }
            (None, Some(h)) => {
                set(true, flag::REDACTED);
                TextFeatures {
                    prompt_hash: xxhash_rust::xxh3::xxh3_64(
                        h.trim().to_ascii_lowercase().as_bytes(),
                    ),
                    ..TextFeatures::default()
                }
            }
            (None, None) => {
                set(true, flag::NO_PROMPT);
                TextFeatures::default()
            }
        };
        let sat = |v: u64| v.min(u32::MAX as u64) as u32;
        let mut req = Req {
            ts: row.ts_ms,
            turns: row
                .conversation_turns
                .map_or(0, |t| t.min(u64::from(u16::MAX)) as u16),
            message_tokens: row
                .prompt
                .as_deref()
                .map_or(0, |p| p.len().div_ceil(4).min(usize::from(u16::MAX)) as u16),
            prompt_tokens: sat(row.prompt_tokens),
            completion_tokens: sat(row.completion_tokens),
            flags,
            output_probes: Req::output_probes(
                row.logit_bias_keys.unwrap_or(0),
                row.logprobs == Some(true),
                row.top_logprobs.unwrap_or(0),
                cfg.top_logprobs_max,
            ),
            ip: ip_hash(row.src_ip),
            system_prompt: row.system_prompt_hash.map_or(0, |h| (h as u16).max(1)),
            max_tokens_bits: row.max_tokens.map_or(0, |m| (64 - m.leading_zeros()) as u8),
            temperature_tenths: row
                .temperature
                .filter(|t| t.is_finite())
                .map_or(0, |t| (t * 10.0).round().clamp(0.0, 20.0) as u8 + 1),
            ..Req::default()
        };
        req.set_text(&tf);
        Reduced {
            req,
            src_ip: row.src_ip,
        }
    }
}

/// The strings of a valid row that the store interns or samples.
#[derive(Clone, Copy, Debug)]
pub struct RowStrings<'a> {
    /// Billing account.
    pub account_id: &'a str,
    /// API key.
    pub api_key_id: &'a str,
    /// Client library.
    pub user_agent: Option<&'a str>,
    /// Model requested.
    pub model: &'a str,
    /// Prompt text, when not redacted.
    pub prompt: Option<&'a str>,
}

impl<'a> RowStrings<'a> {
    /// The strings of `row`.
    pub fn of(row: &'a Row<'_>) -> Self {
        RowStrings {
            account_id: &row.account_id,
            api_key_id: &row.api_key_id,
            user_agent: row.user_agent.as_deref(),
            model: &row.model,
            prompt: row.prompt.as_deref(),
        }
    }
}

/// A sample prompt kept for alerts.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was sent.
    pub ts: i64,
    /// Its text (cut to the configured length).
    pub text: String,
    /// Why it was kept: `reasoning`, `probe` or `first`.
    pub why: &'static str,
}

/// All valid rows of the input, reduced.
#[derive(Default)]
pub struct Requests {
    /// The requests after [`Requests::finish`]: grouped by account (in
    /// account index order) and time-ordered within each account, so an
    /// account's requests are one contiguous slice
    /// ([`Requests::account_reqs`]). Empty while reading.
    pub reqs: Vec<Req>,
    /// While reading: the requests in input order, in chunks (one per
    /// block the parallel reader parsed, whose workers allocated and
    /// filled it), so that keeping a row never moves the rows kept before
    /// it (no growing of one 640 MB array, no copy of it).
    chunks: Vec<Vec<Req>>,
    /// Where each account's requests start in `reqs` (after `finish`; one
    /// more entry than accounts).
    account_start: Vec<usize>,
    /// Each model's first non-embedding request (model index, ms), by
    /// model index (after `finish`).
    first_seen: Vec<(u16, i64)>,
    /// Accounts.
    pub accounts: Interner,
    /// API keys.
    pub keys: Interner,
    /// Owner account of each key (the first seen).
    pub key_account: Vec<u32>,
    /// Source address blocks (`a.b.c.0/24`, `x:y:z::/48`).
    pub blocks: Interner,
    /// User agents.
    pub uas: Interner,
    /// Models.
    pub models: Interner,
    /// Sample prompts per account.
    pub samples: Vec<Vec<Sample>>,
    /// How many of each kind of sample (first, probe, reasoning) each
    /// account has (counted, not searched for, per row).
    samples_kept: Vec<[usize; 3]>,
    /// Source block (by address prefix) → index in `blocks`, so a row's
    /// block is found without formatting its name.
    block_ids: FxHashMap<BlockKey, u32>,
    /// Each account's last source block and its index: most of an
    /// account's rows come from the block of its previous one, so
    /// `block_ids` is not looked up again.
    last_block: Vec<Option<(BlockKey, u32)>>,
    scratch: crate::text::TextScratch,
}

/// An address prefix: /24 of IPv4 or /48 of IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BlockKey {
    V4([u8; 3]),
    V6([u16; 3]),
}

impl BlockKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                BlockKey::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                BlockKey::V6([s[0], s[1], s[2]])
            }
        }
    }
}

/// The /24 or /48 containing an address.
pub fn block_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

impl Requests {
    /// Reduce and keep one valid row.
    pub fn push(
        &mut self,
        row: &Row<'_>,
        text: &TextAnalyzer,
        cfg: &crate::config::AnalyzerConfig,
    ) {
        let tf = match &row.prompt {
            Some(p) => text.analyze(p, &mut self.scratch),
            None => TextFeatures::default(),
        };
        self.keep(&Reduced::of(row, tf, cfg), &RowStrings::of(row), cfg);
    }

    /// Keep one valid row, reduced already ([`Reduced::of`], which needs
    /// no store: the parallel reader runs it where it parses), with the
    /// strings to intern. The prompt text, if any, may be kept (cut to
    /// `sample_chars`) as a sample.
    pub fn keep(
        &mut self,
        reduced: &Reduced,
        strings: &RowStrings<'_>,
        cfg: &crate::config::AnalyzerConfig,
    ) {
        let mut req = reduced.req;
        self.identify(&mut req, reduced.src_ip, strings, cfg);
        if self.chunks.last().is_none_or(|c| c.len() == c.capacity()) {
            self.chunks.push(Vec::with_capacity(1 << 16));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(req);
        }
    }

    /// Set the ids of `req` (a valid row reduced by [`Reduced::of`], with
    /// the client address `src_ip` and the strings `strings`), interning
    /// its strings and block, and note its sample prompt; the row itself
    /// is kept by [`Requests::keep_chunk`]. Rows must come in input order.
    pub fn identify(
        &mut self,
        req: &mut Req,
        src_ip: IpAddr,
        strings: &RowStrings<'_>,
        cfg: &crate::config::AnalyzerConfig,
    ) {
        let account = self.accounts.id(strings.account_id);
        if account as usize >= self.samples.len() {
            self.samples.push(Vec::new());
            self.samples_kept.push([0; 3]);
            self.last_block.push(None);
        }
        let key = self.keys.id(strings.api_key_id);
        if key as usize >= self.key_account.len() {
            self.key_account.push(account);
        }
        let block_key = BlockKey::of(src_ip);
        let last = &mut self.last_block[account as usize];
        match *last {
            Some((key, block)) if key == block_key => req.block = block,
            _ => {
                let blocks = &mut self.blocks;
                req.block = *self
                    .block_ids
                    .entry(block_key)
                    .or_insert_with(|| blocks.id(&block_of(src_ip)));
                *last = Some((block_key, req.block));
            }
        }
        req.ua = self.uas.id(strings.user_agent.unwrap_or("-"));
        req.model = self.models.id(strings.model).min(u16::MAX as u32) as u16;
        req.account = account;
        req.key = key;
        if let Some(p) = strings.prompt {
            // Samples kept so far of each kind: first, probe, reasoning.
            let kept = &mut self.samples_kept[account as usize];
            let (kind, limit) = if req.has(flag::PROBE) {
                (1, cfg.sample_prompts.max(1))
            } else if req.reasoning_langs != 0 {
                (2, cfg.sample_prompts.max(1))
            } else {
                (0, cfg.sample_prompts)
            };
            if kept[kind] < limit {
                kept[kind] += 1;
                self.samples[account as usize].push(Sample {
                    ts: req.ts,
                    text: p.chars().take(cfg.sample_chars).collect(),
                    why: ["first", "probe", "reasoning"][kind],
                });
            }
        }
    }

    /// Keep a run of rows, in input order after those kept so far, each
    /// already passed through [`Requests::identify`].
    pub fn keep_chunk(&mut self, reqs: Vec<Req>) {
        if !reqs.is_empty() {
            self.chunks.push(reqs);
        }
    }

    /// The rows kept so far, in input order (before [`Requests::finish`]).
    pub fn ingested(&self) -> impl Iterator<Item = &Req> {
        self.chunks.iter().flatten()
    }

    /// End reading, on up to `threads` threads: drop the rows dated far
    /// outside the bulk of the input and return how many; group the rest
    /// by account (a stable counting sort) and order each account's
    /// requests by time (stable; logs arrive nearly sorted, so this is
    /// cheap), into [`Requests::reqs`]. Per-account passes then read memory
    /// in order instead of chasing one cache line per request across the
    /// input.
    ///
    /// A row from 1970 or 9999 in a week of logs (a clock error or a
    /// forged field) is far: the bulk is the interquartile range of the
    /// times, and a row more than three interquartile ranges (at least
    /// `min_margin_ms`) before the first quartile or after the third is
    /// far. Such rows would stretch the input's span, its windows and the
    /// time-to-detect replay for every other account.
    ///
    /// Each thread gathers the rows of its own range of accounts (ranges
    /// of about equal rows) into its own part of the grouped array, read
    /// from every chunk in input order, sorts them and marks made-up
    /// turns ([`flag::ORPHAN`], one pass over each account while it is in
    /// cache); the array is allocated zeroed (fresh pages from the kernel, not written twice).
    /// The rows are copied rather than moved in place along the
    /// permutation's cycles: in place needs no second array, but each step
    /// waits for a cache miss that depends on the one before (measured
    /// 2.2–2.9 s against 0.8–1.0 s for one thread copying 10 M rows of 4,000
    /// accounts).
    pub fn finish(&mut self, min_margin_ms: i64, threads: usize) -> u64 {
        let chunks = std::mem::take(&mut self.chunks);
        let total: usize = chunks.iter().map(Vec::len).sum();
        let accounts = self.accounts.len();
        let threads = threads.clamp(1, accounts.max(1));
        let (lo, hi) = far_bounds(&chunks, total, min_margin_ms, threads);
        let near = |r: &Req| (lo..=hi).contains(&r.ts);
        // Rows per account, counted over runs of chunks on each thread.
        let runs = split_chunks(&chunks, threads);
        let counts = std::thread::scope(|s| {
            let workers: Vec<_> = runs
                .iter()
                .map(|run| {
                    s.spawn(move || {
                        let mut n = vec![0usize; accounts];
                        for r in run.iter().flatten().filter(|r| near(r)) {
                            n[r.account as usize] += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut sum = vec![0usize; accounts];
            for w in workers {
                let n = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                sum.iter_mut().zip(n).for_each(|(s, n)| *s += n);
            }
            sum
        });
        let mut start = vec![0usize; accounts + 1];
        for a in 0..accounts {
            start[a + 1] = start[a] + counts[a];
        }
        let kept = start[accounts];
        let mut grouped: Vec<Req> = bytemuck::zeroed_vec(kept);
        // Accounts [cut[t], cut[t + 1]) go to thread t.
        let mut cut = vec![0usize];
        for t in 1..threads {
            let goal = kept * t / threads;
            let a = start.partition_point(|&s| s < goal).min(accounts);
            cut.push(a.max(*cut.last().unwrap_or(&0)));
        }
        cut.push(accounts);
        // Each model's first non-embedding request, found by each thread in
        // its part (by model index: no hashing).
        let models = self.models.len().clamp(1, 1 << 16);
        let first_seen = std::thread::scope(|s| {
            let mut rest: &mut [Req] = &mut grouped;
            let mut workers = Vec::new();
            for w in cut.windows(2) {
                let (first, end) = (w[0], w[1]);
                let (part, tail) = rest.split_at_mut(start[end] - start[first]);
                rest = tail;
                let (chunks, start) = (&chunks, &start);
                workers.push(s.spawn(move || {
                    let base = start[first];
                    let mut at: Vec<usize> = start[first..end].iter().map(|s| s - base).collect();
                    for r in chunks.iter().flatten() {
                        let a = r.account as usize;
                        if (first..end).contains(&a) && near(r) {
                            part[at[a - first]] = *r;
                            at[a - first] += 1;
                        }
                    }
                    for a in first..end {
                        let run = &mut part[start[a] - base..start[a + 1] - base];
                        run.sort_by_key(|r| r.ts);
                        mark_orphans(run);
                    }
                    let mut seen = vec![i64::MAX; models];
                    for r in part.iter().filter(|r| !r.has(flag::EMBED)) {
                        let t = &mut seen[usize::from(r.model)];
                        *t = (*t).min(r.ts);
                    }
                    seen
                }));
            }
            let mut all = vec![i64::MAX; models];
            for w in workers {
                let seen = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                all.iter_mut().zip(seen).for_each(|(a, t)| *a = (*a).min(t));
            }
            all
        });
        drop(chunks);
        self.first_seen = (0..=u16::MAX)
            .zip(first_seen)
            .filter(|&(_, t)| t != i64::MAX)
            .collect();
        self.reqs = grouped;
        self.account_start = start;
        (total - kept) as u64
    }

    /// Account `a`'s requests, time-ordered (after [`Requests::finish`]).
    pub fn account_reqs(&self, a: usize) -> &[Req] {
        match (self.account_start.get(a), self.account_start.get(a + 1)) {
            (Some(&s), Some(&e)) => self.reqs.get(s..e).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The requests of several accounts (`runs`, each time-ordered) in
    /// one time order; requests at the same time keep the order of their
    /// runs and, within a run, their own. The sort reads each time from
    /// the pair it sorts, not through the reference (one cache miss per
    /// comparison when sorting references by a field they point to).
    pub fn merged_by_time<'r>(runs: impl IntoIterator<Item = &'r [Req]>) -> Vec<&'r Req> {
        let mut keyed: Vec<(i64, &Req)> = runs
            .into_iter()
            .flat_map(|run| run.iter().map(|r| (r.ts, r)))
            .collect();
        keyed.sort_by_key(|p| p.0);
        keyed.into_iter().map(|p| p.1).collect()
    }

    /// First and last request time (ms), if any (after
    /// [`Requests::finish`]: the ends of the accounts' time-ordered runs).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.span_before(i64::MAX)
    }

    /// First and last time (ms) of the requests sent before `until`, if
    /// any (after [`Requests::finish`]).
    pub fn span_before(&self, until: i64) -> Option<(i64, i64)> {
        let runs = self.account_start.windows(2).map(|w| {
            let reqs = &self.reqs[w[0]..w[1]];
            &reqs[..reqs.partition_point(|r| r.ts < until)]
        });
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for run in runs {
            if let (Some(a), Some(b)) = (run.first(), run.last()) {
                first = first.min(a.ts);
                last = last.max(b.ts);
            }
        }
        (first <= last).then_some((first, last))
    }

    /// Each model's first non-embedding request (model index, ms), by
    /// model index (after [`Requests::finish`]).
    pub fn first_seen(&self) -> &[(u16, i64)] {
        &self.first_seen
    }

    /// What [`Context::new`](crate::features::Context::new) finds over the
    /// requests sent before `until`, from the accounts' time-ordered runs
    /// and [`Requests::first_seen`] instead of a pass over every request
    /// (after [`Requests::finish`]).
    pub fn context(
        &self,
        until: i64,
        cfg: &crate::config::AnalyzerConfig,
    ) -> crate::features::Context {
        let (start, end) = self.span_before(until).unwrap_or((i64::MAX, i64::MIN));
        crate::features::Context::of_span(
            start,
            end,
            self.first_seen.iter().copied().filter(|&(_, t)| t < until),
            cfg,
        )
    }
}

/// The range of times that is not far from the bulk (see
/// [`Requests::finish`]): the quartiles of all `total` rows' times, found
/// on copies gathered on `threads` threads.
/// Sets [`flag::ORPHAN`] on the multi-turn requests of one account's
/// time-ordered `run` that continue no earlier request of their key sent
/// with the same settings ([`PartKey`]). Judged once over the whole
/// stream, so a part or setting slice and the rest of its account code a
/// request alike; the marked requests are also a part of their own
/// ([`PartKey::MADE_UP`]). Within one setting because a harvest hosted in a
/// product's key would otherwise "continue" the product's own requests
/// by chance: on the external set made into `multi_turn,clients` 1 and
/// then `host` 0.1 (docs/analyzer.md, session 18), per key alone finds 32
/// of 70 hosts, per key and setting 41, at one more false positive (an
/// individual developer who switches model and output cap within a
/// conversation).
pub(crate) fn mark_orphans(run: &mut [Req]) {
    let mut continuity = Continuity::default();
    for r in run {
        if continuity.observe_in(r, PartKey::of(r).bits()) == Turn::Orphan {
            r.flags |= flag::ORPHAN;
        }
    }
}

fn far_bounds(chunks: &[Vec<Req>], total: usize, min_margin_ms: i64, threads: usize) -> (i64, i64) {
    if total == 0 {
        return (i64::MIN, i64::MAX);
    }
    let mut ts = vec![0i64; total];
    std::thread::scope(|s| {
        let mut rest: &mut [i64] = &mut ts;
        for run in split_chunks(chunks, threads) {
            let len: usize = run.iter().map(Vec::len).sum();
            let (part, tail) = rest.split_at_mut(len);
            rest = tail;
            s.spawn(move || {
                for (t, r) in part.iter_mut().zip(run.iter().flatten()) {
                    *t = r.ts;
                }
            });
        }
    });
    let q1 = *ts.select_nth_unstable(total / 4).1;
    let q3 = *ts.select_nth_unstable((3 * total) / 4).1;
    let margin = (q3 - q1).saturating_mul(3).max(min_margin_ms);
    (q1.saturating_sub(margin), q3.saturating_add(margin))
}

/// `chunks` cut into `parts` runs of consecutive chunks with about equal
/// rows (fewer when there are fewer chunks).
fn split_chunks(chunks: &[Vec<Req>], parts: usize) -> Vec<&[Vec<Req>]> {
    let total: usize = chunks.iter().map(Vec::len).sum();
    let mut runs = Vec::with_capacity(parts);
    let (mut from, mut seen) = (0, 0);
    for (i, c) in chunks.iter().enumerate() {
        seen += c.len();
        if seen * parts >= total * (runs.len() + 1) && runs.len() + 1 < parts {
            runs.push(&chunks[from..=i]);
            from = i + 1;
        }
    }
    runs.push(&chunks[from..]);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(keys: u64, logprobs: bool, top: u64) -> Req {
        Req {
            output_probes: Req::output_probes(keys, logprobs, top, 20),
            ..Req::default()
        }
    }

    #[test]
    fn logit_bias_keys_and_logprob_depth_share_one_field() {
        let r = packed(300, true, 20);
        assert_eq!((r.logit_bias_keys(), r.logprob_depth()), (300, 1.0));
        // Keys saturate without touching the depth; depth past the
        // maximum is the maximum.
        let r = packed(1_000_000, false, 50);
        assert_eq!((r.logit_bias_keys(), r.logprob_depth()), (2047, 1.0));
        // `logprobs` alone returns one log-probability per token (1 of
        // 20: 1.55 31sts, rounded up); nothing asked is 0.
        assert_eq!(packed(0, true, 0).logprob_depth(), 2.0 / 31.0);
        assert_eq!(packed(7, false, 0).logprob_depth(), 0.0);
        assert_eq!(packed(7, false, 0).logit_bias_keys(), 7);
        assert_eq!(packed(0, true, 10).logprob_depth(), 16.0 / 31.0);
        assert_eq!(packed(0, true, 19).logprob_depth(), 30.0 / 31.0);
    }
}
