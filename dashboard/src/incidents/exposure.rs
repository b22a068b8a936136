//! Time to exfiltrate: how long each registered file would take to leave
//! at a host's current upload rate. The files are those the dashboard
//! knows (named by `weights_known` alerts, kept in file incidents); the
//! rate is what the host sent as a client (`flow` events' `bytes_toserver`)
//! over the last hour of flow time (ending at the newest stored flow, so a
//! replayed capture reads as it was live).

use super::State;
use serde::Serialize;
use std::collections::BTreeMap;

/// The span the upload rate is measured over: one hour, in microseconds.
pub const RATE_SPAN_MICROS: i64 = 3600 * 1_000_000;
/// Hosts listed at most (the busiest uploaders).
pub const MAX_HOSTS: usize = 10;
/// Registered files listed at most (the largest).
pub const MAX_FILES: usize = 10;

/// A registered file the dashboard has seen named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnownFile {
    /// SHA-256.
    pub sha256: String,
    /// Name in the sensor's index.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// What the store measured: the newest flow time, the busiest uploading
/// hosts over [`RATE_SPAN_MICROS`] before it (host, bytes sent), and the
/// registered files of the incidents.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// The newest flow's time (Unix microseconds), when there is a flow.
    pub until: Option<i64>,
    /// (host, bytes sent as a client) over the span, most first.
    pub hosts: Vec<(String, i64)>,
    /// Registered files, largest first.
    pub files: Vec<KnownFile>,
}

/// The registered files named in incident states (as stored, JSON),
/// largest first, each once, at most [`MAX_FILES`].
pub fn files_of<'a>(states: impl IntoIterator<Item = &'a str>) -> Vec<KnownFile> {
    let mut by_sha: BTreeMap<String, KnownFile> = BTreeMap::new();
    for s in states {
        let Ok(st) = serde_json::from_str::<State>(s) else {
            continue;
        };
        for (sha, f) in st.files {
            if f.size > 0 {
                by_sha.entry(sha.clone()).or_insert(KnownFile {
                    sha256: sha,
                    name: f.name,
                    size: f.size,
                });
            }
        }
    }
    let mut v: Vec<KnownFile> = by_sha.into_values().collect();
    v.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.sha256.cmp(&b.sha256)));
    v.truncate(MAX_FILES);
    v
}

/// Seconds `size` bytes take at `bytes` per `span` microseconds (`None`
/// when nothing was sent).
pub fn seconds(size: u64, bytes: i64, span: i64) -> Option<f64> {
    (bytes > 0 && span > 0).then(|| size as f64 / (bytes as f64 / (span as f64 / 1e6)))
}

/// The answer of `GET /api/v1/exfiltration-time`.
pub fn to_json(m: &Measured) -> serde_json::Value {
    let time = |t: i64| eve::Timestamp::from_unix_micros(t).to_string();
    let hosts: Vec<serde_json::Value> = m
        .hosts
        .iter()
        .map(|(host, bytes)| {
            let files: Vec<serde_json::Value> = m
                .files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "sha256": f.sha256,
                        "name": f.name,
                        "size": f.size,
                        "seconds": seconds(f.size, *bytes, RATE_SPAN_MICROS),
                    })
                })
                .collect();
            serde_json::json!({
                "host": host,
                "bytes": bytes,
                "bytes_per_second": *bytes as f64 / (RATE_SPAN_MICROS as f64 / 1e6),
                "files": files,
            })
        })
        .collect();
    serde_json::json!({
        "from": m.until.map(|t| time(t - RATE_SPAN_MICROS)),
        "until": m.until.map(time),
        "hosts": hosts,
        "files": m.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_deduplicated_largest_first_and_times_follow_the_rate() {
        let a = r#"{"files":{"aa":{"name":"a","size":10,"seen":{"ranges":[]}},
                             "bb":{"name":"b","size":30,"seen":{"ranges":[]}}}}"#;
        let b = r#"{"files":{"aa":{"name":"a","size":10,"seen":{"ranges":[]}}}}"#;
        let files = files_of([a, b, "not json"]);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        // 3600 bytes an hour is one byte a second.
        assert_eq!(seconds(30, 3600, RATE_SPAN_MICROS), Some(30.0));
        assert_eq!(seconds(30, 0, RATE_SPAN_MICROS), None);
    }
}
