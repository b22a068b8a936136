//! In-memory sinks: events kept in a shared vector, or only counted.

use super::{EventSink, SinkError};
use crate::event::Event;
use std::sync::{Arc, Mutex};

/// Collects events in memory; clones share the same store.
#[derive(Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// A copy of every event taken so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl EventSink for MemorySink {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Counts events and keeps none: the sink of benchmarks.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingSink {
    /// Events taken so far.
    pub events: u64,
}

impl EventSink for CountingSink {
    fn emit(&mut self, _event: &Event) -> Result<(), SinkError> {
        self.events += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
