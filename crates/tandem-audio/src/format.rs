//! Azure `X-Microsoft-OutputFormat` names and the encodings behind them.
//!
//! Content types: `riff-*` formats are `audio/x-wav`; raw G.711 (mu-law and A-law) is
//! `audio/basic`, the traditional type for headerless 8 kHz telephony audio; raw 16-bit PCM is
//! `application/octet-stream`, because `audio/L16` would require rate parameters and big-endian
//! samples, which Azure clients do not expect.

use std::fmt;
use std::str::FromStr;

use crate::encode::{g711_bytes, linear_to_alaw, linear_to_mulaw, pcm16_bytes, wav_header};
use crate::encode::{TAG_ALAW, TAG_MULAW, TAG_PCM};
use crate::{resample, AudioError, Pcm};

/// An audio output format, named as in Azure's `X-Microsoft-OutputFormat` header. All are mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// `riff-8khz-16bit-mono-pcm`
    Riff8Khz16BitMonoPcm,
    /// `riff-16khz-16bit-mono-pcm`
    Riff16Khz16BitMonoPcm,
    /// `riff-22050hz-16bit-mono-pcm`
    Riff22050Hz16BitMonoPcm,
    /// `riff-24khz-16bit-mono-pcm`
    Riff24Khz16BitMonoPcm,
    /// `riff-44100hz-16bit-mono-pcm`
    Riff44100Hz16BitMonoPcm,
    /// `riff-48khz-16bit-mono-pcm`
    Riff48Khz16BitMonoPcm,
    /// `raw-8khz-16bit-mono-pcm`
    Raw8Khz16BitMonoPcm,
    /// `raw-16khz-16bit-mono-pcm`
    Raw16Khz16BitMonoPcm,
    /// `raw-22050hz-16bit-mono-pcm`
    Raw22050Hz16BitMonoPcm,
    /// `raw-24khz-16bit-mono-pcm`
    Raw24Khz16BitMonoPcm,
    /// `raw-44100hz-16bit-mono-pcm`
    Raw44100Hz16BitMonoPcm,
    /// `raw-48khz-16bit-mono-pcm`
    Raw48Khz16BitMonoPcm,
    /// `raw-8khz-8bit-mono-mulaw`
    Raw8Khz8BitMonoMulaw,
    /// `raw-8khz-8bit-mono-alaw`
    Raw8Khz8BitMonoAlaw,
    /// `riff-8khz-8bit-mono-mulaw`
    Riff8Khz8BitMonoMulaw,
    /// `riff-8khz-8bit-mono-alaw`
    Riff8Khz8BitMonoAlaw,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Pcm16,
    Mulaw,
    Alaw,
}

use Encoding::{Alaw, Mulaw, Pcm16};
use OutputFormat as F;

/// Every format: value, Azure name, sample rate, RIFF header?, sample encoding.
#[rustfmt::skip]
const TABLE: [(OutputFormat, &str, u32, bool, Encoding); 16] = [
    (F::Riff8Khz16BitMonoPcm, "riff-8khz-16bit-mono-pcm", 8_000, true, Pcm16),
    (F::Riff16Khz16BitMonoPcm, "riff-16khz-16bit-mono-pcm", 16_000, true, Pcm16),
    (F::Riff22050Hz16BitMonoPcm, "riff-22050hz-16bit-mono-pcm", 22_050, true, Pcm16),
    (F::Riff24Khz16BitMonoPcm, "riff-24khz-16bit-mono-pcm", 24_000, true, Pcm16),
    (F::Riff44100Hz16BitMonoPcm, "riff-44100hz-16bit-mono-pcm", 44_100, true, Pcm16),
    (F::Riff48Khz16BitMonoPcm, "riff-48khz-16bit-mono-pcm", 48_000, true, Pcm16),
    (F::Raw8Khz16BitMonoPcm, "raw-8khz-16bit-mono-pcm", 8_000, false, Pcm16),
    (F::Raw16Khz16BitMonoPcm, "raw-16khz-16bit-mono-pcm", 16_000, false, Pcm16),
    (F::Raw22050Hz16BitMonoPcm, "raw-22050hz-16bit-mono-pcm", 22_050, false, Pcm16),
    (F::Raw24Khz16BitMonoPcm, "raw-24khz-16bit-mono-pcm", 24_000, false, Pcm16),
    (F::Raw44100Hz16BitMonoPcm, "raw-44100hz-16bit-mono-pcm", 44_100, false, Pcm16),
    (F::Raw48Khz16BitMonoPcm, "raw-48khz-16bit-mono-pcm", 48_000, false, Pcm16),
    (F::Raw8Khz8BitMonoMulaw, "raw-8khz-8bit-mono-mulaw", 8_000, false, Mulaw),
    (F::Raw8Khz8BitMonoAlaw, "raw-8khz-8bit-mono-alaw", 8_000, false, Alaw),
    (F::Riff8Khz8BitMonoMulaw, "riff-8khz-8bit-mono-mulaw", 8_000, true, Mulaw),
    (F::Riff8Khz8BitMonoAlaw, "riff-8khz-8bit-mono-alaw", 8_000, true, Alaw),
];

const fn names() -> [&'static str; TABLE.len()] {
    let mut out = [""; TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = TABLE[i].1;
        i += 1;
    }
    out
}

const NAMES: [&str; TABLE.len()] = names();

impl OutputFormat {
    /// Every supported format name, in a stable order (the order of the error message).
    pub const SUPPORTED: &'static [&'static str] = &NAMES;

    /// Parse an `X-Microsoft-OutputFormat` value, ignoring ASCII case and surrounding spaces.
    pub fn parse(name: &str) -> Result<OutputFormat, AudioError> {
        let wanted = name.trim();
        TABLE
            .iter()
            .find(|row| row.1.eq_ignore_ascii_case(wanted))
            .map(|row| row.0)
            .ok_or_else(|| AudioError::UnknownOutputFormat {
                name: wanted.to_owned(),
            })
    }

    fn row(&self) -> &'static (OutputFormat, &'static str, u32, bool, Encoding) {
        // Every variant has exactly one row (checked by a test); fall back to the first.
        TABLE.iter().find(|row| row.0 == *self).unwrap_or(&TABLE[0])
    }

    /// The Azure name, lower case, e.g. `riff-24khz-16bit-mono-pcm`.
    pub fn name(&self) -> &'static str {
        self.row().1
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.row().2
    }

    /// Whether the output starts with a RIFF/WAVE header.
    pub fn is_riff(&self) -> bool {
        self.row().3
    }

    /// HTTP `Content-Type` for this format (see the module docs for the choice).
    pub fn content_type(&self) -> &'static str {
        match (self.is_riff(), self.row().4) {
            (true, _) => "audio/x-wav",
            (false, Pcm16) => "application/octet-stream",
            (false, Mulaw | Alaw) => "audio/basic",
        }
    }

    /// Resample `pcm` to this format's rate and encode it, header included for `riff-*`.
    pub fn encode(&self, pcm: &Pcm) -> Vec<u8> {
        let resampled = resample(pcm, self.sample_rate());
        let (tag, bits, data) = match self.row().4 {
            Pcm16 => (TAG_PCM, 16, pcm16_bytes(&resampled.samples)),
            Mulaw => (
                TAG_MULAW,
                8,
                g711_bytes(&resampled.samples, linear_to_mulaw),
            ),
            Alaw => (TAG_ALAW, 8, g711_bytes(&resampled.samples, linear_to_alaw)),
        };
        if !self.is_riff() {
            return data;
        }
        let mut out = wav_header(tag, self.sample_rate(), bits, data.len());
        out.extend_from_slice(&data);
        out
    }
}

impl FromStr for OutputFormat {
    type Err = AudioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::parse(s)
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests;
