//! From features to a verdict an analyst can read. The decision is the
//! calibrated model's ([`crate::model`]): `score` is its probability and an
//! entity is flagged exactly when `score >= threshold`. Every verdict
//! carries each input's contribution (value, peer baseline, part of the
//! log-odds) and, for the analyst, the named signals (rule-of-thumb tests
//! with their values and thresholds, in families) and the benign
//! explanations the numbers rule out. Signals explain; they do not decide.

use crate::config::AnalyzerConfig;
use crate::features::{Baselines, Features};
use crate::model::inputs::{INPUTS, Peers, Transform};
use crate::model::{Contribution, Model};
use serde::Serialize;

/// What every entity of one analysis is judged with: the configuration,
/// the population's baselines and peer groups, and the model.
#[derive(Clone, Copy)]
pub struct Judge<'a> {
    /// Thresholds of the explanatory signals, `min_requests`.
    pub cfg: &'a AnalyzerConfig,
    /// Population baselines (volume signal).
    pub baselines: &'a Baselines,
    /// Peer groups of the model's peer-relative inputs.
    pub peers: &'a Peers,
    /// The model.
    pub model: &'a Model,
}

/// Contributions listed in a verdict (the rest sum into the score but are
/// too small to help an analyst).
pub const CONTRIBUTIONS_SHOWN: usize = 12;

/// Independent groups of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// How: sustained machine traffic (volume, duty cycle, regularity, 429s).
    Automation,
    /// What: broad capability coverage, reasoning traces, identity probes.
    Harvest,
    /// What: the output distribution itself (logprobs at max, logit_bias, 1 token).
    OutputLayer,
    /// How: moving onto a newly released model at once with the same prompts.
    Opportunism,
}

impl Family {
    /// Whether the family says what is being taken (needed for an alert).
    pub fn is_content(self) -> bool {
        matches!(self, Family::Harvest | Family::OutputLayer)
    }

    /// Name in evidence.
    pub fn name(self) -> &'static str {
        match self {
            Family::Automation => "automation",
            Family::Harvest => "harvest",
            Family::OutputLayer => "output_layer",
            Family::Opportunism => "opportunism",
        }
    }
}

/// One named test.
#[derive(Clone, Debug, Serialize)]
pub struct Signal {
    /// Name, e.g. `reasoning_elicitation`.
    pub name: &'static str,
    /// Family.
    pub family: Family,
    /// Measured value.
    pub value: f64,
    /// Threshold it is compared with.
    pub threshold: f64,
    /// Whether it fired.
    pub fired: bool,
    /// Extra conditions, in words with numbers.
    pub detail: String,
}

/// A benign explanation and whether the numbers rule it out.
#[derive(Clone, Debug, Serialize)]
pub struct Benign {
    /// The explanation, e.g. `evaluation_harness_burst`.
    pub name: &'static str,
    /// Ruled out?
    pub ruled_out: bool,
    /// Why, in numbers.
    pub because: String,
}

/// The verdict on one entity.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// 0..1: the model's probability of distillation.
    pub score: f64,
    /// Exactly `score >= threshold`.
    pub flagged: bool,
    /// The model's threshold.
    pub threshold: f64,
    /// Families whose inputs add at least [`FAMILY_EVIDENCE`] to the
    /// log-odds, strongest first.
    pub families: Vec<Family>,
    /// The largest contributions of the model's inputs, largest first.
    pub contributions: Vec<Contribution>,
    /// Every signal evaluated (fired or not).
    pub signals: Vec<Signal>,
    /// Benign explanations considered.
    pub benign: Vec<Benign>,
    /// Prompt text was redacted for most requests: text signals were replaced
    /// by metadata proxies.
    pub redacted: bool,
}

impl Verdict {
    /// The fired signals, strongest family first.
    pub fn fired(&self) -> impl Iterator<Item = &Signal> {
        self.signals.iter().filter(|s| s.fired)
    }

    /// Whether a content family carries evidence.
    pub fn has_content(&self) -> bool {
        self.families.iter().any(|f| f.is_content())
    }

    /// The verdict with its odds divided by `m` (the best of `m` tries;
    /// see the facets in [`crate::analysis`]); `flagged` follows.
    pub fn with_odds_divided_by(mut self, m: f64) -> Verdict {
        if m > 1.0 && self.score > 0.0 && self.score < 1.0 {
            let logit = (self.score / (1.0 - self.score)).ln() - m.ln();
            self.score = 1.0 / (1.0 + (-logit).exp());
            self.flagged = self.score >= self.threshold;
        }
        self
    }

    /// Whether positive evidence explains the verdict.
    pub fn explained(&self) -> bool {
        self.contributions.iter().any(|c| c.contribution > 0.0)
    }
}

/// The log-odds of an entity with no evidence (a score of about 0.01).
pub const NO_EVIDENCE_LOGIT: f64 = -4.6;

/// A family counts as evidence when its inputs add at least this much to
/// the log-odds (a factor of e in the odds).
pub const FAMILY_EVIDENCE: f64 = 1.0;

fn sig(
    name: &'static str,
    family: Family,
    value: f64,
    threshold: f64,
    fired: bool,
    detail: String,
) -> Signal {
    Signal {
        name,
        family,
        value: if value.is_finite() { value } else { 0.0 },
        threshold,
        fired,
        detail,
    }
}

/// Score one entity.
pub fn score(f: &Features, judge: &Judge<'_>) -> Verdict {
    score_with(f, judge, Vec::new())
}

/// A signal measured outside the feature table (e.g. a cluster's
/// coordination), scored together with the entity's own.
pub fn signal(
    name: &'static str,
    family: Family,
    value: f64,
    threshold: f64,
    fired: bool,
    detail: String,
) -> Signal {
    sig(name, family, value, threshold, fired, detail)
}

/// Score one entity with extra signals.
pub fn score_with(f: &Features, judge: &Judge<'_>, extra: Vec<Signal>) -> Verdict {
    let (cfg, base) = (judge.cfg, judge.baselines);
    let mut s = extra;
    let enough = f.requests >= cfg.min_requests;
    let sustained = f.active_hours >= cfg.min_active_hours;
    let z = base.requests_per_day.z(f.requests_per_day);
    s.push(sig(
        "high_volume",
        Family::Automation,
        z,
        cfg.robust_z,
        enough && sustained && z >= cfg.robust_z && f.requests_per_day >= cfg.high_volume_per_day,
        format!(
            "{:.0} requests/day vs peer median {:.0} (MAD {:.0}); needs >= {:.0}/day and >= {} active hours (has {})",
            f.requests_per_day, base.requests_per_day.median, base.requests_per_day.mad, cfg.high_volume_per_day, cfg.min_active_hours, f.active_hours
        ),
    ));
    s.push(sig(
        "round_the_clock",
        Family::Automation,
        f64::from(f.hours_of_day),
        f64::from(cfg.round_the_clock_hours),
        enough
            && sustained
            && f.hours_of_day >= cfg.round_the_clock_hours
            && f.duty_cycle >= cfg.round_the_clock_duty,
        format!(
            "{} of 24 hours of the day; duty cycle {:.2} (needs {:.2})",
            f.hours_of_day, f.duty_cycle, cfg.round_the_clock_duty
        ),
    ));
    s.push(sig(
        "regular_arrivals",
        Family::Automation,
        f.interarrival_cv,
        cfg.regular_cv,
        enough && sustained && f.interarrival_cv.is_finite() && f.interarrival_cv <= cfg.regular_cv,
        format!(
            "inter-arrival coefficient of variation {:.2} (<= {:.2} is machine-regular)",
            f.interarrival_cv, cfg.regular_cv
        ),
    ));
    s.push(sig(
        "rate_limit_pressure",
        Family::Automation,
        f.rate_429_share,
        cfg.rate_limit_share,
        f.rate_429_share >= cfg.rate_limit_share && f.rate_429_count >= cfg.rate_limit_min,
        format!(
            "{} answers 429 ({:.1}%); needs >= {}",
            f.rate_429_count,
            100.0 * f.rate_429_share,
            cfg.rate_limit_min
        ),
    ));
    s.push(sig(
        "reasoning_elicitation",
        Family::Harvest,
        f.reasoning_share,
        cfg.reasoning_share,
        f.reasoning_share >= cfg.reasoning_share
            && f.reasoning_count >= cfg.reasoning_min
            && f.reasoning_distinct >= cfg.reasoning_distinct,
        format!(
            "{} of {} single-turn prompts ask for the reasoning trace, {:.0}% of them distinct (needs {:.0}%); languages: {}",
            f.reasoning_count,
            f.text_pool,
            100.0 * f.reasoning_distinct,
            100.0 * cfg.reasoning_distinct,
            languages(f.reasoning_languages)
        ),
    ));
    s.push(sig(
        "identity_probes",
        Family::Harvest,
        f.probe_share,
        cfg.probe_share,
        f.probe_share >= cfg.probe_share && f.probe_count >= cfg.probe_min,
        format!(
            "{} model-identity probes; needs >= {}",
            f.probe_count, cfg.probe_min
        ),
    ));
    s.push(sig(
        "coverage_growth",
        Family::Harvest,
        f.coverage_growth,
        cfg.coverage_growth,
        f.topic_prompts >= cfg.coverage_min_prompts
            && f.topic_breadth as usize >= cfg.topic_breadth
            && f.coverage_growth >= cfg.coverage_growth,
        format!(
            "{} capability categories (needs {}), {:.0}% of them first reached after the first quarter of {} on-topic prompts (needs {})",
            f.topic_breadth,
            cfg.topic_breadth,
            100.0 * f.coverage_growth,
            f.topic_prompts,
            cfg.coverage_min_prompts
        ),
    ));
    s.push(sig(
        "templated_harvest",
        Family::Harvest,
        f.harvest_template_share,
        cfg.templated_share,
        f.harvest_template_share >= cfg.templated_share
            && f.harvest_breadth as usize >= cfg.topic_breadth
            && f.harvest_completion_mean >= cfg.templated_completion_tokens,
        format!(
            "{:.0}% of single-turn prompts in {} templates with new slot values each time, across {} categories (needs {}), {:.0} output tokens each (needs {:.0})",
            100.0 * f.harvest_template_share,
            f.templates,
            f.harvest_breadth,
            cfg.topic_breadth,
            f.harvest_completion_mean,
            cfg.templated_completion_tokens
        ),
    ));
    let redacted = f.redacted_share >= 0.5;
    if redacted {
        s.push(sig(
            "redacted_harvest",
            Family::Harvest,
            f.completion_tokens_mean,
            cfg.redacted_completion_tokens,
            enough
                && f.single_turn_share >= cfg.redacted_single_turn
                && novel_prompts(f, cfg)
                && f.completion_tokens_mean >= cfg.redacted_completion_tokens,
            format!(
                "prompts redacted ({:.0}%): metadata proxy — single-turn {:.2} (needs {:.2}), distinct prompt hashes {:.2} (needs {:.2}) or {:.0} new prompts per day after the first day (needs {:.0}), {:.0} output tokens per request",
                100.0 * f.redacted_share,
                f.single_turn_share,
                cfg.redacted_single_turn,
                f.distinct_prompt_ratio,
                cfg.redacted_distinct,
                f.new_prompts_per_day,
                cfg.redacted_new_per_day,
                f.completion_tokens_mean
            ),
        ));
    }
    s.push(sig(
        "top_logprobs_at_max",
        Family::OutputLayer,
        f.top_logprobs_max_share,
        cfg.logprob_max_share,
        enough && f.top_logprobs_max_share >= cfg.logprob_max_share,
        format!(
            "share of requests asking for top_logprobs >= {}",
            cfg.top_logprobs_max
        ),
    ));
    s.push(sig(
        "logit_bias_heavy",
        Family::OutputLayer,
        f.logit_bias_share,
        cfg.logit_bias_share,
        enough
            && f.logit_bias_share >= cfg.logit_bias_share
            && f.logit_bias_keys_mean >= cfg.logit_bias_keys,
        format!(
            "{:.0} biased tokens per biased request (needs {:.0})",
            f.logit_bias_keys_mean, cfg.logit_bias_keys
        ),
    ));
    s.push(sig(
        "single_token_probe",
        Family::OutputLayer,
        f.max_tokens1_share,
        cfg.single_token_share,
        enough && f.max_tokens1_share >= cfg.single_token_share && f.top_logprobs_max_share >= cfg.logprob_max_share,
        format!(
            "max_tokens <= 1 with top_logprobs at max; {:.0}% of prompts in the 10 largest templates",
            100.0 * f.top_template_share
        ),
    ));
    s.push(sig(
        "new_model_move",
        Family::Opportunism,
        f.new_model_lag_hours,
        cfg.new_model_lag_hours,
        enough
            && f.new_model_share >= cfg.new_model_share
            && f.new_model_lag_hours <= cfg.new_model_lag_hours
            && f.new_model_overlap >= cfg.new_model_overlap,
        format!(
            "moved {:.0}% of traffic to a newly released model {:.1} h after release; prompt distribution overlap {:.2} (needs {:.2})",
            100.0 * f.new_model_share,
            f.new_model_lag_hours,
            f.new_model_overlap,
            cfg.new_model_overlap
        ),
    ));

    let x = judge.peers.inputs(f);
    let medians: Vec<Option<f64>> = INPUTS
        .iter()
        .enumerate()
        .map(|(i, d)| match d.transform {
            Transform::PeerZ => Some(judge.peers.baseline(f, i).median.exp_m1()),
            _ => None,
        })
        .collect();
    let mut scored = judge.model.score(&x, &medians);
    // Few requests, little evidence: below `min_requests` the log-odds
    // are pulled toward those of an entity with no evidence at all, by
    // the square of the missing fraction, so a handful of requests never
    // makes a confident verdict, and `flagged` stays exactly
    // `score >= threshold`.
    let weight = (f.requests as f64 / cfg.min_requests.max(1) as f64)
        .min(1.0)
        .powi(2);
    if weight < 1.0 {
        scored.logit = weight * scored.logit + (1.0 - weight) * NO_EVIDENCE_LOGIT;
        scored.score = 1.0 / (1.0 + (-scored.logit).exp());
        for c in &mut scored.contributions {
            c.contribution *= weight;
        }
    }
    let mut by_family: Vec<(Family, f64)> = Vec::new();
    for c in scored.contributions.iter().filter(|c| c.contribution > 0.0) {
        match by_family.iter_mut().find(|(fam, _)| *fam == c.family) {
            Some((_, sum)) => *sum += c.contribution,
            None => by_family.push((c.family, c.contribution)),
        }
    }
    by_family.sort_by(|a, b| b.1.total_cmp(&a.1));
    let families = by_family
        .into_iter()
        .filter(|(_, sum)| *sum >= FAMILY_EVIDENCE)
        .map(|(fam, _)| fam)
        .collect();
    let mut contributions = scored.contributions;
    contributions.truncate(CONTRIBUTIONS_SHOWN);
    Verdict {
        score: scored.score,
        flagged: scored.score >= judge.model.threshold,
        threshold: judge.model.threshold,
        families,
        contributions,
        signals: s,
        benign: benign(f, cfg),
        redacted,
    }
}

/// Whether the entity keeps sending prompts it has not sent before: most of
/// them distinct, or — at volumes where even a harvester repeats some — a
/// sustained stream of new ones after its first day. A fixed set re-sent
/// (benchmark runs, a batch re-run) fails both.
fn novel_prompts(f: &Features, cfg: &AnalyzerConfig) -> bool {
    f.distinct_prompt_ratio >= cfg.redacted_distinct
        || f.new_prompts_per_day >= cfg.redacted_new_per_day
}

/// Names of the languages in a mask.
pub fn languages(mask: u8) -> String {
    let v: Vec<&str> = crate::text::LANGUAGES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, l)| *l)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

fn benign(f: &Features, cfg: &AnalyzerConfig) -> Vec<Benign> {
    let b = |name, ruled_out, because| Benign {
        name,
        ruled_out,
        because,
    };
    vec![
        b(
            "embeddings_workload",
            f.embeddings_share < 0.5,
            format!(
                "{:.0}% of requests are embeddings",
                100.0 * f.embeddings_share
            ),
        ),
        b(
            "multi_turn_chat_product",
            f.single_turn_share >= 0.8,
            format!(
                "{:.0}% of requests are single-turn",
                100.0 * f.single_turn_share
            ),
        ),
        b(
            "narrow_batch_or_content_pipeline",
            f.topic_breadth as usize >= cfg.topic_breadth
                || f.harvest_breadth as usize >= cfg.topic_breadth
                || f.top_logprobs_max_share >= cfg.logprob_max_share,
            format!(
                "{} capability categories ({} in templated prompts); top_logprobs at max in {:.0}%",
                f.topic_breadth,
                f.harvest_breadth,
                100.0 * f.top_logprobs_max_share
            ),
        ),
        b(
            "evaluation_harness_burst",
            f.active_hours >= cfg.min_active_hours && novel_prompts(f, cfg),
            format!(
                "active in {} distinct hours; {:.0}% of prompts distinct, {:.0} new prompts per day after the first day",
                f.active_hours,
                100.0 * f.distinct_prompt_ratio,
                f.new_prompts_per_day
            ),
        ),
        b(
            "researcher_probing",
            f.requests_per_day >= cfg.high_volume_per_day,
            format!("{:.0} requests/day", f.requests_per_day),
        ),
        b(
            "contracted_synthetic_data",
            f.n_gt1_share < 0.5
                && (f.topic_breadth as usize >= cfg.topic_breadth
                    || f.reasoning_share >= cfg.reasoning_share
                    || f.top_logprobs_max_share >= cfg.logprob_max_share),
            format!(
                "n>1 in {:.0}% of requests; {} categories; reasoning traces in {:.0}%",
                100.0 * f.n_gt1_share,
                f.topic_breadth,
                100.0 * f.reasoning_share
            ),
        ),
    ]
}
