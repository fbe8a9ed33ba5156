//! A missing espeak-ng data directory is an error, not a crash (own test binary: the espeak-ng
//! initialization is process-wide).
#![cfg(feature = "espeak")]

use tandem_engines::tts::espeak::EspeakSynthesizer;
use tandem_engines::tts::TtsEngine;
use tandem_engines::{EngineError, Prosody, Synthesizer};

#[test]
fn missing_data_dir_is_an_engine_error() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("ESPEAK_DATA_PATH", dir.path());
    let err = EspeakSynthesizer::new()
        .synthesize("de-DE-Espeak", "Hallo", &Prosody::default())
        .unwrap_err();
    match err {
        EngineError::Engine(m) => assert!(m.contains("data directory"), "{m}"),
        e => panic!("wrong error: {e}"),
    }
    // The registry still works, with flite voices only.
    let e = TtsEngine::new().unwrap();
    assert!(e.voice_list().all(|v| v.engine == "flite"));
    assert_eq!(e.resolve_voice("de-DE-KatjaNeural"), None);
    assert!(e
        .synthesize("en-US-JennyNeural", "Hello.", &Prosody::default())
        .is_ok());
}
