//! One request of the input schema (`shared/spec/api-log-schema.md`), and its
//! validation: a row is either a [`Row`] or a [`BadRow`] reason, never dropped
//! silently.
//!
//! JSON Lines take a fast path first: a scanner for exactly this schema
//! (`scan.rs`), which answers only when it is sure to agree with serde and
//! otherwise hands the line to the serde path. That is a typed path (serde
//! with borrowed strings); only a row that fails it is parsed again as a
//! `serde_json::Value` to name the exact reason — and is accepted if that
//! lenient path finds it valid, so nothing valid is lost to the stricter
//! fast paths.

use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;

pub mod scan;

/// A validated request (only the fields the analyzer uses are kept).
#[derive(Clone, Debug, PartialEq)]
pub struct Row<'a> {
    /// Arrival time, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Billing account.
    pub account_id: Cow<'a, str>,
    /// API key.
    pub api_key_id: Cow<'a, str>,
    /// Client address.
    pub src_ip: IpAddr,
    /// Client library.
    pub user_agent: Option<Cow<'a, str>>,
    /// Endpoint path.
    pub endpoint: Cow<'a, str>,
    /// Model requested.
    pub model: Cow<'a, str>,
    /// Prompt text, when not redacted.
    pub prompt: Option<Cow<'a, str>>,
    /// Prompt hash, when redacted.
    pub prompt_sha256: Option<Cow<'a, str>>,
    /// Hash of the system prompt, when one was sent (the text itself is
    /// not kept: only "same system prompt or not" is used).
    pub system_prompt_hash: Option<u64>,
    /// Prior messages carried.
    pub conversation_turns: Option<u64>,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Completions requested.
    pub n: Option<u64>,
    /// Output cap.
    pub max_tokens: Option<u64>,
    /// Log-probabilities requested.
    pub logprobs: Option<bool>,
    /// Alternatives per token.
    pub top_logprobs: Option<u64>,
    /// Tokens biased.
    pub logit_bias_keys: Option<u64>,
    /// HTTP status.
    pub status: u64,
}

/// Why a row was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadRow {
    /// Not parseable as JSON.
    InvalidJson,
    /// Valid JSON but not an object.
    NotAnObject,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A line with nothing on it.
    BlankLine,
    /// A line longer than `max_line_bytes` (skipped unread to its end).
    LineTooLong,
    /// A CSV row with more or fewer cells than the header.
    RaggedRow,
    /// A CSV quote never closed within `max_line_bytes` (the row is
    /// skipped and reading goes on at the next line).
    UnbalancedQuote,
    /// A required field is absent or null.
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    WrongType(&'static str),
    /// A field has the right type but an unusable value (bad timestamp or IP).
    BadValue(&'static str),
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRow::InvalidJson => f.write_str("invalid_json"),
            BadRow::NotAnObject => f.write_str("not_an_object"),
            BadRow::InvalidUtf8 => f.write_str("invalid_utf8"),
            BadRow::BlankLine => f.write_str("blank_line"),
            BadRow::LineTooLong => f.write_str("line_too_long"),
            BadRow::RaggedRow => f.write_str("ragged_row"),
            BadRow::UnbalancedQuote => f.write_str("unbalanced_quote"),
            BadRow::MissingField(x) => write!(f, "missing_field:{x}"),
            BadRow::WrongType(x) => write!(f, "wrong_type:{x}"),
            BadRow::BadValue(x) => write!(f, "bad_value:{x}"),
        }
    }
}

/// The typed fast path: exactly the schema, strings borrowed when unescaped.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(borrow)]
    account_id: Cow<'a, str>,
    #[serde(borrow)]
    api_key_id: Cow<'a, str>,
    #[serde(borrow, default)]
    org_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    src_ip: Cow<'a, str>,
    #[serde(borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    endpoint: Cow<'a, str>,
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    prompt: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    prompt_sha256: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    system_prompt: Option<Cow<'a, str>>,
    #[serde(default)]
    conversation_turns: Option<u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    logprobs: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u64>,
    #[serde(default)]
    logit_bias_keys: Option<u64>,
    status: u64,
    #[serde(default)]
    latency_ms: Option<u64>,
}

/// The hash of a non-blank system prompt (whitespace at the ends ignored).
fn system_prompt_hash(s: Option<&str>) -> Option<u64> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| xxhash_rust::xxh3::xxh3_64(s.as_bytes()))
}

/// Parse an RFC 3339 timestamp to ms since the epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Parse one JSON Lines row: the schema's scanner when it takes the line,
/// else [`from_json_line_serde`] (same rows, same reasons; only slower).
pub fn from_json_line(line: &str) -> Result<Row<'_>, BadRow> {
    match scan::row(line) {
        Some(r) => Ok(r),
        None => from_json_line_serde(line),
    }
}

/// Parse one JSON Lines row with serde: the general path, which names the
/// reason of a bad row (and the reference the fast scanner is tested
/// against).
pub fn from_json_line_serde(line: &str) -> Result<Row<'_>, BadRow> {
    match serde_json::from_str::<Typed<'_>>(line) {
        Ok(t) => {
            let _ = (&t.request_id, &t.org_id, t.top_p, t.latency_ms);
            let ts_ms = parse_ts(&t.ts).ok_or(BadRow::BadValue("ts"))?;
            let src_ip = t
                .src_ip
                .trim()
                .parse()
                .map_err(|_| BadRow::BadValue("src_ip"))?;
            Ok(Row {
                ts_ms,
                account_id: t.account_id,
                api_key_id: t.api_key_id,
                src_ip,
                user_agent: t.user_agent,
                endpoint: t.endpoint,
                model: t.model,
                prompt: t.prompt,
                prompt_sha256: t.prompt_sha256,
                system_prompt_hash: system_prompt_hash(t.system_prompt.as_deref()),
                conversation_turns: t.conversation_turns,
                prompt_tokens: t.prompt_tokens,
                completion_tokens: t.completion_tokens,
                temperature: t.temperature,
                n: t.n,
                max_tokens: t.max_tokens,
                logprobs: t.logprobs,
                top_logprobs: t.top_logprobs,
                logit_bias_keys: t.logit_bias_keys,
                status: t.status,
            })
        }
        Err(_) => {
            let v: Value = serde_json::from_str(line).map_err(|_| BadRow::InvalidJson)?;
            from_value(&v, false).map(Row::into_owned)
        }
    }
}

fn get<'v>(o: &'v serde_json::Map<String, Value>, k: &str) -> Option<&'v Value> {
    o.get(k).filter(|v| !v.is_null())
}

fn req_str<'v>(o: &'v serde_json::Map<String, Value>, k: &'static str) -> Result<&'v str, BadRow> {
    match get(o, k) {
        None => Err(BadRow::MissingField(k)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(BadRow::WrongType(k)),
    }
}

fn opt_str<'v>(
    o: &'v serde_json::Map<String, Value>,
    k: &'static str,
) -> Result<Option<&'v str>, BadRow> {
    match get(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(BadRow::WrongType(k)),
    }
}

fn num_u64(v: &Value, k: &'static str, strings: bool) -> Result<u64, BadRow> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
                    .map(|f| f as u64)
            })
            .ok_or(BadRow::BadValue(k)),
        Value::String(s) if strings => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
                        .map(|f| f as u64)
                })
                .ok_or(BadRow::WrongType(k))
        }
        _ => Err(BadRow::WrongType(k)),
    }
}

fn req_u64(
    o: &serde_json::Map<String, Value>,
    k: &'static str,
    strings: bool,
) -> Result<u64, BadRow> {
    num_u64(get(o, k).ok_or(BadRow::MissingField(k))?, k, strings)
}

fn opt_u64(
    o: &serde_json::Map<String, Value>,
    k: &'static str,
    strings: bool,
) -> Result<Option<u64>, BadRow> {
    match get(o, k) {
        None => Ok(None),
        Some(Value::String(s)) if strings && s.trim().is_empty() => Ok(None),
        Some(v) => num_u64(v, k, strings).map(Some),
    }
}

fn opt_f64(
    o: &serde_json::Map<String, Value>,
    k: &'static str,
    strings: bool,
) -> Result<Option<f64>, BadRow> {
    match get(o, k) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if strings => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| BadRow::WrongType(k))
            }
        }
        Some(_) => Err(BadRow::WrongType(k)),
    }
}

fn opt_bool(
    o: &serde_json::Map<String, Value>,
    k: &'static str,
    strings: bool,
) -> Result<Option<bool>, BadRow> {
    match get(o, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if strings => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(BadRow::WrongType(k)),
        },
        Some(_) => Err(BadRow::WrongType(k)),
    }
}

/// Validate a row given as a JSON value (the lenient path, also used for
/// CSV and Parquet rows). `strings`: numbers and booleans may be given as
/// strings (CSV cells).
pub fn from_value(v: &Value, strings: bool) -> Result<Row<'_>, BadRow> {
    let o = v.as_object().ok_or(BadRow::NotAnObject)?;
    let ts = req_str(o, "ts")?;
    req_str(o, "request_id")?;
    let account_id = req_str(o, "account_id")?;
    let api_key_id = req_str(o, "api_key_id")?;
    opt_str(o, "org_id")?;
    let src_ip = req_str(o, "src_ip")?;
    let user_agent = opt_str(o, "user_agent")?;
    let endpoint = req_str(o, "endpoint")?;
    let model = req_str(o, "model")?;
    let prompt = opt_str(o, "prompt")?;
    let prompt_sha256 = opt_str(o, "prompt_sha256")?;
    let system_prompt = opt_str(o, "system_prompt")?;
    let conversation_turns = opt_u64(o, "conversation_turns", strings)?;
    let prompt_tokens = req_u64(o, "prompt_tokens", strings)?;
    let completion_tokens = req_u64(o, "completion_tokens", strings)?;
    let temperature = opt_f64(o, "temperature", strings)?;
    opt_f64(o, "top_p", strings)?;
    let n = opt_u64(o, "n", strings)?;
    let max_tokens = opt_u64(o, "max_tokens", strings)?;
    let logprobs = opt_bool(o, "logprobs", strings)?;
    let top_logprobs = opt_u64(o, "top_logprobs", strings)?;
    let logit_bias_keys = opt_u64(o, "logit_bias_keys", strings)?;
    let status = req_u64(o, "status", strings)?;
    opt_u64(o, "latency_ms", strings)?;
    // In CSV an empty optional text cell means "absent".
    fn nonempty(s: Option<&str>, strings: bool) -> Option<&str> {
        s.filter(|s| !(strings && s.is_empty()))
    }
    Ok(Row {
        ts_ms: parse_ts(ts).ok_or(BadRow::BadValue("ts"))?,
        account_id: Cow::Borrowed(account_id),
        api_key_id: Cow::Borrowed(api_key_id),
        src_ip: src_ip
            .trim()
            .parse()
            .map_err(|_| BadRow::BadValue("src_ip"))?,
        user_agent: nonempty(user_agent, strings).map(Cow::Borrowed),
        endpoint: Cow::Borrowed(endpoint),
        model: Cow::Borrowed(model),
        prompt: nonempty(prompt, strings).map(Cow::Borrowed),
        prompt_sha256: nonempty(prompt_sha256, strings).map(Cow::Borrowed),
        system_prompt_hash: system_prompt_hash(nonempty(system_prompt, strings)),
        conversation_turns,
        prompt_tokens,
        completion_tokens,
        temperature,
        n,
        max_tokens,
        logprobs,
        top_logprobs,
        logit_bias_keys,
        status,
    })
}

impl Row<'_> {
    /// Detach from the input buffer.
    pub fn into_owned(self) -> Row<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Row {
            ts_ms: self.ts_ms,
            account_id: own(self.account_id),
            api_key_id: own(self.api_key_id),
            src_ip: self.src_ip,
            user_agent: self.user_agent.map(own),
            endpoint: own(self.endpoint),
            model: own(self.model),
            prompt: self.prompt.map(own),
            prompt_sha256: self.prompt_sha256.map(own),
            system_prompt_hash: self.system_prompt_hash,
            conversation_turns: self.conversation_turns,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            temperature: self.temperature,
            n: self.n,
            max_tokens: self.max_tokens,
            logprobs: self.logprobs,
            top_logprobs: self.top_logprobs,
            logit_bias_keys: self.logit_bias_keys,
            status: self.status,
        }
    }
}
