//! Helpers of the Custom Speech black-box tests: a v3 API client for one region and key, the
//! v3 error check, and Acoustic zips of biology clips.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use zip::write::SimpleFileOptions;

use super::*;

/// Speech-to-text v3.2 calls to one region with one key.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(region: &RegionProcess, key: &str) -> Self {
        Self {
            http: http(),
            base: format!("{}/speechtotext/v3.2", region.url),
            key: key.to_owned(),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header(KEY, &self.key)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, url: &str) -> reqwest::Response {
        self.http
            .delete(url)
            .header(KEY, &self.key)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, rest: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{rest}", self.base))
            .header(KEY, &self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn upload(&self, kind: &str, name: &str, data: Vec<u8>) -> Value {
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

    /// Polls `url` until it is `Succeeded` (panics on `Failed` or after `limit`).
    pub async fn wait(&self, url: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let v: Value = self.get(url).await.json().await.unwrap();
            match v["status"].as_str().unwrap() {
                "Succeeded" => return v,
                "Failed" => panic!("failed: {v}"),
                _ => {}
            }
            assert!(started.elapsed() < limit, "{url} hangs: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Recognizes a WAV on the short-audio route; returns the status and the body.
    pub async fn recognize(&self, origin: &str, query: &str, wav: Vec<u8>) -> (u16, Value) {
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
pub async fn v3_error(resp: reqwest::Response, status: u16, inner: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let v: Value = resp.json().await.expect("error body is JSON");
    assert!(v["code"].is_string(), "no code in {v}");
    assert_eq!(v["innerError"]["code"], inner, "{v}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{v}");
    v
}

/// An Acoustic zip of the first `clips` biology clips and their `trans.txt` (CRLF, as Azure's
/// tools write it).
pub fn acoustic_zip(clips: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    let mut trans = String::new();
    for clip in biology().iter().take(clips) {
        w.start_file(clip.name.as_str(), opts).unwrap();
        w.write_all(&wav_bytes(&clip.path)).unwrap();
        trans.push_str(&format!("{}\t{}\r\n", clip.name, clip.transcript));
    }
    w.start_file("trans.txt", opts).unwrap();
    w.write_all(trans.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

/// A well-formed id that names nothing.
pub fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

/// Config lines that federate a region with `peer` at `url`, sharing the secret file `secret`.
pub fn peer_config(peer: &str, url: &str, secret: &Path) -> Vec<String> {
    vec![
        format!("peer_secret_file = \"{}\"", secret.display()),
        "[[peers]]".into(),
        format!("name = \"{peer}\""),
        format!("endpoint = \"{url}\""),
    ]
}

/// POSTs `body` as JSON to a full `url` with the API's key.
pub async fn post_to(api: &Api, url: &str, body: Value) -> reqwest::Response {
    api.http
        .post(url)
        .header(KEY, &api.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}
