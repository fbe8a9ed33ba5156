use super::*;

fn sine(rate: u32, freq: f64, amp: f32, secs: f64) -> Pcm {
    let n = (rate as f64 * secs) as usize;
    let samples = (0..n)
        .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32)
        .collect();
    Pcm {
        sample_rate: rate,
        samples,
    }
}

/// RMS of the middle half, away from the filter's edge transients.
fn mid_rms(pcm: &Pcm) -> f32 {
    let n = pcm.samples.len();
    let mid = &pcm.samples[n / 4..3 * n / 4];
    (mid.iter().map(|x| x * x).sum::<f32>() / mid.len() as f32).sqrt()
}

/// Frequency from rising zero crossings in the middle half.
fn mid_freq(pcm: &Pcm) -> f64 {
    let n = pcm.samples.len();
    let mid = &pcm.samples[n / 4..3 * n / 4];
    let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    crossings as f64 * pcm.sample_rate as f64 / mid.len() as f64
}

#[test]
fn identity_when_rates_match() {
    let pcm = sine(16_000, 440.0, 0.5, 0.1);
    assert_eq!(resample(&pcm, 16_000), pcm);
}

#[test]
fn zero_rates_and_empty_input() {
    let pcm = Pcm {
        sample_rate: 0,
        samples: vec![0.1; 10],
    };
    assert!(resample(&pcm, 16_000).samples.is_empty());
    let pcm = Pcm {
        sample_rate: 16_000,
        samples: vec![0.1; 10],
    };
    assert!(resample(&pcm, 0).samples.is_empty());
    let pcm = Pcm {
        sample_rate: 16_000,
        samples: vec![],
    };
    assert_eq!(
        resample(&pcm, 8_000),
        Pcm {
            sample_rate: 8_000,
            samples: vec![]
        }
    );
}

#[test]
fn sine_keeps_frequency_and_amplitude() {
    for (from, to) in [
        (48_000, 16_000),
        (8_000, 24_000),
        (44_100, 16_000),
        (16_000, 22_050),
        (24_000, 48_000),
    ] {
        let input = sine(from, 1_000.0, 0.5, 1.0);
        let out = resample(&input, to);
        assert_eq!(out.sample_rate, to);
        let expected_len = (input.samples.len() as u64 * to as u64).div_ceil(from as u64) as usize;
        assert_eq!(out.samples.len(), expected_len, "{from}->{to}");
        let freq = mid_freq(&out);
        assert!((freq - 1_000.0).abs() < 5.0, "{from}->{to}: {freq} Hz");
        let ratio = mid_rms(&out) / mid_rms(&input);
        assert!(
            (ratio - 1.0).abs() < 0.01,
            "{from}->{to}: rms ratio {ratio}"
        );
    }
}

#[test]
fn downsampling_suppresses_aliases() {
    // 7 kHz is above 8 kHz's Nyquist (4 kHz): it must not fold back to 1 kHz.
    let out = resample(&sine(48_000, 7_000.0, 0.5, 1.0), 8_000);
    let rms = mid_rms(&out);
    assert!(rms < 0.5 * 0.707 * 1e-3, "alias rms {rms}");
    // 16 kHz output: 9 kHz must vanish, 3 kHz must pass.
    let alias = resample(&sine(44_100, 9_000.0, 0.5, 0.5), 16_000);
    assert!(mid_rms(&alias) < 1e-3);
    let pass = resample(&sine(44_100, 3_000.0, 0.5, 0.5), 16_000);
    assert!((mid_rms(&pass) / 0.3536 - 1.0).abs() < 0.01);
}

#[test]
fn awkward_ratio_uses_quantised_phases() {
    // gcd(44_101, 16_000) = 1: 16_000 phases would be allowed, 44_101 must be quantised.
    let input = sine(16_000, 1_000.0, 0.5, 0.5);
    let out = resample(&input, 44_101);
    assert!((mid_freq(&out) - 1_000.0).abs() < 5.0);
    assert!((mid_rms(&out) / mid_rms(&input) - 1.0).abs() < 0.01);
    let back = resample(&out, 16_000);
    assert!((mid_rms(&back) / mid_rms(&input) - 1.0).abs() < 0.01);
}

#[test]
fn dc_is_preserved() {
    let pcm = Pcm {
        sample_rate: 22_050,
        samples: vec![0.25; 22_050],
    };
    let out = resample(&pcm, 16_000);
    let mid = &out.samples[4_000..12_000];
    assert!(mid.iter().all(|x| (x - 0.25).abs() < 1e-4));
}

#[test]
fn sixty_seconds_of_48k_is_fast() {
    let pcm = sine(48_000, 440.0, 0.5, 60.0);
    let start = std::time::Instant::now();
    let out = resample(&pcm, 16_000);
    let elapsed = start.elapsed();
    assert_eq!(out.samples.len(), 960_000);
    // The crate is built with opt-level 3 even in tests; generous bound for slow CI machines.
    assert!(elapsed.as_millis() < 1_000, "took {elapsed:?}");
}
