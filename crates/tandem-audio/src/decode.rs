//! RIFF/WAVE decoding to mono [`Pcm`].
//!
//! A small parser of our own rather than a general audio library: uploads are untrusted, the set
//! of encodings we accept is narrow, and Azure clients stream WAV with placeholder sizes that
//! strict readers reject. Sizes in the file are never used to size an allocation; every buffer is
//! bounded by the number of bytes actually received.

use crate::error::{describe_magic, AudioError};
use crate::Pcm;

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Lowest accepted sample rate, Hz.
const MIN_RATE: u32 = 8_000;
/// Highest accepted sample rate, Hz.
const MAX_RATE: u32 = 192_000;
/// Most channels accepted (7.1).
const MAX_CHANNELS: u16 = 8;

/// How one sample is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
}

impl Sample {
    fn bytes(self) -> usize {
        match self {
            Sample::U8 => 1,
            Sample::I16 => 2,
            Sample::I24 => 3,
            Sample::I32 | Sample::F32 => 4,
            Sample::F64 => 8,
        }
    }

    /// Decode one sample from exactly `self.bytes()` little-endian bytes.
    fn read(self, b: &[u8]) -> f32 {
        match self {
            Sample::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            Sample::I16 => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
            Sample::I24 => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
            Sample::I32 => {
                (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / 2_147_483_648.0) as f32
            }
            Sample::F32 => sanitize(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            Sample::F64 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[..8]);
                sanitize(f64::from_le_bytes(a))
            }
        }
    }
}

/// Float samples may be out of range or not finite; clamp them into [-1, 1].
fn sanitize(x: f64) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-1.0, 1.0) as f32
    }
}

/// The parts of a `fmt ` chunk we use, validated.
#[derive(Debug, Clone, Copy)]
struct Format {
    sample: Sample,
    channels: u16,
    rate: u32,
    block_align: usize,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse and validate the body of a `fmt ` chunk (only the bytes that arrived).
fn parse_fmt(body: &[u8]) -> Result<Format, AudioError> {
    if body.len() < 16 {
        return Err(AudioError::TruncatedFmt {
            len: body.len(),
            need: 16,
        });
    }
    let mut tag = u16_at(body, 0);
    let channels = u16_at(body, 2);
    let rate = u32_at(body, 4);
    let block_align = u16_at(body, 12);
    let bits = u16_at(body, 14);
    if tag == WAVE_FORMAT_EXTENSIBLE {
        // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the GUID starts with the tag.
        if body.len() < 40 {
            return Err(AudioError::TruncatedFmt {
                len: body.len(),
                need: 40,
            });
        }
        tag = u16_at(body, 24);
    }
    let sample = match (tag, bits) {
        (WAVE_FORMAT_PCM, 8) => Sample::U8,
        (WAVE_FORMAT_PCM, 16) => Sample::I16,
        (WAVE_FORMAT_PCM, 24) => Sample::I24,
        (WAVE_FORMAT_PCM, 32) => Sample::I32,
        (WAVE_FORMAT_PCM, _) => {
            return Err(AudioError::UnsupportedBits {
                bits,
                encoding: "integer PCM",
            })
        }
        (WAVE_FORMAT_IEEE_FLOAT, 32) => Sample::F32,
        (WAVE_FORMAT_IEEE_FLOAT, 64) => Sample::F64,
        (WAVE_FORMAT_IEEE_FLOAT, _) => {
            return Err(AudioError::UnsupportedBits {
                bits,
                encoding: "float",
            })
        }
        _ => return Err(AudioError::UnsupportedFormat { tag }),
    };
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::BadChannels { channels });
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(AudioError::BadSampleRate { rate });
    }
    let expected = u32::from(channels) * sample.bytes() as u32;
    if u32::from(block_align) != expected {
        return Err(AudioError::BadBlockAlign {
            found: block_align,
            expected,
            channels,
            bits,
        });
    }
    Ok(Format {
        sample,
        channels,
        rate,
        block_align: usize::from(block_align),
    })
}

/// Decode a RIFF/WAVE file to mono `f32` PCM at the file's own sample rate.
///
/// Accepts integer PCM (8/16/24/32-bit), IEEE float (32/64-bit) and `WAVE_FORMAT_EXTENSIBLE`
/// with either sub-format, 1 to 8 channels (averaged to mono) and 8–192 kHz. Unknown chunks
/// (`LIST`, `fact`, …) are skipped. A `data` chunk whose size is 0, `0xFFFFFFFF` or larger than
/// what arrived — as sent by streaming clients — extends to the end of the body; a trailing
/// partial frame is dropped. Never panics, and allocates at most in proportion to `bytes.len()`.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm, AudioError> {
    decode_wav_with_format(bytes).map(|(pcm, _)| pcm)
}

/// How a WAV file stores its audio, as its `fmt ` chunk says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// Samples per second.
    pub sample_rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Bits per sample (8, 16, 24, 32 or 64).
    pub bits_per_sample: u16,
    /// IEEE float samples (else integer PCM).
    pub float: bool,
}

impl WavFormat {
    /// What Azure's Custom Speech accepts for training and test audio: mono 16-bit PCM at
    /// 8 or 16 kHz.
    pub fn is_azure_training_format(&self) -> bool {
        self.channels == 1
            && self.bits_per_sample == 16
            && !self.float
            && matches!(self.sample_rate, 8_000 | 16_000)
    }
}

impl std::fmt::Display for WavFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} Hz, {} channel{}, {}-bit {}",
            self.sample_rate,
            self.channels,
            if self.channels == 1 { "" } else { "s" },
            self.bits_per_sample,
            if self.float { "float" } else { "PCM" }
        )
    }
}

/// [`decode_wav`], also returning the stored format (before the mix-down to mono).
pub fn decode_wav_with_format(bytes: &[u8]) -> Result<(Pcm, WavFormat), AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    let riff_prefix = &b"RIFF"[..bytes.len().min(4)];
    if &bytes[..riff_prefix.len()] != riff_prefix {
        return Err(AudioError::NotRiff {
            found: describe_magic(bytes),
        });
    }
    if bytes.len() < 12 {
        return Err(AudioError::TruncatedHeader { len: bytes.len() });
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWave {
            found: describe_magic(&bytes[8..12]),
        });
    }
    // The RIFF size is ignored: streaming clients send 0 or 0xFFFFFFFF, and the chunk walk
    // below is bounded by the bytes that actually arrived.
    let mut format: Option<Format> = None;
    let mut pos = 12usize;
    while bytes.len().saturating_sub(pos) >= 8 {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4) as usize;
        let body_start = pos + 8;
        let available = bytes.len() - body_start;
        match id {
            b"fmt " => {
                format = Some(parse_fmt(
                    &bytes[body_start..body_start + size.min(available)],
                )?)
            }
            b"data" => {
                let fmt = format.ok_or(AudioError::MissingFmt)?;
                let streaming = size == 0 || size == u32::MAX as usize || size > available;
                let len = if streaming { available } else { size };
                let info = WavFormat {
                    sample_rate: fmt.rate,
                    channels: fmt.channels,
                    bits_per_sample: (fmt.sample.bytes() * 8) as u16,
                    float: matches!(fmt.sample, Sample::F32 | Sample::F64),
                };
                return Ok((to_mono(&bytes[body_start..body_start + len], fmt), info));
            }
            _ => {}
        }
        // Chunks are word aligned: an odd-sized chunk is followed by one pad byte.
        pos = match body_start
            .checked_add(size)
            .and_then(|end| end.checked_add(size & 1))
        {
            Some(next) => next,
            None => break,
        };
    }
    Err(if format.is_some() {
        AudioError::MissingData
    } else {
        AudioError::MissingFmt
    })
}

/// Interleaved frames to mono by averaging the channels; a trailing partial frame is dropped.
fn to_mono(data: &[u8], fmt: Format) -> Pcm {
    let width = fmt.sample.bytes();
    let frames = data.chunks_exact(fmt.block_align);
    let samples = if fmt.channels == 1 {
        frames.map(|f| fmt.sample.read(f)).collect()
    } else {
        let scale = 1.0 / f32::from(fmt.channels);
        frames
            .map(|f| {
                f.chunks_exact(width)
                    .map(|s| fmt.sample.read(s))
                    .sum::<f32>()
                    * scale
            })
            .collect()
    };
    Pcm {
        sample_rate: fmt.rate,
        samples,
    }
}

#[cfg(test)]
mod tests;
