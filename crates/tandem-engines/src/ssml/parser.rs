//! The event loop over the XML, the stack of open elements, and the segments it emits.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{bad, Segment, SsmlLimits};
use crate::tts::Prosody;
use crate::EngineError;

/// One open element.
pub(super) struct Frame {
    pub(super) voice: Option<String>,
    pub(super) prosody: Prosody,
    /// Text inside is not spoken (e.g. inside `<sub>`, whose alias is spoken instead).
    pub(super) mute: bool,
    /// Silence to add when the element closes.
    pub(super) pause_after: u32,
}

pub(super) struct Parser<'a> {
    pub(super) doc: &'a str,
    pub(super) limits: &'a SsmlLimits,
    pub(super) stack: Vec<Frame>,
    pub(super) segments: Vec<Segment>,
    pub(super) lang: Option<String>,
    pub(super) elements: usize,
    pub(super) text_chars: usize,
    pub(super) seen_root: bool,
    pub(super) root_closed: bool,
}

impl<'a> Parser<'a> {
    pub(super) fn new(doc: &'a str, limits: &'a SsmlLimits) -> Self {
        Self {
            doc,
            limits,
            stack: Vec::new(),
            segments: Vec::new(),
            lang: None,
            elements: 0,
            text_chars: 0,
            seen_root: false,
            root_closed: false,
        }
    }

    pub(super) fn run(&mut self) -> Result<(), EngineError> {
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

    pub(super) fn attr(
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

    pub(super) fn close(&mut self, name: &str, pos: usize) -> Result<(), EngineError> {
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

    pub(super) fn finish(&mut self, frame: &Frame) {
        if frame.pause_after > 0 && !frame.mute {
            self.silence(frame.pause_after);
        }
    }

    pub(super) fn count_text(&mut self, text: &str, pos: usize) -> Result<(), EngineError> {
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

    pub(super) fn text(&mut self, text: &str, pos: usize) -> Result<(), EngineError> {
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

    pub(super) fn speak(
        &mut self,
        frame: &Frame,
        text: &str,
        pos: usize,
    ) -> Result<(), EngineError> {
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

    pub(super) fn silence(&mut self, ms: u32) {
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
