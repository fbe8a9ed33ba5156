//! [`render`]: speaking a parsed SSML document with a [`TtsEngine`].

use tandem_audio::Pcm;

use super::{TtsEngine, MAX_OUTPUT_SECS};
use crate::ssml::{Segment, SsmlDocument};
use crate::{EngineError, Result};

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
