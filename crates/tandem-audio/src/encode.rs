//! Encoders: 16-bit PCM, G.711 mu-law and A-law, and the RIFF/WAVE header around them.

use crate::Pcm;

/// WAVE format tag for integer PCM.
pub(crate) const TAG_PCM: u16 = 0x0001;
/// WAVE format tag for G.711 A-law.
pub(crate) const TAG_ALAW: u16 = 0x0006;
/// WAVE format tag for G.711 mu-law.
pub(crate) const TAG_MULAW: u16 = 0x0007;

/// Convert one sample in [-1, 1] to `i16`, clamping (full scale is 32768, the decoder's divisor).
pub(crate) fn to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// Little-endian 16-bit samples without any header.
pub(crate) fn pcm16_bytes(samples: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for &x in samples {
        out.extend_from_slice(&to_i16(x).to_le_bytes());
    }
    out
}

/// Write a mono RIFF/WAVE header for `data_len` bytes of `bits`-bit samples.
///
/// PCM gets the canonical 44-byte header. Non-PCM (G.711) gets an 18-byte `fmt ` chunk with
/// `cbSize = 0` and a `fact` chunk holding the sample count, as the WAVE spec asks.
pub(crate) fn wav_header(tag: u16, rate: u32, bits: u16, data_len: usize) -> Vec<u8> {
    let data_len = u32::try_from(data_len).unwrap_or(u32::MAX);
    let block_align = bits / 8;
    let pcm = tag == TAG_PCM;
    let fmt_len: u32 = if pcm { 16 } else { 18 };
    let fact_len: u32 = if pcm { 0 } else { 12 };
    let riff_len = (4 + 8 + fmt_len + fact_len + 8).saturating_add(data_len);
    let mut h = Vec::with_capacity(58);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff_len.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if !pcm {
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_len / u32::from(block_align.max(1))).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// Encode as a canonical mono 16-bit PCM WAV: 44-byte header, then little-endian `i16`
/// samples (clamped to [-1, 1]) at `pcm.sample_rate`.
pub fn encode_wav_pcm16(pcm: &Pcm) -> Vec<u8> {
    let data = pcm16_bytes(&pcm.samples);
    let mut out = wav_header(TAG_PCM, pcm.sample_rate, 16, data.len());
    out.extend_from_slice(&data);
    out
}

/// G.711 mu-law: one 16-bit linear sample to one byte (ITU-T G.711, segment encoding).
pub fn linear_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut magnitude = i32::from(sample);
    let sign: u8 = if magnitude < 0 { 0x80 } else { 0x00 };
    if magnitude < 0 {
        magnitude = -magnitude;
    }
    let biased = magnitude.min(CLIP) + BIAS;
    // Segment = position of the highest set bit above bit 7 (0..=7).
    let segment = (biased >> 7).max(1).ilog2() as u8;
    let mantissa = ((biased >> (segment + 3)) & 0x0F) as u8;
    !(sign | (segment << 4) | mantissa)
}

/// G.711 A-law: one 16-bit linear sample to one byte (ITU-T G.711, even bits inverted).
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes; negative values map to one's complement.
    let value = i32::from(sample) >> 3;
    let (mask, magnitude) = if value >= 0 {
        (0xD5u8, value)
    } else {
        (0x55u8, -value - 1)
    };
    // Segment boundaries are 0x1F, 0x3F, 0x7F, ..., 0xFFF.
    let segment = if magnitude <= 0x1F {
        0
    } else {
        (magnitude >> 4).ilog2()
    };
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if segment < 2 { 1 } else { segment };
    let code = ((segment as u8) << 4) | ((magnitude >> shift) & 0x0F) as u8;
    code ^ mask
}

/// Map every sample through a G.711 byte encoder.
pub(crate) fn g711_bytes(samples: &[f32], encode: fn(i16) -> u8) -> Vec<u8> {
    samples.iter().map(|&x| encode(to_i16(x))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_conversion_clamps_and_rounds() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(1.0), 32_767);
        assert_eq!(to_i16(2.0), 32_767);
        assert_eq!(to_i16(-1.0), -32_768);
        assert_eq!(to_i16(-3.0), -32_768);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(0.5), 16_384);
    }

    #[test]
    fn header_is_44_bytes_and_sized() {
        let pcm = Pcm {
            sample_rate: 16_000,
            samples: vec![0.25; 10],
        };
        let wav = encode_wav_pcm16(&pcm);
        assert_eq!(wav.len(), 44 + 20);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(wav[4..8].try_into().unwrap()), 56);
        assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()), 20);
        assert_eq!(i16::from_le_bytes([wav[44], wav[45]]), 8192);
    }
}
