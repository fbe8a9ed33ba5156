//! Text → IPA phonemes with espeak-ng, the way Piper does it (piper-phonemize's
//! `phonemize_eSpeak`): one `espeak_TextToPhonemes` call per clause, the clause's punctuation
//! kept as a phoneme, and a new sentence after `.`, `?` and `!`.
//!
//! Debian's espeak-ng 1.51 lacks Piper's `espeak_TextToPhonemesWithTerminator`, so the
//! punctuation that ended a clause is read from the text that the call consumed. espeak reads
//! one character past a clause (the first of the next one, which it keeps for the next call),
//! so that character is not part of the clause.

// Without espeak-ng only the tests use the clause handling.
#![cfg_attr(not(feature = "espeak"), allow(dead_code))]

/// Clause-ending punctuation and what Piper appends for it: the mark, plus a space after the
/// marks that do not end a sentence.
fn terminator(c: char) -> Option<(&'static [char], bool)> {
    match c {
        '.' => Some((&['.'], true)),
        '?' => Some((&['?'], true)),
        '!' => Some((&['!'], true)),
        ',' => Some((&[',', ' '], false)),
        ':' => Some((&[':', ' '], false)),
        ';' => Some((&[';', ' '], false)),
        _ => None,
    }
}

/// Adds one clause (espeak's IPA for it, and the text it consumed) to `sentences`, the last of
/// which is the sentence being built (an empty one is started when needed). `read_ahead`: the
/// last character of `consumed` belongs to the next clause (every clause but the last).
pub(super) fn push_clause(
    sentences: &mut Vec<Vec<char>>,
    ipa: &str,
    consumed: &str,
    read_ahead: bool,
) {
    if sentences.is_empty() {
        sentences.push(Vec::new());
    }
    let current = sentences.last_mut().expect("not empty");
    current.extend(strip_language_switches(ipa.trim()).chars());
    let mut source = consumed.chars();
    if read_ahead {
        // Drop the next clause's first character, unless this espeak-ng did not read ahead
        // (the clause then ends in its punctuation or a space).
        let mut peek = source.clone();
        if peek
            .next_back()
            .is_some_and(|c| !c.is_whitespace() && terminator(c).is_none())
        {
            source = peek;
        }
    }
    // Closing quotes and brackets may follow the punctuation: `"Hi." Then`.
    let end = source
        .as_str()
        .trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»')
        })
        .chars()
        .last()
        .and_then(terminator);
    if let Some((marks, sentence_end)) = end {
        current.extend_from_slice(marks);
        if sentence_end {
            sentences.push(Vec::new());
        }
    }
}

/// Removes espeak's language-switch markers, e.g. `(fr)` and `(en)` around a foreign word.
fn strip_language_switches(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut rest = ipa;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close)
                if close <= 8
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(feature = "espeak")]
pub(super) use with_espeak::phonemize;

#[cfg(feature = "espeak")]
mod with_espeak {
    use std::ffi::{c_char, c_int, c_void, CStr, CString};

    use crate::tts::espeak::{init, ESPEAK_LOCK};
    use crate::{EngineError, Result};

    const ESPEAK_CHARS_UTF8: c_int = 1;
    const ESPEAK_PHONEMES_IPA: c_int = 0x02;
    const EE_OK: c_int = 0;

    extern "C" {
        fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
        fn espeak_TextToPhonemes(
            textptr: *mut *const c_void,
            textmode: c_int,
            phonememode: c_int,
        ) -> *const c_char;
    }

    /// The IPA phonemes of `text` read by espeak-ng voice `voice`, one `Vec` per sentence
    /// (sentences without phonemes are dropped).
    pub(crate) fn phonemize(voice: &str, text: &str) -> Result<Vec<Vec<char>>> {
        init()?;
        let clean: String = text.chars().filter(|&c| c != '\0').collect();
        let cvoice = CString::new(voice).map_err(|e| EngineError::Engine(e.to_string()))?;
        let ctext = CString::new(clean).map_err(|e| EngineError::Engine(e.to_string()))?;
        let bytes = ctext.as_bytes();
        let mut sentences: Vec<Vec<char>> = Vec::new();

        let _g = ESPEAK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: espeak-ng is initialized and every call is made under ESPEAK_LOCK. `ctext`
        // outlives the loop; espeak_TextToPhonemes moves `ptr` forward inside it (or sets it to
        // NULL at the end) and returns a NUL-terminated string that stays valid until the next
        // call, which is copied at once.
        unsafe {
            if espeak_SetVoiceByName(cvoice.as_ptr()) != EE_OK {
                return Err(EngineError::Engine(format!(
                    "espeak-ng has no voice {voice:?} to phonemize with"
                )));
            }
            let base = ctext.as_ptr() as usize;
            let mut ptr: *const c_void = ctext.as_ptr().cast();
            let mut calls = 0usize;
            while !ptr.is_null() {
                let start = (ptr as usize).saturating_sub(base).min(bytes.len());
                let out = espeak_TextToPhonemes(&mut ptr, ESPEAK_CHARS_UTF8, ESPEAK_PHONEMES_IPA);
                let ipa = if out.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(out).to_string_lossy().into_owned()
                };
                let end = if ptr.is_null() {
                    bytes.len()
                } else {
                    (ptr as usize).saturating_sub(base).min(bytes.len())
                };
                let consumed = String::from_utf8_lossy(&bytes[start..end.max(start)]);
                super::push_clause(&mut sentences, &ipa, &consumed, !ptr.is_null());
                calls += 1;
                // Every call consumes at least one character; this only guards against a
                // library that would not move the pointer.
                if calls > bytes.len() + 1 {
                    break;
                }
            }
        }
        sentences.retain(|s| s.iter().any(|c| c.is_alphabetic()));
        Ok(sentences)
    }
}

/// Without espeak-ng (the `espeak` feature is off) Piper voices cannot phonemize.
#[cfg(not(feature = "espeak"))]
pub(super) fn phonemize(_voice: &str, _text: &str) -> crate::Result<Vec<Vec<char>>> {
    Err(crate::EngineError::Engine(
        "Piper voices need espeak-ng: this build has the `espeak` feature turned off".into(),
    ))
}
