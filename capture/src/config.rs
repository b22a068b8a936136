//! The `[capture]` section of `weightwatch.toml`: engine limits and timeouts.
//!
//! Every limit that bounds memory lives here; the engine splits sensor-wide
//! limits (flows, reassembly memory) evenly across its workers so that each
//! worker enforces its share without locks.

use crate::decode::ChecksumMode;
use crate::reassembly::OsPolicy;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Engine settings (documented in `docs/capture.md` and the example config).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Worker threads; 0 = the number of cores. `--workers` overrides.
    pub workers: usize,
    /// Most flows tracked at once (whole sensor). When full, the least
    /// recently active flows are evicted (`flow.evicted`, reason `forced`).
    pub max_flows: usize,
    /// A TCP flow with no packet for this long ends (reason `timeout`).
    pub tcp_idle_timeout_secs: u64,
    /// A UDP flow with no packet for this long ends.
    pub udp_idle_timeout_secs: u64,
    /// A flow ends this long after it started, however active (0 = never).
    pub absolute_timeout_secs: u64,
    /// After both sides closed (FIN/FIN or RST), late packets are still
    /// counted to the flow for this long before its `flow` event is written.
    pub closed_linger_secs: u64,
    /// Interim `flow` events (reason `update`) for flows still running,
    /// every this many seconds of their life (0 = none).
    pub flow_update_interval_secs: u64,
    /// Flow detectors are called at least every this many bytes of new payload.
    pub flow_progress_bytes: u64,
    /// Out-of-order bytes buffered per TCP direction before the hole is
    /// declared a gap and skipped.
    pub stream_ooo_max_bytes: usize,
    /// Out-of-order bytes buffered by all streams together (whole sensor).
    pub reassembly_memcap_bytes: usize,
    /// IP fragments held for reassembly at once (whole sensor); beyond it
    /// pending fragments are dropped and counted.
    pub max_pending_fragments: usize,
    /// Incomplete fragmented datagrams are dropped after this long.
    pub fragment_timeout_secs: u64,
    /// Live capture: batches of packets queued per worker (a full queue
    /// drops the batch). Offline replay has no queues (see
    /// `replay_lookahead_bytes`).
    pub queue_batches: usize,
    /// Live capture: a `stats` event every this many seconds (0 = only at exit).
    pub stats_interval_secs: u64,
    /// Live capture: kernel capture buffer in bytes (libpcap `buffer_size`).
    pub pcap_buffer_bytes: i32,
    /// 802.1Q/QinQ VLAN ids are part of the flow key (Suricata's
    /// `vlan.use-for-tracking`): the same 5-tuple on two VLANs is two flows,
    /// and events carry `vlan`. Turn off when the two directions of a
    /// connection arrive with different tags (asymmetric mirror setups).
    pub vlan_tracking: bool,
    /// Offline replay with several workers: file bytes read ahead of the
    /// slowest worker at most (1 MiB chunks; their pages stay mapped and
    /// their records described until every worker is through them). More
    /// lets workers run further apart, which long transfers one after
    /// another in a file need to keep every worker busy.
    pub replay_lookahead_bytes: usize,
    /// IPv4 header, TCP and UDP checksums: `yes` drops every packet with a
    /// wrong one (the host dropped it too), `no` trusts the capture, `auto`
    /// (default) validates except for senders whose packets at the start
    /// of a capture all have wrong checksums (checksum offload on the
    /// capturing host). See `docs/capture.md`.
    pub checksum_validation: ChecksumMode,
    /// Largest decompressed size of one HTTP body with a Content-Encoding
    /// (gzip, deflate): decoding stops there (`app.decode_bombs`).
    pub max_decoded_bytes: u64,
    /// Decompression bomb guard: decoding of a body stops once it has given
    /// more than 1 MiB and more than this many bytes per compressed byte
    /// (`app.decode_bombs`; real compressed weights expand about 1.1:1,
    /// text 3–10:1, zeros 1000:1). 0 = no ratio limit.
    pub max_inflate_ratio: u64,
    /// Whose bytes stay where TCP segments overlap with buffered ones, or
    /// IP fragments overlap, for receiving hosts not listed in
    /// `host_os_policy` (Suricata's `host-os-policy`; default `bsd`,
    /// Suricata's default).
    pub os_policy: OsPolicy,
    /// The overlap policy of receiving hosts by network: policy name →
    /// CIDRs (`linux = ["10.2.0.0/16"]`); the longest matching prefix wins.
    pub host_os_policy: BTreeMap<OsPolicy, Vec<IpNet>>,
    /// Delivered bytes of a TCP direction kept, until the peer acknowledges
    /// them, to compare retransmissions with (an overlap with different
    /// data raises an alert). Counted in `reassembly_memcap_bytes`; 0 = no
    /// comparison with delivered bytes.
    pub stream_retain_bytes: usize,
    /// A TCP segment whose TTL (hop limit) is more than this below its
    /// direction's first packet's may expire before the host (the
    /// TTL-limited evasion): its bytes are held back until the peer
    /// acknowledges them or a copy with the flow's TTL replaces them
    /// (`tcp.held`). 0 = off.
    pub stream_ttl_tolerance: u8,
    /// TCP urgent data: `oob` (default) takes the urgent byte out of the
    /// stream, as a host's socket does without `SO_OOBINLINE`; `inline`
    /// leaves it in (Suricata's `stream.reassembly.urgent.policy`).
    pub urgent_policy: UrgentPolicy,
    /// SHA-256 and the object detectors (format, encoded, tensor
    /// statistics, known weights) also on TLS and SSH direction streams.
    /// Off (default): their bytes are ciphertext, in which no detector can
    /// find weights and whose hash names no file (Suricata hashes files,
    /// not TLS records); their `fileinfo` events keep size and TLS
    /// metadata without `sha256`, and the flow detectors (egress volume,
    /// size match) judge them as before.
    pub inspect_encrypted_streams: bool,
}

/// What becomes of TCP urgent data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrgentPolicy {
    /// The urgent byte stays in the stream.
    Inline,
    /// The urgent byte is taken out of the stream (out of band).
    #[default]
    Oob,
}

/// The overlap policy of each receiving host, from `os_policy` and
/// `host_os_policy`: the longest matching prefix wins.
#[derive(Clone, Debug, Default)]
pub(crate) struct OsPolicies {
    default: OsPolicy,
    /// By network, longest prefix first.
    networks: Vec<(IpNet, OsPolicy)>,
}

impl OsPolicies {
    /// The table of `cfg`.
    pub(crate) fn new(cfg: &CaptureConfig) -> Self {
        let mut networks: Vec<(IpNet, OsPolicy)> = cfg
            .host_os_policy
            .iter()
            .flat_map(|(p, nets)| nets.iter().map(move |n| (*n, *p)))
            .collect();
        networks.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        OsPolicies {
            default: cfg.os_policy,
            networks,
        }
    }

    /// The policy of receiving host `ip`.
    pub(crate) fn of(&self, ip: IpAddr) -> OsPolicy {
        self.networks
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map_or(self.default, |(_, p)| *p)
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            workers: 0,
            max_flows: 1_000_000,
            tcp_idle_timeout_secs: 600,
            udp_idle_timeout_secs: 120,
            absolute_timeout_secs: 0,
            closed_linger_secs: 5,
            flow_update_interval_secs: 300,
            flow_progress_bytes: 1 << 20,
            stream_ooo_max_bytes: 4 << 20,
            reassembly_memcap_bytes: 1 << 30,
            max_pending_fragments: 10_000,
            fragment_timeout_secs: 30,
            queue_batches: 64,
            stats_interval_secs: 60,
            pcap_buffer_bytes: 64 << 20,
            vlan_tracking: true,
            replay_lookahead_bytes: 256 << 20,
            checksum_validation: ChecksumMode::Auto,
            max_decoded_bytes: 64 << 30,
            max_inflate_ratio: 100,
            os_policy: OsPolicy::Bsd,
            host_os_policy: BTreeMap::new(),
            stream_retain_bytes: 64 << 10,
            stream_ttl_tolerance: 5,
            urgent_policy: UrgentPolicy::Oob,
            inspect_encrypted_streams: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_picks_the_policy() {
        let cfg: CaptureConfig = serde_json::from_str(
            r#"{"os_policy": "windows",
                "host_os_policy": {"linux": ["10.0.0.0/8"], "first": ["10.2.0.0/16", "fd00::/8"]}}"#,
        )
        .expect("config");
        let t = OsPolicies::new(&cfg);
        assert_eq!(t.of("10.1.0.1".parse().unwrap()), OsPolicy::Linux);
        assert_eq!(t.of("10.2.0.1".parse().unwrap()), OsPolicy::First);
        assert_eq!(t.of("fd00::1".parse().unwrap()), OsPolicy::First);
        assert_eq!(t.of("192.0.2.1".parse().unwrap()), OsPolicy::Windows);
    }
}
