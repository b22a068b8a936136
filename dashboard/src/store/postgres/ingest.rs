//! Events in and out: ingest (one transaction per batch, idempotent by
//! `event_id`), retention and account purges, the writability check.

use super::{PURGE_LOCK, PgStore, clean, clean_opt, members_text, prepared};
use crate::store::model::*;
use crate::store::traits::EventStore;
use deadpool_postgres::Transaction;
use eve::EventKind;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;

/// Rows deleted per retention transaction, so ingest is never blocked long.
const PURGE_BATCH: i64 = 5000;

impl EventStore for PgStore {
    fn ingest(&self, events: &[NewEvent], received: i64) -> StoreResult<IngestOutcome> {
        let window = self.incident_window.load(Ordering::Relaxed);
        self.write(async |tx| {
            let (mut out, accepted) = ingest_batch(tx, events, received).await?;
            out.incidents = super::incidents::group(tx, &out.new_alerts, window).await?;
            // Last: every batch of a sensor updates the same summary rows,
            // whose locks are held until COMMIT; taken here, concurrent
            // batches wait for each other's commit only, not for each
            // other's whole work (taken first, they ran one at a time).
            store_summaries(tx, events, &accepted, received).await?;
            Ok(out)
        })
    }

    fn purge_before(&self, cutoff: i64) -> StoreResult<usize> {
        let out = self.run(async {
            let c = self.conn().await?;
            // One replica at a time: the others find the lock taken and
            // leave the work to it. A session lock, so it is released if
            // this process dies mid-purge.
            let locked: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&PURGE_LOCK])
                .await?
                .get(0);
            if !locked {
                tracing::info!("retention: another server is purging");
                return Ok(0);
            }
            let mut result = purge_locked(&c, cutoff).await;
            if matches!(result, Ok(n) if n > 0)
                && let Err(e) = c.execute(super::incidents::DROP_EMPTY, &[]).await
            {
                result = Err(e.into());
            }
            c.execute("SELECT pg_advisory_unlock($1)", &[&PURGE_LOCK])
                .await?;
            result
        });
        if out.is_ok() {
            self.write_failed.store(false, Ordering::Relaxed);
        }
        out
    }

    fn purge_account(&self, account: &str) -> StoreResult<PurgeCounts> {
        self.write(async |tx| {
            let counts = purge_account(tx, account).await?;
            tx.execute(super::incidents::DROP_EMPTY, &[]).await?;
            Ok(counts)
        })
    }

    fn check_writable(&self) -> StoreResult<()> {
        if self.write_failed.load(Ordering::Relaxed) {
            return Err(StoreError::NotWritable("the last write failed"));
        }
        self.run(async {
            let c = self.conn().await?;
            let writable: bool = c
                .query_one(
                    "SELECT NOT pg_is_in_recovery()
                        AND current_setting('default_transaction_read_only') = 'off'",
                    &[],
                )
                .await?
                .get(0);
            if writable {
                Ok(())
            } else {
                Err(StoreError::NotWritable("the database is read-only"))
            }
        })
    }
}

/// The accepted events of a batch: (position in the batch, row id), in
/// batch order.
type Accepted = Vec<(usize, i64)>;

/// Store one batch's rows: the new events in one `INSERT … ON CONFLICT DO
/// NOTHING` (a concurrent writer of the same `event_id` on another replica
/// waits for this one and then finds it stored), then their type-specific
/// rows, as arrays (one round trip per table, not per event). The summary
/// rows are written by [`store_summaries`], last.
async fn ingest_batch(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    received: i64,
) -> StoreResult<(IngestOutcome, Accepted)> {
    let mut out = IngestOutcome::default();
    // The first occurrence of each id is inserted; repeats within the batch
    // are compared with what that id stores afterwards.
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (pos, ne) in events.iter().enumerate() {
        match first.entry(clean(&ne.event_id).into_owned()) {
            Entry::Occupied(o) => repeats.push((pos, *o.get())),
            Entry::Vacant(v) => {
                v.insert(pos);
                fresh.push(pos);
            }
        }
    }
    let col = |f: &dyn Fn(&NewEvent) -> Option<String>| -> Vec<Option<String>> {
        fresh.iter().map(|&i| f(&events[i])).collect()
    };
    let ids = col(&|e| Some(clean(&e.event_id).into_owned()));
    let types = col(&|e| Some(clean(&e.event_type).into_owned()));
    let sensors = col(&|e| clean_opt(&e.sensor_id));
    let communities = col(&|e| clean_opt(&e.community_id));
    let bodies = col(&|e| Some(clean(&e.body).into_owned()));
    let ts: Vec<i64> = fresh.iter().map(|&i| events[i].ts).collect();
    // flow ids are u64 on the wire; stored bit-for-bit as i64.
    let flows: Vec<Option<i64>> = fresh
        .iter()
        .map(|&i| events[i].flow_id.map(|f| f as i64))
        .collect();
    let rows = tx
        .query(
            &prepared(
                tx,
                "INSERT INTO events (event_id, event_type, ts, received, sensor_id,
                                 flow_id, community_id, body)
             SELECT u.event_id, u.event_type, u.ts, $4, u.sensor_id, u.flow_id,
                    u.community_id, u.body
             FROM unnest($1::text[], $2::text[], $3::int8[], $5::text[], $6::int8[],
                         $7::text[], $8::text[])
                  AS u(event_id, event_type, ts, sensor_id, flow_id, community_id, body)
             ON CONFLICT (event_id) DO NOTHING
             RETURNING id, event_id",
            )
            .await?,
            &[
                &ids,
                &types,
                &ts,
                &received,
                &sensors,
                &flows,
                &communities,
                &bodies,
            ],
        )
        .await?;
    let inserted: HashMap<String, i64> = rows
        .iter()
        .map(|r| (r.get::<_, String>(1), r.get::<_, i64>(0)))
        .collect();
    // What the ids not inserted hold (stored before, maybe by another replica).
    let missing: Vec<&str> = ids
        .iter()
        .flatten()
        .filter(|id| !inserted.contains_key(*id))
        .map(String::as_str)
        .collect();
    let mut stored: HashMap<String, String> = HashMap::new();
    if !missing.is_empty() {
        for r in tx
            .query(
                &prepared(
                    tx,
                    "SELECT event_id, body FROM events WHERE event_id = ANY($1)",
                )
                .await?,
                &[&missing],
            )
            .await?
        {
            stored.insert(r.get(0), r.get(1));
        }
    }
    let mut accepted: Vec<(usize, i64)> = Vec::new();
    for &pos in &fresh {
        let id = clean(&events[pos].event_id);
        match inserted.get(id.as_ref()) {
            Some(&rowid) => accepted.push((pos, rowid)),
            // The same content is a resend; other content under the same
            // id is a conflict, reported and not stored.
            None if stored.get(id.as_ref()).map(String::as_str)
                == Some(clean(&events[pos].body).as_ref()) =>
            {
                out.duplicates += 1
            }
            None => out.conflicts.push(pos),
        }
    }
    for (pos, first) in repeats {
        let id = clean(&events[first].event_id);
        let holds = match inserted.contains_key(id.as_ref()) {
            true => Some(clean(&events[first].body)),
            false => stored.get(id.as_ref()).map(|s| clean(s)),
        };
        if holds.as_deref() == Some(clean(&events[pos].body).as_ref()) {
            out.duplicates += 1;
        } else {
            out.conflicts.push(pos);
        }
    }
    out.conflicts.sort_unstable();
    out.accepted = accepted.len();
    accepted.sort_unstable();
    let alerts = new_alerts(events, &accepted);
    store_alerts(tx, &alerts).await?;
    out.new_alerts = alerts
        .iter()
        .map(|&(ne, id, _)| StoredAlert {
            id,
            status: Status::New.as_str().to_string(),
            body: ne.body.clone(),
        })
        .collect();
    store_flows(tx, events, &accepted).await?;
    Ok((out, accepted))
}

/// The rows every batch of a sensor (or analyzer account) updates: per
/// sensor its event count and newest stats, alerts per sensor and
/// category, accounts, clusters. Each in a fixed order, so concurrent
/// batches lock them alike.
async fn store_summaries(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    accepted: &[(usize, i64)],
    received: i64,
) -> StoreResult<()> {
    store_sensors(tx, events, accepted, received).await?;
    let alerts = new_alerts(events, accepted);
    store_sensor_categories(tx, &alerts).await?;
    store_accounts(tx, &alerts).await?;
    store_clusters(tx, &alerts).await?;
    for &(pos, _) in accepted {
        let ne = &events[pos];
        if let (Indexed::Stats(stats), Some(sensor)) = (&ne.index, &ne.sensor_id) {
            tx.execute(
                &prepared(
                    tx,
                    "UPDATE sensors SET
                   prev_stats = CASE WHEN stats_ts < $3 THEN stats ELSE prev_stats END,
                   prev_stats_ts = CASE WHEN stats_ts < $3 THEN stats_ts ELSE prev_stats_ts END,
                   stats = $2, stats_ts = $3
                 WHERE sensor_id = $1 AND (stats_ts IS NULL OR stats_ts <= $3)",
                )
                .await?,
                &[&clean(sensor), &clean(stats), &ne.ts],
            )
            .await?;
        }
    }
    Ok(())
}

/// Each sensor's newest event time and event count, once per batch.
async fn store_sensors(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    accepted: &[(usize, i64)],
    received: i64,
) -> StoreResult<()> {
    let mut per: HashMap<String, (i64, i64)> = HashMap::new();
    for &(pos, _) in accepted {
        if let Some(s) = &events[pos].sensor_id {
            let e = per.entry(clean(s).into_owned()).or_insert((i64::MIN, 0));
            e.0 = e.0.max(events[pos].ts);
            e.1 += 1;
        }
    }
    // In a fixed order, so two replicas' batches lock the rows alike; one
    // statement for all (unnest keeps the arrays' order).
    let mut per: Vec<_> = per.into_iter().collect();
    per.sort();
    if per.is_empty() {
        return Ok(());
    }
    let sensors: Vec<&str> = per.iter().map(|p| p.0.as_str()).collect();
    let ts: Vec<i64> = per.iter().map(|p| p.1.0).collect();
    let counts: Vec<i64> = per.iter().map(|p| p.1.1).collect();
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO sensors (sensor_id, last_event_ts, last_received, events)
             SELECT u.s, u.t, $3, u.n FROM unnest($1::text[], $2::int8[], $4::int8[]) AS u(s, t, n)
             ON CONFLICT (sensor_id) DO UPDATE SET
               last_event_ts = greatest(sensors.last_event_ts, excluded.last_event_ts),
               last_received = greatest(sensors.last_received, excluded.last_received),
               events = sensors.events + excluded.events,
               stale_since = NULL",
        )
        .await?,
        &[&sensors, &ts, &received, &counts],
    )
    .await?;
    Ok(())
}

/// An accepted alert: the event, its row id, its alert columns.
type NewAlert<'a> = (&'a NewEvent, i64, &'a AlertIndex);

/// The accepted alerts of a batch, in batch order.
fn new_alerts<'a>(events: &'a [NewEvent], accepted: &[(usize, i64)]) -> Vec<NewAlert<'a>> {
    accepted
        .iter()
        .filter_map(|&(pos, id)| match &events[pos].index {
            Indexed::Alert(a) => Some((&events[pos], id, a)),
            _ => None,
        })
        .collect()
}

/// The alert rows of the accepted alerts.
async fn store_alerts(tx: &Transaction<'_>, alerts: &[NewAlert<'_>]) -> StoreResult<()> {
    if alerts.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = alerts.iter().map(|a| a.1).collect();
    let ts: Vec<i64> = alerts.iter().map(|a| a.0.ts).collect();
    let severity: Vec<i64> = alerts.iter().map(|a| i64::from(a.2.severity)).collect();
    let text = |f: &dyn Fn(&NewAlert) -> Option<String>| {
        alerts.iter().map(f).collect::<Vec<Option<String>>>()
    };
    let category = text(&|a| Some(clean(&a.2.category).into_owned()));
    let sensor = text(&|a| clean_opt(&a.0.sensor_id));
    let src = text(&|a| clean_opt(&a.2.src_ip));
    let dest = text(&|a| clean_opt(&a.2.dest_ip));
    let account = text(&|a| clean_opt(&a.2.account_id));
    let cluster = text(&|a| clean_opt(&a.2.cluster_id));
    let members = text(&|a| members_text(&a.2.members));
    let search = text(&|a| Some(clean(&a.2.search).into_owned()));
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO alerts (id, ts, category, severity, sensor_id, src_ip, dest_ip,
                             account_id, cluster_id, members, search)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[],
                              $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                              $11::text[])",
        )
        .await?,
        &[
            &ids, &ts, &category, &severity, &sensor, &src, &dest, &account, &cluster, &members,
            &search,
        ],
    )
    .await?;
    Ok(())
}

/// Alerts per sensor and category, once per pair, in a fixed order.
async fn store_sensor_categories(tx: &Transaction<'_>, alerts: &[NewAlert<'_>]) -> StoreResult<()> {
    let mut per: HashMap<(String, String), i64> = HashMap::new();
    for &(ne, _, a) in alerts {
        if let Some(s) = &ne.sensor_id {
            *per.entry((clean(s).into_owned(), clean(&a.category).into_owned()))
                .or_default() += 1;
        }
    }
    let mut per: Vec<_> = per.into_iter().collect();
    per.sort();
    if per.is_empty() {
        return Ok(());
    }
    let sensors: Vec<&str> = per.iter().map(|p| p.0.0.as_str()).collect();
    let categories: Vec<&str> = per.iter().map(|p| p.0.1.as_str()).collect();
    let counts: Vec<i64> = per.iter().map(|p| p.1).collect();
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO sensor_categories AS sc (sensor_id, category, alerts)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])
             ON CONFLICT (sensor_id, category) DO UPDATE SET alerts = sc.alerts + excluded.alerts",
        )
        .await?,
        &[&sensors, &categories, &counts],
    )
    .await?;
    Ok(())
}

/// The clusters the batch's analyzer alerts name, and their member accounts.
async fn store_clusters(tx: &Transaction<'_>, alerts: &[NewAlert<'_>]) -> StoreResult<()> {
    for &(ne, id, a) in alerts {
        if let (Some(cl), false) = (&a.cluster_id, a.members.is_empty()) {
            let cl = clean(cl);
            let members: Vec<String> = a.members.iter().map(|m| clean(m).into_owned()).collect();
            tx.execute(
                &prepared(
                    tx,
                    "INSERT INTO clusters AS c (cluster_id, members, last_alert, last_ts)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (cluster_id) DO UPDATE SET
                   members = CASE WHEN excluded.last_ts >= c.last_ts
                                  THEN excluded.members ELSE c.members END,
                   last_alert = CASE WHEN excluded.last_ts >= c.last_ts
                                     THEN excluded.last_alert ELSE c.last_alert END,
                   last_ts = greatest(c.last_ts, excluded.last_ts)",
                )
                .await?,
                &[&cl, &serde_json::to_string(&members)?, &id, &ne.ts],
            )
            .await?;
            tx.execute(
                &prepared(
                    tx,
                    "INSERT INTO accounts (account_id, score, cluster_id, last_alert, last_ts,
                                       alert_count)
                 SELECT m, NULL, $2, NULL, $3, 0 FROM unnest($1::text[]) m
                 ON CONFLICT (account_id) DO UPDATE SET cluster_id = excluded.cluster_id",
                )
                .await?,
                &[&members, &cl, &ne.ts],
            )
            .await?;
        }
    }
    Ok(())
}

/// One account's alerts in a batch, folded.
struct AccountFold {
    count: i64,
    /// The newest alert (by time; of equal times the later in the batch):
    /// its id, time and score.
    newest: (i64, i64, Option<f64>),
    /// The cluster named by the newest alert that names one.
    cluster: Option<(i64, String)>,
}

/// The accounts of a batch's analyzer alerts, one upsert for all: per
/// account the alert count grows by its alerts in the batch, and the newest
/// of them (by time, the later of equal times) sets the score, cluster and
/// newest alert when it is at least as new as the stored one, as the
/// SQLite store's row-by-row upserts do. (Within one batch the cluster is
/// the newest alert's that names one.)
async fn store_accounts(tx: &Transaction<'_>, alerts: &[NewAlert<'_>]) -> StoreResult<()> {
    let mut folds: HashMap<String, AccountFold> = HashMap::new();
    for &(ne, id, a) in alerts {
        let Some(acct) = &a.account_id else { continue };
        let f = folds
            .entry(clean(acct).into_owned())
            .or_insert(AccountFold {
                count: 0,
                newest: (id, ne.ts, a.score),
                cluster: None,
            });
        f.count += 1;
        if ne.ts >= f.newest.1 {
            f.newest = (id, ne.ts, a.score);
        }
        if let Some(cl) = &a.cluster_id
            && f.cluster.as_ref().is_none_or(|(ts, _)| ne.ts >= *ts)
        {
            f.cluster = Some((ne.ts, clean(cl).into_owned()));
        }
    }
    if folds.is_empty() {
        return Ok(());
    }
    // In a fixed order, so two replicas' batches lock the rows alike.
    let mut folds: Vec<(String, AccountFold)> = folds.into_iter().collect();
    folds.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<&str> = folds.iter().map(|f| f.0.as_str()).collect();
    let scores: Vec<Option<f64>> = folds.iter().map(|f| f.1.newest.2).collect();
    let clusters: Vec<Option<&str>> = folds
        .iter()
        .map(|f| f.1.cluster.as_ref().map(|c| c.1.as_str()))
        .collect();
    let last: Vec<i64> = folds.iter().map(|f| f.1.newest.0).collect();
    let ts: Vec<i64> = folds.iter().map(|f| f.1.newest.1).collect();
    let counts: Vec<i64> = folds.iter().map(|f| f.1.count).collect();
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO accounts AS ac (account_id, score, cluster_id, last_alert, last_ts,
                                     alert_count)
         SELECT * FROM unnest($1::text[], $2::float8[], $3::text[], $4::int8[], $5::int8[],
                              $6::int8[])
         ON CONFLICT (account_id) DO UPDATE SET
           alert_count = ac.alert_count + excluded.alert_count,
           score = CASE WHEN excluded.last_ts >= ac.last_ts OR ac.last_alert IS NULL
                        THEN excluded.score ELSE ac.score END,
           cluster_id = CASE WHEN excluded.cluster_id IS NOT NULL
                              AND (excluded.last_ts >= ac.last_ts OR ac.cluster_id IS NULL)
                             THEN excluded.cluster_id ELSE ac.cluster_id END,
           last_alert = CASE WHEN excluded.last_ts >= ac.last_ts OR ac.last_alert IS NULL
                             THEN excluded.last_alert ELSE ac.last_alert END,
           last_ts = greatest(ac.last_ts, excluded.last_ts)",
        )
        .await?,
        &[&ids, &scores, &clusters, &last, &ts, &counts],
    )
    .await?;
    Ok(())
}

/// The flow rows of the accepted flows.
async fn store_flows(
    tx: &Transaction<'_>,
    events: &[NewEvent],
    accepted: &[(usize, i64)],
) -> StoreResult<()> {
    let flows: Vec<(&NewEvent, i64, &FlowIndex)> = accepted
        .iter()
        .filter_map(|&(pos, id)| match &events[pos].index {
            Indexed::Flow(f) => Some((&events[pos], id, f)),
            _ => None,
        })
        .collect();
    if flows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = flows.iter().map(|f| f.1).collect();
    let ts: Vec<i64> = flows.iter().map(|f| f.0.ts).collect();
    let src: Vec<String> = flows
        .iter()
        .map(|f| clean(&f.2.src_ip).into_owned())
        .collect();
    let dest: Vec<String> = flows
        .iter()
        .map(|f| clean(&f.2.dest_ip).into_owned())
        .collect();
    let sni: Vec<Option<String>> = flows.iter().map(|f| clean_opt(&f.2.sni)).collect();
    let up: Vec<i64> = flows
        .iter()
        .map(|f| i64::try_from(f.2.bytes_toserver).unwrap_or(i64::MAX))
        .collect();
    let down: Vec<i64> = flows
        .iter()
        .map(|f| i64::try_from(f.2.bytes_toclient).unwrap_or(i64::MAX))
        .collect();
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO flows (id, ts, src_ip, dest_ip, sni, bytes_toserver, bytes_toclient)
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[],
                              $6::int8[], $7::int8[])",
        )
        .await?,
        &[&ids, &ts, &src, &dest, &sni, &up, &down],
    )
    .await?;
    Ok(())
}

/// Retention with the purge lock held: batches of deletes, then the
/// accounts and clusters whose alerts are gone.
async fn purge_locked(c: &tokio_postgres::Client, cutoff: i64) -> StoreResult<usize> {
    let mut total = 0;
    loop {
        let n = c
            .execute(
                "DELETE FROM events WHERE id IN
                   (SELECT id FROM events WHERE received < $1 LIMIT $2)",
                &[&cutoff, &PURGE_BATCH],
            )
            .await?;
        total += n as usize;
        if n == 0 {
            break;
        }
    }
    if total > 0 {
        c.batch_execute(
            "BEGIN;
             DELETE FROM accounts WHERE last_alert IS NOT NULL
               AND last_alert NOT IN (SELECT id FROM alerts);
             DELETE FROM clusters WHERE last_alert IS NOT NULL
               AND last_alert NOT IN (SELECT id FROM alerts);
             DELETE FROM accounts WHERE last_alert IS NULL
               AND cluster_id NOT IN (SELECT cluster_id FROM clusters);
             COMMIT;",
        )
        .await?;
    }
    Ok(total)
}

/// Delete an account's alerts and drop it from cluster member lists.
async fn purge_account(
    tx: &tokio_postgres::Transaction<'_>,
    account: &str,
) -> StoreResult<PurgeCounts> {
    let account = clean(account);
    let mut counts = PurgeCounts::default();
    let ids: Vec<i64> = tx
        .query("SELECT id FROM alerts WHERE account_id = $1", &[&account])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    counts.events = tx
        .execute("DELETE FROM events WHERE id = ANY($1)", &[&ids])
        .await? as usize;
    counts.alerts = ids.len();
    let needle = format!("{}{account}{}", super::SEP, super::SEP);
    let clusters = tx
        .query(
            "SELECT a.id, e.body FROM alerts a JOIN events e ON e.id = a.id
             WHERE strpos(a.members, $1) > 0",
            &[&needle],
        )
        .await?;
    for r in clusters {
        let (id, body): (i64, String) = (r.get(0), r.get(1));
        let mut v: serde_json::Value = serde_json::from_str(&body)?;
        if let Some(m) = v.get_mut("members").and_then(|m| m.as_array_mut()) {
            m.retain(|x| x.as_str().map(clean).as_deref() != Some(account.as_ref()));
        }
        let new_body = serde_json::to_string(&v)?;
        let members: Vec<String> = v
            .get("members")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        let search = match serde_json::from_value::<eve::Event>(v) {
            Ok(ev) => match &ev.kind {
                EventKind::Alert(a) => search_text(&ev, a),
                _ => String::new(),
            },
            Err(_) => String::new(),
        };
        tx.execute(
            "UPDATE events SET body = $2 WHERE id = $1",
            &[&id, &new_body],
        )
        .await?;
        tx.execute(
            "UPDATE alerts SET members = $2, search = $3 WHERE id = $1",
            &[&id, &members_text(&members), &clean(&search)],
        )
        .await?;
        counts.clusters_rewritten += 1;
    }
    for r in tx
        .query("SELECT cluster_id, members FROM clusters", &[])
        .await?
    {
        let (cid, m): (String, String) = (r.get(0), r.get(1));
        let mut members: Vec<String> = serde_json::from_str(&m)?;
        let before = members.len();
        members.retain(|x| x.as_str() != account.as_ref());
        if members.len() != before {
            tx.execute(
                "UPDATE clusters SET members = $2 WHERE cluster_id = $1",
                &[&cid, &serde_json::to_string(&members)?],
            )
            .await?;
        }
    }
    tx.execute("DELETE FROM accounts WHERE account_id = $1", &[&account])
        .await?;
    Ok(counts)
}
