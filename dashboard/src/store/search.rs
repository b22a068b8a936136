//! Free-text alert search over the `alerts_fts` trigram index.
//!
//! `alerts.search` holds the lower-cased text a free-text query searches
//! (see `sqlite::search_text`), and the semantics users see are those of
//! `instr(a.search, lower(q)) > 0`: a case-insensitive substring test. The
//! index never changes that answer, it only narrows the rows that test runs on:
//!
//! - `alerts_fts` is an FTS5 table with the `trigram` tokenizer over
//!   `alerts.search` (external content, kept in step by triggers: see
//!   migration 2). It is built with `detail=none`, which stores only which
//!   rows hold each 3-character sequence (a third of the size of positional
//!   lists) and so answers "rows containing all these trigrams".
//! - A query of at least [`TRIGRAM`] characters becomes the AND of its
//!   distinct trigrams, each an FTS5 string literal (`"…"` with `"` doubled),
//!   so nothing the user types is ever read as FTS5 syntax (`*`, `-`, `OR`,
//!   `NEAR`, `^`, column filters, parentheses are all plain text inside a
//!   string). The rows found are candidates; the exact `instr` test still
//!   decides, so a row with the trigrams in another order is not returned.
//! - Queries shorter than [`TRIGRAM`] characters hold no trigram: the index
//!   cannot help and the search scans (newest first, stopping when the page
//!   is full), as it always did.

/// Characters in one indexed sequence; shorter queries cannot use the index.
pub const TRIGRAM: usize = 3;

/// At most this many trigrams go into one index query. The `instr` test
/// decides anyway, so a long query (a URL, a SHA-256) need not send all of
/// them: a spread subset is already selective.
const MAX_TRIGRAMS: usize = 16;

/// The FTS5 query for the lower-cased `needle`, or `None` when the needle is
/// too short for the trigram index.
pub(crate) fn fts_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < TRIGRAM {
        return None;
    }
    let mut grams: Vec<String> = Vec::new();
    for w in chars.windows(TRIGRAM) {
        // FTS5 reads its query as a C string: a NUL would end it. Such
        // trigrams are left out (the exact test still sees the NUL).
        if w.contains(&'\0') {
            continue;
        }
        let g: String = w.iter().collect();
        if !grams.contains(&g) {
            grams.push(g);
        }
    }
    if grams.is_empty() {
        return None;
    }
    if grams.len() > MAX_TRIGRAMS {
        // Evenly spread, always keeping the first and the last.
        let n = grams.len();
        grams = (0..MAX_TRIGRAMS)
            .map(|i| grams[i * (n - 1) / (MAX_TRIGRAMS - 1)].clone())
            .collect();
    }
    let terms: Vec<String> = grams.iter().map(|g| quote(g)).collect();
    Some(terms.join(" AND "))
}

/// An FTS5 string literal: everything inside is text, `"` is doubled.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Whether free text `text` (as typed) can use the index: at least
/// [`TRIGRAM`] characters once lower-cased. Shorter text is searched by
/// reading the alerts one by one.
pub fn uses_index(text: &str) -> bool {
    text.trim().to_lowercase().chars().count() >= TRIGRAM
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

    #[test]
    fn short_needles_have_no_query() {
        assert_eq!(fts_query(""), None);
        assert_eq!(fts_query("ab"), None);
        assert_eq!(fts_query("é"), None);
        assert_eq!(fts_query("éé"), None);
        assert_eq!(fts_query("ééé").as_deref(), Some("\"ééé\""));
    }

    #[test]
    fn every_trigram_is_a_quoted_string() {
        assert_eq!(fts_query("abcd").as_deref(), Some("\"abc\" AND \"bcd\""));
        assert_eq!(fts_query("aaaa").as_deref(), Some("\"aaa\""));
        assert_eq!(
            fts_query("a\"b").as_deref(),
            Some("\"a\"\"b\""),
            "a quote is doubled inside the literal"
        );
        assert_eq!(
            fts_query("x or y").as_deref(),
            Some("\"x o\" AND \" or\" AND \"or \" AND \"r y\""),
            "operators are text"
        );
    }

    #[test]
    fn long_needles_are_capped() {
        let q = fts_query("the quick brown fox jumps over the lazy dog").unwrap();
        assert_eq!(q.matches(" AND ").count(), MAX_TRIGRAMS - 1);
        assert!(q.starts_with("\"the\" AND "));
        assert!(q.ends_with(" AND \"dog\""));
    }

    #[test]
    fn nul_never_reaches_the_index_query() {
        assert_eq!(fts_query("a\0b"), None);
        assert_eq!(fts_query("ab\0cd"), None);
        assert_eq!(fts_query("abc\0de").as_deref(), Some("\"abc\""));
    }
}
