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
    /// The model's mode that decided (the sub-model giving the highest
    /// log-odds: `general`, `output_layer`, or `single`); the
    /// contributions are its.
    pub model_mode: String,
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

/// How much of its log-odds an entity's evidence keeps. Few requests,
/// little evidence: below `min_requests` the log-odds are pulled toward
/// those of an entity with no evidence at all, by the square of the missing
/// fraction, so a handful of requests never makes a confident verdict, and
/// `flagged` stays exactly `score >= threshold`.
fn evidence_weight(f: &Features, cfg: &AnalyzerConfig) -> f64 {
    (f.requests as f64 / cfg.min_requests.max(1) as f64)
        .min(1.0)
        .powi(2)
}

fn weighted_logit(logit: f64, weight: f64) -> f64 {
    weight * logit + (1.0 - weight) * NO_EVIDENCE_LOGIT
}

/// The score alone of one entity (what [`score`] puts in its verdict,
/// without the signals, contributions and explanations).
pub fn probability(f: &Features, judge: &Judge<'_>) -> f64 {
    let logit = judge.model.logit(&judge.peers.inputs(f));
    let weight = evidence_weight(f, judge.cfg);
    let logit = if weight < 1.0 {
        weighted_logit(logit, weight)
    } else {
        logit
    };
    1.0 / (1.0 + (-logit).exp())
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
    let redacted = f.redacted_share >= 0.5;
    let mut s = extra;
    s.extend(
        SIGNALS
            .iter()
            .filter(|d| !d.only_redacted || redacted)
            .map(|d| {
                sig(
                    d.name,
                    d.family,
                    (d.value)(f, cfg, base),
                    (d.threshold)(cfg),
                    (d.fires)(f, cfg, base),
                    (d.detail)(f, cfg, base),
                )
            }),
    );
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
    let weight = evidence_weight(f, cfg);
    if weight < 1.0 {
        scored.logit = weighted_logit(scored.logit, weight);
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
        model_mode: judge.model.mode_name(scored.mode).to_string(),
        families,
        contributions,
        signals: s,
        benign: benign(f, cfg),
        redacted,
    }
}

/// One explanatory signal: a named test of the features, as data.
struct SignalDef {
    name: &'static str,
    family: Family,
    /// Computed only when prompts are mostly redacted (a metadata proxy).
    only_redacted: bool,
    value: fn(&Features, &AnalyzerConfig, &Baselines) -> f64,
    threshold: fn(&AnalyzerConfig) -> f64,
    fires: fn(&Features, &AnalyzerConfig, &Baselines) -> bool,
    detail: fn(&Features, &AnalyzerConfig, &Baselines) -> String,
}

fn enough(f: &Features, cfg: &AnalyzerConfig) -> bool {
    f.requests >= cfg.min_requests
}

fn sustained(f: &Features, cfg: &AnalyzerConfig) -> bool {
    enough(f, cfg) && f.active_hours >= cfg.min_active_hours
}

/// Every explanatory signal (docs/analyzer.md, "Explanatory signals").
const SIGNALS: &[SignalDef] = &[
    SignalDef {
        name: "high_volume",
        family: Family::Automation,
        only_redacted: false,
        value: |f, _, b| b.requests_per_day.z(f.requests_per_day),
        threshold: |c| c.robust_z,
        fires: |f, c, b| {
            sustained(f, c)
                && b.requests_per_day.z(f.requests_per_day) >= c.robust_z
                && f.requests_per_day >= c.high_volume_per_day
        },
        detail: |f, c, b| {
            format!(
                "{:.0} requests/day vs peer median {:.0} (MAD {:.0}); needs >= {:.0}/day and >= {} active hours (has {})",
                f.requests_per_day,
                b.requests_per_day.median,
                b.requests_per_day.mad,
                c.high_volume_per_day,
                c.min_active_hours,
                f.active_hours
            )
        },
    },
    SignalDef {
        name: "round_the_clock",
        family: Family::Automation,
        only_redacted: false,
        value: |f, _, _| f64::from(f.hours_of_day),
        threshold: |c| f64::from(c.round_the_clock_hours),
        fires: |f, c, _| {
            sustained(f, c)
                && f.hours_of_day >= c.round_the_clock_hours
                && f.duty_cycle >= c.round_the_clock_duty
        },
        detail: |f, c, _| {
            format!(
                "{} of 24 hours of the day; duty cycle {:.2} (needs {:.2})",
                f.hours_of_day, f.duty_cycle, c.round_the_clock_duty
            )
        },
    },
    SignalDef {
        name: "regular_arrivals",
        family: Family::Automation,
        only_redacted: false,
        value: |f, _, _| f.interarrival_cv,
        threshold: |c| c.regular_cv,
        fires: |f, c, _| {
            sustained(f, c) && f.interarrival_cv.is_finite() && f.interarrival_cv <= c.regular_cv
        },
        detail: |f, c, _| {
            format!(
                "inter-arrival coefficient of variation {:.2} (<= {:.2} is machine-regular)",
                f.interarrival_cv, c.regular_cv
            )
        },
    },
    SignalDef {
        name: "rate_limit_pressure",
        family: Family::Automation,
        only_redacted: false,
        value: |f, _, _| f.rate_429_share,
        threshold: |c| c.rate_limit_share,
        fires: |f, c, _| {
            f.rate_429_share >= c.rate_limit_share && f.rate_429_count >= c.rate_limit_min
        },
        detail: |f, c, _| {
            format!(
                "{} answers 429 ({:.1}%); needs >= {}",
                f.rate_429_count,
                100.0 * f.rate_429_share,
                c.rate_limit_min
            )
        },
    },
    SignalDef {
        name: "reasoning_elicitation",
        family: Family::Harvest,
        only_redacted: false,
        value: |f, _, _| f.reasoning_share,
        threshold: |c| c.reasoning_share,
        fires: |f, c, _| {
            f.reasoning_share >= c.reasoning_share
                && f.reasoning_count >= c.reasoning_min
                && f.reasoning_distinct >= c.reasoning_distinct
        },
        detail: |f, c, _| {
            format!(
                "{} of {} single-turn prompts ask for the reasoning trace, {:.0}% of them distinct (needs {:.0}%); languages: {}",
                f.reasoning_count,
                f.text_pool,
                100.0 * f.reasoning_distinct,
                100.0 * c.reasoning_distinct,
                languages(f.reasoning_languages)
            )
        },
    },
    SignalDef {
        name: "identity_probes",
        family: Family::Harvest,
        only_redacted: false,
        value: |f, _, _| f.probe_share,
        threshold: |c| c.probe_share,
        fires: |f, c, _| f.probe_share >= c.probe_share && f.probe_count >= c.probe_min,
        detail: |f, c, _| {
            format!(
                "{} model-identity probes; needs >= {}",
                f.probe_count, c.probe_min
            )
        },
    },
    SignalDef {
        name: "coverage_growth",
        family: Family::Harvest,
        only_redacted: false,
        value: |f, _, _| f.coverage_growth,
        threshold: |c| c.coverage_growth,
        fires: |f, c, _| {
            f.topic_prompts >= c.coverage_min_prompts
                && f.topic_breadth as usize >= c.topic_breadth
                && f.coverage_growth >= c.coverage_growth
        },
        detail: |f, c, _| {
            format!(
                "{} capability categories (needs {}), {:.0}% of them first reached after the first quarter of {} on-topic prompts (needs {})",
                f.topic_breadth,
                c.topic_breadth,
                100.0 * f.coverage_growth,
                f.topic_prompts,
                c.coverage_min_prompts
            )
        },
    },
    SignalDef {
        name: "templated_harvest",
        family: Family::Harvest,
        only_redacted: false,
        value: |f, _, _| f.harvest_template_share,
        threshold: |c| c.templated_share,
        fires: |f, c, _| {
            f.harvest_template_share >= c.templated_share
                && f.harvest_breadth as usize >= c.topic_breadth
                && f.harvest_completion_mean >= c.templated_completion_tokens
        },
        detail: |f, c, _| {
            format!(
                "{:.0}% of single-turn prompts in {} templates with new slot values each time, across {} categories (needs {}), {:.0} output tokens each (needs {:.0})",
                100.0 * f.harvest_template_share,
                f.templates,
                f.harvest_breadth,
                c.topic_breadth,
                f.harvest_completion_mean,
                c.templated_completion_tokens
            )
        },
    },
    SignalDef {
        name: "redacted_harvest",
        family: Family::Harvest,
        only_redacted: true,
        value: |f, _, _| f.completion_tokens_mean,
        threshold: |c| c.redacted_completion_tokens,
        fires: |f, c, _| {
            enough(f, c)
                && f.single_turn_share >= c.redacted_single_turn
                && novel_prompts(f, c)
                && f.completion_tokens_mean >= c.redacted_completion_tokens
        },
        detail: |f, c, _| {
            format!(
                "prompts redacted ({:.0}%): metadata proxy — single-turn {:.2} (needs {:.2}), distinct prompt hashes {:.2} (needs {:.2}) or {:.0} new prompts per day after the first day (needs {:.0}), {:.0} output tokens per request",
                100.0 * f.redacted_share,
                f.single_turn_share,
                c.redacted_single_turn,
                f.distinct_prompt_ratio,
                c.redacted_distinct,
                f.new_prompts_per_day,
                c.redacted_new_per_day,
                f.completion_tokens_mean
            )
        },
    },
    SignalDef {
        name: "top_logprobs_at_max",
        family: Family::OutputLayer,
        only_redacted: false,
        value: |f, _, _| f.top_logprobs_max_share,
        threshold: |c| c.logprob_max_share,
        fires: |f, c, _| enough(f, c) && f.top_logprobs_max_share >= c.logprob_max_share,
        detail: |_, c, _| {
            format!(
                "share of requests asking for top_logprobs >= {}",
                c.top_logprobs_max
            )
        },
    },
    SignalDef {
        name: "logit_bias_heavy",
        family: Family::OutputLayer,
        only_redacted: false,
        value: |f, _, _| f.logit_bias_share,
        threshold: |c| c.logit_bias_share,
        fires: |f, c, _| {
            enough(f, c)
                && f.logit_bias_share >= c.logit_bias_share
                && f.logit_bias_keys_mean >= c.logit_bias_keys
        },
        detail: |f, c, _| {
            format!(
                "{:.0} biased tokens per biased request (needs {:.0})",
                f.logit_bias_keys_mean, c.logit_bias_keys
            )
        },
    },
    SignalDef {
        name: "single_token_probe",
        family: Family::OutputLayer,
        only_redacted: false,
        value: |f, _, _| f.max_tokens1_share,
        threshold: |c| c.single_token_share,
        fires: |f, c, _| {
            enough(f, c)
                && f.max_tokens1_share >= c.single_token_share
                && f.top_logprobs_max_share >= c.logprob_max_share
        },
        detail: |f, _, _| {
            format!(
                "max_tokens <= 1 with top_logprobs at max; {:.0}% of prompts in the 10 largest templates",
                100.0 * f.top_template_share
            )
        },
    },
    SignalDef {
        name: "new_model_move",
        family: Family::Opportunism,
        only_redacted: false,
        value: |f, _, _| f.new_model_lag_hours,
        threshold: |c| c.new_model_lag_hours,
        fires: |f, c, _| {
            enough(f, c)
                && f.new_model_share >= c.new_model_share
                && f.new_model_lag_hours <= c.new_model_lag_hours
                && f.new_model_overlap >= c.new_model_overlap
        },
        detail: |f, c, _| {
            format!(
                "moved {:.0}% of traffic to a newly released model {:.1} h after release; prompt distribution overlap {:.2} (needs {:.2})",
                100.0 * f.new_model_share,
                f.new_model_lag_hours,
                f.new_model_overlap,
                c.new_model_overlap
            )
        },
    },
];

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
