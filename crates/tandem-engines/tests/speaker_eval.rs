//! Calibration of [`THRESHOLD`]: equal error rates of the GE2E encoder on real voices (the
//! Speech SDK samples, each file split in two) and on synthetic voices (flite and espeak-ng
//! reading Harvard sentences), with the real-time factor. Run with `--nocapture` to see the
//! numbers; `--release` for a meaningful RTF. Needs the model in the cache: run `make models`
//! (or `tandem models pull`).

use std::time::Instant;

use tandem_audio::{decode_wav, detect_speech, Pcm};
use tandem_engines::models::{ModelCache, SPEAKER_GE2E};
use tandem_engines::speaker::{equal_error_rate, Embedding, SpeakerEncoder, THRESHOLD};
use tandem_engines::tts::TtsEngine;
use tandem_engines::{Prosody, Synthesizer};
use tandem_testkit::{model_dir, shared_data, HARVARD_SENTENCES, SPEAKER_SAMPLE_VOICES};

fn encoder() -> SpeakerEncoder {
    let path = ModelCache::new(model_dir())
        .model_path(SPEAKER_GE2E)
        .unwrap_or_else(|e| panic!("{e} (run `make models` or `tandem models pull`)"));
    let t = Instant::now();
    let enc = SpeakerEncoder::load(&path).expect("load the speaker encoder");
    eprintln!("load {:.3} s", t.elapsed().as_secs_f64());
    enc
}

/// Embeds and keeps count of compute time and audio seconds.
struct Timed {
    enc: SpeakerEncoder,
    secs: f64,
    audio: f64,
}

impl Timed {
    fn embed(&mut self, pcm: &Pcm) -> Embedding {
        let t = Instant::now();
        let e = self.enc.embed(pcm).expect("embed");
        self.secs += t.elapsed().as_secs_f64();
        self.audio += pcm.duration_secs();
        e
    }
}

/// Flite's four voices and espeak-ng's male and female English voices. espeak-ng's other
/// locales are left out: they are the same synthetic voice with another accent, not another
/// speaker.
const VOICES: [&str; 6] = [
    "en-US-SltFlite",
    "en-US-RmsFlite",
    "en-US-AwbFlite",
    "en-US-Kal16Flite",
    "en-GB-Espeak",
    "en-GB-EspeakF",
];

fn read_sample(name: &str) -> Pcm {
    let path = shared_data().join("speaker-samples").join(name);
    decode_wav(&std::fs::read(&path).expect("read sample")).expect("decode")
}

/// Which enrolled phrase speaker each unlabelled `free_*` recording is closest to (printed
/// only: the files are not labelled).
fn identify_free_speech(t: &mut Timed) {
    let enrolled: Vec<Embedding> = SPEAKER_SAMPLE_VOICES
        .iter()
        .map(|s| t.embed(&read_sample(&format!("phrase_{s}.wav"))))
        .collect();
    for f in [
        "free_EN-US_SampleAudio01.wav",
        "free_EN-US_SampleAudio02.wav",
        "free_JA-JP_SampleAudio01.wav",
        "free_JA-JP_SampleAudio02.wav",
    ] {
        let e = t.embed(&read_sample(f));
        let mut scores: Vec<(f32, &str)> = enrolled
            .iter()
            .zip(SPEAKER_SAMPLE_VOICES)
            .map(|(x, s)| (e.cosine(x), s))
            .collect();
        scores.sort_by(|a, b| b.0.total_cmp(&a.0));
        eprintln!(
            "{f}: best {} {:.3}, next {} {:.3}",
            scores[0].1, scores[0].0, scores[1].1, scores[1].0
        );
    }
}

/// (same-speaker scores, different-speaker scores) of the real samples: first half of each
/// speaker's speech against the second half of every speaker's.
fn real_trials(t: &mut Timed) -> (Vec<f32>, Vec<f32>) {
    let halves: Vec<(Embedding, Embedding)> = SPEAKER_SAMPLE_VOICES
        .iter()
        .map(|s| {
            let pcm = read_sample(&format!("phrase_{s}.wav"));
            let span = detect_speech(&pcm).expect("speech");
            let mid =
                ((span.start_secs + span.end_secs) / 2.0 * f64::from(pcm.sample_rate)) as usize;
            let part = |s: &[f32]| Pcm {
                sample_rate: pcm.sample_rate,
                samples: s.to_vec(),
            };
            (
                t.embed(&part(&pcm.samples[..mid])),
                t.embed(&part(&pcm.samples[mid..])),
            )
        })
        .collect();
    let (mut same, mut diff) = (Vec::new(), Vec::new());
    for (i, (a, _)) in halves.iter().enumerate() {
        for (j, (_, b)) in halves.iter().enumerate() {
            if i == j {
                same.push(a.cosine(b))
            } else {
                diff.push(a.cosine(b))
            }
        }
    }
    (same, diff)
}

/// Enrol each voice on sentences 0-4 (averaged), test on 5-9 one by one.
fn synthetic_trials(t: &mut Timed) -> (Vec<f32>, Vec<f32>) {
    let tts = TtsEngine::new().expect("tts engine");
    let mut enrolled = Vec::new();
    let mut tests = Vec::new();
    for voice in VOICES {
        let embs: Vec<Embedding> = HARVARD_SENTENCES
            .iter()
            .map(|s| {
                let pcm = tts
                    .synthesize(voice, s, &Prosody::default())
                    .unwrap_or_else(|e| panic!("{voice}: {e}"));
                t.embed(&pcm)
            })
            .collect();
        enrolled.push(Embedding::average(&embs[..5]));
        tests.push(embs[5..].to_vec());
    }
    let (mut same, mut diff) = (Vec::new(), Vec::new());
    for (i, e) in enrolled.iter().enumerate() {
        for (j, ts) in tests.iter().enumerate() {
            for x in ts {
                if i == j {
                    same.push(e.cosine(x))
                } else {
                    diff.push(e.cosine(x))
                }
            }
        }
    }
    (same, diff)
}

fn summary(name: &str, same: &[f32], diff: &[f32]) -> f64 {
    let eer = equal_error_rate(same, diff).expect("trials");
    let frr = same.iter().filter(|&&s| s < THRESHOLD).count();
    let far = diff.iter().filter(|&&s| s >= THRESHOLD).count();
    let min = same.iter().copied().fold(f32::INFINITY, f32::min);
    let max = diff.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    eprintln!(
        "{name}: {} same (mean {:.3}, min {min:.3}), {} different (mean {:.3}, max {max:.3}); \
         EER {:.1} % at {:.3}; at THRESHOLD {THRESHOLD}: FRR {frr}/{}, FAR {far}/{}",
        same.len(),
        mean(same),
        diff.len(),
        mean(diff),
        eer.rate * 100.0,
        eer.threshold,
        same.len(),
        diff.len(),
    );
    eer.rate
}

#[test]
fn calibrated_threshold_separates_real_and_synthetic_voices() {
    let mut t = Timed {
        enc: encoder(),
        secs: 0.0,
        audio: 0.0,
    };
    let (rs, rd) = real_trials(&mut t);
    let (ss, sd) = synthetic_trials(&mut t);
    let real = summary("real", &rs, &rd);
    let synthetic = summary("synthetic", &ss, &sd);
    let mut us = rs.clone();
    us.extend(&ss);
    let mut ud = rd.clone();
    ud.extend(&sd);
    summary("union", &us, &ud);
    identify_free_speech(&mut t);
    eprintln!(
        "RTF {:.4} ({:.2} s for {:.1} s of audio)",
        t.secs / t.audio,
        t.secs,
        t.audio
    );
    // Measured: 0 % on both (no overlap). The bounds leave room for one or two trials to
    // cross over after a change in resampling or VAD, not for a broken encoder (which gives
    // 30-50 %).
    assert!(real <= 0.12, "real EER {real}");
    assert!(synthetic <= 0.05, "synthetic EER {synthetic}");
    let rate = |v: &[f32], bad: &dyn Fn(f32) -> bool| {
        v.iter().filter(|&&x| bad(x)).count() as f64 / v.len() as f64
    };
    assert!(
        rate(&ss, &|x| x < THRESHOLD) <= 0.05,
        "synthetic FRR at THRESHOLD"
    );
    assert!(
        rate(&sd, &|x| x >= THRESHOLD) <= 0.05,
        "synthetic FAR at THRESHOLD"
    );
}
