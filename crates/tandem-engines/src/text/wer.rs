//! Word error rate: normalisation, Levenshtein alignment and S/D/I counts.

use super::itn_words;
use super::numbers::spell_numbers_in_word;

/// Normalises text for word error rate: strips a BOM, lowercases, removes punctuation (keeping
/// apostrophes inside words), turns hyphens into spaces and spells out numbers.
pub fn normalize_for_wer(s: &str) -> Vec<String> {
    itn_words(s, false)
        .iter()
        .flat_map(|w| {
            spell_numbers_in_word(w)
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Word error counts of one or more utterances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WerStats {
    /// Reference words replaced by another word.
    pub substitutions: usize,
    /// Reference words missing from the hypothesis.
    pub deletions: usize,
    /// Hypothesis words not in the reference.
    pub insertions: usize,
    /// Words in the reference.
    pub reference_words: usize,
}

impl WerStats {
    /// Total errors (S + D + I).
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Word error rate: errors / reference words (0 for an empty reference with no errors,
    /// 1 per inserted word otherwise).
    pub fn wer(&self) -> f64 {
        if self.reference_words == 0 {
            return self.errors() as f64;
        }
        self.errors() as f64 / self.reference_words as f64
    }

    /// Adds another utterance's counts (for a corpus-level WER).
    pub fn add(&mut self, other: &WerStats) {
        self.substitutions += other.substitutions;
        self.deletions += other.deletions;
        self.insertions += other.insertions;
        self.reference_words += other.reference_words;
    }
}

/// Word errors of `hypothesis` against `reference`, both normalised with [`normalize_for_wer`].
pub fn word_errors(reference: &str, hypothesis: &str) -> WerStats {
    align(
        &normalize_for_wer(reference),
        &normalize_for_wer(hypothesis),
    )
}

/// Levenshtein alignment of two word sequences with a backtrace that counts S, D and I.
pub fn align<S: AsRef<str>>(reference: &[S], hypothesis: &[S]) -> WerStats {
    let (n, m) = (reference.len(), hypothesis.len());
    let w = m + 1;
    let mut d = vec![0usize; (n + 1) * w];
    for i in 0..=n {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = usize::from(reference[i - 1].as_ref() != hypothesis[j - 1].as_ref());
            d[i * w + j] = (d[(i - 1) * w + j - 1] + sub)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
        }
    }
    let mut stats = WerStats {
        reference_words: n,
        ..Default::default()
    };
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        if i > 0 && j > 0 {
            let same = reference[i - 1].as_ref() == hypothesis[j - 1].as_ref();
            let diag = d[(i - 1) * w + j - 1] + usize::from(!same);
            if d[i * w + j] == diag {
                if !same {
                    stats.substitutions += 1;
                }
                i -= 1;
                j -= 1;
                continue;
            }
        }
        if i > 0 && d[i * w + j] == d[(i - 1) * w + j] + 1 {
            stats.deletions += 1;
            i -= 1;
        } else {
            stats.insertions += 1;
            j -= 1;
        }
    }
    stats
}
