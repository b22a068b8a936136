//! Where the dashboard's data lives: a SQLite file (the default, for one
//! machine and the demo) or a PostgreSQL database (`postgres://…`, for
//! several servers and large stores), and opening the matching store.

use super::model::StoreResult;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::traits::Store;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A database location as given to `--db` or `[dashboard] db`.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/db` or
    /// `postgresql://…`, with libpq's query parameters).
    Postgres(String),
}

impl Database {
    /// `postgres://…` and `postgresql://…` are PostgreSQL; anything else
    /// is a SQLite file path.
    pub fn parse(s: &str) -> Database {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Database::Postgres(s.to_string())
        } else {
            Database::Sqlite(PathBuf::from(s))
        }
    }

    /// Open (creating and migrating when needed) the store, with up to
    /// `connections` pooled connections for reads (SQLite: read-only
    /// connections next to its one writer; PostgreSQL: the pool, plus one
    /// listening for live updates).
    pub fn open(&self, connections: usize) -> StoreResult<Arc<dyn Store>> {
        Ok(match self {
            Database::Sqlite(p) => Arc::new(SqliteStore::open(p, connections)?),
            Database::Postgres(url) => Arc::new(PgStore::connect(url, connections)?),
        })
    }
}

/// Shown in logs and errors: a PostgreSQL URL without its password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

/// `url` with the password of its user part (`user:secret@`) and of a
/// `password=` parameter replaced by `***`.
fn without_password(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, host) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            match auth {
                Some(a) => match a.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                    None => format!("{scheme}://{a}@{host}"),
                },
                None => format!("{scheme}://{host}"),
            }
        }
        None => head.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl From<&str> for Database {
    fn from(s: &str) -> Self {
        Database::parse(s)
    }
}

impl From<&Path> for Database {
    fn from(p: &Path) -> Self {
        Database::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Database {
    fn from(p: &PathBuf) -> Self {
        Database::Sqlite(p.clone())
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Self {
        Database::Sqlite(p)
    }
}

impl From<&Database> for Database {
    fn from(d: &Database) -> Self {
        d.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_are_files() {
        assert_eq!(
            Database::parse("postgres://ww@db:5432/ww"),
            Database::Postgres("postgres://ww@db:5432/ww".into())
        );
        assert!(matches!(
            Database::parse("PostgreSQL://h/d"),
            Database::Postgres(_)
        ));
        assert_eq!(
            Database::parse("weightwatch.db"),
            Database::Sqlite("weightwatch.db".into())
        );
        assert_eq!(
            Database::parse("./postgres:/x"),
            Database::Sqlite("./postgres:/x".into())
        );
    }

    #[test]
    fn passwords_are_not_shown() {
        let d = Database::parse("postgres://ww:s3cret@db:5432/ww?sslmode=disable&password=p2");
        let shown = d.to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("p2"),
            "{shown}"
        );
        assert_eq!(
            shown,
            "postgres://ww:***@db:5432/ww?sslmode=disable&password=***"
        );
        assert_eq!(
            Database::parse("postgres://ww@db/ww").to_string(),
            "postgres://ww@db/ww"
        );
    }
}
