//! The PostgreSQL side of incidents: grouping a batch's new alerts inside
//! the ingest transaction, and the incident list, detail and triage.
//!
//! Replicas: before reading the bindings of its keys, a batch takes a
//! transaction-level advisory lock per key (on the key's 64-bit text hash,
//! in the keys' sorted order, in one statement), so two replicas ingesting alerts with a common key
//! group one after the other and the second finds the first's incident;
//! `incident_keys.key` is the primary key besides. Incidents loaded for
//! update are row-locked (`FOR UPDATE`). A deadlock between two batches
//! is retried by [`PgStore::write`].

use super::read::row_alert;
use super::{PgStore, clean, prepared};
use crate::incidents::{Grouper, Incident, Kind, Observed, SEP, State, exposure};
use crate::store::model::*;
use crate::store::traits::{CANARY_SCAN, IncidentStore};
use deadpool_postgres::{GenericClient, Transaction};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const COLS: &str =
    "id, kind, title, status, severity, first_ts, last_ts, alert_count, src_ip, state";

/// Deletes incidents left without alerts (after a purge).
pub(super) const DROP_EMPTY: &str = "DELETE FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM incident_alerts m WHERE m.incident_id = i.id)";

fn row_incident(r: &Row) -> Incident {
    let kind: String = r.get(1);
    let state: String = r.get(9);
    let severity: i64 = r.get(4);
    Incident {
        id: r.get(0),
        kind: Kind::parse(&kind).unwrap_or(Kind::Transfer),
        title: r.get(2),
        status: r.get(3),
        severity: severity.clamp(1, 3) as u8,
        first_ts: r.get(5),
        last_ts: r.get(6),
        alert_count: r.get(7),
        src: r.get(8),
        // Written by this code; a state that does not parse starts empty.
        state: serde_json::from_str::<State>(&state).unwrap_or_default(),
    }
}

/// Ids the batch's new incidents carry while it is grouped: above every
/// stored id, in creation order, so "the oldest" of several incidents is
/// still the smallest id. The rows get sequence ids when written.
const PROVISIONAL: i64 = i64::MAX / 2;

/// Group the batch's new alerts into incidents (see `crate::incidents`);
/// the incidents touched, as they now are.
///
/// A fixed number of statements per batch, not per alert: the key locks,
/// the keys' bindings, the incidents they name (locked, in id order), the
/// ids of the new incidents, one upsert of every incident touched, the
/// keys and the memberships; plus a few per merge (rare).
pub(super) async fn group(
    tx: &Transaction<'_>,
    new_alerts: &[StoredAlert],
    window: i64,
) -> StoreResult<Vec<Incident>> {
    let batch: Vec<Observed> = new_alerts
        .iter()
        .filter_map(|a| Observed::from_stored(a.id, &a.body))
        .map(|mut o| {
            for k in &mut o.keys {
                k.text = clean(&k.text).into_owned();
            }
            o
        })
        .collect();
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let keys = Grouper::keys(&batch);
    // One round trip; `unnest` yields the (sorted) keys in array order, so
    // every batch takes its locks in one global order.
    tx.execute(
        &prepared(
            tx,
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
        )
        .await?,
        &[&keys],
    )
    .await?;
    let mut g = Grouper::new(window);
    // A route names a stored incident only through a stored binding recent
    // enough for the batch's oldest alert: those are read (and locked)
    // at once, and handed to the grouper when a route names them.
    let since = batch.iter().map(|o| o.ts).min().unwrap_or(0);
    let since = since.saturating_sub(window);
    let mut named: Vec<i64> = Vec::new();
    for r in tx
        .query(
            &prepared(
                tx,
                "SELECT key, incident_id, last_ts FROM incident_keys WHERE key = ANY($1)",
            )
            .await?,
            &[&keys],
        )
        .await?
    {
        let (key, id, last): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if last >= since {
            named.push(id);
        }
        g.bind(key, id, last);
    }
    named.sort_unstable();
    named.dedup();
    let mut stored: HashMap<i64, Incident> = HashMap::new();
    if !named.is_empty() {
        let sql = format!("SELECT {COLS} FROM incidents WHERE id = ANY($1) ORDER BY id FOR UPDATE");
        for r in tx.query(&prepared(tx, &sql).await?, &[&named]).await? {
            let i = row_incident(&r);
            stored.insert(i.id, i);
        }
    }
    let mut provisional = PROVISIONAL;
    for o in &batch {
        for id in g.missing(&g.route(o)) {
            match stored.remove(&id) {
                Some(i) => g.loaded(i),
                // Deleted meanwhile (a purge).
                None => g.forget(id),
            }
        }
        let new_id = g.route(o).is_empty().then(|| {
            provisional += 1;
            provisional
        });
        g.place(o, new_id);
    }
    let mut out = g.finish();
    // Sequence ids for the new incidents, in creation order (ascending, as
    // their provisional ids and as the row-by-row inserts gave them).
    let fresh: Vec<i64> = out
        .incidents
        .iter()
        .map(|i| i.id)
        .filter(|&id| id > PROVISIONAL)
        .collect();
    let mut ids: Vec<i64> = Vec::new();
    if !fresh.is_empty() {
        for r in tx
            .query(
                &prepared(
                    tx,
                    "SELECT nextval(pg_get_serial_sequence('incidents', 'id'))
                     FROM generate_series(1, $1::int8)",
                )
                .await?,
                &[&(fresh.len() as i64)],
            )
            .await?
        {
            ids.push(r.get(0));
        }
        ids.sort_unstable();
    }
    let real: HashMap<i64, i64> = fresh.into_iter().zip(ids).collect();
    let id = |i: i64| real.get(&i).copied().unwrap_or(i);
    for inc in &mut out.incidents {
        inc.id = id(inc.id);
    }
    for m in &mut out.members {
        m.1 = id(m.1);
    }
    for k in &mut out.keys {
        k.1 = id(k.1);
    }
    write_incidents(tx, &out.incidents).await?;
    for &(from, into) in &out.merged {
        // A new incident merged into another was never written.
        if from > PROVISIONAL {
            continue;
        }
        let into = id(into);
        for sql in [
            "UPDATE incident_alerts SET incident_id = $2 WHERE incident_id = $1",
            "UPDATE incident_keys SET incident_id = $2 WHERE incident_id = $1",
            "UPDATE audit SET incident_id = $2 WHERE incident_id = $1",
        ] {
            tx.execute(&prepared(tx, sql).await?, &[&from, &into])
                .await?;
        }
        tx.execute(
            &prepared(tx, "DELETE FROM incidents WHERE id = $1").await?,
            &[&from],
        )
        .await?;
    }
    let (k, i, l): (Vec<String>, Vec<i64>, Vec<i64>) = out.keys.into_iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut k, mut i, mut l), (key, id, last)| {
            k.push(key);
            i.push(id);
            l.push(last);
            (k, i, l)
        },
    );
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO incident_keys (key, incident_id, last_ts)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
             ON CONFLICT (key) DO UPDATE SET incident_id = excluded.incident_id,
                                             last_ts = excluded.last_ts",
        )
        .await?,
        &[&k, &i, &l],
    )
    .await?;
    let (alerts, ids): (Vec<i64>, Vec<i64>) = out.members.into_iter().unzip();
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO incident_alerts (alert_id, incident_id)
             SELECT * FROM unnest($1::bigint[], $2::bigint[])",
        )
        .await?,
        &[&alerts, &ids],
    )
    .await?;
    Ok(out.incidents)
}

/// Every incident a batch touched, new or stored, in one upsert.
async fn write_incidents(tx: &Transaction<'_>, incidents: &[Incident]) -> StoreResult<()> {
    if incidents.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&Incident) -> String| incidents.iter().map(f).collect::<Vec<String>>();
    let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    let kinds = col(&|i| i.kind.as_str().to_string());
    let titles = col(&|i| clean(&i.title).into_owned());
    let statuses = col(&|i| i.status.clone());
    let severities: Vec<i64> = incidents.iter().map(|i| i64::from(i.severity)).collect();
    let first: Vec<i64> = incidents.iter().map(|i| i.first_ts).collect();
    let last: Vec<i64> = incidents.iter().map(|i| i.last_ts).collect();
    let counts: Vec<i64> = incidents.iter().map(|i| i.alert_count).collect();
    let bytes: Vec<i64> = incidents
        .iter()
        .map(|i| i64::try_from(i.bytes()).unwrap_or(i64::MAX))
        .collect();
    let coverage: Vec<Option<f64>> = incidents.iter().map(Incident::coverage).collect();
    let categories = col(&|i| clean(&i.categories_text()).into_owned());
    let src: Vec<Option<String>> = incidents
        .iter()
        .map(|i| i.src.as_deref().map(|s| clean(s).into_owned()))
        .collect();
    let search = col(&|i| clean(&i.search_text()).into_owned());
    let mut states = Vec::with_capacity(incidents.len());
    for i in incidents {
        states.push(serde_json::to_string(&i.state)?);
    }
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO incidents (id, kind, title, status, severity, first_ts, last_ts,
                                    alert_count, bytes, coverage, categories, src_ip, search,
                                    state) OVERRIDING SYSTEM VALUE
             SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[],
                                  $6::int8[], $7::int8[], $8::int8[], $9::int8[],
                                  $10::float8[], $11::text[], $12::text[], $13::text[],
                                  $14::text[])
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, title = excluded.title,
                 status = excluded.status, severity = excluded.severity,
                 first_ts = excluded.first_ts, last_ts = excluded.last_ts,
                 alert_count = excluded.alert_count, bytes = excluded.bytes,
                 coverage = excluded.coverage, categories = excluded.categories,
                 src_ip = excluded.src_ip, search = excluded.search, state = excluded.state",
        )
        .await?,
        &[
            &ids,
            &kinds,
            &titles,
            &statuses,
            &severities,
            &first,
            &last,
            &counts,
            &bytes,
            &coverage,
            &categories,
            &src,
            &search,
            &states,
        ],
    )
    .await?;
    Ok(())
}

async fn load(c: &impl GenericClient, id: i64, lock: bool) -> StoreResult<Option<Incident>> {
    let sql = format!(
        "SELECT {COLS} FROM incidents WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(row_incident))
}

impl IncidentStore for PgStore {
    fn group_ungrouped(&self, after: i64, batch: usize) -> StoreResult<Option<(i64, usize)>> {
        let window = self.incident_window.load(Ordering::Relaxed);
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        self.write(async |tx| {
            let alerts: Vec<StoredAlert> = tx
                .query(
                    "SELECT a.id, a.status, e.body FROM alerts a JOIN events e ON e.id = a.id
                     WHERE a.id > $1
                       AND NOT EXISTS (SELECT 1 FROM incident_alerts i WHERE i.alert_id = a.id)
                     ORDER BY a.id LIMIT $2",
                    &[&after, &limit],
                )
                .await?
                .iter()
                .map(row_alert)
                .collect();
            group(tx, &alerts, window).await?;
            Ok(alerts.last().map(|a| (a.id, alerts.len())))
        })
    }

    fn set_incident_window(&self, micros: i64) {
        self.incident_window.store(micros, Ordering::Relaxed);
    }

    fn incidents(&self, f: &IncidentFilter) -> StoreResult<IncidentPage> {
        let mut sql = format!("SELECT {COLS} FROM incidents WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(t) = f.from {
            push(&mut sql, " AND last_ts >= ?", Box::new(t));
        }
        if let Some(t) = f.to {
            push(&mut sql, " AND first_ts < ?", Box::new(t));
        }
        if let Some(k) = f.kind {
            push(&mut sql, " AND kind = ?", Box::new(k.as_str().to_string()));
        }
        if let Some(c) = &f.category {
            let needle = format!("{SEP}{}{SEP}", clean(c));
            push(&mut sql, " AND strpos(categories, ?) > 0", Box::new(needle));
        }
        if let Some(s) = f.severity {
            push(&mut sql, " AND severity = ?", Box::new(i64::from(s)));
        }
        if let Some(s) = f.status {
            push(
                &mut sql,
                " AND status = ?",
                Box::new(s.as_str().to_string()),
            );
        }
        if let Some(q) = &f.text {
            let needle = clean(&q.to_lowercase()).into_owned();
            push(&mut sql, " AND strpos(search, ?) > 0", Box::new(needle));
        }
        if let Some(c) = f.cursor {
            push(&mut sql, " AND (last_ts, id) < (?", Box::new(c.ts));
            push(&mut sql, ", ?)", Box::new(c.id));
        }
        sql.push_str(&format!(
            " ORDER BY last_ts DESC, id DESC LIMIT {}",
            f.limit + 1
        ));
        self.run(async {
            let c = self.conn().await?;
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let mut incidents: Vec<Incident> = c
                .query(&sql, &params)
                .await?
                .iter()
                .map(row_incident)
                .collect();
            let more = incidents.len() > f.limit;
            incidents.truncate(f.limit);
            let next_cursor = incidents.last().filter(|_| more).map(|i| Cursor {
                ts: i.last_ts,
                id: i.id,
            });
            Ok(IncidentPage {
                incidents,
                next_cursor,
            })
        })
    }

    fn incident(&self, id: i64) -> StoreResult<Option<IncidentDetail>> {
        self.run(async {
            let c = self.conn().await?;
            let Some(incident) = load(&c, id, false).await? else {
                return Ok(None);
            };
            let alerts = c
                .query(
                    "SELECT a.id, a.status, e.body FROM incident_alerts m
                     JOIN alerts a ON a.id = m.alert_id JOIN events e ON e.id = a.id
                     WHERE m.incident_id = $1 ORDER BY a.ts, a.id LIMIT $2",
                    &[&id, &(INCIDENT_ALERTS as i64)],
                )
                .await?
                .iter()
                .map(row_alert)
                .collect();
            let audit = c
                .query(
                    "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit
                     WHERE incident_id = $1 AND alert_id IS NULL ORDER BY id",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| AuditEntry {
                    id: r.get(0),
                    ts: r.get(1),
                    actor: r.get(2),
                    action: r.get(3),
                    alert_id: r.get(4),
                    detail: r.get(5),
                    incident_id: r.get(6),
                })
                .collect();
            Ok(Some(IncidentDetail {
                incident,
                alerts,
                audit,
            }))
        })
    }

    fn exposure(&self) -> StoreResult<exposure::Measured> {
        self.run(async {
            let c = self.conn().await?;
            let until: Option<i64> = c.query_one("SELECT max(ts) FROM flows", &[]).await?.get(0);
            let hosts = match until {
                Some(t) => c
                    .query(
                        "SELECT src_ip, LEAST(sum(bytes_toserver), 9223372036854775807)::BIGINT AS b FROM flows
                         WHERE ts > $1 GROUP BY src_ip ORDER BY b DESC, src_ip LIMIT $2",
                        &[
                            &(t - exposure::RATE_SPAN_MICROS),
                            &(exposure::MAX_HOSTS as i64),
                        ],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect(),
                None => Vec::new(),
            };
            let states: Vec<String> = c
                .query(
                    "SELECT state FROM incidents WHERE kind = 'file' ORDER BY last_ts DESC LIMIT 1000",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(exposure::Measured {
                until,
                hosts,
                files: exposure::files_of(states.iter().map(String::as_str)),
            })
        })
    }

    fn last_canary(&self) -> StoreResult<Option<StoredAlert>> {
        self.run(async {
            let c = self.conn().await?;
            Ok(c.query_opt(
                "SELECT al.id, al.status, e.body FROM
                   (SELECT id, ts FROM alerts WHERE category = 'weights_known'
                    ORDER BY ts DESC, id DESC LIMIT $1) a
                 JOIN alerts al ON al.id = a.id JOIN events e ON e.id = a.id
                 WHERE (e.body::jsonb -> 'evidence' ->> 'canary') = 'true'
                 ORDER BY a.ts DESC, a.id DESC LIMIT 1",
                &[&CANARY_SCAN],
            )
            .await?
            .map(|r| StoredAlert {
                id: r.get(0),
                status: r.get(1),
                body: r.get(2),
            }))
        })
    }

    fn incident_of(&self, alert_id: i64) -> StoreResult<Option<i64>> {
        self.run(async {
            let c = self.conn().await?;
            Ok(c.query_opt(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = $1",
                &[&alert_id],
            )
            .await?
            .map(|r| r.get(0)))
        })
    }

    fn triage_incident(
        &self,
        id: i64,
        status: Status,
        note: &str,
        actor: &str,
        now: i64,
    ) -> StoreResult<Option<(Incident, Vec<i64>)>> {
        let (note, actor) = (clean(note), clean(actor));
        self.write(async |tx| {
            let Some(mut incident) = load(tx, id, true).await? else {
                return Ok(None);
            };
            let alerts: Vec<(i64, String)> = tx
                .query(
                    "SELECT a.id, a.status FROM incident_alerts m JOIN alerts a ON a.id = m.alert_id
                     WHERE m.incident_id = $1 ORDER BY a.id FOR UPDATE OF a",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let detail = |old: &str| {
                let mut d = format!("{old} → {status} (incident {id})");
                if !note.is_empty() {
                    d.push_str(": ");
                    d.push_str(&note);
                }
                d
            };
            let ids: Vec<i64> = alerts.iter().map(|(a, _)| *a).collect();
            let details: Vec<String> = alerts.iter().map(|(_, old)| detail(old)).collect();
            tx.execute(
                "UPDATE alerts SET status = $2 WHERE id = ANY($1)",
                &[&ids, &status.as_str()],
            )
            .await?;
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                 SELECT $1, $2, 'status', a, d, $5 FROM unnest($3::bigint[], $4::text[]) AS u(a, d)",
                &[&now, &actor.as_ref(), &ids, &details, &id],
            )
            .await?;
            tx.execute(
                "UPDATE incidents SET status = $2 WHERE id = $1",
                &[&id, &status.as_str()],
            )
            .await?;
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                 VALUES ($1, $2, 'incident_status', NULL, $3, $4)",
                &[&now, &actor.as_ref(), &detail(&incident.status), &id],
            )
            .await?;
            incident.status = status.as_str().to_string();
            Ok(Some((incident, ids)))
        })
    }
}
