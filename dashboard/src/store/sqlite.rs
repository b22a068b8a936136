//! The SQLite store: one writer connection (WAL, `synchronous=FULL`) and a
//! small pool of read-only connections, so page loads never wait for ingest.
//!
//! Durability: a batch is acknowledged after `COMMIT` returns. In WAL mode
//! with `synchronous=FULL` SQLite fsyncs the WAL on every commit, so an
//! acknowledged batch survives a process kill *and* a power cut. (`NORMAL`
//! would survive a kill but could lose the newest commits on power loss,
//! which would break the promise made to the sensor's spool.)

mod incidents;

use super::model::*;
use super::traits::*;
use super::{migrations, search};
use crate::auth::Scope;
use eve::{AlertCategory, EventKind};
use rusqlite::types::Value;
use rusqlite::vtab::array::Array;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, TryLockError};

/// Separator around member account ids in `alerts.members`, so that
/// `instr(members, SEP || id || SEP)` matches whole ids only.
const SEP: char = '\u{1f}';

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// The last write transaction failed because the database could not be
    /// written (read-only, full, I/O error); cleared by the next success.
    write_failed: AtomicBool,
    /// The incident grouping window, microseconds.
    incident_window: AtomicI64,
}

impl SqliteStore {
    /// Open (creating and migrating when needed) the database at `path`,
    /// keeping up to `read_connections` idle read-only connections.
    pub fn open(path: &Path, read_connections: usize) -> StoreResult<Self> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        // journal_mode answers with a row; query it rather than execute.
        let _mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        writer.execute_batch(
            // 64 MiB of page cache: index inserts into a large store stay in memory.
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;
             PRAGMA cache_size=-65536;",
        )?;
        migrations::migrate(&mut writer)?;
        rusqlite::vtab::array::load_module(&writer)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            max_readers: read_connections.max(1),
            write_failed: AtomicBool::new(false),
            incident_window: AtomicI64::new(crate::incidents::DEFAULT_WINDOW_MICROS),
        })
    }

    fn open_reader(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA cache_size=-16384;")?;
        // `rarray(?)`: the free-text search passes its candidate ids as one array.
        rusqlite::vtab::array::load_module(&conn)?;
        Ok(conn)
    }

    /// Run `f` on an idle read connection (opening one when none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.readers.lock().map_err(|_| StoreError::Poisoned)?.pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().map_err(|_| StoreError::Poisoned)?;
        if pool.len() < self.max_readers {
            pool.push(conn);
        }
        out
    }

    /// Run `f` in an immediate transaction on the writer and commit.
    fn write<T>(&self, f: impl FnOnce(&Transaction) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        match &result {
            Ok(_) => self.write_failed.store(false, Ordering::Relaxed),
            Err(StoreError::Sqlite(e)) if cannot_write(e) => {
                self.write_failed.store(true, Ordering::Relaxed)
            }
            Err(_) => {}
        }
        result
    }
}

/// Whether an error means the database cannot be written at all (as
/// opposed to a bad statement or a constraint).
fn cannot_write(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(ReadOnly | DiskFull | SystemIoFailure | CannotOpen | DatabaseCorrupt | NotADatabase)
    )
}

fn members_text(members: &[String]) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let mut s = String::from(SEP);
    for m in members {
        s.push_str(m);
        s.push(SEP);
    }
    Some(s)
}

fn insert_alert(
    tx: &Transaction,
    id: i64,
    ts: i64,
    sensor_id: &Option<String>,
    a: &AlertIndex,
) -> StoreResult<()> {
    let members = &a.members;
    tx.prepare_cached(
        "INSERT INTO alerts (id, ts, category, severity, sensor_id, src_ip, dest_ip,
                             account_id, cluster_id, members, search)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        ts,
        a.category,
        a.severity,
        sensor_id,
        a.src_ip,
        a.dest_ip,
        a.account_id,
        a.cluster_id,
        members_text(members),
        a.search,
    ])?;
    if let Some(acct) = &a.account_id {
        let score = a.score;
        tx.prepare_cached(
            "INSERT INTO accounts (account_id, score, cluster_id, last_alert, last_ts, alert_count)
             VALUES (?1, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT(account_id) DO UPDATE SET
               alert_count = alert_count + 1,
               score = CASE WHEN excluded.last_ts >= last_ts OR last_alert IS NULL
                            THEN excluded.score ELSE score END,
               cluster_id = CASE WHEN excluded.cluster_id IS NOT NULL
                                  AND (excluded.last_ts >= last_ts OR cluster_id IS NULL)
                                 THEN excluded.cluster_id ELSE cluster_id END,
               last_alert = CASE WHEN excluded.last_ts >= last_ts OR last_alert IS NULL
                                 THEN excluded.last_alert ELSE last_alert END,
               last_ts = max(last_ts, excluded.last_ts)",
        )?
        .execute(params![acct, score, a.cluster_id, id, ts])?;
    }
    if let (Some(cluster), false) = (&a.cluster_id, members.is_empty()) {
        tx.prepare_cached(
            "INSERT INTO clusters (cluster_id, members, last_alert, last_ts) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(cluster_id) DO UPDATE SET
               members = CASE WHEN excluded.last_ts >= last_ts THEN excluded.members ELSE members END,
               last_alert = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last_alert ELSE last_alert END,
               last_ts = max(last_ts, excluded.last_ts)",
        )?
        .execute(params![cluster, serde_json::to_string(members)?, id, ts])?;
        let mut member_stmt = tx.prepare_cached(
            "INSERT INTO accounts (account_id, score, cluster_id, last_alert, last_ts, alert_count)
             VALUES (?1, NULL, ?2, NULL, ?3, 0)
             ON CONFLICT(account_id) DO UPDATE SET cluster_id = excluded.cluster_id",
        )?;
        for m in members {
            member_stmt.execute(params![m, cluster, ts])?;
        }
    }
    Ok(())
}

/// Add the search text of a batch's new alerts to the trigram index, in one
/// statement, as the batch's last write.
///
/// Not an `AFTER INSERT` trigger: FTS5 writes its pending terms to disk as a
/// new segment at every statement savepoint, and each insert of the batch
/// opens one (triggers and foreign keys), so a trigger made one index
/// segment per alert, to be merged again and again (ingest at a million
/// alerts went from about 4,200 to 2,800 events/s). One statement at the end
/// of the transaction writes one segment per batch. Deletes and rewrites of
/// the search text stay triggers (migration 2): they are rare and batched.
fn index_text(tx: &Transaction, new_alerts: &[StoredAlert]) -> StoreResult<()> {
    if new_alerts.is_empty() {
        return Ok(());
    }
    let ids: Array = Rc::new(new_alerts.iter().map(|a| Value::from(a.id)).collect());
    tx.prepare_cached(
        "INSERT INTO alerts_fts (rowid, search)
         SELECT a.id, a.search FROM rarray(?1) m CROSS JOIN alerts a ON a.id = m.value",
    )?
    .execute([&ids])?;
    Ok(())
}

fn row_alert(r: &rusqlite::Row) -> rusqlite::Result<StoredAlert> {
    Ok(StoredAlert {
        id: r.get(0)?,
        status: r.get(1)?,
        body: r.get(2)?,
    })
}

fn row_account(r: &rusqlite::Row) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        account_id: r.get(0)?,
        score: r.get(1)?,
        cluster_id: r.get(2)?,
        alert_count: r.get(3)?,
        last_ts: r.get(4)?,
        last_alert: r.get(5)?,
        status: r.get(6)?,
        features: r
            .get::<_, Option<String>>(7)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

const ACCOUNT_COLS: &str = "ac.account_id, ac.score, ac.cluster_id, ac.alert_count, ac.last_ts,
     ac.last_alert, al.status, json_extract(ev.body, '$.evidence')
     FROM accounts ac LEFT JOIN alerts al ON al.id = ac.last_alert
     LEFT JOIN events ev ON ev.id = ac.last_alert";

fn row_audit(r: &rusqlite::Row) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        alert_id: r.get(4)?,
        detail: r.get(5)?,
        incident_id: r.get(6)?,
    })
}

/// The `WHERE` conditions on `alerts a` for every filter but the free text
/// (`AND …` clauses) and their arguments, numbered from `?{first}`.
fn filter_clauses(f: &AlertFilter, first: usize) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut args: Vec<Value> = Vec::new();
    // Appends `clause` with its one `?` numbered after the arguments so far.
    let push = |sql: &mut String, args: &mut Vec<Value>, clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", first + args.len() - 1)));
    };
    if let Some(v) = f.from {
        push(&mut sql, &mut args, " AND a.ts >= ?", v.into());
    }
    if let Some(v) = f.to {
        push(&mut sql, &mut args, " AND a.ts < ?", v.into());
    }
    if let Some(v) = &f.category {
        push(&mut sql, &mut args, " AND a.category = ?", v.clone().into());
    }
    if let Some(v) = f.severity {
        push(
            &mut sql,
            &mut args,
            " AND a.severity = ?",
            i64::from(v).into(),
        );
    }
    if let Some(v) = f.status {
        push(
            &mut sql,
            &mut args,
            " AND a.status = ?",
            v.as_str().to_string().into(),
        );
    }
    if let Some(v) = &f.sensor {
        push(
            &mut sql,
            &mut args,
            " AND a.sensor_id = ?",
            v.clone().into(),
        );
    }
    if let Some(v) = &f.src {
        push(&mut sql, &mut args, " AND a.src_ip = ?", v.clone().into());
    }
    if let Some(v) = &f.dest {
        push(&mut sql, &mut args, " AND a.dest_ip = ?", v.clone().into());
    }
    if let Some(v) = &f.account {
        args.push(v.clone().into());
        args.push(format!("{SEP}{v}{SEP}").into());
        let n = first + args.len() - 1;
        // Both arms of the OR are indexable (account index; category index
        // for the few cluster alerts), so SQLite need not scan every alert.
        sql.push_str(&format!(
            " AND (a.account_id = ?{} OR (a.category = 'distillation_cluster' \
             AND instr(a.members, ?{n}) > 0))",
            n - 1
        ));
    }
    if let Some(c) = f.cursor {
        push(&mut sql, &mut args, " AND (a.ts, a.id) < (?", c.ts.into());
        push(&mut sql, &mut args, ", ?)", c.id.into());
    }
    (sql, args)
}

/// Candidate ids for the free text `needle` from the trigram index, or
/// `None` when the index cannot answer (needle too short) or more than `cap`
/// rows hold its trigrams (then walking newest first is cheaper; see
/// [`search::candidate_cap`]). See `store/search.rs` for the plan.
fn text_candidates(conn: &Connection, needle: &str, cap: usize) -> StoreResult<Option<Vec<i64>>> {
    let terms = search::cover_terms(needle);
    if terms.is_empty() {
        return Ok(None);
    }
    let over = i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows =
        conn.prepare_cached("SELECT rowid FROM alerts_fts WHERE alerts_fts MATCH ?1 LIMIT ?2")?;
    // Rows holding each trigram, counted up to cap + 1.
    let mut counted: Vec<(usize, &String)> = Vec::with_capacity(terms.len());
    if terms.len() > 2 {
        let mut count = conn.prepare_cached(
            "SELECT count(*) FROM
               (SELECT 1 FROM alerts_fts WHERE alerts_fts MATCH ?1 LIMIT ?2)",
        )?;
        for t in &terms {
            let n: i64 = count.query_row(params![t, over], |r| r.get(0))?;
            counted.push((usize::try_from(n).unwrap_or(usize::MAX), t));
        }
        counted.sort();
    }
    let query = match counted.first() {
        // A rare trigram: it and the next rarest.
        Some((n, _)) if *n <= cap => format!("{} AND {}", counted[0].1, counted[1].1),
        // All common (or at most two terms): all of them together may still be rare.
        _ => terms.join(" AND "),
    };
    let ids = rows
        .query_map(params![query, over], |r| r.get::<_, i64>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids.len() <= cap).then_some(ids))
}

fn query_alerts(conn: &Connection, f: &AlertFilter) -> StoreResult<AlertPage> {
    query_alerts_with(conn, f, Some(search::candidate_cap(f.limit.max(1))))
}

/// [`query_alerts`] taking at most `index_cap` candidates from the text
/// index (`None`: never use it; the tests compare both ways).
fn query_alerts_with(
    conn: &Connection,
    f: &AlertFilter,
    index_cap: Option<usize>,
) -> StoreResult<AlertPage> {
    let limit = f.limit.max(1);
    let n = limit + 1;
    // ?1 is the candidate id array (or unused), the filters follow.
    let (filters, mut args) = filter_clauses(f, 2);
    let walk = |filters: &str| {
        format!(
            "SELECT a.id, a.status, e.body, a.ts FROM alerts a JOIN events e ON e.id = a.id
             WHERE 1=1{filters} ORDER BY a.ts DESC, a.id DESC LIMIT {n}"
        )
    };
    let Some(needle) = f.text.as_ref().map(|t| t.to_lowercase()) else {
        return run_page(conn, &walk(&filters), None, &args, limit);
    };
    // The exact test, on every row walked or every candidate.
    let text = format!(" AND instr(a.search, ?{}) > 0", args.len() + 2);
    args.push(needle.clone().into());
    let indexed = index_cap.filter(|_| !search::cover_terms(&needle).is_empty());
    let Some(cap) = indexed else {
        // No index (or text too short for it): walk newest first.
        return run_page(conn, &walk(&format!("{filters}{text}")), None, &args, limit);
    };
    // A glance at the newest rows first: a common term fills its page there,
    // cheaper than asking the index. Matches among the first rows in order
    // are the first matches overall, so a full page found here is exact.
    let glance = format!(
        "SELECT a.id, a.status, e.body, a.ts FROM
           (SELECT a.id, a.status, a.ts, a.search FROM alerts a
            WHERE 1=1{filters} ORDER BY a.ts DESC, a.id DESC LIMIT {rows}) a
         JOIN events e ON e.id = a.id
         WHERE 1=1{text} ORDER BY a.ts DESC, a.id DESC LIMIT {n}",
        rows = search::glance_rows(limit)
    );
    let page = run_page(conn, &glance, None, &args, limit)?;
    if page.next_cursor.is_some() {
        return Ok(page);
    }
    match text_candidates(conn, &needle, cap)? {
        // Few candidates: sort them (before reading any event body), then
        // join the page's bodies.
        Some(ids) => {
            let sql = format!(
                "SELECT a.id, a.status, e.body, a.ts FROM
                   (SELECT a.id, a.status, a.ts FROM rarray(?1) m
                      CROSS JOIN alerts a ON a.id = m.value
                    WHERE 1=1{filters}{text} ORDER BY a.ts DESC, a.id DESC LIMIT {n}) a
                 JOIN events e ON e.id = a.id ORDER BY a.ts DESC, a.id DESC"
            );
            run_page(conn, &sql, Some(ids), &args, limit)
        }
        // A common term: walk the newest-first index of the most selective filter.
        None => run_page(conn, &walk(&format!("{filters}{text}")), None, &args, limit),
    }
}

/// Run one page query: `ids` bound to `?1` (as `rarray`), `args` from `?2`;
/// the query returns up to `limit + 1` rows `(id, status, body, ts)`.
fn run_page(
    conn: &Connection,
    sql: &str,
    ids: Option<Vec<i64>>,
    args: &[Value],
    limit: usize,
) -> StoreResult<AlertPage> {
    let mut stmt = conn.prepare_cached(sql)?;
    if let Some(ids) = ids {
        let ids: Array = Rc::new(ids.into_iter().map(Value::from).collect());
        stmt.raw_bind_parameter(1, &ids)?;
    }
    for (i, v) in args.iter().enumerate() {
        stmt.raw_bind_parameter(i + 2, v)?;
    }
    let mut rows = stmt.raw_query();
    let mut alerts = Vec::with_capacity(limit.min(1024));
    let mut last: Option<Cursor> = None;
    let mut more = false;
    while let Some(r) = rows.next()? {
        if alerts.len() == limit {
            more = true;
            break;
        }
        last = Some(Cursor {
            ts: r.get(3)?,
            id: r.get(0)?,
        });
        alerts.push(row_alert(r)?);
    }
    Ok(AlertPage {
        alerts,
        next_cursor: if more { last } else { None },
    })
}

impl EventStore for SqliteStore {
    fn ingest(&self, events: &[NewEvent], received: i64) -> StoreResult<IngestOutcome> {
        self.write(|tx| {
            let mut out = IngestOutcome::default();
            for (pos, ne) in events.iter().enumerate() {
                let ts = ne.ts;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO events (event_id, event_type, ts, received, sensor_id,
                                             flow_id, community_id, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT(event_id) DO NOTHING",
                    )?
                    .execute(params![
                        ne.event_id,
                        ne.event_type,
                        ts,
                        received,
                        ne.sensor_id,
                        // flow ids are u64 on the wire; stored bit-for-bit as i64.
                        ne.flow_id.map(|f| f as i64),
                        ne.community_id,
                        ne.body,
                    ])?;
                if inserted == 0 {
                    // The same content is a resend; other content under the
                    // same id is a conflict, reported and not stored.
                    let same: bool = tx
                        .prepare_cached("SELECT body = ?2 FROM events WHERE event_id = ?1")?
                        .query_row(params![ne.event_id, ne.body], |r| r.get(0))?;
                    if same {
                        out.duplicates += 1;
                    } else {
                        out.conflicts.push(pos);
                    }
                    continue;
                }
                out.accepted += 1;
                let id = tx.last_insert_rowid();
                if let Some(sensor) = &ne.sensor_id {
                    tx.prepare_cached(
                        "INSERT INTO sensors (sensor_id, last_event_ts, last_received, events)
                         VALUES (?1, ?2, ?3, 1)
                         ON CONFLICT(sensor_id) DO UPDATE SET
                           last_event_ts = max(last_event_ts, excluded.last_event_ts),
                           last_received = max(last_received, excluded.last_received),
                           events = events + 1,
                           stale_since = NULL",
                    )?
                    .execute(params![sensor, ts, received])?;
                }
                match &ne.index {
                    Indexed::Alert(a) => {
                        insert_alert(tx, id, ts, &ne.sensor_id, a)?;
                        if let Some(sensor) = &ne.sensor_id {
                            tx.prepare_cached(
                                "INSERT INTO sensor_categories (sensor_id, category, alerts)
                                 VALUES (?1, ?2, 1)
                                 ON CONFLICT(sensor_id, category) DO UPDATE SET
                                   alerts = alerts + 1",
                            )?
                            .execute(params![sensor, a.category])?;
                        }
                        out.new_alerts.push(StoredAlert {
                            id,
                            status: Status::New.as_str().to_string(),
                            body: ne.body.clone(),
                        });
                    }
                    Indexed::Flow(f) => {
                        tx.prepare_cached(
                            "INSERT INTO flows (id, ts, src_ip, dest_ip, sni,
                                                bytes_toserver, bytes_toclient)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )?
                        .execute(params![
                            id,
                            ts,
                            f.src_ip,
                            f.dest_ip,
                            f.sni,
                            i64::try_from(f.bytes_toserver).unwrap_or(i64::MAX),
                            i64::try_from(f.bytes_toclient).unwrap_or(i64::MAX),
                        ])?;
                    }
                    Indexed::Stats(stats) => {
                        if let Some(sensor) = &ne.sensor_id {
                            tx.prepare_cached(
                                "UPDATE sensors SET
                                   prev_stats = CASE WHEN stats_ts < ?3 THEN stats
                                                     ELSE prev_stats END,
                                   prev_stats_ts = CASE WHEN stats_ts < ?3 THEN stats_ts
                                                        ELSE prev_stats_ts END,
                                   stats = ?2, stats_ts = ?3
                                 WHERE sensor_id = ?1 AND (stats_ts IS NULL OR stats_ts <= ?3)",
                            )?
                            .execute(params![sensor, stats, ts])?;
                        }
                    }
                    Indexed::Nothing => {}
                }
            }
            index_text(tx, &out.new_alerts)?;
            out.incidents = incidents::group(
                tx,
                &out.new_alerts,
                self.incident_window.load(Ordering::Relaxed),
            )?;
            Ok(out)
        })
    }

    fn purge_before(&self, cutoff: i64) -> StoreResult<usize> {
        let mut total = 0;
        // Small transactions, so ingest is never blocked for long.
        loop {
            let n = self.write(|tx| {
                Ok(tx.execute(
                    "DELETE FROM events WHERE id IN
                       (SELECT id FROM events WHERE received < ?1 LIMIT 5000)",
                    [cutoff],
                )?)
            })?;
            total += n;
            if n == 0 {
                break;
            }
        }
        if total > 0 {
            self.write(|tx| {
                tx.execute(
                    "DELETE FROM accounts WHERE last_alert IS NOT NULL
                       AND last_alert NOT IN (SELECT id FROM alerts)",
                    [],
                )?;
                tx.execute(
                    "DELETE FROM clusters WHERE last_alert IS NOT NULL
                       AND last_alert NOT IN (SELECT id FROM alerts)",
                    [],
                )?;
                tx.execute(
                    "DELETE FROM accounts WHERE last_alert IS NULL
                       AND cluster_id NOT IN (SELECT cluster_id FROM clusters)",
                    [],
                )?;
                incidents::drop_empty(tx)?;
                Ok(())
            })?;
        }
        Ok(total)
    }

    fn purge_account(&self, account: &str) -> StoreResult<PurgeCounts> {
        self.write(|tx| {
            let mut counts = PurgeCounts::default();
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM alerts WHERE account_id = ?1")?
                .query_map([account], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                counts.events += tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
            }
            counts.alerts = ids.len();
            // Cluster alerts naming the account: drop it from their member lists.
            let needle = format!("{SEP}{account}{SEP}");
            let clusters: Vec<(i64, String)> = tx
                .prepare(
                    "SELECT a.id, e.body FROM alerts a JOIN events e ON e.id = a.id
                     WHERE instr(a.members, ?1) > 0",
                )?
                .query_map([&needle], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (id, body) in clusters {
                let mut v: serde_json::Value = serde_json::from_str(&body)?;
                if let Some(m) = v.get_mut("members").and_then(|m| m.as_array_mut()) {
                    m.retain(|x| x.as_str() != Some(account));
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
                    "UPDATE events SET body = ?2 WHERE id = ?1",
                    params![id, new_body],
                )?;
                tx.execute(
                    "UPDATE alerts SET members = ?2, search = ?3 WHERE id = ?1",
                    params![id, members_text(&members), search],
                )?;
                counts.clusters_rewritten += 1;
            }
            let cl: Vec<(String, String)> = tx
                .prepare("SELECT cluster_id, members FROM clusters")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (cid, m) in cl {
                let mut members: Vec<String> = serde_json::from_str(&m)?;
                let before = members.len();
                members.retain(|x| x != account);
                if members.len() != before {
                    tx.execute(
                        "UPDATE clusters SET members = ?2 WHERE cluster_id = ?1",
                        params![cid, serde_json::to_string(&members)?],
                    )?;
                }
            }
            tx.execute("DELETE FROM accounts WHERE account_id = ?1", [account])?;
            incidents::drop_empty(tx)?;
            Ok(counts)
        })
    }

    fn check_writable(&self) -> StoreResult<()> {
        if self.write_failed.load(Ordering::Relaxed) {
            return Err(StoreError::NotWritable("the last write failed"));
        }
        let conn = match self.writer.try_lock() {
            Ok(c) => c,
            // A write is running right now: report the last known state
            // (a failed write sets `write_failed`, seen by the next check).
            Err(TryLockError::WouldBlock) => return Ok(()),
            Err(TryLockError::Poisoned(_)) => return Err(StoreError::Poisoned),
        };
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::NotWritable("opened read-only"));
        }
        // Takes the write lock (and opens the WAL for writing) without
        // writing anything.
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
        Ok(())
    }
}

impl AlertStore for SqliteStore {
    fn alerts(&self, filter: &AlertFilter) -> StoreResult<AlertPage> {
        self.read(|c| query_alerts(c, filter))
    }

    fn alert(&self, id: i64) -> StoreResult<Option<AlertDetail>> {
        self.read(|c| {
            let row = c
                .query_row(
                    "SELECT a.id, a.status, e.body, e.ts, e.sensor_id, e.flow_id, e.community_id
                     FROM alerts a JOIN events e ON e.id = a.id WHERE a.id = ?1",
                    [id],
                    |r| {
                        Ok((
                            row_alert(r)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    },
                )
                .optional()?;
            let Some((alert, ts, sensor, flow_id, community)) = row else {
                return Ok(None);
            };
            let mut flows = Vec::new();
            let mut files = Vec::new();
            if flow_id.is_some() || community.is_some() {
                // Same sensor and flow id, or the same Community ID within a day
                // (another sensor saw the same connection).
                let day = 86_400_000_000i64;
                let mut stmt = c.prepare_cached(
                    "SELECT event_type, body FROM events
                     WHERE event_type IN ('flow', 'fileinfo')
                       AND ((flow_id = ?1 AND sensor_id IS ?2)
                            OR (community_id = ?3 AND ts BETWEEN ?4 AND ?5))
                     ORDER BY ts, id LIMIT 200",
                )?;
                let rows = stmt.query_map(
                    params![flow_id, sensor, community, ts - day, ts + day],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?;
                for r in rows {
                    let (kind, body) = r?;
                    if kind == "flow" {
                        flows.push(body);
                    } else {
                        files.push(body);
                    }
                }
            }
            let audit = c
                .prepare_cached(
                    "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit
                     WHERE alert_id = ?1 ORDER BY id",
                )?
                .query_map([id], row_audit)?
                .collect::<Result<Vec<_>, _>>()?;
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
        self.write(|tx| {
            let old: Option<String> = tx
                .query_row("SELECT status FROM alerts WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            let Some(old) = old else { return Ok(None) };
            tx.execute(
                "UPDATE alerts SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
            let detail = if note.is_empty() {
                format!("{old} → {status}")
            } else {
                format!("{old} → {status}: {note}")
            };
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail) VALUES (?1, ?2, 'status', ?3, ?4)",
                params![now, actor, id, detail],
            )?;
            let body: String =
                tx.query_row("SELECT body FROM events WHERE id = ?1", [id], |r| r.get(0))?;
            Ok(Some(StoredAlert {
                id,
                status: status.as_str().to_string(),
                body,
            }))
        })
    }

    fn distillation_verdicts(&self) -> StoreResult<Vec<Verdict>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT a.id, a.status, a.account_id, a.members,
                        (SELECT max(u.id) FROM audit u
                          WHERE u.alert_id = a.id AND u.action = 'status') AS triaged
                   FROM alerts a
                  WHERE a.category IN (?1, ?2) AND a.status IN (?3, ?4)
                  ORDER BY triaged, a.id",
            )?;
            let rows = stmt.query_map(
                params![
                    AlertCategory::Distillation.as_str(),
                    AlertCategory::DistillationCluster.as_str(),
                    Status::Resolved.as_str(),
                    Status::FalsePositive.as_str(),
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (alert_id, status, account, members, triaged) = row?;
                let Ok(status) = status.parse::<Status>() else {
                    continue;
                };
                let mut accounts: Vec<String> = account.into_iter().collect();
                accounts.extend(
                    members
                        .iter()
                        .flat_map(|m| m.split(SEP))
                        .filter(|m| !m.is_empty())
                        .map(String::from),
                );
                out.push(Verdict {
                    alert_id,
                    status,
                    triaged: triaged.unwrap_or(0),
                    accounts,
                });
            }
            Ok(out)
        })
    }
}

impl AuditStore for SqliteStore {
    fn audit_append(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit (ts, actor, action, alert_id, detail, incident_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    entry.ts,
                    entry.actor,
                    entry.action,
                    entry.alert_id,
                    entry.detail,
                    entry.incident_id
                ],
            )?;
            Ok(())
        })
    }

    fn audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, ts, actor, action, alert_id, detail, incident_id FROM audit ORDER BY id DESC LIMIT ?1",
            )?
            .query_map([limit as i64], row_audit)?
            .collect::<Result<Vec<_>, _>>()?)
        })
    }
}

impl AccountStore for SqliteStore {
    fn accounts(&self, limit: usize) -> StoreResult<Vec<AccountRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLS}
                 ORDER BY ac.score IS NULL, ac.score DESC, ac.last_ts DESC LIMIT ?1"
            ))?
            .query_map([limit as i64], row_account)?
            .collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountDetail>> {
        self.read(|c| {
            let account = c
                .query_row(
                    &format!("SELECT {ACCOUNT_COLS} WHERE ac.account_id = ?1"),
                    [id],
                    row_account,
                )
                .optional()?;
            let Some(account) = account else {
                return Ok(None);
            };
            let latest = match account.last_alert {
                Some(aid) => c
                    .query_row(
                        "SELECT a.id, a.status, e.body FROM alerts a JOIN events e ON e.id = a.id
                         WHERE a.id = ?1",
                        [aid],
                        row_alert,
                    )
                    .optional()?,
                None => None,
            };
            let page = query_alerts(
                c,
                &AlertFilter {
                    account: Some(id.to_string()),
                    limit: 200,
                    ..AlertFilter::default()
                },
            )?;
            let members = match &account.cluster_id {
                Some(cl) => {
                    let m: Option<String> = c
                        .query_row(
                            "SELECT members FROM clusters WHERE cluster_id = ?1",
                            [cl],
                            |r| r.get(0),
                        )
                        .optional()?;
                    match m {
                        Some(m) => serde_json::from_str(&m)?,
                        None => Vec::new(),
                    }
                }
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

impl SummaryStore for SqliteStore {
    fn sensors(&self) -> StoreResult<Vec<SensorRow>> {
        self.read(|c| {
            let mut by_category: std::collections::HashMap<String, Vec<(String, i64)>> =
                std::collections::HashMap::new();
            let mut stmt = c.prepare_cached(
                "SELECT sensor_id, category, alerts FROM sensor_categories
                 ORDER BY sensor_id, alerts DESC, category",
            )?;
            for r in stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })? {
                let (sensor, category, n) = r?;
                by_category.entry(sensor).or_default().push((category, n));
            }
            let mut stmt = c.prepare_cached(
                "SELECT sensor_id, last_event_ts, last_received, events, stats, stats_ts,
                        prev_stats, prev_stats_ts, stale_since
                 FROM sensors ORDER BY sensor_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            let json = |t: Option<String>| -> StoreResult<Option<serde_json::Value>> {
                Ok(t.map(|t| serde_json::from_str(&t)).transpose()?)
            };
            while let Some(r) = rows.next()? {
                let sensor_id: String = r.get(0)?;
                out.push(SensorRow {
                    alerts_by_category: by_category.remove(&sensor_id).unwrap_or_default(),
                    sensor_id,
                    last_event_ts: r.get(1)?,
                    last_received: r.get(2)?,
                    events: r.get(3)?,
                    stats: json(r.get(4)?)?,
                    stats_ts: r.get(5)?,
                    prev_stats: json(r.get(6)?)?,
                    prev_stats_ts: r.get(7)?,
                    stale_since: r.get(8)?,
                });
            }
            Ok(out)
        })
    }

    fn mark_stale(&self, silent_since: i64, now: i64) -> StoreResult<Vec<String>> {
        self.write(|tx| {
            let quiet = tx
                .prepare_cached(
                    "UPDATE sensors SET stale_since = ?2
                     WHERE stale_since IS NULL AND last_received < ?1 RETURNING sensor_id",
                )?
                .query_map(params![silent_since, now], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            for sensor in &quiet {
                tx.execute(
                    "INSERT INTO audit (ts, actor, action, alert_id, detail)
                     VALUES (?1, 'system', 'sensor_stale', NULL, ?2)",
                    params![now, stale_detail(sensor, silent_since, now)],
                )?;
            }
            Ok(quiet)
        })
    }

    fn overview(&self, span: ChartSpan) -> StoreResult<Overview> {
        let sensors = self.sensors()?;
        let top_accounts = self.accounts(10)?;
        self.read(|c| {
            let mut o = Overview {
                sensors,
                top_accounts,
                buckets: 48,
                ..Overview::default()
            };
            let range: Option<(i64, i64)> =
                c.query_row("SELECT min(ts), max(ts) FROM alerts", [], |r| {
                    Ok(
                        match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                            (Some(a), Some(b)) => Some((a, b)),
                            _ => None,
                        },
                    )
                })?;
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
            let mut stmt = c.prepare_cached(
                "SELECT category, (ts - ?1) / ?2 AS b, count(*) FROM alerts
                 WHERE ts >= ?1 GROUP BY category, b",
            )?;
            let rows = stmt.query_map(params![start, width], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for r in rows {
                let (cat, b, n) = r?;
                let b = (b.max(0) as usize).min(o.buckets - 1);
                o.timeline.push((cat, b, n));
            }
            o.before_chart = c.query_row(
                "SELECT count(*) FROM alerts WHERE ts < ?1",
                params![start],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT severity, count(*) FROM alerts
                 WHERE status IN ('new', 'investigating') GROUP BY severity",
            )?;
            for r in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
                let (sev, n) = r?;
                if (1..=3).contains(&sev) {
                    o.open_by_severity[(sev - 1) as usize] = n;
                }
            }
            o.total_alerts = c.query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))?;
            o.top_sources = c
                .prepare_cached(
                    "SELECT src_ip, CAST(total(bytes_toserver) AS INTEGER) AS b FROM flows
                     GROUP BY src_ip ORDER BY b DESC LIMIT 10",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            o.top_destinations = c
                .prepare_cached(
                    "SELECT dest_ip, max(sni), CAST(total(bytes_toserver) AS INTEGER) AS b FROM flows
                     GROUP BY dest_ip ORDER BY b DESC LIMIT 10",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(o)
        })
    }

    fn counts(&self) -> StoreResult<Counts> {
        self.read(|c| {
            Ok(Counts {
                events: c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?,
                alerts: c.query_row("SELECT count(*) FROM alerts", [], |r| r.get(0))?,
                open_alerts: c.query_row(
                    "SELECT count(*) FROM alerts WHERE status IN ('new', 'investigating')",
                    [],
                    |r| r.get(0),
                )?,
            })
        })
    }
}

impl TokenStore for SqliteStore {
    fn token_insert(
        &self,
        name: &str,
        scope: Scope,
        hash: &str,
        sensors: Option<&[String]>,
        expires: Option<i64>,
        now: i64,
    ) -> StoreResult<i64> {
        let sensors = sensors.map(serde_json::to_string).transpose()?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (name, scope, hash, created, sensors, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, scope.as_str(), hash, now, sensors, expires],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn token_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<TokenGrant>> {
        self.read(|c| {
            let row: Option<(i64, String, Option<String>)> = c
                .prepare_cached(
                    "SELECT id, scope, sensors FROM tokens WHERE hash = ?1 AND revoked IS NULL
                     AND (expires IS NULL OR expires > ?2)",
                )?
                .query_row(params![hash, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((id, scope, sensors)) = row else {
                return Ok(None);
            };
            let Ok(scope) = scope.parse() else {
                return Ok(None);
            };
            Ok(Some(TokenGrant {
                id,
                scope,
                sensors: sensors.map(|s| serde_json::from_str(&s)).transpose()?,
            }))
        })
    }

    fn token_list(&self) -> StoreResult<Vec<TokenRow>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, scope, created, revoked, sensors FROM tokens ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (id, name, scope, created, revoked, sensors) = r?;
                if let Ok(scope) = scope.parse() {
                    out.push(TokenRow {
                        id,
                        name,
                        scope,
                        created,
                        revoked,
                        sensors: sensors.map(|s| serde_json::from_str(&s)).transpose()?,
                    });
                }
            }
            Ok(out)
        })
    }

    fn token_revoke(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
                params![id, now],
            )? > 0)
        })
    }
}

/// A SQLite file is served by one process: it delivers its own updates.
impl LiveStore for SqliteStore {
    fn listen(&self, _deliver: Deliver) -> StoreResult<bool> {
        Ok(false)
    }

    fn announce(&self, _updates: &[(&str, &str)]) -> StoreResult<()> {
        Ok(())
    }
}

impl UserStore for SqliteStore {
    fn user_upsert(&self, name: &str, phc: &str, now: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (name, phc, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET phc = excluded.phc",
                params![name, phc, now],
            )?;
            // A new password ends the user's sessions.
            tx.execute("DELETE FROM sessions WHERE user_name = ?1", [name])?;
            Ok(())
        })
    }

    fn user_phc(&self, name: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT phc FROM users WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?)
        })
    }

    fn session_insert(
        &self,
        hash: &str,
        user: &str,
        csrf: &str,
        expires: i64,
        now: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sessions (hash, user_name, csrf, expires, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, user, csrf, expires, now],
            )?;
            Ok(())
        })
    }

    fn session_lookup(&self, hash: &str, now: i64) -> StoreResult<Option<Session>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT user_name, csrf, expires, last_seen FROM sessions
                 WHERE hash = ?1 AND expires > ?2",
            )?
            .query_row(params![hash, now], |r| {
                Ok(Session {
                    user: r.get(0)?,
                    csrf: r.get(1)?,
                    expires: r.get(2)?,
                    last_seen: r.get(3)?,
                })
            })
            .optional()?)
        })
    }

    fn session_delete(&self, hash: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash])?;
            Ok(())
        })
    }

    fn session_touch(&self, hash: &str, now: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET last_seen = ?2 WHERE hash = ?1 AND last_seen < ?2",
                params![hash, now],
            )?;
            Ok(())
        })
    }

    fn user_set_mfa(
        &self,
        name: &str,
        totp_secret: Option<&str>,
        recovery: &[String],
    ) -> StoreResult<bool> {
        let recovery = serde_json::to_string(recovery)?;
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET totp_secret = ?2, recovery = ?3, totp_last_step = 0
                 WHERE name = ?1",
                params![name, totp_secret, recovery],
            )?;
            Ok(n == 1)
        })
    }

    fn user_mfa(&self, name: &str) -> StoreResult<Option<UserMfa>> {
        let row: Option<(Option<String>, Option<String>)> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT totp_secret, recovery FROM users WHERE name = ?1")?
                    .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })?;
        row.map(|(totp_secret, recovery)| {
            Ok(UserMfa {
                totp_secret,
                recovery: recovery
                    .map(|r| serde_json::from_str(&r))
                    .transpose()?
                    .unwrap_or_default(),
            })
        })
        .transpose()
    }

    fn user_use_recovery(&self, name: &str, hash: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let codes: Option<String> = tx
                .query_row("SELECT recovery FROM users WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?
                .flatten();
            let mut codes: Vec<String> = codes
                .map(|c| serde_json::from_str(&c))
                .transpose()?
                .unwrap_or_default();
            let Some(at) = codes
                .iter()
                .position(|c| crate::auth::constant_time_eq(c, hash))
            else {
                return Ok(false);
            };
            codes.remove(at);
            tx.execute(
                "UPDATE users SET recovery = ?2 WHERE name = ?1",
                params![name, serde_json::to_string(&codes)?],
            )?;
            Ok(true)
        })
    }

    fn user_use_totp_step(&self, name: &str, step: i64) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2",
                params![name, step],
            )?;
            Ok(n == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eve::{Alert, AlertCategory, AlertEvent, Event, HttpInfo, NetworkFields, Proto, TlsInfo};

    /// Attacker-controlled strings: FTS5 syntax, quotes, case folding that
    /// changes length, characters outside the BMP, NUL, field boundaries.
    const NASTY: &[&str] = &[
        "say \"hello\" OR goodbye",
        "a* NEAR(b c) -d ^e f:g (h) AND NOT i",
        "QUOTE\"\"\"END",
        "ΣΊΣΥΦΟΣ ΟΔΟΣ",
        "İstanbul KELVIN \u{212a}",
        "emoji 🦀🦀🦀 crab",
        "nul\u{0}inside\u{0}text",
        "tab\tand\nnewline",
        "percent%_under_score\\back",
        "'single' `tick` ;--",
    ];

    fn alert(i: usize, text: &str) -> NewEvent {
        let mut a = AlertEvent::new(
            Alert::new(
                format!("sig {i} {text}"),
                1,
                AlertCategory::WeightsFormat,
                2,
            ),
            serde_json::Map::new(),
        );
        a.tls = Some(TlsInfo {
            sni: Some(format!("Host{i}.Example")),
            ..TlsInfo::default()
        });
        a.http = Some(HttpInfo {
            url: Some(format!("/up/{text}/{i}")),
            http_user_agent: Some(text.to_uppercase()),
            ..HttpInfo::default()
        });
        let net = NetworkFields::new(
            i as u64,
            "10.0.0.1".parse().expect("ip"),
            1,
            "192.0.2.1".parse().expect("ip"),
            443,
            Proto::Tcp,
        );
        let mut e = Event::new(
            eve::Timestamp::from_unix_micros(1_000_000 * i as i64),
            EventKind::Alert(Box::new(a)),
        )
        .sensor("s")
        .network(net);
        e.event_id = format!("e{i}");
        let body = serde_json::to_string(&e).expect("json");
        NewEvent::from_eve(&e, body)
    }

    fn expected(events: &[NewEvent], q: &str) -> Vec<i64> {
        let needle = q.to_lowercase();
        let mut ids: Vec<i64> = events
            .iter()
            .enumerate()
            .filter(|(_, ne)| match &ne.index {
                Indexed::Alert(a) => a.search.contains(&needle),
                _ => false,
            })
            .map(|(i, _)| i as i64 + 1)
            .collect();
        ids.sort_by(|a, b| b.cmp(a));
        ids
    }

    #[test]
    fn index_and_scan_find_exactly_the_substring_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("db"), 1).expect("open");
        let events: Vec<NewEvent> = NASTY
            .iter()
            .chain(NASTY.iter())
            .enumerate()
            .map(|(i, t)| alert(i, t))
            .collect();
        store.ingest(&events, 0).expect("ingest");
        let mut queries: Vec<String> = Vec::new();
        for t in NASTY {
            let chars: Vec<char> = t.chars().collect();
            queries.push(t.to_string());
            queries.push(t.to_uppercase());
            for w in [1, 2, 3, 4, 7] {
                for start in (0..chars.len().saturating_sub(w)).step_by(3) {
                    queries.push(chars[start..start + w].iter().collect());
                }
            }
        }
        queries.extend(
            [
                "\"",
                "\"\"",
                "*",
                "NEAR",
                "-",
                "OR",
                "AND",
                "^",
                "\"*\"",
                "sig 1\nweights",
                "host1",
                "HOST1.EXAMPLE",
                "/up/",
                "not present anywhere",
                "ός ο",
                "σ ο",
            ]
            .map(String::from),
        );
        store
            .read(|c| {
                for q in &queries {
                    let f = AlertFilter {
                        text: Some(q.clone()),
                        limit: 1000,
                        ..AlertFilter::default()
                    };
                    let ids = |p: AlertPage| p.alerts.iter().map(|a| a.id).collect::<Vec<_>>();
                    let want = expected(&events, q);
                    // Caps that take each branch: candidates from the two
                    // rarest trigrams, from all of them, or too many (walk).
                    for cap in [1_000_000, 3, 1, 0] {
                        let got = ids(query_alerts_with(c, &f, Some(cap))?);
                        assert_eq!(got, want, "index capped at {cap}, query {q:?}");
                    }
                    let scanned = ids(query_alerts_with(c, &f, None)?);
                    assert_eq!(scanned, want, "scan, query {q:?}");
                    // Small pages: the glance at the newest rows answers
                    // some of them, the index the rest.
                    for limit in [1, 2] {
                        let mut paged = Vec::new();
                        let mut cursor = None;
                        loop {
                            let page = query_alerts(
                                c,
                                &AlertFilter {
                                    limit,
                                    cursor,
                                    ..f.clone()
                                },
                            )?;
                            cursor = page.next_cursor;
                            paged.extend(ids(page));
                            if cursor.is_none() {
                                break;
                            }
                        }
                        assert_eq!(paged, want, "pages of {limit}, query {q:?}");
                    }
                }
                Ok(())
            })
            .expect("queries");
    }
}
