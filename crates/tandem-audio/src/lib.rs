//! Audio for Tandem: WAV in, WAV/raw out, resampling, and voice activity detection.
//!
//! Everything works on [`Pcm`]: mono `f32` samples in [-1, 1] at a known rate.
//!
//! - [`decode_wav`] — our own RIFF/WAVE parser for untrusted uploads (PCM and float, streaming
//!   headers with placeholder sizes); errors are [`AudioError`], written for API callers.
//! - [`resample`] — band-limited windowed-sinc rate conversion.
//! - [`encode_wav_pcm16`], [`OutputFormat`] — Azure `X-Microsoft-OutputFormat` encodings,
//!   including G.711 mu-law/A-law ([`linear_to_mulaw`], [`linear_to_alaw`]).
//! - [`detect_speech`], [`voiced_secs`] — energy VAD with an adaptive noise floor;
//!   [`peak_dbfs`], [`rms_dbfs`] — levels.

#![deny(missing_docs)]

mod decode;
mod encode;
mod error;
mod format;
mod level;
mod resample;
#[cfg(test)]
mod test_data;
mod vad;

pub use decode::{decode_wav, decode_wav_with_format, WavFormat};
pub use encode::{encode_wav_pcm16, linear_to_alaw, linear_to_mulaw};
pub use error::AudioError;
pub use format::OutputFormat;
pub use level::{peak_dbfs, rms_dbfs, SILENCE_DBFS};
pub use resample::resample;
pub use vad::{detect_speech, voiced_secs, SpeechSpan};

/// Mono audio: `f32` samples in [-1, 1] at `sample_rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// The samples, mono.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / self.sample_rate as f64
    }
}
