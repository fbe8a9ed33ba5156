//! Helpers shared by the black-box tests: real `tandem serve` processes, real HTTP.
#![allow(dead_code, unused_imports)]

use std::path::Path;

pub use tandem_testkit::{biology, shared_data, RegionOptions, RegionProcess, ResourceKeys};

pub mod backup;
pub mod custom_speech;
pub mod custom_voice;

pub const BIN: &str = env!("CARGO_BIN_EXE_tandem");

pub async fn region(name: &str) -> RegionProcess {
    RegionProcess::start(Path::new(BIN), name, RegionOptions::default()).await
}

pub async fn region_with(name: &str, extra: &[&str]) -> RegionProcess {
    let opts = RegionOptions {
        extra_config: extra.iter().map(|s| s.to_string()).collect(),
        ..RegionOptions::default()
    };
    RegionProcess::start(Path::new(BIN), name, opts).await
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

pub const KEY: &str = "Ocp-Apim-Subscription-Key";

pub fn stt_url(base: &str, query: &str) -> String {
    format!("{base}/speech/recognition/conversation/cognitiveservices/v1?{query}")
}

pub fn wav_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts an Azure gateway error body: `{"error":{"code","message"}}`.
pub async fn assert_azure_error(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let v: serde_json::Value = resp.json().await.expect("error body is JSON");
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {v}"));
    assert!(v["error"]["code"].is_string(), "no error.code in {v}");
    assert!(!message.is_empty());
    message.to_owned()
}

/// A 16 kHz mono 16-bit WAV of `secs` seconds of silence.
pub fn silent_wav(secs: f64) -> Vec<u8> {
    let n = (secs * 16_000.0) as usize;
    let mut v = Vec::with_capacity(44 + 2 * n);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + 2 * n as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&16_000u32.to_le_bytes());
    v.extend_from_slice(&32_000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(2 * n as u32).to_le_bytes());
    v.resize(44 + 2 * n, 0);
    v
}

pub fn ssml(voice: &str, text: &str) -> String {
    format!("<speak version='1.0' xml:lang='en-US'><voice name='{voice}'>{text}</voice></speak>")
}

pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    tandem_engines::text::word_errors(reference, hypothesis).wer()
}
