//! The SQLite side of incidents: grouping a batch's new alerts inside the
//! ingest transaction (one writer, so no two batches group at once), and
//! the incident list, detail and triage.

use super::{SqliteStore, row_alert, row_audit};
use crate::incidents::{Grouper, Incident, Kind, Observed, SEP, State, exposure};
use crate::store::model::*;
use crate::store::traits::{CANARY_SCAN, IncidentStore};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};
use std::sync::atomic::Ordering;

const COLS: &str =
    "id, kind, title, status, severity, first_ts, last_ts, alert_count, src_ip, state";

fn row_incident(r: &rusqlite::Row) -> rusqlite::Result<Incident> {
    let kind: String = r.get(1)?;
    let state: String = r.get(9)?;
    Ok(Incident {
        id: r.get(0)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Transfer),
        title: r.get(2)?,
        status: r.get(3)?,
        severity: r.get(4)?,
        first_ts: r.get(5)?,
        last_ts: r.get(6)?,
        alert_count: r.get(7)?,
        src: r.get(8)?,
        // Written by this code; a state that does not parse starts empty.
        state: serde_json::from_str::<State>(&state).unwrap_or_default(),
    })
}

/// Group the batch's new alerts into incidents (see `crate::incidents`);
/// the incidents touched, as they now are.
pub(super) fn group(
    tx: &Transaction,
    new_alerts: &[StoredAlert],
    window: i64,
) -> StoreResult<Vec<Incident>> {
    let batch: Vec<Observed> = new_alerts
        .iter()
        .filter_map(|a| Observed::from_stored(a.id, &a.body))
        .collect();
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut g = Grouper::new(window);
    {
        let mut stmt =
            tx.prepare_cached("SELECT incident_id, last_ts FROM incident_keys WHERE key = ?1")?;
        for key in Grouper::keys(&batch) {
            if let Some((id, last)) = stmt
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            {
                g.bind(key, id, last);
            }
        }
    }
    for o in &batch {
        for id in g.missing(&g.route(o)) {
            let inc = tx
                .prepare_cached(&format!("SELECT {COLS} FROM incidents WHERE id = ?1"))?
                .query_row([id], row_incident)
                .optional()?;
            match inc {
                Some(inc) => g.loaded(inc),
                None => g.forget(id),
            }
        }
        let new_id = if g.route(o).is_empty() {
            tx.prepare_cached(
                "INSERT INTO incidents (kind, title, severity, first_ts, last_ts, alert_count,
                                        bytes, categories, search, state)
                 VALUES ('transfer', '', 3, ?1, ?1, 0, 0, '', '', '{}')",
            )?
            .execute([o.ts])?;
            Some(tx.last_insert_rowid())
        } else {
            None
        };
        g.place(o, new_id);
    }
    let out = g.finish();
    for (from, into) in &out.merged {
        tx.execute(
            "UPDATE incident_alerts SET incident_id = ?2 WHERE incident_id = ?1",
            params![from, into],
        )?;
        tx.execute(
            "UPDATE incident_keys SET incident_id = ?2 WHERE incident_id = ?1",
            params![from, into],
        )?;
        tx.execute(
            "UPDATE audit SET incident_id = ?2 WHERE incident_id = ?1",
            params![from, into],
        )?;
        tx.execute("DELETE FROM incidents WHERE id = ?1", [from])?;
    }
    for (key, id, last) in &out.keys {
        tx.prepare_cached(
            "INSERT INTO incident_keys (key, incident_id, last_ts) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET incident_id = excluded.incident_id,
                                            last_ts = excluded.last_ts",
        )?
        .execute(params![key, id, last])?;
    }
    for (alert, id) in &out.members {
        tx.prepare_cached("INSERT INTO incident_alerts (alert_id, incident_id) VALUES (?1, ?2)")?
            .execute(params![alert, id])?;
    }
    for inc in &out.incidents {
        tx.prepare_cached(
            "UPDATE incidents SET kind = ?2, title = ?3, status = ?4, severity = ?5,
                 first_ts = ?6, last_ts = ?7, alert_count = ?8, bytes = ?9, coverage = ?10,
                 categories = ?11, src_ip = ?12, search = ?13, state = ?14
             WHERE id = ?1",
        )?
        .execute(params![
            inc.id,
            inc.kind.as_str(),
            inc.title,
            inc.status,
            inc.severity,
            inc.first_ts,
            inc.last_ts,
            inc.alert_count,
            i64::try_from(inc.bytes()).unwrap_or(i64::MAX),
            inc.coverage(),
            inc.categories_text(),
            inc.src,
            inc.search_text(),
            serde_json::to_string(&inc.state)?,
        ])?;
    }
    Ok(out.incidents)
}

/// Delete incidents left without alerts (after a purge).
pub(super) fn drop_empty(tx: &Transaction) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM incidents WHERE id NOT IN (SELECT incident_id FROM incident_alerts)",
        [],
    )?;
    Ok(())
}

impl IncidentStore for SqliteStore {
    fn group_ungrouped(&self, after: i64, batch: usize) -> StoreResult<Option<(i64, usize)>> {
        let window = self.incident_window.load(Ordering::Relaxed);
        self.write(|tx| {
            let alerts = tx
                .prepare_cached(
                    "SELECT a.id, a.status, e.body FROM alerts a JOIN events e ON e.id = a.id
                     WHERE a.id > ?1
                       AND NOT EXISTS (SELECT 1 FROM incident_alerts i WHERE i.alert_id = a.id)
                     ORDER BY a.id LIMIT ?2",
                )?
                .query_map(
                    params![after, i64::try_from(batch).unwrap_or(i64::MAX)],
                    row_alert,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            group(tx, &alerts, window)?;
            Ok(alerts.last().map(|a| (a.id, alerts.len())))
        })
    }

    fn set_incident_window(&self, micros: i64) {
        self.incident_window.store(micros, Ordering::Relaxed);
    }

    fn incidents(&self, f: &IncidentFilter) -> StoreResult<IncidentPage> {
        let mut sql = format!("SELECT {COLS} FROM incidents WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        let mut arg = |sql: &mut String, cond: &str, v: Value| {
            args.push(v);
            sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = f.from {
            arg(&mut sql, " AND last_ts >= ?", t.into());
        }
        if let Some(t) = f.to {
            arg(&mut sql, " AND first_ts < ?", t.into());
        }
        if let Some(k) = f.kind {
            arg(&mut sql, " AND kind = ?", k.as_str().to_string().into());
        }
        if let Some(c) = &f.category {
            arg(
                &mut sql,
                " AND instr(categories, ?) > 0",
                format!("{SEP}{c}{SEP}").into(),
            );
        }
        if let Some(s) = f.severity {
            arg(&mut sql, " AND severity = ?", i64::from(s).into());
        }
        if let Some(s) = f.status {
            arg(&mut sql, " AND status = ?", s.as_str().to_string().into());
        }
        if let Some(q) = &f.text {
            arg(
                &mut sql,
                " AND instr(search, ?) > 0",
                q.to_lowercase().into(),
            );
        }
        if let Some(c) = f.cursor {
            args.push(c.ts.into());
            args.push(c.id.into());
            let (a, b) = (args.len() - 1, args.len());
            sql.push_str(&format!(
                " AND (last_ts < ?{a} OR (last_ts = ?{a} AND id < ?{b}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY last_ts DESC, id DESC LIMIT {}",
            f.limit + 1
        ));
        self.read(|c| {
            let mut incidents = c
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(args), row_incident)?
                .collect::<Result<Vec<_>, _>>()?;
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
        self.read(|c| {
            let Some(incident) = c
                .query_row(
                    &format!("SELECT {COLS} FROM incidents WHERE id = ?1"),
                    [id],
                    row_incident,
                )
                .optional()?
            else {
                return Ok(None);
            };
            let alerts = c
                .prepare_cached(
                    "SELECT a.id, a.status, e.body FROM incident_alerts m
                     JOIN alerts a ON a.id = m.alert_id JOIN events e ON e.id = a.id
                     WHERE m.incident_id = ?1 ORDER BY a.ts, a.id LIMIT ?2",
                )?
                .query_map(params![id, INCIDENT_ALERTS as i64], row_alert)?
                .collect::<Result<Vec<_>, _>>()?;
            let audit = c
                .prepare_cached(
                    "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit
                     WHERE incident_id = ?1 AND alert_id IS NULL ORDER BY id",
                )?
                .query_map([id], row_audit)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(IncidentDetail {
                incident,
                alerts,
                audit,
            }))
        })
    }

    fn exposure(&self) -> StoreResult<exposure::Measured> {
        self.read(|c| {
            let until: Option<i64> = c.query_row("SELECT max(ts) FROM flows", [], |r| r.get(0))?;
            let hosts = match until {
                Some(t) => c
                    .prepare_cached(
                        "SELECT src_ip, CAST(total(bytes_toserver) AS INTEGER) AS b FROM flows
                         WHERE ts > ?1 GROUP BY src_ip ORDER BY b DESC, src_ip LIMIT ?2",
                    )?
                    .query_map(
                        params![t - exposure::RATE_SPAN_MICROS, exposure::MAX_HOSTS as i64],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            let states: Vec<String> = c
                .prepare_cached(
                    "SELECT state FROM incidents WHERE kind = 'file' ORDER BY last_ts DESC LIMIT 1000",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(exposure::Measured {
                until,
                hosts,
                files: exposure::files_of(states.iter().map(String::as_str)),
            })
        })
    }

    fn last_canary(&self) -> StoreResult<Option<StoredAlert>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT al.id, al.status, e.body FROM
                   (SELECT id, ts FROM alerts WHERE category = 'weights_known'
                    ORDER BY ts DESC, id DESC LIMIT ?1) a
                 JOIN alerts al ON al.id = a.id JOIN events e ON e.id = a.id
                 WHERE json_extract(e.body, '$.evidence.canary') = 1
                 ORDER BY a.ts DESC, a.id DESC LIMIT 1",
                [CANARY_SCAN],
                |r| {
                    Ok(StoredAlert {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        body: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn incident_of(&self, alert_id: i64) -> StoreResult<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = ?1",
                [alert_id],
                |r| r.get(0),
            )
            .optional()?)
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
        self.write(|tx| {
            let Some(mut incident) = tx
                .query_row(
                    &format!("SELECT {COLS} FROM incidents WHERE id = ?1"),
                    [id],
                    row_incident,
                )
                .optional()?
            else {
                return Ok(None);
            };
            let alerts: Vec<(i64, String)> = tx
                .prepare(
                    "SELECT a.id, a.status FROM incident_alerts m JOIN alerts a ON a.id = m.alert_id
                     WHERE m.incident_id = ?1 ORDER BY a.id",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let detail = |old: &str| {
                let mut d = format!("{old} → {status} (incident {id})");
                if !note.is_empty() {
                    d.push_str(": ");
                    d.push_str(note);
                }
                d
            };
            for (alert, old) in &alerts {
                tx.execute(
                    "UPDATE alerts SET status = ?2 WHERE id = ?1",
                    params![alert, status.as_str()],
                )?;
                tx.execute(
                    "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                     VALUES (?1, ?2, 'status', ?3, ?4, ?5)",
                    params![now, actor, alert, detail(old), id],
                )?;
            }
            tx.execute(
                "UPDATE incidents SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                 VALUES (?1, ?2, 'incident_status', NULL, ?3, ?4)",
                params![now, actor, detail(&incident.status), id],
            )?;
            incident.status = status.as_str().to_string();
            Ok(Some((
                incident,
                alerts.into_iter().map(|(a, _)| a).collect(),
            )))
        })
    }
}
