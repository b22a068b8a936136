//! `vocab_novelty`: a harvester filling a template from a closed list of
//! words against a person asking in fresh words, with the same request
//! shape, volume and timing, on a hand-written log of three days.

use crate::logs::{HOUR, T0, account, analyze_log, ts};
use analyzer::config::AnalyzerConfig;
use std::fmt::Write as _;

/// A made-up word for `n`: five or more letters, different for every `n`.
fn word(n: usize) -> String {
    let mut w = String::from("qu");
    let mut k = n;
    loop {
        w.push(char::from(b'a' + (k % 26) as u8));
        k /= 26;
        if k == 0 && w.len() >= 5 {
            break w;
        }
    }
}

fn line(out: &mut String, ms: i64, account: &str, i: usize, prompt: &str) {
    writeln!(
        out,
        "{{\"ts\":\"{}\",\"request_id\":\"r{account}{i}\",\"account_id\":\"{account}\",\"api_key_id\":\"k_{account}\",\"src_ip\":\"198.51.{}.9\",\"endpoint\":\"/v1/chat/completions\",\"model\":\"m-1\",\"prompt\":\"{prompt}\",\"max_tokens\":1024,\"temperature\":0.7,\"prompt_tokens\":40,\"completion_tokens\":600,\"status\":200}}",
        ts(ms),
        account.len()
    )
    .unwrap();
}

#[test]
fn a_closed_vocabulary_reused_is_told_from_fresh_questions() {
    let mut out = String::new();
    // 300 prompts each, one every 14 minutes.
    let concepts: Vec<String> = (0..12).map(|k| word(1000 + k)).collect();
    let fields: Vec<String> = (0..12).map(|k| word(2000 + k)).collect();
    for i in 0..300usize {
        let ms = T0 + i as i64 * HOUR * 14 / 60;
        // Every prompt distinct (144 combinations, then a numbered
        // variant), all from 24 content words.
        let closed = format!(
            "Explain {} in {} with an example, variant {}",
            concepts[i % 12],
            fields[(i / 12) % 12],
            i / 144
        );
        line(&mut out, ms, "acct_closed", i, &closed);
        // Eight words never used before in every prompt.
        let fresh: Vec<String> = (0..8).map(|k| word(10_000 + i * 8 + k)).collect();
        line(
            &mut out,
            ms + 1_000,
            "acct_fresh",
            i,
            &format!(
                "Why does {} and {}?",
                fresh[..4].join(" "),
                fresh[4..].join(" ")
            ),
        );
    }
    let report = analyze_log(&out, &AnalyzerConfig::default());
    let novelty = |id: &str| account(&report, id).features.vocab_novelty;
    // Both send only distinct prompts: the distinct-prompt ratio cannot
    // tell them apart.
    for id in ["acct_closed", "acct_fresh"] {
        assert_eq!(
            account(&report, id).features.distinct_prompt_ratio,
            1.0,
            "{id}"
        );
    }
    // Every sampled word of a fresh prompt is new (a 16-bit value may
    // repeat one in the window by chance: a few in a thousand).
    assert!(novelty("acct_fresh") > 0.95, "{}", novelty("acct_fresh"));
    // The closed list's words have all been seen within the window after
    // its first dozen prompts; some were sampled and judged (the first use
    // of a field word after the tenth prompt is new), so it is not 0 for
    // want of words.
    let closed = novelty("acct_closed");
    assert!(closed > 0.0 && closed < 0.05, "{closed}");
}
