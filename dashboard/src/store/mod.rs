//! Storage: the traits the server talks to, one per domain, [`Store`] (all
//! of them), their value types, and two implementations that pass the same
//! tests: SQLite ([`sqlite::SqliteStore`], one machine, the default) and
//! PostgreSQL ([`postgres::PgStore`], replicas and large stores), chosen by
//! [`Database`].

pub mod database;
pub mod migrations;
pub mod postgres;
pub mod search;
pub mod sqlite;

mod model;
mod traits;

pub use database::Database;
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use traits::*;
