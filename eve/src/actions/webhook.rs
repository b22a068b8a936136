//! `webhook = "https://…"` actions: one thread per webhook moves subjects
//! (an alert's JSON, or an incident's) from a bounded queue into an on-disk
//! spool (the dashboard sink's [`Spool`]) and POSTs them one at a time, in
//! order, signed with HMAC-SHA256 over the body, retrying with exponential
//! backoff. What is not delivered when the process stops stays spooled and
//! is sent on the next start.

use super::{
    ActionConfig, ActionError, ActionStats, Outcome, OutcomeHook, Subject, Triggered, report,
};
use crate::sink::spool::Spool;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError, bounded};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Weightwatch-Signature";

const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a closing webhook keeps trying before leaving the rest spooled.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
const SEGMENT_BYTES: u64 = 4 << 20;

/// The queue into a webhook's delivery thread.
pub(super) struct Webhook {
    queue: Option<Sender<String>>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    pub(super) fn start(
        config: &ActionConfig,
        url: &str,
        default_spool: &Path,
        stats: Arc<ActionStats>,
        hook: Option<OutcomeHook>,
    ) -> Result<Webhook, ActionError> {
        let name = config.name.clone();
        // `check` made sure the variable is set and not empty.
        let key = config
            .secret_env
            .as_ref()
            .and_then(std::env::var_os)
            .map(|v| v.into_encoded_bytes())
            .unwrap_or_default();
        let dir = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| default_spool.join(format!("action-{name}")));
        let spool = Spool::open(&dir, SEGMENT_BYTES, config.spool_max_bytes).map_err(|source| {
            ActionError::Spool {
                name: name.clone(),
                source,
            }
        })?;
        let (tx, rx) = bounded(config.queue);
        let delivery = Delivery {
            name: name.clone(),
            url: url.to_string(),
            key,
            spool,
            rx,
            stats,
            hook,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(REQUEST_TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("action-{name}"))
            .spawn(move || delivery.run())
            .map_err(|source| ActionError::Thread { name, source })?;
        Ok(Webhook {
            queue: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queue `subject` without waiting.
    pub(super) fn offer(&self, subject: &Subject) -> Triggered {
        let line = serde_json::to_string(&Spooled {
            id: Cow::Borrowed(subject.id()),
            body: Cow::Borrowed(subject.json()),
        })
        .expect("two strings serialize");
        match self.queue.as_ref().map(|q| q.try_send(line)) {
            Some(Ok(())) => Triggered::Queued,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                Triggered::QueueFull
            }
        }
    }

    /// Close the queue; the thread delivers what it can within
    /// [`CLOSE_TIMEOUT`] and leaves the rest in the spool.
    pub(super) fn close(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `sha256=<hex>` of `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delivery thread's state.
struct Delivery {
    name: String,
    url: String,
    key: Vec<u8>,
    spool: Spool,
    rx: Receiver<String>,
    stats: Arc<ActionStats>,
    hook: Option<OutcomeHook>,
    agent: ureq::Agent,
}

/// What one POST concluded.
enum Posted {
    /// Delivered (2xx).
    Done(u16),
    /// Refused for good (a 4xx other than 408/429): not retried.
    Refused(String),
    /// Try again later.
    Retry(String),
}

impl Delivery {
    fn run(mut self) {
        let mut delay = RETRY_MIN;
        let mut closing_at: Option<Instant> = None;
        loop {
            // Move whatever is queued into the spool.
            loop {
                match self.rx.try_recv() {
                    Ok(line) => self.spool_line(&line),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closing_at.get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
                        break;
                    }
                }
            }
            if closing_at.is_some_and(|t| Instant::now() >= t) {
                self.leave_spooled();
                return;
            }
            let batch = match self.spool.read_batch(1) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(action = %self.name, "webhook spool: {e}");
                    self.wait(&mut closing_at, RETRY_MAX);
                    continue;
                }
            };
            let Some(next) = batch.next else {
                if closing_at.is_some() {
                    return; // closing and everything delivered
                }
                // Nothing spooled: wait for the next alert.
                match self.rx.recv() {
                    Ok(line) => self.spool_line(&line),
                    Err(_) => {
                        closing_at.get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
                    }
                }
                continue;
            };
            let Some(line) = batch.lines.first() else {
                self.ack(next); // a damaged line: skip it
                continue;
            };
            let (id, body) = unspool(line);
            match self.post(&body) {
                Posted::Done(status) => {
                    self.ack(next);
                    self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                    delay = RETRY_MIN;
                    self.report(id, true, format!("HTTP {status}"));
                }
                Posted::Refused(why) => {
                    self.ack(next);
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    self.report(id, false, why);
                }
                Posted::Retry(why) => {
                    let n = self.stats.failed.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == 1 || n.is_multiple_of(100) {
                        tracing::warn!(action = %self.name, failures = n, "webhook not reached, retrying: {why}");
                    }
                    self.wait(&mut closing_at, delay);
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Wait `d` (less when closing), taking newly queued alerts meanwhile.
    fn wait(&mut self, closing_at: &mut Option<Instant>, d: Duration) {
        let until = Instant::now() + d;
        let until = closing_at.map_or(until, |c| until.min(c));
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(line) => self.spool_line(&line),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    let c = *closing_at.get_or_insert_with(|| Instant::now() + CLOSE_TIMEOUT);
                    std::thread::sleep(until.min(c).saturating_duration_since(Instant::now()));
                    return;
                }
            }
        }
    }

    fn spool_line(&mut self, line: &str) {
        match self.spool.append(line) {
            Ok(true) => {}
            Ok(false) => {
                let n = self
                    .stats
                    .dropped_spool_full
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(action = %self.name, dropped = n,
                        "webhook spool full (is the receiver down?): alert dropped");
                }
            }
            Err(e) => tracing::error!(action = %self.name, "webhook spool: {e}"),
        }
    }

    fn ack(&mut self, next: crate::sink::spool::Position) {
        if let Err(e) = self.spool.ack(next) {
            tracing::error!(action = %self.name, "webhook spool: {e}");
        }
    }

    fn leave_spooled(&mut self) {
        let _ = self.spool.sync();
        if !self.spool.is_drained() {
            tracing::warn!(action = %self.name, bytes = self.spool.disk_bytes(),
                "webhook not reached before shutdown: alerts stay spooled for the next start");
        }
    }

    fn report(&self, id: String, ok: bool, detail: String) {
        report(
            &self.hook,
            Outcome {
                action: self.name.clone(),
                id,
                ok,
                detail,
            },
        );
    }

    fn post(&self, body: &str) -> Posted {
        let resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, &signature(&self.key, body.as_bytes()))
            .send(body.as_bytes());
        match resp {
            Ok(r) => match r.status().as_u16() {
                s @ 200..=299 => Posted::Done(s),
                s @ (408 | 429 | 500..) => Posted::Retry(format!("HTTP {s}")),
                s => Posted::Refused(format!("HTTP {s} (not retried)")),
            },
            Err(e) => Posted::Retry(e.to_string()),
        }
    }
}

/// A spooled line: the body to POST (exactly these bytes are signed) and
/// the id its outcome is reported under.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spooled<'a> {
    id: Cow<'a, str>,
    body: Cow<'a, str>,
}

/// What a line spooled by an earlier version (the alert's JSON itself) is
/// reported under.
#[derive(Deserialize)]
struct IdOnly {
    event_id: String,
}

/// The id and the body of a spooled line.
fn unspool(line: &str) -> (String, Cow<'_, str>) {
    match serde_json::from_str::<Spooled>(line) {
        Ok(s) => (s.id.into_owned(), Cow::Owned(s.body.into_owned())),
        Err(_) => (
            serde_json::from_str::<IdOnly>(line)
                .map(|i| i.event_id)
                .unwrap_or_default(),
            Cow::Borrowed(line),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spooled_lines_keep_the_body_and_id_and_old_lines_still_send() {
        let body = r#"{"incident":{"id":4,"title":"a \"quoted\" title\n"}}"#;
        let line = serde_json::to_string(&super::Spooled {
            id: body.into(),
            body: body.into(),
        })
        .unwrap();
        assert!(!line.contains('\n'), "one line");
        let (id, sent) = super::unspool(&line);
        assert_eq!((id.as_str(), &*sent), (body, body));
        let old = r#"{"event_id":"e-1","event_type":"alert"}"#;
        let (id, sent) = super::unspool(old);
        assert_eq!((id.as_str(), &*sent), ("e-1", old));
    }

    #[test]
    fn signature_is_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
