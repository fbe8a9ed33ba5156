//! [`TtsEngine`]: every backend's voices behind one [`Synthesizer`], and voice name resolution.

mod aliases;

use tandem_audio::Pcm;

#[cfg(feature = "espeak")]
use super::espeak;
use super::{flite, parse_long_name, Prosody, Synthesizer, Voice};
use crate::{EngineError, Result};

/// Every voice of every backend behind one [`Synthesizer`].
///
/// Voice names are resolved by [`TtsEngine::resolve_voice`]:
///
/// 1. a ShortName, case-insensitively (`en-us-sltflite`);
/// 2. the long `Name` form with the Tandem or the Microsoft prefix
///    (`Microsoft Server Speech Text to Speech Voice (en-US, SltFlite)`);
/// 3. aliases, so existing Azure scripts run unchanged. An Azure neural name
///    `{locale}-{Name}[Multilingual]Neural` maps to:
///    - for en-US: `en-US-SltFlite` for Jenny, Aria, Sara, Michelle, Ava, Emma;
///      `en-US-RmsFlite` for Guy, Christopher, Davis, Andrew, Brian, Eric, Tony; any other
///      en-US neural name to the en-US default (`en-US-SltFlite`);
///    - for other locales: that locale's espeak-ng voice, `{locale}-Espeak` for well-known male
///      names and `{locale}-EspeakF` otherwise; if the locale has no voice, the same-gender (else
///      any) voice of the same language (`en-AU-NatashaNeural` → an English voice).
pub struct TtsEngine {
    pub(super) backends: Vec<Box<dyn Synthesizer>>,
    /// (voice, index into `backends`).
    voices: Vec<(Voice, usize)>,
}

impl std::fmt::Debug for TtsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsEngine")
            .field("voices", &self.voices.len())
            .finish()
    }
}

impl TtsEngine {
    /// All backends compiled in. espeak-ng voices are left out (with a warning) when its data
    /// directory is missing.
    pub fn new() -> Result<Self> {
        #[cfg_attr(not(feature = "espeak"), allow(unused_mut))]
        let mut backends: Vec<Box<dyn Synthesizer>> =
            vec![Box::new(flite::FliteSynthesizer::new())];
        #[cfg(feature = "espeak")]
        {
            let e = espeak::EspeakSynthesizer::new();
            match e.synthesize("en-GB-Espeak", "", &Prosody::default()) {
                Ok(_) => backends.push(Box::new(e)),
                Err(err) => tracing::warn!("espeak-ng voices disabled: {err}"),
            }
        }
        Ok(Self::with_backends(backends))
    }

    /// An engine over the given backends (earlier backends win on duplicate names).
    pub fn with_backends(backends: Vec<Box<dyn Synthesizer>>) -> Self {
        let mut voices: Vec<(Voice, usize)> = Vec::new();
        for (i, b) in backends.iter().enumerate() {
            for v in b.voices() {
                if !voices
                    .iter()
                    .any(|(w, _)| w.short_name.eq_ignore_ascii_case(&v.short_name))
                {
                    voices.push((v, i));
                }
            }
        }
        Self { backends, voices }
    }

    /// The voices, in listing order.
    pub fn voice_list(&self) -> impl Iterator<Item = &Voice> {
        self.voices.iter().map(|(v, _)| v)
    }

    fn by_short(&self, name: &str) -> Option<&(Voice, usize)> {
        self.voices
            .iter()
            .find(|(v, _)| v.short_name.eq_ignore_ascii_case(name))
    }

    /// Finds a voice by ShortName, long Name or alias (see [`TtsEngine`]).
    pub fn resolve_voice(&self, name: &str) -> Option<&Voice> {
        self.resolve(name).map(|(v, _)| v)
    }

    pub(super) fn resolve(&self, name: &str) -> Option<&(Voice, usize)> {
        let name = name.trim();
        let short = parse_long_name(name).unwrap_or_else(|| name.to_string());
        if let Some(v) = self.by_short(&short) {
            return Some(v);
        }
        self.alias(&short)
    }

    fn default_for(&self, locale: &str) -> Option<&(Voice, usize)> {
        let lang = locale.split(['-', '_']).next().unwrap_or(locale);
        self.voices
            .iter()
            .find(|(v, _)| v.locale.eq_ignore_ascii_case(&locale.replace('_', "-")))
            .or_else(|| {
                self.voices.iter().find(|(v, _)| {
                    v.locale
                        .split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(lang))
                })
            })
    }

    /// The voice to use for `locale` when none is named: the first voice of that locale, else
    /// the first of the same language (`en-AU` → an English voice), else `None`.
    pub fn default_voice_for_locale(&self, locale: &str) -> Option<&Voice> {
        self.default_for(locale).map(|(v, _)| v)
    }
}

impl Synthesizer for TtsEngine {
    fn voices(&self) -> Vec<Voice> {
        self.voice_list().cloned().collect()
    }

    /// `voice` may be anything [`TtsEngine::resolve_voice`] accepts.
    fn synthesize(&self, voice: &str, text: &str, prosody: &Prosody) -> Result<Pcm> {
        let (v, backend) = self
            .resolve(voice)
            .ok_or_else(|| EngineError::UnknownVoice(voice.to_string()))?;
        self.backends[*backend].synthesize(&v.short_name, text, prosody)
    }
}
