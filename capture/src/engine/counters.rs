//! The worker's counters, written into `stats` events.

use crate::app::AppStats;
use crate::reassembly::StreamCounters;
use eve::Stats;

/// Object counters of a worker (`files.*` in stats).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ObjectCounters {
    pub objects: u64,
    pub object_bytes: u64,
    pub objects_with_gaps: u64,
    pub truncated: u64,
    pub alerts: u64,
    /// What detectors inflated and decoded inside objects.
    pub decode: crate::detect::DecodeTally,
}

/// Worker counters, turned into `stats` sections.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerCounters {
    pub packets: u64,
    pub flows_created: u64,
    pub flows_tcp: u64,
    pub flows_udp: u64,
    pub flows_closed: u64,
    pub flows_timed_out: u64,
    pub flows_evicted: u64,
    pub flows_shutdown: u64,
    pub flow_updates: u64,
    pub flow_alerts: u64,
    pub midstream: u64,
    pub stream: StreamCounters,
    pub objects: ObjectCounters,
    /// App-layer counters of ended TCP flows (flows by protocol, parser
    /// fallbacks, resyncs…).
    pub app: AppStats,
    /// Ended TCP flows whose protocol was never decided (no payload).
    pub app_none: u64,
    pub memcap_peak: usize,
}

impl WorkerCounters {
    /// Add these counters into `stats`.
    pub fn add_to(&self, stats: &mut Stats) {
        let s = &self.stream;
        for (section, key, n) in [
            ("flow", "created", self.flows_created),
            ("flow", "tcp", self.flows_tcp),
            ("flow", "udp", self.flows_udp),
            ("flow", "closed", self.flows_closed),
            ("flow", "timed_out", self.flows_timed_out),
            ("flow", "evicted", self.flows_evicted),
            ("flow", "shutdown", self.flows_shutdown),
            ("flow", "updates", self.flow_updates),
            ("tcp", "midstream", self.midstream),
            ("tcp", "gaps", s.gaps),
            ("tcp", "gap_bytes", s.gap_bytes),
            ("tcp", "duplicates", s.duplicates),
            ("tcp", "overlaps", s.overlaps),
            ("tcp", "out_of_order", s.out_of_order),
            ("tcp", "stream_ooo_limit", s.ooo_limit),
            ("tcp", "reassembly_memcap_drops", s.memcap),
            ("tcp", "out_of_window", s.out_of_window),
            ("tcp", "overlap_diff_data", s.overlap_diff),
            ("tcp", "held", s.held),
            ("tcp", "urgent_oob", s.urgent_oob),
            ("tcp", "rst_invalid", s.rst_invalid),
            ("tcp", "syn_data_ignored", s.syn_data_ignored),
            ("files", "objects", self.objects.objects),
            ("files", "bytes", self.objects.object_bytes),
            ("files", "with_gaps", self.objects.objects_with_gaps),
            ("files", "truncated", self.objects.truncated),
            ("detect", "object_alerts", self.objects.alerts),
            ("detect", "flow_alerts", self.flow_alerts),
        ] {
            stats.add(section, key, n);
        }
        for (name, n) in self.objects.decode.counters() {
            stats.add("detect", name, n);
        }
        for (name, n) in self.app.counters().filter(|(_, n)| *n > 0) {
            stats.add("app", name, n);
        }
        if self.app_none > 0 {
            stats.add("app", "none", self.app_none);
        }
    }
}

pub(super) fn add_stream(acc: &mut StreamCounters, s: &StreamCounters) {
    acc.gaps += s.gaps;
    acc.gap_bytes += s.gap_bytes;
    acc.duplicates += s.duplicates;
    acc.overlaps += s.overlaps;
    acc.out_of_order += s.out_of_order;
    acc.ooo_limit += s.ooo_limit;
    acc.memcap += s.memcap;
    acc.out_of_window += s.out_of_window;
    acc.overlap_diff += s.overlap_diff;
    acc.held += s.held;
    acc.urgent_oob += s.urgent_oob;
    acc.rst_invalid += s.rst_invalid;
    acc.syn_data_ignored += s.syn_data_ignored;
}
