//! Prompt text features: a template skeleton (template mining by masking
//! content words), exact prompt hashes, reasoning-trace elicitation and
//! model-identity probes in several languages, and a capability-taxonomy topic —
//! all from one Aho-Corasick pass over the prompt.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::FxHashSet;
use xxhash_rust::xxh3::xxh3_64;

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
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Reasoning(u8),
    Probe,
    Topic(u8),
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

/// The compiled phrase sets and word lists.
pub struct TextAnalyzer {
    ac: AhoCorasick,
    kinds: Vec<Kind>,
    function_words: FxHashSet<&'static str>,
    /// Longest function word in bytes (longer words are slots without a lookup).
    max_function_word: usize,
}

/// Building the automaton failed (only with absurd pattern sets).
#[derive(Debug, thiserror::Error)]
#[error("building phrase sets: {0}")]
pub struct PhraseSetError(#[from] aho_corasick::BuildError);

/// Minimum fixed (non-slot) tokens for a skeleton to count as a template.
const MIN_FIXED_TOKENS: usize = 4;

impl TextAnalyzer {
    /// Compile the phrase sets.
    pub fn new() -> Result<Self, PhraseSetError> {
        let mut patterns: Vec<&str> = Vec::new();
        let mut kinds = Vec::new();
        for (lang, phrases) in REASONING {
            for p in *phrases {
                patterns.push(p);
                kinds.push(Kind::Reasoning(*lang as u8));
            }
        }
        for p in PROBES {
            patterns.push(p);
            kinds.push(Kind::Probe);
        }
        for (i, (_, words)) in TAXONOMY.iter().enumerate() {
            for w in *words {
                patterns.push(w);
                kinds.push(Kind::Topic(i as u8));
            }
        }
        // The automaton kind is left to the crate: DFA and contiguous NFA
        // measured the same here (the scan is memory-bound, ~15 % of cycles
        // for ~4 % of instructions).
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)?;
        Ok(TextAnalyzer {
            ac,
            kinds,
            function_words: FUNCTION_WORDS.iter().copied().collect(),
            max_function_word: FUNCTION_WORDS.iter().map(|w| w.len()).max().unwrap_or(0),
        })
    }

    /// Features of one prompt. `scratch` is reused between calls.
    pub fn analyze(&self, prompt: &str, scratch: &mut String) -> TextFeatures {
        self.analyze_hashed(prompt, xxh3_64(prompt.as_bytes()), scratch)
    }

    /// [`TextAnalyzer::analyze`], reusing the features of a prompt seen
    /// recently (logs repeat prompts: retries, benchmark runs, one question
    /// to a whole class — 38 % of the generated prompts are repeats).
    pub fn analyze_cached(
        &self,
        prompt: &str,
        scratch: &mut String,
        cache: &mut TextCache,
    ) -> TextFeatures {
        let hash = xxh3_64(prompt.as_bytes());
        let slot = (hash as usize) & (cache.slots.len() - 1);
        if let Some(hit) = cache.slots.get(slot).filter(|f| f.prompt_hash == hash) {
            return *hit;
        }
        let f = self.analyze_hashed(prompt, hash, scratch);
        if let Some(s) = cache.slots.get_mut(slot) {
            *s = f;
        }
        f
    }

    fn analyze_hashed(&self, prompt: &str, hash: u64, scratch: &mut String) -> TextFeatures {
        let mut f = TextFeatures {
            prompt_hash: hash,
            ..TextFeatures::default()
        };
        // ASCII case is folded by the automaton; other scripts need a lower-cased copy.
        let lowered;
        let hay: &str = if prompt.is_ascii() {
            prompt
        } else {
            lowered = prompt.to_lowercase();
            &lowered
        };
        let mut topics = [0u16; TAXONOMY.len()];
        for m in self.ac.find_iter(hay) {
            match self.kinds.get(m.pattern().as_usize()) {
                Some(Kind::Reasoning(l)) => f.reasoning_langs |= 1 << l,
                Some(Kind::Probe) => f.probe = true,
                // Keywords must start a word ("rust" is not in "trust").
                Some(Kind::Topic(t)) if starts_word(hay, m.start()) => {
                    topics[*t as usize] = topics[*t as usize].saturating_add(1)
                }
                Some(Kind::Topic(_)) => {}
                None => {}
            }
        }
        let (best, n) = topics
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, usize::MAX - i))
            .unwrap_or((0, &0));
        if *n > 0 {
            f.topic = best as u8 + 1;
        }
        f.template = self.skeleton(prompt, scratch);
        f
    }

    /// Template mining by masking: function words and punctuation are kept,
    /// every run of other words (and numbers) becomes one `*` slot. Prompts
    /// made from one template with different slot values share a skeleton.
    /// Each word is lower-cased straight into `out` and taken back out when
    /// it is a slot: no allocation per word.
    fn skeleton(&self, prompt: &str, out: &mut String) -> u64 {
        out.clear();
        let mut fixed = 0usize;
        let mut last_slot = false;
        // Start of the word being read in `out`, if any.
        let mut word: Option<usize> = None;
        let end_word = |out: &mut String,
                        word: &mut Option<usize>,
                        fixed: &mut usize,
                        last_slot: &mut bool| {
            let Some(at) = word.take() else { return };
            if out.len() - at <= self.max_function_word && self.function_words.contains(&out[at..])
            {
                out.push(' ');
                *fixed += 1;
                *last_slot = false;
            } else {
                out.truncate(at);
                if !*last_slot {
                    out.push_str("* ");
                    *last_slot = true;
                }
            }
        };
        for c in prompt.chars() {
            if c.is_alphanumeric() || c == '\'' || c == '_' {
                word.get_or_insert(out.len());
                if c.is_ascii() {
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.extend(c.to_lowercase());
                }
            } else {
                end_word(out, &mut word, &mut fixed, &mut last_slot);
                if !c.is_whitespace() {
                    out.push(c);
                    out.push(' ');
                    fixed += 1;
                    last_slot = false;
                }
            }
        }
        end_word(out, &mut word, &mut fixed, &mut last_slot);
        if fixed < MIN_FIXED_TOKENS {
            0
        } else {
            xxh3_64(out.as_bytes()).max(1)
        }
    }
}

fn starts_word(hay: &str, at: usize) -> bool {
    hay.get(..at)
        .and_then(|s| s.chars().next_back())
        .is_none_or(|c| !c.is_alphanumeric())
}
