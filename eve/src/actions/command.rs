//! `command = [...]` actions: a fixed pool of threads runs the program (no
//! shell) with the subject's JSON (an alert's, or an incident's) on
//! standard input, kills it after the timeout, and reports its exit status
//! and the start of its output.

use super::{
    ActionConfig, ActionError, ActionStats, Outcome, OutcomeHook, Subject, Triggered, report,
};
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

/// One run: the subject's id and JSON, and the argument vector with its
/// placeholders filled in.
struct Job {
    id: String,
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

    /// Queue a run for `subject` without waiting.
    pub(super) fn offer(&self, subject: &Subject) -> Triggered {
        let Some(argv) = subject.fill(&self.argv) else {
            tracing::warn!(action = %self.name, id = %subject.id(),
                "the subject lacks a value the command's arguments need (or it starts with '-'): skipped");
            return Triggered::Skipped;
        };
        let job = Job {
            id: subject.id().to_string(),
            json: subject.json().to_string(),
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
                    id: job.id,
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
