//! Live updates shared by every server on one database: `NOTIFY` on the
//! `weightwatch_live` channel, one `LISTEN`ing connection per server.
//!
//! A notification's payload is one or more updates, each `kind\ndata`,
//! joined by `\n` (data is compact JSON, which has no raw newline): an
//! ingested batch of 500 alerts is a few dozen notifications, not 500.
//! PostgreSQL refuses payloads of 8000 bytes or more, and an alert's JSON
//! can be larger: such an update (or one with a raw newline) is written to
//! `live_messages` and the payload is `@id`; listeners read
//! the row.

use super::clean;
use crate::store::model::StoreResult;
use crate::store::traits::Deliver;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel every server listens on.
const CHANNEL: &str = "weightwatch_live";

/// Largest payload sent inline (PostgreSQL's limit is 8000 bytes).
const MAX_INLINE: usize = 7000;

/// How long a large update stays readable in `live_messages`.
const KEEP_MICROS: i64 = 60_000_000;

/// Notifications received and not yet delivered, per listener.
const QUEUE: usize = 1024;

/// Send `updates` (kind, data) to every listening server, in order.
pub(super) async fn announce(c: &Client, updates: &[(&str, &str)]) -> StoreResult<()> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut payloads: Vec<String> = Vec::new();
    let mut group = String::new();
    let mut stored = false;
    for (kind, data) in updates {
        let (kind, data) = (clean(kind), clean(data));
        let len = kind.len() + 1 + data.len();
        if len >= MAX_INLINE || kind.contains('\n') || data.contains('\n') {
            if !group.is_empty() {
                payloads.push(std::mem::take(&mut group));
            }
            let id: i64 = c
                .query_one(
                    "INSERT INTO live_messages (at, kind, data) VALUES ($1, $2, $3) RETURNING id",
                    &[&now, &kind.as_ref(), &data.as_ref()],
                )
                .await?
                .get(0);
            payloads.push(format!("@{id}"));
            stored = true;
            continue;
        }
        if !group.is_empty() && group.len() + 1 + len >= MAX_INLINE {
            payloads.push(std::mem::take(&mut group));
        }
        if !group.is_empty() {
            group.push('\n');
        }
        group.push_str(&kind);
        group.push('\n');
        group.push_str(&data);
    }
    if !group.is_empty() {
        payloads.push(group);
    }
    c.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n",
        &[&CHANNEL, &payloads],
    )
    .await?;
    if stored {
        c.execute(
            "DELETE FROM live_messages WHERE at < $1",
            &[&(now - KEEP_MICROS)],
        )
        .await?;
    }
    Ok(())
}

/// One server's `LISTEN`ing connection and where its updates go.
pub(super) struct Listener {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    pool: Pool,
    deliver: Deliver,
    /// Kept so the connection stays open.
    _client: Client,
    notes: mpsc::Receiver<Notification>,
}

impl Listener {
    /// Connect and `LISTEN`; updates announced after this returns are
    /// delivered once [`Listener::run`] runs.
    pub(super) async fn start(
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        pool: Pool,
        deliver: Deliver,
    ) -> StoreResult<Listener> {
        let (client, notes) = subscribe(&config, &tls).await?;
        Ok(Listener {
            config,
            tls,
            pool,
            deliver,
            _client: client,
            notes,
        })
    }

    /// Deliver updates until the store's runtime stops; a lost connection
    /// (PostgreSQL restarted) is opened again, once a second.
    pub(super) async fn run(mut self) {
        loop {
            while let Some(n) = self.notes.recv().await {
                if let Err(e) = self.handle(n.payload()).await {
                    tracing::warn!(error = %e, "live update not delivered");
                }
            }
            tracing::warn!("live updates: connection lost, reconnecting");
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match subscribe(&self.config, &self.tls).await {
                    Ok((client, notes)) => {
                        self._client = client;
                        self.notes = notes;
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "live updates: reconnect failed"),
                }
            }
        }
    }

    async fn handle(&self, payload: &str) -> StoreResult<()> {
        if let Some(id) = payload.strip_prefix('@') {
            let Ok(id) = id.parse::<i64>() else {
                return Ok(());
            };
            let c = self.pool.get().await.map_err(|e| {
                crate::store::StoreError::Pool(crate::store::model::with_causes(&e))
            })?;
            if let Some(r) = c
                .query_opt("SELECT kind, data FROM live_messages WHERE id = $1", &[&id])
                .await?
            {
                (self.deliver)(&r.get::<_, String>(0), &r.get::<_, String>(1));
            }
        } else {
            let mut lines = payload.split('\n');
            while let (Some(kind), Some(data)) = (lines.next(), lines.next()) {
                (self.deliver)(kind, data);
            }
        }
        Ok(())
    }
}

/// A new connection listening on [`CHANNEL`], and its notifications.
async fn subscribe(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
) -> StoreResult<(Client, mpsc::Receiver<Notification>)> {
    let (client, mut conn) = config.connect(tls.clone()).await?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "live updates: connection failed");
                    break;
                }
            }
        }
    });
    client.batch_execute("LISTEN weightwatch_live").await?;
    Ok((client, rx))
}
