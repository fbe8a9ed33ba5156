//! Text-to-speech and the voice list, through a real region.

mod common;
use common::*;

async fn synth(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    format: &str,
    body: String,
) -> reqwest::Response {
    http.post(format!("{base}/cognitiveservices/v1"))
        .header(KEY, key)
        .header("Content-Type", "application/ssml+xml")
        .header("X-Microsoft-OutputFormat", format)
        .header("User-Agent", "tandem-tests")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn voice_list_has_azure_fields() {
    let west = region("westus").await;
    let k = west.create_resource("tts");
    let r = http()
        .get(format!("{}/cognitiveservices/voices/list", west.url))
        .header(KEY, &k.key1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let voices: Vec<serde_json::Value> = r.json().await.unwrap();
    for short in [
        "en-US-SltFlite",
        "en-US-RmsFlite",
        "en-US-AwbFlite",
        "en-US-Kal16Flite",
    ] {
        let v = voices
            .iter()
            .find(|v| v["ShortName"] == short)
            .unwrap_or_else(|| panic!("{short} missing"));
        for f in [
            "Name",
            "DisplayName",
            "ShortName",
            "Gender",
            "Locale",
            "SampleRateHertz",
            "VoiceType",
            "Status",
        ] {
            assert!(v[f].is_string(), "{short}.{f}: {v}");
        }
        assert_eq!(v["Locale"], "en-US");
        assert_eq!(v["SampleRateHertz"], "16000");
    }
    if cfg!(feature = "espeak") {
        assert!(
            voices.iter().any(|v| v["Locale"] == "de-DE"),
            "espeak-ng voices listed"
        );
    }
}

#[tokio::test]
async fn every_required_format_and_the_round_trip_back_to_text() {
    let west = region("westus").await;
    let k = west.create_resource("tts");
    let http = http();
    let text = "Tandem keeps speaking when a region goes down.";
    for (format, rate, riff) in [
        ("riff-8khz-16bit-mono-pcm", 8_000, true),
        ("riff-16khz-16bit-mono-pcm", 16_000, true),
        ("riff-24khz-16bit-mono-pcm", 24_000, true),
        ("raw-16khz-16bit-mono-pcm", 16_000, false),
        ("raw-24khz-16bit-mono-pcm", 24_000, false),
    ] {
        let r = synth(
            &http,
            &west.url,
            &k.key1,
            format,
            ssml("en-US-SltFlite", text),
        )
        .await;
        assert_eq!(r.status(), 200, "{format}");
        let audio = r.bytes().await.unwrap();
        let pcm_bytes = if riff {
            assert_eq!(&audio[..4], b"RIFF", "{format}");
            let sr = u32::from_le_bytes(audio[24..28].try_into().unwrap());
            assert_eq!(sr, rate, "{format}");
            audio.len() - 44
        } else {
            assert_ne!(&audio[..4], b"RIFF", "{format}");
            audio.len()
        };
        let secs = pcm_bytes as f64 / 2.0 / rate as f64;
        assert!((1.5..8.0).contains(&secs), "{format}: {secs} s");
    }

    // Synthesize in 16 kHz and recognize it back: the words survive.
    let r = synth(
        &http,
        &west.url,
        &k.key1,
        "riff-16khz-16bit-mono-pcm",
        ssml("en-US-SltFlite", text),
    )
    .await;
    let wav = r.bytes().await.unwrap();
    let r = http
        .post(stt_url(&west.url, "language=en-US"))
        .header(KEY, &k.key1)
        .body(wav)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let heard = v["DisplayText"].as_str().unwrap_or_default();
    assert!(wer(text, heard) < 0.3, "said {text:?}, heard {heard:?}");

    // An Azure neural voice name still works (aliased), so Azure scripts run unchanged.
    let r = synth(
        &http,
        &west.url,
        &k.key1,
        "riff-24khz-16bit-mono-pcm",
        ssml("en-US-JennyNeural", "Hello there."),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_ssml_formats_and_bodies_are_refused_clearly() {
    let west = region_with("westus", &["max_ssml_bytes = 20000"]).await;
    let k = west.create_resource("tts");
    let http = http();
    let fmt = "riff-16khz-16bit-mono-pcm";

    // Unknown output format: 400 that lists the supported ones.
    let r = synth(
        &http,
        &west.url,
        &k.key1,
        "mp3-9000khz",
        ssml("en-US-SltFlite", "hi"),
    )
    .await;
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("riff-24khz-16bit-mono-pcm"), "{msg}");

    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><speak version="1.0" xml:lang="en-US"><voice name="en-US-SltFlite">&lol2;</voice></speak>"#;
    let deep = format!(
        "<speak version='1.0' xml:lang='en-US'><voice name='en-US-SltFlite'>{}x{}</voice></speak>",
        "<prosody rate='fast'>".repeat(200),
        "</prosody>".repeat(200)
    );
    for (what, body) in [
        ("not XML", "hello there".to_owned()),
        (
            "unclosed",
            "<speak version='1.0'><voice name='en-US-SltFlite'>hi</speak>".to_owned(),
        ),
        ("wrong root", "<html><body>hi</body></html>".to_owned()),
        (
            "no voice name",
            "<speak version='1.0' xml:lang='en-US'><voice>hi</voice></speak>".to_owned(),
        ),
        ("unknown voice", ssml("xx-XX-NobodyNeural", "hi")),
        ("entity bomb", bomb.to_owned()),
        ("nesting bomb", deep),
        (
            "bad break",
            ssml("en-US-SltFlite", "a <break time='soon'/> b"),
        ),
    ] {
        let r = synth(&http, &west.url, &k.key1, fmt, body).await;
        let msg = assert_azure_error(r, 400).await;
        assert!(!msg.is_empty(), "{what}");
    }

    // Oversized document: 413.
    let big = ssml("en-US-SltFlite", &"word ".repeat(5000));
    let r = synth(&http, &west.url, &k.key1, fmt, big).await;
    assert_azure_error(r, 413).await;
    // Wrong Content-Type: 415.
    let r = http
        .post(format!("{}/cognitiveservices/v1", west.url))
        .header(KEY, &k.key1)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 415).await;
    // A custom voice deployment that does not exist: 404, not a silent public voice.
    let r = http
        .post(format!(
            "{}/cognitiveservices/v1?deploymentId=no-such-deployment",
            west.url
        ))
        .header(KEY, &k.key1)
        .header("Content-Type", "application/ssml+xml")
        .body(ssml("en-US-SltFlite", "hi"))
        .send()
        .await
        .unwrap();
    let msg = assert_azure_error(r, 404).await;
    assert!(msg.contains("no-such-deployment"), "{msg}");
    // Still serving.
    let r = synth(
        &http,
        &west.url,
        &k.key1,
        fmt,
        ssml("en-US-RmsFlite", "still here"),
    )
    .await;
    assert_eq!(r.status(), 200);
}
