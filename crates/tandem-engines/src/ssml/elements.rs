//! What each element does when it opens: the element table and the attribute checks.

use quick_xml::events::BytesStart;

use super::parser::{Frame, Parser};
use super::prosody::{parse_pitch, parse_rate, parse_time_ms, parse_volume, strength_ms};
use super::{bad, PARAGRAPH_PAUSE_MS, SENTENCE_PAUSE_MS};
use crate::tts::Prosody;
use crate::EngineError;

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

impl Parser<'_> {
    pub(super) fn open(
        &mut self,
        e: &BytesStart<'_>,
        pos: usize,
        empty: bool,
    ) -> Result<(), EngineError> {
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
}
