//! Egress byte budgets: bytes each internal host, and each (internal host,
//! destination) pair, may send to destinations the policy does not allow
//! within several rolling windows (`[[policy.budgets]]`, e.g. 1 min, 1 h,
//! 24 h). Counters are shared by every worker; each window is 60 buckets, so
//! a key costs a few hundred bytes per budget, and keys idle longer than the
//! longest window are dropped once `max_tracked_pairs` is reached.
//!
//! A flow stops feeding the budgets after it raised a budget alert (the
//! engine ends a flow scan at its finding): later bytes of that flow count
//! toward no budget.

use super::egress::{Egress, Policy};
use super::{Finding, FlowDetector, FlowScan, FlowView, sig};
use crate::detect::SharedMap;
use eve::{AlertCategory, Evidence};
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

/// One `[[policy.budgets]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Window length, seconds (at most 30 days).
    pub window_secs: u64,
    /// Bytes one internal host may send within the window (0: no host budget).
    #[serde(default)]
    pub host_bytes: u64,
    /// Bytes one (internal host, destination) pair may carry within the
    /// window (0: no pair budget).
    #[serde(default)]
    pub pair_bytes: u64,
}

const BUCKETS: i64 = 60;

/// What a budget is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Host(IpAddr),
    Pair(IpAddr, IpAddr),
}

/// One window's buckets: (bucket start µs, bytes), oldest first.
#[derive(Debug, Default)]
struct Ring {
    buckets: VecDeque<(i64, u64)>,
    quiet_until: i64,
}

impl Ring {
    /// Add `delta` at `now`; the window's total.
    fn add(&mut self, now: i64, window_us: i64, delta: u64) -> u64 {
        let width = (window_us / BUCKETS).max(1);
        let bucket = now - now.rem_euclid(width);
        match self.buckets.back_mut() {
            Some((b, n)) if *b == bucket => *n += delta,
            _ => self.buckets.push_back((bucket, delta)),
        }
        let horizon = now - window_us;
        while self
            .buckets
            .front()
            .is_some_and(|(b, _)| *b + width <= horizon)
        {
            self.buckets.pop_front();
        }
        self.buckets.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, Default)]
struct Counter {
    rings: Vec<Ring>,
    last: i64,
}

/// The budget detector.
pub struct BudgetDetector {
    policy: Arc<Policy>,
    budgets: Arc<Vec<BudgetConfig>>,
    counters: Arc<SharedMap<Key, Counter>>,
    max_keys: usize,
    longest_us: i64,
}

impl BudgetDetector {
    /// Budgets over `policy`'s egress; the error names a bad entry.
    pub fn new(
        policy: Arc<Policy>,
        budgets: &[BudgetConfig],
        max_keys: usize,
    ) -> Result<Self, String> {
        for b in budgets {
            if b.window_secs == 0 || b.window_secs > 30 * 86_400 {
                return Err(format!(
                    "policy.budgets: window_secs {} must be between 1 and 2592000",
                    b.window_secs
                ));
            }
            if b.host_bytes == 0 && b.pair_bytes == 0 {
                return Err(format!(
                    "policy.budgets: the {} s budget sets neither host_bytes nor pair_bytes",
                    b.window_secs
                ));
            }
        }
        let longest_us =
            budgets.iter().map(|b| b.window_secs).max().unwrap_or(1) as i64 * 1_000_000;
        Ok(BudgetDetector {
            policy,
            budgets: Arc::new(budgets.to_vec()),
            counters: Arc::new(SharedMap::default()),
            max_keys: max_keys.max(1),
            longest_us,
        })
    }
}

impl FlowDetector for BudgetDetector {
    fn name(&self) -> &'static str {
        "egress_budget"
    }

    fn begin(&self, flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>> {
        let egress = self.policy.egress(flow)?;
        Some(Box::new(BudgetScan {
            policy: self.policy.clone(),
            egress,
            budgets: self.budgets.clone(),
            counters: self.counters.clone(),
            max_keys: self.max_keys,
            longest_us: self.longest_us,
            counted: 0,
        }))
    }
}

struct BudgetScan {
    policy: Arc<Policy>,
    /// The flow's egress, worked out when the scan began.
    egress: Egress,
    budgets: Arc<Vec<BudgetConfig>>,
    counters: Arc<SharedMap<Key, Counter>>,
    max_keys: usize,
    longest_us: i64,
    counted: u64,
}

/// A budget that was exceeded: which key, which budget, the window's total.
struct Over {
    key: Key,
    budget: BudgetConfig,
    limit: u64,
    total: u64,
}

impl FlowScan for BudgetScan {
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        let (internal, external, name, bytes) = self.policy.denied(self.egress, flow)?;
        let delta = bytes.saturating_sub(self.counted);
        if delta == 0 {
            return None;
        }
        self.counted = bytes;
        let now = flow.now.unix_micros();
        let mut over = None;
        for key in [Key::Host(internal), Key::Pair(internal, external)] {
            let mut c = self.counters.entry(key).or_default();
            c.last = now;
            if c.rings.len() != self.budgets.len() {
                c.rings.resize_with(self.budgets.len(), Ring::default);
            }
            for (b, ring) in self.budgets.iter().zip(c.rings.iter_mut()) {
                let limit = match key {
                    Key::Host(_) => b.host_bytes,
                    Key::Pair(..) => b.pair_bytes,
                };
                if limit == 0 {
                    continue;
                }
                let window_us = b.window_secs as i64 * 1_000_000;
                let total = ring.add(now, window_us, delta);
                if total > limit && now >= ring.quiet_until && over.is_none() {
                    ring.quiet_until = now + window_us;
                    over = Some(Over {
                        key,
                        budget: b.clone(),
                        limit,
                        total,
                    });
                }
            }
        }
        if self.counters.len() > self.max_keys {
            let horizon = now - self.longest_us;
            self.counters.retain(|_, c| c.last >= horizon);
        }
        let o = over?;
        let (scope, to) = match o.key {
            Key::Host(_) => ("host", String::from("destinations not allowed")),
            Key::Pair(..) => (
                "host_destination",
                name.map(str::to_string)
                    .unwrap_or_else(|| external.to_string()),
            ),
        };
        let mut e = Evidence::new();
        e.insert("internal_host".into(), json!(internal.to_string()));
        e.insert("destination".into(), json!(external.to_string()));
        if let Some(n) = name {
            e.insert("destination_name".into(), json!(n));
        }
        e.insert("budget_scope".into(), json!(scope));
        e.insert("budget_window_secs".into(), json!(o.budget.window_secs));
        e.insert("budget_bytes".into(), json!(o.limit));
        e.insert("window_bytes_out".into(), json!(o.total));
        e.insert("flow_bytes_out".into(), json!(bytes));
        Some(Finding {
            category: AlertCategory::EgressVolume,
            sig: &sig::EGRESS_BUDGET,
            detail: format!(
                "{} bytes from {internal} to {to} within {} s, over the budget of {}",
                o.total, o.budget.window_secs, o.limit
            ),
            severity: 2,
            evidence: e,
        })
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        self.progress(flow)
    }
}
