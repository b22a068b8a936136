//! Batched delivery to the dashboard through an on-disk spool (written next).

/// Placeholder replaced in the next commit.
pub struct HttpSink;
