//! Integration tests of the event model and sinks.

mod community_id;
mod serialization;
