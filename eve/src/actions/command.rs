//! `command = [...]` actions: a fixed pool of threads runs the program (no
//! shell) with the alert's JSON on standard input, kills it after the
//! timeout, and reports its exit status and the start of its output.

use super::{ActionConfig, ActionError, ActionStats, Outcome, OutcomeHook, Triggered, report};
use crate::event::{Event, EventKind};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;
use wait_timeout::ChildExt;

/// Bytes of stdout and of stderr kept for the log; the rest is read and dropped.
const OUTPUT_KEPT: u64 = 2048;

/// One run: the alert's id and JSON, and the argument vector with its
/// placeholders filled in.
struct Job {
    event_id: String,
    json: String,
    argv: Vec<String>,
}

/// The bounded queue and the threads that run the program.
pub(super) struct CommandPool {
    name: String,
    argv: Vec<String>,
    queue: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl CommandPool {
    pub(super) fn start(
        config: &ActionConfig,
        stats: Arc<ActionStats>,
        hook: Option<OutcomeHook>,
    ) -> Result<CommandPool, ActionError> {
        let argv = config.command.clone().unwrap_or_default();
        let (tx, rx) = bounded::<Job>(config.queue);
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut threads = Vec::with_capacity(config.concurrency);
        for i in 0..config.concurrency {
            let runner = Runner {
                name: config.name.clone(),
                rx: rx.clone(),
                timeout,
                stats: stats.clone(),
                hook: hook.clone(),
            };
            let t = std::thread::Builder::new()
                .name(format!("action-{}-{i}", config.name))
                .spawn(move || runner.run())
                .map_err(|source| ActionError::Thread {
                    name: config.name.clone(),
                    source,
                })?;
            threads.push(t);
        }
        Ok(CommandPool {
            name: config.name.clone(),
            argv,
            queue: Some(tx),
            threads,
        })
    }

    /// Queue a run for `event` without waiting.
    pub(super) fn offer(&self, event: &Event) -> Triggered {
        let Some(argv) = fill(&self.argv, event) else {
            tracing::warn!(action = %self.name, event_id = %event.event_id,
                "the alert lacks a value the command's arguments need (or it starts with '-'): skipped");
            return Triggered::Skipped;
        };
        let job = Job {
            event_id: event.event_id.clone(),
            json: event.to_json_line(),
            argv,
        };
        match self.queue.as_ref().map(|q| q.try_send(job)) {
            Some(Ok(())) => Triggered::Queued,
            Some(Err(TrySendError::Full(_))) | Some(Err(TrySendError::Disconnected(_))) | None => {
                Triggered::QueueFull
            }
        }
    }

    /// Close the queue and wait for the runs in it (each bounded by the timeout).
    pub(super) fn close(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Replace the placeholders in each argument; `None` when the alert lacks a
/// value, or a value starts with `-` (it would read as an option).
fn fill(argv: &[String], event: &Event) -> Option<Vec<String>> {
    let EventKind::Alert(alert) = &event.kind else {
        return None;
    };
    let net = event.net.as_ref();
    let value = |key: &str| -> Option<Option<String>> {
        Some(match key {
            "dest_ip" => net.map(|n| n.dest_ip.to_string()),
            "src_ip" => net.map(|n| n.src_ip.to_string()),
            "dest_port" => net.map(|n| n.dest_port.to_string()),
            "account_id" => alert.account_id.clone(),
            "category" => Some(alert.alert.category.as_str().to_string()),
            "event_id" => Some(event.event_id.clone()),
            _ => return None, // not a placeholder: left as written
        })
    };
    let mut out = Vec::with_capacity(argv.len());
    for arg in argv {
        let mut s = String::with_capacity(arg.len());
        let mut rest = arg.as_str();
        while let Some(open) = rest.find('{') {
            let (before, from) = rest.split_at(open);
            s.push_str(before);
            let close = from.find('}');
            match close.and_then(|c| value(&from[1..c]).map(|v| (c, v))) {
                Some((c, v)) => {
                    let v = v.filter(|v| !v.starts_with('-'))?;
                    s.push_str(&v);
                    rest = &from[c + 1..];
                }
                None => {
                    s.push('{');
                    rest = &from[1..];
                }
            }
        }
        s.push_str(rest);
        out.push(s);
    }
    Some(out)
}

/// One thread of the pool.
struct Runner {
    name: String,
    rx: Receiver<Job>,
    timeout: Duration,
    stats: Arc<ActionStats>,
    hook: Option<OutcomeHook>,
}

impl Runner {
    fn run(self) {
        while let Ok(job) = self.rx.recv() {
            let (ok, detail) = match self.execute(&job) {
                Ok(r) => r,
                Err(e) => (false, format!("could not run {:?}: {e}", job.argv[0])),
            };
            let counter = if ok {
                &self.stats.succeeded
            } else {
                &self.stats.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            report(
                &self.hook,
                Outcome {
                    action: self.name.clone(),
                    event_id: job.event_id,
                    ok,
                    detail,
                },
            );
        }
    }

    /// Run the program; `(exited 0, status and output)`.
    fn execute(&self, job: &Job) -> std::io::Result<(bool, String)> {
        let mut child = Command::new(&job.argv[0])
            .args(&job.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Writer and readers on their own threads: a program that does not
        // read its input, or fills its output pipe, cannot stall this one.
        let mut stdin = child.stdin.take();
        let json = job.json.clone();
        let writer = std::thread::spawn(move || {
            if let Some(w) = stdin.as_mut() {
                let _ = w.write_all(json.as_bytes());
                let _ = w.write_all(b"\n");
            }
        });
        let out = child.stdout.take().map(keep_start);
        let err = child.stderr.take().map(keep_start);
        let status = match child.wait_timeout(self.timeout)? {
            Some(s) => Some(s),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        };
        let _ = writer.join();
        let text =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        let (out, err) = (text(out), text(err));
        let status_text = match status {
            Some(s) => s.to_string(),
            None => format!("killed after the {:?} timeout", self.timeout),
        };
        let ok = status.is_some_and(|s| s.success());
        Ok((
            ok,
            format!(
                "{status_text}; stdout: {:?}; stderr: {:?}",
                out.trim_end(),
                err.trim_end()
            ),
        ))
    }
}

/// Read a pipe to its end on a thread, keeping its first bytes as text.
fn keep_start<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut r).take(OUTPUT_KEPT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Alert, AlertCategory, AlertEvent, Evidence, NetworkFields, Proto};
    use crate::time::Timestamp;

    fn alert_event(account: Option<&str>) -> Event {
        let mut body = AlertEvent::new(
            Alert::new("x", 1, AlertCategory::EgressVolume, 1),
            Evidence::new(),
        );
        body.account_id = account.map(str::to_string);
        let e = Event::new(Timestamp::now(), EventKind::Alert(Box::new(body)));
        if account.is_some() {
            return e;
        }
        e.network(NetworkFields {
            flow_id: 1,
            community_id: String::new(),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: 5000,
            dest_ip: "198.51.100.7".parse().unwrap(),
            dest_port: 443,
            proto: Proto::Tcp,
            app_proto: None,
            vlan: None,
        })
    }

    #[test]
    fn placeholders_fill_and_missing_values_skip() {
        let argv: Vec<String> = [
            "nft",
            "add",
            "element",
            "inet",
            "f",
            "s",
            "{ {dest_ip} }",
            "{x}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let filled = fill(&argv, &alert_event(None)).unwrap();
        assert_eq!(filled[6], "{ 198.51.100.7 }");
        assert_eq!(filled[7], "{x}");
        assert_eq!(fill(&argv, &alert_event(Some("acct"))), None);
        let acct = vec!["suspend".to_string(), "{account_id}".to_string()];
        assert_eq!(
            fill(&acct, &alert_event(Some("acct-7"))).unwrap()[1],
            "acct-7"
        );
        assert_eq!(fill(&acct, &alert_event(Some("--all"))), None);
    }
}
