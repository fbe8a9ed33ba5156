//! The custom voice tests' client of `/customvoice` and the fixtures they share: the consent
//! statement, the training script, and joe (the Piper voice playing the customer's) speaking
//! them in the test process.

use serde_json::Value;
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::Prosody;

use super::{http, stt_url, RegionProcess, KEY};

pub const V: &str = "api-version=2026-01-01";
// The consent statement and the training script are the drill's, which seeds the same voice.
pub use tandem_drill::seed::{consent_statement as statement, COMPANY, TALENT, TRAINING};

/// One resource's view of one region's `/customvoice` API.
pub struct Cv {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Cv {
    pub fn new(region: &RegionProcess, key: &str) -> Cv {
        Cv {
            http: http(),
            base: region.url.clone(),
            key: key.to_owned(),
        }
    }
    /// `/customvoice{rest}` with the api-version appended.
    pub fn url(&self, rest: &str) -> String {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{}/customvoice{rest}{sep}{V}", self.base)
    }
    pub async fn put(&self, rest: &str, body: Value) -> reqwest::Response {
        let req = self.http.put(self.url(rest)).header(KEY, &self.key);
        req.json(&body).send().await.unwrap()
    }
    pub async fn post(&self, rest: &str, body: Value) -> reqwest::Response {
        let req = self.http.post(self.url(rest)).header(KEY, &self.key);
        req.json(&body).send().await.unwrap()
    }
    pub async fn get(&self, rest: &str) -> reqwest::Response {
        let req = self.http.get(self.url(rest)).header(KEY, &self.key);
        req.send().await.unwrap()
    }
    pub async fn delete(&self, rest: &str) -> reqwest::Response {
        let req = self.http.delete(self.url(rest)).header(KEY, &self.key);
        req.send().await.unwrap()
    }
    pub async fn form(&self, rest: &str, form: reqwest::multipart::Form) -> reqwest::Response {
        let req = self.http.post(self.url(rest)).header(KEY, &self.key);
        req.multipart(form).send().await.unwrap()
    }
    /// Creates consent `id` in project `p1` from a recording.
    pub async fn consent(&self, id: &str, wav: Vec<u8>) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("voiceTalentName", TALENT)
            .text("companyName", COMPANY)
            .text("locale", "en-US")
            .text("projectId", "p1")
            .part(
                "audiodata",
                reqwest::multipart::Part::bytes(wav)
                    .file_name("consent.wav")
                    .mime_str("audio/wav")
                    .unwrap(),
            );
        self.form(&format!("/consents/{id}"), form).await
    }
    /// Uploads a voice (ONNX and its JSON config) into model `id`.
    pub async fn upload_model(
        &self,
        id: &str,
        onnx: Vec<u8>,
        config: Vec<u8>,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .part(
                "model",
                reqwest::multipart::Part::bytes(onnx).file_name("voice.onnx"),
            )
            .part(
                "config",
                reqwest::multipart::Part::bytes(config).file_name("voice.onnx.json"),
            );
        self.form(&format!("/models/{id}:upload"), form).await
    }
    /// SSML synthesis through `?deploymentId=`.
    pub async fn synthesize(
        &self,
        deployment: &str,
        ssml: String,
        format: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/cognitiveservices/v1?deploymentId={deployment}",
                self.base
            ))
            .header(KEY, &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", format)
            .body(ssml)
            .send()
            .await
            .unwrap()
    }
    /// What the region's STT hears in `wav`.
    pub async fn transcribe(&self, wav: Vec<u8>) -> String {
        let resp = self
            .http
            .post(stt_url(&self.base, "language=en-US"))
            .header(KEY, &self.key)
            .header("Content-Type", "audio/wav")
            .body(wav)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        v["DisplayText"].as_str().unwrap_or_default().to_owned()
    }
}

/// The body of `resp`, after asserting its status.
pub async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    let code = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(code, status, "{v}");
    v
}

/// A 4xx in Azure's data-plane shape with this code; its message.
pub async fn azure_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    let v = json_of(resp, status).await;
    assert_eq!(v["error"]["code"], code, "{v}");
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{v}");
    message
}

/// `text` spoken by `voice`, as a WAV.
pub fn wav(voice: &PiperVoice, text: &str) -> Vec<u8> {
    let pcm = voice.synthesize(text, &Prosody::default()).unwrap();
    tandem_audio::encode_wav_pcm16(&pcm)
}
