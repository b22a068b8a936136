//! Incidents: the analyst's unit of work. Alerts are grouped where they are
//! stored (in the ingest transaction, by code here that knows no database),
//! so every replica groups alike.
//!
//! An alert's **keys** ([`observed`]): its registered file with its source
//! host (`file:`), its analyzer cluster or account (`cluster:`, `account:`),
//! its flow or object (`transfer:`), and for egress alerts its (host,
//! destination) pair (`egress:`). Alerts sharing a key whose incident was
//! active within the **window** (`[dashboard] incident_window_secs`,
//! default 24 h) share that incident; an alert whose keys lead to several
//! incidents merges them into the oldest. An incident is thus the set of
//! alerts linked by shared keys, each link within the window of the
//! incident's last activity.
//!
//! [`group`] decides, [`coverage`] adds up the registered-file bytes seen
//! across alerts; the stores persist the result (`incidents`,
//! `incident_keys` with the key as primary key, `incident_alerts`).

pub mod coverage;
pub mod exposure;
pub mod group;
pub mod observed;
pub mod timeline;

use coverage::Ranges;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use group::{Grouped, Grouper};
pub use observed::{Key, Observed};

/// The grouping window when `[dashboard] incident_window_secs` is not set:
/// 24 hours.
pub const DEFAULT_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Separator around each category in the stored `categories` column, so a
/// filter matches whole names only.
pub const SEP: char = '\u{1f}';

/// Destinations listed per incident at most.
const MAX_DESTS: usize = 32;
/// Flows whose bytes are tracked one by one; beyond, bytes are summed.
const MAX_FLOWS: usize = 4096;

/// What an incident groups, strongest first: the strongest kind among its
/// alerts' keys names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One registered file from one source host, across flows and hours.
    RegisteredFile,
    /// One analyzer cluster.
    Cluster,
    /// One analyzer account.
    Account,
    /// One transfer: a flow, or one object.
    Transfer,
    /// One (source host, destination) egress window.
    Egress,
}

impl Kind {
    /// Every kind, strongest first.
    pub const ALL: [Kind; 5] = [
        Kind::RegisteredFile,
        Kind::Cluster,
        Kind::Account,
        Kind::Transfer,
        Kind::Egress,
    ];

    /// The name in keys, columns and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RegisteredFile => "file",
            Kind::Cluster => "cluster",
            Kind::Account => "account",
            Kind::Transfer => "transfer",
            Kind::Egress => "egress",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One registered file's coverage in an incident.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileCoverage {
    /// Name in the index.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Union of the byte ranges its alerts saw.
    pub seen: Ranges,
}

/// What an incident keeps besides its columns (stored as JSON; a field
/// missing reads as empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Registered files by SHA-256.
    pub files: BTreeMap<String, FileCoverage>,
    /// Bytes per flow (the largest any alert of the flow reported).
    pub flows: BTreeMap<String, u64>,
    /// Bytes of flows beyond the tracked ones, and of alerts without a flow.
    pub other_bytes: u64,
    /// Destinations (at most 32).
    pub dests: BTreeSet<String>,
    /// Alert categories.
    pub categories: BTreeSet<String>,
    /// The strongest key's value, for the title.
    pub subject: String,
}

/// An incident: columns and state.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// Row id.
    pub id: i64,
    /// What it groups.
    pub kind: Kind,
    /// One line for lists.
    pub title: String,
    /// Triage status (`new`, `investigating`, `resolved`, `false_positive`).
    pub status: String,
    /// Highest severity of its alerts (1 high … 3 low).
    pub severity: u8,
    /// Its first alert's time (Unix microseconds).
    pub first_ts: i64,
    /// Its last alert's time.
    pub last_ts: i64,
    /// Alerts it holds.
    pub alert_count: i64,
    /// Source host, when one.
    pub src: Option<String>,
    /// Everything else.
    pub state: State,
}

impl Incident {
    /// An empty incident `id` about to take its first alert.
    pub fn empty(id: i64, first: &Observed) -> Incident {
        Incident {
            id,
            kind: Kind::Egress,
            title: String::new(),
            status: "new".into(),
            severity: 3,
            first_ts: first.ts,
            last_ts: first.ts,
            alert_count: 0,
            src: first.src.clone(),
            state: State::default(),
        }
    }

    /// Total bytes: per flow the largest count any alert reported, summed.
    pub fn bytes(&self) -> u64 {
        self.state
            .flows
            .values()
            .fold(self.state.other_bytes, |a, b| a.saturating_add(*b))
    }

    /// The best coverage of a registered file (union of seen ranges ÷
    /// size), when the incident saw one.
    pub fn coverage(&self) -> Option<f64> {
        self.state
            .files
            .values()
            .map(|f| f.seen.coverage(f.size))
            .reduce(f64::max)
    }

    /// Categories as stored: each between [`SEP`]s.
    pub fn categories_text(&self) -> String {
        let mut s = String::from(SEP);
        for c in &self.state.categories {
            s.push_str(c);
            s.push(SEP);
        }
        s
    }

    /// Lower-cased text the free-text filter searches.
    pub fn search_text(&self) -> String {
        let mut parts = vec![self.title.clone(), self.kind.as_str().to_string()];
        parts.extend(self.src.clone());
        parts.extend(self.state.dests.iter().cloned());
        parts.extend(self.state.categories.iter().cloned());
        for (sha, f) in &self.state.files {
            parts.push(sha.clone());
            parts.push(f.name.clone());
        }
        parts.join("\n").to_lowercase()
    }

    /// The incident as the API answers it; `detail` adds each file's
    /// covered ranges and every flow's bytes.
    pub fn to_json(&self, detail: bool) -> serde_json::Value {
        let time = |t: i64| eve::Timestamp::from_unix_micros(t).to_string();
        let files: Vec<serde_json::Value> = self
            .state
            .files
            .iter()
            .map(|(sha, f)| {
                let mut v = serde_json::json!({
                    "sha256": sha,
                    "name": f.name,
                    "size": f.size,
                    "covered_bytes": f.seen.covered(),
                    "coverage": f.seen.coverage(f.size),
                    "ranges_compacted": f.seen.compacted,
                });
                if detail {
                    v["ranges"] = serde_json::json!(f.seen.ranges);
                }
                v
            })
            .collect();
        let mut v = serde_json::json!({
            "id": self.id,
            "kind": self.kind.as_str(),
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "first_seen": time(self.first_ts),
            "last_seen": time(self.last_ts),
            "alert_count": self.alert_count,
            "bytes": self.bytes(),
            "coverage": self.coverage(),
            "src_ip": self.src,
            "dest_ips": self.state.dests,
            "categories": self.state.categories,
            "files": files,
        });
        if detail {
            v["flows"] = serde_json::json!(self.state.flows.len());
        }
        v
    }

    /// Take one alert in.
    pub fn absorb(&mut self, o: &Observed) {
        self.alert_count += 1;
        self.severity = self.severity.min(o.severity);
        self.first_ts = self.first_ts.min(o.ts);
        self.last_ts = self.last_ts.max(o.ts);
        if self.src.is_none() {
            self.src = o.src.clone();
        }
        let st = &mut self.state;
        if let Some(d) = &o.dest
            && st.dests.len() < MAX_DESTS
        {
            st.dests.insert(d.clone());
        }
        if !o.category.is_empty() {
            st.categories.insert(o.category.clone());
        }
        match &o.flow {
            Some(f) if st.flows.contains_key(f) || st.flows.len() < MAX_FLOWS => {
                let b = st.flows.entry(f.clone()).or_default();
                *b = (*b).max(o.bytes);
            }
            _ => st.other_bytes = st.other_bytes.saturating_add(o.bytes),
        }
        if let Some(f) = &o.file {
            let c = st.files.entry(f.sha256.clone()).or_default();
            c.name.clone_from(&f.name);
            c.size = c.size.max(f.size);
            c.seen.add(f.ranges.iter().copied());
            c.seen.compacted |= f.compacted;
        }
        if let Some(k) = o.keys.first()
            && (self.alert_count == 1 || k.kind < self.kind)
        {
            self.kind = k.kind;
            st.subject = k.text[k.kind.as_str().len() + 1..].to_string();
            self.title = title(self.kind, o, &st.subject);
        }
    }

    /// Take another incident's alerts in (a merge).
    pub fn merge(&mut self, other: Incident) {
        self.alert_count += other.alert_count;
        self.severity = self.severity.min(other.severity);
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
        if other.status == "new" {
            self.status = other.status;
        }
        if other.kind < self.kind {
            self.kind = other.kind;
            self.title = other.title;
            self.state.subject = other.state.subject.clone();
        }
        let (st, o) = (&mut self.state, other.state);
        st.other_bytes = st.other_bytes.saturating_add(o.other_bytes);
        for (f, b) in o.flows {
            if st.flows.contains_key(&f) || st.flows.len() < MAX_FLOWS {
                let e = st.flows.entry(f).or_default();
                *e = (*e).max(b);
            } else {
                st.other_bytes = st.other_bytes.saturating_add(b);
            }
        }
        for d in o.dests {
            if st.dests.len() < MAX_DESTS {
                st.dests.insert(d);
            }
        }
        st.categories.extend(o.categories);
        for (sha, f) in o.files {
            let c = st.files.entry(sha).or_default();
            c.name = f.name;
            c.size = c.size.max(f.size);
            c.seen.add(f.seen.ranges);
            c.seen.compacted |= f.seen.compacted;
        }
    }
}

fn title(kind: Kind, o: &Observed, subject: &str) -> String {
    let src = o.src.as_deref().unwrap_or("?");
    let dest = o.dest.as_deref().unwrap_or("?");
    match kind {
        Kind::RegisteredFile => {
            let name = o.file.as_ref().map_or(subject, |f| f.name.as_str());
            let short = name.rsplit('/').next().unwrap_or(name);
            format!("registered file {short} from {src}")
        }
        Kind::Cluster => format!("distillation cluster {subject}"),
        Kind::Account => format!("account {subject}"),
        Kind::Transfer => format!("transfer {src} → {dest}: {}", o.signature),
        Kind::Egress => format!("egress {src} → {dest}"),
    }
}
