//! Integration tests (one binary per crate; modules below).

mod app_bomb;
mod app_http;
mod app_pcap;
mod app_props;
mod app_ssh;
mod app_tls;
mod decode_tunnels;
mod detect_bench;
mod detect_common;
mod detect_egress;
mod detect_formats;
mod detect_known;
mod detect_pcaps;
mod detect_stats;
mod engine_corpus;
mod engine_evasion;
mod engine_fixtures;
mod engine_flows;
mod engine_live;
mod engine_props;
mod engine_support;
mod eve_schema;
