//! Short-audio speech-to-text on real recordings, through a real region.

mod common;
use common::*;

#[tokio::test]
async fn recognizes_real_biology_recordings_in_azure_shapes() {
    let west = region("westus").await;
    let k = west.create_resource("stt");
    let http = http();
    let clips = biology();
    assert_eq!(clips.len(), 50);
    let mut total = tandem_engines::text::WerStats::default();
    for (i, clip) in clips.iter().step_by(5).enumerate() {
        let detailed = i % 2 == 1;
        let query = if detailed {
            "language=en-US&format=detailed"
        } else {
            "language=en-US"
        };
        let r = http
            .post(stt_url(&west.url, query))
            .header(KEY, &k.key1)
            .header(
                "Content-Type",
                "audio/wav; codecs=audio/pcm; samplerate=16000",
            )
            .body(wav_bytes(&clip.path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", clip.name);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["RecognitionStatus"], "Success", "{}: {v}", clip.name);
        let display = v["DisplayText"].as_str().unwrap();
        let offset = v["Offset"].as_u64().expect("Offset in ticks");
        let duration = v["Duration"].as_u64().expect("Duration in ticks");
        assert!(
            duration > 5_000_000 && offset + duration <= 80_000_000,
            "{v}"
        );
        if detailed {
            let best = &v["NBest"][0];
            for f in ["Lexical", "ITN", "MaskedITN", "Display"] {
                assert!(best[f].is_string(), "NBest[0].{f} missing: {v}");
            }
            let c = best["Confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&c));
            let lexical = best["Lexical"].as_str().unwrap();
            assert_eq!(lexical, lexical.to_lowercase(), "Lexical is lower case");
            assert!(
                !lexical.contains(['.', ',', '?']),
                "Lexical has no punctuation"
            );
        }
        let stats = tandem_engines::text::word_errors(&clip.transcript, display);
        // One short clip can go badly wrong; the set as a whole is what is measured.
        assert!(
            stats.wer() < 1.0,
            "{}: {:?} vs {:?}",
            clip.name,
            clip.transcript,
            display
        );
        total.add(&stats);
    }
    // Whisper tiny.en's baseline on this set is about 20 % WER (BENCHMARKS.md has all 50).
    assert!(total.wer() < 0.35, "WER {:.3} on 10 clips", total.wer());
}

#[tokio::test]
async fn chunked_uploads_other_rates_and_token_auth_work() {
    let west = region("westus").await;
    let k = west.create_resource("stt");
    let http = http();
    let clip = &biology()[3];
    let bytes = wav_bytes(&clip.path);

    // Chunked transfer: the body arrives as a stream of small pieces.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let token = http
        .post(format!("{}/sts/v1.0/issueToken", west.url))
        .header(KEY, &k.key2)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(stt_url(&west.url, "language=en-US"))
        .bearer_auth(&token)
        .header("Transfer-Encoding", "chunked")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["RecognitionStatus"], "Success");
    assert!(
        wer(&clip.transcript, v["DisplayText"].as_str().unwrap()) < 0.6,
        "{v}"
    );

    // 24 kHz audio is resampled, not refused.
    let sample = shared_data().join("speaker-samples/phrase_EN-US_Jenny.wav");
    let r = http
        .post(stt_url(&west.url, "language=en-US"))
        .header(KEY, &k.key1)
        .body(wav_bytes(&sample))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["RecognitionStatus"], "Success", "{v}");
    assert!(!v["DisplayText"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn bad_audio_gets_clear_400s_and_silence_is_initial_silence_timeout() {
    let west = region_with("westus", &["max_body_bytes = 4000000"]).await;
    let k = west.create_resource("stt");
    let http = http();
    let post = |query: &'static str, body: Vec<u8>| {
        http.post(stt_url(&west.url, query))
            .header(KEY, &k.key1)
            .body(body)
            .send()
    };

    let good = wav_bytes(&biology()[0].path);
    let mut mp3_tag = good.clone();
    mp3_tag[20] = 0x55; // format tag: MP3
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", vec![], ""),
        (
            "not a WAV",
            b"this is not audio at all, just text".to_vec(),
            "",
        ),
        ("MP3 in a RIFF", mp3_tag, ""),
        ("truncated header", good[..30].to_vec(), ""),
    ];
    for (what, body, _) in cases {
        let r = post("language=en-US", body).await.unwrap();
        let msg = assert_azure_error(r, 400).await;
        assert!(!msg.is_empty(), "{what}");
    }

    // Missing language.
    let r = post("format=simple", good.clone()).await.unwrap();
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("language"), "{msg}");
    // Unsupported language for the default model.
    let r = post("language=xx-XX", good.clone()).await.unwrap();
    assert_azure_error(r, 400).await;
    // Ogg/Opus is not supported: 415.
    let r = http
        .post(stt_url(&west.url, "language=en-US"))
        .header(KEY, &k.key1)
        .header("Content-Type", "audio/ogg; codecs=opus")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 415).await;
    // Over 60 s of audio (61 s of silence is 1.95 MB: under the body limit).
    let r = post("language=en-US", silent_wav(61.0)).await.unwrap();
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("60"), "{msg}");
    // Pure silence is not an error: Azure says InitialSilenceTimeout.
    let r = post("language=en-US", silent_wav(3.0)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["RecognitionStatus"], "InitialSilenceTimeout", "{v}");
    // Over the body limit: 413. The region answers before reading the whole body and closes
    // the connection, so the client may instead see the connection reset mid-upload.
    match post("language=en-US", silent_wav(150.0)).await {
        Ok(r) => {
            assert_azure_error(r, 413).await;
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // The region is still healthy afterwards (a new client: the old connection is closed).
    let r = common::http()
        .post(stt_url(&west.url, "language=en-US"))
        .header(KEY, &k.key1)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
