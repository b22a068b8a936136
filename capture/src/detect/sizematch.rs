//! Encrypted size match: the estimated plaintext size of a TLS or SSH upload
//! to a destination the policy does not allow is compared with the sizes of
//! the registered weight files (and of each registered directory's files
//! together: a sharded model sent as one stream).
//!
//! The alert leaves as soon as the upload has stopped at a matching size:
//! when two consecutive progress calls (the engine calls flow detectors every
//! `flow_progress_bytes` and whenever the peer answers, i.e. payload changes
//! direction) see the same plaintext total within tolerance and the server
//! sent something in between, or `size_match_quiet_secs` passed without the
//! client sending more — or at the flow's end, whichever comes first. An
//! upload still running has a growing total, so passing through a smaller
//! registered size on its way up does not match.

use super::config::DetectConfig;
use super::egress::Policy;
use super::known::Index;
use super::{Finding, FlowDetector, FlowScan, FlowView, sig};
use eve::{AlertCategory, Direction, Evidence};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A size to compare with and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    size: u64,
    what: String,
    files: usize,
}

/// The size-match detector.
pub struct SizeMatchDetector {
    policy: Arc<Policy>,
    cfg: Arc<DetectConfig>,
    targets: Arc<Vec<Target>>,
}

impl SizeMatchDetector {
    /// Sizes from `index`; files below `size_match_min_bytes` are left out.
    pub fn new(index: &Index, policy: Arc<Policy>, cfg: Arc<DetectConfig>) -> Self {
        let mut targets = Vec::new();
        let mut dirs: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
        for f in &index.files {
            targets.push(Target {
                size: f.size,
                what: f.name.clone(),
                files: 1,
            });
            let dir = f.name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let e = dirs.entry(dir).or_default();
            e.0 += f.size;
            e.1 += 1;
        }
        for (dir, (size, n)) in dirs {
            if n > 1 {
                targets.push(Target {
                    size,
                    what: format!("{dir}/ ({n} files)"),
                    files: n,
                });
            }
        }
        targets.retain(|t| t.size >= cfg.size_match_min_bytes);
        targets.sort_by_key(|t| t.size);
        SizeMatchDetector {
            policy,
            cfg,
            targets: Arc::new(targets),
        }
    }
}

impl FlowDetector for SizeMatchDetector {
    fn name(&self) -> &'static str {
        "size_match"
    }

    fn begin(&self, flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>> {
        if self.targets.is_empty() || self.policy.egress_direction(flow)? != Direction::ToServer {
            return None;
        }
        Some(Box::new(SizeMatchScan {
            policy: self.policy.clone(),
            cfg: self.cfg.clone(),
            targets: self.targets.clone(),
            candidate: None,
        }))
    }
}

/// A progress call that saw the upload total within tolerance of a size.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    plain: u64,
    toclient: u64,
    at_us: i64,
}

struct SizeMatchScan {
    policy: Arc<Policy>,
    cfg: Arc<DetectConfig>,
    targets: Arc<Vec<Target>>,
    candidate: Option<Candidate>,
}

impl SizeMatchScan {
    fn tolerance(&self, size: u64) -> u64 {
        self.cfg.size_match_tolerance_bytes
            + (size as f64 * self.cfg.size_match_tolerance_ratio) as u64
    }

    /// The registered size nearest to the upload's plaintext, if within
    /// tolerance (and the flow is an encrypted upload to a denied place).
    fn matching(&self, flow: &FlowView<'_>) -> Option<(u64, &Target)> {
        if !flow.encrypted || self.policy.allowed(flow.net.dest_ip, flow.server_name) {
            return None;
        }
        let plain = flow.plaintext_toserver?;
        let best = self
            .targets
            .iter()
            .filter(|t| plain.abs_diff(t.size) <= self.tolerance(t.size))
            .min_by_key(|t| plain.abs_diff(t.size))?;
        Some((plain, best))
    }

    fn finding(&self, flow: &FlowView<'_>, plain: u64, best: &Target, why: &str) -> Finding {
        let tol = |size: u64| self.tolerance(size);
        let diff = plain as i64 - best.size as i64;
        let mut e = Evidence::new();
        e.insert("plaintext_bytes".into(), json!(plain));
        e.insert("payload_bytes".into(), json!(flow.payload_toserver));
        e.insert("known_size".into(), json!(best.size));
        e.insert("known_file".into(), json!(best.what));
        e.insert("known_files".into(), json!(best.files));
        e.insert("difference_bytes".into(), json!(diff));
        e.insert("tolerance_bytes".into(), json!(tol(best.size)));
        e.insert("destination".into(), json!(flow.net.dest_ip.to_string()));
        if let Some(n) = flow.server_name {
            e.insert("destination_name".into(), json!(n));
        }
        e.insert(
            "app_proto".into(),
            json!(flow.net.app_proto.as_deref().unwrap_or("unknown")),
        );
        e.insert("decided".into(), json!(why));
        let severity = if best.size >= 1 << 30 { 1 } else { 2 };
        Finding {
            category: AlertCategory::EncryptedSizeMatch,
            sig: &sig::SIZE_MATCH,
            detail: format!(
                "encrypted upload matches size of {}",
                best.what
                    .rsplit('/')
                    .find(|s| !s.is_empty())
                    .unwrap_or(&best.what)
            ),
            severity,
            evidence: e,
        }
    }
}

impl FlowScan for SizeMatchScan {
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        let Some((plain, best)) = self.matching(flow) else {
            self.candidate = None;
            return None;
        };
        let now = flow.now.unix_micros();
        if let Some(c) = self.candidate
            && c.plain == plain
        {
            let why = if flow.payload_toclient > c.toclient {
                Some("peer_answered")
            } else if now.saturating_sub(c.at_us)
                >= (self.cfg.size_match_quiet_secs as i64).saturating_mul(1_000_000)
            {
                Some("upload_quiet")
            } else {
                None
            };
            if let Some(why) = why {
                return Some(self.finding(flow, plain, best, why));
            }
            return None;
        }
        self.candidate = Some(Candidate {
            plain,
            toclient: flow.payload_toclient,
            at_us: now,
        });
        None
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        let (plain, best) = self.matching(flow)?;
        Some(self.finding(flow, plain, best, "flow_end"))
    }
}
