//! Prompt text features: a template skeleton (template mining by masking
//! content words), exact prompt hashes, reasoning-trace elicitation and
//! model-identity probes in several languages, and a capability-taxonomy topic —
//! all from one Aho-Corasick pass over the prompt.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64;

mod ascii_words;

use ascii_words::WordSet;
pub use ascii_words::WordSetError;

/// Languages of the reasoning-elicitation phrase sets (bit i of a mask).
pub const LANGUAGES: [&str; 8] = ["en", "de", "fr", "es", "pt", "zh", "ja", "ru"];

/// Reasoning-trace elicitation phrases, by language index of [`LANGUAGES`].
const REASONING: &[(usize, &[&str])] = &[
    (
        0,
        &[
            "step by step",
            "step-by-step",
            "chain of thought",
            "show your reasoning",
            "your full reasoning",
            "your reasoning",
            "reasoning process",
            "show your work",
            "think out loud",
            "reasoning out loud",
            "<think>",
            "intermediate step",
            "explain your thinking",
            "thought process",
            "let's think",
            "walk me through your reasoning",
        ],
    ),
    (
        1,
        &[
            "schritt für schritt",
            "denkprozess",
            "gedankengang",
            "zeige deine überlegungen",
            "denke laut",
        ],
    ),
    (
        2,
        &[
            "étape par étape",
            "raisonnement",
            "montre ton travail",
            "chaîne de pensée",
        ],
    ),
    (
        3,
        &[
            "paso a paso",
            "razonamiento",
            "cadena de pensamiento",
            "muestra tu trabajo",
        ],
    ),
    (4, &["passo a passo", "raciocínio", "cadeia de pensamento"]),
    (5, &["逐步", "一步一步", "推理过程", "思维链", "思考过程"]),
    (
        6,
        &["ステップバイステップ", "段階的に", "思考過程", "推論過程"],
    ),
    (
        7,
        &[
            "шаг за шагом",
            "пошагово",
            "ход рассуждений",
            "цепочка рассуждений",
        ],
    ),
];

/// Model-identity probes (any language).
const PROBES: &[&str] = &[
    "what model are you",
    "which model are you",
    "what llm are you",
    "who trained you",
    "who created you",
    "who made you",
    "your model name",
    "model name and version",
    "your knowledge cutoff",
    "repeat your system prompt",
    "are you gpt",
    "are you claude",
    "are you gemini",
    "which company trained you",
    "what is your architecture",
    "welches modell bist du",
    "wer hat dich trainiert",
    "quel modèle es-tu",
    "qui t'a entraîné",
    "qué modelo eres",
    "quién te entrenó",
    "你是哪个模型",
    "你是什么模型",
    "谁训练了你",
    "あなたはどのモデル",
    "какая ты модель",
    "кто тебя обучил",
];

/// Capability taxonomy: category name and keywords (lower case; matched
/// case-insensitively anywhere in the prompt).
pub const TAXONOMY: &[(&str, &[&str])] = &[
    (
        "math",
        &[
            "equation",
            "formula",
            "theorem",
            "matrix",
            "integral",
            "integration",
            "derivative",
            "calculus",
            "algebra",
            "prime",
            "probability",
            "geometry",
            "eigen",
            "factoriz",
            "taylor series",
            "arithmetic",
            "polynomial",
            "statistic",
        ],
    ),
    (
        "physics",
        &[
            "newton",
            "relativity",
            "momentum",
            "quantum",
            "photoelectric",
            "maxwell",
            "entropy",
            "projectile",
            "circuit",
            "gravit",
            "velocity",
            "electromagnet",
            "particle",
            "kinetic energy",
        ],
    ),
    (
        "chemistry",
        &[
            "chemi",
            "molecul",
            "covalent",
            "reaction",
            "titration",
            "periodic table",
            "oxidation",
            "molar",
            "polymer",
            "electrochem",
            "isotope",
            "catalyst",
        ],
    ),
    (
        "biology",
        &[
            "dna",
            "photosynthesis",
            "immune",
            "cell membrane",
            "natural selection",
            "protein",
            "mitosis",
            "meiosis",
            "krebs",
            "gene expression",
            "genetic",
            "genome",
            "neuron",
            "evolution",
            "enzyme",
        ],
    ),
    (
        "medicine",
        &[
            "symptom",
            "diabetes",
            "vaccine",
            "hypertension",
            "antibiotic",
            "pneumonia",
            "drug",
            "sepsis",
            "asthma",
            "statin",
            "blood",
            "clinical",
            "diagnos",
            "patient",
        ],
    ),
    (
        "law",
        &[
            "contract",
            "amendment",
            "copyright",
            "tort",
            "gdpr",
            "criminal",
            "mens rea",
            "patent",
            "discrimination law",
            "precedent",
            "liability",
            "court",
            "statute",
            "legal",
        ],
    ),
    (
        "finance",
        &[
            "cash flow",
            "valuation",
            "bond",
            "options pricing",
            "black-scholes",
            "portfolio",
            "interest rate",
            "compound interest",
            "inflation",
            "balance sheet",
            "accounting",
            "credit",
            "market hypothesis",
            "stock",
            "invest",
        ],
    ),
    (
        "programming",
        &[
            "rust",
            "python",
            "sql",
            "javascript",
            "c++",
            "recursion",
            "unit test",
            "async",
            "regular expression",
            "hash map",
            "binary search",
            "rest api",
            "compile",
            "function",
            "borrow checker",
            "refactor",
        ],
    ),
    (
        "history",
        &[
            "world war",
            "empire",
            "revolution",
            "cold war",
            "restoration",
            "silk road",
            "printing press",
            "decoloni",
            "civil rights",
            "dynasty",
            "medieval",
            "ancient",
        ],
    ),
    (
        "literature",
        &[
            "gatsby",
            "sonnet",
            "narrator",
            "hamlet",
            "magical realism",
            "hero's journey",
            "woolf",
            "satire",
            "poetic",
            "novel",
            "poem",
            "poetry",
            "shakespeare",
        ],
    ),
    (
        "economics",
        &[
            "supply and demand",
            "monetary",
            "comparative advantage",
            "nash equilibrium",
            "game theory",
            "externalit",
            "gdp",
            "elasticity",
            "labor market",
            "tariff",
            "behavioral economics",
            "recession",
        ],
    ),
    (
        "philosophy",
        &[
            "kant",
            "utilitarian",
            "trolley problem",
            "descartes",
            "free will",
            "plato",
            "existentialism",
            "philosophy",
            "epistemic",
            "social contract",
            "ethics",
            "metaphysic",
        ],
    ),
    (
        "geography",
        &[
            "tectonic",
            "climate",
            "river delta",
            "urbanization",
            "monsoon",
            "glacier",
            "population density",
            "ocean current",
            "desert",
            "volcan",
            "continent",
        ],
    ),
    (
        "psychology",
        &[
            "cognitive",
            "conditioning",
            "working memory",
            "attachment theory",
            "bystander",
            "confirmation bias",
            "mindset",
            "memory consolidation",
            "placebo",
            "motivation",
            "psycholog",
        ],
    ),
    (
        "engineering",
        &[
            "bridge",
            "pid controller",
            "heat exchanger",
            "signal filter",
            "finite element",
            "fatigue",
            "power grid",
            "gear ratio",
            "fluid flow",
            "firmware",
            "load calculation",
        ],
    ),
    (
        "arts",
        &[
            "chord",
            "drawing",
            "color theory",
            "baroque",
            "harmony",
            "film scor",
            "sculpture",
            "jazz",
            "impressionis",
            "rhythm",
            "melody",
            "painting",
        ],
    ),
    (
        "commerce",
        &[
            "product description",
            "customer",
            "billing",
            "invoice",
            "refund",
            "subscription",
            "marketing",
        ],
    ),
];

/// Function words kept in a template skeleton; every other word is a slot.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "about", "into",
    "inside", "over", "under", "and", "or", "but", "if", "then", "than", "so", "as", "is", "are",
    "was", "were", "be", "been", "do", "does", "did", "can", "could", "would", "should", "will",
    "may", "must", "not", "no", "your", "you", "my", "me", "i", "we", "our", "it", "its", "this",
    "that", "these", "those", "there", "here", "what", "which", "who", "why", "how", "when",
    "where", "each", "every", "all", "any", "some", "one", "two", "three", "please", "let", "s",
    "first", "before", "after", "der", "die", "das", "den", "dem", "des", "ein", "eine", "und",
    "oder", "zu", "mit", "von", "für", "ist", "sind", "wie", "was", "warum", "du", "dein", "deine",
    "ich", "le", "la", "les", "un", "une", "de", "du", "et", "ou", "à", "au", "aux", "en", "pour",
    "avec", "est", "sont", "comment", "pourquoi", "ton", "ta", "tes", "je", "el", "los", "las",
    "una", "del", "y", "o", "para", "con", "es", "son", "cómo", "por", "qué", "tu", "tus", "yo",
];

// Every function word has a [`word_key`].
const _: () = {
    let mut i = 0;
    while i < FUNCTION_WORDS.len() {
        assert!(FUNCTION_WORDS[i].len() <= 8);
        i += 1;
    }
};

/// A word of at most 8 bytes as one integer (its bytes little-endian,
/// zero-padded); `None` for longer words, which are never function words.
/// Words hold no zero byte, so distinct words have distinct keys: looking
/// a word up is one integer hash and compare instead of hashing a byte
/// slice and calling `memcmp` (the template skeleton looks up every short
/// word of every prompt).
fn word_key(word: &[u8]) -> Option<u64> {
    let mut b = [0u8; 8];
    b.get_mut(..word.len())?.copy_from_slice(word);
    Some(u64::from_le_bytes(b))
}

/// [`word_key`] of the word of `len` bytes at `at` in `text`, read as one
/// unaligned eight-byte load and masked when eight bytes are there (all
/// but a prompt's last few bytes): the same key without copying a slice
/// of variable length.
fn word_key_at(text: &[u8], at: usize, len: usize) -> Option<u64> {
    if !(1..=8).contains(&len) {
        return None;
    }
    match text.get(at..at + 8) {
        Some(b) => {
            let x = u64::from_le_bytes(b.try_into().ok()?);
            Some(x & (u64::MAX >> (8 * (8 - len))))
        }
        None => word_key(text.get(at..at + len)?),
    }
}

/// [`word_key_at`] with ASCII capitals lower-cased (every other byte,
/// UTF-8 ones too, unchanged): the key of the word as the lower-cased
/// prompt holds it, so an ASCII prompt's skeleton and word sample are cut
/// from the prompt itself, without a lower-cased copy.
fn lower_key_at(text: &[u8], at: usize, len: usize) -> Option<u64> {
    word_key_at(text, at, len).map(ascii_lower8)
}

/// Eight bytes with each ASCII capital lower-cased, all at once: a byte's
/// low seven bits plus 0x3F carry into its high bit when they are at least
/// `A`, plus 0x25 when above `Z` (no carry leaves a byte), and a byte with
/// its own high bit set is no capital.
fn ascii_lower8(x: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let low7 = x & !HIGH;
    let capital = (low7 + ONES * 0x3F) & !(low7 + ONES * 0x25) & !x & HIGH;
    x | (capital >> 2)
}

/// What one prompt says, in a few numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextFeatures {
    /// Hash of the template skeleton (0 when the prompt has too little
    /// fixed structure to call it a template).
    pub template: u64,
    /// Hash of the exact prompt.
    pub prompt_hash: u64,
    /// Bit mask of languages whose reasoning-elicitation phrases matched.
    pub reasoning_langs: u8,
    /// A model-identity probe matched.
    pub probe: bool,
    /// Capability category (index into [`TAXONOMY`] + 1; 0 = none).
    pub topic: u8,
    /// A sample of the prompt's content words (see [`WordSample`]): two
    /// 16-bit word values, the smaller in the low half; 0 = none.
    pub words: u32,
}

/// Content words of at least this many bytes are sampled.
const SAMPLE_MIN_BYTES: usize = 4;

/// One content word in this many is sampled (by its hash, so the same
/// word is sampled in every prompt that has it).
const SAMPLE_RATE: u64 = 8;

/// The content words a prompt shares with its sender's earlier prompts,
/// in four bytes, gathered while the template skeleton cuts the prompt
/// into words: the words (runs of letters, at least [`SAMPLE_MIN_BYTES`]
/// long, not function words) whose [`word_hash`] is 0 modulo
/// [`SAMPLE_RATE`], the two smallest of them as 16-bit values. Sampling
/// by hash is consistent (a word is in the sample of every prompt that
/// holds it, up to the cap of two), so the share of a prompt's sampled
/// words an entity never sent before estimates the share of its content
/// words it never sent before (`features::vocab_novelty`). Written here
/// rather than taken from a crate: it is a hash-sampled set of two words,
/// which no MinHash crate stores in four bytes.
#[derive(Clone, Copy)]
struct WordSample {
    lo: u16,
    hi: u16,
}

impl WordSample {
    const EMPTY: WordSample = WordSample {
        lo: u16::MAX,
        hi: u16::MAX,
    };

    /// Offer a content word of at least [`SAMPLE_MIN_BYTES`] by its
    /// [`word_hash`]; `function_word` is asked only for the one word in
    /// [`SAMPLE_RATE`] that the hash samples.
    fn offer(&mut self, h: u64, function_word: impl FnOnce() -> bool) {
        if !h.is_multiple_of(SAMPLE_RATE) || function_word() {
            return;
        }
        let v = ((h >> 32) as u16).max(1);
        if v < self.lo {
            (self.lo, self.hi) = (v, self.lo);
        } else if v > self.lo && v < self.hi {
            self.hi = v;
        }
    }

    /// The two values in four bytes, the smaller in the low half; 0 = none.
    fn value(self) -> u32 {
        let half = |v: u16| if v == u16::MAX { 0 } else { u32::from(v) };
        half(self.lo) | half(self.hi) << 16
    }

    /// Offer each run of letters of the word of `len` bytes at `at` in
    /// `text` (a word of the skeleton may hold digits, `'` or `_`, which
    /// end a run), `letter` telling letters from those.
    fn offer_runs(
        &mut self,
        text: &[u8],
        at: usize,
        len: usize,
        letter: impl Fn(u8) -> bool,
        function_words: &WordSet,
    ) {
        let mut run = at;
        for i in at..=at + len {
            if text.get(i).is_some_and(|&b| i < at + len && letter(b)) {
                continue;
            }
            let n = i - run;
            if n >= SAMPLE_MIN_BYTES {
                self.offer(word_hash(text, run, n), || {
                    lower_key_at(text, run, n).is_some_and(|k| function_words.contains(k))
                });
            }
            run = i + 1;
        }
    }
}

/// A cheap hash of the word of `len` bytes at `at` in `text`: one folded
/// multiply (the 128-bit product's halves XORed, as wyhash and foldhash
/// mix) per eight bytes, read as the [`lower_key_at`] of each eight-byte
/// piece (so a word hashes as its lower case: the same whether cut from an
/// ASCII prompt or from a lower-cased copy). Unambiguous because words
/// hold no zero byte. Written by hand:
/// the skeleton has already cut the word and loaded its first eight bytes,
/// and a hasher crate's call per word (xxh3 before) cost a tenth of the
/// whole analysis; a hand-written mix also keeps the sampled words, and so
/// the fitted model's input, fixed whatever version of a crate is built.
fn word_hash(text: &[u8], at: usize, len: usize) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x2D35_8DCC_AA6C_78A5;
    let mut i = 0;
    while i < len {
        let piece = lower_key_at(text, at + i, (len - i).min(8)).unwrap_or(0);
        let p = u128::from(h ^ piece) * u128::from(K);
        h = (p as u64) ^ ((p >> 64) as u64);
        i += 8;
    }
    h
}

/// What a phrase of the phrase sets stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reasoning-trace elicitation, in the language of this index of
    /// [`LANGUAGES`].
    Reasoning(u8),
    /// A model-identity probe.
    Probe,
    /// A keyword of this category of [`TAXONOMY`] (counted only where it
    /// starts a word).
    Topic(u8),
}

/// Every phrase the text pass looks for (lower case), with what it stands
/// for, in the automaton's pattern order.
pub fn phrases() -> Vec<(&'static str, Kind)> {
    let mut phrases: Vec<(&'static str, Kind)> = Vec::new();
    for (lang, list) in REASONING {
        for p in *list {
            phrases.push((p, Kind::Reasoning(*lang as u8)));
        }
    }
    for p in PROBES {
        phrases.push((p, Kind::Probe));
    }
    for (i, (_, words)) in TAXONOMY.iter().enumerate() {
        for w in *words {
            phrases.push((w, Kind::Topic(i as u8)));
        }
    }
    phrases
}

/// Features of recently seen prompts, by prompt hash (direct-mapped: a
/// new prompt replaces the one in its slot). Two different prompts with the
/// same 64-bit xxh3 hash would share features; over 10^8 prompts the chance
/// of any such pair is below 10^-3.
pub struct TextCache {
    slots: Vec<TextFeatures>,
}

impl Default for TextCache {
    /// 65,536 slots (1.5 MiB).
    fn default() -> Self {
        TextCache {
            slots: vec![TextFeatures::default(); 1 << 16],
        }
    }
}

impl TextCache {
    /// The features of `prompt` if it was seen recently, else its hash
    /// (for [`TextAnalyzer::analyze_miss`] or
    /// [`TextAnalyzer::analyze_batch`]).
    pub fn lookup(&self, prompt: &str) -> Result<TextFeatures, u64> {
        let hash = Self::hash(prompt);
        self.get(hash).ok_or(hash)
    }

    /// The hash a prompt is kept under (its [`TextFeatures::prompt_hash`]).
    pub fn hash(prompt: &str) -> u64 {
        xxh3_64(prompt.as_bytes())
    }

    /// The features of the prompt of this [`TextCache::hash`] if it was
    /// seen recently. Most lookups miss the CPU's caches (the table is
    /// 1.5 MiB): a loop of lookups alone overlaps those misses.
    pub fn get(&self, hash: u64) -> Option<TextFeatures> {
        self.slots
            .get(self.slot(hash))
            .filter(|f| f.prompt_hash == hash)
            .copied()
    }

    /// Keep `f` (replacing whatever was in its slot).
    fn put(&mut self, f: TextFeatures) {
        let slot = self.slot(f.prompt_hash);
        if let Some(s) = self.slots.get_mut(slot) {
            *s = f;
        }
    }

    fn slot(&self, hash: u64) -> usize {
        (hash as usize) & (self.slots.len() - 1)
    }
}

/// Buffers reused between prompts by one thread (no allocation per prompt
/// for ASCII text).
#[derive(Default)]
pub struct TextScratch {
    /// A prompt in other scripts lower-cased: what the automaton scans
    /// (an ASCII prompt is scanned as it is).
    lower: String,
    /// The two lanes of [`TextAnalyzer::analyze_batch`].
    lanes: [Lane; 2],
    /// The template skeleton being built.
    skeleton: Vec<u8>,
}

/// The compiled phrase sets and word lists.
pub struct TextAnalyzer {
    /// Every phrase: for prompts in other scripts.
    all: Phrases,
    /// The ASCII phrases only: for ASCII prompts, where no other phrase can
    /// match (so the matches are the same), in a much smaller table.
    ascii: Phrases,
    /// [`word_key`]s of the function words.
    function_words: WordSet,
}

/// Building the automaton failed (only with absurd pattern sets).
#[derive(Debug, thiserror::Error)]
pub enum PhraseSetError {
    /// The automaton could not be built.
    #[error("building phrase sets: {0}")]
    Build(#[from] aho_corasick::BuildError),
    /// The automaton has no unanchored start (cannot happen: it is built
    /// for unanchored searches).
    #[error("phrase sets: {0}")]
    Start(#[from] aho_corasick::MatchError),
    /// The automaton is too large for the compact table (more than
    /// 2^32 / 256 states; ours have a few thousand).
    #[error("phrase sets: automaton too large ({0} states)")]
    TooLarge(usize),
    /// A phrase that is not in lower case would never match the
    /// lower-cased prompts the automaton scans.
    #[error("phrase {0:?} is not in lower case")]
    NotLowerCase(&'static str),
    /// The function words do not fit their set (cannot happen with the
    /// fixed list: a test builds it).
    #[error(transparent)]
    FunctionWords(#[from] WordSetError),
}

/// One automaton over lower-cased text and what each of its patterns means.
struct Phrases {
    dfa: Compact,
    kinds: Vec<Kind>,
}

impl Phrases {
    /// A case-sensitive DFA of the lower-case phrases whose compact copy
    /// reads each ASCII capital as its lower case ([`Compact::of`]): over
    /// an ASCII prompt itself, the matches a case-sensitive scan of its
    /// lower-cased copy gives (lower-casing ASCII keeps every byte offset),
    /// without making the copy; over a prompt in other scripts, lower-cased
    /// first (Unicode lower case), the same as before folding (the copy
    /// holds no ASCII capital). Half the transition table of an
    /// ASCII-case-insensitive automaton. The scan is bound by the latency
    /// of its table loads, hence the compact copy and the separate ASCII
    /// set.
    fn new(phrases: &[(&str, Kind)]) -> Result<Self, PhraseSetError> {
        let dfa = DFA::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(phrases.iter().map(|p| p.0))?;
        Ok(Phrases {
            dfa: Compact::of(&dfa)?,
            kinds: phrases.iter().map(|p| p.1).collect(),
        })
    }
}

/// A compact copy of an aho-corasick DFA, searched as the crate searches
/// it (leftmost-longest, non-overlapping), so the matches are the crate's.
///
/// Written by hand because the crate has no dense enough form: its DFA
/// gives each state a row of a power of two of 4-byte entries (64 here,
/// for the ~40 byte ranges the phrases tell apart: 256 bytes a state), so
/// the states a scan of English text keeps visiting do not fit in the L1
/// cache and each byte waits for an L2 load. Here a state's row has one
/// entry per column of bytes that no state tells apart (33 for the ASCII
/// phrases), and the states are numbered breadth-first, the often visited
/// shallow ones together.
struct Compact {
    /// Byte → column.
    column: [u8; 256],
    /// Next state by `state + column`, states as the index of their row
    /// (premultiplied by the row length).
    next: Vec<u32>,
    /// Start of an unanchored search.
    start: u32,
    /// The dead state (the search stops): row 0.
    /// States up to this one are dead or match states.
    max_special: u32,
    /// (pattern, length) of each match state, by row number (`state /
    /// row length`; the dead state's entry is unused).
    matched: Vec<(u32, u32)>,
    /// Columns a row.
    stride: u32,
}

impl Compact {
    /// Copy `dfa` (every state reachable from its unanchored start).
    fn of(dfa: &DFA) -> Result<Compact, PhraseSetError> {
        let start = dfa.start_state(Anchored::No)?;
        // Breadth-first from the start; `to[256 * i + b]`: the state (by
        // breadth-first index) state `i` goes to on byte `b` (dead states
        // go nowhere: the search stops there).
        let mut order: Vec<StateID> = vec![start];
        let mut index: FxHashMap<StateID, u32> = FxHashMap::default();
        index.insert(start, 0);
        let mut to: Vec<u32> = Vec::new();
        let mut i = 0;
        while let Some(&sid) = order.get(i) {
            i += 1;
            for b in 0..=255u8 {
                let n = if dfa.is_dead(sid) {
                    sid
                } else {
                    dfa.next_state(Anchored::No, sid, b)
                };
                let next = order.len() as u32;
                let k = *index.entry(n).or_insert_with(|| {
                    order.push(n);
                    next
                });
                to.push(k);
            }
        }
        // Rows: dead states (all one row, 0), then match states, then the
        // rest, each group breadth-first.
        let mut row = vec![0u32; order.len()];
        let mut rows: Vec<usize> = vec![0]; // breadth-first index by row (row 0 unused)
        let mut max_special = 0u32;
        for matching in [true, false] {
            for (k, &s) in order.iter().enumerate() {
                if !dfa.is_dead(s) && dfa.is_match(s) == matching {
                    row[k] = rows.len() as u32;
                    if matching {
                        max_special = rows.len() as u32;
                    }
                    rows.push(k);
                }
            }
        }
        // Columns: bytes whose transitions agree in every live state.
        let mut columns: FxHashMap<Vec<u32>, u8> = FxHashMap::default();
        let mut column = [0u8; 256];
        for b in 0..256 {
            let col: Vec<u32> = rows[1..]
                .iter()
                .map(|&k| row[to[256 * k + b] as usize])
                .collect();
            let n = columns.len() as u8;
            column[b] = *columns.entry(col).or_insert(n);
        }
        let stride = columns.len().max(1);
        if rows.len().saturating_mul(stride) > u32::MAX as usize {
            return Err(PhraseSetError::TooLarge(rows.len()));
        }
        let stride32 = stride as u32;
        let mut next = vec![0u32; rows.len() * stride];
        let mut matched = vec![(0u32, 0u32); rows.len()];
        for (r, &k) in rows.iter().enumerate().skip(1) {
            for b in 0..256 {
                next[r * stride + column[b] as usize] = row[to[256 * k + b] as usize] * stride32;
            }
            if dfa.is_match(order[k]) {
                let p = dfa.match_pattern(order[k], 0);
                matched[r] = (p.as_u32(), dfa.pattern_len(p) as u32);
            }
        }
        // ASCII capitals read as their lower case (once every row is
        // filled from the automaton's own transitions): what a scan of the
        // lower-cased text reads.
        for b in b'A'..=b'Z' {
            column[b as usize] = column[b.to_ascii_lowercase() as usize];
        }
        Ok(Compact {
            column,
            next,
            start: row[0] * stride32,
            max_special: max_special * stride32,
            matched,
            stride: stride32,
        })
    }

    /// Each leftmost-longest match in `hay`, left to right and not
    /// overlapping: `f(pattern, start)`. The crate's search loop
    /// (`try_find_fwd` without prefilter) run from the end of each match.
    fn each_match(&self, hay: &[u8], mut f: impl FnMut(usize, usize)) {
        Search::new(self, hay).run(self, hay, &mut f);
    }

    /// The match of state `sid` (if it is a match state) ending at `end`:
    /// (pattern, start, end).
    fn match_at(&self, sid: u32, end: usize) -> Option<(usize, usize, usize)> {
        if sid == 0 || sid > self.max_special {
            return None;
        }
        let (p, len) = self.matched[(sid / self.stride) as usize];
        Some((p as usize, end - len as usize, end))
    }
}

/// Where one leftmost-longest search of a [`Compact`] automaton stands
/// (the crate's search loop, `try_find_fwd` without prefilter, run again
/// from the end of each match), so that two searches can be interleaved:
/// searching from `at`, the state `sid` after `hay[..i]`, the longest
/// match seen so far from `at`.
#[derive(Default)]
struct Search {
    at: usize,
    i: usize,
    sid: u32,
    found: Option<(usize, usize, usize)>,
    /// No match is left to find.
    done: bool,
}

impl Search {
    fn new(dfa: &Compact, hay: &[u8]) -> Search {
        Search {
            at: 0,
            i: 0,
            sid: dfa.start,
            found: dfa.match_at(dfa.start, 0),
            done: hay.is_empty(),
        }
    }

    /// Search on alone to the end of `hay`: `f(pattern, start)` of each
    /// match.
    fn run(&mut self, dfa: &Compact, hay: &[u8], f: &mut impl FnMut(usize, usize)) {
        while !self.done {
            let mut sid = self.sid;
            let mut k = 0;
            for &b in &hay[self.i..] {
                sid = dfa.next[(sid + u32::from(dfa.column[b as usize])) as usize];
                k += 1;
                if sid <= dfa.max_special {
                    break;
                }
            }
            self.moved(dfa, hay, sid, k, f);
        }
    }

    /// After `steps` bytes read (at least one), ending in state `sid`: a
    /// match state is remembered; at a dead state or the end of `hay` the
    /// match found (if any) is reported and the search starts again after
    /// it.
    #[inline(always)]
    fn moved(
        &mut self,
        dfa: &Compact,
        hay: &[u8],
        sid: u32,
        steps: usize,
        f: &mut impl FnMut(usize, usize),
    ) {
        self.sid = sid;
        self.i += steps;
        if sid <= dfa.max_special {
            if sid == 0 {
                self.restart(dfa, hay, f);
                return;
            }
            self.found = dfa.match_at(sid, self.i);
        }
        if self.i >= hay.len() {
            self.restart(dfa, hay, f);
        }
    }

    fn restart(&mut self, dfa: &Compact, hay: &[u8], f: &mut impl FnMut(usize, usize)) {
        let Some((pattern, start, end)) = self.found.take() else {
            self.done = true;
            return;
        };
        f(pattern, start);
        // No phrase is empty: a match ends past where its search began.
        self.at = end.max(self.at + 1);
        self.done = self.at >= hay.len();
        self.i = self.at;
        self.sid = dfa.start;
        self.found = dfa.match_at(dfa.start, self.at);
    }
}

/// Minimum fixed (non-slot) tokens for a skeleton to count as a template.
const MIN_FIXED_TOKENS: usize = 4;

/// Whether a character belongs to a word of a template skeleton.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '_'
}

/// [`is_word_char`] (and whether it is a letter) and
/// [`char::is_whitespace`] of every ASCII byte, as a table: the ASCII
/// skeleton's inner loop is one lookup per byte.
const ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8 as char;
        if c.is_ascii_alphabetic() {
            t[b] = WORD | LETTER;
        } else if c.is_ascii_digit() || c == '\'' || c == '_' {
            t[b] = WORD;
        } else if c.is_whitespace() {
            t[b] = SPACE;
        }
        b += 1;
    }
    t
};
const WORD: u8 = 1;
const SPACE: u8 = 2;
/// With [`WORD`]: a letter (the sampled content words are runs of them).
const LETTER: u8 = 4;

/// The [`ASCII_CLASS`] of an ASCII byte.
fn class(b: u8) -> u8 {
    ASCII_CLASS.get(b as usize).copied().unwrap_or(0)
}

impl TextAnalyzer {
    /// Compile the phrase sets.
    pub fn new() -> Result<Self, PhraseSetError> {
        let phrases = phrases();
        if let Some((p, _)) = phrases.iter().find(|(p, _)| p.to_lowercase() != *p) {
            return Err(PhraseSetError::NotLowerCase(p));
        }
        let ascii: Vec<(&str, Kind)> = phrases.iter().copied().filter(|p| p.0.is_ascii()).collect();
        Ok(TextAnalyzer {
            all: Phrases::new(&phrases)?,
            ascii: Phrases::new(&ascii)?,
            function_words: WordSet::new(
                &FUNCTION_WORDS
                    .iter()
                    .filter_map(|w| word_key(w.as_bytes()))
                    .collect::<Vec<u64>>(),
            )?,
        })
    }

    /// Features of one prompt. `scratch` is reused between calls.
    pub fn analyze(&self, prompt: &str, scratch: &mut TextScratch) -> TextFeatures {
        self.analyze_hashed(prompt, xxh3_64(prompt.as_bytes()), scratch)
    }

    /// [`TextAnalyzer::analyze`], reusing the features of a prompt seen
    /// recently (logs repeat prompts: retries, benchmark runs, one question
    /// to a whole class — 38 % of the generated prompts are repeats).
    pub fn analyze_cached(
        &self,
        prompt: &str,
        scratch: &mut TextScratch,
        cache: &mut TextCache,
    ) -> TextFeatures {
        match cache.lookup(prompt) {
            Ok(hit) => hit,
            Err(hash) => self.analyze_miss(prompt, hash, scratch, cache),
        }
    }

    /// The features of a prompt not in the cache (`hash`: its hash, as
    /// [`TextCache::lookup`] gave it), put in `cache`.
    pub fn analyze_miss(
        &self,
        prompt: &str,
        hash: u64,
        scratch: &mut TextScratch,
        cache: &mut TextCache,
    ) -> TextFeatures {
        let f = self.analyze_hashed(prompt, hash, scratch);
        cache.put(f);
        f
    }

    fn analyze_hashed(&self, prompt: &str, hash: u64, scratch: &mut TextScratch) -> TextFeatures {
        let (hay, ascii) = hay_of(prompt, &mut scratch.lower);
        let phrases = self.phrases(ascii);
        let mut found = Found::default();
        phrases
            .dfa
            .each_match(hay.as_bytes(), |p, at| found.note(phrases, hay, p, at));
        self.finish(prompt, hash, ascii, hay, found, &mut scratch.skeleton)
    }

    /// The features of prompts not in the cache (each with its hash, as
    /// [`TextCache::lookup`] gave it), in order, each as
    /// [`TextAnalyzer::analyze`] gives it; all are put in `cache`.
    ///
    /// The phrase scans of the ASCII prompts run in two lanes at once, a
    /// byte of each in turn, each lane taking the next prompt as soon as
    /// its own is done: the scan of one text is one chain of dependent
    /// table loads (bound by their latency), so two independent chains
    /// in one loop overlap.
    pub fn analyze_batch(
        &self,
        prompts: &[(&str, u64)],
        scratch: &mut TextScratch,
        cache: &mut TextCache,
    ) -> Vec<TextFeatures> {
        let mut out = vec![TextFeatures::default(); prompts.len()];
        let [a, b] = &mut scratch.lanes;
        let mut next = 0;
        let mut live_a = a.take(self, prompts, &mut next, &mut out, &mut scratch.skeleton);
        let mut live_b = b.take(self, prompts, &mut next, &mut out, &mut scratch.skeleton);
        while live_a && live_b {
            // Both scans a byte at a time (states in registers) until
            // either reaches a dead or match state or the end of its text;
            // both take the same number of steps (at least one: each has
            // a byte left).
            let (da, db) = (&self.phrases(a.ascii).dfa, &self.phrases(b.ascii).dfa);
            let (ha, hb) = (a.hay(prompts).as_bytes(), b.hay(prompts).as_bytes());
            let steps = (ha.len() - a.search.i).min(hb.len() - b.search.i);
            let (mut x, mut y) = (a.search.sid, b.search.sid);
            let mut k = 0;
            for (&ba, &bb) in ha[a.search.i..a.search.i + steps]
                .iter()
                .zip(&hb[b.search.i..b.search.i + steps])
            {
                x = da.next[(x + u32::from(da.column[ba as usize])) as usize];
                y = db.next[(y + u32::from(db.column[bb as usize])) as usize];
                k += 1;
                if x <= da.max_special || y <= db.max_special {
                    break;
                }
            }
            if !a.moved(self, prompts, x, k) {
                live_a = a.take(self, prompts, &mut next, &mut out, &mut scratch.skeleton);
            }
            if !b.moved(self, prompts, y, k) {
                live_b = b.take(self, prompts, &mut next, &mut out, &mut scratch.skeleton);
            }
        }
        for lane in [a, b] {
            while lane.k.is_some() {
                lane.run(self, prompts);
                lane.take(self, prompts, &mut next, &mut out, &mut scratch.skeleton);
            }
        }
        for f in &out {
            cache.put(*f);
        }
        out
    }

    /// The phrase set for an ASCII prompt or one in other scripts.
    fn phrases(&self, ascii: bool) -> &Phrases {
        if ascii { &self.ascii } else { &self.all }
    }

    /// A prompt's features from its phrase matches: its topic, and its
    /// template skeleton and word sample, cut from `hay` (what was scanned:
    /// the prompt itself) when it is ASCII.
    fn finish(
        &self,
        prompt: &str,
        hash: u64,
        ascii: bool,
        hay: &str,
        found: Found,
        out: &mut Vec<u8>,
    ) -> TextFeatures {
        let mut f = TextFeatures {
            prompt_hash: hash,
            reasoning_langs: found.reasoning_langs,
            probe: found.probe,
            ..TextFeatures::default()
        };
        let (best, n) = found
            .topics
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, usize::MAX - i))
            .unwrap_or((0, &0));
        if *n > 0 {
            f.topic = best as u8 + 1;
        }
        let mut sample = WordSample::EMPTY;
        let fixed = if ascii {
            self.skeleton_ascii(hay.as_bytes(), out, &mut sample)
        } else {
            self.skeleton(prompt, out, &mut sample)
        };
        f.words = sample.value();
        f.template = if fixed < MIN_FIXED_TOKENS {
            0
        } else {
            xxh3_64(out).max(1)
        };
        f
    }

    /// Template mining by masking: function words and punctuation are kept,
    /// every run of other words (and numbers) becomes one `*` slot. Prompts
    /// made from one template with different slot values share a skeleton.
    /// Each word is lower-cased straight into `out` and taken back out when
    /// it is a slot: no allocation per word. The runs of letters of each
    /// word are offered to `sample` as they end. Returns the number of
    /// fixed tokens.
    fn skeleton(&self, prompt: &str, out: &mut Vec<u8>, sample: &mut WordSample) -> usize {
        out.clear();
        let mut fixed = 0usize;
        let mut last_slot = false;
        // Start of the word being read in `out`, if any, and of its run of
        // letters being read, if any.
        let mut word: Option<usize> = None;
        let mut run: Option<usize> = None;
        let mut utf8 = [0u8; 4];
        for c in prompt.chars() {
            if c.is_ascii() {
                // ASCII in a prompt of another script (most of the bytes
                // of many): the byte table and ASCII lower case give the
                // same as the Unicode functions below.
                let b = c as u8;
                let class = class(b);
                if class & WORD != 0 {
                    word.get_or_insert(out.len());
                    if class & LETTER != 0 {
                        run.get_or_insert(out.len());
                    } else if let Some(r) = run.take() {
                        self.offer_run(out, r, sample);
                    }
                    out.push(b.to_ascii_lowercase());
                    continue;
                }
                if class == SPACE && word.is_none() {
                    continue;
                }
            }
            if is_word_char(c) {
                word.get_or_insert(out.len());
                if c.is_alphabetic() {
                    run.get_or_insert(out.len());
                } else if let Some(r) = run.take() {
                    self.offer_run(out, r, sample);
                }
                for l in c.to_lowercase() {
                    out.extend_from_slice(l.encode_utf8(&mut utf8).as_bytes());
                }
            } else {
                if let Some(r) = run.take() {
                    self.offer_run(out, r, sample);
                }
                if let Some(at) = word.take() {
                    let keep = self.is_function_word(&out[at..]);
                    if !keep {
                        out.truncate(at);
                    }
                    self.end_word(keep, out, &mut fixed, &mut last_slot);
                }
                if !c.is_whitespace() {
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                    out.push(b' ');
                    fixed += 1;
                    last_slot = false;
                }
            }
        }
        if let Some(r) = run.take() {
            self.offer_run(out, r, sample);
        }
        if let Some(at) = word.take() {
            let keep = self.is_function_word(&out[at..]);
            if !keep {
                out.truncate(at);
            }
            self.end_word(keep, out, &mut fixed, &mut last_slot);
        }
        fixed
    }

    /// Offer the run of letters from `at` to the end of `out` to `sample`.
    fn offer_run(&self, out: &[u8], at: usize, sample: &mut WordSample) {
        let len = out.len() - at;
        if len >= SAMPLE_MIN_BYTES {
            sample.offer(word_hash(out, at, len), || {
                self.is_function_word(&out[at..])
            });
        }
    }

    /// [`TextAnalyzer::skeleton`] of an ASCII prompt: the same skeleton,
    /// but a word is copied only when it is short enough to be a function
    /// word (most bytes are in slots), lower-cased eight bytes at once as
    /// it is read ([`lower_key_at`]; capitals and lower case are one class
    /// of byte). Content words are offered to `sample` as they are cut.
    fn skeleton_ascii(&self, text: &[u8], out: &mut Vec<u8>, sample: &mut WordSample) -> usize {
        out.clear();
        let mut fixed = 0usize;
        let mut last_slot = false;
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            let c = class(b);
            if c & WORD != 0 {
                // The word's length, and whether every byte is a letter.
                let (len, letters) = ascii_words::word_at(text, i, class);
                let key = lower_key_at(text, i, len);
                let keep = key.is_some_and(|k| self.function_words.contains(k));
                if letters {
                    // One run of letters (most words): its function-word
                    // test is `keep`, already made.
                    if !keep && len >= SAMPLE_MIN_BYTES {
                        sample.offer(word_hash(text, i, len), || false);
                    }
                } else if len >= SAMPLE_MIN_BYTES {
                    sample.offer_runs(
                        text,
                        i,
                        len,
                        |b| class(b) & LETTER != 0,
                        &self.function_words,
                    );
                }
                if let (true, Some(k)) = (keep, key) {
                    // The key's eight bytes in one store, its zero padding
                    // cut off again: no copy of a variable length.
                    out.extend_from_slice(&k.to_le_bytes());
                    out.truncate(out.len() + len - 8);
                }
                self.end_word(keep, out, &mut fixed, &mut last_slot);
                i += len;
            } else {
                if c != SPACE {
                    out.push(b);
                    out.push(b' ');
                    fixed += 1;
                    last_slot = false;
                }
                i += 1;
            }
        }
        fixed
    }

    fn is_function_word(&self, word: &[u8]) -> bool {
        word_key(word).is_some_and(|k| self.function_words.contains(k))
    }

    /// After a word: a function word (already in `out`) is a fixed token;
    /// any other word joins the slot before it or starts one.
    fn end_word(&self, keep: bool, out: &mut Vec<u8>, fixed: &mut usize, last_slot: &mut bool) {
        if keep {
            out.push(b' ');
            *fixed += 1;
            *last_slot = false;
        } else if !*last_slot {
            out.extend_from_slice(b"* ");
            *last_slot = true;
        }
    }
}

/// `out` = `s.to_lowercase()`, into a reused buffer: per character as
/// `str::to_lowercase` does (which lower-cases each character on its own
/// except a capital sigma, whose form depends on its neighbours: a prompt
/// with one is left to it).
fn lowercase_into(s: &str, out: &mut String) {
    out.clear();
    if s.contains('Σ') {
        out.push_str(&s.to_lowercase());
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// One lane of [`TextAnalyzer::analyze_batch`]: the prompt it scans (its
/// index), whether it is ASCII (then it is scanned as it is, by the ASCII
/// phrase set), else its lower-cased copy, and where its scan stands.
#[derive(Default)]
struct Lane {
    k: Option<usize>,
    lower: String,
    ascii: bool,
    search: Search,
    found: Found,
}

impl Lane {
    /// Finish the lane's prompt (if any) into `out`, then take the next
    /// prompt from `next` on. Whether the lane has a prompt to scan.
    fn take(
        &mut self,
        text: &TextAnalyzer,
        prompts: &[(&str, u64)],
        next: &mut usize,
        out: &mut [TextFeatures],
        skeleton: &mut Vec<u8>,
    ) -> bool {
        if let Some(k) = self.k.take()
            && let (Some(&(prompt, hash)), Some(o)) = (prompts.get(k), out.get_mut(k))
        {
            let found = std::mem::take(&mut self.found);
            let hay = if self.ascii { prompt } else { &self.lower };
            *o = text.finish(prompt, hash, self.ascii, hay, found, skeleton);
        }
        while let Some(&(prompt, hash)) = prompts.get(*next) {
            let k = *next;
            *next += 1;
            let (hay, ascii) = hay_of(prompt, &mut self.lower);
            self.ascii = ascii;
            if hay.is_empty() {
                // Nothing to scan: finished at once.
                if let Some(o) = out.get_mut(k) {
                    *o = text.finish(prompt, hash, ascii, "", Found::default(), skeleton);
                }
                continue;
            }
            self.search = Search::new(&text.phrases(ascii).dfa, hay.as_bytes());
            self.k = Some(k);
            return true;
        }
        false
    }

    /// What the lane scans: its prompt of `prompts` when ASCII, else the
    /// prompt's lower-cased copy.
    fn hay<'p>(&'p self, prompts: &[(&'p str, u64)]) -> &'p str {
        scanned(self.k, self.ascii, &self.lower, prompts)
    }

    /// [`Search::moved`] for this lane's scan; whether it goes on.
    #[inline(always)]
    fn moved(
        &mut self,
        text: &TextAnalyzer,
        prompts: &[(&str, u64)],
        sid: u32,
        steps: usize,
    ) -> bool {
        let hay = scanned(self.k, self.ascii, &self.lower, prompts);
        let found = &mut self.found;
        let phrases = text.phrases(self.ascii);
        self.search
            .moved(&phrases.dfa, hay.as_bytes(), sid, steps, &mut |p, at| {
                found.note(phrases, hay, p, at)
            });
        !self.search.done
    }

    /// Scan the lane's prompt to its end alone.
    fn run(&mut self, text: &TextAnalyzer, prompts: &[(&str, u64)]) {
        let hay = scanned(self.k, self.ascii, &self.lower, prompts);
        let found = &mut self.found;
        let phrases = text.phrases(self.ascii);
        self.search.run(&phrases.dfa, hay.as_bytes(), &mut |p, at| {
            found.note(phrases, hay, p, at)
        });
    }
}

/// [`Lane::hay`] from the lane's fields (borrowed apart from its search).
fn scanned<'p>(
    k: Option<usize>,
    ascii: bool,
    lower: &'p str,
    prompts: &[(&'p str, u64)],
) -> &'p str {
    match k.and_then(|k| prompts.get(k)) {
        Some(&(prompt, _)) if ascii => prompt,
        _ => lower,
    }
}

/// What a prompt's phrase matches said: reasoning languages, a probe,
/// and keyword counts by topic.
#[derive(Default)]
struct Found {
    reasoning_langs: u8,
    probe: bool,
    topics: [u16; TAXONOMY.len()],
}

impl Found {
    /// Note the match of `pattern` of `phrases` at `start` of `hay`.
    fn note(&mut self, phrases: &Phrases, hay: &str, pattern: usize, start: usize) {
        match phrases.kinds.get(pattern) {
            Some(Kind::Reasoning(l)) => self.reasoning_langs |= 1 << l,
            Some(Kind::Probe) => self.probe = true,
            // Keywords must start a word ("rust" is not in "trust").
            Some(Kind::Topic(t)) if starts_word(hay, start) => {
                let n = &mut self.topics[*t as usize];
                *n = n.saturating_add(1);
            }
            Some(Kind::Topic(_)) => {}
            None => {}
        }
    }
}

/// What the phrase scan reads of `prompt`, and whether it is ASCII: an
/// ASCII prompt itself (the automaton reads its capitals as lower case),
/// else its Unicode lower case (which may change lengths) in `buf`.
fn hay_of<'a>(prompt: &'a str, buf: &'a mut String) -> (&'a str, bool) {
    if prompt.is_ascii() {
        (prompt, true)
    } else {
        lowercase_into(prompt, buf);
        (buf.as_str(), false)
    }
}

fn starts_word(hay: &str, at: usize) -> bool {
    hay.get(..at)
        .and_then(|s| s.chars().next_back())
        .is_none_or(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The sample by its definition, in a second pass: the runs of
    /// letters of the prompt, each character lower-cased, of at least
    /// [`SAMPLE_MIN_BYTES`] bytes and not function words.
    fn sample_by_definition(prompt: &str, function_words: &WordSet) -> u32 {
        let mut sample = WordSample::EMPTY;
        let mut run = String::new();
        for c in prompt.chars().chain(std::iter::once(' ')) {
            if c.is_alphabetic() {
                run.extend(c.to_lowercase());
                continue;
            }
            let w = run.as_bytes();
            if w.len() >= SAMPLE_MIN_BYTES {
                sample.offer(word_hash(w, 0, w.len()), || {
                    word_key(w).is_some_and(|k| function_words.contains(k))
                });
            }
            run.clear();
        }
        sample.value()
    }

    /// What prompts are made of, hostile pieces among them: function
    /// words of four or more letters, words with digits, `'` and `_`
    /// inside, letters of other scripts (and a capital that lower-cases to
    /// two characters), long words, words at the end of the text.
    const PIECES: &[&str] = &[
        " ",
        "  ",
        ",",
        ".\n",
        "the",
        "THE",
        "Could",
        "About",
        "INSIDE",
        "could",
        "first",
        "quantum",
        "Photon",
        "don't",
        "x_ray",
        "abc123defgh",
        "9999",
        "'",
        "_",
        "ab",
        "abcd",
        "abcdefgh",
        "abcdefghi",
        "extraordinarily",
        "incomprehensibilities",
        "naïve",
        "Straße",
        "ÉCOLE",
        "İstanbul",
        "ΣΟΦΙΑ",
        "привет",
        "мир",
        "日本語",
        "ünter",
        "für",
        "pourquoi",
        "été",
        "\u{301}",
        "x\u{0}y",
    ];

    fn check(analyzer: &TextAnalyzer, scratch: &mut TextScratch, prompt: &str) {
        let got = analyzer.analyze(prompt, scratch).words;
        let want = sample_by_definition(prompt, &analyzer.function_words);
        assert_eq!(got, want, "{prompt:?}");
    }

    #[test]
    fn words_sampled_in_the_skeleton_pass_are_the_defined_sample() {
        let analyzer = TextAnalyzer::new().unwrap();
        let mut scratch = TextScratch::default();
        // Every piece alone and every pair, either way round and apart.
        for a in PIECES {
            check(&analyzer, &mut scratch, a);
            for b in PIECES {
                check(&analyzer, &mut scratch, &format!("{a}{b}"));
                check(&analyzer, &mut scratch, &format!("{a} {b}"));
            }
        }
        // Made-up prompts of many words: their samples are not all empty
        // (so the comparisons above compare something).
        let mut sampled = 0;
        for i in 0..400u32 {
            let prompt: String = (0..12)
                .map(|k| {
                    format!(
                        "w{:x}ord{} ",
                        i * 12 + k,
                        PIECES[(i + k) as usize % PIECES.len()]
                    )
                })
                .collect();
            check(&analyzer, &mut scratch, &prompt);
            sampled += usize::from(analyzer.analyze(&prompt, &mut scratch).words != 0);
        }
        assert!(sampled > 100, "{sampled} of 400 prompts sampled a word");
    }

    #[test]
    fn one_word_in_eight_is_sampled_and_values_spread() {
        let n = 40_000u32;
        let mut chosen = rustc_hash::FxHashSet::default();
        let mut count = 0u32;
        for i in 0..n {
            // Distinct made-up words of 4 to 20 letters: `i` in base 26,
            // four letters, then up to 16 more.
            let mut w: String = (0..4)
                .map(|k| char::from(b'a' + (i / 26u32.pow(k) % 26) as u8))
                .collect();
            for k in 0..(i % 17) {
                w.push(char::from(b'a' + ((i / 7 + k) % 26) as u8));
            }
            let mut s = WordSample::EMPTY;
            s.offer(word_hash(w.as_bytes(), 0, w.len()), || false);
            if s.value() != 0 {
                count += 1;
                chosen.insert(s.value());
            }
        }
        let share = f64::from(count) / f64::from(n);
        assert!((0.115..0.135).contains(&share), "{share}");
        // 16-bit values of ~5,000 words: few collide (about n²/2^17).
        assert!(
            chosen.len() as f64 > 0.9 * f64::from(count),
            "{}",
            chosen.len()
        );
    }

    #[test]
    fn eight_bytes_lower_cased_at_once_are_each_byte_lower_cased() {
        // Every byte value in every place, beside bytes either side of
        // the capitals' range (a carry from a neighbour would show).
        for b in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'@', b'A', b'Z', b'[', 0x7F, 0x80, 0xC1, 0xDA, 0xFF] {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let want = bytes.map(|x| x.to_ascii_lowercase());
                    let got = ascii_lower8(u64::from_le_bytes(bytes)).to_le_bytes();
                    assert_eq!(got, want, "{bytes:?}");
                }
            }
        }
    }

    /// The ASCII skeleton, cut from the prompt as it is (capitals lower-cased
    /// eight bytes at once), against the general one, which lower-cases
    /// each character: the same skeleton, fixed tokens and word sample.
    fn same_skeletons(analyzer: &TextAnalyzer, prompt: &str) -> Result<(), TestCaseError> {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut sa, mut sb) = (WordSample::EMPTY, WordSample::EMPTY);
        let fa = analyzer.skeleton_ascii(prompt.as_bytes(), &mut a, &mut sa);
        let fb = analyzer.skeleton(prompt, &mut b, &mut sb);
        prop_assert_eq!(fa, fb, "{:?}", prompt);
        prop_assert_eq!(&a, &b, "{:?}", prompt);
        prop_assert_eq!(sa.value(), sb.value(), "{:?}", prompt);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_ascii_skeleton_of_a_prompt_as_it_is_is_the_lower_cased_skeleton(
            pieces in proptest::collection::vec(
                proptest::sample::select(PIECES).prop_filter("ASCII", |p| p.is_ascii()),
                0..40,
            ),
            noise in "[ -~\n]{0,40}",
        ) {
            static ANALYZER: std::sync::OnceLock<TextAnalyzer> = std::sync::OnceLock::new();
            let analyzer = ANALYZER.get_or_init(|| TextAnalyzer::new().unwrap());
            same_skeletons(analyzer, &format!("{}{noise}", pieces.concat()))?;
            same_skeletons(analyzer, &format!("{noise}{}", pieces.concat().to_uppercase()))?;
        }

        #[test]
        fn words_sampled_in_the_skeleton_pass_are_the_defined_sample_of_any_text(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            noise in "\\PC{0,40}",
        ) {
            static ANALYZER: std::sync::OnceLock<TextAnalyzer> = std::sync::OnceLock::new();
            let analyzer = ANALYZER.get_or_init(|| TextAnalyzer::new().unwrap());
            let mut scratch = TextScratch::default();
            let prompt = format!("{}{noise}", pieces.concat());
            let got = analyzer.analyze(&prompt, &mut scratch).words;
            prop_assert_eq!(got, sample_by_definition(&prompt, &analyzer.function_words));
        }
    }
}
