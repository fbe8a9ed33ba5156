//! Custom Speech models and endpoints (Speech-to-text v3.2) through a real region process:
//! the biology language data uploaded as a Language dataset, a model trained from it, an
//! endpoint deploying it, and short-audio recognition with `?cid=` beating the base model on
//! biology clips; then the refusals: a model in use (409), a deleted endpoint, another
//! resource's endpoint, and a model from acoustic data only (400).

mod common;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

/// The biology clips recognized with and without the endpoint.
const CLIPS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_endpoints_adapt_recognition() {
    let region = region("westus").await;
    let a_keys = region.create_resource("owner");
    let b_keys = region.create_resource("other");
    let a = Api::new(&region, &a_keys.key1);
    let b = Api::new(&region, &b_keys.key1);

    // The base model: the loaded tiny.en, adaptable with Language and Pronunciation data.
    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let base = bases["values"][0].clone();
    let base_self = base["self"].as_str().unwrap().to_owned();
    assert_eq!(base["displayName"], "whisper-tiny.en");
    assert_eq!(
        base["properties"]["features"]["supportsAdaptationsWith"],
        json!(["Language", "Pronunciation"])
    );
    assert_eq!(base["properties"]["features"]["supportsEndpoints"], true);
    let again: Value = a.get(&base_self).await.json().await.unwrap();
    assert_eq!(again["self"], base_self.as_str(), "a stable id");

    // Language data → model → Succeeded.
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
                "displayName": "biology",
                "description": "adapted to biology",
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let model: Value = resp.json().await.unwrap();
    assert_eq!(model["self"], location.as_str());
    assert!(
        matches!(model["status"].as_str(), Some("NotStarted" | "Running")),
        "{model}"
    );
    assert_eq!(model["baseModel"]["self"], base_self.as_str());
    let model = loop {
        let m: Value = a.get(&location).await.json().await.unwrap();
        match m["status"].as_str().unwrap() {
            "Succeeded" => break m,
            "Failed" => panic!("training failed: {m}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "training hangs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "training took {:?} (create to Succeeded)",
        started.elapsed()
    );
    assert_eq!(model["properties"]["features"]["supportsEndpoints"], true);
    let listed: Value = a
        .get(&format!("{}/models", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["values"].as_array().unwrap().len(), 1);

    // PATCH.
    let resp = a
        .http
        .patch(&location)
        .header(KEY, &a.key)
        .json(&json!({"displayName": "biology v2", "description": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["displayName"], "biology v2");
    assert_eq!(patched["description"], "renamed");

    // Endpoint: Succeeded within the request.
    let started = Instant::now();
    let resp = a
        .post(
            "/endpoints",
            json!({
                "model": {"self": location},
                "locale": "en-US",
                "displayName": "biology endpoint",
                "properties": {"loggingEnabled": false},
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    eprintln!("endpoint creation took {:?}", started.elapsed());
    let endpoint: Value = resp.json().await.unwrap();
    assert_eq!(endpoint["status"], "Succeeded");
    let endpoint_self = endpoint["self"].as_str().unwrap().to_owned();
    let cid = endpoint_self.rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        endpoint["links"]["restConversation"],
        format!(
            "{}/speech/recognition/conversation/cognitiveservices/v1?cid={cid}",
            region.url
        )
    );
    let got: Value = a.get(&endpoint_self).await.json().await.unwrap();
    assert_eq!(got["model"]["self"], location.as_str());

    // Recognition with and without the endpoint.
    let (mut base_errors, mut adapted_errors) = (0.0, 0.0);
    for clip in biology().iter().take(CLIPS) {
        let wav = wav_bytes(&clip.path);
        let (s, plain) = a
            .recognize(&region.url, "language=en-US", wav.clone())
            .await;
        assert_eq!(s, 200, "{plain}");
        let query = format!("language=en-US&cid={cid}");
        let (s, adapted) = a.recognize(&region.url, &query, wav).await;
        assert_eq!(s, 200, "{adapted}");
        let plain = plain["DisplayText"].as_str().unwrap_or("");
        let adapted = adapted["DisplayText"].as_str().unwrap_or("");
        let (wb, wa) = (wer(&clip.transcript, plain), wer(&clip.transcript, adapted));
        eprintln!(
            "{}: base {wb:.2} {plain:?}\n    adapted {wa:.2} {adapted:?}",
            clip.name
        );
        base_errors += wb;
        adapted_errors += wa;
    }
    eprintln!("summed WER: base {base_errors:.2}, adapted {adapted_errors:.2}");
    assert!(
        adapted_errors < base_errors,
        "adapted {adapted_errors:.2} is not below base {base_errors:.2}"
    );

    // Another resource can neither see nor use the endpoint.
    let clip = wav_bytes(&biology()[0].path);
    let query = format!("language=en-US&cid={cid}");
    let (s, body) = b.recognize(&region.url, &query, clip.clone()).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "InvalidEndpoint");
    assert_eq!(b.get(&endpoint_self).await.status().as_u16(), 404);

    // The model is in use: 409; the endpoint goes, then cid is refused and the model can go.
    v3_error(a.delete(&location).await, 409, "InUseViolation").await;
    assert_eq!(a.delete(&endpoint_self).await.status().as_u16(), 204);
    let (s, body) = a.recognize(&region.url, &query, clip.clone()).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "InvalidEndpoint");
    assert_eq!(a.delete(&location).await.status().as_u16(), 204);
    assert_eq!(a.get(&location).await.status().as_u16(), 404);

    // Refusals on create.
    let acoustic = a.upload("Acoustic", "one clip", acoustic_zip(1)).await;
    let v = v3_error(
        a.post(
            "/models",
            json!({"datasets": [{"self": acoustic["self"]}], "locale": "en-US",
                   "displayName": "acoustic"}),
        )
        .await,
        400,
        "InvalidDataset",
    )
    .await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("acoustic adaptation is not supported"),
        "{v}"
    );
    v3_error(
        b.post(
            "/models",
            json!({"datasets": [{"self": language["self"]}], "locale": "en-US",
                   "displayName": "not mine"}),
        )
        .await,
        400,
        "InvalidDataset",
    )
    .await;
    v3_error(
        a.post(
            "/models",
            json!({"baseModel": {"self": format!("{}/models/base/{}", a.base, uuid_like())},
                   "datasets": [{"self": language["self"]}], "locale": "en-US",
                   "displayName": "bad base"}),
        )
        .await,
        400,
        "InvalidBaseModel",
    )
    .await;
    v3_error(
        a.post(
            "/endpoints",
            json!({"model": {"self": location}, "locale": "en-US", "displayName": "gone"}),
        )
        .await,
        400,
        "InvalidModel",
    )
    .await;
}
