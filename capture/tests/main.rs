//! Integration tests (one binary per crate; modules below).
mod app_http;
