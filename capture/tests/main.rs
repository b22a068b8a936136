//! Integration tests (one binary per crate; modules below).

mod engine_corpus;
mod engine_props;
mod engine_support;
