//! Config parsing, phoneme ids and clause handling; no model needed.

use super::config::{PiperConfig, BOS, EOS, PAD};
use super::phonemize::push_clause;
use serde_json::json;

/// A minimal valid config, as Piper writes it (ids as in en_US voices).
fn config_json() -> serde_json::Value {
    json!({
        "audio": {"sample_rate": 22050, "quality": "medium"},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "num_speakers": 1,
        "speaker_id_map": {},
        "phoneme_id_map": {
            "_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10], "?": [13],
            "h": [20], "ə": [59], "l": [24], "o": [27], "ʊ": [100], "ˈ": [120]
        }
    })
}

fn parse(v: &serde_json::Value) -> Result<PiperConfig, String> {
    PiperConfig::parse(&serde_json::to_vec(v).unwrap())
}

fn with(edit: impl Fn(&mut serde_json::Value)) -> Result<PiperConfig, String> {
    let mut v = config_json();
    edit(&mut v);
    parse(&v)
}

#[test]
fn parses_a_piper_config() {
    let c = parse(&config_json()).unwrap();
    assert_eq!(c.sample_rate, 22_050);
    assert_eq!(c.espeak_voice, "en-us");
    assert_eq!(c.noise_scale, 0.667);
    assert_eq!(c.length_scale, 1.0);
    assert_eq!(c.noise_w, 0.8);
    assert_eq!(c.num_speakers, 1);
    assert_eq!(c.phoneme_type, "espeak");
    assert_eq!(c.phoneme_id_map[&'ə'], vec![59]);
}

#[test]
fn defaults_fill_optional_fields() {
    let c = with(|v| {
        let o = v.as_object_mut().unwrap();
        o.remove("inference");
        o.remove("num_speakers");
        o.remove("phoneme_type");
    })
    .unwrap();
    assert_eq!(
        (c.noise_scale, c.length_scale, c.noise_w),
        (0.667, 1.0, 0.8)
    );
    assert_eq!(c.num_speakers, 1);
}

#[test]
fn bad_configs_say_why() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("audio.sample_rate", Box::new(|v| v["audio"] = json!({}))),
        (
            "audio.sample_rate",
            Box::new(|v| v["audio"]["sample_rate"] = 0.into()),
        ),
        (
            "audio.sample_rate",
            Box::new(|v| v["audio"]["sample_rate"] = 4_000_000.into()),
        ),
        (
            "espeak.voice",
            Box::new(|v| v["espeak"] = json!({"voice": ""})),
        ),
        (
            "espeak.voice",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("espeak");
            }),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| v["phoneme_id_map"] = json!({})),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("phoneme_id_map");
            }),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| v["phoneme_id_map"]["ab"] = json!([5])),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| v["phoneme_id_map"]["x"] = json!([])),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| v["phoneme_id_map"]["x"] = json!([-1])),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| {
                v["num_symbols"] = 100.into();
                v["phoneme_id_map"]["ˈ"] = json!([100]);
            }),
        ),
        (
            "phoneme_id_map",
            Box::new(|v| {
                v["phoneme_id_map"].as_object_mut().unwrap().remove("$");
            }),
        ),
        (
            "phoneme_type",
            Box::new(|v| v["phoneme_type"] = "text".into()),
        ),
        ("num_speakers", Box::new(|v| v["num_speakers"] = 0.into())),
        (
            "inference.length_scale",
            Box::new(|v| v["inference"]["length_scale"] = 0.into()),
        ),
        (
            "inference.noise_scale",
            Box::new(|v| v["inference"]["noise_scale"] = 50.into()),
        ),
    ];
    for (field, edit) in cases {
        let err = with(edit).unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
    for junk in [&b""[..], b"{", b"[]", b"null", b"\xff\xfe"] {
        assert!(PiperConfig::parse(junk).is_err());
    }
}

#[test]
fn phoneme_ids_are_bos_pad_interspersed_eos() {
    let c = parse(&config_json()).unwrap();
    let (ids, missing) = c.phoneme_ids(&['h', 'ə', 'l', 'ˈ', 'o', 'ʊ', '.']);
    assert_eq!(
        ids,
        vec![1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 10, 0, 2]
    );
    assert!(missing.is_empty());
    // Unknown phonemes are skipped and reported.
    let (ids, missing) = c.phoneme_ids(&['h', 'Q', 'ə']);
    assert_eq!(ids, vec![1, 0, 20, 0, 59, 0, 2]);
    assert_eq!(missing, vec!['Q']);
    let (ids, _) = c.phoneme_ids(&[]);
    assert_eq!(ids, vec![1, 0, 2]);
    assert_eq!((PAD, BOS, EOS), ('_', '^', '$'));
}

#[test]
fn clauses_keep_punctuation_and_split_sentences() {
    // As espeak-ng 1.51 consumes text: each clause but the last takes the next one's first
    // character too.
    let mut s = Vec::new();
    push_clause(&mut s, "həlˈoʊ", "Hello, w", true);
    push_clause(&mut s, "wˈɜːld", "orld. \"H", true);
    push_clause(&mut s, "hˌaʊ ɑːɹ juː", "ow are you?\" ", false);
    let text: Vec<String> = s.iter().map(|p| p.iter().collect()).collect();
    assert_eq!(text, vec!["həlˈoʊ, wˈɜːld.", "hˌaʊ ɑːɹ juː?", ""]);

    // No punctuation: nothing appended, the sentence goes on.
    let mut s = Vec::new();
    push_clause(&mut s, "(fr)bɔ̃ʒuːʁ(en) ðɛɹ", "Bonjour there", false);
    let text: String = s[0].iter().collect();
    assert_eq!(text, "bɔ̃ʒuːʁ ðɛɹ");
    assert_eq!(s.len(), 1);

    let mut s = Vec::new();
    push_clause(&mut s, "wʌn", "one; t", true);
    push_clause(&mut s, "tuː", "two:  t", true);
    push_clause(&mut s, "θɹiː", "hree)!", false);
    let text: String = s[0].iter().collect();
    assert_eq!(text, "wʌn; tuː: θɹiː!");

    // An espeak-ng that does not read ahead: the punctuation is still found.
    let mut s = Vec::new();
    push_clause(&mut s, "həlˈoʊ", "Hello,", true);
    push_clause(&mut s, "wˈɜːld", "world. ", true);
    let text: Vec<String> = s.iter().map(|p| p.iter().collect()).collect();
    assert_eq!(text, vec!["həlˈoʊ, wˈɜːld.", ""]);
}

#[cfg(feature = "espeak")]
#[test]
fn espeak_phonemizes_like_piper() {
    let sentences = super::phonemize::phonemize("en-us", "Hello, world. How are you?").unwrap();
    let text: Vec<String> = sentences.iter().map(|p| p.iter().collect()).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(text[0].contains(", "), "{text:?}");
    assert!(text[0].ends_with('.'), "{text:?}");
    assert!(text[1].ends_with('?'), "{text:?}");
    assert!(text[0].contains('ˈ'), "IPA stress marks expected: {text:?}");
    assert!(
        text[0].starts_with('h') && text[1].starts_with('h'),
        "{text:?}"
    );
    assert!(super::phonemize::phonemize("en-us", " ... ")
        .unwrap()
        .is_empty());
    assert!(super::phonemize::phonemize("no-such-voice-xyz", "hi").is_err());
}

#[test]
fn a_voice_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<super::PiperVoice>();
}
