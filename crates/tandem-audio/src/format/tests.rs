use super::*;
use crate::decode_wav;

fn tone(rate: u32, secs: f64) -> Pcm {
    let n = (rate as f64 * secs) as usize;
    let samples = (0..n)
        .map(|i| 0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / rate as f64).sin() as f32)
        .collect();
    Pcm {
        sample_rate: rate,
        samples,
    }
}

#[test]
fn every_variant_has_one_row_and_names_round_trip() {
    assert_eq!(OutputFormat::SUPPORTED.len(), 16);
    for (i, row) in TABLE.iter().enumerate() {
        assert_eq!(TABLE.iter().filter(|r| r.0 == row.0).count(), 1);
        assert_eq!(row.0.name(), OutputFormat::SUPPORTED[i]);
        assert_eq!(OutputFormat::parse(row.1), Ok(row.0));
        assert_eq!(row.1.parse::<OutputFormat>(), Ok(row.0));
        assert_eq!(row.0.to_string(), row.1);
    }
}

#[test]
fn parse_ignores_case_and_spaces() {
    assert_eq!(
        OutputFormat::parse("RIFF-24KHZ-16BIT-MONO-PCM"),
        Ok(F::Riff24Khz16BitMonoPcm)
    );
    assert_eq!(
        OutputFormat::parse(" Raw-8khz-8bit-Mono-MuLaw "),
        Ok(F::Raw8Khz8BitMonoMulaw)
    );
}

#[test]
fn unknown_name_lists_supported() {
    let err = OutputFormat::parse("audio-16khz-32kbitrate-mono-mp3").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("'audio-16khz-32kbitrate-mono-mp3'"), "{msg}");
    for name in OutputFormat::SUPPORTED {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn rates_and_content_types() {
    assert_eq!(F::Riff22050Hz16BitMonoPcm.sample_rate(), 22_050);
    assert_eq!(F::Raw44100Hz16BitMonoPcm.sample_rate(), 44_100);
    assert_eq!(F::Riff8Khz8BitMonoAlaw.sample_rate(), 8_000);
    assert_eq!(F::Riff16Khz16BitMonoPcm.content_type(), "audio/x-wav");
    assert_eq!(F::Riff8Khz8BitMonoMulaw.content_type(), "audio/x-wav");
    assert_eq!(
        F::Raw16Khz16BitMonoPcm.content_type(),
        "application/octet-stream"
    );
    assert_eq!(F::Raw8Khz8BitMonoMulaw.content_type(), "audio/basic");
    assert_eq!(F::Raw8Khz8BitMonoAlaw.content_type(), "audio/basic");
}

#[test]
fn riff_pcm_outputs_decode_at_their_rate() {
    let input = tone(24_000, 0.5);
    for row in TABLE.iter().filter(|r| r.3 && r.4 == Pcm16) {
        let bytes = row.0.encode(&input);
        assert_eq!(bytes.len(), 44 + 2 * (row.2 as usize / 2), "{}", row.1);
        let pcm = decode_wav(&bytes).unwrap();
        assert_eq!(pcm.sample_rate, row.2);
        assert!((pcm.duration_secs() - 0.5).abs() < 1e-3);
    }
}

#[test]
fn raw_outputs_have_no_header() {
    let input = tone(16_000, 0.25);
    assert_eq!(F::Raw16Khz16BitMonoPcm.encode(&input).len(), 8_000);
    assert_eq!(F::Raw48Khz16BitMonoPcm.encode(&input).len(), 24_000);
    assert_eq!(F::Raw8Khz8BitMonoMulaw.encode(&input).len(), 2_000);
    assert_eq!(F::Raw8Khz8BitMonoAlaw.encode(&input).len(), 2_000);
    let silence = Pcm {
        sample_rate: 8_000,
        samples: vec![0.0; 4],
    };
    assert_eq!(F::Raw8Khz8BitMonoMulaw.encode(&silence), vec![0xFF; 4]);
    assert_eq!(F::Raw8Khz8BitMonoAlaw.encode(&silence), vec![0xD5; 4]);
}

#[test]
fn riff_g711_header_uses_tags_6_and_7() {
    let input = tone(8_000, 0.1);
    for (format, tag) in [
        (F::Riff8Khz8BitMonoMulaw, 7u16),
        (F::Riff8Khz8BitMonoAlaw, 6),
    ] {
        let bytes = format.encode(&input);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len() - 8
        );
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), tag);
        assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 8);
        assert_eq!(&bytes[38..42], b"fact");
        assert_eq!(&bytes[50..54], b"data");
        assert_eq!(bytes.len(), 58 + 800);
        // Our decoder accepts PCM only, and says so precisely.
        assert_eq!(
            decode_wav(&bytes),
            Err(AudioError::UnsupportedFormat { tag })
        );
    }
}

/// Reference G.711 mu-law expansion (ITU-T G.711 table, 16-bit scale).
fn mulaw_to_linear(code: u8) -> i32 {
    let c = !code;
    let segment = i32::from((c >> 4) & 7);
    let mantissa = i32::from(c & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84;
    if c & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Reference G.711 A-law expansion (ITU-T G.711 table, 16-bit scale).
fn alaw_to_linear(code: u8) -> i32 {
    let c = code ^ 0x55;
    let segment = i32::from((c >> 4) & 7);
    let mantissa = i32::from(c & 0x0F);
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if c & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[test]
fn g711_known_reference_codes() {
    // Silence, full scale positive and negative, and small values, from the G.711 tables.
    assert_eq!(linear_to_mulaw(0), 0xFF);
    assert_eq!(linear_to_mulaw(-1), 0x7F);
    assert_eq!(linear_to_mulaw(32_767), 0x80);
    assert_eq!(linear_to_mulaw(-32_768), 0x00);
    assert_eq!(linear_to_mulaw(1_000), 0xCE);
    assert_eq!(linear_to_mulaw(-1_000), 0x4E);
    assert_eq!(linear_to_alaw(0), 0xD5);
    assert_eq!(linear_to_alaw(-1), 0x55);
    assert_eq!(linear_to_alaw(32_767), 0xAA);
    assert_eq!(linear_to_alaw(-32_768), 0x2A);
    assert_eq!(linear_to_alaw(1_000), 0xFA);
    assert_eq!(linear_to_alaw(-1_000), 0x7A);
}

#[test]
fn g711_quantisation_error_is_bounded_for_every_input() {
    for x in i16::MIN..=i16::MAX {
        let x32 = i32::from(x);
        let bound = 16 + x32.abs() / 16;
        let mu = mulaw_to_linear(linear_to_mulaw(x));
        assert!(
            (mu - x32).abs() <= bound.max(x32.abs() - 32_124),
            "mu-law {x} -> {mu}"
        );
        let a = alaw_to_linear(linear_to_alaw(x));
        assert!((a - x32).abs() <= bound, "A-law {x} -> {a}");
        // Monotonic: codes never cross sign.
        assert!(
            mu.signum() * x32.signum() >= 0 && a.signum() * x32.signum() >= 0 || x32.abs() < 16
        );
    }
}
