//! Integration tests (one binary per crate; modules below).
mod app_http;
mod detect_common;
mod detect_formats;
mod app_pcap;
mod app_tls;
mod detect_stats;
mod detect_known;
mod detect_egress;
