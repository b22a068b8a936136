//! The PostgreSQL store: the same traits and semantics as the SQLite store,
//! for several dashboard servers (replicas) on one database and stores too
//! large for one file.
//!
//! Driver and pool: `tokio-postgres` with `deadpool-postgres`. The store
//! traits are blocking (the server calls them on tokio's blocking pool, the
//! admin commands have no runtime at all), so the store owns a small tokio
//! runtime that drives its connections, and each call waits for its query
//! with `block_on` (allowed on blocking-pool threads and plain threads).
//!
//! Durability: a batch is acknowledged after `COMMIT` returns, and with
//! PostgreSQL's defaults (`fsync=on`, `synchronous_commit=on`) a committed
//! transaction is in the flushed WAL: it survives a kill of the dashboard,
//! of PostgreSQL, and a power cut.
//!
//! Text: PostgreSQL's `text` cannot hold NUL, which JSON strings may carry;
//! columns store U+FFFD in its place ([`clean`]), the JSON bodies keep it
//! escaped (`\u0000`), and free-text queries are cleaned the same way, so a
//! search for text with a NUL still finds it.

mod incidents;
mod ingest;
mod live;
mod read;
mod schema;
mod tls;
mod users;

use super::model::{StoreError, StoreResult};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use schema::latest as schema_version;

/// Separator around member account ids in `alerts.members` (as in SQLite).
const SEP: char = '\u{1f}';

/// Advisory lock key of the retention job ("wwpurge!" as bytes): one
/// replica purges at a time, the others skip their turn.
pub const PURGE_LOCK: i64 = 0x7777_7075_7267_6521;

/// The PostgreSQL implementation of [`super::Store`].
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// TLS as the URL's `sslmode` asks (store/postgres/tls.rs).
    tls: MakeRustlsConnect,
    rt: Runtime,
    /// The last write failed because the database could not be written
    /// (read-only, full, unreachable); cleared by the next success.
    write_failed: AtomicBool,
    /// The incident grouping window, microseconds.
    incident_window: AtomicI64,
}

/// The store's own runtime, shut down without waiting when the store is
/// dropped (which may happen on an async thread, where waiting is not
/// allowed).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connect to the database at `url` (creating the schema or migrating
    /// it when needed), keeping up to `connections` + 1 pooled connections.
    pub fn connect(url: &str, connections: usize) -> StoreResult<Self> {
        let (mut config, tls) = tls::connect_config(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("weightwatch");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(1) + 1)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Pool(crate::store::model::with_causes(&e)))?;
        let store = PgStore {
            pool,
            config,
            tls,
            rt: Runtime(Some(rt)),
            write_failed: AtomicBool::new(false),
            incident_window: AtomicI64::new(crate::incidents::DEFAULT_WINDOW_MICROS),
        };
        store.run(async {
            let mut c = store.conn().await?;
            schema::migrate(&mut c).await
        })?;
        Ok(store)
    }

    /// Wait for `f` on the store's runtime.
    fn run<T>(&self, f: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        match &self.rt.0 {
            Some(rt) => rt.block_on(f),
            None => Err(StoreError::Pool("the store is closed".into())),
        }
    }

    /// A pooled connection.
    async fn conn(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Pool(crate::store::model::with_causes(&e)))
    }

    /// Run `f` in a transaction and commit; a deadlock or serialization
    /// failure (two replicas writing the same rows) is retried a few times,
    /// and so is a statement prepared before another replica's migration
    /// changed what it returns (the connection's statement cache is
    /// emptied first).
    fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: AsyncFn(&deadpool_postgres::Transaction<'_>) -> StoreResult<T>,
    {
        let result = self.run(async {
            let mut c = self.conn().await?;
            let statements = c.statement_cache.clone();
            let mut attempt = 0;
            loop {
                let tx = c.transaction().await?;
                let out = match f(&tx).await {
                    Ok(out) => tx.commit().await.map(|()| out).map_err(StoreError::from),
                    Err(e) => Err(e),
                };
                match out {
                    Err(StoreError::Postgres(e)) if retryable(&e) && attempt < 5 => attempt += 1,
                    Err(StoreError::Postgres(e)) if stale_plan(&e) && attempt < 5 => {
                        statements.clear();
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        });
        match &result {
            Ok(_) => self.write_failed.store(false, Ordering::Relaxed),
            Err(e) if cannot_write(e) => self.write_failed.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
        result
    }
}

/// A transaction that lost a race with another writer and may be retried.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// A cached prepared statement whose result columns a migration changed
/// (PostgreSQL replans it, but refuses a new row type).
fn stale_plan(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
        && e.as_db_error().is_some_and(|d| {
            d.message()
                .contains("cached plan must not change result type")
        })
}

/// Whether an error means the database cannot take writes at all (as
/// opposed to a bad statement or a constraint).
fn cannot_write(e: &StoreError) -> bool {
    match e {
        StoreError::Pool(_) => true,
        StoreError::Postgres(e) => match e.code() {
            None => e.is_closed() || e.as_db_error().is_none(),
            Some(c) => {
                *c == SqlState::READ_ONLY_SQL_TRANSACTION
                    || c.code().starts_with("53") // insufficient resources (disk full, …)
                    || c.code().starts_with("58") // system error (I/O)
                    || c.code().starts_with("57") // operator intervention (shutdown)
                    || c.code().starts_with("08") // connection exception
            }
        },
        _ => false,
    }
}

/// A statement prepared once per connection (deadpool's statement cache):
/// each use is then one round trip, where a query string is two (parse,
/// then bind and execute) and is planned again.
async fn prepared(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
) -> StoreResult<tokio_postgres::Statement> {
    Ok(tx.prepare_cached(sql).await?)
}

/// `s` as PostgreSQL `text` can hold it: NUL becomes U+FFFD (see the
/// module documentation).
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// [`clean`] of an optional string, owned (for array parameters).
fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| clean(s).into_owned())
}

fn members_text(members: &[String]) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let mut s = String::from(SEP);
    for m in members {
        s.push_str(&clean(m));
        s.push(SEP);
    }
    Some(s)
}

impl super::traits::LiveStore for PgStore {
    fn announce(&self, updates: &[(&str, &str)]) -> StoreResult<()> {
        self.run(async {
            let c = self.conn().await?;
            live::announce(&c, updates).await
        })
    }

    fn listen(&self, deliver: super::traits::Deliver) -> StoreResult<bool> {
        let rt = match &self.rt.0 {
            Some(rt) => rt,
            None => return Err(StoreError::Pool("the store is closed".into())),
        };
        let listener = rt.block_on(live::Listener::start(
            self.config.clone(),
            self.tls.clone(),
            self.pool.clone(),
            deliver,
        ))?;
        rt.spawn(listener.run());
        Ok(true)
    }
}
