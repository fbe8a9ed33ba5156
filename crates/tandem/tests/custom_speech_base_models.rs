//! Custom Speech base models (issue #4) through a real region process: `GET /models/base` lists
//! Whisper tiny.en (loaded at start) and Whisper base (multilingual, pulled on demand) under
//! stable ids; a model trained on whisper-base makes the region pull and load it by itself
//! (unless the shared model cache already holds it); an endpoint deploys it and `?cid=`
//! recognizes biology clips with whisper-base.

mod common;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

/// Biology clips recognized through the endpoint (whisper-base is slower than tiny.en).
const CLIPS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_trained_on_whisper_base_is_pulled_on_demand_and_served() {
    let region = region("westus").await;
    let keys = region.create_resource("owner");
    let a = Api::new(&region, &keys.key1);

    // Both base models, tiny.en first, each with its own stable id.
    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let values = bases["values"].as_array().unwrap();
    let names: Vec<&str> = values
        .iter()
        .map(|v| v["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whisper-tiny.en", "whisper-base"], "{bases}");
    for v in values {
        assert_eq!(v["locale"], "en-US");
        assert_eq!(
            v["properties"]["features"]["supportsAdaptationsWith"],
            json!(["Language", "Pronunciation"])
        );
        let got: Value = a
            .get(v["self"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(&got, v, "GET /models/base/{{id}} answers the listed entity");
    }
    assert_ne!(values[0]["self"], values[1]["self"]);
    let base_self = values[1]["self"].as_str().unwrap().to_owned();

    // Train on whisper-base: the region pulls and loads it while the model is Running.
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = a.upload("Language", "biology text", text).await;
    let started = Instant::now();
    let resp = a
        .post(
            "/models",
            json!({
                "baseModel": {"self": base_self},
                "datasets": [{"self": language["self"]}],
                "locale": "en-US",
                "displayName": "biology on base",
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    assert_eq!(model["baseModel"]["self"], base_self.as_str());
    let location = model["self"].as_str().unwrap().to_owned();
    // Pulling two ~70 MB wheels and converting them can take a while on a cold cache.
    let model = a.wait(&location, Duration::from_secs(900)).await;
    eprintln!("training on whisper-base took {:?}", started.elapsed());
    assert_eq!(model["baseModel"]["self"], base_self.as_str());

    // Deploy and recognize with ?cid=.
    let resp = a
        .post(
            "/endpoints",
            json!({"model": {"self": location}, "locale": "en-US",
                   "displayName": "biology on base"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let cid = endpoint["self"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let query = format!("language=en-US&cid={cid}");
    let (mut words, mut errors) = (0usize, 0usize);
    for clip in biology().iter().take(CLIPS) {
        let wav = wav_bytes(&clip.path);
        let started = Instant::now();
        let body = loop {
            let (s, body) = a.recognize(&region.url, &query, wav.clone()).await;
            if s == 503 {
                // whisper-base still loading in this process: come back, as Retry-After says.
                assert!(started.elapsed() < Duration::from_secs(300), "{body}");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            assert_eq!(s, 200, "{body}");
            break body;
        };
        let text = body["DisplayText"].as_str().unwrap_or("");
        let stats = tandem_engines::text::word_errors(&clip.transcript, text);
        eprintln!(
            "{}: WER {:.2} in {:?}\n    ref {:?}\n    hyp {text:?}",
            clip.name,
            stats.wer(),
            started.elapsed(),
            clip.transcript
        );
        words += stats.reference_words;
        errors += stats.errors();
    }
    let wer = errors as f64 / words as f64;
    eprintln!("whisper-base endpoint: WER {wer:.3} over {words} words");
    assert!(wer <= 0.35, "the words are mostly wrong: WER {wer:.3}");
}
