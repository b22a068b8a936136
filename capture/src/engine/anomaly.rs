//! Findings the engine raises itself, not a detector: evasion attempts seen
//! in reassembly and defragmentation (Suricata's `stream-event` and
//! `decoder-event` names), as flow-level `protocol_anomaly` alerts.

use super::tcp::TcpConn;
use crate::detect::{Finding, sig};
use crate::reassembly::OsPolicy;
use eve::{AlertCategory, Direction};

/// The finding for segments of `conn` that overlapped earlier bytes with
/// different data (Suricata's `stream-event:reassembly_overlap_different_data`),
/// or `None` when neither stream saw one.
pub(super) fn overlap_finding(conn: &TcpConn) -> Option<Finding> {
    let (dir, s, (offset, new_won)) = Direction::BOTH
        .into_iter()
        .zip(&conn.streams)
        .find_map(|(d, s)| s.first_difference.map(|f| (d, s, f)))?;
    let policy = s.policy().as_str();
    let kept = if new_won {
        "later copy"
    } else {
        "earlier copy"
    };
    let mut evidence = anomaly_evidence("stream.reassembly_overlap_different_data", dir);
    evidence.insert("stream_offset".into(), offset.into());
    evidence.insert("os_policy".into(), policy.into());
    evidence.insert("kept".into(), kept.replace(' ', "_").into());
    Some(Finding {
        category: AlertCategory::ProtocolAnomaly,
        sig: &sig::STREAM_OVERLAP_DIFFERENT_DATA,
        detail: format!(
            "different bytes at stream offset {offset}, {policy} policy kept the {kept}"
        ),
        severity: 3,
        evidence,
    })
}

/// The finding for a datagram (travelling `dir`, IPv4 or not) whose IP
/// fragments overlapped with different bytes (Suricata's `ipv4.frag_overlap`
/// / `ipv6.frag_overlap`), reassembled under `policy`.
pub(super) fn fragment_finding(dir: Direction, ipv4: bool, policy: OsPolicy) -> Finding {
    let event = if ipv4 {
        "ipv4.frag_overlap"
    } else {
        "ipv6.frag_overlap"
    };
    let mut evidence = anomaly_evidence(event, dir);
    evidence.insert("os_policy".into(), policy.as_str().into());
    Finding {
        category: AlertCategory::ProtocolAnomaly,
        sig: &sig::FRAGMENT_OVERLAP_DIFFERENT_DATA,
        detail: format!("{event} under the {} policy", policy.as_str()),
        severity: 3,
        evidence,
    }
}

/// The evidence every anomaly alert starts with: Suricata's event name and
/// the direction.
fn anomaly_evidence(event: &str, dir: Direction) -> eve::Evidence {
    let mut evidence = eve::Evidence::new();
    evidence.insert("event".into(), event.into());
    evidence.insert(
        "direction".into(),
        serde_json::to_value(dir).unwrap_or_default(),
    );
    evidence
}
