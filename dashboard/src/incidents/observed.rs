//! What grouping reads from one stored alert: its grouping keys, the bytes
//! it accounts for, and the registered file bytes it saw.
//!
//! Read from the stored JSON, so weightwatch's alerts and Suricata's alike
//! (a Suricata alert has no evidence: it groups by its flow only).

use super::Kind;
use serde_json::Value;

/// Longest key kept (longer values are cut: keys are compared, not shown).
const MAX_KEY: usize = 300;

/// One grouping key: alerts sharing a key (within the window) share an
/// incident.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// What the key stands for (its priority: the strongest kind names the incident).
    pub kind: Kind,
    /// The key as stored (`kind:value`).
    pub text: String,
}

/// A registered file's bytes seen by one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSeen {
    /// SHA-256 of the registered file.
    pub sha256: String,
    /// Its name in the index.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// `[start, end)` offsets seen (the alert's `file_ranges`).
    pub ranges: Vec<[u64; 2]>,
    /// The alert's own ranges were merged across gaps.
    pub compacted: bool,
}

/// One alert as grouping reads it.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Alert row id.
    pub id: i64,
    /// Event time, Unix microseconds.
    pub ts: i64,
    /// 1 high … 3 low.
    pub severity: u8,
    /// `alert.category`.
    pub category: String,
    /// `alert.signature`.
    pub signature: String,
    /// Source address (the internal host of egress alerts).
    pub src: Option<String>,
    /// Destination address.
    pub dest: Option<String>,
    /// The flow it belongs to (Community ID, or sensor and flow id).
    pub flow: Option<String>,
    /// Bytes the alert accounts for in its flow (upload bytes or object bytes).
    pub bytes: u64,
    /// A registered file it saw.
    pub file: Option<FileSeen>,
    /// Keys, strongest first, without repeats.
    pub keys: Vec<Key>,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_KEY).collect()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

fn number(v: &Value, path: &[&str]) -> Option<u64> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_u64()
}

fn ranges(v: Option<&Value>) -> Vec<[u64; 2]> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| Some([r.get(0)?.as_u64()?, r.get(1)?.as_u64()?]))
                .filter(|r| r[1] > r[0])
                .collect()
        })
        .unwrap_or_default()
}

impl Observed {
    /// Read the alert stored as `body` under row `id` at time `ts`; `None`
    /// when the body is not an alert object.
    pub fn parse(id: i64, ts: i64, body: &str) -> Option<Observed> {
        let v: Value = serde_json::from_str(body).ok()?;
        Observed::from_value(id, ts, &v)
    }

    /// Read a stored alert, its time from its `timestamp`; `None` when the
    /// body is not an alert with a valid time.
    pub fn from_stored(id: i64, body: &str) -> Option<Observed> {
        let v: Value = serde_json::from_str(body).ok()?;
        let ts = eve::Timestamp::parse(v.get("timestamp")?.as_str()?).ok()?;
        Observed::from_value(id, ts.unix_micros(), &v)
    }

    fn from_value(id: i64, ts: i64, v: &Value) -> Option<Observed> {
        let alert = v.get("alert")?;
        let ev = v.get("evidence").unwrap_or(&Value::Null);
        let severity = alert
            .get("severity")
            .and_then(Value::as_u64)
            .map_or(3, |s| s.clamp(1, 3) as u8);
        let category = text(alert, &["category"]).unwrap_or("").to_string();
        let signature = text(alert, &["signature"]).unwrap_or("").to_string();
        let src = text(ev, &["internal_host"])
            .or_else(|| text(v, &["src_ip"]))
            .map(String::from);
        let dest = text(ev, &["destination"])
            .or_else(|| text(v, &["dest_ip"]))
            .map(String::from);
        let flow = text(v, &["community_id"]).map(String::from).or_else(|| {
            let f = v.get("flow_id")?.as_u64()?;
            Some(format!("{}/{f}", text(v, &["sensor_id"]).unwrap_or("")))
        });
        let bytes = number(ev, &["flow_bytes_out"])
            .or_else(|| number(ev, &["object_bytes_seen"]))
            .or_else(|| number(ev, &["bytes_seen"]))
            .or_else(|| number(v, &["fileinfo", "size"]))
            .unwrap_or(0);
        let file = text(ev, &["known_file_sha256"]).map(|sha| {
            let size = number(ev, &["known_file_bytes"]).unwrap_or(0);
            // Ranges past the file's end (a hostile or broken sender) are cut.
            // `held_file_ranges`: earlier objects of the same sender that
            // matched too little to alert on their own, released by this one.
            let ranges = ranges(ev.get("file_ranges"))
                .into_iter()
                .chain(ranges(ev.get("held_file_ranges")))
                .map(|r| [r[0].min(size), r[1].min(size)])
                .filter(|r| r[1] > r[0])
                .collect();
            FileSeen {
                sha256: sha.to_ascii_lowercase(),
                name: text(ev, &["known_file"]).unwrap_or(sha).to_string(),
                size,
                ranges,
                compacted: ev
                    .get("file_ranges_compacted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }
        });
        let mut keys = Vec::new();
        let mut key = |kind: Kind, value: String| {
            keys.push(Key {
                kind,
                text: cut(&format!("{}:{value}", kind.as_str())),
            })
        };
        if let Some(f) = &file {
            key(
                Kind::RegisteredFile,
                format!("{}>{}", src.as_deref().unwrap_or(""), f.sha256),
            );
        }
        if let Some(c) = text(v, &["cluster_id"]) {
            key(Kind::Cluster, c.to_string());
        }
        if let Some(a) = text(v, &["account_id"]) {
            key(Kind::Account, a.to_string());
        }
        if let Some(f) = &flow {
            key(Kind::Transfer, f.clone());
        }
        if let Some(sha) = text(v, &["fileinfo", "sha256"]) {
            key(
                Kind::Transfer,
                format!("{}>{}", src.as_deref().unwrap_or(""), sha),
            );
        }
        if category.starts_with("egress")
            && let (Some(s), Some(d)) = (&src, &dest)
        {
            key(Kind::Egress, format!("{s}>{d}"));
        }
        keys.dedup();
        Some(Observed {
            id,
            ts,
            severity,
            category,
            signature,
            src,
            dest,
            flow,
            bytes,
            file,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_alert_keys_its_file_flow_and_reads_its_ranges() {
        let body = r#"{"event_type":"alert","src_ip":"10.1.0.10","dest_ip":"198.51.100.10",
            "community_id":"1:abc","flow_id":7,
            "alert":{"category":"weights_known","severity":1,"signature":"known"},
            "evidence":{"known_file_sha256":"AB12","known_file":"m.safetensors",
                        "known_file_bytes":100,"file_ranges":[[0,10],[20,30],[5,"x"]],
                        "held_file_ranges":[[60,70]],"object_bytes_seen":40}}"#;
        let o = Observed::parse(3, 9, body).expect("an alert");
        let keys: Vec<&str> = o.keys.iter().map(|k| k.text.as_str()).collect();
        assert_eq!(keys, ["file:10.1.0.10>ab12", "transfer:1:abc"]);
        let f = o.file.expect("file");
        assert_eq!(f.ranges, vec![[0, 10], [20, 30], [60, 70]]);
        assert_eq!((f.size, o.bytes), (100, 40));
    }

    #[test]
    fn egress_alerts_key_host_and_destination_and_non_alerts_are_skipped() {
        let body = r#"{"src_ip":"10.0.0.1","dest_ip":"192.0.2.1","alert":{"category":"egress_volume"},
            "evidence":{"internal_host":"10.0.0.1","destination":"192.0.2.1","flow_bytes_out":5}}"#;
        let o = Observed::parse(1, 1, body).expect("an alert");
        assert_eq!(
            o.keys.last().map(|k| k.text.as_str()),
            Some("egress:10.0.0.1>192.0.2.1")
        );
        assert!(Observed::parse(1, 1, r#"{"flow":{}}"#).is_none());
        assert!(Observed::parse(1, 1, "not json").is_none());
    }
}
