//! The schema's fast row scanner (`row::scan`) against the serde path it
//! stands in for: on generated logs, on the external set (when it is beside
//! the workspace) and on hostile variants of real rows, the scanner either
//! gives exactly serde's row or declines; `row::from_json_line` (scanner
//! first) always answers as serde does, bad-row reasons included.

use analyzer::row::{self, BadRow, Row, scan};
use proptest::prelude::*;

/// Equal rows, the float compared bit for bit (`-0.0` is not `0.0`).
fn same(a: &Result<Row<'_>, BadRow>, b: &Result<Row<'_>, BadRow>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => {
            x == y && x.temperature.map(f64::to_bits) == y.temperature.map(f64::to_bits)
        }
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

/// The scanner's answer is serde's, or none; the combined path is serde's.
/// Returns whether the scanner took the line.
fn check(line: &str) -> bool {
    let serde = row::from_json_line_serde(line);
    let fast = scan::row(line);
    if let Some(f) = &fast {
        assert!(
            same(&Ok(f.clone()), &serde),
            "scanner {f:?}\nserde {serde:?}\nline {line}"
        );
    }
    assert!(same(&row::from_json_line(line), &serde), "line {line}");
    fast.is_some()
}

/// Lines of a small generated log (all three traffic kinds, prompts with
/// escapes, optional fields present and absent).
fn generated() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 7,
        accounts: 60,
        days: 1,
        ..Default::default()
    };
    let s = fixtures::logs::generate(&spec, dir.path()).unwrap();
    std::fs::read_to_string(s.requests)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn scanner_agrees_with_serde_on_generated_logs() {
    let lines = generated();
    let taken = lines.iter().filter(|l| check(l)).count();
    assert!(lines.len() > 1000, "{} rows", lines.len());
    // The fast path must actually be the path: every generated row is plain.
    assert_eq!(taken, lines.len());
}

#[test]
fn scanner_agrees_with_serde_on_the_external_set() {
    let Some(text) = crate::logs::external_requests() else {
        return;
    };
    // Every 16th row (~25,000 spread over the whole set): the whole set
    // takes minutes in a debug build, and the rows are alike.
    let (mut n, mut taken) = (0usize, 0usize);
    for line in text.lines().step_by(16).filter(|l| !l.trim().is_empty()) {
        n += 1;
        taken += usize::from(check(line));
    }
    assert!(n > 20_000, "{n} rows");
    assert!(taken * 100 >= n * 99, "scanner took {taken} of {n} rows");
}

#[test]
fn known_edge_cases_decline_or_agree() {
    let base = r#"{"ts":"2026-11-21T10:00:00.000Z","request_id":"r1","account_id":"a1","api_key_id":"k1","src_ip":"203.0.113.5","endpoint":"/v1/chat/completions","model":"m","prompt":"hi","prompt_tokens":12,"completion_tokens":40,"temperature":0.7,"status":200}"#;
    assert!(check(base));
    let cases = [
        (
            r#""prompt":"hi""#,
            r#""prompt":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#,
        ),
        (r#""prompt":"hi""#, r#""prompt":"lone \ud83d here""#),
        (r#""prompt":"hi""#, r#""prompt":"low \ude00 first""#),
        (r#""prompt":"hi""#, r#""prompt":"bad \x escape""#),
        (r#""prompt":"hi""#, "\"prompt\":\"raw\ttab\""),
        (r#""prompt":"hi""#, r#""prompt":null"#),
        (r#""prompt":"hi""#, r#""prompt":5"#),
        (r#""prompt_tokens":12"#, r#""prompt_tokens":12.0"#),
        (r#""prompt_tokens":12"#, r#""prompt_tokens":1e1"#),
        (r#""prompt_tokens":12"#, r#""prompt_tokens":012"#),
        (r#""prompt_tokens":12"#, r#""prompt_tokens":-0"#),
        (
            r#""prompt_tokens":12"#,
            r#""prompt_tokens":18446744073709551616"#,
        ),
        (
            r#""prompt_tokens":12"#,
            r#""prompt_tokens":18446744073709551615"#,
        ),
        (r#""prompt_tokens":12"#, r#""prompt_tokens":null"#),
        (r#""temperature":0.7"#, r#""temperature":-0"#),
        (r#""temperature":0.7"#, r#""temperature":-0.0"#),
        (r#""temperature":0.7"#, r#""temperature":1"#),
        (
            r#""temperature":0.7"#,
            r#""temperature":0.1234567890123456789"#,
        ),
        (r#""temperature":0.7"#, r#""temperature":1e400"#),
        (r#""temperature":0.7"#, r#""temperature":.5"#),
        (r#""temperature":0.7"#, r#""temperature":5."#),
        (r#""temperature":0.7"#, r#""temperature":"0.7""#),
        (
            r#""account_id":"a1""#,
            r#""account_id":"a1","account_id":"a2""#,
        ),
        (r#""account_id":"a1""#, r#""acc\u006funt_id":"a1""#),
        (
            r#""account_id":"a1""#,
            r#""account_id":"a1","extra":{"x":[1,2]}"#,
        ),
        (
            r#""account_id":"a1""#,
            r#""account_id":"a1","logprobs":true,"top_logprobs":5"#,
        ),
        (
            r#""account_id":"a1""#,
            r#""account_id":"a1","logprobs":"yes""#,
        ),
        (r#""account_id":"a1""#, r#""account_id" : "a1" "#),
        (r#""account_id":"a1","#, ""),
        (
            r#""ts":"2026-11-21T10:00:00.000Z""#,
            r#""ts":"2026-11-21T10:00:00+01:00""#,
        ),
        (
            r#""ts":"2026-11-21T10:00:00.000Z""#,
            r#""ts":"2026-11-21T10:00:60Z""#,
        ),
        (
            r#""ts":"2026-11-21T10:00:00.000Z""#,
            r#""ts":"2026-02-29T10:00:00Z""#,
        ),
        (
            r#""ts":"2026-11-21T10:00:00.000Z""#,
            r#""ts":"2024-02-29T23:59:59.999999999Z""#,
        ),
        (r#""ts":"2026-11-21T10:00:00.000Z""#, r#""ts":"yesterday""#),
        (r#""src_ip":"203.0.113.5""#, r#""src_ip":" 2001:db8::1 ""#),
        (r#""src_ip":"203.0.113.5""#, r#""src_ip":"not-an-ip""#),
    ];
    for (from, to) in cases {
        assert!(base.contains(from), "{from}");
        check(&base.replacen(from, to, 1));
    }
    for line in [
        format!("  {base}  "),
        format!("{base},"),
        format!("[{base}]"),
        base.replace('}', ",}"),
        "{}".to_owned(),
        String::new(),
    ] {
        check(&line);
    }
}

/// Bytes that matter to a JSON scanner.
const HOSTILE: &[u8] = b"\"\\:,{}[] \t0123456789-+.eEnulltrfa/\x01\x1f";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hostile_variants_of_a_row_decline_or_agree(
        pos in any::<prop::sample::Index>(),
        edit in 0u8..4,
        byte in prop::sample::select(HOSTILE),
        len in 1usize..12,
        which in any::<prop::sample::Index>(),
    ) {
        thread_local!(static LINES: Vec<String> = generated());
        let line = LINES.with(|l| which.get(l).clone());
        let mut b = line.into_bytes();
        let at = pos.index(b.len());
        match edit {
            0 => b.insert(at, byte),
            1 => { b.remove(at); }
            2 => b[at] = byte,
            _ => {
                // Repeat a stretch (a duplicated key or value, a number
                // grown longer).
                let end = (at + len).min(b.len());
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
        if let Ok(s) = std::str::from_utf8(&b) {
            check(s);
        }
    }

    #[test]
    fn timestamps_match_chrono(
        y in 1960i64..2300, mo in 0i64..14, d in 0i64..33,
        h in 0i64..26, mi in 0i64..61, s in 0i64..62,
        frac in prop::option::of("[0-9]{0,11}"),
        zone in prop::sample::select(vec!["Z", "z", "+00:00", "+05:30", ""]),
    ) {
        let f = frac.map(|f| format!(".{f}")).unwrap_or_default();
        let ts = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{f}{zone}");
        if let Some(ms) = scan::utc_ms(&ts) {
            prop_assert_eq!(Some(ms), row::parse_ts(&ts), "{}", ts);
        }
    }
}
