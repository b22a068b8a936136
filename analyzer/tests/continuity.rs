//! Conversation continuity (session 13, issue 12 item 6 and the
//! `multi_turn` evasion): a multi-turn request that carries an earlier
//! request of its key is a conversation and is sized by its whole input; one
//! that continues nothing (a made-up preamble around an independent prompt)
//! has its answer measured against its own message, so the long answer to
//! a short question stays visible.

use analyzer::config::AnalyzerConfig;
use analyzer::features::{Context, compute};
use analyzer::requests::{Req, flag};
use fixtures::logs::evade::Transform;

const MIN: i64 = 60_000;

fn req(key: u32, ts: i64, turns: u16, input: u32, message: u16, output: u32) -> Req {
    Req {
        ts,
        key,
        turns,
        prompt_tokens: input,
        message_tokens: message,
        completion_tokens: output,
        flags: if turns == 0 { flag::SINGLE_TURN } else { 0 } | flag::TEXT,
        ..Req::default()
    }
}

fn features(reqs: &[Req]) -> analyzer::features::Features {
    let cfg = AnalyzerConfig::default();
    let refs: Vec<&Req> = reqs.iter().collect();
    let ctx = Context::of_span(reqs[0].ts, reqs[reqs.len() - 1].ts, [], &cfg);
    compute(&refs, &ctx, &cfg)
}

#[test]
fn a_real_conversation_continues_and_a_made_up_one_does_not() {
    // A person: a question, then follow-ups carrying the question and the
    // answers (input >= the previous input + output), minutes apart.
    let mut real = vec![req(1, 0, 0, 60, 15, 500)];
    for j in 1..6u16 {
        let prev = real[j as usize - 1];
        real.push(req(
            1,
            i64::from(j) * 3 * MIN,
            2 * j,
            prev.prompt_tokens + prev.completion_tokens + 20,
            20,
            500,
        ));
    }
    let f = features(&real);
    assert_eq!(f.continuation_share, 1.0);
    // Only the first answer is long against its input.
    assert!((f.long_output_share - 1.0 / 6.0).abs() < 1e-9);

    // A harvester: each prompt wrapped in 1-4 made-up turns whose input
    // grows by a few hundred tokens but never holds an earlier answer.
    let fake: Vec<Req> = (0..6u16)
        .map(|j| {
            req(
                2,
                i64::from(j) * 3 * MIN,
                1 + j % 4,
                30 + 150 * (1 + u32::from(j % 4)),
                30,
                1500,
            )
        })
        .collect();
    let f = features(&fake);
    assert_eq!(f.continuation_share, 0.0);
    assert_eq!(f.long_output_share, 1.0, "measured against its own message");

    // The same follow-up after a pause longer than 30 minutes, or on
    // another key, continues nothing.
    let late = vec![real[0], req(1, 31 * MIN, 2, 600, 20, 500)];
    assert_eq!(features(&late).continuation_share, 0.0);
    let other_key = vec![real[0], req(3, 3 * MIN, 2, 600, 20, 500)];
    assert_eq!(features(&other_key).continuation_share, 0.0);
}

/// A small generated log whose attack accounts are all wrapped in made-up
/// conversations (`multi_turn` at share 1): the harvesters whose evidence
/// is long answers to short questions (disguised harvest and agentic-trace
/// harvest, both multi-turn by themselves too) are flagged, and no benign
/// account — among them the generator's conversing chat products, tutors,
/// classrooms, teams, individuals and power users, and the homework
/// helpers' few-shot requests — is. Session 12's analyzer and model
/// flags neither harvester on this log: their made-up turns grew the input
/// and took the long-answer evidence away.
#[test]
fn made_up_conversations_do_not_hide_long_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = super::evasion::generate_and_evade(
        dir.path(),
        (15, 120, 2),
        vec![Transform::MultiTurn],
        1.0,
        11,
    );
    let opts = analyzer::AnalyzeOptions {
        logs: vec![out.requests.clone()],
        labels: Some(out.labels.clone()),
        no_replay: true,
        ..analyzer::AnalyzeOptions::default()
    };
    let mut sink = eve::sink::memory::MemorySink::new();
    let report = analyzer::run(&opts, &AnalyzerConfig::default(), &mut sink).unwrap();
    let ev = report.evaluation.expect("labels given");
    eprintln!("{ev}");
    for style in ["disguised_harvest", "agent_trace_harvest"] {
        let row = ev
            .attacks
            .iter()
            .find(|r| r.scenario == style)
            .unwrap_or_else(|| panic!("no {style} accounts"));
        assert_eq!(row.flagged, row.accounts, "{style} under `multi_turn`");
    }
    assert_eq!(ev.false_positives, 0, "no benign account flagged");
}
