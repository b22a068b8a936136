//! Load tool behind `docs/performance.md`.
//!
//! ```text
//! DB is a SQLite file or a postgres:// URL.
//!
//! dashboard_bench seed  DB N [FROM]     # store alerts FROM..FROM+N directly, report events/s
//! dashboard_bench bulk  PGURL N [FROM]  # PostgreSQL: the same, fast (indexes dropped, rebuilt)
//! dashboard_bench serve DB ADDR         # run the server (Ctrl-C to stop)
//! dashboard_bench token DB SCOPE        # print a new token
//! dashboard_bench ingest URL TOKEN N BATCH THREADS   # HTTP ingest load, report events/s and batch latency
//! dashboard_bench search URL TOKEN ROUNDS QUERY...    # free-text search latency (GET /alerts?QUERY)
//! dashboard_bench size DB                            # bytes per table and index (dbstat)
//! ```
//!
//! `search` takes each QUERY as a URL query string (`q=host998.example`,
//! `q=acct-42&category=distillation`), requests `/alerts?QUERY` (the HTML
//! page analysts use) ROUNDS times, and prints min/median/p99/max and the number
//! of alerts on the first JSON page (`/api/v1/alerts?limit=100&QUERY`).
//! Several URLs separated by commas are queried in turn (A/B interleaved).

use dashboard::store::{Database, NewEvent};
use dashboard::{DashboardConfig, Scope, Server};
use eve::{Alert, AlertCategory, AlertEvent, Event, EventKind, NetworkFields, Proto, Timestamp};
use std::time::Instant;

const CATS: [AlertCategory; 5] = [
    AlertCategory::WeightsFormat,
    AlertCategory::EgressVolume,
    AlertCategory::WeightsTensor,
    AlertCategory::EncryptedSizeMatch,
    AlertCategory::Distillation,
];

fn alert(prefix: &str, i: u64) -> Event {
    let cat = CATS[(i % CATS.len() as u64) as usize];
    let mut ev = serde_json::Map::new();
    ev.insert("bytes".into(), (1_000_000 + i * 7).into());
    ev.insert("format".into(), "safetensors".into());
    ev.insert("tensors".into(), (i % 500).into());
    let mut a = AlertEvent::new(
        Alert::new(
            format!("synthetic alert {}", i % 97),
            1000 + (i % 50) as u32,
            cat,
            (i % 3 + 1) as u8,
        ),
        ev,
    );
    let mut e;
    if cat == AlertCategory::Distillation {
        a.account_id = Some(format!("acct-{}", i % 5000));
        e = Event::new(ts(i), EventKind::Alert(Box::new(a))).sensor("analyzer-1");
    } else {
        a.tls = Some(eve::TlsInfo {
            sni: Some(format!("host{}.example", i % 1000)),
            ..Default::default()
        });
        let net = NetworkFields::new(
            i,
            format!("10.0.{}.{}", (i / 250) % 250, i % 250)
                .parse()
                .unwrap(),
            40000,
            format!("198.51.100.{}", i % 200).parse().unwrap(),
            443,
            Proto::Tcp,
        );
        e = Event::new(ts(i), EventKind::Alert(Box::new(a)))
            .sensor(format!("sensor-{}", i % 4))
            .network(net);
    }
    e.event_id = format!("{prefix}-{i}");
    e
}

fn ts(i: u64) -> Timestamp {
    // One alert every 0.6 s: a million alerts span a week.
    Timestamp::from_unix_micros(1_790_000_000_000_000 + i as i64 * 600_000)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match arg(1).as_str() {
        "seed" => {
            let store = Database::parse(&arg(2)).open(1).expect("open db");
            let n: u64 = arg(3).parse().expect("N");
            let from: u64 = args.get(4).map_or(0, |f| f.parse().expect("FROM"));
            let started = Instant::now();
            let (mut i, end) = (from, from + n);
            while i < end {
                let batch: Vec<NewEvent> = (i..(i + 5000).min(end))
                    .map(|k| {
                        let event = alert("seed", k);
                        let body = serde_json::to_string(&event).expect("json");
                        NewEvent::from_eve(&event, body)
                    })
                    .collect();
                store.ingest(&batch, 0).expect("ingest");
                i += batch.len() as u64;
            }
            let s = started.elapsed().as_secs_f64();
            println!(
                "seeded {n} alerts in {s:.1} s: {:.0} events/s (store, batches of 5000)",
                n as f64 / s
            );
        }
        "bulk" => {
            let url = arg(2);
            let n: u64 = arg(3).parse().expect("N");
            let from: u64 = args.get(4).map_or(0, |f| f.parse().expect("FROM"));
            // The schema, as the server makes it.
            drop(Database::parse(&url).open(1).expect("open db"));
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(bulk_postgres(&url, from, n));
        }
        "serve" => {
            let cfg = DashboardConfig {
                ingest_requests_per_second: 1_000_000,
                ingest_burst: 1_000_000,
                retention_days: 0,
                ..DashboardConfig::default()
            };
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let server = Server::bind(&cfg, Database::parse(&arg(2)), &arg(3))
                    .await
                    .expect("bind");
                server
                    .serve(dashboard::shutdown_signal())
                    .await
                    .expect("serve");
            });
        }
        "token" => {
            let scope: Scope = arg(3).parse().expect("scope");
            println!(
                "{}",
                dashboard::admin::create_token(Database::parse(&arg(2)), scope, "bench")
                    .expect("token")
            );
        }
        "ingest" => {
            let (url, token) = (arg(2), arg(3));
            let n: u64 = arg(4).parse().expect("N");
            let batch: u64 = arg(5).parse().expect("BATCH");
            let threads: u64 = arg(6).parse().expect("THREADS");
            let run = format!("{}", std::process::id());
            let started = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (url, token, run) = (url.clone(), token.clone(), run.clone());
                    std::thread::spawn(move || {
                        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                        let mut lat = Vec::new();
                        let mut k = t * batch;
                        while k < n {
                            let events: Vec<Event> =
                                (k..(k + batch).min(n)).map(|i| alert(&run, i)).collect();
                            let body = serde_json::to_string(&events).expect("json");
                            let t0 = Instant::now();
                            let r = agent
                                .post(format!("{url}/api/v1/events"))
                                .header("authorization", format!("Bearer {token}"))
                                .content_type("application/json")
                                .send(body)
                                .expect("post");
                            assert_eq!(r.status().as_u16(), 200);
                            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                            k += batch * threads;
                        }
                        lat
                    })
                })
                .collect();
            let mut lat: Vec<f64> = handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread"))
                .collect();
            let s = started.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
            println!(
                "ingested {n} events in {s:.1} s: {:.0} events/s; batch of {batch} latency p50 {:.1} ms, p99 {:.1} ms ({threads} threads)",
                n as f64 / s,
                p(0.5),
                p(0.99)
            );
        }
        "search" => {
            let urls: Vec<String> = arg(2).split(',').map(String::from).collect();
            let token = arg(3);
            let rounds: usize = arg(4).parse().expect("ROUNDS");
            let queries = args.get(5..).unwrap_or_else(|| usage());
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let get = |url: &str| {
                let mut r = agent
                    .get(url)
                    .header("authorization", format!("Bearer {token}"))
                    .call()
                    .expect("get");
                assert_eq!(r.status().as_u16(), 200, "{url}");
                r.body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_string()
                    .expect("body")
            };
            for q in queries {
                let mut times: Vec<Vec<f64>> = vec![Vec::new(); urls.len()];
                for _ in 0..rounds {
                    for (u, url) in urls.iter().enumerate() {
                        let t0 = Instant::now();
                        get(&format!("{url}/alerts?{q}"));
                        times[u].push(t0.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                for (u, url) in urls.iter().enumerate() {
                    let page: serde_json::Value =
                        serde_json::from_str(&get(&format!("{url}/api/v1/alerts?limit=100&{q}")))
                            .expect("json");
                    let found = page["alerts"].as_array().map_or(0, Vec::len);
                    let t = &mut times[u];
                    t.sort_by(f64::total_cmp);
                    println!(
                        "{url} /alerts?{q}: min {:.1} ms, median {:.1} ms, p99 {:.1} ms, max {:.1} ms ({rounds} runs; first page {found}{} alerts)",
                        t[0],
                        t[t.len() / 2],
                        t[((t.len() as f64 * 0.99) as usize).min(t.len() - 1)],
                        t[t.len() - 1],
                        if page["next_cursor"].is_string() {
                            "+"
                        } else {
                            ""
                        },
                    );
                }
            }
        }
        "size" => {
            let conn = rusqlite::Connection::open_with_flags(
                arg(2),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open db");
            let mut stmt = conn
                .prepare(
                    "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC",
                )
                .expect("dbstat");
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .expect("dbstat")
                .collect::<Result<Vec<_>, _>>()
                .expect("dbstat");
            let total: i64 = rows.iter().map(|r| r.1).sum();
            let fts: i64 = rows
                .iter()
                .filter(|r| r.0.starts_with("alerts_fts"))
                .map(|r| r.1)
                .sum();
            for (name, bytes) in &rows {
                println!("{name:<24} {:>10.1} MiB", *bytes as f64 / 1048576.0);
            }
            println!(
                "total {:.1} MiB, of which the text index (alerts_fts*) {:.1} MiB",
                total as f64 / 1048576.0,
                fts as f64 / 1048576.0
            );
        }
        _ => usage(),
    }
}

/// Load synthetic alerts `from..from + n` into a PostgreSQL store as fast as the
/// database takes them, for the scale figures (10 M alerts through the
/// store's own ingest would take hours here): the secondary indexes of
/// `events` and `alerts` (as the migrations made them) are dropped, the
/// rows inserted in chunks of 20,000 without foreign-key checks, and the
/// indexes built again. Only `events` and `alerts` are filled (not the
/// per-sensor or per-account summaries).
async fn bulk_postgres(url: &str, from: u64, n: u64) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let started = Instant::now();
    let indexes: Vec<(String, String)> = c
        .query(
            "SELECT indexname, indexdef FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename IN ('events', 'alerts')
               AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (name, _) in &indexes {
        c.batch_execute(&format!("DROP INDEX {name}"))
            .await
            .expect("drop index");
    }
    c.batch_execute(
        "SET session_replication_role = replica; SET maintenance_work_mem = '1GB';
         SET synchronous_commit = off",
    )
    .await
    .expect("settings");
    let base: i64 = c
        .query_one("SELECT coalesce(max(id), 0) FROM events", &[])
        .await
        .expect("max id")
        .get(0);
    // The indexes are built again even when a row fails (a duplicate id).
    let rows = async {
        let mut i = 0;
        while i < n {
            let chunk: Vec<NewEvent> = (i..(i + 20_000).min(n))
                .map(|k| {
                    let event = alert("bulk", from + k);
                    let body = serde_json::to_string(&event).expect("json");
                    NewEvent::from_eve(&event, body)
                })
                .collect();
            let ids: Vec<i64> = (0..chunk.len() as i64)
                .map(|k| base + i as i64 + k + 1)
                .collect();
            let ts: Vec<i64> = chunk.iter().map(|e| e.ts).collect();
            let text = |f: &dyn Fn(&NewEvent) -> Option<String>| -> Vec<Option<String>> {
                chunk.iter().map(f).collect()
            };
            let index = |e: &NewEvent| match &e.index {
                dashboard::store::Indexed::Alert(a) => a.clone(),
                _ => unreachable!("the bench makes alerts only"),
            };
            let flows: Vec<Option<i64>> =
                chunk.iter().map(|e| e.flow_id.map(|f| f as i64)).collect();
            c.execute(
                "INSERT INTO events (id, event_id, event_type, ts, received, sensor_id, flow_id,
                                     community_id, body) OVERRIDING SYSTEM VALUE
                 SELECT u.id, u.event_id, u.event_type, u.ts, 0, u.sensor_id, u.flow_id,
                        u.community_id, u.body
                 FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[],
                             $6::int8[], $7::text[], $8::text[])
                      AS u(id, event_id, event_type, ts, sensor_id, flow_id, community_id, body)",
                &[
                    &ids,
                    &text(&|e| Some(e.event_id.clone())),
                    &text(&|e| Some(e.event_type.clone())),
                    &ts,
                    &text(&|e| e.sensor_id.clone()),
                    &flows,
                    &text(&|e| e.community_id.clone()),
                    &text(&|e| Some(e.body.clone())),
                ],
            )
            .await?;
            let severity: Vec<i64> = chunk.iter().map(|e| i64::from(index(e).severity)).collect();
            c.execute(
                "INSERT INTO alerts (id, ts, category, severity, sensor_id, src_ip, dest_ip,
                                     account_id, search)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[],
                                      $6::text[], $7::text[], $8::text[], $9::text[])",
                &[
                    &ids,
                    &ts,
                    &text(&|e| Some(index(e).category)),
                    &severity,
                    &text(&|e| e.sensor_id.clone()),
                    &text(&|e| index(e).src_ip),
                    &text(&|e| index(e).dest_ip),
                    &text(&|e| index(e).account_id),
                    &text(&|e| Some(index(e).search)),
                ],
            )
            .await?;
            i += chunk.len() as u64;
        }
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    let loaded = started.elapsed().as_secs_f64();
    for (_, def) in &indexes {
        c.batch_execute(def).await.expect("create index");
    }
    rows.expect("insert rows");
    c.batch_execute(
        "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT max(id) FROM events));
         ANALYZE events; ANALYZE alerts",
    )
    .await
    .expect("sequence, analyze");
    let s = started.elapsed().as_secs_f64();
    println!(
        "bulk-loaded {n} alerts in {s:.0} s (rows {loaded:.0} s, {} indexes rebuilt {:.0} s)",
        indexes.len(),
        s - loaded
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: dashboard_bench seed DB N [FROM] | bulk PGURL N [FROM] | serve DB ADDR | token DB SCOPE | ingest URL TOKEN N BATCH THREADS | search URL[,URL…] TOKEN ROUNDS QUERY… | size DB"
    );
    std::process::exit(2)
}
