//! `self_shift`: the distribution-shift test of an entity's traffic against
//! its own earlier days (issue 12 item 4), on hand-written logs: a switch
//! into harvesting and a harvesting fraction added to an ordinary account
//! (its own sampling settings: temperature, output cap) must show, a
//! steady product must not, and more harvest must shift more. And
//! `active_days_share`: a job on every day of the input against a burst
//! on one of them.

use crate::logs::{HOUR, T0, account, analyze_log, ts};
use analyzer::config::AnalyzerConfig;
use std::fmt::Write as _;

/// One request of an ordinary product (`i` picks chat or a short
/// question), or of a harvesting job (one short question, a long answer,
/// a large output cap, its own temperature).
fn line(out: &mut String, ms: i64, account: &str, i: u64, harvest: bool) {
    let (turns, pt, ct, mt, temp) = if harvest {
        (0, 35, 2400, 4096, 0.9)
    } else if i.is_multiple_of(3) {
        (0, 60, 180, 512, 0.7)
    } else {
        (3, 400, 150, 512, 0.7)
    };
    writeln!(
        out,
        "{{\"ts\":\"{}\",\"request_id\":\"r{account}{i}\",\"account_id\":\"{account}\",\"api_key_id\":\"k_{account}\",\"src_ip\":\"198.51.100.7\",\"endpoint\":\"/v1/chat/completions\",\"model\":\"m-1\",\"prompt\":\"question {i} from {account}\",\"conversation_turns\":{turns},\"prompt_tokens\":{pt},\"completion_tokens\":{ct},\"max_tokens\":{mt},\"temperature\":{temp},\"status\":200}}",
        ts(ms)
    )
    .unwrap();
}

/// Four days, 120 requests a day per account. `share` of an account's
/// requests on days 3-4 are harvesting (every `1/share`-th request).
fn shift_of(harvest_every: Option<u64>) -> f64 {
    let mut out = String::new();
    for (account, every) in [("acct_probe", harvest_every), ("acct_steady", None)] {
        for i in 0..480u64 {
            let ms = T0 + i as i64 * (24 * HOUR / 120);
            let late = i >= 240;
            let harvest = late && every.is_some_and(|e| i.is_multiple_of(e));
            line(&mut out, ms, account, i, harvest);
        }
    }
    // A burst: 120 requests in one hour of the second day.
    for i in 0..120u64 {
        line(
            &mut out,
            T0 + 24 * HOUR + i as i64 * 30_000,
            "acct_burst",
            i,
            false,
        );
    }
    let report = analyze_log(&out, &AnalyzerConfig::default());
    let features = |id: &str| &account(&report, id).features;
    let get = |id: &str| features(id).self_shift;
    // Four days of input: the steady account on all four, the burst on one.
    assert_eq!(features("acct_steady").active_days_share, 1.0);
    assert_eq!(features("acct_burst").active_days_share, 0.25);
    assert_eq!(get("acct_burst"), 0.0);
    // The steady account's days all have one mix: no shift beyond noise
    // (the statistic is unbiased, so ~0, possibly just below).
    assert!(get("acct_steady").abs() < 0.01, "{}", get("acct_steady"));
    get("acct_probe")
}

#[test]
fn a_switch_or_a_harvest_fraction_shows_as_a_shift_against_own_history() {
    let none = shift_of(None);
    let quarter = shift_of(Some(4));
    let half = shift_of(Some(2));
    let all = shift_of(Some(1));
    assert!(none.abs() < 0.01, "no harvest: {none}");
    assert!(quarter > 0.02, "a quarter harvest: {quarter}");
    assert!(
        none < quarter && quarter < half && half < all,
        "{none} {quarter} {half} {all}"
    );
}
