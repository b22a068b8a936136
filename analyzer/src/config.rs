//! The `[analyzer]` section of `weightwatch.toml`: the model and every
//! threshold of the analyzer's explanatory signals, with the defaults documented in `docs/analyzer.md`.

use serde::Deserialize;

/// Analyzer thresholds and weights.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzerConfig {
    /// The model file (JSON, from `weightwatch model fit` or `analyze
    /// --fit-labels`); empty: the model bundled with this version.
    pub model: String,
    /// Overrides the model's own threshold when set (0..1); the model's
    /// threshold was chosen for `target_fpr` on its training accounts.
    pub score_threshold: Option<f64>,
    /// Entities (accounts, keys, clusters) with fewer requests have their
    /// log-odds pulled toward "no evidence" by the square of the missing
    /// fraction (25 of 50 requests: a quarter of the evidence).
    pub min_requests: u64,
    /// Robust z-score (median/MAD against every account) above which
    /// a volume feature counts as unusual.
    pub robust_z: f64,
    /// `high_volume` also needs at least this many requests per day.
    pub high_volume_per_day: f64,
    /// `round_the_clock`: distinct hours of the day with traffic.
    pub round_the_clock_hours: u32,
    /// `round_the_clock`: share of all hours in the span with traffic.
    pub round_the_clock_duty: f64,
    /// `regular_arrivals`: inter-arrival coefficient of variation at most this.
    pub regular_cv: f64,
    /// Automation signals need traffic in at least this many distinct hours.
    pub min_active_hours: u32,
    /// `coordinated_accounts`: the members' merged traffic must cover at
    /// least this many distinct hours of the day (a shared schedule covers
    /// one or two, an operator's machinery spreads over the day).
    pub coordination_hours_of_day: u32,
    /// `rate_limit_pressure`: share of 429 answers.
    pub rate_limit_share: f64,
    /// `rate_limit_pressure`: and at least this many 429s.
    pub rate_limit_min: u64,
    /// `reasoning_elicitation`: share of single-turn prompts with a
    /// reasoning-trace elicitation phrase (any language).
    pub reasoning_share: f64,
    /// `reasoning_elicitation`: and at least this many such prompts.
    pub reasoning_min: u64,
    /// `reasoning_elicitation`: and at least this share of them distinct
    /// (harvesting needs new prompts; an evaluation harness re-sends the
    /// same benchmark items run after run).
    pub reasoning_distinct: f64,
    /// `identity_probes`: share of prompts probing the model's identity.
    pub probe_share: f64,
    /// `identity_probes`: and at least this many.
    pub probe_min: u64,
    /// Topic breadth (capability categories with real traffic) that counts
    /// as broad.
    pub topic_breadth: usize,
    /// A category counts toward breadth with at least this share of the
    /// entity's texted prompts.
    pub topic_min_share: f64,
    /// `coverage_growth`: share of covered categories first reached after
    /// the first quarter of the entity's requests.
    pub coverage_growth: f64,
    /// `coverage_growth` needs at least this many on-topic single-turn prompts.
    pub coverage_min_prompts: u64,
    /// A template is a harvesting template with at least this many requests…
    pub template_min_requests: u64,
    /// …and at least this share of distinct prompts among them (slot diversity).
    pub slot_diversity: f64,
    /// `templated_harvest`: share of single-turn prompts in harvesting templates.
    pub templated_share: f64,
    /// `templated_harvest`: mean completion tokens of those prompts.
    pub templated_completion_tokens: f64,
    /// The largest `top_logprobs` the API allows (requests at it are "at
    /// max"; a request's log-probability depth is its share of this).
    pub top_logprobs_max: u32,
    /// `top_logprobs_at_max`: share of requests.
    pub logprob_max_share: f64,
    /// `logit_bias_heavy`: mean biased tokens per biased request.
    pub logit_bias_keys: f64,
    /// `logit_bias_heavy`: share of requests with logit_bias.
    pub logit_bias_share: f64,
    /// `single_token_probe`: share of requests with max_tokens <= 1 (and top_logprobs at max).
    pub single_token_share: f64,
    /// `redacted_harvest` (metadata proxy when prompts are redacted): share of single-turn requests.
    pub redacted_single_turn: f64,
    /// `redacted_harvest`: share of distinct prompt hashes…
    pub redacted_distinct: f64,
    /// …or at least this many prompt hashes never sent before, per day
    /// after the entity's first day (`new_prompts_per_day`): at high volume
    /// even a harvester re-sends some prompts, so the share falls while the
    /// stream of new ones does not.
    pub redacted_new_per_day: f64,
    /// `redacted_harvest`: mean completion tokens.
    pub redacted_completion_tokens: f64,
    /// A model is "new" when first seen after this share of the input span.
    pub new_model_after: f64,
    /// `new_model_move`: the entity moved within this many hours of the release…
    pub new_model_lag_hours: f64,
    /// …with at least this share of its later traffic…
    pub new_model_share: f64,
    /// …and at least this overlap of templates before and after.
    pub new_model_overlap: f64,
    /// A flagged cluster's merged traffic condemns its members only when at
    /// least half of them score this much on their own traffic (0..1).
    pub cluster_member_score: f64,
    /// The same, for a cluster whose members share source blocks or
    /// addresses on most links; then only the members scoring this much
    /// take the cluster's verdict (0..1; see `analysis::condemned`).
    pub cluster_shared_member_score: f64,
    /// A member of a cluster condemned through its members that sends
    /// `min_requests` or more and scores under this on its own keeps its
    /// own verdict, however it is linked: its traffic carries no part of
    /// the job (a host's teammate linked by the team's addresses, client
    /// and schedule; 0..1, 0: never; see `attach::attached`).
    pub cluster_member_floor: f64,
    /// A cluster at least this share of whose members send fewer than
    /// `min_requests` (too few to be judged alone) is judged as a group —
    /// its merged content, its median member's volume, timing and
    /// infrastructure (`group::per_member`) — and, when the group is
    /// flagged, those small members take its verdict (0..1; above 1: never).
    pub cluster_small_members: f64,
    /// Peer baselines leave out accounts scoring at least this much against
    /// the whole population, and every member of a cluster whose group
    /// (`group::per_member`) scores at least this much (0..1; 1 keeps every
    /// account).
    pub peer_trim_score: f64,
    /// An account's job parts (`parts.rs`): at most this many of its
    /// largest minority parts are tested for being a different job, and
    /// beside them its settings each too few to be a part, together (0:
    /// no parts); bounds the time and memory a part costs per account.
    pub part_max: usize,
    /// A minority part is judged on its own only when what it asks
    /// differs from the rest of its account by at least this much (the
    /// unbiased MMD of `parts::discrepancy`, 0..2).
    pub part_min_discrepancy: f64,
    /// Client slices linked across accounts (`slices.rs`): a minority
    /// client program of an account with at least this many requests is
    /// linked with other accounts' (0: no slices; below 5 counts as 5, the
    /// fewest requests linking reads).
    pub slice_min_requests: u64,
    /// Window length (hours) for windowed features and time-to-detect replay.
    pub window_hours: u32,
    /// `--features-out` also holds one row per account and window of this
    /// many hours (aligned to the Unix epoch, so 24 = UTC days); 0: whole
    /// input only.
    pub feature_window_hours: u32,
    /// Alert evidence `requests_per_hour` holds at most this many points;
    /// longer time ranges are summed into steps of several hours.
    pub series_points: usize,
    /// MinHash signature length (bands × rows) for template LSH.
    pub lsh_bands: usize,
    /// Rows per LSH band.
    pub lsh_rows: usize,
    /// Two accounts' template sets this similar (Jaccard) count as shared.
    pub template_jaccard: f64,
    /// Hourly activity vectors this similar (cosine) count as synchronized.
    pub sync_cosine: f64,
    /// Hourly activity this similar counts half: low-rate accounts fed by
    /// one queue share its hours, but too sparsely to reach `sync_cosine`.
    pub loose_sync_cosine: f64,
    /// Request-shape mixes (model, output cap, system prompt, sampling
    /// flags) this similar (histogram intersection) count as the same
    /// client program.
    pub shape_overlap: f64,
    /// Accounts sharing this many exact source addresses share a source
    /// (a rotating proxy pool spreads over many /24s, but its addresses
    /// come back across the accounts that use it).
    pub shared_addresses: usize,
    /// Topic mixes this similar (cosine over the capability categories)
    /// count half a link…
    pub topic_mix_cosine: f64,
    /// …when each account has at least this many on-topic prompts.
    pub topic_mix_min_prompts: u32,
    /// An account linked to no one, with near-links (link score within 0.5
    /// of `link_score`) to at least this many members of one cluster,
    /// joins that cluster.
    pub attach_links: usize,
    /// A sparse account in no cluster and flagged on nothing joins a
    /// condemned account cluster (or a group of flagged accounts) when its
    /// sampled words' cosine with the cluster's flagged members' reaches
    /// this, and its hourly activity's cosine with theirs reaches
    /// `loose_sync_cosine` (`joining.rs`; above 1: never)…
    pub join_cosine: f64,
    /// …and it sends at least this many requests…
    pub join_min_requests: u64,
    /// …and at most this many a day on the days it is active.
    pub join_daily_requests: f64,
    /// Accounts are linked when their link score reaches this (templates 1,
    /// synchronized 1 (loosely 0.5), same request shape 1, shared /24 or
    /// /48 or `shared_addresses` exact addresses 1 (one address 0.5), same
    /// client 0.5).
    pub link_score: f64,
    /// Linked components are split into communities by modularity
    /// (`community.rs`); this is its resolution γ (above 1: smaller
    /// communities, 0: no split).
    pub community_resolution: f64,
    /// Clusters smaller than this are not scored as clusters.
    pub min_cluster_size: usize,
    /// Candidate buckets (same block, client, LSH band) larger than this are
    /// too generic to link by; they are skipped.
    pub max_bucket: usize,
    /// Sample prompts per alert.
    pub sample_prompts: usize,
    /// Sample prompts are cut to this many characters.
    pub sample_chars: usize,
    /// Replace sample prompts with their SHA-256 in alerts.
    pub redact_samples: bool,
    /// Bad rows reported with file and line (all are counted).
    pub bad_row_examples: usize,
    /// Threads parsing JSON Lines (0: one per core; 1: no worker threads).
    pub threads: usize,
    /// Longest input line (JSON Lines) or CSV record kept; a longer one is
    /// skipped to its end and reported (`line_too_long`,
    /// `unbalanced_quote`), so one hostile line cannot take the memory.
    pub max_line_bytes: usize,
    /// Upper bound on rows held in memory (~64 bytes each); rows beyond it
    /// are counted and reported, not analysed.
    pub max_rows: u64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            model: String::new(),
            score_threshold: None,
            min_requests: 50,
            robust_z: 3.5,
            high_volume_per_day: 500.0,
            round_the_clock_hours: 20,
            round_the_clock_duty: 0.5,
            regular_cv: 0.5,
            min_active_hours: 12,
            coordination_hours_of_day: 6,
            rate_limit_share: 0.04,
            rate_limit_min: 50,
            reasoning_share: 0.25,
            reasoning_min: 30,
            reasoning_distinct: 0.5,
            probe_share: 0.005,
            probe_min: 10,
            topic_breadth: 8,
            topic_min_share: 0.01,
            coverage_growth: 0.3,
            coverage_min_prompts: 400,
            template_min_requests: 20,
            slot_diversity: 0.9,
            templated_share: 0.5,
            templated_completion_tokens: 500.0,
            top_logprobs_max: 20,
            logprob_max_share: 0.5,
            logit_bias_keys: 20.0,
            logit_bias_share: 0.3,
            single_token_share: 0.5,
            redacted_single_turn: 0.9,
            redacted_distinct: 0.8,
            redacted_new_per_day: 500.0,
            redacted_completion_tokens: 600.0,
            new_model_after: 0.1,
            new_model_lag_hours: 6.0,
            new_model_share: 0.8,
            new_model_overlap: 0.5,
            cluster_member_score: 0.5,
            cluster_shared_member_score: 0.3,
            cluster_member_floor: 0.05,
            cluster_small_members: 0.5,
            peer_trim_score: 0.5,
            part_max: 8,
            part_min_discrepancy: 0.5,
            slice_min_requests: 5,
            window_hours: 6,
            feature_window_hours: 24,
            series_points: 168,
            lsh_bands: 16,
            lsh_rows: 4,
            template_jaccard: 0.3,
            sync_cosine: 0.8,
            loose_sync_cosine: 0.45,
            shape_overlap: 0.8,
            shared_addresses: 2,
            topic_mix_cosine: 0.9,
            topic_mix_min_prompts: 20,
            attach_links: 3,
            join_cosine: 0.8,
            join_min_requests: 10,
            join_daily_requests: 40.0,
            link_score: 2.0,
            community_resolution: 1.0,
            min_cluster_size: 3,
            max_bucket: 2000,
            sample_prompts: 3,
            sample_chars: 160,
            redact_samples: false,
            bad_row_examples: 20,
            threads: 0,
            max_rows: 100_000_000,
            max_line_bytes: 8 << 20,
        }
    }
}
