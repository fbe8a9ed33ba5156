//! SSML parsing: the subset of W3C SSML 1.0 and Azure's `mstts` extensions that Tandem speaks.
//!
//! [`parse`] turns a document into a flat list of [`Segment`]s: text to speak with a voice and
//! prosody, and silences. Everything hostile is rejected with [`EngineError::BadSsml`] and a
//! message that says where and why (it is shown to the API caller): DOCTYPE/ENTITY
//! declarations (entity-expansion bombs), documents that are too large, too deep, have too many
//! elements or too much text, unknown elements, text outside a `<voice>`, and bad attribute
//! values.
//!
//! Supported elements: `speak` (root), `voice` (`name` required), `prosody` (`rate`, `pitch`,
//! `volume`), `break` (`time` capped at 5 s, or `strength`), `p`/`paragraph` and `s`/`sentence`
//! (a short pause after), `sub` (speaks `alias`), `say-as`, `emphasis`, `lang`, `phoneme`,
//! `audio` and `mstts:*` containers (their inner text is spoken), and `bookmark`, `mark`,
//! `lexicon`, `mstts:silence`, `mstts:viseme`, `mstts:backgroundaudio`, `mstts:audioduration`
//! (accepted and ignored).

mod elements;
mod parser;
mod prosody;
#[cfg(test)]
mod tests;

use crate::tts::Prosody;
use crate::EngineError;

use parser::Parser;

/// Longest pause a `<break>` may ask for, in milliseconds (Azure caps at 5 s too).
pub const MAX_BREAK_MS: u32 = 5_000;
/// Pause after a `</p>`, in milliseconds.
pub const PARAGRAPH_PAUSE_MS: u32 = 400;
/// Pause after a `</s>`, in milliseconds.
pub const SENTENCE_PAUSE_MS: u32 = 200;

/// Bounds on what [`parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsmlLimits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (`<speak>` is depth 1).
    pub max_depth: usize,
    /// Most elements in the document.
    pub max_elements: usize,
    /// Most characters of text (after entity expansion) in the document.
    pub max_text_chars: usize,
}

impl Default for SsmlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 32,
            max_elements: 2000,
            max_text_chars: 20_000,
        }
    }
}

/// A parsed SSML document.
#[derive(Debug, Clone, PartialEq)]
pub struct SsmlDocument {
    /// The `xml:lang` of `<speak>`, if given.
    pub lang: Option<String>,
    /// What to say, in order.
    pub segments: Vec<Segment>,
}

/// One piece of a parsed SSML document.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Speak `text` with the voice named `voice` (as written in the document; not yet resolved).
    Speak {
        /// The voice name from `<voice name="...">`.
        voice: String,
        /// Plain text, whitespace-normalized.
        text: String,
        /// Effective prosody (nested `<prosody>` elements combined).
        prosody: Prosody,
    },
    /// Silence.
    Silence {
        /// Length in milliseconds.
        ms: u32,
    },
}

/// Parses an SSML document.
///
/// Errors are [`EngineError::BadSsml`] with a message naming the line and column where possible,
/// e.g. `line 1, column 40: <voice> is missing its name attribute`.
pub fn parse(doc: &str, limits: &SsmlLimits) -> Result<SsmlDocument, EngineError> {
    if doc.len() > limits.max_bytes {
        return Err(EngineError::BadSsml(format!(
            "the document is {} bytes; at most {} are allowed",
            doc.len(),
            limits.max_bytes
        )));
    }
    let mut p = Parser::new(doc, limits);
    p.run()?;
    Ok(SsmlDocument {
        lang: p.lang,
        segments: p.segments,
    })
}

/// "line L, column C" for a byte offset into `doc` (1-based, columns in characters).
fn location(doc: &str, offset: usize) -> String {
    let mut off = offset.min(doc.len());
    while !doc.is_char_boundary(off) {
        off -= 1;
    }
    let before = &doc[..off];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

fn bad(doc: &str, offset: usize, msg: impl std::fmt::Display) -> EngineError {
    EngineError::BadSsml(format!("{}: {msg}", location(doc, offset)))
}
