//! Threat intelligence: `[intel] lists` of addresses, networks and domains
//! (one per line, `#` comments, or the plain CSV exports of common feeds),
//! matched against each flow's destination address and its TLS SNI / HTTP
//! Host (a listed domain matches its subdomains). A match is one
//! `intel_match` alert per flow naming the list, the line and the entry.
//! [`Intel::reload`] re-reads the lists (the sensor does on SIGHUP, and
//! [`Intel::watch`] when a list file changes); flows that start afterwards
//! use the new lists.
//!
//! Lookups cost one hash probe per listed prefix length and per label of
//! the name, whatever the lists' size; the entries kept are bounded by
//! `max_entries` (beyond it, counted and warned).

use super::{Finding, FlowDetector, FlowScan, FlowView, sig};
use eve::{AlertCategory, Evidence};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// `[intel]`: the lists.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Files of IPs, CIDRs and domains, one per line (`#` starts a
    /// comment), or CSV exports (each row's address, network, URL host or
    /// domain field).
    pub lists: Vec<PathBuf>,
    /// Entries kept over all lists; further ones are skipped (counted).
    pub max_entries: usize,
    /// Seconds between checks of the lists' modification times and sizes
    /// ([`Intel::watch`]); a change reloads them (0: only SIGHUP does).
    pub reload_check_secs: u64,
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            lists: Vec::new(),
            max_entries: 2_000_000,
            reload_check_secs: 10,
        }
    }
}

/// Why the lists could not be read.
#[derive(Debug, thiserror::Error)]
#[error("intel list {path}: {source}")]
pub struct IntelError {
    /// The list.
    pub path: PathBuf,
    /// The read error.
    #[source]
    pub source: std::io::Error,
}

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Index into the lists.
    list: usize,
    /// 1-based line number.
    pub line: usize,
    /// The entry as read (address, network or domain).
    pub entry: String,
}

/// The parsed lists.
#[derive(Debug, Default)]
pub struct IntelLists {
    paths: Vec<PathBuf>,
    /// Networks by prefix length, then by network address.
    nets: HashMap<u8, HashMap<IpAddr, Origin>>,
    domains: HashMap<String, Origin>,
    /// Entries read.
    pub entries: usize,
    /// Lines that were neither an entry, a comment nor blank (or beyond
    /// `max_entries`).
    pub skipped: usize,
}

impl IntelLists {
    /// Read every list.
    pub fn read(config: &IntelConfig) -> Result<IntelLists, IntelError> {
        let mut out = IntelLists {
            paths: config.lists.clone(),
            ..IntelLists::default()
        };
        for (i, path) in config.lists.iter().enumerate() {
            let text = std::fs::read(path).map_err(|source| IntelError {
                path: path.clone(),
                source,
            })?;
            out.add_list(i, &String::from_utf8_lossy(&text), config.max_entries);
        }
        Ok(out)
    }

    fn add_list(&mut self, list: usize, text: &str, max: usize) {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() || (raw.trim_start().starts_with('#')) {
                continue;
            }
            let Some(item) = entry_of(line) else {
                self.skipped += 1;
                continue;
            };
            if self.entries >= max {
                self.skipped += 1;
                continue;
            }
            self.entries += 1;
            let origin = Origin {
                list,
                line: n + 1,
                entry: item.text(),
            };
            match item {
                Item::Net(net) => {
                    self.nets
                        .entry(net.prefix_len())
                        .or_default()
                        .entry(net.network())
                        .or_insert(origin);
                }
                Item::Domain(d) => {
                    self.domains.entry(d).or_insert(origin);
                }
            }
        }
    }

    /// The list an origin came from.
    pub fn path(&self, o: &Origin) -> &Path {
        &self.paths[o.list]
    }

    /// The entry covering `ip`, if any (the longest prefix).
    pub fn match_ip(&self, ip: IpAddr) -> Option<&Origin> {
        let mut lens: Vec<&u8> = self.nets.keys().collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.into_iter().find_map(|&len| {
            let net = IpNet::new(ip, len).ok()?.trunc();
            self.nets.get(&len)?.get(&net.network())
        })
    }

    /// The entry for `name` or one of its parent domains, if any.
    pub fn match_name(&self, name: &str) -> Option<&Origin> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = name.as_str();
        loop {
            if let Some(o) = self.domains.get(rest) {
                return Some(o);
            }
            rest = rest.split_once('.')?.1;
        }
    }
}

enum Item {
    Net(IpNet),
    Domain(String),
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Net(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Item::Net(n) => n.to_string(),
            Item::Domain(d) => d.clone(),
        }
    }
}

/// The entry on a (comment-stripped) line: the whole line, or for CSV the
/// first field that is an address, a network, a URL's host or a domain.
fn entry_of(line: &str) -> Option<Item> {
    if !line.contains(',') {
        return item(line.split_whitespace().next()?);
    }
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim())
        .find_map(item)
}

fn item(field: &str) -> Option<Item> {
    if let Ok(net) = field.parse::<IpNet>() {
        return Some(Item::Net(net.trunc()));
    }
    if let Ok(ip) = field.parse::<IpAddr>() {
        return Some(Item::Net(IpNet::from(ip)));
    }
    // A URL: its host.
    let host = match field.split_once("://") {
        Some((_, rest)) => {
            let host = rest.split(['/', '?', '#']).next()?;
            let host = host.rsplit('@').next()?;
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next()?,
                None => host.split(':').next()?,
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Some(Item::Net(IpNet::from(ip)));
            }
            host
        }
        None => field,
    };
    domain(host).map(Item::Domain)
}

/// A domain name: at least two labels of letters, digits, `-`, `_`, and a
/// top-level label that is not all digits.
fn domain(s: &str) -> Option<String> {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = s.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && labels
            .last()
            .is_some_and(|t| t.bytes().any(|b| b.is_ascii_alphabetic()));
    ok.then_some(s)
}

/// The lists in use, replaceable while the sensor runs.
#[derive(Debug)]
pub struct Intel {
    config: IntelConfig,
    lists: RwLock<Arc<IntelLists>>,
    /// The lists' files as they were when last read.
    read_as: std::sync::Mutex<Vec<FileStamp>>,
}

/// What tells a changed list file: its modification time and size (`None`
/// when it cannot be examined).
type FileStamp = Option<(std::time::SystemTime, u64)>;

fn stamps(config: &IntelConfig) -> Vec<FileStamp> {
    config
        .lists
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

impl Intel {
    /// Read the configured lists.
    pub fn load(config: &IntelConfig) -> Result<Arc<Intel>, IntelError> {
        // Stamped before reading: a change while reading is seen later.
        let read_as = stamps(config);
        let lists = IntelLists::read(config)?;
        log_loaded(&lists);
        Ok(Arc::new(Intel {
            config: config.clone(),
            lists: RwLock::new(Arc::new(lists)),
            read_as: std::sync::Mutex::new(read_as),
        }))
    }

    /// Read the lists again; on error the current ones stay.
    pub fn reload(&self) -> Result<(), IntelError> {
        let now = stamps(&self.config);
        if let Ok(mut r) = self.read_as.lock() {
            *r = now;
        }
        let fresh = Arc::new(IntelLists::read(&self.config)?);
        if let Ok(mut l) = self.lists.write() {
            *l = fresh.clone();
        }
        // Logged once in use: a flow that starts after the line uses them.
        log_loaded(&fresh);
        Ok(())
    }

    /// Check the list files every `reload_check_secs` on a thread of its
    /// own (for the life of the process) and reload them when one's
    /// modification time or size changed; a list that cannot be read then
    /// keeps the current lists (logged), and is tried again at its next
    /// change. A polled stamp rather than inotify (`notify`): it sees a
    /// file replaced by rename, an edit in place and a remounted directory
    /// alike, at the cost of one `stat` per list per check. Nothing to do
    /// with `reload_check_secs = 0` or no lists.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<()> {
        if self.config.reload_check_secs == 0 || self.config.lists.is_empty() {
            return Ok(());
        }
        let me = Arc::downgrade(self);
        let every = std::time::Duration::from_secs(self.config.reload_check_secs);
        std::thread::Builder::new()
            .name("intel-watch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(intel) = me.upgrade() else { return };
                    let changed = intel
                        .read_as
                        .lock()
                        .map(|r| *r != stamps(&intel.config))
                        .unwrap_or(false);
                    if changed {
                        tracing::info!("an intel list changed: reading the lists again");
                        if let Err(e) = intel.reload() {
                            tracing::error!("keeping the current intel lists: {e}");
                        }
                    }
                }
            })
            .map(|_| ())
    }

    /// The lists now.
    pub fn current(&self) -> Arc<IntelLists> {
        self.lists.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn log_loaded(l: &IntelLists) {
    tracing::info!(
        lists = l.paths.len(),
        entries = l.entries,
        skipped = l.skipped,
        "threat intelligence lists loaded"
    );
    if l.skipped > 0 {
        tracing::warn!(
            skipped = l.skipped,
            "intel lines that are no address, network or domain (or beyond max_entries) were skipped"
        );
    }
}

/// The `intel_match` detector.
pub struct IntelDetector {
    intel: Arc<Intel>,
}

impl IntelDetector {
    /// A detector over `intel`.
    pub fn new(intel: Arc<Intel>) -> Self {
        IntelDetector { intel }
    }
}

impl FlowDetector for IntelDetector {
    fn name(&self) -> &'static str {
        "intel"
    }

    fn begin(&self, _flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>> {
        Some(Box::new(IntelScan {
            lists: self.intel.current(),
            ip_checked: false,
            name_checked: None,
            done: false,
        }))
    }
}

struct IntelScan {
    lists: Arc<IntelLists>,
    ip_checked: bool,
    /// The server name last looked up (it can appear mid-flow).
    name_checked: Option<String>,
    done: bool,
}

impl IntelScan {
    fn check(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        if self.done {
            return None;
        }
        let mut hit = None;
        if !self.ip_checked {
            self.ip_checked = true;
            let ip = flow.net.dest_ip;
            hit = self
                .lists
                .match_ip(ip)
                .map(|o| (o.clone(), "destination address", ip.to_string()));
        }
        if hit.is_none()
            && let Some(name) = flow.server_name
            && self.name_checked.as_deref() != Some(name)
        {
            self.name_checked = Some(name.to_string());
            let what = if flow.encrypted {
                "TLS server name"
            } else {
                "HTTP Host"
            };
            hit = self
                .lists
                .match_name(name)
                .map(|o| (o.clone(), what, name.to_string()));
        }
        let (origin, what, value) = hit?;
        self.done = true;
        let list = self.lists.path(&origin).display().to_string();
        let mut e = Evidence::new();
        e.insert("list".into(), json!(list));
        e.insert("line".into(), json!(origin.line));
        e.insert("entry".into(), json!(origin.entry));
        e.insert("matched".into(), json!(what));
        e.insert("value".into(), json!(value));
        Some(Finding {
            category: AlertCategory::IntelMatch,
            sig: &sig::INTEL_MATCH,
            detail: format!(
                "{what} {value} is on {list} line {} ({})",
                origin.line, origin.entry
            ),
            severity: 2,
            evidence: e,
        })
    }
}

impl FlowScan for IntelScan {
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        self.check(flow)
    }

    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding> {
        self.check(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(text: &str) -> IntelLists {
        let mut l = IntelLists {
            paths: vec![PathBuf::from("test.txt")],
            ..IntelLists::default()
        };
        l.add_list(0, text, 100);
        l
    }

    #[test]
    fn plain_lists_with_comments() {
        let l = lists(
            "# feed header\n198.51.100.7\n203.0.113.0/24   # a network\n\nevil.example\nnot an entry!\n2001:db8::/32\n",
        );
        assert_eq!(l.entries, 4);
        assert_eq!(l.skipped, 1);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(l.match_ip(ip("198.51.100.7")).unwrap().line, 2);
        assert_eq!(
            l.match_ip(ip("203.0.113.200")).unwrap().entry,
            "203.0.113.0/24"
        );
        assert!(l.match_ip(ip("198.51.100.8")).is_none());
        assert_eq!(l.match_ip(ip("2001:db8::1")).unwrap().line, 7);
        assert_eq!(l.match_name("evil.example").unwrap().line, 5);
        assert_eq!(l.match_name("Upload.CDN.Evil.Example.").unwrap().line, 5);
        assert!(l.match_name("notevil.example").is_none());
        assert!(l.match_name("example").is_none());
    }

    #[test]
    fn csv_exports() {
        // Feodo-style (address column) and URLhaus-style (URL column) rows.
        let l = lists(
            "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n\
             first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n\
             \"2024-05-01 10:00:00\",\"192.0.2.55\",443,\"online\",2024-05-02,Emotet\n\
             \"3101\",\"2024-05-01 11:00:00\",\"http://drop.bad.example:8080/x.bin\",\"online\"\n\
             \"3102\",\"2024-05-01 11:00:00\",\"https://[2001:db8::9]/p\",\"online\"\n",
        );
        assert_eq!(l.entries, 3, "the header row has no entry");
        assert_eq!(l.skipped, 1);
        assert_eq!(l.match_ip("192.0.2.55".parse().unwrap()).unwrap().line, 3);
        assert_eq!(l.match_name("drop.bad.example").unwrap().line, 4);
        assert_eq!(l.match_ip("2001:db8::9".parse().unwrap()).unwrap().line, 5);
    }

    #[test]
    fn entries_are_bounded() {
        let mut l = IntelLists {
            paths: vec![PathBuf::from("t")],
            ..IntelLists::default()
        };
        l.add_list(0, "a.example\nb.example\nc.example\n", 2);
        assert_eq!((l.entries, l.skipped), (2, 1));
    }

    #[test]
    fn reload_reads_the_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.txt");
        std::fs::write(&path, "old.example\n").unwrap();
        let intel = Intel::load(&IntelConfig {
            lists: vec![path.clone()],
            ..IntelConfig::default()
        })
        .unwrap();
        assert!(intel.current().match_name("old.example").is_some());
        std::fs::write(&path, "new.example\n").unwrap();
        intel.reload().unwrap();
        assert!(intel.current().match_name("old.example").is_none());
        assert!(intel.current().match_name("x.new.example").is_some());
        std::fs::remove_file(&path).unwrap();
        assert!(intel.reload().is_err(), "a missing list is an error");
        assert!(
            intel.current().match_name("new.example").is_some(),
            "and the old lists stay"
        );
    }
}
