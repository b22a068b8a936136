//! Integration tests (one binary per crate; modules below).

mod bad_input;
mod cohesion;
mod continuity;
mod detection;
mod evasion;
mod ingest_order;
mod joining;
mod logprob_hours;
mod logs;
mod novelty;
mod onset;
mod outputs;
mod parts;
mod peers;
mod refit;
mod row_scan;
mod self_shift;
mod setting_slices;
mod slices;
mod text_scan;
mod vocab_novelty;
