//! The profanity filter: the built-in word list and Azure's `masked`/`removed`/`raw` options.

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
