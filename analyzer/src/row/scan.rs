//! The fast path for a JSON Lines row: one pass over the line for exactly
//! the schema's flat object, strings borrowed from the line (copied only
//! when they hold escapes), numbers parsed in place.
//!
//! Written by hand because no crate does this job fast enough: serde_json
//! (kept as the general path), sonic-rs and simd-json were measured on these
//! ~530-byte rows and none parses them in fewer than ~9 k instructions
//! (docs/performance.md); a scanner that knows the fixed schema needs no
//! generic field dispatch, visitor calls or intermediate values.
//!
//! It only ever answers with a row that the serde path
//! ([`super::from_json_line_serde`]) would produce identically, and gives up
//! (`None`) on anything else: an unknown or escaped key, a duplicate key, a
//! wrong type, a number it cannot convert exactly as serde_json does
//! (exponents, more than 15 digits, `-` on an integer field), an unusual
//! escape, a control character, a bad timestamp or address. The caller then
//! takes the serde path, so errors, reasons and line numbers are those of
//! serde, and the fast path can only change speed.

use super::{Row, parse_ts, system_prompt_hash};
use std::borrow::Cow;

/// The schema's fields; the index is the field's bit in the "seen" mask.
const NAMES: [&[u8]; 24] = [
    b"ts",
    b"request_id",
    b"account_id",
    b"api_key_id",
    b"org_id",
    b"src_ip",
    b"user_agent",
    b"endpoint",
    b"model",
    b"prompt",
    b"prompt_sha256",
    b"system_prompt",
    b"conversation_turns",
    b"prompt_tokens",
    b"completion_tokens",
    b"temperature",
    b"top_p",
    b"n",
    b"max_tokens",
    b"logprobs",
    b"top_logprobs",
    b"logit_bias_keys",
    b"status",
    b"latency_ms",
];

/// Fields that must be present (and not null): the strings `ts`,
/// `request_id`, `account_id`, `api_key_id`, `src_ip`, `endpoint`, `model`
/// and the integers `prompt_tokens`, `completion_tokens`, `status`.
const REQUIRED: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 5)
    | (1 << 7)
    | (1 << 8)
    | (1 << 13)
    | (1 << 14)
    | (1 << 22);

/// Where the first quote or backslash of `b` is; `None` when there is
/// none, or when a control character comes first (raw control characters
/// are invalid in JSON strings: serde rejects them). The first [`SHORT`]
/// bytes (ids, times, addresses: most values end there) are tested eight at
/// a time in a `u64`; the rest goes to `memchr2`, with a fold for control
/// characters (a fold rather than `any` so it vectorises).
fn special(b: &[u8]) -> Option<usize> {
    let head = &b[..b.len().min(SHORT)];
    let mut chunks = head.chunks_exact(8);
    for (k, c) in chunks.by_ref().enumerate() {
        if let Some(i) = special8(c.try_into().ok()?) {
            return (b[8 * k + i] >= 0x20).then_some(8 * k + i);
        }
    }
    let done = head.len() - chunks.remainder().len();
    for (i, &c) in chunks.remainder().iter().enumerate() {
        match c {
            b'"' | b'\\' => return Some(done + i),
            0..0x20 => return None,
            _ => {}
        }
    }
    let rest = b.get(SHORT..)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    if rest[..end].iter().fold(false, |c, &x| c | (x < 0x20)) {
        return None;
    }
    Some(SHORT + end)
}

/// The first byte of eight that is a quote, a backslash or a control
/// character. (Per byte, `v - 1 & !v & 0x80` is set when `v` is zero, and
/// `x - 0x20 & !x & 0x80` when `x < 0x20`; a borrow can only mark a byte
/// above a true hit, so the lowest mark is exact.)
fn special8(c: [u8; 8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let x = u64::from_le_bytes(c);
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let m = zero(x ^ (ONES * u64::from(b'"')))
        | zero(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
    (m != 0).then(|| m.trailing_zeros() as usize / 8)
}

/// 10^0 ..= 10^15, each exact in an `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Bytes of a string value tested eight at a time before `memchr2` takes
/// over.
const SHORT: usize = 32;

/// The field named by the key at the start of `rest` (just after its
/// opening quote): guessed from a byte or two, then the whole name and its
/// closing quote compared. `None` for a key not in the schema, or written
/// with an escape.
fn field(rest: &[u8]) -> Option<usize> {
    let at = |i: usize| rest.get(i).copied();
    let f = match at(0)? {
        b't' => match at(1)? {
            b's' => 0,
            b'e' => 15,
            _ if at(4)? == b'p' => 16,
            _ => 20,
        },
        b'r' => 1,
        b'a' if at(1)? == b'c' => 2,
        b'a' => 3,
        b'o' => 4,
        b's' => match at(1)? {
            b'r' => 5,
            b't' => 22,
            _ => 11,
        },
        b'u' => 6,
        b'e' => 7,
        b'm' if at(1)? == b'o' => 8,
        b'm' => 18,
        b'p' => match (at(6)?, at(7)?) {
            (b'_', b's') => 10,
            (b'_', _) => 13,
            _ => 9,
        },
        b'c' if at(2)? == b'n' => 12,
        b'c' => 14,
        b'n' => 17,
        b'l' => match (at(1)?, at(3)?) {
            (b'a', _) => 23,
            (_, b'p') => 19,
            _ => 21,
        },
        _ => return None,
    };
    let (words, masks) = &KEYS[f];
    if let Some(head) = rest.first_chunk::<24>() {
        // The whole key and its quote in three masked word compares (no
        // `memcmp` call per key).
        let mut diff = 0u64;
        for (k, c) in head.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(c.try_into().ok()?);
            diff |= (x ^ words[k]) & masks[k];
        }
        return (diff == 0).then_some(f);
    }
    let name = NAMES[f];
    (rest.get(..name.len())? == name && at(name.len())? == b'"').then_some(f)
}

/// Each field's key with its closing quote, zero-padded to 24 bytes, as
/// three little-endian words, and the masks of the bytes that count.
const KEYS: [([u64; 3], [u64; 3]); 24] = {
    let mut t = [([0u64; 3], [0u64; 3]); 24];
    let mut f = 0;
    while f < NAMES.len() {
        let name = NAMES[f];
        assert!(name.len() < 24);
        let mut i = 0;
        while i <= name.len() {
            let b = if i < name.len() { name[i] } else { b'"' };
            t[f].0[i / 8] |= (b as u64) << (8 * (i % 8));
            t[f].1[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        f += 1;
    }
    t
};

/// The fields of a line as read (the ones the row keeps; the others are
/// only checked).
#[derive(Default)]
struct Parts<'a> {
    ts: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    api_key_id: Option<Cow<'a, str>>,
    src_ip: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    endpoint: Option<Cow<'a, str>>,
    model: Option<Cow<'a, str>>,
    prompt: Option<Cow<'a, str>>,
    prompt_sha256: Option<Cow<'a, str>>,
    system_prompt: Option<Cow<'a, str>>,
    conversation_turns: Option<u64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    temperature: Option<f64>,
    n: Option<u64>,
    max_tokens: Option<u64>,
    logprobs: Option<bool>,
    top_logprobs: Option<u64>,
    logit_bias_keys: Option<u64>,
    status: u64,
}

/// A position in the line.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    /// Skip JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Consume `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    /// Consume a literal (`null`, `true`, `false`).
    fn lit(&mut self, word: &[u8]) -> bool {
        let hit = self.s.as_bytes()[self.i..].starts_with(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    /// The field a key names (the opening quote is already consumed),
    /// with the key and its closing quote consumed.
    fn key(&mut self) -> Option<usize> {
        let f = field(&self.s.as_bytes()[self.i..])?;
        self.i += NAMES[f].len() + 1;
        Some(f)
    }

    /// A string's value (the opening quote is already consumed): borrowed
    /// when it has no escape, else unescaped into a copy. `None` on a
    /// control character or an escape serde_json might treat differently.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let bytes = self.s.as_bytes();
        let mut owned: Option<String> = None;
        loop {
            let start = self.i;
            let end = start + special(&bytes[start..])?;
            // Quotes and backslashes are ASCII: both ends are char boundaries.
            let seg = self.s.get(start..end)?;
            self.i = end + 1;
            if bytes[end] == b'"' {
                return Some(match owned {
                    None => Cow::Borrowed(seg),
                    Some(mut o) => {
                        o.push_str(seg);
                        Cow::Owned(o)
                    }
                });
            }
            // The rest of the line bounds the unescaped string: one allocation.
            let o = owned.get_or_insert_with(|| String::with_capacity(bytes.len() - start));
            o.push_str(seg);
            let c = match self.peek()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    self.i += 1;
                    let hi = self.hex4()?;
                    let code = match hi {
                        0xD800..=0xDBFF => {
                            if !(self.eat(b'\\') && self.eat(b'u')) {
                                return None;
                            }
                            let lo = self.hex4()?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return None;
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return None,
                        _ => hi,
                    };
                    o.push(char::from_u32(code)?);
                    continue;
                }
                _ => return None,
            };
            self.i += 1;
            o.push(c);
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.as_bytes().get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &b in h {
            v = v * 16 + char::from(b).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// The digits starting here.
    fn digits(&mut self) -> &'a [u8] {
        let rest = &self.s.as_bytes()[self.i..];
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        self.i += n;
        &rest[..n]
    }

    /// A non-negative integer as serde_json reads it into a `u64`: no
    /// leading zero, no fraction or exponent, no overflow.
    fn u64(&mut self) -> Option<u64> {
        let rest = &self.s.as_bytes()[self.i..];
        // Digits read and summed in one loop.
        let (mut v, mut n) = (0u64, 0);
        while let Some(&b) = rest.get(n).filter(|b| b.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            n += 1;
        }
        if n == 0 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        self.i += n;
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(v)
    }

    /// A number read into an `f64`, only in the forms where serde_json's
    /// result is the correctly rounded value (`-?int(.frac)?`, at most 15
    /// digits in all: the digits are an exact integer below 2^53 and
    /// serde_json divides it once by an exact power of ten). That one
    /// IEEE division of two exact values is itself correctly rounded, so
    /// it is done here too (`str::parse` gives the same value at ~8 times
    /// the instructions).
    fn f64(&mut self) -> Option<f64> {
        let negative = self.eat(b'-');
        let int = self.digits();
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return None;
        }
        let frac = if self.eat(b'.') {
            let frac = self.digits();
            if frac.is_empty() {
                return None;
            }
            frac
        } else {
            &[]
        };
        if int.len() + frac.len() > 15 || matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        let m = int
            .iter()
            .chain(frac)
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
        // Exact: m < 10^15 < 2^53, and so is every power of ten here.
        let v = m as f64 / POW10[frac.len()];
        Some(if negative { -v } else { v })
    }

    /// A string value (never null).
    fn str(&mut self) -> Option<Cow<'a, str>> {
        if !self.eat(b'"') {
            return None;
        }
        self.string()
    }

    /// Whether the next value is `null` (consumed if so); `None` when it
    /// starts like `null` but is not.
    fn null(&mut self) -> Option<bool> {
        if self.peek() != Some(b'n') {
            return Some(false);
        }
        self.lit(b"null").then_some(true)
    }

    /// A string or null.
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        self.str().map(Some)
    }

    /// An integer or null.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null()? {
            return Some(None);
        }
        self.u64().map(Some)
    }

    /// A number or null.
    fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.null()? {
            return Some(None);
        }
        self.f64().map(Some)
    }

    /// `true`, `false` or null.
    fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null()? {
            Some(None)
        } else if self.lit(b"true") {
            Some(Some(true))
        } else if self.lit(b"false") {
            Some(Some(false))
        } else {
            None
        }
    }

    /// The value of field `f` (an index of [`NAMES`]) into `p`.
    fn value(&mut self, f: usize, p: &mut Parts<'a>) -> Option<()> {
        match f {
            0 => p.ts = Some(self.str()?),
            1 => drop(self.str()?),
            2 => p.account_id = Some(self.str()?),
            3 => p.api_key_id = Some(self.str()?),
            4 => drop(self.opt_str()?),
            5 => p.src_ip = Some(self.str()?),
            6 => p.user_agent = self.opt_str()?,
            7 => p.endpoint = Some(self.str()?),
            8 => p.model = Some(self.str()?),
            9 => p.prompt = self.opt_str()?,
            10 => p.prompt_sha256 = self.opt_str()?,
            11 => p.system_prompt = self.opt_str()?,
            12 => p.conversation_turns = self.opt_u64()?,
            13 => p.prompt_tokens = self.u64()?,
            14 => p.completion_tokens = self.u64()?,
            15 => p.temperature = self.opt_f64()?,
            16 => drop(self.opt_f64()?),
            17 => p.n = self.opt_u64()?,
            18 => p.max_tokens = self.opt_u64()?,
            19 => p.logprobs = self.opt_bool()?,
            20 => p.top_logprobs = self.opt_u64()?,
            21 => p.logit_bias_keys = self.opt_u64()?,
            22 => p.status = self.u64()?,
            _ => drop(self.opt_u64()?),
        }
        Some(())
    }
}

/// Read every field of the line's object; `None` on anything the fast
/// path does not take.
fn parts(line: &str) -> Option<Parts<'_>> {
    let mut c = Cursor { s: line, i: 0 };
    let mut p = Parts::default();
    let mut seen = 0u32;
    c.ws();
    if !c.eat(b'{') {
        return None;
    }
    c.ws();
    loop {
        if !c.eat(b'"') {
            return None;
        }
        let f = c.key()?;
        if seen & (1 << f) != 0 {
            return None; // serde: duplicate field
        }
        seen |= 1 << f;
        c.ws();
        if !c.eat(b':') {
            return None;
        }
        c.ws();
        c.value(f, &mut p)?;
        c.ws();
        if c.eat(b'}') {
            break;
        }
        if !c.eat(b',') {
            return None;
        }
        c.ws();
    }
    c.ws();
    (c.i == line.len() && seen & REQUIRED == REQUIRED).then_some(p)
}

/// The row of a line, when the fast path takes it (see the module's doc);
/// `None` means "ask the serde path".
pub fn row(line: &str) -> Option<Row<'_>> {
    let p = parts(line)?;
    let ts = p.ts?;
    let ts_ms = utc_ms(&ts).or_else(|| parse_ts(&ts))?;
    let src_ip = p.src_ip?.trim().parse().ok()?;
    Some(Row {
        ts_ms,
        account_id: p.account_id?,
        api_key_id: p.api_key_id?,
        src_ip,
        user_agent: p.user_agent,
        endpoint: p.endpoint?,
        model: p.model?,
        prompt: p.prompt,
        prompt_sha256: p.prompt_sha256,
        system_prompt_hash: system_prompt_hash(p.system_prompt.as_deref()),
        conversation_turns: p.conversation_turns,
        prompt_tokens: p.prompt_tokens,
        completion_tokens: p.completion_tokens,
        temperature: p.temperature,
        n: p.n,
        max_tokens: p.max_tokens,
        logprobs: p.logprobs,
        top_logprobs: p.top_logprobs,
        logit_bias_keys: p.logit_bias_keys,
        status: p.status,
    })
}

/// The common form of a timestamp, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` with a
/// year from 1970, to ms since the epoch exactly as chrono's RFC 3339
/// parser gives it (the fraction truncated to ms); `None` for every other
/// form, which chrono then reads (offsets, leap seconds, other separators).
/// By hand because chrono's general parser costs as much as the rest of
/// the row's numbers together.
pub fn utc_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (head, tail) = (b.get(..19)?, b.get(19..)?);
    let num = |r: std::ops::Range<usize>| {
        head[r].iter().try_fold(0i64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
        })
    };
    if head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if y < 1970 || d < 1 || d > month_days || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let ms = match tail {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] if (1..=9).contains(&frac.len()) => {
            if !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            frac.iter()
                .chain(std::iter::repeat(&b'0'))
                .take(3)
                .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'))
        }
        _ => return None,
    };
    // Days from the civil date (H. Hinnant's `days_from_civil`; years from
    // 1970 keep every quantity non-negative).
    let y = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (y / 400, y % 400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms)
}
