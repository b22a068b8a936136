//! Integration tests (one binary per crate; modules below).
