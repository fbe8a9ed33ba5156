//! Text post-processing: Azure's `Lexical`/`ITN`/`MaskedITN`/`Display` forms, the profanity
//! filter, word error rate, and the reader of Azure Custom Speech `trans.txt` files. Pure
//! functions, no engine involved.

use std::str::FromStr;

/// A small built-in list of common English profanities (lowercase, whole words only). It is
/// deliberately short: the dozen-odd words that Azure's filter masks in everyday speech.
pub const PROFANITIES: &[&str] = &[
    "fuck",
    "fucking",
    "fucked",
    "fucker",
    "motherfucker",
    "shit",
    "shitty",
    "bullshit",
    "bitch",
    "bastard",
    "asshole",
    "cunt",
    "dick",
    "damn",
    "crap",
    "piss",
];

/// Whether `word` (any case, possibly with a trailing `'s`) is in [`PROFANITIES`].
pub fn is_profane(word: &str) -> bool {
    let w = word.to_lowercase().replace('’', "'");
    let w = w.strip_suffix("'s").unwrap_or(&w);
    PROFANITIES.contains(&w)
        || w.strip_suffix('s')
            .is_some_and(|s| PROFANITIES.contains(&s))
}

/// Azure's `profanity` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profanity {
    /// Profane words are replaced by asterisks of the same length (Azure's default).
    #[default]
    Masked,
    /// Profane words are dropped.
    Removed,
    /// Nothing is changed.
    Raw,
}

impl FromStr for Profanity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "masked" => Ok(Self::Masked),
            "removed" => Ok(Self::Removed),
            "raw" => Ok(Self::Raw),
            _ => Err(format!(
                "invalid profanity option {s:?}: expected masked, removed or raw"
            )),
        }
    }
}

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

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\'' || c == '’'
}

/// Applies the profanity option to running text, word by word (a word is a run of letters,
/// digits and apostrophes). `Removed` also drops the space before a removed word.
pub fn apply_profanity(text: &str, profanity: Profanity) -> String {
    if profanity == Profanity::Raw {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if is_word_char(chars[i]) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if is_profane(&word) {
                match profanity {
                    Profanity::Masked => {
                        out.extend(std::iter::repeat_n('*', chars[start..i].len()))
                    }
                    Profanity::Removed => {
                        while out.ends_with(' ') {
                            out.pop();
                        }
                    }
                    Profanity::Raw => out.push_str(&word),
                }
            } else {
                out.push_str(&word);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    let out = if profanity == Profanity::Removed {
        // A removed first word leaves leading spaces/punctuation gaps; normalise spaces.
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        out
    };
    out.trim().to_string()
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

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str); 4] = [
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

fn below_thousand(n: u64, out: &mut Vec<String>) {
    let (h, rest) = (n / 100, n % 100);
    if h > 0 {
        out.push(ONES[h as usize].into());
        out.push("hundred".into());
    }
    if rest >= 20 {
        out.push(TENS[(rest / 10) as usize].into());
        if rest % 10 > 0 {
            out.push(ONES[(rest % 10) as usize].into());
        }
    } else if rest > 0 || h == 0 {
        out.push(ONES[rest as usize].into());
    }
}

/// Spells a non-negative integer in English words (`1205` → `one thousand two hundred five`).
pub fn spell_integer(mut n: u64) -> String {
    if n == 0 {
        return "zero".into();
    }
    let mut out = Vec::new();
    for (scale, name) in SCALES {
        if n >= scale {
            let q = n / scale;
            if q >= 1000 {
                out.push(spell_integer(q));
            } else {
                below_thousand(q, &mut out);
            }
            out.push(name.into());
            n %= scale;
        }
    }
    if n > 0 {
        below_thousand(n, &mut out);
    }
    out.join(" ")
}

fn spell_digits(digits: &str) -> String {
    digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A run of digits as words: digit by digit if it has a leading zero or is very long.
fn spell_digit_run(digits: &str) -> String {
    if (digits.len() > 1 && digits.starts_with('0')) || digits.len() > 15 {
        return spell_digits(digits);
    }
    digits
        .parse::<u64>()
        .map(spell_integer)
        .unwrap_or_else(|_| spell_digits(digits))
}

fn ordinal(cardinal: &str) -> String {
    let (head, last) = match cardinal.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l),
        None => (String::new(), cardinal),
    };
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        l if l.ends_with('y') => format!("{}ieth", &l[..l.len() - 1]),
        l => format!("{l}th"),
    };
    format!("{head}{last}")
}

/// Spells out the numbers in one ITN word: `3.5`, `1000`, `21st`, `50%`, `covid19`.
fn spell_numbers_in_word(word: &str) -> String {
    if !word.chars().any(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    // ordinals
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(num) = word.strip_suffix(suffix) {
            if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) {
                return ordinal(&spell_digit_run(num));
            }
        }
    }
    let mut parts: Vec<String> = Vec::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut text = String::new();
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            if !text.is_empty() {
                parts.push(std::mem::take(&mut text));
            }
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let int: String = chars[start..i].iter().collect();
            parts.push(spell_digit_run(&int));
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                let s = i + 1;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let frac: String = chars[s..i].iter().collect();
                parts.push("point".into());
                parts.push(spell_digits(&frac));
            }
        } else if chars[i] == '%' {
            if !text.is_empty() {
                parts.push(std::mem::take(&mut text));
            }
            parts.push("percent".into());
            i += 1;
        } else if chars[i] == '-' || chars[i] == '.' {
            if !text.is_empty() {
                parts.push(std::mem::take(&mut text));
            }
            i += 1;
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() {
        parts.push(text);
    }
    parts.join(" ")
}

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

/// Parses an Azure Custom Speech `trans.txt` (`file<TAB>transcript` per line). Tolerates a BOM,
/// CRLF line ends, spaces around names and transcripts, and blank lines. A line without a tab is
/// split at its first whitespace.
pub fn parse_trans_txt(text: &str) -> Vec<(String, String)> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                return None;
            }
            let (name, transcript) = line
                .split_once('\t')
                .or_else(|| line.split_once(char::is_whitespace))
                .unwrap_or((line, ""));
            Some((name.trim().to_string(), transcript.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profanity_parses() {
        assert_eq!("Masked".parse::<Profanity>(), Ok(Profanity::Masked));
        assert_eq!(" REMOVED ".parse::<Profanity>(), Ok(Profanity::Removed));
        assert_eq!("raw".parse::<Profanity>(), Ok(Profanity::Raw));
        assert!("none".parse::<Profanity>().is_err());
    }

    #[test]
    fn profanity_is_applied_to_display() {
        let t = "Well, shit. That damn cat!";
        assert_eq!(
            apply_profanity(t, Profanity::Masked),
            "Well, ****. That **** cat!"
        );
        assert_eq!(apply_profanity(t, Profanity::Removed), "Well,. That cat!");
        assert_eq!(apply_profanity(t, Profanity::Raw), t);
        assert_eq!(
            apply_profanity("Shit happens", Profanity::Removed),
            "happens"
        );
        // whole words only
        assert_eq!(
            apply_profanity("Dickens wrote Scrap", Profanity::Masked),
            "Dickens wrote Scrap"
        );
    }

    #[test]
    fn azure_forms_follow_azure() {
        let f = azure_forms(
            "It costs $3.50, not 1,000 dollars! Don't worry.",
            Profanity::Masked,
        );
        assert_eq!(f.display, "It costs $3.50, not 1,000 dollars! Don't worry.");
        assert_eq!(f.itn, "it costs 3.50 not 1000 dollars don't worry");
        assert_eq!(f.masked_itn, f.itn);
        assert_eq!(
            f.lexical,
            "it costs three point five zero not one thousand dollars don't worry"
        );
        let f = azure_forms("What the fuck, 21st time.", Profanity::Masked);
        assert_eq!(f.display, "What the ****, 21st time.");
        assert_eq!(f.itn, "what the fuck 21st time");
        assert_eq!(f.masked_itn, "what the **** 21st time");
        assert_eq!(f.lexical, "what the fuck twenty first time");
        let f = azure_forms("What the fuck.", Profanity::Removed);
        assert_eq!(f.display, "What the.");
        assert_eq!(f.masked_itn, "what the");
        assert_eq!(azure_forms("", Profanity::Masked), AzureForms::default());
        assert_eq!(
            azure_forms("50% off", Profanity::Raw).lexical,
            "fifty percent off"
        );
    }

    #[test]
    fn integers_are_spelled() {
        assert_eq!(spell_integer(0), "zero");
        assert_eq!(spell_integer(7), "seven");
        assert_eq!(spell_integer(40), "forty");
        assert_eq!(spell_integer(99), "ninety nine");
        assert_eq!(spell_integer(100), "one hundred");
        assert_eq!(spell_integer(1205), "one thousand two hundred five");
        assert_eq!(spell_integer(2_000_019), "two million nineteen");
        assert_eq!(
            spell_integer(3_000_000_512),
            "three billion five hundred twelve"
        );
        assert_eq!(
            spell_integer(1_000_000_000_000_000),
            "one thousand trillion"
        );
        assert_eq!(spell_numbers_in_word("007"), "zero zero seven");
        assert_eq!(spell_numbers_in_word("3.5"), "three point five");
        assert_eq!(spell_numbers_in_word("2nd"), "second");
        assert_eq!(spell_numbers_in_word("40th"), "fortieth");
        assert_eq!(spell_numbers_in_word("covid19"), "covid nineteen");
    }

    #[test]
    fn wer_normalisation() {
        assert_eq!(
            normalize_for_wer("\u{feff}The T-Rex ate 2 fish, didn't it?  "),
            vec!["the", "t", "rex", "ate", "two", "fish", "didn't", "it"]
        );
        assert_eq!(normalize_for_wer("  "), Vec::<String>::new());
        assert_eq!(
            normalize_for_wer("Cretaceous era.\r\n"),
            vec!["cretaceous", "era"]
        );
    }

    #[test]
    fn wer_known_examples() {
        let s = word_errors("the cat sat on the mat", "the cat sat on the mat");
        assert_eq!((s.errors(), s.reference_words), (0, 6));
        let s = word_errors("the cat sat on the mat", "the bat sat the mat too");
        assert_eq!((s.substitutions, s.deletions, s.insertions), (1, 1, 1));
        assert!((s.wer() - 0.5).abs() < 1e-12);
        let s = word_errors("", "hello");
        assert_eq!(s.insertions, 1);
        let s = word_errors("a b c", "");
        assert_eq!((s.deletions, s.wer()), (3, 1.0));
        let mut total = WerStats::default();
        total.add(&word_errors("a b", "a c"));
        total.add(&word_errors("d e", "d e"));
        assert_eq!(total.wer(), 0.25);
        assert_eq!(word_errors("Two birds.", "2 birds").errors(), 0);
    }

    fn naive(r: &[u32], h: &[u32]) -> usize {
        match (r, h) {
            ([], h) => h.len(),
            (r, []) => r.len(),
            ([a, rr @ ..], [b, hh @ ..]) => (naive(rr, hh) + usize::from(a != b))
                .min(naive(rr, h) + 1)
                .min(naive(r, hh) + 1),
        }
    }

    #[test]
    fn alignment_matches_a_naive_oracle() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let n = (next() % 7) as usize;
            let m = (next() % 7) as usize;
            let r: Vec<u32> = (0..n).map(|_| (next() % 4) as u32).collect();
            let h: Vec<u32> = (0..m).map(|_| (next() % 4) as u32).collect();
            let rs: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            let hs: Vec<String> = h.iter().map(|v| v.to_string()).collect();
            let s = align(&rs, &hs);
            assert_eq!(s.errors(), naive(&r, &h), "{r:?} vs {h:?}");
            assert_eq!(s.reference_words, n);
            // consistency: matches = n - S - D = m - S - I
            assert!(s.substitutions + s.deletions <= n);
            assert_eq!(
                n - s.substitutions - s.deletions,
                m - s.substitutions - s.insertions
            );
        }
    }

    #[test]
    fn trans_txt_is_parsed() {
        let t = "\u{feff}b001.wav\tWhat dinosaurs lived  \r\n\r\n  b002.wav \t Tyrannosaurus rex?\r\nb003.wav two words\n";
        assert_eq!(
            parse_trans_txt(t),
            vec![
                ("b001.wav".to_string(), "What dinosaurs lived".to_string()),
                ("b002.wav".to_string(), "Tyrannosaurus rex?".to_string()),
                ("b003.wav".to_string(), "two words".to_string()),
            ]
        );
        assert!(parse_trans_txt("").is_empty());
    }
}
