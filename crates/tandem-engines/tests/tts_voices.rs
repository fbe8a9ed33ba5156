//! Synthesis through every voice, prosody, aliases, SSML rendering and thread safety.

use std::sync::OnceLock;

use tandem_audio::Pcm;
use tandem_engines::ssml::{parse, SsmlLimits};
use tandem_engines::tts::{long_name, render, TtsEngine};
use tandem_engines::{EngineError, Gender, Prosody, Synthesizer};

const SENTENCE: &str = "The quick brown fox jumps over the lazy dog.";

fn engine() -> &'static TtsEngine {
    static E: OnceLock<TtsEngine> = OnceLock::new();
    E.get_or_init(|| TtsEngine::new().expect("engine"))
}

fn rms_dbfs(s: &[f32]) -> f64 {
    if s.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms = s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len() as f64;
    10.0 * ms.log10()
}

fn peak(s: &[f32]) -> f32 {
    s.iter().fold(0.0, |m, &x| m.max(x.abs()))
}

fn say(voice: &str, prosody: Prosody) -> Pcm {
    engine()
        .synthesize(voice, SENTENCE, &prosody)
        .unwrap_or_else(|e| panic!("{voice}: {e}"))
}

/// Samples inside the longest run of near-silence (|x| < 1e-3).
fn longest_silence(s: &[f32]) -> usize {
    let (mut best, mut cur) = (0, 0);
    for &x in s {
        if x.abs() < 1e-3 {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

#[test]
fn voice_list_is_as_documented() {
    let names: Vec<String> = engine()
        .voice_list()
        .map(|v| v.short_name.clone())
        .collect();
    for n in [
        "en-US-SltFlite",
        "en-US-RmsFlite",
        "en-US-AwbFlite",
        "en-US-Kal16Flite",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let slt = engine().resolve_voice("en-US-SltFlite").unwrap();
    assert_eq!(slt.display_name, "Slt");
    assert_eq!(slt.gender, Gender::Female);
    assert_eq!(slt.sample_rate, 16_000);
    assert_eq!(slt.engine, "flite");
    #[cfg(feature = "espeak")]
    {
        for n in [
            "de-DE-Espeak",
            "de-DE-EspeakF",
            "en-GB-Espeak",
            "fr-FR-EspeakF",
            "ru-RU-Espeak",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let v = engine().resolve_voice("de-DE-EspeakF").unwrap();
        assert_eq!(
            (v.gender, v.sample_rate, v.engine),
            (Gender::Female, 22_050, "espeak-ng")
        );
    }
    #[cfg(not(feature = "espeak"))]
    assert_eq!(names.len(), 4);
}

#[test]
fn every_voice_speaks() {
    for v in engine().voice_list() {
        let pcm = say(&v.short_name, Prosody::default());
        assert_eq!(pcm.sample_rate, v.sample_rate, "{}", v.short_name);
        let secs = pcm.duration_secs();
        assert!((1.0..8.0).contains(&secs), "{}: {secs} s", v.short_name);
        let db = rms_dbfs(&pcm.samples);
        assert!(db > -40.0, "{}: {db} dBFS", v.short_name);
    }
}

#[test]
fn rate_changes_duration() {
    for v in ["en-US-SltFlite", "en-US-Kal16Flite"]
        .into_iter()
        .chain(cfg!(feature = "espeak").then_some("de-DE-Espeak"))
    {
        let normal = say(v, Prosody::default()).duration_secs();
        let fast = say(
            v,
            Prosody {
                rate: 2.0,
                ..Prosody::default()
            },
        )
        .duration_secs();
        let slow = say(
            v,
            Prosody {
                rate: 0.5,
                ..Prosody::default()
            },
        )
        .duration_secs();
        assert!(fast < normal * 0.75, "{v}: fast {fast} vs {normal}");
        assert!(slow > normal * 1.3, "{v}: slow {slow} vs {normal}");
    }
}

#[test]
fn volume_scales_amplitude() {
    for v in ["en-US-RmsFlite"]
        .into_iter()
        .chain(cfg!(feature = "espeak").then_some("fr-FR-EspeakF"))
    {
        let full = say(v, Prosody::default());
        let half = say(
            v,
            Prosody {
                volume: 0.5,
                ..Prosody::default()
            },
        );
        let ratio = rms_dbfs(&half.samples) - rms_dbfs(&full.samples);
        assert!((ratio + 6.02).abs() < 0.5, "{v}: {ratio} dB");
        let silent = say(
            v,
            Prosody {
                volume: 0.0,
                ..Prosody::default()
            },
        );
        assert_eq!(peak(&silent.samples), 0.0);
    }
}

/// Median F0 in Hz over voiced 40 ms frames, by autocorrelation (60-400 Hz).
fn median_f0(p: &Pcm) -> f32 {
    let sr = p.sample_rate as f32;
    let frame = (sr * 0.04) as usize;
    let (lo, hi) = ((sr / 400.0) as usize, (sr / 60.0) as usize);
    let mut f0s = Vec::new();
    for c in p.samples.chunks_exact(frame) {
        if c.iter().map(|x| x * x).sum::<f32>() / (frame as f32) < 1e-3 {
            continue;
        }
        let best = (lo..hi)
            .map(|lag| {
                (
                    c[..frame - lag]
                        .iter()
                        .zip(&c[lag..])
                        .map(|(a, b)| a * b)
                        .sum::<f32>(),
                    lag,
                )
            })
            .fold((0.0, 0), |m, x| if x.0 > m.0 { x } else { m });
        if best.1 > 0 {
            f0s.push(sr / best.1 as f32);
        }
    }
    f0s.sort_by(f32::total_cmp);
    f0s.get(f0s.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn pitch_changes_f0() {
    for v in ["en-US-SltFlite", "en-US-AwbFlite"]
        .into_iter()
        .chain(cfg!(feature = "espeak").then_some("de-DE-Espeak"))
    {
        let normal = median_f0(&say(v, Prosody::default()));
        let high = median_f0(&say(
            v,
            Prosody {
                pitch: 1.5,
                ..Prosody::default()
            },
        ));
        let low = median_f0(&say(
            v,
            Prosody {
                pitch: 0.7,
                ..Prosody::default()
            },
        ));
        assert!(high > normal * 1.1, "{v}: high {high} vs {normal}");
        assert!(low < normal * 0.95, "{v}: low {low} vs {normal}");
    }
}

#[test]
fn features_are_restored_after_each_call() {
    let a = say("en-US-AwbFlite", Prosody::default());
    let _ = say(
        "en-US-AwbFlite",
        Prosody {
            rate: 1.7,
            pitch: 1.3,
            volume: 0.3,
        },
    );
    let b = say("en-US-AwbFlite", Prosody::default());
    // Clustergen voices add random noise excitation, so compare length and loudness.
    assert_eq!(a.samples.len(), b.samples.len());
    assert!((rms_dbfs(&a.samples) - rms_dbfs(&b.samples)).abs() < 0.5);
    // kal16 (diphone) is deterministic.
    let a = say("en-US-Kal16Flite", Prosody::default());
    let _ = say(
        "en-US-Kal16Flite",
        Prosody {
            rate: 0.6,
            pitch: 0.8,
            volume: 2.0,
        },
    );
    assert_eq!(
        a,
        say("en-US-Kal16Flite", Prosody::default()),
        "kal16 output changed"
    );
}

#[test]
fn empty_text_is_empty_audio() {
    let p = engine()
        .synthesize("en-US-SltFlite", "  ", &Prosody::default())
        .unwrap();
    assert!(p.samples.is_empty());
}

#[test]
fn aliases_and_long_names() {
    let e = engine();
    let name = |n: &str| e.resolve_voice(n).map(|v| v.short_name.clone());
    for n in [
        "en-US-JennyNeural",
        "en-US-AriaNeural",
        "en-us-avaneural",
        "en-US-AvaMultilingualNeural",
        "en-US-EmmaNeural",
    ] {
        assert_eq!(name(n).as_deref(), Some("en-US-SltFlite"), "{n}");
    }
    for n in [
        "en-US-GuyNeural",
        "en-US-ChristopherNeural",
        "en-US-AndrewMultilingualNeural",
        "en-US-TonyNeural",
    ] {
        assert_eq!(name(n).as_deref(), Some("en-US-RmsFlite"), "{n}");
    }
    assert_eq!(
        name("EN-US-KAL16FLITE").as_deref(),
        Some("en-US-Kal16Flite")
    );
    assert_eq!(
        name("en-US-SomeoneNewNeural").as_deref(),
        Some("en-US-SltFlite")
    );
    assert_eq!(
        name("Microsoft Server Speech Text to Speech Voice (en-US, GuyNeural)").as_deref(),
        Some("en-US-RmsFlite")
    );
    for v in e.voice_list() {
        assert_eq!(e.resolve_voice(&long_name(v)), Some(v));
    }
    assert_eq!(
        name("Tandem Speech Text to Speech Voice (en-US, AwbFlite)").as_deref(),
        Some("en-US-AwbFlite")
    );
    assert_eq!(name("xx-YY-NobodyNeural"), None);
    assert_eq!(name("en-US-Jenny"), None);
    assert_eq!(name(""), None);
    assert_eq!(
        e.default_voice_for_locale("en-US").unwrap().short_name,
        "en-US-SltFlite"
    );
    assert_eq!(e.default_voice_for_locale("xx-YY"), None);
    #[cfg(feature = "espeak")]
    {
        assert_eq!(name("de-DE-KatjaNeural").as_deref(), Some("de-DE-EspeakF"));
        assert_eq!(name("de-DE-ConradNeural").as_deref(), Some("de-DE-Espeak"));
        assert_eq!(name("fr-FR-DeniseNeural").as_deref(), Some("fr-FR-EspeakF"));
        assert_eq!(name("en-GB-RyanNeural").as_deref(), Some("en-GB-Espeak"));
        assert_eq!(name("de-AT-IngridNeural").as_deref(), Some("de-DE-EspeakF"));
        assert_eq!(e.default_voice_for_locale("de-CH").unwrap().locale, "de-DE");
        assert_eq!(e.default_voice_for_locale("sv-SE").unwrap().locale, "sv-SE");
    }
    let err = e
        .synthesize("nl-XX-Nobody", "hi", &Prosody::default())
        .unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownVoice(ref v) if v == "nl-XX-Nobody"),
        "{err}"
    );
}

fn render_ssml(doc: &str) -> Result<Pcm, EngineError> {
    render(&parse(doc, &SsmlLimits::default())?, engine())
}

#[test]
fn break_adds_silence() {
    let without = render_ssml(
        "<speak><voice name='en-US-JennyNeural'>Hello there. General Kenobi.</voice></speak>",
    )
    .unwrap();
    let with = render_ssml("<speak><voice name='en-US-JennyNeural'>Hello there.<break time='700ms'/>General Kenobi.</voice></speak>").unwrap();
    assert_eq!(with.sample_rate, 16_000);
    let added = (with.samples.len() as f64 - without.samples.len() as f64) / 16_000.0;
    // Splitting the text also changes the synthesizer's own pauses a little.
    // Splitting the text adds flite's own leading/trailing pauses too.
    assert!((0.6..1.3).contains(&added), "added {added} s");
    let gap = longest_silence(&with.samples) as f64 / 16_000.0;
    let gap0 = longest_silence(&without.samples) as f64 / 16_000.0;
    assert!((0.69..1.3).contains(&gap), "longest silence {gap} s");
    assert!(gap0 < 0.5, "longest silence without break {gap0} s");
}

#[test]
fn render_mixes_voices_and_rates() {
    let doc = if cfg!(feature = "espeak") {
        "<speak><voice name='en-US-GuyNeural'>One.</voice><voice name='de-DE-Espeak'>Zwei.</voice></speak>"
    } else {
        "<speak><voice name='en-US-GuyNeural'>One.</voice><voice name='en-US-SltFlite'>Two.</voice></speak>"
    };
    let pcm = render_ssml(doc).unwrap();
    assert_eq!(pcm.sample_rate, 16_000);
    assert!(pcm.duration_secs() > 0.5);
    assert!(rms_dbfs(&pcm.samples) > -40.0);

    #[cfg(feature = "espeak")]
    {
        let pcm = render_ssml("<speak><voice name='de-DE-KatjaNeural'>Eins.</voice><voice name='en-US-JennyNeural'>Two.</voice></speak>").unwrap();
        assert_eq!(pcm.sample_rate, 22_050);
    }

    let err = render_ssml(
        "<speak><voice name='en-US-JennyNeural'>a</voice><voice name='nope'>b</voice></speak>",
    )
    .unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownVoice(ref v) if v == "nope"),
        "{err}"
    );

    let empty = render_ssml("<speak/>").unwrap();
    assert!(empty.samples.is_empty());
}

#[test]
fn render_is_capped_at_ten_minutes() {
    // 130 breaks of 5 s = 650 s of silence, cut to 600 s.
    let mut doc = String::from("<speak><voice name='en-US-SltFlite'>Hi.");
    for _ in 0..130 {
        doc.push_str("<break time='5s'/><s/>");
    }
    doc.push_str("Bye.</voice></speak>");
    let pcm = render_ssml(&doc).unwrap();
    assert_eq!(pcm.samples.len(), 600 * 16_000);
}

#[test]
fn concurrent_synthesis_is_safe() {
    let expected = say("en-US-Kal16Flite", Prosody::default());
    let slt_len = say("en-US-SltFlite", Prosody::default()).samples.len();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let expected = &expected;
            s.spawn(move || {
                for i in 0..5u8 {
                    let p = Prosody {
                        rate: 1.0 + 0.1 * f32::from((t + i) % 3),
                        pitch: 1.2,
                        volume: 0.5,
                    };
                    assert!(!say("en-US-AwbFlite", p).samples.is_empty());
                    // Any leaked prosody would change these.
                    assert!(
                        say("en-US-Kal16Flite", Prosody::default()) == *expected,
                        "kal16 changed"
                    );
                    assert_eq!(
                        say("en-US-SltFlite", Prosody::default()).samples.len(),
                        slt_len
                    );
                    #[cfg(feature = "espeak")]
                    {
                        let a = say("es-ES-EspeakF", Prosody::default());
                        assert!(a.duration_secs() > 1.0 && rms_dbfs(&a.samples) > -40.0);
                    }
                }
            });
        }
    });
}
