//! Numbers spelled out in English words, for Azure's `Lexical` form and for WER normalisation.

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
pub(super) fn spell_numbers_in_word(word: &str) -> String {
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
