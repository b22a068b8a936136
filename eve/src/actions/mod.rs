//! Response actions: `[[actions]]` in `weightwatch.toml`. Each action picks
//! alerts by category and severity, is rate limited, and either POSTs the
//! alert's JSON to a webhook (signed with HMAC-SHA256, retried from an
//! on-disk spool) or runs a program with the JSON on its standard input.
//! What an action runs on is a [`Subject`]: an alert, or any other JSON
//! document with an id and placeholder values its caller gives (the
//! dashboard's incidents, [`Actions::trigger`]); both take the
//! same path (rate limit, queue, counters, spool, outcome).
//!
//! [`Actions`] is an [`EventSink`]: the sensor and the analyzer add it to
//! their sinks, so actions run where the alert is made. Matching is cheap
//! and done in `emit`; the work (network, processes) happens on each
//! action's own threads behind a bounded queue, so a slow webhook or a hung
//! program never blocks capture: a full queue is a counted drop. The
//! dashboard holds the same [`Actions`] and fires one by name when an
//! analyst asks ([`Actions::trigger`]).
//!
//! Lives in `eve` rather than a crate of its own: it is a sink over `eve`'s
//! alert type, and every producer (sensor, analyzer, dashboard) already
//! depends on `eve` and nothing else shared.

mod command;
mod config;
mod matcher;
mod subject;
mod webhook;

pub use config::ActionConfig;
pub use subject::{Placeholder, Subject};

use crate::event::{Event, EventKind};
use crate::sink::{EventSink, SinkError};
use matcher::{Matcher, RateLimit};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an action could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The `[[actions]]` entry is inconsistent (named in the message).
    #[error("action {name:?}: {problem}")]
    Config {
        /// The action's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The webhook's spool could not be opened.
    #[error("action {name:?}: {source}")]
    Spool {
        /// The action's name.
        name: String,
        /// The spool's error.
        #[source]
        source: SinkError,
    },
    /// A worker thread could not be started.
    #[error("action {name:?}: starting its thread: {source}")]
    Thread {
        /// The action's name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Counters of one action.
#[derive(Debug, Default)]
pub struct ActionStats {
    /// Alerts that matched the action's categories and severity.
    pub matched: AtomicU64,
    /// Matches not acted on because of the rate limit.
    pub rate_limited: AtomicU64,
    /// Matches dropped because the action's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Matches skipped because the command needs a value the subject lacks
    /// (or whose value is unsafe as an argument).
    pub skipped: AtomicU64,
    /// Webhook deliveries acknowledged (2xx) / commands that exited 0.
    pub succeeded: AtomicU64,
    /// Webhook attempts that failed (each retried) / commands that failed,
    /// timed out or could not start.
    pub failed: AtomicU64,
    /// Webhook payloads dropped because the spool was full.
    pub dropped_spool_full: AtomicU64,
}

/// How an action run ended, for the audit log of whoever started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The action's name.
    pub action: String,
    /// The subject's id: an alert's `event_id` (unless its caller chose
    /// another, [`Subject::with_id`]), or the id given with a document.
    pub id: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Exit status and (truncated) output of a command, or the webhook's
    /// HTTP status.
    pub detail: String,
}

/// Called with every finished action run (from the action's thread).
pub type OutcomeHook = Arc<dyn Fn(&Outcome) + Send + Sync>;

/// What [`Actions::trigger`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triggered {
    /// Queued; the outcome is reported to the hook when it is known.
    Queued,
    /// Not run: the rate limit is reached.
    RateLimited,
    /// Not run: the action's queue is full.
    QueueFull,
    /// Not run: the command needs a value this subject lacks.
    Skipped,
}

/// One configured action: its filter, its limiter and its worker.
struct Action {
    name: String,
    matcher: Matcher,
    limit: RateLimit,
    worker: Worker,
    stats: Arc<ActionStats>,
}

enum Worker {
    Webhook(webhook::Webhook),
    Command(command::CommandPool),
}

impl Action {
    fn start(
        config: &ActionConfig,
        default_spool: &std::path::Path,
        hook: Option<OutcomeHook>,
    ) -> Result<Action, ActionError> {
        config.check()?;
        let stats = Arc::new(ActionStats::default());
        let worker = if let Some(url) = &config.webhook {
            Worker::Webhook(webhook::Webhook::start(
                config,
                url,
                default_spool,
                stats.clone(),
                hook,
            )?)
        } else {
            Worker::Command(command::CommandPool::start(config, stats.clone(), hook)?)
        };
        Ok(Action {
            name: config.name.clone(),
            matcher: Matcher::new(config),
            limit: RateLimit::per_minute(config.max_per_minute),
            worker,
            stats,
        })
    }

    /// Queue `subject` (already matched or chosen by an analyst).
    fn dispatch(&mut self, subject: &Subject) -> Triggered {
        self.stats.matched.fetch_add(1, Ordering::Relaxed);
        if !self.limit.take() {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(action = %self.name, id = %subject.id(), "rate limit reached: not acted on");
            return Triggered::RateLimited;
        }
        let queued = match &self.worker {
            Worker::Webhook(w) => w.offer(subject),
            Worker::Command(c) => c.offer(subject),
        };
        match queued {
            Triggered::QueueFull => {
                let n = self
                    .stats
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(action = %self.name, dropped = n, "action queue full: dropped");
                }
            }
            Triggered::Skipped => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        queued
    }

    fn close(&mut self) {
        match &mut self.worker {
            Worker::Webhook(w) => w.close(),
            Worker::Command(c) => c.close(),
        }
    }
}

/// Every configured action; an [`EventSink`] that acts on matching alerts.
pub struct Actions {
    actions: Vec<Action>,
}

impl Actions {
    /// Check every entry and start its worker. A webhook without its own
    /// `spool_dir` spools under `default_spool/<name>`. `hook` hears every
    /// outcome (the dashboard writes them to its audit log); outcomes are
    /// logged either way.
    pub fn start(
        configs: &[ActionConfig],
        default_spool: &std::path::Path,
        hook: Option<OutcomeHook>,
    ) -> Result<Actions, ActionError> {
        let mut names = std::collections::HashSet::new();
        let mut actions = Vec::with_capacity(configs.len());
        for c in configs {
            if !names.insert(c.name.as_str()) {
                return Err(ActionError::Config {
                    name: c.name.clone(),
                    problem: "two actions have this name".into(),
                });
            }
            actions.push(Action::start(c, default_spool, hook.clone())?);
        }
        Ok(Actions { actions })
    }

    /// Whether no action is configured.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The configured actions' names, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|a| a.name.as_str())
    }

    /// The counters of the action called `name`.
    pub fn stats(&self, name: &str) -> Option<&ActionStats> {
        self.actions
            .iter()
            .find(|a| a.name == name)
            .map(|a| &*a.stats)
    }

    /// Run the action called `name` on `subject` (an alert,
    /// [`Subject::alert`], or another document such as an incident)
    /// whatever its filter says (an analyst chose it); the rate limit still
    /// applies. `None` when there is no such action.
    pub fn trigger(&mut self, name: &str, subject: &Subject) -> Option<Triggered> {
        let action = self.actions.iter_mut().find(|a| a.name == name)?;
        Some(action.dispatch(subject))
    }
}

impl EventSink for Actions {
    fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let EventKind::Alert(alert) = &event.kind else {
            return Ok(());
        };
        // Built once, for the first action that matches.
        let mut subject = None;
        for a in &mut self.actions {
            if a.matcher.matches(&alert.alert) {
                a.dispatch(subject.get_or_insert_with(|| Subject::of_alert(event, alert)));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Stop taking alerts and let each worker finish (bounded: a webhook
    /// keeps what it could not deliver in its spool for the next start, a
    /// command past its timeout is killed).
    fn close(&mut self) -> Result<(), SinkError> {
        for a in &mut self.actions {
            a.close();
            let s = &a.stats;
            tracing::info!(
                action = %a.name,
                matched = s.matched.load(Ordering::Relaxed),
                succeeded = s.succeeded.load(Ordering::Relaxed),
                failed = s.failed.load(Ordering::Relaxed),
                rate_limited = s.rate_limited.load(Ordering::Relaxed),
                dropped = s.dropped_queue_full.load(Ordering::Relaxed)
                    + s.dropped_spool_full.load(Ordering::Relaxed),
                skipped = s.skipped.load(Ordering::Relaxed),
                "action totals"
            );
        }
        Ok(())
    }
}

impl Drop for Actions {
    fn drop(&mut self) {
        for a in &mut self.actions {
            a.close();
        }
    }
}

/// Report an outcome: log it, and tell the hook.
fn report(hook: &Option<OutcomeHook>, outcome: Outcome) {
    if outcome.ok {
        tracing::info!(action = %outcome.action, id = %outcome.id, detail = %outcome.detail, "action done");
    } else {
        tracing::warn!(action = %outcome.action, id = %outcome.id, detail = %outcome.detail, "action failed");
    }
    if let Some(h) = hook {
        h(&outcome);
    }
}
