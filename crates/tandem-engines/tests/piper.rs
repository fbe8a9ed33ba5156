//! Piper voice `en_US-joe-medium` through ONNX Runtime: synthesis, a Whisper round trip, and
//! broken voices refused with a reason. Needs `tandem models pull onnxruntime piper-joe
//! piper-joe-config` (and `whisper-tiny.en` for the round trip); skipped with a note when they
//! are not installed. Piper voices phonemize with espeak-ng, so this needs the `espeak` feature.

#![cfg(feature = "espeak")]

use std::path::{Path, PathBuf};
use std::time::Instant;

use tandem_engines::models::{
    ModelCache, ONNXRUNTIME, PIPER_JOE, PIPER_JOE_CONFIG, WHISPER_TINY_EN,
};
use tandem_engines::stt::WhisperRecognizer;
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::{EngineError, Prosody, RecognizeOptions, Recognizer};
use tandem_testkit::model_dir;

const SENTENCE: &str = "The cell membrane controls what enters the cell.";

/// The joe voice's files, or `None` (with a note) when they have not been pulled.
fn joe() -> Option<(PathBuf, PathBuf)> {
    let cache = ModelCache::new(model_dir());
    let found = (
        cache.model_path(ONNXRUNTIME),
        cache.model_path(PIPER_JOE),
        cache.model_path(PIPER_JOE_CONFIG),
    );
    match found {
        (Ok(_), Ok(onnx), Ok(json)) => Some((onnx, json)),
        _ => {
            eprintln!(
                "skipped: the Piper voice is not installed in {}; run `tandem models pull \
                 onnxruntime piper-joe piper-joe-config`",
                model_dir().display()
            );
            None
        }
    }
}

fn load(onnx: &Path, json: &Path) -> tandem_engines::Result<PiperVoice> {
    PiperVoice::load_with(onnx, json, &model_dir(), 1)
}

#[test]
fn joe_speaks_and_whisper_understands() {
    let Some((onnx, json)) = joe() else { return };
    let t = Instant::now();
    let voice = load(&onnx, &json).expect("loading joe");
    eprintln!("loaded {} in {:.2?}", voice.name(), t.elapsed());
    assert_eq!(voice.name(), "en_US-joe-medium");
    assert_eq!(voice.sample_rate(), 22_050);

    let t = Instant::now();
    let pcm = voice
        .synthesize(SENTENCE, &Prosody::default())
        .expect("synthesizing");
    let took = t.elapsed().as_secs_f64();
    let secs = pcm.duration_secs();
    let rms = tandem_audio::rms_dbfs(&pcm);
    eprintln!(
        "{secs:.2} s of audio in {took:.2} s (RTF {:.3}), RMS {rms:.1} dBFS",
        took / secs
    );
    assert_eq!(pcm.sample_rate, 22_050);
    assert!((1.5..=6.0).contains(&secs), "duration {secs}");
    assert!(rms > -30.0, "RMS {rms} dBFS");
    assert!(tandem_audio::voiced_secs(&pcm) > 1.0);

    // Faster speech is shorter.
    let fast = voice
        .synthesize(
            SENTENCE,
            &Prosody {
                rate: 1.5,
                ..Prosody::default()
            },
        )
        .expect("synthesizing fast");
    eprintln!("rate 1.5: {:.2} s", fast.duration_secs());
    assert!(fast.duration_secs() < secs * 0.85);

    let report = voice.validate().expect("joe passes validation");
    eprintln!("validation: {report:?}");

    let Ok(whisper) = ModelCache::new(model_dir()).whisper_model_path(WHISPER_TINY_EN) else {
        eprintln!("round trip skipped: {WHISPER_TINY_EN} is not installed");
        return;
    };
    let recognizer = WhisperRecognizer::load(&whisper, 2).expect("loading Whisper");
    let audio = tandem_audio::resample(&pcm, 16_000);
    let r = recognizer
        .recognize(
            &audio.samples,
            &RecognizeOptions {
                language: "en-US".into(),
                audio_ctx: 768,
            },
        )
        .expect("recognizing");
    eprintln!("whisper heard: {:?}", r.text);
    let heard = r.text.to_lowercase();
    for word in ["cell", "membrane", "controls", "enters"] {
        assert!(heard.contains(word), "{word:?} not in {heard:?}");
    }
}

#[test]
fn empty_text_is_empty_audio() {
    let Some((onnx, json)) = joe() else { return };
    let voice = load(&onnx, &json).expect("loading joe");
    for text in ["", "   ", "..."] {
        let pcm = voice.synthesize(text, &Prosody::default()).unwrap();
        assert!(pcm.samples.is_empty(), "{text:?}");
    }
}

#[test]
fn sentences_are_spoken_in_turn_and_threads_share_a_voice() {
    let Some((onnx, json)) = joe() else { return };
    let voice = load(&onnx, &json).expect("loading joe");
    let one = voice.synthesize("Rice is often served in round bowls.", &Prosody::default());
    let two = voice.synthesize(
        "Rice is often served in round bowls. The juice of lemons makes fine punch!",
        &Prosody::default(),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    eprintln!(
        "one sentence {:.2} s, two {:.2} s",
        one.duration_secs(),
        two.duration_secs()
    );
    assert!(two.duration_secs() > one.duration_secs() * 1.6);

    // espeak-ng is one global library: Piper's phonemizer and the espeak voices share its lock.
    std::thread::scope(|s| {
        let piper: Vec<_> = (0..2)
            .map(|_| s.spawn(|| voice.synthesize(SENTENCE, &Prosody::default())))
            .collect();
        let espeak = s.spawn(|| {
            use tandem_engines::Synthesizer;
            let e = tandem_engines::tts::espeak::EspeakSynthesizer::new();
            e.synthesize("en-GB-Espeak", SENTENCE, &Prosody::default())
        });
        for h in piper {
            assert!(h.join().unwrap().unwrap().duration_secs() > 1.5);
        }
        assert!(!espeak.join().unwrap().unwrap().samples.is_empty());
    });
}

fn assert_refused(onnx: &Path, json: &Path, what: &str) -> String {
    match load(onnx, json) {
        Ok(v) => panic!("{what}: loaded as {v:?}"),
        Err(e) => {
            assert!(matches!(e, EngineError::BadModel { .. }), "{what}: {e:?}");
            eprintln!("{what}: {e}");
            e.to_string()
        }
    }
}

#[test]
fn corrupt_models_are_refused() {
    let Some((onnx, json)) = joe() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&onnx).unwrap();

    // Random bytes (a fixed xorshift stream).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: [(&str, &[u8]); 4] = [
        ("random bytes", &random),
        ("truncated model", &bytes[..bytes.len() / 2]),
        ("header only", &bytes[..4096]),
        ("empty file", &[]),
    ];
    for (what, content) in cases {
        let path = dir.path().join("broken.onnx");
        std::fs::write(&path, content).unwrap();
        assert_refused(&path, &json, what);
    }
}

#[test]
fn mismatched_configs_are_refused() {
    let Some((onnx, json)) = joe() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let variant = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = config.clone();
        edit(&mut c);
        let path = dir.path().join("voice.onnx.json");
        std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
        path
    };

    let many = variant(&|c| c["num_speakers"] = 4.into());
    let msg = assert_refused(&onnx, &many, "4 speakers for a single-speaker model");
    assert!(msg.contains("speaker"), "{msg}");

    let no_rate = variant(&|c| c["audio"] = serde_json::json!({}));
    assert_refused(&onnx, &no_rate, "no sample rate");

    let zero = variant(&|c| c["audio"]["sample_rate"] = 0.into());
    assert_refused(&onnx, &zero, "sample rate 0");

    let empty_map = variant(&|c| c["phoneme_id_map"] = serde_json::json!({}));
    assert_refused(&onnx, &empty_map, "empty phoneme map");

    // Ids beyond the model's symbol table: refused at load when the config states
    // num_symbols (Piper's configs do) ...
    let huge = |c: &mut serde_json::Value| {
        for ids in c["phoneme_id_map"].as_object_mut().unwrap().values_mut() {
            *ids = serde_json::json!([100_000]);
        }
    };
    let huge_ids = variant(&huge);
    assert_refused(&onnx, &huge_ids, "ids beyond num_symbols");
    // ... and otherwise by the test synthesis, with ONNX Runtime's reason (never a panic).
    let huge_ids = variant(&|c| {
        huge(c);
        c.as_object_mut().unwrap().remove("num_symbols");
    });
    let voice = load(&onnx, &huge_ids).expect("the model itself is fine");
    let err = voice.validate().expect_err("out-of-range ids must fail");
    assert!(matches!(err, EngineError::BadModel { .. }), "{err:?}");
    eprintln!("ids out of range, at validation: {err}");
}

#[test]
fn missing_runtime_is_a_clear_error() {
    // The lookup only (once loaded, the runtime stays loaded for the process).
    if std::env::var_os("TANDEM_ONNXRUNTIME").is_some()
        || std::env::var_os("ORT_DYLIB_PATH").is_some()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let err = tandem_engines::tts::piper::onnxruntime_path(dir.path()).unwrap_err();
    assert!(matches!(err, EngineError::ModelMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("tandem models pull"), "{err}");
}
