//! Storage: the traits the server talks to, one per domain, [`Store`] (all
//! of them), their value types, and the SQLite implementation
//! ([`sqlite::SqliteStore`]). A PostgreSQL store would implement the same
//! traits and pass the same tests.

pub mod migrations;
pub mod search;
pub mod sqlite;

mod model;
mod traits;

pub use model::*;
pub use sqlite::SqliteStore;
pub use traits::*;
