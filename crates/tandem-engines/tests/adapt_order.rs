//! An adapted model recognizes a clip the same way whatever was decoded before it: the same
//! clips decoded forward and then in reverse order on one recognizer give the same texts. (On
//! reused whisper.cpp states, beam search carried something over from the previous decode and
//! 2 of 12 biology clips changed; see `WhisperRecognizer::recognize_adapted`.) Evaluations,
//! `?cid=` recognition and copies between regions rely on this.

use tandem_engines::models::{ModelCache, WHISPER_TINY_EN};
use tandem_engines::stt::WhisperRecognizer;
use tandem_engines::{AdaptedModel, RecognizeOptions};
use tandem_testkit::{biology, model_dir, shared_data};

#[test]
fn adapted_results_do_not_depend_on_decode_order() {
    let path = ModelCache::new(model_dir())
        .whisper_model_path(WHISPER_TINY_EN)
        .expect("the Whisper model is installed (make models)");
    let recognizer = WhisperRecognizer::load(&path, 2).unwrap();
    let text =
        std::fs::read_to_string(shared_data().join("custom-speech-biology/language-data.txt"))
            .unwrap();
    let model = AdaptedModel::train(&[&text], &[], &recognizer).unwrap();
    let opts = RecognizeOptions {
        language: "en-US".into(),
        audio_ctx: 768,
    };
    let mut clips = biology();
    clips.sort_by(|a, b| a.name.cmp(&b.name));
    // The first twelve: on reused states, positions 6 and 8 changed with the order.
    let pcm: Vec<Vec<f32>> = clips[..12]
        .iter()
        .map(|c| {
            tandem_audio::decode_wav(&std::fs::read(&c.path).unwrap())
                .unwrap()
                .samples
        })
        .collect();
    let decode = |p: &Vec<f32>| {
        recognizer
            .recognize_adapted(p, &opts, Some(&model))
            .unwrap()
            .text
    };
    let forward: Vec<String> = pcm.iter().map(decode).collect();
    let mut reverse: Vec<String> = pcm.iter().rev().map(decode).collect();
    reverse.reverse();
    assert_eq!(forward, reverse);
    assert!(forward.iter().all(|t| !t.is_empty()));
}
