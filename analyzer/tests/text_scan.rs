//! The text pass's phrase scan (a compact copy of aho-corasick's DFA in
//! `text.rs`, searched by our own loop) against the crate's own search over
//! the same phrases: on every prompt of a generated log, of the external
//! set (when it is beside the workspace) and of hostile text (phrases run
//! together, overlapping, cut and mixed with other scripts), the reasoning
//! languages, probe flag and topic are exactly what the crate's
//! leftmost-longest matches give. The prompts are also analysed five at a
//! time (`TextAnalyzer::analyze_batch`: two phrase scans interleaved, each
//! lane taking the next prompt when its own ends), which must give every
//! prompt's features whole, as `analyze` gives them one by one.

use aho_corasick::{AhoCorasick, MatchKind};
use analyzer::text::{self, Kind, TAXONOMY, TextAnalyzer, TextCache, TextFeatures, TextScratch};
use proptest::prelude::*;

/// The phrase matching as the crate does it, over the prompt lower-cased
/// by the standard library.
struct Reference {
    ac: AhoCorasick,
    kinds: Vec<Kind>,
}

impl Reference {
    fn new() -> Self {
        let phrases = text::phrases();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(phrases.iter().map(|p| p.0))
            .unwrap();
        Reference {
            ac,
            kinds: phrases.iter().map(|p| p.1).collect(),
        }
    }

    /// (reasoning languages, probe, topic) of `prompt`.
    fn features(&self, prompt: &str) -> (u8, bool, u8) {
        let hay = prompt.to_lowercase();
        let (mut langs, mut probe) = (0u8, false);
        let mut topics = [0u16; TAXONOMY.len()];
        for m in self.ac.find_iter(&hay) {
            match self.kinds[m.pattern().as_usize()] {
                Kind::Reasoning(l) => langs |= 1 << l,
                Kind::Probe => probe = true,
                Kind::Topic(t) => {
                    let before = hay[..m.start()].chars().next_back();
                    if before.is_none_or(|c| !c.is_alphanumeric()) {
                        topics[t as usize] += 1;
                    }
                }
            }
        }
        let (best, n) = topics
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, usize::MAX - i))
            .unwrap();
        (langs, probe, if *n > 0 { best as u8 + 1 } else { 0 })
    }
}

/// Checks prompts; counts those with a reasoning phrase, a probe, a topic.
struct Checker {
    text: TextAnalyzer,
    scratch: TextScratch,
    reference: Reference,
    seen: [usize; 3],
    /// The prompts checked since the last batch, and their features.
    batch: Vec<(String, TextFeatures)>,
    cache: TextCache,
}

impl Checker {
    fn new() -> Self {
        Checker {
            text: TextAnalyzer::new().unwrap(),
            scratch: TextScratch::default(),
            reference: Reference::new(),
            seen: [0; 3],
            batch: Vec::new(),
            cache: TextCache::default(),
        }
    }

    fn check(&mut self, prompt: &str) {
        let f = self.text.analyze(prompt, &mut self.scratch);
        let want = self.reference.features(prompt);
        assert_eq!(
            (f.reasoning_langs, f.probe, f.topic),
            want,
            "prompt {prompt:?}"
        );
        self.seen[0] += usize::from(want.0 != 0);
        self.seen[1] += usize::from(want.1);
        self.seen[2] += usize::from(want.2 != 0);
        self.batch.push((prompt.to_string(), f));
        if self.batch.len() == 5 {
            let prompts: Vec<(&str, u64)> = self
                .batch
                .iter()
                .map(|(p, f)| (p.as_str(), f.prompt_hash))
                .collect();
            let got = self
                .text
                .analyze_batch(&prompts, &mut self.scratch, &mut self.cache);
            let want: Vec<TextFeatures> = self.batch.iter().map(|b| b.1).collect();
            assert_eq!(got, want, "batch {prompts:?}");
            self.batch.clear();
        }
    }

    /// Every prompt of JSON Lines `text`, every `step`th line.
    fn check_log(&mut self, text: &str, step: usize) -> usize {
        let mut n = 0;
        for line in text.lines().step_by(step) {
            if let Ok(row) = analyzer::row::from_json_line(line)
                && let Some(p) = &row.prompt
            {
                self.check(p);
                n += 1;
            }
        }
        n
    }
}

#[test]
fn phrase_scan_agrees_with_aho_corasick_on_generated_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures::logs::LogSpec {
        seed: 11,
        accounts: 80,
        days: 1,
        ..Default::default()
    };
    let s = fixtures::logs::generate(&spec, dir.path()).unwrap();
    let mut c = Checker::new();
    let n = c.check_log(&std::fs::read_to_string(s.requests).unwrap(), 1);
    assert!(n > 1000, "{n} prompts");
    // Not vacuous: each kind of phrase occurs.
    assert!(c.seen.iter().all(|&k| k > 0), "{:?} of {n}", c.seen);
}

#[test]
fn phrase_scan_agrees_with_aho_corasick_on_the_external_set() {
    let Some(text) = crate::logs::external_requests() else {
        return;
    };
    let mut c = Checker::new();
    // Every 8th row (~50,000 spread over the whole set).
    let n = c.check_log(&text, 8);
    assert!(n > 20_000, "{n} prompts");
    assert!(c.seen.iter().all(|&k| k > 0), "{:?} of {n}", c.seen);
}

/// Pieces of hostile prompts: phrases whole and cut, what separates words,
/// capitals and other scripts (whose lower case changes lengths).
fn pieces() -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for (p, _) in text::phrases() {
        v.push(p.to_string());
        v.push(p.to_uppercase());
        let cut: String = p.chars().take(p.chars().count() / 2 + 1).collect();
        v.push(cut.clone());
        v.push(p.chars().skip(cut.chars().count() - 1).collect());
    }
    for s in [
        " ", "", "-", "'", "_", "<", ">", "+", "é", "Σ", "ΣΑ", "İ", "ß", "x", "7", ".", "\n", "😀",
    ] {
        v.push(s.to_string());
    }
    v
}

#[test]
fn phrase_scan_agrees_with_aho_corasick_on_phrases_run_together() {
    let mut c = Checker::new();
    let phrases = text::phrases();
    // Each phrase followed by each other (no separator and one space):
    // every overlap of a phrase's end with another's start.
    for (a, _) in &phrases {
        for (b, _) in &phrases {
            c.check(&format!("{a}{b}"));
            c.check(&format!("{a} {b}x"));
        }
    }
    assert!(c.seen.iter().all(|&k| k > 0), "{:?}", c.seen);
}

/// One checker and the pieces for every case.
fn shared() -> &'static std::sync::Mutex<(Checker, Vec<String>)> {
    static SHARED: std::sync::OnceLock<std::sync::Mutex<(Checker, Vec<String>)>> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| std::sync::Mutex::new((Checker::new(), pieces())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn phrase_scan_agrees_with_aho_corasick_on_hostile_mixes(
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..16)
    ) {
        let mut guard = shared().lock().unwrap_or_else(|e| e.into_inner());
        let (c, pieces) = &mut *guard;
        let prompt: String = picks.iter().map(|i| i.get(pieces).as_str()).collect();
        c.check(&prompt);
    }
}
