//! The weightwatch analyzer: reads LLM API request logs and flags accounts,
//! and clusters of accounts, whose query patterns look like distillation.

pub mod config;
