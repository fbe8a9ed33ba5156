//! Custom Speech models and endpoints (Speech-to-text v3.2) through a real region process:
//! the biology language data uploaded as a Language dataset, a model trained from it, an
//! endpoint deploying it, and short-audio recognition with `?cid=` beating the base model on
//! biology clips; then the refusals: a model in use (409), a deleted endpoint, another
//! resource's endpoint, and a model from acoustic data only (400).

mod common;
use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

/// The biology clips recognized with and without the endpoint.
const CLIPS: usize = 5;

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(region: &RegionProcess, key: &str) -> Self {
        Self {
            http: http(),
            base: format!("{}/speechtotext/v3.2", region.url),
            key: key.to_owned(),
        }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header(KEY, &self.key)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, url: &str) -> reqwest::Response {
        self.http
            .delete(url)
            .header(KEY, &self.key)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, rest: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{rest}", self.base))
            .header(KEY, &self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn upload(&self, kind: &str, name: &str, data: Vec<u8>) -> Value {
        let form = reqwest::multipart::Form::new()
            .text("displayName", name.to_owned())
            .text("locale", "en-US")
            .text("kind", kind.to_owned())
            .part(
                "data",
                reqwest::multipart::Part::bytes(data).file_name("upload.bin"),
            );
        let resp = self
            .http
            .post(format!("{}/datasets/upload", self.base))
            .header(KEY, &self.key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "Succeeded", "{v}");
        v
    }

    /// Recognizes a WAV on the short-audio route; returns the status and the body.
    async fn recognize(&self, origin: &str, query: &str, wav: Vec<u8>) -> (u16, Value) {
        let resp = self
            .http
            .post(stt_url(origin, query))
            .header(KEY, &self.key)
            .header(
                "Content-Type",
                "audio/wav; codecs=audio/pcm; samplerate=16000",
            )
            .body(wav)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

/// Asserts a v3 error with the given status and `innerError.code`.
async fn v3_error(resp: reqwest::Response, status: u16, inner: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let v: Value = resp.json().await.expect("error body is JSON");
    assert!(v["code"].is_string(), "no code in {v}");
    assert_eq!(v["innerError"]["code"], inner, "{v}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{v}");
    v
}

/// A small Acoustic zip: one biology clip and its transcript.
fn acoustic_zip() -> Vec<u8> {
    let clip = &biology()[0];
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    w.start_file(clip.name.as_str(), opts).unwrap();
    w.write_all(&wav_bytes(&clip.path)).unwrap();
    w.start_file("trans.txt", opts).unwrap();
    w.write_all(format!("{}\t{}\r\n", clip.name, clip.transcript).as_bytes())
        .unwrap();
    w.finish().unwrap().into_inner()
}

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
    let acoustic = a.upload("Acoustic", "one clip", acoustic_zip()).await;
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

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}
