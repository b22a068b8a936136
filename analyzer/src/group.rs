//! A cluster judged as a group of accounts rather than as one account.
//!
//! A cluster's merged traffic, scored as it is, counts its members' keys,
//! clients, addresses and volume as one account's: any cluster of a few
//! dozen ordinary customers (a classroom, a platform's tenants, a company's
//! team) then has the infrastructure and the round-the-clock volume of an
//! operator. The group's features keep what the members ask for together
//! (templates, topics, coverage, output shape: the job) from the merged
//! traffic, and take what counts an entity's own infrastructure, volume
//! and timing from its typical member (the median), so a benign cluster's
//! group looks like its members' kind of traffic.

use crate::features::Features;

/// The features of a group: `merged` (the members' traffic merged) with
/// its volume, timing and infrastructure, and its share of harvesting
/// templates (a bar counted per entity), replaced by the median member's
/// (`members`: each member's own features; unchanged when empty).
pub fn per_member(merged: &Features, members: &[&Features]) -> Features {
    let mut g = merged.clone();
    if members.is_empty() {
        return g;
    }
    let med = |get: fn(&Features) -> f64| median(members.iter().map(|f| get(f)).collect());
    // Whole counts as the lower median: a count no member exceeds by half.
    let count = |get: fn(&Features) -> f64| med(get).floor() as u32;
    g.requests_per_day = med(|f| f.requests_per_day);
    g.new_prompts_per_day = med(|f| f.new_prompts_per_day);
    g.active_hours = count(|f| f64::from(f.active_hours));
    g.hours_of_day = count(|f| f64::from(f.hours_of_day));
    g.duty_cycle = med(|f| f.duty_cycle);
    g.active_days_share = med(|f| f.active_days_share);
    g.interarrival_cv = med(|f| f.interarrival_cv);
    g.ips_per_request = med(|f| f.ips_per_request);
    g.blocks = count(|f| f64::from(f.blocks));
    g.user_agents = count(|f| f64::from(f.user_agents));
    g.keys = count(|f| f64::from(f.keys));
    // A template counts as harvesting at `template_min_requests` requests
    // with every slot new: a count per entity. Pooled, hundreds of pieces
    // pass it with templates no member sends that often, so the merged
    // share reads the pool's size (a batch job's templates), not the job.
    g.harvest_template_share = med(|f| f.harvest_template_share);
    g
}

/// The median of `v` (non-finite values sort last; 0 when empty).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
