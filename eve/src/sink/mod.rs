//! Sinks: where events go. Producers (sensor workers, the analyzer) hold a
//! `Box<dyn EventSink>`; [`Fanout`] sends to several at once.
//!
//! - [`eve_file::EveFileSink`]: EVE JSON Lines to a file or stdout, rotated by size.
//! - [`http::HttpSink`]: batched POSTs to the dashboard through an on-disk spool.
//! - [`memory::MemorySink`]: an in-memory sink for tests and the demo.

pub mod eve_file;
pub mod http;
pub mod memory;
pub mod spool;

use crate::event::Event;

/// Why a sink could not take or deliver events.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing a file or the spool failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sink is misconfigured (bad URL, bad path, …).
    #[error("sink configuration: {0}")]
    Config(String),
    /// Events could not be delivered before the deadline of a flush or close.
    #[error("undelivered: {0}")]
    Undelivered(String),
}

impl SinkError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SinkError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A destination for events. `emit` must not block for long: network sinks
/// spool to disk and deliver in the background.
pub trait EventSink: Send {
    /// Take one event.
    fn emit(&mut self, event: &Event) -> Result<(), SinkError>;
    /// Push buffered events out as far as the sink can right now.
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Flush and release resources; for network sinks, wait (bounded) for
    /// delivery of what is spooled.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

/// Sends every event to each of several sinks.
#[derive(Default)]
pub struct Fanout {
    sinks: Vec<Box<dyn EventSink>>,
}

impl Fanout {
    /// An empty fan-out (drops everything until a sink is added).
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Add a sink.
    pub fn push(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// Whether no sink was added.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl EventSink for Fanout {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        // Every sink gets the event even if an earlier one fails.
        let mut first_err = None;
        for s in &mut self.sinks {
            if let Err(e) = s.emit(event) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let mut first_err = None;
        for s in &mut self.sinks {
            if let Err(e) = s.flush() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn close(&mut self) -> Result<(), SinkError> {
        let mut first_err = None;
        for s in &mut self.sinks {
            if let Err(e) = s.close() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
