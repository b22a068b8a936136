//! Numbers, times and evidence in words for people. Everything here returns
//! plain strings; escaping is the templates' job.

use serde_json::{Map, Value};

/// `1234567` → `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1288490188` → `1.20 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// A float with sensible precision.
pub fn float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        int(f as i64)
    } else if f.abs() >= 100.0 {
        format!("{f:.1}")
    } else if f.abs() >= 1.0 {
        format!("{f:.2}")
    } else {
        format!("{f:.4}")
    }
}

/// A probability-like score as log-odds, `ln(p / (1 - p))`, one decimal:
/// the analyzer's scores of strong cases all print as 1.0000, while their
/// log-odds (12.3, 19.8, …) still rank and compare them. Empty outside
/// (0, 1]; a score that rounded to exactly 1 is "> 36" (the largest
/// log-odds an f64 probability below 1 can hold).
pub fn log_odds(p: f64) -> String {
    if !(p > 0.0 && p <= 1.0) {
        return String::new();
    }
    if p >= 1.0 {
        return "> 36".into();
    }
    format!("{:.1}", (p / (1.0 - p)).ln())
}

/// Unix microseconds → `2026-11-21 10:00:00 UTC`.
pub fn time(micros: i64) -> String {
    eve::Timestamp::from_unix_micros(micros)
        .0
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// An event time (Suricata's form or RFC 3339) → the same form as [`time`].
pub fn event_time(v: &Value) -> String {
    v.as_str()
        .and_then(|s| eve::Timestamp::parse(s).ok())
        .map(|t| time(t.unix_micros()))
        .unwrap_or_else(|| "?".into())
}

/// How long ago, roughly: `42 s ago`, `5 min ago`, `3 h ago`, `2 days ago`.
pub fn ago(micros: i64, now: i64) -> String {
    let s = (now - micros).max(0) / 1_000_000;
    match s {
        0..=89 => format!("{s} s ago"),
        90..=5399 => format!("{} min ago", s / 60),
        5400..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `bytes_toserver` → `Bytes toserver`.
pub fn key(k: &str) -> String {
    let s = k.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// Words for an alert category.
pub fn category(c: &str) -> &'static str {
    match c {
        "weights_format" => "Weight file format",
        "weights_tensor" => "Raw tensor data",
        "weights_known" => "Known weight file",
        "egress_volume" => "Upload volume",
        "encrypted_size_match" => "Encrypted size match",
        "tensor_data" => "Tensor data (not weights)",
        "distillation" => "Distillation",
        "distillation_cluster" => "Distillation cluster",
        _ => "Other",
    }
}

/// Words for a severity.
pub fn severity(s: i64) -> &'static str {
    match s {
        1 => "High",
        2 => "Medium",
        _ => "Low",
    }
}

/// Render one JSON value for a table cell, reading the key for hints
/// (sizes in bytes, ratios as percentages).
pub fn value(k: &str, v: &Value) -> String {
    let k = k.to_ascii_lowercase();
    match v {
        Value::Null => "—".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if k.contains("bytes") || k.ends_with("size") {
                    if u >= 1024 {
                        return format!("{} ({} bytes)", bytes(u), int(u as i64));
                    }
                    return format!("{} bytes", int(u as i64));
                }
                return int(u.min(i64::MAX as u64) as i64);
            }
            let f = n.as_f64().unwrap_or(0.0);
            if (k.contains("ratio") || k.contains("coverage") || k.contains("fraction"))
                && (0.0..=1.0).contains(&f)
            {
                return format!("{:.1} %", f * 100.0);
            }
            float(f)
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| value(&k, x))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => "…".into(),
    }
}

/// One row of a flattened key/value table; nested objects become a header
/// row followed by their rows one level deeper.
#[derive(Clone, Debug)]
pub struct Row {
    /// Nesting level (0 = top).
    pub depth: usize,
    /// Key in words.
    pub key: String,
    /// Value in words (empty for a header row).
    pub value: String,
    /// Whether this row heads a nested table.
    pub header: bool,
    /// A series drawn as a small chart beside `value` (which then says
    /// what it holds).
    pub chart: Option<Spark>,
}

/// A small inline bar chart of a series (every number is computed here;
/// the labels are escaped by the template like any other text).
#[derive(Clone, Debug)]
pub struct Spark {
    /// One bar per point.
    pub bars: Vec<SparkBar>,
}

/// One bar of a [`Spark`], in its 240 × 40 view box.
#[derive(Clone, Debug)]
pub struct SparkBar {
    /// Left edge.
    pub x: String,
    /// Top edge.
    pub y: String,
    /// Width.
    pub w: String,
    /// Height.
    pub h: String,
    /// `label: value`.
    pub title: String,
}

/// Width and height of a [`Spark`]'s view box.
const SPARK_W: f64 = 240.0;
const SPARK_H: f64 = 40.0;

/// A series as a [`Spark`] and the words beside it (`72 points, max 340`).
fn spark(points: &[(String, f64)]) -> (Spark, String) {
    let max = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let scale = if max > 0.0 { SPARK_H / max } else { 0.0 };
    let bw = SPARK_W / points.len().max(1) as f64;
    let bars = points
        .iter()
        .enumerate()
        .map(|(i, (label, n))| {
            let h = (n.max(0.0) * scale).max(if *n > 0.0 { 0.5 } else { 0.0 });
            SparkBar {
                x: format!("{:.2}", i as f64 * bw),
                y: format!("{:.2}", SPARK_H - h),
                w: format!("{:.2}", (bw * 0.85).max(0.3)),
                h: format!("{:.2}", h),
                title: format!("{label}: {}", float(*n)),
            }
        })
        .collect();
    let words = match (points.first(), points.last()) {
        (Some(a), Some(b)) if points.len() > 1 => format!(
            "{} points, {} to {}, max {}",
            points.len(),
            a.0,
            b.0,
            float(max)
        ),
        _ => format!("{} points, max {}", points.len(), float(max)),
    };
    (Spark { bars }, words)
}

/// Most rows one table shows (an attacker-sized evidence map stays bounded).
const MAX_ROWS: usize = 400;

/// Flatten a JSON object into rows.
pub fn rows(m: &Map<String, Value>) -> Vec<Row> {
    let mut out = Vec::new();
    flatten(m, 0, &mut out);
    out
}

fn flatten(m: &Map<String, Value>, depth: usize, out: &mut Vec<Row>) {
    for (k, v) in m {
        if out.len() >= MAX_ROWS {
            return;
        }
        if let Some((name, points)) = series(k, v) {
            let (chart, words) = spark(&points);
            out.push(Row {
                depth,
                key: name,
                value: words,
                header: false,
                chart: Some(chart),
            });
            continue;
        }
        match v {
            Value::Object(child) if depth < 6 => {
                out.push(Row {
                    depth,
                    key: key(k),
                    value: String::new(),
                    header: true,
                    chart: None,
                });
                flatten(child, depth + 1, out);
            }
            Value::Array(items) if items.iter().any(Value::is_object) && depth < 6 => {
                out.push(Row {
                    depth,
                    key: key(k),
                    value: format!("{} items", items.len()),
                    header: true,
                    chart: None,
                });
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(child) => {
                            out.push(Row {
                                depth: depth + 1,
                                key: format!("#{}", i + 1),
                                value: String::new(),
                                header: true,
                                chart: None,
                            });
                            flatten(child, depth + 2, out);
                        }
                        other => out.push(Row {
                            depth: depth + 1,
                            key: format!("#{}", i + 1),
                            value: value(k, other),
                            header: false,
                            chart: None,
                        }),
                    }
                }
            }
            other => out.push(Row {
                depth,
                key: key(k),
                value: value(k, other),
                header: false,
                chart: None,
            }),
        }
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// One sentence saying what an alert means, from its fields and evidence.
pub fn summary(a: &Value) -> String {
    let cat = str_of(a, &["alert", "category"]).unwrap_or("");
    let ev = a.get("evidence").cloned().unwrap_or(Value::Null);
    let src = str_of(a, &["src_ip"]).unwrap_or("?");
    let dest = str_of(a, &["dest_ip"]).unwrap_or("?");
    let dest_name = str_of(a, &["tls", "sni"])
        .or_else(|| str_of(a, &["http", "hostname"]))
        .map(|n| format!("{dest} ({n})"))
        .unwrap_or_else(|| dest.to_string());
    let size = num(ev.get("bytes"))
        .or_else(|| num(a.get("fileinfo").and_then(|f| f.get("size"))))
        .map(|b| bytes(b as u64));
    let format = ev
        .get("format")
        .and_then(Value::as_str)
        .or_else(|| str_of(a, &["fileinfo", "format"]));
    let account = str_of(a, &["account_id"]).unwrap_or("?");
    match cat {
        "weights_format"
        | "weights_tensor"
        | "weights_known"
        | "encrypted_size_match"
        | "tensor_data" => {
            let what = match (cat, format) {
                ("weights_known", _) => "chunks of a registered weight file".to_string(),
                ("encrypted_size_match", _) => {
                    "an encrypted upload the size of a registered weight file".to_string()
                }
                ("weights_tensor", _) => "raw tensor data".to_string(),
                (_, Some(f)) => format!("a {f} file"),
                _ => "model data".to_string(),
            };
            let size = size.map(|s| format!(" of {s}")).unwrap_or_default();
            format!("{src} sent {what}{size} to {dest_name}.")
        }
        "egress_volume" => format!(
            "{src} uploaded {} to {dest_name}, a destination the policy does not allow.",
            size.unwrap_or_else(|| "an unusual volume".into())
        ),
        "distillation" => match num(ev.get("score")) {
            Some(s) => format!(
                "Account {account}'s requests look like distillation (score {}{}).",
                float(s),
                num(ev.get("threshold"))
                    .map(|t| format!(", threshold {}", float(t)))
                    .unwrap_or_default()
            ),
            None => format!("Account {account}'s requests look like distillation."),
        },
        "distillation_cluster" => {
            let n = a
                .get("members")
                .and_then(Value::as_array)
                .map(|m| m.len())
                .unwrap_or(0);
            format!(
                "{n} accounts appear to distil the model together (cluster {}).",
                str_of(a, &["cluster_id"]).unwrap_or("?")
            )
        }
        _ => "An alert of an unknown category.".into(),
    }
}

/// A signal measured against its threshold.
#[derive(Clone, Debug)]
pub struct Signal {
    /// Name in words.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// Value formatted.
    pub value_text: String,
    /// Threshold formatted.
    pub threshold_text: String,
    /// At or over the threshold.
    pub over: bool,
    /// Scale maximum for the meter (twice the threshold, or the value).
    pub max: f64,
}

impl Signal {
    fn new(name: &str, value: f64, threshold: f64) -> Signal {
        Signal {
            name: key(name),
            value,
            threshold,
            value_text: float(value),
            threshold_text: float(threshold),
            over: value >= threshold,
            max: (threshold * 2.0).max(value).max(f64::MIN_POSITIVE),
        }
    }
}

/// Signals with thresholds found in distillation evidence. Understood shapes:
/// `signals: [{name, family, value, threshold}]` (what the analyzer writes),
/// `signals: {name: {value, threshold}}`, `signals: {name: n}` with
/// `thresholds: {name: t}`, flat `name` + `name_threshold`, and `score` +
/// `threshold`.
pub fn signals(ev: &Map<String, Value>) -> Vec<Signal> {
    let mut out = Vec::new();
    let thresholds = ev.get("thresholds").and_then(Value::as_object);
    // The analyzer's form: `signals: [{name, family, value, threshold, detail}]`.
    for s in ev
        .get("signals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("signal");
        if let (Some(v), Some(t)) = (num(s.get("value")), num(s.get("threshold"))) {
            let mut sig = Signal::new(name, v, t);
            if let Some(f) = s.get("family").and_then(Value::as_str) {
                sig.name = format!("{} ({f})", sig.name);
            }
            out.push(sig);
        }
    }
    if let Some(sig) = ev.get("signals").and_then(Value::as_object) {
        for (k, v) in sig {
            let (val, thr) = match v {
                Value::Object(o) => (
                    num(o.get("value")),
                    num(o.get("threshold")).or_else(|| num(thresholds.and_then(|t| t.get(k)))),
                ),
                other => (other.as_f64(), num(thresholds.and_then(|t| t.get(k)))),
            };
            if let (Some(v), Some(t)) = (val, thr) {
                out.push(Signal::new(k, v, t));
            }
        }
    }
    for (k, v) in ev {
        if k == "signals" || k.ends_with("_threshold") {
            continue;
        }
        let Some(val) = v.as_f64() else { continue };
        let thr = if k == "score" {
            num(ev.get("threshold"))
        } else {
            num(ev.get(&format!("{k}_threshold")))
                .or_else(|| num(thresholds.and_then(|t| t.get(k))))
        };
        if let Some(t) = thr {
            out.push(Signal::new(k, val, t));
        }
    }
    out
}

/// Prompt texts in evidence (under keys containing `prompt`, not hashes).
pub fn prompts(ev: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    collect_prompts(ev, &mut out);
    out.truncate(50);
    out
}

fn collect_prompts(m: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in m {
        let lk = k.to_ascii_lowercase();
        let is_prompt = lk.contains("prompt") && !lk.contains("sha256") && !lk.contains("hash");
        match v {
            Value::String(s) if is_prompt => out.push(s.clone()),
            Value::Array(a) if is_prompt && a.iter().any(Value::is_string) => {
                out.extend(a.iter().filter_map(Value::as_str).map(String::from))
            }
            Value::Array(a) => {
                for item in a {
                    if let Value::Object(o) = item {
                        collect_prompts(o, out);
                    }
                }
            }
            Value::Object(o) => collect_prompts(o, out),
            _ => {}
        }
    }
}

/// Whether an evidence key names a rate or a timeline.
fn names_series(k: &str) -> bool {
    let lk = k.to_ascii_lowercase();
    [
        "per_hour",
        "per_minute",
        "per_day",
        "hourly",
        "daily",
        "timeline",
        "volume",
    ]
    .iter()
    .any(|w| lk.contains(w))
}

/// `{"start", "step_hours", "counts"}`: labelled by each point's start time
/// (its index when `start` is missing or not a time).
fn regular_series(k: &str, o: &Map<String, Value>) -> Option<(String, Vec<(String, f64)>)> {
    let counts = o.get("counts")?.as_array()?;
    let start = o
        .get("start")
        .and_then(Value::as_str)
        .and_then(|s| eve::Timestamp::parse(s).ok())
        .map(|t| t.unix_micros());
    let step = o
        .get("step_hours")
        .and_then(Value::as_f64)
        .filter(|h| h.is_finite() && *h > 0.0)
        .unwrap_or(1.0);
    let points: Vec<(String, f64)> = counts
        .iter()
        .take(1000)
        .enumerate()
        .filter_map(|(i, n)| {
            let label = match start {
                Some(s) => time(s.saturating_add((i as f64 * step * 3.6e9) as i64)),
                None => format!("{}", i + 1),
            };
            n.as_f64().map(|n| (label, n))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let name = if step == 1.0 {
        key(k)
    } else {
        format!("{} (one bar per {step} h)", key(k))
    };
    Some((name, points))
}

/// A request-volume series from evidence: the first series under a key that
/// names a rate or timeline (`requests_per_hour`, `hourly_requests`,
/// `request_timeline`, …). Either the analyzer's regular series
/// (`{"start": RFC 3339, "step_hours": h, "counts": [n, …]}`: point `i`
/// covers `start + i·h` hours), or an array whose elements are numbers,
/// `[label, n]` pairs or objects with `count`/`requests`/`n` and an
/// optional `t`/`ts`/`hour`.
pub fn timeline(ev: &Map<String, Value>) -> Option<(String, Vec<(String, f64)>)> {
    if let Some(series) = ev.iter().find_map(|(k, v)| match v {
        Value::Object(o) if names_series(k) => regular_series(k, o),
        _ => None,
    }) {
        return Some(series);
    }
    ev.iter().find_map(|(k, v)| match v {
        Value::Array(a) if names_series(k) => array_series(k, a),
        _ => None,
    })
}

/// The series `v` under key `k` holds, if it is one: a regular series
/// (`{"start", "step_hours", "counts"}`), an array under a key that names
/// a rate or timeline (see [`timeline`]), or any array of at least
/// [`SERIES_MIN`] numbers — drawn, not listed.
fn series(k: &str, v: &Value) -> Option<(String, Vec<(String, f64)>)> {
    match v {
        Value::Object(o) if o.get("counts").is_some_and(Value::is_array) => regular_series(k, o),
        Value::Array(a) if names_series(k) && a.len() >= 2 => array_series(k, a),
        Value::Array(a) if a.len() >= SERIES_MIN && a.iter().all(Value::is_number) => {
            array_series(k, a)
        }
        _ => None,
    }
}

/// Fewest numbers an array under any key needs to be drawn as a series.
const SERIES_MIN: usize = 8;

/// An array series: numbers, `[label, n]` pairs or objects with
/// `count`/`requests`/`n`/`value` and an optional `t`/`ts`/`hour`.
fn array_series(k: &str, arr: &[Value]) -> Option<(String, Vec<(String, f64)>)> {
    let mut points = Vec::new();
    for (i, item) in arr.iter().enumerate().take(1000) {
        let p = match item {
            Value::Number(n) => Some((format!("{}", i + 1), n.as_f64().unwrap_or(0.0))),
            Value::Array(pair) if pair.len() == 2 => {
                pair[1].as_f64().map(|n| (value("", &pair[0]), n))
            }
            Value::Object(o) => ["count", "requests", "n", "value"]
                .iter()
                .find_map(|c| num(o.get(*c)))
                .map(|n| {
                    let label = ["t", "ts", "hour", "time", "bucket"]
                        .iter()
                        .find_map(|c| o.get(*c).map(|v| value("", v)))
                        .unwrap_or_else(|| format!("{}", i + 1));
                    (label, n)
                }),
            _ => None,
        };
        if let Some(p) = p {
            points.push(p);
        }
    }
    if points.is_empty() {
        None
    } else {
        Some((key(k), points))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn log_odds_separates_scores_that_print_alike() {
        assert_eq!(log_odds(0.5), "0.0");
        assert_eq!(log_odds(0.999_99), "11.5");
        assert_eq!(log_odds(0.999_999_9), "16.1");
        assert_eq!(log_odds(1.0), "> 36");
        assert_eq!(log_odds(0.0), "");
        assert_eq!(log_odds(f64::NAN), "");
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(-1000), "-1,000");
        assert_eq!(int(999), "999");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(value("coverage", &json!(0.5)), "50.0 %");
        assert_eq!(value("bytes", &json!(2048)), "2.00 KiB (2,048 bytes)");
        assert_eq!(key("bytes_toserver"), "Bytes toserver");
    }

    #[test]
    fn evidence_shapes() {
        let ev = json!({"score": 0.9, "threshold": 0.7,
            "signals": {"a": {"value": 1.0, "threshold": 2.0}, "b": 3.0},
            "thresholds": {"b": 1.0}, "c": 5, "c_threshold": 4,
            "sample_prompts": ["p1", "p2"], "prompt_sha256": "x",
            "requests_per_hour": [[ "10:00", 5 ], [ "11:00", 7 ]]});
        let ev = ev.as_object().unwrap();
        let s = signals(ev);
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, vec!["A", "B", "C", "Score"]);
        assert!(!s[0].over && s[1].over && s[2].over && s[3].over);
        assert_eq!(prompts(ev), vec!["p1", "p2"]);
        let (k, pts) = timeline(ev).unwrap();
        assert_eq!(k, "Requests per hour");
        assert_eq!(
            pts,
            vec![("10:00".to_string(), 5.0), ("11:00".to_string(), 7.0)]
        );
        // The analyzer's regular series.
        let ev = json!({"requests_per_hour": {"start": "2026-11-01T10:00:00Z",
            "step_hours": 2, "counts": [3, 0, 9]}, "volume": {"requests": 12}});
        let (k, pts) = timeline(ev.as_object().unwrap()).unwrap();
        assert_eq!(k, "Requests per hour (one bar per 2 h)");
        let labels: Vec<&str> = pts.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "2026-11-01 10:00:00 UTC",
                "2026-11-01 12:00:00 UTC",
                "2026-11-01 14:00:00 UTC"
            ]
        );
        assert_eq!(pts.iter().map(|p| p.1).sum::<f64>(), 12.0);
        // The analyzer's shapes: signals as an array, samples as objects.
        let ev = json!({"score": 0.93,
            "signals": [{"name": "reasoning_share", "family": "harvest", "value": 0.4, "threshold": 0.25, "detail": "x"}],
            "sample_prompts": [{"ts": "t", "kind": "reasoning", "prompt": "Think step by step"}]});
        let ev = ev.as_object().unwrap();
        let s = signals(ev);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "Reasoning share (harvest)");
        assert!(s[0].over);
        assert_eq!(prompts(ev), vec!["Think step by step"]);
        let r = rows(
            &json!({"a": {"b": 1}, "c": [{"d": 2}]})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(r.len(), 5);
        assert!(r[0].header && r[1].depth == 1);
    }
}
