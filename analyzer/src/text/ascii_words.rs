//! The ASCII template skeleton's word tests, eight bytes at a time: where
//! a word ends, and whether a word is a function word.
//!
//! Written by hand: the skeleton cuts every word of every prompt not seen
//! before, and a table lookup and branch per byte (the word's end) and a
//! general hash-set probe per word (the function-word test) were a fifth
//! of the skeleton's time; no crate tests a fixed set of short words in
//! one cache line, or a byte class eight bytes at once.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// The high bit of each byte of `x` (all ASCII) that lies in `lo..=hi`:
/// a byte plus `0x80 - lo` reaches its high bit when it is at least `lo`,
/// plus `0x7F - hi` when it is above `hi` (no carry leaves a byte below
/// 0x80).
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    (x + ONES * (0x80 - lo as u64)) & !(x + ONES * (0x7F - hi as u64)) & HIGH
}

/// The high bits of the bytes of eight ASCII bytes that belong to a word
/// (letters, digits, `'` and `_`), and of those that are letters.
fn classes8(x: u64) -> (u64, u64) {
    let letter = in_range(x | (ONES * 0x20), b'a', b'z');
    let word =
        letter | in_range(x, b'0', b'9') | in_range(x, b'\'', b'\'') | in_range(x, b'_', b'_');
    (word, letter)
}

/// The length of the word that starts at `at` of ASCII `text` (its run of
/// letters, digits, `'` and `_`; at least one byte when `text[at]` is one),
/// and whether all of it is letters. `class(b)` is the skeleton's byte
/// class ([`super::WORD`], [`super::LETTER`]), for the last few bytes.
pub(super) fn word_at(text: &[u8], at: usize, class: impl Fn(u8) -> u8) -> (usize, bool) {
    let mut len = 0;
    // High bits of word bytes that are not letters.
    let mut other = 0u64;
    while let Some(b) = text.get(at + len..at + len + 8) {
        let x = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let (word, letter) = classes8(x);
        let stop = !word & HIGH;
        if stop != 0 {
            let n = stop.trailing_zeros() as usize / 8;
            other |= word & !letter & ((1u64 << (8 * n)) - 1);
            return (len + n, other == 0);
        }
        other |= word & !letter;
        len += 8;
    }
    let mut letters = other == 0;
    while let Some(&b) = text.get(at + len) {
        let c = class(b);
        if c & super::WORD == 0 {
            break;
        }
        letters &= c & super::LETTER != 0;
        len += 1;
    }
    (len, letters)
}

/// Words per bucket of a [`WordSet`].
const WAYS: usize = 4;

/// A fixed set of words of at most eight bytes, as their word keys (the
/// bytes little-endian, zero-padded: never 0): 256 buckets of four keys,
/// the bucket picked by the top byte of the key times a multiplier chosen
/// so that no bucket overflows. A lookup is one multiply and four
/// compares in one 32-byte bucket.
pub(super) struct WordSet {
    mult: u64,
    buckets: Vec<[u64; WAYS]>,
}

/// No multiplier of those tried spreads the words over the buckets (only
/// with far more words than the function words).
#[derive(Debug, thiserror::Error)]
#[error("{0} function words do not fit a 1,024-entry word set")]
pub struct WordSetError(pub usize);

impl WordSet {
    /// The set of `keys` (zero keys are left out: no word has one).
    pub(super) fn new(keys: &[u64]) -> Result<WordSet, WordSetError> {
        // Odd multipliers from a fixed sequence (splitmix64's), so the
        // set is the same in every build.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1000 {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let mult = (z ^ (z >> 31)) | 1;
            let mut buckets = vec![[0u64; WAYS]; 256];
            let fits = keys.iter().filter(|&&k| k != 0).all(|&k| {
                let b = &mut buckets[Self::bucket(mult, k)];
                match b.iter_mut().find(|s| **s == 0 || **s == k) {
                    Some(s) => {
                        *s = k;
                        true
                    }
                    None => false,
                }
            });
            if fits {
                return Ok(WordSet { mult, buckets });
            }
        }
        Err(WordSetError(keys.len()))
    }

    fn bucket(mult: u64, key: u64) -> usize {
        (key.wrapping_mul(mult) >> 56) as usize
    }

    /// Whether the word of this key is in the set.
    pub(super) fn contains(&self, key: u64) -> bool {
        let b = self
            .buckets
            .get(Self::bucket(self.mult, key))
            .unwrap_or(&[0; WAYS]);
        key != 0 && ((b[0] == key) | (b[1] == key) | (b[2] == key) | (b[3] == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The skeleton's byte classes, as `text.rs` defines them.
    fn class(b: u8) -> u8 {
        super::super::class(b)
    }

    /// The word at `at` a byte at a time.
    fn word_by_bytes(text: &[u8], at: usize) -> (usize, bool) {
        let mut len = 0;
        let mut letters = true;
        while let Some(&b) = text.get(at + len) {
            if class(b) & super::super::WORD == 0 {
                break;
            }
            letters &= class(b) & super::super::LETTER != 0;
            len += 1;
        }
        (len, letters)
    }

    #[test]
    fn every_ascii_byte_is_classed_as_the_table_classes_it() {
        for b in 0..128u8 {
            for fill in [
                b' ', b'a', b'Z', b'0', b'_', b'\'', b'@', b'[', b'`', b'{', 0x7F, 0,
            ] {
                for at in 0..8 {
                    let mut bytes = [fill; 8];
                    bytes[at] = b;
                    let (word, letter) = classes8(u64::from_le_bytes(bytes));
                    for (i, &x) in bytes.iter().enumerate() {
                        let bit = |m: u64| (m >> (8 * i + 7)) & 1 == 1;
                        assert_eq!(bit(word), class(x) & super::super::WORD != 0, "{bytes:?}");
                        assert_eq!(
                            bit(letter),
                            class(x) & super::super::LETTER != 0,
                            "{bytes:?}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn a_word_eight_bytes_at_a_time_is_the_word_a_byte_at_a_time(
            text in "[a-zA-Z0-9'_ .,\\-@\\[`{~\\n]{0,40}",
        ) {
            let bytes = text.as_bytes();
            for at in 0..bytes.len() {
                if class(bytes[at]) & super::super::WORD != 0 {
                    prop_assert_eq!(word_at(bytes, at, class), word_by_bytes(bytes, at), "{:?} at {}", text, at);
                }
            }
        }

        #[test]
        fn a_word_set_holds_its_words_and_no_other(
            words in proptest::collection::hash_set(1u64..u64::MAX, 0..200),
            others in proptest::collection::vec(0u64..u64::MAX, 0..200),
        ) {
            let keys: Vec<u64> = words.iter().copied().collect();
            let set = WordSet::new(&keys).unwrap();
            for k in &keys {
                prop_assert!(set.contains(*k));
            }
            for k in others {
                prop_assert_eq!(set.contains(k), words.contains(&k));
            }
        }
    }
}
