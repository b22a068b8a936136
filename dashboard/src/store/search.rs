//! Free-text alert search over the `alerts_fts` trigram index.
//!
//! `alerts.search` holds the lower-cased text a free-text query searches
//! (see `sqlite::search_text`), and the semantics users see are those of
//! `instr(a.search, lower(q)) > 0`: a case-insensitive substring test. The
//! index never changes that answer, it only narrows the rows that test runs on:
//!
//! - `alerts_fts` is an FTS5 table with the `trigram` tokenizer over
//!   `alerts.search` (external content). The ingest transaction indexes its
//!   new alerts (`sqlite::index_text`); triggers handle deletes and rewrites
//!   (migrations 2 and 3). It is built with `detail=none`, which stores only which
//!   rows hold each 3-character sequence (a third of the size of positional
//!   lists) and so answers "rows containing all these trigrams".
//! - A query of at least [`TRIGRAM`] characters is covered by trigrams: the
//!   ones starting at every third character, and the last one (`host998.ex`
//!   → `hos`, `t99`, `8.e`, `.ex`). Each is an FTS5 string literal (`"…"`
//!   with `"` doubled), so nothing the user types is ever read as FTS5
//!   syntax (`*`, `-`, `OR`, `NEAR`, `^`, column filters, parentheses are all
//!   plain text inside a string). The rows holding all of them are
//!   candidates; the exact `instr` test still decides, so a row with the
//!   trigrams in another order is not returned.
//! - Every covering trigram is first counted (up to the cap below; cheap),
//!   and when one is rare the candidates are the rows holding the two rarest
//!   ones. Each further AND term costs a seek per candidate and narrows
//!   little, so this beats intersecting all of them (measured:
//!   docs/performance.md, "Free-text search index").
//! - Before any of that, the newest `10 × (limit + 1)` alerts (after the other
//!   filters) are tested directly: a term in one alert in ten or more fills
//!   its page there, cheaper than counting trigrams. Only when they do not
//!   fill the page is the index asked.
//! - Queries shorter than [`TRIGRAM`] characters hold no trigram: the index
//!   cannot help and the search scans (newest first, stopping when the page
//!   is full), as it always did.

/// Characters in one indexed sequence; shorter queries cannot use the index.
pub const TRIGRAM: usize = 3;

/// At most this many covering trigrams are used (a long URL or SHA-256 is
/// selective long before its last character).
const MAX_TERMS: usize = 8;

/// The covering trigrams of the lower-cased `needle` as FTS5 string
/// literals, in order and without repeats; empty when the needle is too
/// short for the trigram index.
pub(crate) fn cover_terms(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < TRIGRAM {
        return Vec::new();
    }
    let last = chars.len() - TRIGRAM;
    let mut starts: Vec<usize> = (0..=last).step_by(TRIGRAM).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    let mut terms: Vec<String> = Vec::new();
    for i in starts {
        let w = &chars[i..i + TRIGRAM];
        // FTS5 reads its query as a C string: a NUL would end it. Such
        // trigrams are left out (the exact test still sees the NUL).
        if w.contains(&'\0') {
            continue;
        }
        let t = quote(&w.iter().collect::<String>());
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    if terms.len() > MAX_TERMS {
        // Evenly spread, keeping the first and the last.
        let n = terms.len();
        terms = (0..MAX_TERMS)
            .map(|i| terms[i * (n - 1) / (MAX_TERMS - 1)].clone())
            .collect();
    }
    terms
}

/// An FTS5 string literal: everything inside is text, `"` is doubled.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Whether free text `text` (as typed) can use the index: at least
/// [`TRIGRAM`] characters once lower-cased. Shorter text is searched by
/// reading the alerts one by one.
pub fn uses_index(text: &str) -> bool {
    !cover_terms(&text.trim().to_lowercase()).is_empty()
}

/// How many of the newest alerts (after the other filters) a search reads
/// before it asks the index: a term in at least one alert in ten fills its
/// page there, faster than counting its trigrams (measured:
/// docs/performance.md, "Free-text search index").
pub(crate) fn glance_rows(limit: usize) -> usize {
    limit.saturating_add(1).saturating_mul(10)
}

/// How many index candidates a page of `limit` alerts may take before the
/// search walks the newest-first order instead.
///
/// Sorting `m` candidates costs about `m` row reads. Walking the alerts newest
/// first and testing each fills a page after about `(limit + 1) × total / m`
/// rows when the matches are spread over time. Above this cap (100 rows per
/// row of the page), the walk is expected to read under 1 % of the alerts,
/// and the candidate sort stays within 100 reads per row shown.
pub(crate) fn candidate_cap(limit: usize) -> usize {
    limit.saturating_add(1).saturating_mul(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cover(needle: &str) -> String {
        cover_terms(needle).join(" ")
    }

    #[test]
    fn short_needles_have_no_terms() {
        assert_eq!(cover(""), "");
        assert_eq!(cover("ab"), "");
        assert_eq!(cover("é"), "");
        assert_eq!(cover("éé"), "");
        assert_eq!(cover("ééé"), "\"ééé\"");
        assert!(!uses_index(" ab "));
        assert!(uses_index(" abc "));
    }

    #[test]
    fn trigrams_cover_the_needle() {
        assert_eq!(cover("abcd"), "\"abc\" \"bcd\"");
        assert_eq!(cover("abcdef"), "\"abc\" \"def\"");
        assert_eq!(cover("abcdefg"), "\"abc\" \"def\" \"efg\"");
        assert_eq!(cover("aaaaaaa"), "\"aaa\"");
        assert_eq!(
            cover("host998.example"),
            "\"hos\" \"t99\" \"8.e\" \"xam\" \"ple\""
        );
    }

    #[test]
    fn user_text_is_always_inside_a_string_literal() {
        assert_eq!(cover("a\"b"), "\"a\"\"b\"", "a quote is doubled");
        assert_eq!(cover("\"\"\"\""), "\"\"\"\"\"\"\"\"");
        assert_eq!(
            cover("or near* -x"),
            "\"or \" \"nea\" \"r* \" \" -x\"",
            "operators are text"
        );
    }

    #[test]
    fn long_needles_are_capped() {
        let terms = cover_terms("the quick brown fox jumps over the lazy dog");
        assert_eq!(terms.len(), MAX_TERMS);
        assert_eq!(terms[0], "\"the\"");
        assert_eq!(terms[MAX_TERMS - 1], "\"dog\"");
    }

    #[test]
    fn nul_never_reaches_the_index_query() {
        assert_eq!(cover("a\0b"), "");
        assert_eq!(cover("ab\0cd"), "");
        assert_eq!(cover("a\0bcd"), "\"bcd\"");
        assert_eq!(cover("abc\0de"), "\"abc\"");
    }
}
