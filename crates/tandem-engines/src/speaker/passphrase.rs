//! Text-dependent verification: the passphrases a profile may be enrolled with, and the match
//! of a transcript against them.
//!
//! A transcript matches a phrase when the character edit distance between their letters
//! (lowercase, punctuation, spaces and apostrophes removed, numbers spelled out) is at most
//! [`MATCH_BOUND`] of the phrase's letters. Letters rather than words, because the small
//! recognizer often splits or merges words it hears right ("passport" → "past poet", "verify
//! me" → "verifying me"): the sound is there, the word boundaries are not. The closest phrase
//! wins; it must be within the bound, and strictly closer than every other phrase.

use crate::text::normalize_for_wer;

/// Azure's text-dependent passphrases for `en-us` (the list its `GET …/phrases/en-us` returns).
pub const EN_US: &[&str] = &[
    "i am going to make him an offer he cannot refuse",
    "houston we have had a problem",
    "my voice is my passport verify me",
    "apple juice tastes funny after toothpaste",
    "you can get in without your password",
    "you can activate security system now",
    "my voice is stronger than passwords",
    "my password is not your business",
    "my name is unknown to you",
    "be yourself everyone else is already taken",
];

/// The largest accepted distance between a transcript and a phrase, as a fraction of the
/// phrase's letters (see [`distance`]).
///
/// Measured with `tests/speaker_text_dependent_eval.rs` (Whisper tiny.en; the 10 phrases
/// spoken by flite slt, rms, awb, kal16 and espeak-ng en-GB male and female at speaking rates
/// 0.9, 0.95, 1.0 and 1.1: 240 transcripts): against the phrase said, mean 0.044, 95th
/// percentile 0.25, max 0.67 (espeak-ng's "apple juice tastes funny after toothpaste" heard as
/// "I will do space for the after-do space"); 9 of 240 above 0.30 (6 of them espeak-ng).
/// Against the nearest other phrase: min 0.60, mean 0.74; no transcript matched another
/// phrase than the one said. Between the listed phrases themselves: min 0.67. At 0.30, 231 of
/// 240 (96 %) are matched, and no transcript can be within the bound of two phrases (they are
/// over twice the bound apart), so the bound decides only "said it or not", never "which one".
pub const MATCH_BOUND: f64 = 0.30;

/// The phrases of a locale (case-insensitive: `en-us`, `en-US`); `None` when the locale has
/// none.
pub fn phrases(locale: &str) -> Option<&'static [&'static str]> {
    locale.eq_ignore_ascii_case("en-us").then_some(EN_US)
}

/// What the match compares: the letters and digits of the normalised words, run together.
pub fn letters(text: &str) -> Vec<char> {
    normalize_for_wer(text)
        .iter()
        .flat_map(|w| w.chars())
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Character edit distance (Levenshtein) between the letters of `phrase` and of `transcript`,
/// over the number of letters of `phrase` (1.0 if the phrase has none).
pub fn distance(phrase: &str, transcript: &str) -> f64 {
    let (a, b) = (letters(phrase), letters(transcript));
    if a.is_empty() {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()] as f64 / a.len() as f64
}

/// The phrase of `phrases` that `transcript` says: the closest one, if it is within
/// [`MATCH_BOUND`] and strictly closer than any other.
pub fn match_passphrase(phrases: &[&'static str], transcript: &str) -> Option<&'static str> {
    let mut scored: Vec<(f64, &'static str)> = phrases
        .iter()
        .map(|p| (distance(p, transcript), *p))
        .collect();
    scored.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (best, phrase) = *scored.first()?;
    let unique = scored.get(1).is_none_or(|(next, _)| *next > best);
    (best <= MATCH_BOUND && unique).then_some(phrase)
}

/// Whether `transcript` says `phrase` (one of the listed ones): it is the phrase
/// [`match_passphrase`] picks among `phrases`.
pub fn says(phrases: &[&'static str], phrase: &str, transcript: &str) -> bool {
    match_passphrase(phrases, transcript) == Some(phrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_punctuation_and_spacing_do_not_matter() {
        for t in [
            "My voice is my passport, verify me.",
            "  MY VOICE is my   passport — verify me!  ",
            "my voice is my passport verify me",
        ] {
            assert_eq!(distance(EN_US[2], t), 0.0, "{t:?}");
            assert_eq!(match_passphrase(EN_US, t), Some(EN_US[2]), "{t:?}");
        }
        assert_eq!(
            letters("Be yourself; everyone's taken."),
            letters("beyourself everyones taken")
        );
    }

    #[test]
    fn small_recognition_slips_are_tolerated() {
        // Heard by Whisper tiny.en from the synthetic voices (see MATCH_BOUND).
        for (phrase, heard) in [
            (2, "My voice is my past poet, verify me."),
            (2, "My voice is my passport verifying me"),
            (0, "I'm going to make him an offer he cannot refuse."),
            (0, "I am going to make him another he cannot refuse."),
            (1, "Fused and we have had a problem."),
        ] {
            assert_eq!(
                match_passphrase(EN_US, heard),
                Some(EN_US[phrase]),
                "{heard:?}"
            );
        }
    }

    #[test]
    fn other_speech_is_refused() {
        for t in [
            "",
            "hello",
            "The birch canoe slid on the smooth planks.",
            "my voice is my password",
            "you can get in",
            "houston",
        ] {
            assert_eq!(match_passphrase(EN_US, t), None, "{t:?}");
        }
    }

    #[test]
    fn listed_phrases_are_far_apart() {
        for (i, a) in EN_US.iter().enumerate() {
            assert_eq!(match_passphrase(EN_US, a), Some(*a));
            for b in &EN_US[i + 1..] {
                let d = distance(a, b).min(distance(b, a));
                assert!(d > 2.0 * MATCH_BOUND, "{a:?} and {b:?} are {d:.2} apart");
            }
        }
    }

    #[test]
    fn locales() {
        assert_eq!(phrases("en-US"), Some(EN_US));
        assert_eq!(phrases("en-us").map(<[_]>::len), Some(10));
        assert_eq!(phrases("fr-fr"), None);
    }

    #[test]
    fn says_is_the_match() {
        assert!(says(EN_US, EN_US[7], "My password is not your business."));
        assert!(!says(EN_US, EN_US[7], "My name is unknown to you."));
    }
}
