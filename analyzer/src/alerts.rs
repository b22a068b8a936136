//! EVE `alert` events for flagged accounts (`distillation`) and clusters
//! (`distillation_cluster`), with the evidence an analyst reads: the model's
//! score, threshold and largest contributions (input, value, peer
//! baseline, part of the log-odds), signals with values and thresholds,
//! benign explanations ruled out, sample prompts
//! (truncated, optionally replaced by their hash) and the time range. An
//! alert is stamped at the moment its verdict first held ([`crate::onset`]),
//! with that moment, the end of the window analysed and the time to detect
//! in its evidence.

use crate::analysis::{AccountResult, Analysis, ClusterResult, Condemned, Via};
use crate::config::AnalyzerConfig;
use crate::features::{Features, HOUR_MS};
use crate::model::Model;
use crate::onset::{Onset, Replay};
use crate::parts::PartKey;
use crate::requests::{Requests, Sample};
use crate::score::Verdict;
use crate::slices::Slicing;
use eve::event::{Alert, AlertCategory, AlertEvent, Event, EventKind, Evidence};
use eve::time::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Signature id of the per-account alert.
pub const SID_ACCOUNT: u32 = 3_000_001;
/// Signature id of the cluster alert.
pub const SID_CLUSTER: u32 = 3_000_002;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_micros(ms.saturating_mul(1000))
}

fn verdict_evidence(e: &mut Evidence, v: &Verdict, f: &Features) {
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    e.insert("score".into(), json!(r3(v.score)));
    e.insert("threshold".into(), json!(r3(v.threshold)));
    e.insert("model_mode".into(), json!(v.model_mode));
    let contributions: Vec<Value> = v
        .contributions
        .iter()
        .map(|c| {
            json!({
                "input": c.input,
                "family": c.family.name(),
                "value": r3(c.value),
                "baseline": r3(c.baseline),
                "contribution": r3(c.contribution),
            })
        })
        .collect();
    e.insert("contributions".into(), Value::Array(contributions));
    e.insert(
        "families".into(),
        json!(v.families.iter().map(|f| f.name()).collect::<Vec<_>>()),
    );
    let fired: Vec<Value> = v
        .fired()
        .map(|s| json!({"name": s.name, "family": s.family.name(), "value": (s.value * 1000.0).round() / 1000.0, "threshold": s.threshold, "detail": s.detail}))
        .collect();
    e.insert("signals".into(), Value::Array(fired));
    let not_fired: Vec<&str> = v
        .signals
        .iter()
        .filter(|s| !s.fired)
        .map(|s| s.name)
        .collect();
    e.insert("signals_not_fired".into(), json!(not_fired));
    let mut ruled_out = serde_json::Map::new();
    let mut open = serde_json::Map::new();
    for b in &v.benign {
        if b.ruled_out {
            ruled_out.insert(b.name.into(), json!(b.because));
        } else {
            open.insert(b.name.into(), json!(b.because));
        }
    }
    e.insert("benign_ruled_out".into(), Value::Object(ruled_out));
    e.insert("benign_not_ruled_out".into(), Value::Object(open));
    e.insert(
        "time_range".into(),
        json!({"first": ts(f.first_ts).to_string(), "last": ts(f.last_ts).to_string()}),
    );
    e.insert(
        "requests_per_hour".into(),
        json!({
            "start": ts(f.series.start_ms).to_string(),
            "step_hours": f.series.step_hours,
            "counts": f.series.counts,
        }),
    );
    e.insert(
        "volume".into(),
        json!({
            "requests": f.requests,
            "requests_per_day": f.requests_per_day.round(),
            "completion_tokens_mean": f.completion_tokens_mean.round(),
            "active_hours": f.active_hours,
            "keys": f.keys,
            "source_blocks": f.blocks,
            "user_agents": f.user_agents,
        }),
    );
    e.insert("prompts_redacted".into(), json!(v.redacted));
    if v.redacted {
        e.insert(
            "note".into(),
            json!(format!(
                "prompt text redacted for {:.0}% of requests: text signals (templates, topics, phrase sets) unavailable; judged on metadata and prompt_sha256 only",
                100.0 * f.redacted_share
            )),
        );
    }
}

/// When the verdict first held, the end of the window analysed, and the
/// time to detect (hours and requests from the entity's first request).
fn onset_evidence(e: &mut Evidence, o: &Onset, f: &Features, window_end: i64) {
    e.insert("detected_at".into(), json!(ts(o.at).to_string()));
    e.insert("window_end".into(), json!(ts(window_end).to_string()));
    let hours = (o.at - f.first_ts).max(0) as f64 / HOUR_MS as f64;
    e.insert(
        "time_to_detect".into(),
        json!({
            "hours": (hours * 10.0).round() / 10.0,
            "requests": o.requests,
            "method": if o.replayed {
                "first request at which the entity's cumulative traffic scored over the threshold (checkpoints every window_hours, then bisection)"
            } else {
                "held only on the whole input: stamped at the window end"
            },
        }),
    );
}

fn samples(s: &[Sample], cfg: &AnalyzerConfig) -> Value {
    Value::Array(
        s.iter()
            .take(cfg.sample_prompts.max(1) * 3)
            .map(|x| {
                let text = if cfg.redact_samples {
                    format!("sha256:{:x}", Sha256::digest(x.text.as_bytes()))
                } else {
                    x.text.clone()
                };
                json!({"ts": ts(x.ts).to_string(), "kind": x.why, "prompt": text})
            })
            .collect(),
    )
}

fn severity(v: &Verdict) -> u8 {
    if v.score >= 0.9 { 1 } else { 2 }
}

/// The `distillation` alert of one flagged account, stamped when its
/// verdict first held.
pub fn account_alert(
    a: &AccountResult,
    store: &Requests,
    cfg: &AnalyzerConfig,
    replay: &Replay<'_>,
) -> Event {
    let mut e = Evidence::new();
    verdict_evidence(&mut e, &a.verdict, &a.features);
    let onset = replay.account(a);
    onset_evidence(&mut e, &onset, &a.features, replay.window_end());
    let via = match &a.via {
        Via::Account => "account".to_string(),
        Via::ApiKey(k) => format!("api_key:{k}"),
        Via::Client(c) => format!("client:{c}"),
        Via::Part(p) => format!("part:{p}"),
        Via::Cluster(c) => format!("cluster:{c}"),
        Via::Joined(j) => format!("joined:{j}"),
    };
    e.insert("decided_by".into(), json!(via));
    let s = store
        .samples
        .get(a.index as usize)
        .map_or(&[][..], |v| v.as_slice());
    e.insert("sample_prompts".into(), samples(s, cfg));
    let mut body = AlertEvent::new(
        Alert::new(
            "WEIGHTWATCH distillation: account traffic looks like model extraction",
            SID_ACCOUNT,
            AlertCategory::Distillation,
            severity(&a.verdict),
        ),
        e,
    );
    body.account_id = Some(a.account_id.clone());
    body.cluster_id = a.cluster_id.clone();
    let name = format!("distillation|{}|{}", a.account_id, a.features.first_ts);
    Event::with_derived_id(ts(onset.at), EventKind::Alert(Box::new(body)), &name)
}

/// The `distillation_cluster` alert of one flagged cluster, stamped when
/// its verdict first held.
pub fn cluster_alert(
    c: &ClusterResult,
    analysis: &Analysis,
    store: &Requests,
    cfg: &AnalyzerConfig,
    replay: &Replay<'_>,
) -> Event {
    let mut e = Evidence::new();
    let (verdict, features) = c.deciding();
    verdict_evidence(&mut e, verdict, features);
    let onset = replay.cluster(c);
    onset_evidence(&mut e, &onset, features, replay.window_end());
    e.insert("member_count".into(), json!(c.cluster.members.len()));
    e.insert(
        "members_with_content_signal".into(),
        json!(c.members_with_content),
    );
    e.insert(
        "links".into(),
        serde_json::to_value(&c.cluster.links).unwrap_or(Value::Null),
    );
    e.insert(
        "condemned".into(),
        json!(condemned_because(c, analysis, cfg)),
    );
    let per_member_max = c
        .cluster
        .members
        .iter()
        .filter_map(|&m| analysis.accounts.get(m as usize))
        .map(|a| a.features.requests_per_day)
        .fold(0.0, f64::max);
    let note = match c.condemns {
        Some(Condemned::Small(_)) => format!(
            "scored as a group: the median member sends {:.0} requests/day, the busiest {:.0}, the members together {:.0}",
            c.group_features.requests_per_day, per_member_max, c.features.requests_per_day
        ),
        _ => format!(
            "scored as one entity: the busiest member sends {:.0} requests/day, the cluster {:.0}",
            per_member_max, c.features.requests_per_day
        ),
    };
    e.insert("note".into(), json!(note));
    if c.slicing == Slicing::Setting {
        let mut settings: Vec<String> = c
            .clients
            .iter()
            .flatten()
            .map(|&k| PartKey::from_bits(k).describe(store))
            .collect();
        settings.sort_unstable();
        settings.dedup();
        e.insert(
            "setting_slices".into(),
            json!({
                "note": "one minority client setting of each member, asking differently from the rest of its account (a job run behind the account's own clients); the cluster's traffic is those settings' requests only",
                "settings": settings,
            }),
        );
    } else if !c.clients.is_empty() {
        let mut uas: Vec<&str> = c
            .clients
            .iter()
            .flatten()
            .filter_map(|&k| store.uas.names.get((k >> 16) as usize))
            .map(String::as_str)
            .collect();
        uas.sort_unstable();
        uas.dedup();
        e.insert(
            "client_slices".into(),
            json!({
                "note": "linked through a minority client program of each member (a script run inside several accounts' keys); the cluster's traffic is those clients' requests only",
                "user_agents": uas,
            }),
        );
    }
    let mut s: Vec<Sample> = Vec::new();
    for &m in c.cluster.members.iter().take(cfg.sample_prompts.max(1)) {
        if let Some(x) = store.samples.get(m as usize).and_then(|v| v.first()) {
            s.push(x.clone());
        }
    }
    e.insert("sample_prompts".into(), samples(&s, cfg));
    let mut members: Vec<String> = c
        .cluster
        .members
        .iter()
        .map(|&m| store.accounts.names[m as usize].clone())
        .collect();
    members.sort();
    let mut body = AlertEvent::new(
        Alert::new(
            "WEIGHTWATCH distillation cluster: coordinated accounts extracting the model together",
            SID_CLUSTER,
            AlertCategory::DistillationCluster,
            1,
        ),
        e,
    );
    body.cluster_id = Some(c.cluster.id.clone());
    body.members = Some(members);
    let name = format!(
        "distillation_cluster|{}|{}",
        c.cluster.id, c.features.first_ts
    );
    Event::with_derived_id(ts(onset.at), EventKind::Alert(Box::new(body)), &name)
}

/// Why a flagged cluster's members take its verdict, in words.
fn condemned_because(c: &ClusterResult, analysis: &Analysis, cfg: &AnalyzerConfig) -> String {
    let n = c.cluster.members.len();
    let took = c
        .cluster
        .members
        .iter()
        .filter_map(|&m| analysis.accounts.get(m as usize))
        .filter(|a| a.via == Via::Cluster(c.cluster.id.clone()))
        .count();
    if !c.clients.is_empty() {
        let rule = match c.condemns {
            Some(Condemned::All) => format!(
                "the merged slices flagged, {} of {n} members' slices score at least the member bar on their own",
                c.members_with_content
            ),
            Some(Condemned::Placed(bar)) => format!(
                "the merged slices flagged, {} of {} links share source blocks or addresses, members behind them scoring {bar}",
                c.cluster.links.shared_blocks, c.cluster.links.links
            ),
            Some(Condemned::Small(bar)) => format!(
                "most members' slices send fewer than {bar} requests; judged as a group and flagged"
            ),
            None => return "not condemned".into(),
        };
        let what = match c.slicing {
            Slicing::Client => "client slices linked",
            Slicing::Setting => "setting slices of one setting",
        };
        return format!(
            "{what} across {n} accounts: {rule}; {took} of {n} hosts not flagged already take the verdict (those whose slices are too small to be judged alone or score {} on their own)",
            cfg.cluster_shared_member_score
        );
    }
    match c.condemns {
        Some(Condemned::All) => {
            let judged = c
                .cluster
                .members
                .iter()
                .filter_map(|&m| analysis.accounts.get(m as usize))
                .filter(|a| a.features.requests >= cfg.min_requests)
                .count();
            format!(
                "merged traffic flagged; {} of {n} members score at least the member bar on their own; {judged} members send at least {} requests (a smaller member that scores under the bar is too small to be judged and is not counted); {took} of {n} members not flagged already take the verdict (a member under the bar that sends at least {} requests only when attached: at least two of its links, and most of them, go to members over the bar or attached to them)",
                c.members_with_content, cfg.min_requests, cfg.min_requests
            )
        }
        Some(Condemned::Placed(bar)) => format!(
            "merged traffic flagged; {} of {} links share source blocks or addresses; the members behind them scoring {bar} on their own take the verdict",
            c.cluster.links.shared_blocks, c.cluster.links.links
        ),
        Some(Condemned::Small(bar)) => {
            let small = c
                .cluster
                .members
                .iter()
                .filter_map(|&m| analysis.accounts.get(m as usize))
                .filter(|a| a.features.requests < bar)
                .count();
            format!(
                "{small} of {n} members send fewer than {bar} requests, too few to be judged alone; judged as a group (the merged traffic's content, each member's own volume, timing and infrastructure: median member) and flagged (merged traffic scores {:.3}); those members take the group's verdict",
                c.verdict.score
            )
        }
        None => "not condemned".into(),
    }
}

/// All alerts of an analysis: each flagged cluster once, and each account
/// flagged on its own (or through a key). Members flagged only through their
/// cluster are listed in the cluster alert rather than alerted one by one.
/// `model` is the one the analysis was judged by (the replays that find
/// when each verdict first held judge by it too).
pub fn all(
    analysis: &Analysis,
    store: &Requests,
    cfg: &AnalyzerConfig,
    model: &Model,
) -> Vec<Event> {
    let replay = Replay::new(store, analysis, cfg, model);
    let clusters: Vec<&ClusterResult> = analysis.clusters.iter().filter(|c| c.flagged).collect();
    let accounts: Vec<&AccountResult> = analysis
        .accounts
        .iter()
        .filter(|a| a.flagged() && !matches!(a.via, Via::Cluster(_)))
        .collect();
    // Each alert replays its own entity's traffic: in parallel, clusters
    // and accounts in one queue, the most requests first, so no thread
    // waits for the last large cluster while the other has nothing left.
    let jobs: Vec<Entity<'_>> = clusters
        .into_iter()
        .map(Entity::Cluster)
        .chain(accounts.into_iter().map(Entity::Account))
        .collect();
    let rows = |job: &Entity<'_>| match job {
        Entity::Cluster(c) => c
            .cluster
            .members
            .iter()
            .map(|&m| store.account_reqs(m as usize).len())
            .sum(),
        Entity::Account(a) => store.account_reqs(a.index as usize).len(),
    };
    crate::par::map_largest_first(
        &jobs,
        crate::par::threads(cfg.threads),
        rows,
        |job| match job {
            Entity::Cluster(c) => cluster_alert(c, analysis, store, cfg, &replay),
            Entity::Account(a) => account_alert(a, store, cfg, &replay),
        },
    )
}

/// What one alert is about.
enum Entity<'a> {
    Cluster(&'a ClusterResult),
    Account(&'a AccountResult),
}
