//! The event model shared by weightwatch's sensor, analyzer and dashboard, and
//! the sinks that carry events out of a process.
//!
//! Every event serializes to one line of EVE-compatible JSON as specified in
//! `shared/spec/event-output.md`; extensions are documented in `docs/eve.md`.
//! Data flows one way: producers build [`Event`]s and hand them to an
//! [`EventSink`]; the dashboard deserializes the same types on ingest.

pub mod actions;
pub mod community_id;
pub mod event;
pub mod sink;
pub mod time;

pub use community_id::community_id_v1;
pub use event::*;
pub use sink::{EventSink, SinkError};
pub use time::Timestamp;
