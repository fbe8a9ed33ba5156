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

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::tts::Prosody;
use crate::EngineError;

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

/// One open element.
struct Frame {
    voice: Option<String>,
    prosody: Prosody,
    /// Text inside is not spoken (e.g. inside `<sub>`, whose alias is spoken instead).
    mute: bool,
    /// Silence to add when the element closes.
    pause_after: u32,
}

/// What an element does.
enum Kind {
    Speak,
    Voice,
    Prosody,
    Break,
    Paragraph,
    Sentence,
    Sub,
    /// Speaks its inner text unchanged.
    Container,
    /// Accepted, contents not spoken.
    Ignored,
}

fn classify(name: &str) -> Option<Kind> {
    Some(match name {
        "speak" => Kind::Speak,
        "voice" => Kind::Voice,
        "prosody" => Kind::Prosody,
        "break" => Kind::Break,
        "p" | "paragraph" => Kind::Paragraph,
        "s" | "sentence" => Kind::Sentence,
        "sub" => Kind::Sub,
        "say-as" | "emphasis" | "lang" | "phoneme" | "audio" | "w" => Kind::Container,
        "bookmark" | "mark" | "lexicon" | "desc" => Kind::Ignored,
        "mstts:silence"
        | "mstts:viseme"
        | "mstts:backgroundaudio"
        | "mstts:audioduration"
        | "mstts:ttsembedding"
        | "mstts:voiceconversion" => Kind::Ignored,
        n if n.starts_with("mstts:") => Kind::Container,
        _ => return None,
    })
}

struct Parser<'a> {
    doc: &'a str,
    limits: &'a SsmlLimits,
    stack: Vec<Frame>,
    segments: Vec<Segment>,
    lang: Option<String>,
    elements: usize,
    text_chars: usize,
    seen_root: bool,
    root_closed: bool,
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
    let mut p = Parser {
        doc,
        limits,
        stack: Vec::new(),
        segments: Vec::new(),
        lang: None,
        elements: 0,
        text_chars: 0,
        seen_root: false,
        root_closed: false,
    };
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

impl Parser<'_> {
    fn run(&mut self) -> Result<(), EngineError> {
        let mut reader = Reader::from_str(self.doc);
        {
            let cfg = reader.config_mut();
            cfg.trim_text(false);
            cfg.check_end_names = true;
            cfg.expand_empty_elements = false;
        }
        loop {
            let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let at = usize::try_from(reader.error_position()).unwrap_or(pos);
                    return Err(bad(self.doc, at, format!("not well-formed XML ({e})")));
                }
            };
            match event {
                Event::Eof => break,
                Event::DocType(_) => {
                    return Err(bad(
                        self.doc,
                        pos,
                        "DOCTYPE declarations are not allowed (XML entity expansion attacks)",
                    ))
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Start(e) => self.open(&e, pos, false)?,
                Event::Empty(e) => self.open(&e, pos, true)?,
                Event::End(e) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    self.close(&name, pos)?;
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| {
                        bad(
                            self.doc,
                            pos,
                            format!("bad character or entity reference ({e})"),
                        )
                    })?;
                    self.text(&text, pos)?;
                }
                Event::CData(c) => {
                    let raw = c.into_inner();
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    self.text(&text, pos)?;
                }
            }
        }
        if !self.seen_root {
            return Err(EngineError::BadSsml(
                "the document has no <speak> root element".into(),
            ));
        }
        if !self.stack.is_empty() {
            return Err(bad(
                self.doc,
                self.doc.len(),
                "unexpected end of document: <speak> is not closed",
            ));
        }
        Ok(())
    }

    fn attr(
        &self,
        e: &BytesStart<'_>,
        key: &str,
        pos: usize,
    ) -> Result<Option<String>, EngineError> {
        for a in e.attributes() {
            let a = a.map_err(|err| bad(self.doc, pos, format!("bad attribute ({err})")))?;
            if a.key.as_ref() == key.as_bytes() {
                let v = a.unescape_value().map_err(|err| {
                    bad(
                        self.doc,
                        pos,
                        format!("bad value of attribute {key} ({err})"),
                    )
                })?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    fn open(&mut self, e: &BytesStart<'_>, pos: usize, empty: bool) -> Result<(), EngineError> {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        if self.root_closed {
            return Err(bad(
                self.doc,
                pos,
                format!("<{name}> after the closing </speak>"),
            ));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(bad(
                self.doc,
                pos,
                format!("too many elements (at most {})", self.limits.max_elements),
            ));
        }
        if self.stack.len() + 1 > self.limits.max_depth {
            return Err(bad(
                self.doc,
                pos,
                format!(
                    "elements are nested too deeply (at most {} levels)",
                    self.limits.max_depth
                ),
            ));
        }
        // Validate all attributes once (catches bad entity references in any attribute).
        for a in e.attributes() {
            let a = a.map_err(|err| {
                bad(
                    self.doc,
                    pos,
                    format!("<{name}> has a bad attribute ({err})"),
                )
            })?;
            a.unescape_value().map_err(|err| {
                bad(
                    self.doc,
                    pos,
                    format!("<{name}> has a bad attribute value ({err})"),
                )
            })?;
        }
        if self.stack.is_empty() && name != "speak" {
            return Err(bad(
                self.doc,
                pos,
                format!("the root element must be <speak>, not <{name}>"),
            ));
        }
        let Some(kind) = classify(&name) else {
            return Err(bad(self.doc, pos, format!("unsupported element <{name}>")));
        };
        if self.stack.is_empty() {
            if self.seen_root {
                return Err(bad(
                    self.doc,
                    pos,
                    "only one <speak> root element is allowed",
                ));
            }
        } else if matches!(kind, Kind::Speak) {
            return Err(bad(self.doc, pos, "<speak> may only be the root element"));
        }
        let parent = self.stack.last();
        let mut frame = Frame {
            voice: parent.and_then(|f| f.voice.clone()),
            prosody: parent.map_or_else(Prosody::default, |f| f.prosody),
            mute: parent.is_some_and(|f| f.mute),
            pause_after: 0,
        };
        match kind {
            Kind::Speak => {
                self.seen_root = true;
                self.lang = self.attr(e, "xml:lang", pos)?;
            }
            Kind::Voice => {
                let Some(v) = self.attr(e, "name", pos)? else {
                    return Err(bad(self.doc, pos, "<voice> is missing its name attribute"));
                };
                let v = v.trim();
                if v.is_empty() {
                    return Err(bad(self.doc, pos, "<voice> has an empty name attribute"));
                }
                frame.voice = Some(v.to_string());
            }
            Kind::Prosody => {
                if let Some(v) = self.attr(e, "rate", pos)? {
                    frame.prosody.rate = parse_rate(&v, frame.prosody.rate)
                        .ok_or_else(|| bad(self.doc, pos, format!("<prosody> rate {v:?} is not a valid rate (x-slow, slow, medium, fast, x-fast, default, +20%, -10%, 1.2)")))?;
                }
                if let Some(v) = self.attr(e, "pitch", pos)? {
                    frame.prosody.pitch = parse_pitch(&v, frame.prosody.pitch)
                        .ok_or_else(|| bad(self.doc, pos, format!("<prosody> pitch {v:?} is not a valid pitch (x-low, low, medium, high, x-high, default, +10%, -2st, +50Hz)")))?;
                }
                if let Some(v) = self.attr(e, "volume", pos)? {
                    frame.prosody.volume = parse_volume(&v, frame.prosody.volume)
                        .ok_or_else(|| bad(self.doc, pos, format!("<prosody> volume {v:?} is not a valid volume (silent, x-soft, soft, medium, loud, x-loud, default, 0-100, +6dB, -20%)")))?;
                }
            }
            Kind::Break => {
                let ms = if let Some(t) = self.attr(e, "time", pos)? {
                    parse_time_ms(&t).ok_or_else(|| {
                        bad(
                            self.doc,
                            pos,
                            format!("<break> time {t:?} is not a duration like 500ms or 2s"),
                        )
                    })?
                } else if let Some(s) = self.attr(e, "strength", pos)? {
                    strength_ms(&s).ok_or_else(|| {
                        bad(self.doc, pos, format!("<break> strength {s:?} is not one of none, x-weak, weak, medium, strong, x-strong"))
                    })?
                } else {
                    500
                };
                self.silence(ms);
                frame.mute = true;
            }
            Kind::Paragraph => frame.pause_after = PARAGRAPH_PAUSE_MS,
            Kind::Sentence => frame.pause_after = SENTENCE_PAUSE_MS,
            Kind::Sub => {
                let Some(alias) = self.attr(e, "alias", pos)? else {
                    return Err(bad(self.doc, pos, "<sub> is missing its alias attribute"));
                };
                if !frame.mute {
                    self.count_text(&alias, pos)?;
                    self.speak(&frame, &alias, pos)?;
                }
                frame.mute = true;
            }
            Kind::Container => {}
            Kind::Ignored => frame.mute = true,
        }
        if empty {
            self.finish(&frame);
            if matches!(kind, Kind::Speak) {
                self.root_closed = true;
            }
        } else {
            self.stack.push(frame);
        }
        Ok(())
    }

    fn close(&mut self, name: &str, pos: usize) -> Result<(), EngineError> {
        let Some(frame) = self.stack.pop() else {
            return Err(bad(
                self.doc,
                pos,
                format!("unexpected closing tag </{name}>"),
            ));
        };
        self.finish(&frame);
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        Ok(())
    }

    fn finish(&mut self, frame: &Frame) {
        if frame.pause_after > 0 && !frame.mute {
            self.silence(frame.pause_after);
        }
    }

    fn count_text(&mut self, text: &str, pos: usize) -> Result<(), EngineError> {
        self.text_chars = self.text_chars.saturating_add(text.chars().count());
        if self.text_chars > self.limits.max_text_chars {
            return Err(bad(
                self.doc,
                pos,
                format!(
                    "too much text (at most {} characters)",
                    self.limits.max_text_chars
                ),
            ));
        }
        Ok(())
    }

    fn text(&mut self, text: &str, pos: usize) -> Result<(), EngineError> {
        self.count_text(text, pos)?;
        if text.trim().is_empty() {
            return Ok(());
        }
        let Some(frame) = self.stack.last() else {
            let msg = if self.seen_root {
                "text after the closing </speak>"
            } else {
                "the document is not SSML: text before any <speak> root element"
            };
            return Err(bad(self.doc, pos, msg));
        };
        if frame.mute {
            return Ok(());
        }
        // Split the borrow: speak() only needs the frame's values.
        let voice = frame.voice.clone();
        let prosody = frame.prosody;
        let f = Frame {
            voice,
            prosody,
            mute: false,
            pause_after: 0,
        };
        self.speak(&f, text, pos)
    }

    fn speak(&mut self, frame: &Frame, text: &str, pos: usize) -> Result<(), EngineError> {
        let norm: Cow<'_, str> = normalize_ws(text);
        if norm.is_empty() {
            return Ok(());
        }
        let Some(voice) = &frame.voice else {
            return Err(bad(
                self.doc,
                pos,
                "text must be inside a <voice name=\"...\"> element",
            ));
        };
        if let Some(Segment::Speak {
            voice: v,
            text: t,
            prosody: p,
        }) = self.segments.last_mut()
        {
            if v == voice && *p == frame.prosody {
                t.push(' ');
                t.push_str(&norm);
                return Ok(());
            }
        }
        self.segments.push(Segment::Speak {
            voice: voice.clone(),
            text: norm.into_owned(),
            prosody: frame.prosody,
        });
        Ok(())
    }

    fn silence(&mut self, ms: u32) {
        if ms == 0 {
            return;
        }
        if let Some(Segment::Silence { ms: m }) = self.segments.last_mut() {
            *m = m.saturating_add(ms);
        } else {
            self.segments.push(Segment::Silence { ms });
        }
    }
}

fn normalize_ws(s: &str) -> Cow<'_, str> {
    let t = s.trim();
    if !t.contains(|c: char| c.is_whitespace() && c != ' ') && !t.contains("  ") {
        return Cow::Borrowed(t);
    }
    Cow::Owned(t.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A number with optional leading sign, finite.
fn num(s: &str) -> Option<f32> {
    let s = s.trim();
    if s.is_empty() || s.contains(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))) {
        return None;
    }
    let v: f32 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// `rate`: named, `+20%`/`-10%` relative to the current rate, or a plain multiplier.
fn parse_rate(v: &str, current: f32) -> Option<f32> {
    let v = v.trim();
    let r = match v {
        "x-slow" => 0.5,
        "slow" => 0.64,
        "medium" | "default" => 1.0,
        "fast" => 1.55,
        "x-fast" => 2.0,
        _ => {
            if let Some(p) = v.strip_suffix('%') {
                let p = num(p)?;
                if p.is_sign_positive() && !v.starts_with(['+', '-']) {
                    // "120%": absolute percentage of the default rate.
                    p / 100.0
                } else {
                    current * (1.0 + p / 100.0)
                }
            } else {
                current * num(v)?
            }
        }
    };
    (r > 0.0).then(|| r.clamp(0.25, 4.0))
}

/// `pitch`: named, `+10%`, `-2st` semitones, `+50Hz` (relative to a nominal 150 Hz), `200Hz`.
fn parse_pitch(v: &str, current: f32) -> Option<f32> {
    const NOMINAL_HZ: f32 = 150.0;
    let v = v.trim();
    let signed = v.starts_with(['+', '-']);
    let p = match v {
        "x-low" => 0.5,
        "low" => 0.75,
        "medium" | "default" => 1.0,
        "high" => 1.25,
        "x-high" => 1.5,
        _ => {
            if let Some(x) = v.strip_suffix('%') {
                current * (1.0 + num(x)? / 100.0)
            } else if let Some(x) = v.strip_suffix("st") {
                current * 2f32.powf(num(x)? / 12.0)
            } else if let Some(x) = v.strip_suffix("Hz").or_else(|| v.strip_suffix("hz")) {
                let hz = num(x)?;
                if signed {
                    current * (1.0 + hz / NOMINAL_HZ)
                } else {
                    hz / NOMINAL_HZ
                }
            } else {
                return None;
            }
        }
    };
    (p.is_finite() && p > 0.0).then(|| p.clamp(0.25, 4.0))
}

/// `volume`: named, absolute `0`..`100`, relative `+10`, `+6dB`, `-20%`.
fn parse_volume(v: &str, current: f32) -> Option<f32> {
    let v = v.trim();
    let signed = v.starts_with(['+', '-']);
    let g = match v {
        "silent" => 0.0,
        "x-soft" => 0.2,
        "soft" => 0.4,
        "medium" => 0.6,
        "loud" => 0.8,
        "x-loud" | "default" => 1.0,
        _ => {
            if let Some(x) = v.strip_suffix("dB").or_else(|| v.strip_suffix("db")) {
                current * 10f32.powf(num(x)? / 20.0)
            } else if let Some(x) = v.strip_suffix('%') {
                let p = num(x)?;
                if signed {
                    current * (1.0 + p / 100.0)
                } else {
                    p / 100.0
                }
            } else {
                let n = num(v)?;
                if signed {
                    current * (1.0 + n / 100.0)
                } else if (0.0..=100.0).contains(&n) {
                    n / 100.0
                } else {
                    return None;
                }
            }
        }
    };
    g.is_finite().then(|| g.clamp(0.0, 4.0))
}

/// `500ms`, `2s`, `1.5s`; capped at [`MAX_BREAK_MS`].
fn parse_time_ms(t: &str) -> Option<u32> {
    let t = t.trim();
    let (n, scale) = if let Some(x) = t.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = t.strip_suffix('s') {
        (x, 1000.0)
    } else {
        return None;
    };
    if n.starts_with(['+', '-']) {
        return None;
    }
    let v = num(n)? * scale;
    (v >= 0.0).then(|| v.min(MAX_BREAK_MS as f32).round() as u32)
}

fn strength_ms(s: &str) -> Option<u32> {
    Some(match s.trim() {
        "none" => 0,
        "x-weak" => 100,
        "weak" => 250,
        "medium" => 500,
        "strong" => 750,
        "x-strong" => 1000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(doc: &str) -> Result<SsmlDocument, EngineError> {
        parse(doc, &SsmlLimits::default())
    }

    #[test]
    fn values() {
        assert_eq!(parse_rate("+20%", 1.0), Some(1.2));
        assert_eq!(parse_rate("-10%", 1.0), Some(0.9));
        assert_eq!(parse_rate("1.5", 1.0), Some(1.5));
        assert_eq!(parse_rate("x-fast", 1.0), Some(2.0));
        assert_eq!(parse_rate("fast!", 1.0), None);
        assert!((parse_pitch("-12st", 1.0).unwrap() - 0.5).abs() < 1e-5);
        assert!((parse_pitch("+15Hz", 1.0).unwrap() - 1.1).abs() < 1e-5);
        assert!((parse_volume("-6dB", 1.0).unwrap() - 0.501).abs() < 1e-3);
        assert_eq!(parse_volume("50", 1.0), Some(0.5));
        assert_eq!(parse_volume("150", 1.0), None);
        assert_eq!(parse_time_ms("700ms"), Some(700));
        assert_eq!(parse_time_ms("1.5s"), Some(1500));
        assert_eq!(parse_time_ms("60s"), Some(MAX_BREAK_MS));
        assert_eq!(parse_time_ms("-1s"), None);
        assert_eq!(parse_time_ms("abc"), None);
        assert_eq!(parse_time_ms("NaNs"), None);
    }

    #[test]
    fn location_is_one_based() {
        assert_eq!(location("ab\ncd", 4), "line 2, column 2");
        assert_eq!(location("", 0), "line 1, column 1");
    }

    #[test]
    fn merges_and_normalizes() {
        let d = p("<speak version='1.0' xml:lang='en-US'><voice name='v'>Hello\n  <emphasis>big</emphasis> world</voice></speak>").unwrap();
        assert_eq!(d.lang.as_deref(), Some("en-US"));
        assert_eq!(
            d.segments,
            vec![Segment::Speak {
                voice: "v".into(),
                text: "Hello big world".into(),
                prosody: Prosody::default()
            }]
        );
    }

    #[test]
    fn sub_speaks_alias() {
        let d = p("<speak><voice name='v'><sub alias='World Wide Web'>WWW</sub></voice></speak>")
            .unwrap();
        assert!(matches!(&d.segments[0], Segment::Speak { text, .. } if text == "World Wide Web"));
    }
}
