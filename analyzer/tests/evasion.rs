//! Evasion (session 11): rows rewritten by `fixtures::logs::evade` are
//! valid input to the analyzer's reader, and a harvester that wraps each
//! prompt in a fake short conversation keeps its text evidence, while a
//! product whose conversations grow keeps its multi-turn requests out of
//! the text pool.

use crate::logs::{HOUR, T0, account, analyze_log, ts};
use analyzer::config::AnalyzerConfig;
use fixtures::logs::evade::{EvadeSpec, Transform, evade};
use std::fmt::Write as _;

#[test]
fn every_evaded_row_is_valid_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 12,
        accounts: 40,
        days: 1,
        ..Default::default()
    };
    let logs = fixtures::logs::generate(&spec, &dir.path().join("in")).unwrap();
    let out = evade(&EvadeSpec {
        input: logs.requests,
        labels: logs.labels,
        transforms: Transform::ALL.to_vec(),
        share: 0.5,
        seed: 2,
        per_day: 30,
        out_dir: dir.path().join("out"),
    })
    .unwrap();
    assert!(out.rows_changed > 0);
    let (_, _, report) = analyzer::load_and_analyze(
        &[out.requests],
        &AnalyzerConfig::default(),
        &analyzer::configured_model(&AnalyzerConfig::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(report.bad_total(), 0, "{:?}", report.bad_by_reason);
    assert_eq!(report.rows, out.rows_out);
}

fn line(out: &mut String, ms: i64, account: &str, i: usize, turns: u32, prompt: &str) {
    writeln!(
        out,
        "{{\"ts\":\"{}\",\"request_id\":\"r{account}{i}\",\"account_id\":\"{account}\",\"api_key_id\":\"k_{account}\",\"src_ip\":\"198.51.{}.9\",\"endpoint\":\"/v1/chat/completions\",\"model\":\"m-1\",\"prompt\":\"{prompt}\",\"conversation_turns\":{turns},\"max_tokens\":4096,\"prompt_tokens\":60,\"completion_tokens\":900,\"status\":200}}",
        ts(ms),
        account.len()
    )
    .unwrap();
}

#[test]
fn a_fake_short_conversation_does_not_hide_the_harvested_prompt() {
    // One template filled with capability topics, every prompt new.
    let topics = [
        "calculus",
        "python recursion",
        "organic chemistry",
        "world war history",
        "contract law",
        "microeconomics",
        "cell biology",
        "poetry writing",
        "linear algebra",
        "sql databases",
    ];
    let mut out = String::new();
    for i in 0..400usize {
        let ms = T0 + i as i64 * HOUR / 6;
        let prompt = format!(
            "Explain {} to an expert in full detail, part {} of the series, with all steps and a worked example",
            topics[i % topics.len()],
            i
        );
        // The harvester: each prompt behind 1-4 made-up earlier turns.
        line(&mut out, ms, "acct_wrapped", i, 1 + (i % 4) as u32, &prompt);
        // The same job sent as it is.
        line(&mut out, ms + 1_000, "acct_plain", i, 0, &prompt);
        // A product whose conversations grow: 0, 2, .., 12 turns.
        let chat = format!(
            "and what about the {} part you mentioned, number {i}?",
            topics[i % 7]
        );
        line(
            &mut out,
            ms + 2_000,
            "acct_chat",
            i,
            2 * (i % 7) as u32,
            &chat,
        );
    }
    let report = analyze_log(&out, &AnalyzerConfig::default());
    let f = |id: &str| &account(&report, id).features;
    // Without the rule the wrapped harvester has no text pool at all.
    assert_eq!(f("acct_wrapped").text_pool, 400);
    assert_eq!(f("acct_plain").text_pool, 400);
    for k in [
        |x: &analyzer::features::Features| x.harvest_template_share,
        |x: &analyzer::features::Features| x.topic_breadth as f64,
        |x: &analyzer::features::Features| x.coverage_growth,
    ] {
        assert_eq!(k(f("acct_wrapped")), k(f("acct_plain")));
    }
    assert!(f("acct_wrapped").harvest_template_share > 0.9);
    // Conversations that grow past four turns stay out: the pool is the
    // product's single-turn requests only (every seventh).
    assert_eq!(f("acct_chat").text_pool, 400_u64.div_ceil(7));
}
