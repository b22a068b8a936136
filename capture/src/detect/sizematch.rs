//! Encrypted size match: when a TLS or SSH upload to a destination the
//! policy does not allow ends, its estimated plaintext size is compared with
//! the sizes of the registered weight files (and of each registered
//! directory's files together: a sharded model sent as one stream).

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
        }))
    }
}

struct SizeMatchScan {
    policy: Arc<Policy>,
    cfg: Arc<DetectConfig>,
    targets: Arc<Vec<Target>>,
}

impl FlowScan for SizeMatchScan {
    fn progress(&mut self, _flow: &FlowView<'_>) -> Option<Finding> {
        // The total is only known at the end.
        None
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        if !flow.encrypted || self.policy.allowed(flow.net.dest_ip, flow.server_name) {
            return None;
        }
        let plain = flow.plaintext_toserver?;
        let tol = |size: u64| {
            self.cfg.size_match_tolerance_bytes
                + (size as f64 * self.cfg.size_match_tolerance_ratio) as u64
        };
        let best = self
            .targets
            .iter()
            .filter(|t| plain.abs_diff(t.size) <= tol(t.size))
            .min_by_key(|t| plain.abs_diff(t.size))?;
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
        let severity = if best.size >= 1 << 30 { 1 } else { 2 };
        Some(Finding {
            category: AlertCategory::EncryptedSizeMatch,
            signature: format!(
                "WEIGHTWATCH encrypted upload matches size of {}",
                best.what
                    .rsplit('/')
                    .find(|s| !s.is_empty())
                    .unwrap_or(&best.what)
            ),
            signature_id: sig::SIZE_MATCH,
            severity,
            evidence: e,
        })
    }
}
