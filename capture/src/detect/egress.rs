//! Egress policy and volume: bytes leaving the internal networks for a
//! destination the policy does not allow (deny by default), per flow and per
//! (internal host, external destination) rolling window shared by every
//! worker thread. Works on byte counts only, so it covers TLS, SSH and
//! unknown protocols alike; the alert leaves the moment the threshold is
//! crossed.

use super::config::PolicyConfig;
use super::{Finding, FlowDetector, FlowScan, FlowView, sig};
use crate::detect::SharedMap;
use eve::{AlertCategory, Direction, Evidence};
use ipnet::IpNet;
use serde_json::json;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

/// The compiled `[policy]`.
#[derive(Clone, Debug)]
pub struct Policy {
    internal: Vec<IpNet>,
    allowed_nets: Vec<IpNet>,
    /// (name, suffix match): `.corp.example` matches itself and below.
    allowed_names: Vec<(String, bool)>,
    /// Upload threshold (bytes).
    pub upload_alert_bytes: u64,
    /// Window length in microseconds.
    pub window_us: i64,
    max_pairs: usize,
}

/// Which way a flow leaves the internal networks, and whether its external
/// address is in an allowed network ([`Policy::egress`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Egress {
    dir: Direction,
    net_allowed: bool,
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Policy {
    /// Compile and check the configuration (the error names the bad entry).
    pub fn from_config(c: &PolicyConfig) -> Result<Self, String> {
        let mut internal = Vec::new();
        for n in &c.internal_networks {
            internal.push(
                parse_net(n)
                    .ok_or_else(|| format!("policy.internal_networks: {n:?} is not a CIDR"))?,
            );
        }
        let mut allowed_nets = Vec::new();
        let mut allowed_names = Vec::new();
        for d in &c.allowed_destinations {
            if let Some(net) = parse_net(d) {
                allowed_nets.push(net);
                continue;
            }
            let name = d.trim().to_ascii_lowercase();
            let bare = name.trim_start_matches('.');
            let ok = !bare.is_empty()
                && bare.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if !ok {
                return Err(format!(
                    "policy.allowed_destinations: {d:?} is neither a CIDR nor a host name or .suffix"
                ));
            }
            allowed_names.push((bare.to_string(), name.starts_with('.')));
        }
        if c.upload_alert_bytes == 0 {
            return Err("policy.upload_alert_bytes must be positive".into());
        }
        if c.window_secs == 0 || c.window_secs > 30 * 86_400 {
            return Err("policy.window_secs must be between 1 and 2592000".into());
        }
        Ok(Policy {
            internal,
            allowed_nets,
            allowed_names,
            upload_alert_bytes: c.upload_alert_bytes,
            window_us: c.window_secs as i64 * 1_000_000,
            max_pairs: c.max_tracked_pairs.max(1),
        })
    }

    /// Whether `ip` is on our side.
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal.iter().any(|n| n.contains(&ip))
    }

    /// Whether uploads to `ip` (known by `name`) are allowed.
    pub fn allowed(&self, ip: IpAddr, name: Option<&str>) -> bool {
        self.allowed_net(ip) || self.allowed_name(name)
    }

    /// Whether `ip` is in an allowed network.
    fn allowed_net(&self, ip: IpAddr) -> bool {
        self.allowed_nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether `name` is an allowed destination name (or below one).
    fn allowed_name(&self, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        // Compared without a lower-cased copy (the allowed names are stored
        // lower-case): flow detectors ask on every reply of a connection.
        let name = name.trim_end_matches('.').as_bytes();
        self.allowed_names.iter().any(|(a, suffix)| {
            let a = a.as_bytes();
            name.eq_ignore_ascii_case(a)
                || (*suffix
                    && name.len() > a.len()
                    && name[name.len() - a.len()..].eq_ignore_ascii_case(a)
                    && name[name.len() - a.len() - 1] == b'.')
        })
    }

    /// Which direction of this flow leaves the internal networks, if one does.
    pub fn egress_direction(&self, flow: &FlowView<'_>) -> Option<Direction> {
        match (
            self.is_internal(flow.net.src_ip),
            self.is_internal(flow.net.dest_ip),
        ) {
            (true, false) => Some(Direction::ToServer),
            (false, true) => Some(Direction::ToClient),
            _ => None,
        }
    }

    /// How `flow` leaves the internal networks, if it does: worked out
    /// once when a flow detector's scan begins (a flow's addresses do not
    /// change; its scans are asked again on every reply).
    pub(super) fn egress(&self, flow: &FlowView<'_>) -> Option<Egress> {
        let dir = self.egress_direction(flow)?;
        let external = match dir {
            Direction::ToServer => flow.net.dest_ip,
            Direction::ToClient => flow.net.src_ip,
        };
        Some(Egress {
            dir,
            net_allowed: self.allowed_net(external),
        })
    }

    /// The flow's upload, when it leaves the internal networks (`egress`,
    /// from [`Policy::egress`]) to a destination that is not allowed:
    /// (internal address, external address, destination name, bytes out).
    pub(super) fn denied<'a>(
        &self,
        egress: Egress,
        flow: &FlowView<'a>,
    ) -> Option<(IpAddr, IpAddr, Option<&'a str>, u64)> {
        if egress.net_allowed {
            return None;
        }
        match egress.dir {
            Direction::ToServer => {
                let name = flow.server_name;
                (!self.allowed_name(name)).then_some((
                    flow.net.src_ip,
                    flow.net.dest_ip,
                    name,
                    flow.payload_toserver,
                ))
            }
            Direction::ToClient => Some((
                flow.net.dest_ip,
                flow.net.src_ip,
                None,
                flow.payload_toclient,
            )),
        }
    }
}

fn base_evidence(
    policy: &Policy,
    flow: &FlowView<'_>,
    internal: IpAddr,
    external: IpAddr,
    name: Option<&str>,
) -> Evidence {
    let mut e = Evidence::new();
    e.insert("internal_host".into(), json!(internal.to_string()));
    e.insert("destination".into(), json!(external.to_string()));
    if let Some(n) = name {
        e.insert("destination_name".into(), json!(n));
    }
    e.insert(
        "destination_policy".into(),
        json!("not allowed (deny by default)"),
    );
    e.insert("threshold_bytes".into(), json!(policy.upload_alert_bytes));
    e.insert(
        "app_proto".into(),
        json!(flow.net.app_proto.as_deref().unwrap_or("unknown")),
    );
    e.insert("encrypted".into(), json!(flow.encrypted));
    let secs = ((flow.now.unix_micros() - flow.start.unix_micros()).max(0)) as f64 / 1e6;
    e.insert(
        "flow_seconds".into(),
        json!((secs * 1000.0).round() / 1000.0),
    );
    e
}

/// Per-flow volume: one flow's egress crosses the threshold.
pub struct EgressFlowDetector {
    policy: Arc<Policy>,
}

impl EgressFlowDetector {
    /// A detector enforcing `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        EgressFlowDetector { policy }
    }
}

impl FlowDetector for EgressFlowDetector {
    fn name(&self) -> &'static str {
        "egress_flow"
    }

    fn begin(&self, flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>> {
        let egress = self.policy.egress(flow)?;
        Some(Box::new(EgressFlowScan {
            policy: self.policy.clone(),
            egress,
            done: false,
        }))
    }
}

struct EgressFlowScan {
    policy: Arc<Policy>,
    egress: Egress,
    done: bool,
}

impl FlowScan for EgressFlowScan {
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        if self.done {
            return None;
        }
        let (internal, external, name, bytes) = self.policy.denied(self.egress, flow)?;
        if bytes < self.policy.upload_alert_bytes {
            return None;
        }
        self.done = true;
        let mut e = base_evidence(&self.policy, flow, internal, external, name);
        e.insert("flow_bytes_out".into(), json!(bytes));
        let severity = if bytes >= self.policy.upload_alert_bytes.saturating_mul(10) {
            1
        } else {
            2
        };
        Some(Finding {
            category: AlertCategory::EgressVolume,
            sig: &sig::EGRESS_FLOW,
            detail: format!(
                "{} MiB in one flow to {}",
                bytes >> 20,
                name.map(str::to_string)
                    .unwrap_or_else(|| external.to_string())
            ),
            severity,
            evidence: e,
        })
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        self.progress(flow)
    }
}

/// Rolling byte counts of one (internal host, destination) pair.
#[derive(Debug, Default)]
struct PairWindow {
    /// (bucket start µs, bytes), oldest first.
    buckets: VecDeque<(i64, u64)>,
    /// No new window alert before this time.
    quiet_until: i64,
    last: i64,
    flows: VecDeque<u64>,
}

const BUCKETS: i64 = 60;
const MAX_FLOWS_LISTED: usize = 16;

/// Per-(internal host, destination) volume over `policy.window_secs`.
pub struct EgressWindowDetector {
    policy: Arc<Policy>,
    pairs: Arc<SharedMap<(IpAddr, IpAddr), PairWindow>>,
    /// Leave single flows over the threshold to the per-flow alert.
    skip_single_flow: bool,
}

impl EgressWindowDetector {
    /// A detector enforcing `policy`; `skip_single_flow` when the per-flow
    /// detector also runs (so one big flow raises one alert, not two).
    pub fn new(policy: Arc<Policy>, skip_single_flow: bool) -> Self {
        EgressWindowDetector {
            policy,
            pairs: Arc::new(SharedMap::default()),
            skip_single_flow,
        }
    }
}

impl FlowDetector for EgressWindowDetector {
    fn name(&self) -> &'static str {
        "egress_window"
    }

    fn begin(&self, flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>> {
        let egress = self.policy.egress(flow)?;
        Some(Box::new(EgressWindowScan {
            policy: self.policy.clone(),
            egress,
            pairs: self.pairs.clone(),
            skip_single_flow: self.skip_single_flow,
            counted: 0,
            done: false,
        }))
    }
}

struct EgressWindowScan {
    policy: Arc<Policy>,
    egress: Egress,
    pairs: Arc<SharedMap<(IpAddr, IpAddr), PairWindow>>,
    skip_single_flow: bool,
    counted: u64,
    done: bool,
}

impl EgressWindowScan {
    fn evict(&self, now: i64) {
        if self.pairs.len() > self.policy.max_pairs {
            let horizon = now - self.policy.window_us;
            self.pairs.retain(|_, w| w.last >= horizon);
        }
    }
}

impl FlowScan for EgressWindowScan {
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        if self.done {
            return None;
        }
        let (internal, external, name, bytes) = self.policy.denied(self.egress, flow)?;
        let delta = bytes.saturating_sub(self.counted);
        if delta == 0 {
            return None;
        }
        self.counted = bytes;
        let now = flow.now.unix_micros();
        let width = (self.policy.window_us / BUCKETS).max(1);
        let bucket = now - now.rem_euclid(width);
        let (total, flows) = {
            let mut w = self.pairs.entry((internal, external)).or_default();
            match w.buckets.back_mut() {
                Some((b, n)) if *b == bucket => *n += delta,
                _ => w.buckets.push_back((bucket, delta)),
            }
            let horizon = now - self.policy.window_us;
            while w
                .buckets
                .front()
                .is_some_and(|(b, _)| *b + width <= horizon)
            {
                w.buckets.pop_front();
            }
            w.last = now;
            if !w.flows.contains(&flow.net.flow_id) {
                w.flows.push_back(flow.net.flow_id);
                if w.flows.len() > MAX_FLOWS_LISTED {
                    w.flows.pop_front();
                }
            }
            let total: u64 = w.buckets.iter().map(|(_, n)| n).sum();
            if total < self.policy.upload_alert_bytes
                || now < w.quiet_until
                || (self.skip_single_flow && bytes >= self.policy.upload_alert_bytes)
            {
                drop(w);
                self.evict(now);
                return None;
            }
            w.quiet_until = now + self.policy.window_us;
            (total, w.flows.iter().copied().collect::<Vec<_>>())
        };
        self.done = true;
        let mut e = base_evidence(&self.policy, flow, internal, external, name);
        e.insert("window_bytes_out".into(), json!(total));
        e.insert(
            "window_secs".into(),
            json!(self.policy.window_us / 1_000_000),
        );
        e.insert("flow_bytes_out".into(), json!(bytes));
        e.insert("window_flow_ids".into(), json!(flows));
        Some(Finding {
            category: AlertCategory::EgressVolume,
            sig: &sig::EGRESS_WINDOW,
            detail: format!(
                "{} MiB from {} to {} within {} s",
                total >> 20,
                internal,
                name.map(str::to_string)
                    .unwrap_or_else(|| external.to_string()),
                self.policy.window_us / 1_000_000
            ),
            severity: 2,
            evidence: e,
        })
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        self.progress(flow)
    }
}
