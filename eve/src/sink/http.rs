//! Delivery to the dashboard: events are appended to an on-disk [`Spool`]
//! and a background thread POSTs them in order, in batches, to
//! `{url}/api/v1/events`, retrying with exponential backoff. Nothing is lost
//! while the dashboard is down or slow; the spool is bounded on disk and
//! events beyond the bound are counted and warned about, never queued in
//! memory. Receivers drop duplicates by `event_id`, so a batch retried after
//! a lost acknowledgement is stored once: delivery is exactly-once end to end.

use super::spool::{Position, Spool};
use super::{EventSink, SinkError};
use crate::event::Event;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of the dashboard sink.
#[derive(Clone, Debug)]
pub struct HttpSinkConfig {
    /// Dashboard base URL (`http://host:port`).
    pub url: String,
    /// Bearer token with the `ingest` scope.
    pub token: String,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Upper bound of the spool on disk.
    pub spool_max_bytes: u64,
    /// Size at which a spool segment is rolled.
    pub segment_bytes: u64,
    /// Events per POST.
    pub batch_events: usize,
    /// First retry delay; doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Timeout of one POST.
    pub request_timeout: Duration,
    /// How long `close` waits for the spool to drain.
    pub close_timeout: Duration,
    /// Trust only this CA (PEM) for an `https://` dashboard, instead of the
    /// public web roots (a lab's private CA).
    pub ca_cert: Option<PathBuf>,
}

impl HttpSinkConfig {
    /// Defaults for everything but where to send and with what token.
    pub fn new(url: impl Into<String>, token: impl Into<String>, spool_dir: PathBuf) -> Self {
        HttpSinkConfig {
            url: url.into(),
            token: token.into(),
            spool_dir,
            spool_max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            batch_events: 500,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(60),
            ca_cert: None,
        }
    }
}

/// Counters of the dashboard sink.
#[derive(Debug, Default)]
pub struct HttpSinkStats {
    /// Events appended to the spool.
    pub spooled: AtomicU64,
    /// Events the dashboard stored (new).
    pub delivered: AtomicU64,
    /// Events the dashboard already had (retries after a lost acknowledgement).
    pub duplicates: AtomicU64,
    /// Events the dashboard refused as malformed (logged, not retried).
    pub rejected: AtomicU64,
    /// Events dropped because the spool was full.
    pub dropped_full: AtomicU64,
    /// Damaged spool lines skipped.
    pub corrupt: AtomicU64,
    /// Failed POST attempts (each retried).
    pub failed_attempts: AtomicU64,
}

struct Shared {
    spool: Mutex<Spool>,
    wake: Condvar,
    closing: AtomicBool,
    stats: HttpSinkStats,
}

impl Shared {
    fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The dashboard sink. See the module documentation.
pub struct HttpSink {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
    close_timeout: Duration,
    spool_dir: PathBuf,
    warned_full: bool,
}

impl HttpSink {
    /// Open the spool (resuming what a previous run left) and start delivery.
    pub fn start(config: HttpSinkConfig) -> Result<HttpSink, SinkError> {
        let url = config.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SinkError::Config(format!(
                "dashboard URL must start with http:// or https://, got {url:?}"
            )));
        }
        let endpoint = format!("{url}/api/v1/events");
        let spool = Spool::open(
            &config.spool_dir,
            config.segment_bytes,
            config.spool_max_bytes,
        )?;
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            stats: HttpSinkStats::default(),
        });
        let mut agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.request_timeout))
            .http_status_as_error(false);
        if let Some(ca) = &config.ca_cert {
            agent = agent.tls_config(private_ca(ca)?);
        }
        let deliver = Delivery {
            shared: shared.clone(),
            endpoint,
            auth: format!("Bearer {}", config.token),
            agent: agent.build().into(),
            batch_events: config.batch_events.max(1),
            retry_min: config.retry_min,
            retry_max: config.retry_max.max(config.retry_min),
        };
        let sender = std::thread::Builder::new()
            .name("dashboard-sink".into())
            .spawn(move || deliver.run())
            .map_err(|e| SinkError::io("start dashboard sink thread", e))?;
        Ok(HttpSink {
            shared,
            sender: Some(sender),
            close_timeout: config.close_timeout,
            spool_dir: config.spool_dir,
            warned_full: false,
        })
    }

    /// The sink's counters.
    pub fn stats(&self) -> &HttpSinkStats {
        &self.shared.stats
    }
}

impl EventSink for HttpSink {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let line = event.to_json_line();
        let stored = self.shared.spool().append(&line)?;
        let stats = &self.shared.stats;
        if stored {
            stats.spooled.fetch_add(1, Ordering::Relaxed);
            self.shared.wake.notify_one();
        } else {
            let n = stats.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
            if !self.warned_full || n.is_multiple_of(10_000) {
                self.warned_full = true;
                tracing::warn!(
                    spool = %self.spool_dir.display(),
                    dropped = n,
                    "dashboard spool is full (is the dashboard down?): dropping new events \
                     until it drains; raise [sinks] spool_max_bytes to keep more"
                );
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.shared.spool().sync()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        let deadline = Instant::now() + self.close_timeout;
        while !self.shared.spool().is_drained() && Instant::now() < deadline {
            self.shared.wake.notify_one();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        let spool = self.shared.spool();
        if spool.is_drained() {
            Ok(())
        } else {
            Err(SinkError::Undelivered(format!(
                "the dashboard did not take every event within {:?}; {} bytes stay spooled in {} \
                 and will be sent on the next start",
                self.close_timeout,
                spool.disk_bytes(),
                self.spool_dir.display()
            )))
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

/// TLS settings that trust only the CA certificates in the PEM file `path`.
pub fn private_ca(path: &std::path::Path) -> Result<ureq::tls::TlsConfig, SinkError> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, parse_pem};
    let pem = std::fs::read(path)
        .map_err(|e| SinkError::io(format!("read CA certificate {}", path.display()), e))?;
    let mut roots = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => roots.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(SinkError::Config(format!(
                    "CA certificate {}: {e}",
                    path.display()
                )));
            }
        }
    }
    if roots.is_empty() {
        return Err(SinkError::Config(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::Specific(std::sync::Arc::new(roots)))
        .build())
}

/// The delivery thread's state.
struct Delivery {
    shared: Arc<Shared>,
    endpoint: String,
    auth: String,
    agent: ureq::Agent,
    batch_events: usize,
    retry_min: Duration,
    retry_max: Duration,
}

/// What one POST attempt concluded.
enum Outcome {
    /// Stored (or rejected as poison): advance the cursor.
    Acked,
    /// The batch is too large or malformed as a whole: send fewer at a time.
    Split,
    /// Try the same batch again after a delay (at least this long).
    Retry(Option<Duration>),
}

impl Delivery {
    fn run(self) {
        let mut delay = self.retry_min;
        let mut batch_limit = self.batch_events;
        loop {
            let batch = {
                let mut spool = self.shared.spool();
                loop {
                    if self.shared.closing.load(Ordering::SeqCst) {
                        return;
                    }
                    match spool.read_batch(batch_limit) {
                        Ok(b) if b.next.is_some() => break b,
                        Ok(_) => {}
                        Err(e) => tracing::error!("dashboard sink: {e}"),
                    }
                    spool = self
                        .shared
                        .wake
                        .wait_timeout(spool, Duration::from_millis(500))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            };
            self.shared
                .stats
                .corrupt
                .fetch_add(batch.corrupt, Ordering::Relaxed);
            let next: Position = batch.next.unwrap_or(Position {
                segment: 0,
                offset: 0,
            });
            let outcome = if batch.lines.is_empty() {
                Outcome::Acked
            } else {
                self.post(&batch.lines)
            };
            match outcome {
                Outcome::Acked => {
                    if let Err(e) = self.shared.spool().ack(next) {
                        tracing::error!("dashboard sink: {e}");
                    }
                    delay = self.retry_min;
                    batch_limit = self.batch_events;
                }
                Outcome::Split if batch.lines.len() > 1 => {
                    batch_limit = (batch.lines.len() / 2).max(1);
                }
                Outcome::Split => {
                    // A single event the dashboard cannot take at all: poison.
                    tracing::error!(
                        "dashboard refused an event outright; skipping it: {}",
                        truncate(&batch.lines[0], 300)
                    );
                    self.shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.shared.spool().ack(next) {
                        tracing::error!("dashboard sink: {e}");
                    }
                    batch_limit = self.batch_events;
                }
                Outcome::Retry(at_least) => {
                    self.shared
                        .stats
                        .failed_attempts
                        .fetch_add(1, Ordering::Relaxed);
                    let wait = at_least.unwrap_or(delay).max(delay).min(self.retry_max);
                    self.sleep(jitter(wait));
                    delay = (delay * 2).min(self.retry_max);
                }
            }
        }
    }

    /// Sleep, waking early when closing.
    fn sleep(&self, d: Duration) {
        let guard = self.shared.spool();
        if !self.shared.closing.load(Ordering::SeqCst) {
            let _ = self.shared.wake.wait_timeout(guard, d);
        }
    }

    fn post(&self, lines: &[String]) -> Outcome {
        let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(l);
        }
        body.push(']');
        let resp = self
            .agent
            .post(&self.endpoint)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(body.as_bytes());
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("dashboard unreachable: {e}");
                return Outcome::Retry(None);
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        let stats = &self.shared.stats;
        match status {
            200..=299 | 422 => {
                let reply: IngestReply = serde_json::from_str(&text).unwrap_or_default();
                stats.delivered.fetch_add(reply.accepted, Ordering::Relaxed);
                stats
                    .duplicates
                    .fetch_add(reply.duplicates, Ordering::Relaxed);
                if !reply.rejected.is_empty() {
                    stats
                        .rejected
                        .fetch_add(reply.rejected.len() as u64, Ordering::Relaxed);
                    for r in reply.rejected.iter().take(5) {
                        tracing::warn!("dashboard rejected an event: {r}");
                    }
                }
                Outcome::Acked
            }
            400 | 413 => Outcome::Split,
            401 | 403 => {
                tracing::error!(
                    status,
                    "dashboard refused the token (needs scope ingest); events stay spooled"
                );
                Outcome::Retry(None)
            }
            429 => Outcome::Retry(retry_after),
            _ => {
                tracing::debug!(status, "dashboard error: {}", truncate(&text, 200));
                Outcome::Retry(retry_after)
            }
        }
    }
}

/// The dashboard's answer to a batch.
#[derive(Default, serde::Deserialize)]
struct IngestReply {
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    duplicates: u64,
    #[serde(default)]
    rejected: Vec<serde_json::Value>,
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// ±25% jitter, so many sensors do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let nanos = now.subsec_nanos() as u64
        ^ std::process::id() as u64
        ^ (d.as_nanos() as u64).rotate_left(17);
    let frac = (nanos % 500) as f64 / 1000.0 + 0.75; // 0.75 ..= 1.25
    d.mul_f64(frac)
}
