//! Cross-account clustering: accounts linked by shared templates (MinHash
//! LSH over each account's template set), the same request shape (model,
//! output cap, system prompt and sampling flags: what a client program
//! sends, which survives rotating addresses and client strings), shared
//! source blocks (/24, /48), the same client and synchronized activity.
//! Candidate pairs come only from LSH bands, main request shapes and shared
//! blocks (never all pairs), so the cost grows with the accounts that
//! actually share something; buckets larger than `max_bucket` are too
//! generic to link by and are skipped. Linked components are split into
//! communities (`community.rs`) before they are clusters, so a benign group
//! chained to a campaign through a few links is judged apart from it.
//!
//! What accounts ask is compared twice: template sets (MinHash) and, more
//! loosely and paraphrase-proof, their mix of capability categories (half
//! a link). Timing is compared by hour; a minute-scale interleaving test
//! was tried and dropped: when a load balancer spreads one queue over many
//! keys at random, each key's requests are a thinning of the queue, so how
//! often two keys' requests fall in the same minute is exactly what their
//! rates while active predict — the information is in sharing the active
//! hours, which the hourly vectors already measure.

use crate::community::{WeightedLink, communities};
use crate::config::AnalyzerConfig;
use crate::features::{Context, HOUR_MS};
use crate::requests::{Req, Requests, flag};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What an account brings to linking.
struct Profile {
    minhash: Vec<u64>,
    has_templates: bool,
    blocks: Vec<u32>,
    ua: u32,
    activity: HashMap<i64, f64>,
    norm: f64,
    /// Request shapes and their shares, largest first.
    shapes: Vec<(u64, f64)>,
    /// Distinct exact source addresses (hashes, sorted; at most
    /// [`MAX_ADDRESSES`]).
    addresses: Vec<u32>,
    /// Share of on-topic single-turn prompts per capability category.
    topics: Vec<f64>,
    /// On-topic single-turn prompts.
    topic_prompts: u32,
}

/// Cosine similarity of two topic mixes (0 when either has too few
/// on-topic prompts to have a mix).
fn topic_similarity(a: &Profile, b: &Profile, min_prompts: u32) -> f64 {
    if a.topic_prompts < min_prompts || b.topic_prompts < min_prompts {
        return 0.0;
    }
    let dot: f64 = a.topics.iter().zip(&b.topics).map(|(x, y)| x * y).sum();
    let na: f64 = a.topics.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.topics.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Addresses kept per profile: enough to find a shared proxy pool, bounded
/// whatever the traffic.
const MAX_ADDRESSES: usize = 512;

/// Distinct exact addresses two accounts share.
fn shared_addresses(a: &Profile, b: &Profile) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.addresses.len() && j < b.addresses.len() {
        match a.addresses[i].cmp(&b.addresses[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Flags that belong to a request's shape (what the client program sets).
const SHAPE_FLAGS: u16 = flag::LOGPROBS
    | flag::TEMP0
    | flag::N_GT1
    | flag::MAX1
    | flag::SINGLE_TURN
    | flag::EMBED
    | flag::TOPLP_MAX
    | flag::LOGIT_BIAS
    | flag::SYSTEM_PROMPT;

/// The shape of a request: model, output cap, system prompt, shape flags.
fn shape(r: &Req) -> u64 {
    let mut b = [0u8; 7];
    b[..2].copy_from_slice(&r.model.to_le_bytes());
    b[2] = r.max_tokens_bits;
    b[3..5].copy_from_slice(&r.system_prompt.to_le_bytes());
    b[5..7].copy_from_slice(&(r.flags & SHAPE_FLAGS).to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&b)
}

/// Histogram intersection of two shape distributions (1: the same mix).
fn shape_overlap(a: &Profile, b: &Profile) -> f64 {
    a.shapes
        .iter()
        .map(|(s, p)| {
            b.shapes
                .iter()
                .find(|(t, _)| t == s)
                .map_or(0.0, |(_, q)| p.min(*q))
        })
        .sum()
}

/// Why two accounts were linked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkStats {
    /// Links with similar template sets.
    pub shared_templates: u64,
    /// Links sharing a main source block or exact addresses.
    pub shared_blocks: u64,
    /// Links with the same main client.
    pub same_client: u64,
    /// Links with synchronized hourly activity.
    pub synchronized: u64,
    /// Links with the same mix of request shapes.
    pub same_shape: u64,
    /// Links asking about the same mix of capability categories.
    pub same_topic_mix: u64,
    /// All links.
    pub links: u64,
    /// Mean estimated template Jaccard over links.
    pub mean_template_jaccard: f64,
    /// Mean hourly-activity cosine over links.
    pub mean_sync_cosine: f64,
}

/// A community of linked accounts (a linked component, split where it is
/// only chained together: `community.rs`).
#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    /// Stable id derived from the members.
    pub id: String,
    /// Member account indices.
    pub members: Vec<u32>,
    /// Why they are linked.
    pub links: LinkStats,
    /// Members linked to another member by a shared source block or
    /// shared exact addresses (sorted).
    pub placed: Vec<u32>,
    /// The links between members (sorted).
    #[serde(skip)]
    pub edges: Vec<Edge>,
}

/// A link between two members of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The smaller member id (as in [`Cluster::members`]).
    pub a: u32,
    /// The larger member id.
    pub b: u32,
    /// The two share a main source block or exact addresses and send
    /// through the same main client: one machinery's traffic (a job split
    /// into pieces, each piece keeping its operator's addresses and client
    /// program).
    pub machinery: bool,
}

fn profile(reqs: &[&Req], ctx: &Context, cfg: &AnalyzerConfig) -> Profile {
    let k = cfg.lsh_bands * cfg.lsh_rows;
    let mut counts: HashMap<u64, u32> = HashMap::default();
    let mut blocks: HashMap<u32, u32> = HashMap::default();
    let mut uas: HashMap<u32, u32> = HashMap::default();
    let mut activity: HashMap<i64, f64> = HashMap::default();
    let mut shapes: HashMap<u64, u32> = HashMap::default();
    let mut addresses: HashSet<u32> = HashSet::default();
    let mut topics = vec![0.0f64; crate::text::TAXONOMY.len()];
    let mut topic_prompts = 0u32;
    for r in reqs {
        if r.template != 0 && r.has(flag::SINGLE_TURN) {
            *counts.entry(u64::from(r.template)).or_default() += 1;
        }
        *blocks.entry(r.block).or_default() += 1;
        *uas.entry(r.ua).or_default() += 1;
        *shapes.entry(shape(r)).or_default() += 1;
        if addresses.len() < MAX_ADDRESSES {
            addresses.insert(r.ip);
        }
        if r.topic != 0
            && r.has(flag::SINGLE_TURN)
            && let Some(t) = topics.get_mut(usize::from(r.topic) - 1)
        {
            *t += 1.0;
            topic_prompts += 1;
        }
        *activity.entry(hour_slot(r.ts, ctx)).or_default() += 1.0;
    }
    let templates: Vec<u64> = counts
        .into_iter()
        .filter(|(_, c)| *c >= 2)
        .map(|(t, _)| t)
        .collect();
    let minhash = (0..k as u64)
        .map(|seed| {
            templates
                .iter()
                .map(|t| xxh3_64_with_seed(&t.to_le_bytes(), seed))
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect();
    let n = reqs.len().max(1) as u32;
    let mut main_blocks: Vec<(u32, u32)> =
        blocks.into_iter().filter(|(_, c)| c * 10 >= n).collect();
    main_blocks.sort_by_key(|b| std::cmp::Reverse(b.1));
    main_blocks.truncate(5);
    let ua = uas
        .into_iter()
        .max_by_key(|(u, c)| (*c, u32::MAX - u))
        .map_or(0, |x| x.0);
    let norm = activity.values().map(|v| v * v).sum::<f64>().sqrt();
    let mut shapes: Vec<(u64, f64)> = shapes
        .into_iter()
        .map(|(s, c)| (s, f64::from(c) / f64::from(n)))
        .filter(|(_, p)| *p >= 0.02)
        .collect();
    shapes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    shapes.truncate(16);
    let mut addresses: Vec<u32> = addresses.into_iter().collect();
    addresses.sort_unstable();
    if topic_prompts > 0 {
        topics
            .iter_mut()
            .for_each(|t| *t /= f64::from(topic_prompts));
    }
    Profile {
        topics,
        topic_prompts,
        shapes,
        addresses,
        minhash,
        has_templates: !templates.is_empty(),
        blocks: main_blocks.into_iter().map(|b| b.0).collect(),
        ua,
        activity,
        norm,
    }
}

fn cosine(a: &Profile, b: &Profile) -> f64 {
    sparse_cosine(&a.activity, a.norm, &b.activity, b.norm)
}

/// The hour slot of time `ts` in an input spanning `ctx`: whole hours from
/// its start, folded onto the hour of the week over inputs longer than 60
/// days so activity vectors stay small.
pub(crate) fn hour_slot(ts: i64, ctx: &Context) -> i64 {
    let h = (ts - ctx.start) / HOUR_MS;
    if (ctx.end - ctx.start) / HOUR_MS > 24 * 60 {
        h % 168
    } else {
        h
    }
}

/// Cosine of two sparse vectors given their Euclidean norms (0 when
/// either is empty).
pub(crate) fn sparse_cosine<K: std::hash::Hash + Eq>(
    a: &HashMap<K, f64>,
    a_norm: f64,
    b: &HashMap<K, f64>,
    b_norm: f64,
) -> f64 {
    if a_norm <= 0.0 || b_norm <= 0.0 {
        return 0.0;
    }
    let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let dot: f64 = small
        .iter()
        .map(|(k, v)| v * big.get(k).copied().unwrap_or(0.0))
        .sum();
    dot / (a_norm * b_norm)
}

fn jaccard(a: &Profile, b: &Profile) -> f64 {
    if !a.has_templates || !b.has_templates {
        return 0.0;
    }
    let same = a
        .minhash
        .iter()
        .zip(&b.minhash)
        .filter(|(x, y)| x == y)
        .count();
    same as f64 / a.minhash.len().max(1) as f64
}

/// A judged pair of accounts.
#[derive(Clone, Copy)]
struct Link {
    a: u32,
    b: u32,
    /// Link score (see `AnalyzerConfig::link_score`).
    score: f64,
    /// Estimated template Jaccard.
    jaccard: f64,
    /// Hourly-activity cosine.
    cosine: f64,
    /// Which kinds of evidence hold ([`LinkStats`] order).
    kinds: [bool; 6],
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// Link accounts, split the linked components into communities and return
/// those of at least `min_cluster_size`.
/// `accounts[i]` are account i's requests, time-ordered.
pub fn clusters(
    store: &Requests,
    accounts: &[&[Req]],
    ctx: &Context,
    cfg: &AnalyzerConfig,
) -> Vec<Cluster> {
    let profiles: Vec<Option<Profile>> =
        crate::par::map(accounts, crate::par::threads(cfg.threads), |reqs| {
            (reqs.len() >= MIN_PROFILE).then(|| profile(&reqs.iter().collect::<Vec<_>>(), ctx, cfg))
        });
    let name = |m: u32| store.accounts.names[m as usize].clone();
    link(&profiles, |_, _| false, name, "cl", cfg)
}

/// Link entities that are parts of accounts — `entities[i]`, time-ordered
/// requests, all of account `owner[i]` — as [`clusters`] links accounts,
/// never two parts of one account; a cluster's `members` (and `placed`)
/// are indices into `entities`, its id (prefixed `prefix`) is derived from
/// the members' `names`.
pub(crate) fn clusters_of_parts(
    entities: &[Vec<&Req>],
    owner: &[u32],
    name: impl Fn(u32) -> String,
    prefix: &str,
    ctx: &Context,
    cfg: &AnalyzerConfig,
) -> Vec<Cluster> {
    let profiles: Vec<Option<Profile>> =
        crate::par::map(entities, crate::par::threads(cfg.threads), |reqs| {
            (reqs.len() >= MIN_PROFILE).then(|| profile(reqs, ctx, cfg))
        });
    let same_owner = |x: u32, y: u32| owner[x as usize] == owner[y as usize];
    link(&profiles, same_owner, name, prefix, cfg)
}

/// Fewest requests an entity needs to be linked.
const MIN_PROFILE: usize = 5;

/// Link the entities with a profile, never a pair `apart` says to keep
/// apart, split the linked components into communities and return those
/// of at least `min_cluster_size`, named by their members' `name`s.
fn link(
    profiles: &[Option<Profile>],
    apart: impl Fn(u32, u32) -> bool,
    name: impl Fn(u32) -> String,
    prefix: &str,
    cfg: &AnalyzerConfig,
) -> Vec<Cluster> {
    // Candidate pairs from LSH bands and shared blocks.
    let mut buckets: HashMap<(u8, u64), Vec<u32>> = HashMap::default();
    for (a, p) in profiles.iter().enumerate() {
        let Some(p) = p else { continue };
        if p.has_templates {
            for (band, rows) in p.minhash.chunks(cfg.lsh_rows.max(1)).enumerate() {
                let mut bytes = Vec::with_capacity(rows.len() * 8);
                rows.iter()
                    .for_each(|r| bytes.extend_from_slice(&r.to_le_bytes()));
                buckets
                    .entry((1, xxh3_64_with_seed(&bytes, band as u64)))
                    .or_default()
                    .push(a as u32);
            }
        }
        for &b in &p.blocks {
            buckets.entry((2, u64::from(b))).or_default().push(a as u32);
        }
        for &ip in &p.addresses {
            buckets
                .entry((4, u64::from(ip)))
                .or_default()
                .push(a as u32);
        }
        if let Some(&(main, share)) = p.shapes.first()
            && share >= 0.5
        {
            buckets.entry((3, main)).or_default().push(a as u32);
        }
    }
    let mut pairs: HashSet<(u32, u32)> = HashSet::default();
    for members in buckets.values() {
        if members.len() < 2 || members.len() > cfg.max_bucket {
            continue;
        }
        for (i, &x) in members.iter().enumerate() {
            for &y in &members[i + 1..] {
                if !apart(x, y) {
                    pairs.insert((x.min(y), x.max(y)));
                }
            }
        }
    }
    let mut parent: Vec<u32> = (0..profiles.len() as u32).collect();
    let mut edges: Vec<Link> = Vec::new();
    let mut weak: Vec<Link> = Vec::new();
    let mut pairs: Vec<(u32, u32)> = pairs.into_iter().collect();
    pairs.sort_unstable();
    // Each candidate pair is judged on all threads (the costly part: the
    // hourly cosine alone walks a map); links are made in pair order.
    let judge = |&(x, y): &(u32, u32)| -> Option<(f64, f64, f64, [bool; 6])> {
        let (Some(a), Some(b)) = (&profiles[x as usize], &profiles[y as usize]) else {
            return None;
        };
        let j = jaccard(a, b);
        let c = cosine(a, b);
        let addresses = shared_addresses(a, b);
        let source = if a.blocks.iter().any(|blk| b.blocks.contains(blk))
            || addresses >= cfg.shared_addresses
        {
            1.0
        } else if addresses > 0 {
            0.5
        } else {
            0.0
        };
        let sync = if c >= cfg.sync_cosine {
            1.0
        } else if c >= cfg.loose_sync_cosine {
            0.5
        } else {
            0.0
        };
        let kinds = [
            j >= cfg.template_jaccard,
            source > 0.0,
            a.ua == b.ua,
            sync > 0.0,
            shape_overlap(a, b) >= cfg.shape_overlap,
            topic_similarity(a, b, cfg.topic_mix_min_prompts) >= cfg.topic_mix_cosine,
        ];
        let score = f64::from(u8::from(kinds[0]))
            + source
            + 0.5 * f64::from(u8::from(kinds[2]))
            + sync
            + f64::from(u8::from(kinds[4]))
            + 0.5 * f64::from(u8::from(kinds[5]));
        Some((score, j, c, kinds))
    };
    let batches: Vec<&[(u32, u32)]> = pairs.chunks(1024).collect();
    let judged = crate::par::map(&batches, crate::par::threads(cfg.threads), |batch| {
        batch.iter().map(judge).collect::<Vec<_>>()
    });
    for (&(x, y), judged) in pairs.iter().zip(judged.into_iter().flatten()) {
        let Some((score, j, c, kinds)) = judged else {
            continue;
        };
        let link = Link {
            a: x,
            b: y,
            score,
            jaccard: j,
            cosine: c,
            kinds,
        };
        if score >= cfg.link_score {
            let (rx, ry) = (find(&mut parent, x), find(&mut parent, y));
            if rx != ry {
                parent[rx.max(ry) as usize] = rx.min(ry);
            }
            edges.push(link);
        } else if score >= cfg.link_score - 0.5 {
            weak.push(link);
        }
    }
    // An account left alone with near-links (half a point short) to
    // several members of one cluster joins it: one near-link is chance,
    // `attach_links` of them into the same group are not (a sparse member
    // of a large campaign shows only part of its evidence to each peer).
    let mut size: HashMap<u32, usize> = HashMap::default();
    for a in 0..profiles.len() as u32 {
        *size.entry(find(&mut parent, a)).or_default() += 1;
    }
    let mut near: HashMap<(u32, u32), Vec<usize>> = HashMap::default();
    for (i, &Link { a: x, b: y, .. }) in weak.iter().enumerate() {
        let (rx, ry) = (find(&mut parent, x), find(&mut parent, y));
        if rx == ry {
            continue;
        }
        for (alone, root, other) in [(x, ry, rx), (y, rx, ry)] {
            if size[&other] == 1 && size[&root] >= cfg.min_cluster_size.max(2) {
                near.entry((alone, root)).or_default().push(i);
            }
        }
    }
    let mut near: Vec<((u32, u32), Vec<usize>)> = near
        .into_iter()
        .filter(|(_, links)| links.len() >= cfg.attach_links.max(1))
        .collect();
    near.sort_unstable();
    for ((alone, root), links) in near {
        if find(&mut parent, alone) == alone && size.get(&alone) == Some(&1) {
            parent[alone as usize] = root;
            size.insert(alone, 0);
            edges.extend(links.into_iter().map(|i| weak[i]));
        }
    }
    // Linked components are split into communities (`community.rs`): a
    // member belongs with the accounts it is most linked to, not with
    // everything one chain of single links reaches.
    let weighted: Vec<WeightedLink> = edges
        .iter()
        .map(|l| WeightedLink {
            a: l.a,
            b: l.b,
            weight: l.score,
        })
        .collect();
    let split = if cfg.community_resolution > 0.0 {
        communities(profiles.len(), &weighted, cfg.community_resolution)
            .inspect_err(|e| tracing::warn!("clusters are whole linked components: {e}"))
            .ok()
    } else {
        None
    };
    let community = split.unwrap_or_else(|| {
        (0..profiles.len() as u32)
            .map(|a| find(&mut parent, a))
            .collect()
    });
    let mut groups: HashMap<u32, Vec<u32>> = HashMap::default();
    for (a, &c) in community.iter().enumerate() {
        groups.entry(c).or_default().push(a as u32);
    }
    let mut stats: HashMap<u32, LinkStats> = HashMap::default();
    let mut placed: HashSet<u32> = HashSet::default();
    let mut inner: HashMap<u32, Vec<Edge>> = HashMap::default();
    for l in &edges {
        let r = community[l.a as usize];
        if community[l.b as usize] != r {
            continue;
        }
        inner.entry(r).or_default().push(Edge {
            a: l.a.min(l.b),
            b: l.a.max(l.b),
            machinery: l.kinds[1] && l.kinds[2],
        });
        let (j, c, kinds) = (&l.jaccard, &l.cosine, &l.kinds);
        if kinds[1] {
            placed.extend([l.a, l.b]);
        }
        let s = stats.entry(r).or_default();
        s.links += 1;
        s.shared_templates += u64::from(kinds[0]);
        s.shared_blocks += u64::from(kinds[1]);
        s.same_client += u64::from(kinds[2]);
        s.synchronized += u64::from(kinds[3]);
        s.same_shape += u64::from(kinds[4]);
        s.same_topic_mix += u64::from(kinds[5]);
        s.mean_template_jaccard += j;
        s.mean_sync_cosine += c;
    }
    let mut out: Vec<Cluster> = groups
        .into_iter()
        .filter(|(_, m)| m.len() >= cfg.min_cluster_size.max(2))
        .map(|(root, members)| {
            let mut links = stats.remove(&root).unwrap_or_default();
            if links.links > 0 {
                links.mean_template_jaccard /= links.links as f64;
                links.mean_sync_cosine /= links.links as f64;
            }
            let mut names: Vec<String> = members.iter().map(|&m| name(m)).collect();
            names.sort_unstable();
            let id = format!(
                "{prefix}-{:012x}",
                xxhash_rust::xxh3::xxh3_64(names.join("\n").as_bytes()) >> 16
            );
            let mut placed: Vec<u32> = members
                .iter()
                .copied()
                .filter(|m| placed.contains(m))
                .collect();
            placed.sort_unstable();
            let mut edges = inner.remove(&root).unwrap_or_default();
            edges.sort_unstable();
            edges.dedup_by_key(|e| (e.a, e.b));
            Cluster {
                id,
                members,
                links,
                placed,
                edges,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}
