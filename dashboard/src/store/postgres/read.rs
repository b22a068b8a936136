//! Reading: the alert list (filters, free text over the `pg_trgm` index,
//! keyset pagination), alert detail and triage, audit, accounts, summaries.

use super::{PgStore, SEP, clean};
use crate::store::model::*;
use crate::store::traits::{AccountStore, AlertStore, AuditStore, SummaryStore};
use eve::AlertCategory;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// Query arguments built alongside their SQL.
type Args = Vec<Box<dyn ToSql + Sync + Send>>;

/// An alert row selected as `id, status, body`.
pub(super) fn row_alert(r: &Row) -> StoredAlert {
    StoredAlert {
        id: r.get(0),
        status: r.get(1),
        body: r.get(2),
    }
}

fn row_audit(r: &Row) -> AuditEntry {
    AuditEntry {
        id: r.get(0),
        ts: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        alert_id: r.get(4),
        detail: r.get(5),
        incident_id: r.get(6),
    }
}

fn row_account(r: &Row) -> AccountRow {
    AccountRow {
        account_id: r.get(0),
        score: r.get(1),
        cluster_id: r.get(2),
        alert_count: r.get(3),
        last_ts: r.get(4),
        last_alert: r.get(5),
        status: r.get(6),
        features: r
            .get::<_, Option<String>>(7)
            .and_then(|t| serde_json::from_str(&t).ok()),
    }
}

const ACCOUNT_COLS: &str = "ac.account_id, ac.score, ac.cluster_id, ac.alert_count, ac.last_ts,
     ac.last_alert, al.status, (ev.body::jsonb -> 'evidence')::text
     FROM accounts ac LEFT JOIN alerts al ON al.id = ac.last_alert
     LEFT JOIN events ev ON ev.id = ac.last_alert";

/// `LIKE` pattern matching `needle` anywhere, every character literal.
fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for ch in needle.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The `WHERE` conditions on `alerts a` for every filter (`AND …` clauses),
/// arguments numbered from `$1`.
///
/// Free text is `a.search LIKE '%…%'` with every character literal: the
/// same case-insensitive substring test as SQLite's `instr` (both sides are
/// lower-cased by the caller), answered from the `pg_trgm` GIN index when
/// the planner finds it selective, else by walking `alerts_ts` newest first.
fn filter_clauses(f: &AlertFilter) -> (String, Args) {
    let mut sql = String::new();
    let mut args: Args = Vec::new();
    let mut push = |clause: &str, v: Box<dyn ToSql + Sync + Send>| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(v) = f.from {
        push(" AND a.ts >= ?", Box::new(v));
    }
    if let Some(v) = f.to {
        push(" AND a.ts < ?", Box::new(v));
    }
    if let Some(v) = &f.category {
        push(" AND a.category = ?", Box::new(clean(v).into_owned()));
    }
    if let Some(v) = f.severity {
        push(" AND a.severity = ?", Box::new(i64::from(v)));
    }
    if let Some(v) = f.status {
        push(" AND a.status = ?", Box::new(v.as_str().to_string()));
    }
    if let Some(v) = &f.sensor {
        push(" AND a.sensor_id = ?", Box::new(clean(v).into_owned()));
    }
    if let Some(v) = &f.src {
        push(" AND a.src_ip = ?", Box::new(clean(v).into_owned()));
    }
    if let Some(v) = &f.dest {
        push(" AND a.dest_ip = ?", Box::new(clean(v).into_owned()));
    }
    if let Some(v) = &f.account {
        let v = clean(v).into_owned();
        push(" AND (a.account_id = ?", Box::new(v.clone()));
        push(
            " OR (a.category = 'distillation_cluster' AND strpos(a.members, ?) > 0))",
            Box::new(format!("{SEP}{v}{SEP}")),
        );
    }
    if let Some(t) = &f.text {
        let needle = clean(&t.to_lowercase()).into_owned();
        push(" AND a.search LIKE ?", Box::new(contains_pattern(&needle)));
    }
    if let Some(c) = f.cursor {
        push(" AND (a.ts, a.id) < (?", Box::new(c.ts));
        push(", ?)", Box::new(c.id));
    }
    (sql, args)
}

/// One page of alerts, newest first.
async fn query_alerts(c: &Client, f: &AlertFilter) -> StoreResult<AlertPage> {
    let limit = f.limit.max(1);
    let (filters, args) = filter_clauses(f);
    let sql = format!(
        "SELECT a.id, a.status, e.body, a.ts FROM alerts a JOIN events e ON e.id = a.id
         WHERE true{filters} ORDER BY a.ts DESC, a.id DESC LIMIT {}",
        limit + 1
    );
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = c.query(&sql, &params).await?;
    let more = rows.len() > limit;
    let alerts: Vec<StoredAlert> = rows.iter().take(limit).map(row_alert).collect();
    let next_cursor = match (more, rows.get(limit - 1)) {
        (true, Some(r)) => Some(Cursor {
            ts: r.get(3),
            id: r.get(0),
        }),
        _ => None,
    };
    Ok(AlertPage {
        alerts,
        next_cursor,
    })
}

impl AlertStore for PgStore {
    fn alerts(&self, filter: &AlertFilter) -> StoreResult<AlertPage> {
        self.run(async { query_alerts(&*self.conn().await?, filter).await })
    }

    fn alert(&self, id: i64) -> StoreResult<Option<AlertDetail>> {
        self.run(async {
            let c = self.conn().await?;
            let Some(r) = c
                .query_opt(
                    "SELECT a.id, a.status, e.body, e.ts, e.sensor_id, e.flow_id, e.community_id
                     FROM alerts a JOIN events e ON e.id = a.id WHERE a.id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(None);
            };
            let alert = row_alert(&r);
            let ts: i64 = r.get(3);
            let sensor: Option<String> = r.get(4);
            let flow_id: Option<i64> = r.get(5);
            let community: Option<String> = r.get(6);
            let mut flows = Vec::new();
            let mut files = Vec::new();
            if flow_id.is_some() || community.is_some() {
                // Same sensor and flow id, or the same Community ID within a
                // day (another sensor saw the same connection).
                let day = 86_400_000_000i64;
                let rows = c
                    .query(
                        "SELECT event_type, body FROM events
                         WHERE event_type IN ('flow', 'fileinfo')
                           AND ((flow_id = $1 AND sensor_id IS NOT DISTINCT FROM $2)
                                OR (community_id = $3 AND ts BETWEEN $4 AND $5))
                         ORDER BY ts, id LIMIT 200",
                        &[&flow_id, &sensor, &community, &(ts - day), &(ts + day)],
                    )
                    .await?;
                for r in rows {
                    let (kind, body): (String, String) = (r.get(0), r.get(1));
                    if kind == "flow" {
                        flows.push(body);
                    } else {
                        files.push(body);
                    }
                }
            }
            let audit = c
                .query(
                    "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit
                     WHERE alert_id = $1 ORDER BY id",
                    &[&id],
                )
                .await?
                .iter()
                .map(row_audit)
                .collect();
            Ok(Some(AlertDetail {
                alert,
                flows,
                files,
                audit,
            }))
        })
    }

    fn triage(
        &self,
        id: i64,
        status: Status,
        note: &str,
        actor: &str,
        now: i64,
    ) -> StoreResult<Option<StoredAlert>> {
        let note = clean(note);
        let actor = clean(actor);
        self.write(async |tx| {
            // FOR UPDATE: two analysts on two replicas triage one after the
            // other, and each audit line names the status it replaced.
            let Some(old) = tx
                .query_opt("SELECT status FROM alerts WHERE id = $1 FOR UPDATE", &[&id])
                .await?
            else {
                return Ok(None);
            };
            let old: String = old.get(0);
            tx.execute(
                "UPDATE alerts SET status = $2 WHERE id = $1",
                &[&id, &status.as_str()],
            )
            .await?;
            let detail = if note.is_empty() {
                format!("{old} → {status}")
            } else {
                format!("{old} → {status}: {note}")
            };
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail)
                 VALUES ($1, $2, 'status', $3, $4)",
                &[&now, &actor.as_ref(), &id, &detail],
            )
            .await?;
            let body: String = tx
                .query_one("SELECT body FROM events WHERE id = $1", &[&id])
                .await?
                .get(0);
            Ok(Some(StoredAlert {
                id,
                status: status.as_str().to_string(),
                body,
            }))
        })
    }

    fn distillation_verdicts(&self) -> StoreResult<Vec<Verdict>> {
        self.run(async {
            let c = self.conn().await?;
            let rows = c
                .query(
                    "SELECT a.id, a.status, a.account_id, a.members,
                            (SELECT max(u.id) FROM audit u
                              WHERE u.alert_id = a.id AND u.action = 'status') AS triaged
                       FROM alerts a
                      WHERE a.category IN ($1, $2) AND a.status IN ($3, $4)
                      ORDER BY triaged, a.id",
                    &[
                        &AlertCategory::Distillation.as_str(),
                        &AlertCategory::DistillationCluster.as_str(),
                        &Status::Resolved.as_str(),
                        &Status::FalsePositive.as_str(),
                    ],
                )
                .await?;
            let mut out = Vec::new();
            for r in rows {
                let Ok(status) = r.get::<_, String>(1).parse::<Status>() else {
                    continue;
                };
                let mut accounts: Vec<String> = r.get::<_, Option<String>>(2).into_iter().collect();
                let members: Option<String> = r.get(3);
                accounts.extend(
                    members
                        .iter()
                        .flat_map(|m| m.split(SEP))
                        .filter(|m| !m.is_empty())
                        .map(String::from),
                );
                out.push(Verdict {
                    alert_id: r.get(0),
                    status,
                    triaged: r.get::<_, Option<i64>>(4).unwrap_or(0),
                    accounts,
                });
            }
            Ok(out)
        })
    }
}

impl AuditStore for PgStore {
    fn audit_append(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &entry.ts,
                    &clean(&entry.actor).as_ref(),
                    &clean(&entry.action).as_ref(),
                    &entry.alert_id,
                    &clean(&entry.detail).as_ref(),
                    &entry.incident_id,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.run(async {
            let c = self.conn().await?;
            Ok(c.query(
                "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit
                 ORDER BY id DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await?
            .iter()
            .map(row_audit)
            .collect())
        })
    }
}

impl AccountStore for PgStore {
    fn accounts(&self, limit: usize) -> StoreResult<Vec<AccountRow>> {
        self.run(async {
            let c = self.conn().await?;
            Ok(c.query(
                &format!(
                    "SELECT {ACCOUNT_COLS}
                     ORDER BY ac.score IS NULL, ac.score DESC, ac.last_ts DESC LIMIT $1"
                ),
                &[&(limit as i64)],
            )
            .await?
            .iter()
            .map(row_account)
            .collect())
        })
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountDetail>> {
        let id = clean(id);
        self.run(async {
            let c = self.conn().await?;
            let Some(account) = c
                .query_opt(
                    &format!("SELECT {ACCOUNT_COLS} WHERE ac.account_id = $1"),
                    &[&id.as_ref()],
                )
                .await?
                .as_ref()
                .map(row_account)
            else {
                return Ok(None);
            };
            let latest = match account.last_alert {
                Some(aid) => c
                    .query_opt(
                        "SELECT a.id, a.status, e.body FROM alerts a JOIN events e ON e.id = a.id
                         WHERE a.id = $1",
                        &[&aid],
                    )
                    .await?
                    .as_ref()
                    .map(row_alert),
                None => None,
            };
            let page = query_alerts(
                &c,
                &AlertFilter {
                    account: Some(id.to_string()),
                    limit: 200,
                    ..AlertFilter::default()
                },
            )
            .await?;
            let members = match &account.cluster_id {
                Some(cl) => match c
                    .query_opt("SELECT members FROM clusters WHERE cluster_id = $1", &[cl])
                    .await?
                {
                    Some(r) => serde_json::from_str(&r.get::<_, String>(0))?,
                    None => Vec::new(),
                },
                None => Vec::new(),
            };
            Ok(Some(AccountDetail {
                account,
                latest,
                alerts: page.alerts,
                members,
            }))
        })
    }
}

async fn sensors(c: &Client) -> StoreResult<Vec<SensorRow>> {
    let mut by_category: std::collections::HashMap<String, Vec<(String, i64)>> =
        std::collections::HashMap::new();
    for r in c
        .query(
            "SELECT sensor_id, category, alerts FROM sensor_categories
             ORDER BY sensor_id, alerts DESC, category",
            &[],
        )
        .await?
    {
        by_category
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2)));
    }
    let json = |t: Option<String>| -> StoreResult<Option<serde_json::Value>> {
        Ok(t.map(|t| serde_json::from_str(&t)).transpose()?)
    };
    let mut out = Vec::new();
    for r in c
        .query(
            "SELECT sensor_id, last_event_ts, last_received, events, stats, stats_ts,
                    prev_stats, prev_stats_ts, stale_since
             FROM sensors ORDER BY sensor_id",
            &[],
        )
        .await?
    {
        let sensor_id: String = r.get(0);
        out.push(SensorRow {
            alerts_by_category: by_category.remove(&sensor_id).unwrap_or_default(),
            sensor_id,
            last_event_ts: r.get(1),
            last_received: r.get(2),
            events: r.get(3),
            stats: json(r.get(4))?,
            stats_ts: r.get(5),
            prev_stats: json(r.get(6))?,
            prev_stats_ts: r.get(7),
            stale_since: r.get(8),
        });
    }
    Ok(out)
}

impl SummaryStore for PgStore {
    fn sensors(&self) -> StoreResult<Vec<SensorRow>> {
        self.run(async { sensors(&*self.conn().await?).await })
    }

    fn mark_stale(&self, silent_since: i64, now: i64) -> StoreResult<Vec<String>> {
        // One UPDATE: of two replicas marking at once, the second finds the
        // rows marked (it waits for the first's row locks, then re-checks).
        self.write(async |tx| {
            let quiet: Vec<String> = tx
                .query(
                    "UPDATE sensors SET stale_since = $2
                     WHERE stale_since IS NULL AND last_received < $1 RETURNING sensor_id",
                    &[&silent_since, &now],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for sensor in &quiet {
                tx.execute(
                    "INSERT INTO audit (ts, actor, action, alert_id, detail)
                     VALUES ($1, 'system', 'sensor_stale', NULL, $2)",
                    &[&now, &stale_detail(sensor, silent_since, now)],
                )
                .await?;
            }
            Ok(quiet)
        })
    }

    fn overview(&self, span: ChartSpan) -> StoreResult<Overview> {
        let top_accounts = self.accounts(10)?;
        self.run(async {
            let c = self.conn().await?;
            let mut o = Overview {
                sensors: sensors(&c).await?,
                top_accounts,
                buckets: 48,
                ..Overview::default()
            };
            let r = c
                .query_one("SELECT min(ts), max(ts) FROM alerts", &[])
                .await?;
            let range = match (r.get::<_, Option<i64>>(0), r.get::<_, Option<i64>>(1)) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            };
            o.alert_range = range;
            let hour = 3_600_000_000i64;
            let (start, end) = match range {
                Some((lo, hi)) => {
                    let width = span.micros().unwrap_or(hi - lo + 1).max(hour);
                    (hi + 1 - width, hi + 1)
                }
                None => (0, hour),
            };
            let width = ((end - start) / o.buckets as i64).max(1);
            o.timeline_start = start;
            o.bucket_micros = width;
            for r in c
                .query(
                    "SELECT category, (ts - $1) / $2 AS b, count(*) FROM alerts
                     WHERE ts >= $1 GROUP BY category, b",
                    &[&start, &width],
                )
                .await?
            {
                let b: i64 = r.get(1);
                let b = (b.max(0) as usize).min(o.buckets - 1);
                o.timeline.push((r.get(0), b, r.get(2)));
            }
            o.before_chart = c
                .query_one("SELECT count(*) FROM alerts WHERE ts < $1", &[&start])
                .await?
                .get(0);
            for r in c
                .query(
                    "SELECT severity, count(*) FROM alerts
                     WHERE status IN ('new', 'investigating') GROUP BY severity",
                    &[],
                )
                .await?
            {
                let (sev, n): (i64, i64) = (r.get(0), r.get(1));
                if (1..=3).contains(&sev) {
                    o.open_by_severity[(sev - 1) as usize] = n;
                }
            }
            o.total_alerts = c
                .query_one("SELECT count(*) FROM alerts", &[])
                .await?
                .get(0);
            o.top_sources = c
                .query(
                    "SELECT src_ip, least(coalesce(sum(bytes_toserver), 0), 9223372036854775807)::int8 AS b FROM flows
                     GROUP BY src_ip ORDER BY b DESC LIMIT 10",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            o.top_destinations = c
                .query(
                    "SELECT dest_ip, max(sni), least(coalesce(sum(bytes_toserver), 0), 9223372036854775807)::int8
                            AS b
                     FROM flows GROUP BY dest_ip ORDER BY b DESC LIMIT 10",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            Ok(o)
        })
    }

    fn counts(&self) -> StoreResult<Counts> {
        self.run(async {
            let c = self.conn().await?;
            let r = c
                .query_one(
                    "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM alerts),
                            (SELECT count(*) FROM alerts WHERE status IN ('new', 'investigating'))",
                    &[],
                )
                .await?;
            Ok(Counts {
                events: r.get(0),
                alerts: r.get(1),
                open_alerts: r.get(2),
            })
        })
    }
}
