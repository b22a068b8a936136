//! Integration tests (one binary per crate; modules below).

mod engine_corpus;
mod engine_fixtures;
mod engine_live;
mod engine_props;
mod engine_support;
mod app_http;
mod detect_common;
mod detect_formats;
mod detect_stats;
mod app_pcap;
mod app_tls;
mod detect_known;
mod detect_egress;
mod app_props;
mod app_ssh;
mod detect_pcaps;
mod detect_bench;
