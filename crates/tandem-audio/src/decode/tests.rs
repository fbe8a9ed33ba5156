use super::*;
use crate::encode_wav_pcm16;
use crate::test_data::{wavs, Rng};

/// A `fmt ` chunk body; `ext` adds the 22 extensible bytes with `sub` as the sub-format tag.
fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16, ext: Option<u16>) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    if let Some(sub) = ext {
        b.extend_from_slice(&22u16.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&sub.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    }
    b
}

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend_from_slice(&(body.len() as u32).to_le_bytes());
    c.extend_from_slice(body);
    if body.len() % 2 == 1 {
        c.push(0);
    }
    c
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(&body);
    out
}

fn wav(fmt: Vec<u8>, data: &[u8]) -> Vec<u8> {
    riff(&[chunk(b"fmt ", &fmt), chunk(b"data", data)])
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..n).map(|_| rng.signed()).collect()
}

#[test]
fn real_biology_recordings_decode() {
    let files = wavs("custom-speech-biology/audio");
    assert!(files.len() >= 10);
    for (name, bytes) in files {
        let pcm = decode_wav(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pcm.sample_rate, 16_000, "{name}");
        // The corpus holds single sentences of about 3 to 8.5 seconds.
        let secs = pcm.duration_secs();
        assert!((2.5..=9.0).contains(&secs), "{name}: {secs} s");
        assert_eq!(pcm.samples.len(), (bytes.len() - 44) / 2, "{name}");
        assert!(pcm.samples.iter().all(|x| (-1.0..=1.0).contains(x)));
    }
}

#[test]
fn pcm16_round_trip_is_exact() {
    let samples: Vec<f32> = random(1_000, 1)
        .iter()
        .map(|x| (x * 32_768.0).round() / 32_768.0)
        .collect();
    let pcm = Pcm {
        sample_rate: 22_050,
        samples,
    };
    assert_eq!(decode_wav(&encode_wav_pcm16(&pcm)), Ok(pcm));
}

#[test]
fn integer_depths_round_trip() {
    let x = random(500, 2);
    let cases: [(u16, f32); 4] = [
        (8, 128.0),
        (16, 32_768.0),
        (24, 8_388_608.0),
        (32, 2_147_483_648.0),
    ];
    for (bits, scale) in cases {
        let mut data = Vec::new();
        for &s in &x {
            let v = ((f64::from(s) * f64::from(scale)).round() as i64)
                .clamp(-(scale as i64), scale as i64 - 1);
            match bits {
                8 => data.push((v + 128) as u8),
                16 => data.extend_from_slice(&(v as i16).to_le_bytes()),
                24 => data.extend_from_slice(&(v as i32).to_le_bytes()[..3]),
                _ => data.extend_from_slice(&(v as i32).to_le_bytes()),
            }
        }
        for ext in [None, Some(1)] {
            let tag = if ext.is_some() { 0xFFFE } else { 1 };
            let pcm = decode_wav(&wav(fmt_body(tag, 1, 44_100, bits, ext), &data)).unwrap();
            assert_eq!(pcm.sample_rate, 44_100);
            assert_eq!(pcm.samples.len(), x.len());
            let tolerance = 1.0 / scale;
            for (a, b) in pcm.samples.iter().zip(&x) {
                assert!((a - b).abs() <= tolerance, "{bits}-bit: {a} vs {b}");
            }
        }
    }
}

#[test]
fn float_round_trip_and_sanitising() {
    let x = random(300, 3);
    let f32_data: Vec<u8> = x.iter().flat_map(|s| s.to_le_bytes()).collect();
    let f64_data: Vec<u8> = x.iter().flat_map(|s| f64::from(*s).to_le_bytes()).collect();
    assert_eq!(
        decode_wav(&wav(fmt_body(3, 1, 48_000, 32, None), &f32_data))
            .unwrap()
            .samples,
        x
    );
    assert_eq!(
        decode_wav(&wav(fmt_body(3, 1, 48_000, 64, None), &f64_data))
            .unwrap()
            .samples,
        x
    );
    assert_eq!(
        decode_wav(&wav(fmt_body(0xFFFE, 1, 48_000, 32, Some(3)), &f32_data))
            .unwrap()
            .samples,
        x
    );
    let odd: Vec<u8> = [f32::NAN, 3.0, -f32::INFINITY]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let pcm = decode_wav(&wav(fmt_body(3, 1, 8_000, 32, None), &odd)).unwrap();
    assert_eq!(pcm.samples, vec![0.0, 1.0, -1.0]);
}

#[test]
fn channels_are_averaged() {
    // Stereo 16-bit: left 0.5, right -0.25 -> 0.125.
    let frame = [16_384i16.to_le_bytes(), (-8_192i16).to_le_bytes()].concat();
    let pcm = decode_wav(&wav(fmt_body(1, 2, 16_000, 16, None), &frame.repeat(10))).unwrap();
    assert_eq!(pcm.samples, vec![0.125; 10]);
    // Eight channels of float, values 0..8 / 8 -> mean 3.5 / 8.
    let frame: Vec<u8> = (0..8)
        .flat_map(|c| (c as f32 / 8.0).to_le_bytes())
        .collect();
    let pcm = decode_wav(&wav(
        fmt_body(0xFFFE, 8, 96_000, 32, Some(3)),
        &frame.repeat(3),
    ))
    .unwrap();
    assert_eq!(pcm.samples, vec![3.5 / 8.0; 3]);
}

#[test]
fn unknown_chunks_and_odd_padding_are_skipped() {
    let data = [1000i16.to_le_bytes(), 2000i16.to_le_bytes()].concat();
    let bytes = riff(&[
        chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcde"),
        chunk(b"fmt ", &fmt_body(1, 1, 16_000, 16, None)),
        chunk(b"fact", &3u32.to_le_bytes()),
        chunk(b"junk", b"odd"),
        chunk(b"data", &data),
        chunk(b"LIST", b"trailing"),
    ]);
    let pcm = decode_wav(&bytes).unwrap();
    assert_eq!(pcm.samples, vec![1000.0 / 32_768.0, 2000.0 / 32_768.0]);
}

#[test]
fn streaming_headers_take_the_rest_of_the_body() {
    let data: Vec<u8> = (0..101u8).collect(); // 50 frames and one stray byte
    for (riff_size, data_size) in [
        (0u32, 0u32),
        (u32::MAX, u32::MAX),
        (0, 1_000_000),
        (u32::MAX, 0),
    ] {
        let mut bytes = wav(fmt_body(1, 1, 16_000, 16, None), &data);
        bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
        bytes[40..44].copy_from_slice(&data_size.to_le_bytes());
        bytes.truncate(44 + 101);
        let pcm = decode_wav(&bytes).unwrap();
        assert_eq!(
            pcm.samples.len(),
            50,
            "riff {riff_size:#x} data {data_size:#x}"
        );
    }
    // A header alone, as the first piece of a stream, is valid and empty.
    let header = &wav(fmt_body(1, 1, 16_000, 16, None), &[])[..44];
    assert_eq!(decode_wav(header).unwrap().samples.len(), 0);
}

#[test]
fn malformed_inputs_give_specific_errors() {
    let good_fmt = fmt_body(1, 1, 16_000, 16, None);
    let data = [0u8; 8];
    let mut cases: Vec<(Vec<u8>, AudioError)> = vec![
        (vec![], AudioError::Empty),
        (
            b"ID3\x04 mp3".to_vec(),
            AudioError::NotRiff {
                found: "bytes 49 44 33 04".into(),
            },
        ),
        (
            b"OggS....".to_vec(),
            AudioError::NotRiff {
                found: "'OggS'".into(),
            },
        ),
        (b"RIF".to_vec(), AudioError::TruncatedHeader { len: 3 }),
        (
            b"RIFF\0\0\0\0WA".to_vec(),
            AudioError::TruncatedHeader { len: 10 },
        ),
        (
            b"RIFF\0\0\0\0AVI LIST".to_vec(),
            AudioError::NotWave {
                found: "'AVI '".into(),
            },
        ),
        (riff(&[chunk(b"data", &data)]), AudioError::MissingFmt),
        (riff(&[chunk(b"LIST", b"xx")]), AudioError::MissingFmt),
        (riff(&[chunk(b"fmt ", &good_fmt)]), AudioError::MissingData),
        (
            riff(&[chunk(b"fmt ", &good_fmt[..14])]),
            AudioError::TruncatedFmt { len: 14, need: 16 },
        ),
        (
            wav(fmt_body(0xFFFE, 1, 16_000, 16, None), &data),
            AudioError::TruncatedFmt { len: 16, need: 40 },
        ),
        (
            wav(fmt_body(0x55, 1, 16_000, 0, None), &data),
            AudioError::UnsupportedFormat { tag: 0x55 },
        ),
        (
            wav(fmt_body(7, 1, 8_000, 8, None), &data),
            AudioError::UnsupportedFormat { tag: 7 },
        ),
        (
            wav(fmt_body(6, 1, 8_000, 8, None), &data),
            AudioError::UnsupportedFormat { tag: 6 },
        ),
        (
            wav(fmt_body(2, 1, 8_000, 4, None), &data),
            AudioError::UnsupportedFormat { tag: 2 },
        ),
        (
            wav(fmt_body(0xFFFE, 1, 16_000, 16, Some(0x55)), &data),
            AudioError::UnsupportedFormat { tag: 0x55 },
        ),
        (
            wav(fmt_body(1, 1, 16_000, 12, None), &data),
            AudioError::UnsupportedBits {
                bits: 12,
                encoding: "integer PCM",
            },
        ),
        (
            wav(fmt_body(3, 1, 16_000, 16, None), &data),
            AudioError::UnsupportedBits {
                bits: 16,
                encoding: "float",
            },
        ),
        (
            wav(fmt_body(1, 0, 16_000, 16, None), &data),
            AudioError::BadChannels { channels: 0 },
        ),
        (
            wav(fmt_body(1, 9, 16_000, 16, None), &data),
            AudioError::BadChannels { channels: 9 },
        ),
        (
            wav(fmt_body(1, 1, 7_999, 16, None), &data),
            AudioError::BadSampleRate { rate: 7_999 },
        ),
        (
            wav(fmt_body(1, 1, 192_001, 16, None), &data),
            AudioError::BadSampleRate { rate: 192_001 },
        ),
    ];
    let mut bad_align = good_fmt.clone();
    bad_align[12..14].copy_from_slice(&4u16.to_le_bytes());
    cases.push((
        wav(bad_align, &data),
        AudioError::BadBlockAlign {
            found: 4,
            expected: 2,
            channels: 1,
            bits: 16,
        },
    ));
    for (bytes, expected) in cases {
        assert_eq!(decode_wav(&bytes), Err(expected.clone()), "{bytes:?}");
    }
}

#[test]
fn error_messages_are_readable() {
    let mp3 = AudioError::UnsupportedFormat { tag: 0x55 }.to_string();
    assert!(
        mp3.starts_with("unsupported WAV encoding: format tag 0x0055 (MP3); send PCM"),
        "{mp3}"
    );
    let unknown = AudioError::UnsupportedFormat { tag: 0x1234 }.to_string();
    assert!(
        unknown.starts_with("unsupported WAV encoding: format tag 0x1234; send PCM"),
        "{unknown}"
    );
    assert!(AudioError::UnsupportedFormat { tag: 7 }
        .to_string()
        .contains("(mu-law)"));
    assert!(AudioError::UnsupportedFormat { tag: 6 }
        .to_string()
        .contains("(A-law)"));
    assert!(AudioError::Empty.to_string().contains("empty"));
}

#[test]
fn mutated_real_wavs_never_panic() {
    let (_, original) = wavs("custom-speech-biology/audio").swap_remove(0);
    // Keep it short so thousands of decodes stay quick; the header is what matters.
    let base = &original[..original.len().min(4_096)];
    let mut rng = Rng(0x5EED_CAFE);
    let interesting = [
        0u32,
        1,
        2,
        3,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFE,
        u32::MAX,
        16,
        18,
        40,
    ];
    let mut decoded = 0;
    for round in 0..5_000 {
        let mut bytes = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            match rng.below(6) {
                0 => {
                    let i = rng.below(64.min(bytes.len()));
                    bytes[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(64.min(bytes.len()));
                    bytes[i] = rng.next_u64() as u8;
                }
                2 => {
                    // A 32-bit field (chunk size, rate, ...) overwritten with an edge value.
                    let i = rng.below(61.min(bytes.len().saturating_sub(3)).max(1));
                    let v = interesting[rng.below(interesting.len())];
                    if i + 4 <= bytes.len() {
                        bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                3 => bytes.truncate(rng.below(bytes.len() + 1)),
                4 => {
                    // A 16-bit field (tag, channels, align, bits) set to random or edge values.
                    let i = 20 + 2 * rng.below(8);
                    let v = [0u16, 1, 3, 8, 0xFFFE, u16::MAX][rng.below(6)];
                    if i + 2 <= bytes.len() {
                        bytes[i..i + 2].copy_from_slice(&v.to_le_bytes());
                    }
                }
                _ => {
                    // Insert a bogus chunk with a huge size before the data.
                    let at = 36.min(bytes.len());
                    let size = interesting[rng.below(interesting.len())];
                    let junk = [b"LIST".as_slice(), &size.to_le_bytes()].concat();
                    bytes.splice(at..at, junk);
                }
            }
        }
        if let Ok(pcm) = decode_wav(&bytes) {
            assert!(pcm.samples.len() <= bytes.len(), "round {round}");
            assert!(
                pcm.samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0),
                "round {round}"
            );
            decoded += 1;
        }
    }
    // Sanity: the mutations are not all fatal, so decoding paths are exercised too.
    assert!(decoded > 100, "only {decoded} mutants decoded");
}

#[test]
fn random_bytes_after_a_valid_preamble_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2_000 {
        let len = rng.below(200);
        let mut bytes = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
        bytes.extend((0..len).map(|_| rng.next_u64() as u8));
        let _ = decode_wav(&bytes);
    }
}

#[test]
fn the_stored_format_is_reported_before_the_mix_down() {
    let mono = encode_wav_pcm16(&Pcm {
        sample_rate: 16_000,
        samples: vec![0.0; 160],
    });
    let (pcm, f) = decode_wav_with_format(&mono).unwrap();
    assert_eq!(pcm.samples.len(), 160);
    assert_eq!(
        f,
        WavFormat {
            sample_rate: 16_000,
            channels: 1,
            bits_per_sample: 16,
            float: false
        }
    );
    assert!(f.is_azure_training_format());
    assert_eq!(f.to_string(), "16000 Hz, 1 channel, 16-bit PCM");
    let stereo_44k = WavFormat {
        sample_rate: 44_100,
        channels: 2,
        ..f
    };
    assert!(!stereo_44k.is_azure_training_format());
}
