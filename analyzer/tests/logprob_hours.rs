//! `logprob_hours_share`: output-layer extraction sustained over the input
//! against a researcher's probes of the same kind (the same requests,
//! `top_logprobs` at the maximum and one output token) in an hour a day,
//! on hand-written logs of three days; and the same extraction asking for
//! fewer alternatives than the maximum, a different number per request
//! (session 12: `fixtures evade --transform params` took session 9's
//! "at the maximum" evidence away).

use crate::logs::{HOUR, T0, account, analyze_log, ts};
use analyzer::analysis::Via;
use analyzer::config::AnalyzerConfig;
use std::fmt::Write as _;

const MINUTE: i64 = 60_000;

/// One request: a logprob probe (one output token, `top_logprobs`
/// alternatives) or, with `top_logprobs` 0, an ordinary chat question.
fn line(out: &mut String, ms: i64, account: &str, i: usize, top_logprobs: u32) {
    // Each account from its own address: no cluster links them.
    let host = account.len() + usize::from(top_logprobs > 0) * 50;
    let params = if top_logprobs > 0 {
        format!(
            "\"max_tokens\":1,\"logprobs\":true,\"top_logprobs\":{top_logprobs},\"temperature\":0,\"prompt_tokens\":12,\"completion_tokens\":1"
        )
    } else {
        "\"max_tokens\":512,\"temperature\":0.7,\"prompt_tokens\":40,\"completion_tokens\":180"
            .into()
    };
    writeln!(
        out,
        "{{\"ts\":\"{}\",\"request_id\":\"r{account}{i}\",\"account_id\":\"{account}\",\"api_key_id\":\"k_{account}\",\"src_ip\":\"198.51.{host}.9\",\"endpoint\":\"/v1/chat/completions\",\"model\":\"m-1\",\"prompt\":\"Repeat the word: token{i}\",{params},\"status\":200}}",
        ts(ms)
    )
    .unwrap();
}

#[test]
fn logprob_extraction_on_every_hour_is_told_from_an_hour_of_probes_a_day() {
    let mut out = String::new();
    // 288 requests each: every 15 minutes for 72 hours, or 96 in one hour
    // (10:00-11:00) on each of the three days.
    for i in 0..288usize {
        let every_15_min = T0 + i as i64 * 15 * MINUTE;
        line(&mut out, every_15_min, "acct_extract", i, 20);
        // The same job asking for 12 to 19 alternatives, a different
        // number each time.
        let fewer = 12 + (i * 7 % 8) as u32;
        line(&mut out, every_15_min + 5_000, "acct_fewer", i, fewer);
        let (day, k) = (i as i64 / 96, i as i64 % 96);
        let session = T0 + day * 24 * HOUR + 10 * HOUR + k * 37_000;
        line(&mut out, session, "acct_research", i, 20);
        line(&mut out, every_15_min, "acct_chat", i, 0);
    }
    let report = analyze_log(&out, &AnalyzerConfig::default());
    let account = |id: &str| account(&report, id);
    let share = |id: &str| account(id).features.logprob_hours_share;
    // The input spans 72 clock hours (00:00 of the first day to 23:45 of
    // the third).
    assert_eq!(share("acct_extract"), 1.0);
    assert_eq!(share("acct_research"), 3.0 / 72.0);
    assert_eq!(share("acct_chat"), 0.0);
    // Each hour's deepest request asks for 16 or 19 of 20 alternatives
    // (25 or 30 31sts, rounded up), in every hour.
    assert!(
        (0.85..0.9).contains(&share("acct_fewer")),
        "{}",
        share("acct_fewer")
    );
    let depth = account("acct_fewer").features.top_logprobs_depth;
    assert!((0.75..0.9).contains(&depth), "{depth}");
    assert_eq!(account("acct_fewer").features.top_logprobs_max_share, 0.0);
    // Request by request the two are the same; the bundled model's part
    // for the sustained one is larger (an input missing from the alert's
    // largest contributions counts as 0).
    let part = |id: &str| {
        let a = account(id);
        assert!(matches!(a.via, Via::Account), "{id}: {:?}", a.via);
        a.verdict
            .contributions
            .iter()
            .find(|c| c.input == "logprob_hours_share")
            .map_or(0.0, |c| c.contribution)
    };
    for sustained in ["acct_extract", "acct_fewer"] {
        assert!(
            part(sustained) > part("acct_research") + 0.5,
            "{sustained}: {} vs {}",
            part(sustained),
            part("acct_research")
        );
    }
}
