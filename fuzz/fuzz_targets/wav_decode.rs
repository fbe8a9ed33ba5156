//! Arbitrary bytes into the WAV decoder: it must never panic or over-allocate.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pcm) = tandem_audio::decode_wav(data) {
        assert!(pcm.samples.len() <= data.len());
    }
});
