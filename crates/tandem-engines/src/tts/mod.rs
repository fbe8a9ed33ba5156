//! Text-to-speech.
//!
//! Backends: [`flite::FliteSynthesizer`] (BSD-style, always built) and, with the default
//! `espeak` feature, [`espeak::EspeakSynthesizer`] (GPL-3.0-or-later). [`TtsEngine`] puts them
//! behind one [`Synthesizer`] and resolves Azure voice names, long names and aliases;
//! [`render`] speaks a parsed SSML document. [`piper::PiperVoice`] runs Piper (VITS ONNX) voices,
//! the base of custom neural voices.

#[cfg(feature = "espeak")]
pub mod espeak;
pub mod flite;
pub mod piper;

mod registry;
mod render;

pub use registry::TtsEngine;
pub use render::render;

use tandem_audio::Pcm;

use crate::Result;

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
