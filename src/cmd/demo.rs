//! `weightwatch demo`: the whole loop on the bundled fixtures.
//!
//! 1. a fresh embedded database, an ingest token and a one-time admin login;
//! 2. the dashboard, in this process, on `--listen`;
//! 3. the registered weights of the demo written from code, and their
//!    known-weights index built;
//! 4. every bundled capture replayed through the sensor with the demo policy,
//!    re-timed (as `capture --rebase-time` does) into the API logs' last
//!    day, so both stories share the overview's week;
//! 5. the bundled API logs (generated on first use) through the analyzer;
//! 6. everything sent through the real sinks (dashboard spool and an EVE
//!    file), then a guided tour printed and the dashboard served until
//!    interrupted.

mod tour;

use crate::config::Config;
use anyhow::Context;
use eve::sink::EventSink;
use eve::sink::eve_file::EveFileSink;
use eve::sink::http::{HttpSink, HttpSinkConfig};
use eve::{Event, EventKind, SinkError};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of `weightwatch demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address for the dashboard (port 0 picks a free one; the URL is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Database for the demo (replaced on each run).
    #[arg(long, value_name = "PATH", default_value = "weightwatch-demo.db")]
    pub db: PathBuf,
    /// Working directory for generated weights, index, logs, EVE output and spool.
    #[arg(long, value_name = "DIR", default_value = "weightwatch-demo")]
    pub work_dir: PathBuf,
    /// The repository's `fixtures/` directory (bundled captures and demo policy).
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))]
    pub fixtures: PathBuf,
    /// Run the pipeline, print the summary and exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
}

/// Demo login name.
const ADMIN: &str = "admin";

/// Run the demo.
pub fn run(args: Args, _config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let demo_cfg_path = args.fixtures.join("demo/weightwatch.toml");
    let config = Config::load(Some(&demo_cfg_path))
        .with_context(|| format!("the demo policy {}", demo_cfg_path.display()))?;
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;

    step(1, "fresh database, ingest token and admin login");
    remove_db(&args.db)?;
    let password = random_hex(12)?;
    let token = dashboard::admin::create_token(&args.db, dashboard::Scope::Ingest, "demo sensor")?;
    dashboard::admin::add_user(&args.db, ADMIN, &password)?;

    step(2, "dashboard");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let server = rt.block_on(dashboard::Server::bind(
        &config.dashboard,
        &args.db,
        &args.listen,
    ))?;
    let addr = server.local_addr()?;
    let url = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(server.serve(async move {
        tokio::select! {
            _ = dashboard::shutdown_signal() => {}
            _ = stop_rx => {}
        }
    }));
    eprintln!("      listening on {url}");

    let mut sink = CountingSink::new(open_sinks(&args.work_dir, &url, &token)?);

    step(3, "registered weights and their known-weights index");
    let index = crate::demo_data::registered_weights(&args.work_dir.join("weights"))?;

    step(4, "sensor: replaying the bundled captures");
    let generated = crate::demo_data::weight_captures(&args.work_dir.join("pcaps"))?;
    let pcaps = crate::demo_data::captures_in(&[args.fixtures.join("pcaps"), generated])?;
    let mut settings = capture::Settings::new(config.capture.clone());
    settings.sensor_id = "demo-sensor".to_string();
    settings.retime = capture::Retime::FirstAt(crate::demo_data::replay_start());
    let detectors = capture::detect::build(&config.policy, &config.detect, Some(&index))
        .context("building the detectors")?;
    let summary = capture::run_offline(&pcaps, &settings, &detectors, &mut sink)
        .context("replaying the bundled captures")?;
    eprintln!(
        "      {} files, {} packets, {} events",
        summary.files.len(),
        summary.packets(),
        summary.events
    );

    step(5, "analyzer: API request logs");
    let logs = crate::demo_data::api_logs(&args.work_dir.join("logs"))?;
    let opts = analyzer::AnalyzeOptions {
        logs: vec![logs],
        scores_out: Some(args.work_dir.join("scores.csv")),
        progress: true,
        sensor_id: Some("demo-analyzer".to_string()),
        ..Default::default()
    };
    let report = analyzer::run(&opts, &config.analyzer, &mut sink)?;
    eprintln!(
        "      {} rows, {} accounts flagged, {} clusters flagged",
        report.ingest.rows,
        report.flagged_accounts(),
        report.flagged_clusters()
    );

    step(6, "delivering events to the dashboard");
    sink.finish().context("delivering the demo's events")?;

    println!();
    println!("weightwatch demo ready in {:.0?}", started.elapsed());
    println!("  alerts sent to the dashboard:");
    for (category, n) in &sink.alerts {
        println!("    {category:<22} {n}");
    }
    println!("  EVE output: {}", args.work_dir.join("eve.json").display());
    if args.no_serve {
        let serve = format!("weightwatch serve --db {}", args.db.display());
        print!("{}", sink.tour.render("", Some(&serve)));
    } else {
        print!("{}", sink.tour.render(&url, None));
    }
    if args.no_serve {
        // The dashboard served the demo's own ingest and stops now: point
        // at the command that serves the same database, not at a URL
        // nobody answers.
        println!(
            "  dashboard:  not served (--no-serve); serve it with: weightwatch serve --db {}",
            args.db.display()
        );
        println!(
            "  sign in as: {ADMIN} / {password}   (one-time password; only its hash is stored)"
        );
        let _ = stop_tx.send(());
    } else {
        println!("  dashboard:  {url}/");
        println!(
            "  sign in as: {ADMIN} / {password}   (one-time password; only its hash is stored)"
        );
        eprintln!("  serving until interrupted (Ctrl-C)");
    }
    rt.block_on(serving)
        .context("dashboard task")?
        .context("dashboard")?;
    Ok(())
}

fn step(n: u32, what: &str) {
    eprintln!("[{n}/6] {what}");
}

/// The dashboard sink (with its spool in the work dir) and an EVE file.
fn open_sinks(work: &Path, url: &str, token: &str) -> anyhow::Result<eve::sink::Fanout> {
    let spool = work.join("spool");
    if spool.exists() {
        std::fs::remove_dir_all(&spool).with_context(|| format!("clearing {}", spool.display()))?;
    }
    let eve_path = work.join("eve.json");
    if eve_path.exists() {
        std::fs::remove_file(&eve_path)?;
    }
    let mut out = eve::sink::Fanout::new();
    out.push(Box::new(EveFileSink::open(
        eve_path.to_str().context("work dir path is not UTF-8")?,
        None,
        1,
    )?));
    let mut http = HttpSinkConfig::new(url, token, spool);
    http.close_timeout = Duration::from_secs(120);
    out.push(Box::new(HttpSink::start(http)?));
    Ok(out)
}

/// Delete the database and its WAL files, so the demo starts fresh.
fn remove_db(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", db.display())),
        }
    }
    Ok(())
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Forwards events to the demo's sinks, counts alerts by category and
/// notes what the guided tour points at.
struct CountingSink {
    inner: eve::sink::Fanout,
    alerts: BTreeMap<&'static str, u64>,
    tour: tour::Tour,
}

impl CountingSink {
    fn new(inner: eve::sink::Fanout) -> Self {
        CountingSink {
            inner,
            alerts: BTreeMap::new(),
            tour: tour::Tour::default(),
        }
    }
}

impl EventSink for CountingSink {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        if let EventKind::Alert(a) = &event.kind {
            *self.alerts.entry(a.alert.category.as_str()).or_default() += 1;
            self.tour.note(event, a);
        }
        self.inner.emit(event)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }

    /// The sensor and the analyzer each close the sink they were given when
    /// they finish; here that only flushes, and [`CountingSink::finish`]
    /// closes for real once both are done.
    fn close(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

impl CountingSink {
    /// Close the sinks: wait for the dashboard to take every event.
    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.close()
    }
}
