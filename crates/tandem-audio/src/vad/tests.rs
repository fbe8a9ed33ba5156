use super::*;
use crate::test_data::{wavs, Rng};
use crate::{decode_wav, resample};

const RATE: u32 = 16_000;

fn noise(secs: f64, amplitude: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..(f64::from(RATE) * secs) as usize)
        .map(|_| amplitude * rng.signed())
        .collect()
}

/// A 200 Hz-ish "voice" burst (two harmonics) written over `samples` from `start` to `end` s.
fn add_burst(samples: &mut [f32], start: f64, end: f64, amplitude: f32) {
    let (a, b) = (
        (start * f64::from(RATE)) as usize,
        (end * f64::from(RATE)) as usize,
    );
    for (i, s) in samples[a..b].iter_mut().enumerate() {
        let t = i as f32 / RATE as f32;
        *s += amplitude
            * (0.7 * (2.0 * std::f32::consts::PI * 210.0 * t).sin()
                + 0.3 * (2.0 * std::f32::consts::PI * 630.0 * t).sin());
    }
}

fn pcm(samples: Vec<f32>) -> Pcm {
    Pcm {
        sample_rate: RATE,
        samples,
    }
}

#[test]
fn silence_and_empty_give_none() {
    assert_eq!(detect_speech(&pcm(vec![])), None);
    assert_eq!(detect_speech(&pcm(vec![0.0; 5 * RATE as usize])), None);
    assert_eq!(
        detect_speech(&Pcm {
            sample_rate: 0,
            samples: vec![0.5; 100]
        }),
        None
    );
    assert_eq!(voiced_secs(&pcm(vec![0.0; RATE as usize])), 0.0);
}

#[test]
fn low_and_steady_noise_give_none() {
    // -60 dBFS and -50 dBFS hiss: below the absolute minimum.
    assert_eq!(detect_speech(&pcm(noise(3.0, 0.001, 1))), None);
    assert_eq!(detect_speech(&pcm(noise(3.0, 0.005, 2))), None);
    // Loud but steady noise (about -25 dBFS): nothing stands out over the floor.
    assert_eq!(detect_speech(&pcm(noise(3.0, 0.1, 3))), None);
    // Near-silence: dither-level values.
    assert_eq!(detect_speech(&pcm(noise(3.0, 2.0 / 32_768.0, 4))), None);
}

#[test]
fn isolated_click_is_ignored() {
    let mut samples = noise(3.0, 0.001, 5);
    for s in &mut samples[20_000..20_080] {
        *s = 0.9;
    }
    assert_eq!(detect_speech(&pcm(samples.clone())), None);
    // Two clicks 150 ms apart merge by hangover but still hold under 100 ms of voiced frames.
    for s in &mut samples[22_400..22_480] {
        *s = -0.9;
    }
    assert_eq!(detect_speech(&pcm(samples)), None);
}

#[test]
fn burst_in_noise_is_located() {
    let mut samples = noise(4.0, 0.003, 6);
    add_burst(&mut samples, 1.0, 2.5, 0.2);
    let span = detect_speech(&pcm(samples.clone())).expect("speech");
    assert!((span.start_secs - 1.0).abs() <= 0.03, "{span:?}");
    assert!((span.end_secs - 2.5).abs() <= 0.03, "{span:?}");
    let voiced = voiced_secs(&pcm(samples));
    assert!((voiced - 1.5).abs() <= 0.06, "{voiced}");
}

#[test]
fn pauses_join_by_hangover_but_long_gaps_do_not() {
    let mut samples = noise(6.0, 0.002, 7);
    add_burst(&mut samples, 0.5, 1.0, 0.2);
    add_burst(&mut samples, 1.2, 1.7, 0.2); // 200 ms pause: same utterance
    add_burst(&mut samples, 4.0, 4.5, 0.2); // 2.3 s later: a second utterance
    let p = pcm(samples);
    let span = detect_speech(&p).unwrap();
    assert!(
        (span.start_secs - 0.5).abs() <= 0.03 && (span.end_secs - 4.5).abs() <= 0.03,
        "{span:?}"
    );
    let voiced = voiced_secs(&p);
    assert!((voiced - 1.7).abs() <= 0.08, "{voiced}");
}

#[test]
fn quiet_speech_over_quiet_floor_is_found_at_other_rates() {
    let mut samples = noise(3.0, 0.0005, 8);
    add_burst(&mut samples, 1.0, 2.0, 0.02); // about -37 dBFS
    let span = detect_speech(&resample(&pcm(samples), 48_000)).expect("speech");
    assert!(
        (span.start_secs - 1.0).abs() <= 0.03 && (span.end_secs - 2.0).abs() <= 0.03,
        "{span:?}"
    );
}

#[test]
fn real_biology_recordings_contain_speech() {
    for (name, bytes) in wavs("custom-speech-biology/audio") {
        let audio = decode_wav(&bytes).unwrap();
        let span = detect_speech(&audio).unwrap_or_else(|| panic!("{name}: no speech"));
        let duration = audio.duration_secs();
        assert!(
            span.start_secs >= 0.0 && span.start_secs < span.end_secs,
            "{name}: {span:?}"
        );
        assert!(
            span.end_secs <= duration + 1e-9,
            "{name}: {span:?} of {duration}"
        );
        assert!(span.duration_secs() > 1.0, "{name}: {span:?}");
        let voiced = voiced_secs(&audio);
        assert!(
            voiced > 1.0 && voiced <= span.duration_secs() + 1e-9,
            "{name}: {voiced}"
        );
    }
}

#[test]
fn real_speaker_samples_contain_speech() {
    for (name, bytes) in wavs("speaker-samples") {
        let audio = decode_wav(&bytes).unwrap();
        assert_eq!(audio.sample_rate, 24_000, "{name}");
        let span = detect_speech(&audio).unwrap_or_else(|| panic!("{name}: no speech"));
        assert!(span.duration_secs() > 1.0, "{name}: {span:?}");
        // Silence appended after the recording does not move the end of speech.
        let mut padded = audio.clone();
        padded.samples.extend(std::iter::repeat_n(0.0, 48_000));
        let span2 = detect_speech(&padded).unwrap();
        assert!(
            (span2.end_secs - span.end_secs).abs() <= 0.05,
            "{name}: {span:?} vs {span2:?}"
        );
    }
}
