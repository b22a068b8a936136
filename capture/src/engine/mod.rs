//! The engine: what one worker thread does with the packets of its flows,
//! from decoded packets to events.
//!
//! - `worker`: the flow table, timeouts, eviction and `flow` events.
//! - `tcp`: a TCP connection's two streams and app-layer state, fed and
//!   closed the same way wherever a direction ends.
//! - `emitter`: the [`ObjectSink`](crate::object::ObjectSink) that hashes
//!   objects, feeds them to object detectors and writes `fileinfo` events.
//! - `alert`: the one place where a detector's finding becomes an `alert`.
//! - `anomaly`: the engine's own findings (overlaps with different data,
//!   overlapping fragments).
//! - `env`: what every worker shares to build events.
//! - `counters`: the worker's counters, written into `stats` events.

mod alert;
mod anomaly;
mod counters;
mod emitter;
mod env;
mod tcp;
mod worker;

pub(crate) use counters::WorkerCounters;
pub(crate) use env::EventEnv;
pub(crate) use worker::{Worker, WorkerLimits};
