//! Live updates shared by every server on one database: `NOTIFY` on the
//! `weightwatch_live` channel, one `LISTEN`ing connection per server.
//!
//! A notification's payload is `kind\ndata`. PostgreSQL refuses payloads
//! of 8000 bytes or more, and an alert's JSON can be larger: such an update
//! is written to `live_messages` and the payload is `@id`; listeners read
//! the row. Rows older than [`KEEP_MICROS`] are deleted by later senders.

use super::clean;
use crate::store::model::StoreResult;
use crate::store::traits::Deliver;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

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
    let mut payloads: Vec<String> = Vec::with_capacity(updates.len());
    let mut stored = false;
    for (kind, data) in updates {
        let (kind, data) = (clean(kind), clean(data));
        if kind.len() + data.len() < MAX_INLINE {
            payloads.push(format!("{kind}\n{data}"));
        } else {
            let id: i64 = c
                .query_one(
                    "INSERT INTO live_messages (at, kind, data) VALUES ($1, $2, $3) RETURNING id",
                    &[&now, &kind.as_ref(), &data.as_ref()],
                )
                .await?
                .get(0);
            payloads.push(format!("@{id}"));
            stored = true;
        }
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
        pool: Pool,
        deliver: Deliver,
    ) -> StoreResult<Listener> {
        let (client, notes) = subscribe(&config).await?;
        Ok(Listener {
            config,
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
                match subscribe(&self.config).await {
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
            let c = self
                .pool
                .get()
                .await
                .map_err(|e| crate::store::StoreError::Pool(e.to_string()))?;
            if let Some(r) = c
                .query_opt("SELECT kind, data FROM live_messages WHERE id = $1", &[&id])
                .await?
            {
                (self.deliver)(&r.get::<_, String>(0), &r.get::<_, String>(1));
            }
        } else if let Some((kind, data)) = payload.split_once('\n') {
            (self.deliver)(kind, data);
        }
        Ok(())
    }
}

/// A new connection listening on [`CHANNEL`], and its notifications.
async fn subscribe(
    config: &tokio_postgres::Config,
) -> StoreResult<(Client, mpsc::Receiver<Notification>)> {
    let (client, mut conn) = config.connect(NoTls).await?;
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
