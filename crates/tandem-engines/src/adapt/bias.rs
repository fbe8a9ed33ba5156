//! Word-level biasing: a prefix trie of the domain's words over the recognizer's BPE tokens.
//!
//! The n-gram model knows a domain word once its first piece is chosen, but where the language
//! data never had the preceding words, its estimate of that first piece backs off to the floor,
//! like any unseen word, and Whisper's acoustic favourite wins ("Phyllis" for "Felis"). The trie
//! adds a fixed bonus to every token that starts a domain word or continues the domain word
//! being spelled, whatever the context: contextual biasing towards the vocabulary of the data.
//! The words are those of the language data that Whisper's vocabulary splits into at least
//! [`MIN_TOKENS`] pieces (its rare words), in three casings.

use std::collections::HashMap;

use super::bpe::Bpe;

/// A word is biased if its BPE encoding (with its leading space) has at least this many tokens.
pub(crate) const MIN_TOKENS: usize = 2;
/// Words shorter than this (in characters) are never biased.
const MIN_CHARS: usize = 4;

/// The domain words as token sequences, and their prefixes.
#[derive(Debug, Clone, Default)]
pub(crate) struct BiasTrie {
    /// Every word's tokens, sorted and deduplicated (what the artifact stores).
    words: Vec<Vec<u32>>,
    /// Prefix (empty for a word start) → the tokens that extend it, sorted.
    next: HashMap<Vec<u32>, Vec<u32>>,
    /// The longest word, in tokens.
    longest: usize,
}

impl BiasTrie {
    /// The trie of the rare words of `lines` (see the module documentation).
    pub(crate) fn from_text(lines: &[String], bpe: &Bpe) -> Self {
        let mut words = Vec::new();
        for word in lines.iter().flat_map(|l| l.split_whitespace()) {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            if word.chars().count() < MIN_CHARS || !word.chars().all(char::is_alphabetic) {
                continue;
            }
            let lower = word.to_lowercase();
            for variant in [word.to_string(), super::as_sentence(&lower), lower.clone()] {
                let tokens = bpe.encode(&format!(" {variant}"));
                if tokens.len() >= MIN_TOKENS {
                    words.push(tokens);
                }
            }
        }
        Self::from_words(words)
    }

    /// The trie of these token sequences (empty ones are ignored).
    pub(crate) fn from_words(mut words: Vec<Vec<u32>>) -> Self {
        words.retain(|w| !w.is_empty());
        words.sort_unstable();
        words.dedup();
        let mut next: HashMap<Vec<u32>, Vec<u32>> = HashMap::new();
        for w in &words {
            for k in 0..w.len() {
                next.entry(w[..k].to_vec()).or_default().push(w[k]);
            }
        }
        for v in next.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let longest = words.iter().map(Vec::len).max().unwrap_or(0);
        Self {
            words,
            next,
            longest,
        }
    }

    /// The words, as stored in the artifact.
    pub(crate) fn words(&self) -> &[Vec<u32>] {
        &self.words
    }

    /// The tokens to boost after `history`: `(continuing, starting)`, the tokens that continue
    /// the longest domain-word prefix `history` ends with (empty if none) and those that start
    /// a domain word. Both are sorted.
    pub(crate) fn boosted(&self, history: &[u32]) -> (&[u32], &[u32]) {
        let longest = self.longest.min(history.len());
        let inside = (1..=longest)
            .rev()
            .find_map(|k| self.next.get(&history[history.len() - k..]))
            .map_or(&[][..], Vec::as_slice);
        let starts = self.next.get(&[][..]).map_or(&[][..], Vec::as_slice);
        (inside, starts)
    }
}
