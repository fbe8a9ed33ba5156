//! The Resemblyzer GE2E encoder on the real cached weights: shape, determinism, refusal of
//! too-short audio, and same speaker above different speakers on the real Speech SDK samples.
//! Needs the model in the cache: run `make models` (or `tandem models pull`).

use std::sync::OnceLock;

use tandem_audio::{decode_wav, detect_speech, Pcm};
use tandem_engines::models::{ModelCache, SPEAKER_GE2E};
use tandem_engines::speaker::{voiced_seconds, Embedding, SpeakerEncoder, THRESHOLD};
use tandem_engines::EngineError;
use tandem_testkit::{model_dir, shared_data, SPEAKER_SAMPLE_VOICES};

fn encoder() -> &'static SpeakerEncoder {
    static E: OnceLock<SpeakerEncoder> = OnceLock::new();
    E.get_or_init(|| {
        let path = ModelCache::new(model_dir())
            .model_path(SPEAKER_GE2E)
            .unwrap_or_else(|e| panic!("{e} (run `make models` or `tandem models pull`)"));
        SpeakerEncoder::load(&path).expect("load the speaker encoder")
    })
}

fn sample(name: &str) -> Pcm {
    let bytes = std::fs::read(shared_data().join("speaker-samples").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    decode_wav(&bytes).expect("decode")
}

/// The recording cut at the middle of its speech span.
fn halves(pcm: &Pcm) -> (Pcm, Pcm) {
    let span = detect_speech(pcm).expect("speech");
    let mid = ((span.start_secs + span.end_secs) / 2.0 * f64::from(pcm.sample_rate)) as usize;
    let part = |s: &[f32]| Pcm {
        sample_rate: pcm.sample_rate,
        samples: s.to_vec(),
    };
    (part(&pcm.samples[..mid]), part(&pcm.samples[mid..]))
}

#[test]
fn the_encoder_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SpeakerEncoder>();
    send_sync::<Embedding>();
}

#[test]
fn embedding_is_256_d_unit_norm_and_deterministic() {
    let pcm = sample("phrase_EN-US_Aria.wav");
    let a = encoder().embed(&pcm).unwrap();
    let b = encoder().embed(&pcm).unwrap();
    assert_eq!(a.0.len(), 256);
    let norm = a.0.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert!(a.0.iter().all(|x| x.is_finite() && *x >= 0.0));
    assert_eq!(a, b);
    assert!((a.cosine(&b) - 1.0).abs() < 1e-6);
}

#[test]
fn too_short_audio_is_refused() {
    let pcm = sample("phrase_EN-US_Davis.wav");
    let span = detect_speech(&pcm).unwrap();
    let start = (span.start_secs * 24_000.0) as usize;
    let short = Pcm {
        sample_rate: 24_000,
        samples: pcm.samples[start..start + 7_200].to_vec(), // 0.3 s
    };
    assert!(voiced_seconds(&short) < 0.5);
    assert!(matches!(
        encoder().embed(&short),
        Err(EngineError::TooShort { .. })
    ));
    let silence = Pcm {
        sample_rate: 16_000,
        samples: vec![0.0; 48_000],
    };
    assert!(matches!(
        encoder().embed(&silence),
        Err(EngineError::TooShort { .. })
    ));
    assert!(voiced_seconds(&pcm) > 2.0);
}

#[test]
fn same_speaker_scores_above_different_speakers_on_real_voices() {
    let embs: Vec<(Embedding, Embedding)> = SPEAKER_SAMPLE_VOICES
        .iter()
        .map(|s| {
            let (a, b) = halves(&sample(&format!("phrase_{s}.wav")));
            (encoder().embed(&a).unwrap(), encoder().embed(&b).unwrap())
        })
        .collect();
    let same: Vec<f32> = embs.iter().map(|(a, b)| a.cosine(b)).collect();
    let mut diff = Vec::new();
    for i in 0..embs.len() {
        for j in 0..embs.len() {
            if i != j {
                diff.push(embs[i].0.cosine(&embs[j].1));
            }
        }
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    eprintln!(
        "same {same:?}\nmean same {} mean different {}",
        mean(&same),
        mean(&diff)
    );
    assert!(mean(&same) > mean(&diff) + 0.1);
    // Each speaker's own other half is its best match among all second halves.
    for (i, (a, _)) in embs.iter().enumerate() {
        let best = (0..embs.len())
            .max_by(|&x, &y| a.cosine(&embs[x].1).total_cmp(&a.cosine(&embs[y].1)))
            .unwrap();
        assert_eq!(
            best, i,
            "{} first half matched {}",
            SPEAKER_SAMPLE_VOICES[i], SPEAKER_SAMPLE_VOICES[best]
        );
    }
    assert!(
        same.iter().filter(|&&s| s >= THRESHOLD).count() >= 7,
        "{same:?}"
    );
}

#[test]
fn non_finite_samples_count_as_silence() {
    let mut pcm = sample("phrase_EN-US_Tony.wav");
    pcm.samples[1000] = f32::NAN;
    pcm.samples[2000] = f32::INFINITY;
    let e = encoder().embed(&pcm).unwrap();
    assert!(e.0.iter().all(|x| x.is_finite()));
}

#[test]
fn a_corrupt_file_is_bad_model() {
    let bytes = std::fs::read(
        ModelCache::new(model_dir())
            .model_path(SPEAKER_GE2E)
            .unwrap(),
    )
    .unwrap();
    for cut in [100, 6_000, bytes.len() / 2, bytes.len() - 1] {
        let err = SpeakerEncoder::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(matches!(err, EngineError::BadModel { .. }), "{err}");
    }
}
