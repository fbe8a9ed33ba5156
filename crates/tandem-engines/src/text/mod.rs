//! Text post-processing: Azure's `Lexical`/`ITN`/`MaskedITN`/`Display` forms, the profanity
//! filter, word error rate, and the reader of Azure Custom Speech `trans.txt` files. Pure
//! functions, no engine involved.

mod numbers;
mod profanity;
#[cfg(test)]
mod tests;
mod trans;
mod wer;

pub use numbers::spell_integer;
pub use profanity::{apply_profanity, is_profane, Profanity, PROFANITIES};
pub use trans::parse_trans_txt;
pub use wer::{align, normalize_for_wer, word_errors, WerStats};

use numbers::spell_numbers_in_word;

/// The four text forms of one Azure recognition result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AzureForms {
    /// Lowercase words, no punctuation, numbers spelled out (`"three point five"`).
    pub lexical: String,
    /// Inverse-text-normalised: lowercase, no punctuation, digits kept (`"3.5"`).
    pub itn: String,
    /// [`AzureForms::itn`] with the profanity option applied.
    pub masked_itn: String,
    /// The engine's text (casing and punctuation) with the profanity option applied.
    pub display: String,
}

/// Splits text into lowercase words without punctuation. Apostrophes inside words are kept
/// (normalised to `'`), commas inside numbers are dropped (`1,000` → `1000`), a point between
/// digits is kept (`3.5`), `%` after a digit is kept; hyphens inside words are kept when
/// `keep_hyphens`, otherwise they separate words. Any other punctuation separates words.
fn itn_words(text: &str, keep_hyphens: bool) -> Vec<String> {
    let chars: Vec<char> = text
        .trim_start_matches('\u{feff}')
        .chars()
        .map(|c| if c == '’' { '\'' } else { c })
        .collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let keep = if c.is_alphanumeric() {
            true
        } else {
            match c {
                '\'' => prev.is_alphanumeric() && next.is_alphanumeric(),
                '-' => keep_hyphens && prev.is_alphanumeric() && next.is_alphanumeric(),
                '.' => prev.is_ascii_digit() && next.is_ascii_digit(),
                '%' => prev.is_ascii_digit(),
                ',' if prev.is_ascii_digit() && next.is_ascii_digit() => continue,
                _ => false,
            }
        };
        if keep {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Builds Azure's four forms from the engine's display text.
///
/// * `display`: the engine text with `profanity` applied (masked: asterisks of the same length;
///   removed: the word is dropped; raw: unchanged).
/// * `itn`: lowercase, punctuation removed (apostrophes within words, hyphens within words, and
///   decimal points kept; digits kept), profanity *not* filtered.
/// * `masked_itn`: `itn` with `profanity` applied.
/// * `lexical`: `itn` with numbers spelled out (`3.5` → `three point five`, `21st` →
///   `twenty first`, `50%` → `fifty percent`).
pub fn azure_forms(display: &str, profanity: Profanity) -> AzureForms {
    let words = itn_words(display, true);
    let itn = words.join(" ");
    let lexical = words
        .iter()
        .map(|w| spell_numbers_in_word(w))
        .collect::<Vec<_>>()
        .join(" ");
    AzureForms {
        masked_itn: apply_profanity(&itn, profanity),
        display: apply_profanity(display.trim(), profanity),
        lexical,
        itn,
    }
}
