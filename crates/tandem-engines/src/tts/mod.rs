//! Text-to-speech.
//!
//! Backends: [`flite::FliteSynthesizer`] (BSD-style, always built) and, with the default
//! `espeak` feature, [`espeak::EspeakSynthesizer`] (GPL-3.0-or-later). [`TtsEngine`] puts them
//! behind one [`Synthesizer`] and resolves Azure voice names, long names and aliases;
//! [`render`] speaks a parsed SSML document.

#[cfg(feature = "espeak")]
pub mod espeak;
pub mod flite;

use tandem_audio::Pcm;

use crate::ssml::{Segment, SsmlDocument};
use crate::{EngineError, Result};

/// A voice's gender, as Azure reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// A voice, as listed by `GET /cognitiveservices/voices/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    /// Azure-style short name, e.g. `en-US-SltFlite`.
    pub short_name: String,
    /// Human name, e.g. `Slt`.
    pub display_name: String,
    /// BCP-47 locale, e.g. `en-US`.
    pub locale: String,
    /// Gender.
    pub gender: Gender,
    /// Native sample rate in Hz.
    pub sample_rate: u32,
    /// Engine name, e.g. `flite` or `espeak-ng`.
    pub engine: &'static str,
}

/// Prosody adjustments, as multipliers of the voice's defaults (1.0 = unchanged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prosody {
    /// Speaking rate multiplier (2.0 = twice as fast).
    pub rate: f32,
    /// Pitch multiplier (1.1 = 10 % higher).
    pub pitch: f32,
    /// Linear gain (0.0 = silent).
    pub volume: f32,
}

impl Default for Prosody {
    fn default() -> Self {
        Self {
            rate: 1.0,
            pitch: 1.0,
            volume: 1.0,
        }
    }
}

/// A text-to-speech engine. Implementations are synchronous and CPU-bound.
pub trait Synthesizer: Send + Sync {
    /// The voices this engine offers.
    fn voices(&self) -> Vec<Voice>;
    /// Speaks plain `text` with the voice whose short name is `voice`.
    fn synthesize(&self, voice: &str, text: &str, prosody: &Prosody) -> Result<Pcm>;
}

impl Gender {
    /// Azure's spelling: `Female` or `Male`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "Female",
            Self::Male => "Male",
        }
    }
}

/// Scales samples by `gain` (clamped to [0, 4]; non-finite means unchanged) and clips to [-1, 1].
pub(crate) fn apply_volume(samples: &mut [f32], gain: f32) {
    if !gain.is_finite() || (gain - 1.0).abs() <= f32::EPSILON {
        return;
    }
    let g = gain.clamp(0.0, 4.0);
    for s in samples {
        *s = (*s * g).clamp(-1.0, 1.0);
    }
}

/// Prefix of Tandem's long voice names.
pub const TANDEM_NAME_PREFIX: &str = "Tandem Speech Text to Speech Voice";
/// Prefix of Azure's long voice names, accepted as well.
pub const MICROSOFT_NAME_PREFIX: &str = "Microsoft Server Speech Text to Speech Voice";

/// Azure's long `Name` form of a voice: `Tandem Speech Text to Speech Voice (en-US, SltFlite)`.
pub fn long_name(v: &Voice) -> String {
    let tail = v
        .short_name
        .strip_prefix(v.locale.as_str())
        .and_then(|t| t.strip_prefix('-'))
        .unwrap_or(&v.short_name);
    format!("{TANDEM_NAME_PREFIX} ({}, {tail})", v.locale)
}

/// Longest audio [`render`] produces; like Azure, longer output is truncated.
pub const MAX_OUTPUT_SECS: u32 = 600;

/// Azure en-US neural voices that map to the female flite voice `en-US-SltFlite`.
const US_FEMALE: &[&str] = &["Jenny", "Aria", "Sara", "Michelle", "Ava", "Emma"];
/// Azure en-US neural voices that map to the male flite voice `en-US-RmsFlite`.
const US_MALE: &[&str] = &[
    "Guy",
    "Christopher",
    "Davis",
    "Andrew",
    "Brian",
    "Eric",
    "Tony",
];
/// First names of well-known male Azure neural voices in other locales (others count as female).
const MALE_NAMES: &[&str] = &[
    "Guy",
    "Christopher",
    "Davis",
    "Andrew",
    "Brian",
    "Eric",
    "Tony",
    "Jason",
    "Roger",
    "Steffan",
    "Ryan",
    "Thomas",
    "Alfie",
    "Elliot",
    "Ethan",
    "Noah",
    "Oliver",
    "Conrad",
    "Killian",
    "Kasper",
    "Florian",
    "Bernd",
    "Christoph",
    "Klaus",
    "Ralf",
    "Henri",
    "Alain",
    "Claude",
    "Jerome",
    "Maurice",
    "Yves",
    "Remy",
    "Alvaro",
    "Arnau",
    "Dario",
    "Elias",
    "Nil",
    "Saul",
    "Teo",
    "Jorge",
    "Cecilio",
    "Gerardo",
    "Liberto",
    "Luciano",
    "Pelayo",
    "Yago",
    "Diego",
    "Benigno",
    "Calimero",
    "Cataldo",
    "Gianni",
    "Giuseppe",
    "Lisandro",
    "Rinaldo",
    "Antonio",
    "Donato",
    "Fabio",
    "Humberto",
    "Julio",
    "Nicolau",
    "Valerio",
    "Duarte",
    "Maarten",
    "Marek",
    "Mattias",
    "Sofie",
    "Dmitry",
    "Jeppe",
    "Harri",
    "Finn",
    "Antonin",
    "Keita",
    "Arne",
    "Mats",
];

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
    backends: Vec<Box<dyn Synthesizer>>,
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

    fn resolve(&self, name: &str) -> Option<&(Voice, usize)> {
        let name = name.trim();
        let short = parse_long_name(name).unwrap_or_else(|| name.to_string());
        if let Some(v) = self.by_short(&short) {
            return Some(v);
        }
        self.alias(&short)
    }

    fn alias(&self, short: &str) -> Option<&(Voice, usize)> {
        let lower = short.to_ascii_lowercase();
        let stem_len = lower.strip_suffix("neural")?.len();
        let mut parts = short.splitn(3, '-');
        let (lang, region, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let locale = format!("{lang}-{region}");
        let mut person = &rest[..rest.len() - (short.len() - stem_len)];
        if person.to_ascii_lowercase().ends_with("multilingual") {
            person = &person[..person.len() - "multilingual".len()];
        }
        let is = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(person));
        if locale.eq_ignore_ascii_case("en-US") {
            if is(US_FEMALE) {
                return self.by_short("en-US-SltFlite");
            }
            if is(US_MALE) {
                return self.by_short("en-US-RmsFlite");
            }
        }
        let gender = if is(MALE_NAMES) {
            Gender::Male
        } else {
            Gender::Female
        };
        if locale.eq_ignore_ascii_case("en-US") {
            return self.default_for(&locale);
        }
        let pick = |same_lang: bool| {
            let matches = |v: &Voice| {
                if same_lang {
                    v.locale
                        .split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(lang))
                } else {
                    v.locale.eq_ignore_ascii_case(&locale)
                }
            };
            self.voices
                .iter()
                .find(|(v, _)| matches(v) && v.gender == gender)
                .or_else(|| self.voices.iter().find(|(v, _)| matches(v)))
        };
        pick(false).or_else(|| pick(true))
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

/// `"<prefix> (en-US, SltFlite)"` → `"en-US-SltFlite"` for the Tandem and Microsoft prefixes.
fn parse_long_name(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('(')?;
    let prefix = prefix.trim();
    if !prefix.eq_ignore_ascii_case(TANDEM_NAME_PREFIX)
        && !prefix.eq_ignore_ascii_case(MICROSOFT_NAME_PREFIX)
    {
        return None;
    }
    let inner = rest.trim_end().strip_suffix(')')?;
    let (locale, voice) = inner.split_once(',')?;
    Some(format!("{}-{}", locale.trim(), voice.trim()))
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

/// Speaks a parsed SSML document.
///
/// Every piece is resampled to one rate: the native rate of the first voice used (at least
/// 16 kHz). Silences are inserted as zeros. Output is truncated at [`MAX_OUTPUT_SECS`], as Azure
/// does. A voice that does not resolve is [`EngineError::UnknownVoice`] (checked before any
/// synthesis).
pub fn render(doc: &SsmlDocument, engine: &TtsEngine) -> Result<Pcm> {
    let mut resolved = Vec::with_capacity(doc.segments.len());
    for seg in &doc.segments {
        if let Segment::Speak { voice, .. } = seg {
            let r = engine
                .resolve(voice)
                .ok_or_else(|| EngineError::UnknownVoice(voice.clone()))?;
            resolved.push(Some(r));
        } else {
            resolved.push(None);
        }
    }
    let rate = resolved
        .iter()
        .flatten()
        .next()
        .map_or(16_000, |(v, _)| v.sample_rate.max(16_000));
    let cap = rate as usize * MAX_OUTPUT_SECS as usize;
    let mut out: Vec<f32> = Vec::new();
    for (seg, r) in doc.segments.iter().zip(resolved) {
        if out.len() >= cap {
            break;
        }
        match (seg, r) {
            (Segment::Silence { ms }, _) => {
                let n = (u64::from(*ms) * u64::from(rate) / 1000) as usize;
                let n = n.min(cap - out.len());
                out.resize(out.len() + n, 0.0);
            }
            (Segment::Speak { text, prosody, .. }, Some((v, backend))) => {
                let pcm = engine.backends[*backend].synthesize(&v.short_name, text, prosody)?;
                let pcm = if pcm.sample_rate == rate {
                    pcm
                } else {
                    tandem_audio::resample(&pcm, rate)
                };
                let n = pcm.samples.len().min(cap - out.len());
                out.extend_from_slice(&pcm.samples[..n]);
            }
            (Segment::Speak { voice, .. }, None) => {
                return Err(EngineError::UnknownVoice(voice.clone()));
            }
        }
    }
    Ok(Pcm {
        sample_rate: rate,
        samples: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_round_trip() {
        assert_eq!(
            parse_long_name("Microsoft Server Speech Text to Speech Voice (en-US, JennyNeural)")
                .as_deref(),
            Some("en-US-JennyNeural")
        );
        let v = Voice {
            short_name: "en-US-SltFlite".into(),
            display_name: "Slt".into(),
            locale: "en-US".into(),
            gender: Gender::Female,
            sample_rate: 16_000,
            engine: "flite",
        };
        assert_eq!(
            long_name(&v),
            "Tandem Speech Text to Speech Voice (en-US, SltFlite)"
        );
        assert_eq!(
            parse_long_name(&long_name(&v)).as_deref(),
            Some("en-US-SltFlite")
        );
        assert_eq!(parse_long_name("Someone Else (en-US, X)"), None);
    }

    #[test]
    fn volume_clips() {
        let mut s = vec![0.5, -0.9];
        apply_volume(&mut s, 2.0);
        assert_eq!(s, vec![1.0, -1.0]);
    }
}
