//! `tandem demo`: a round trip through the Azure REST API of running regions.
//!
//! It gets an STS token with the key, synthesizes a sentence with SSML, sends the audio back to
//! short-audio recognition (optionally in another region, with that region's key), and prints
//! what was said and what was heard.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

/// Arguments of `tandem demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Region to synthesize in, e.g. http://127.0.0.1:5001.
    #[arg(long)]
    endpoint: String,
    /// That region's resource key.
    #[arg(long, env = "TANDEM_DEMO_KEY", hide_env_values = true)]
    key: String,
    /// Region to recognize in (default: the same one).
    #[arg(long)]
    recognize_endpoint: Option<String>,
    /// The recognizing region's key (default: --key).
    #[arg(long, env = "TANDEM_DEMO_RECOGNIZE_KEY", hide_env_values = true)]
    recognize_key: Option<String>,
    /// The sentence to speak.
    #[arg(long, default_value = "The quick brown fox jumps over the lazy dog.")]
    text: String,
    /// Voice short name (GET /cognitiveservices/voices/list).
    #[arg(long, default_value = "en-US-SltFlite")]
    voice: String,
    /// Also save the synthesized audio here.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

async fn token(http: &reqwest::Client, endpoint: &str, key: &str) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{endpoint}/sts/v1.0/issueToken"))
        .header("Ocp-Apim-Subscription-Key", key)
        .send()
        .await
        .with_context(|| format!("reaching {endpoint}"))?;
    if !resp.status().is_success() {
        bail!(
            "issueToken at {endpoint}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    Ok(resp.text().await?)
}

/// Runs the demo.
pub async fn run(a: DemoArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let ssml = format!(
        "<speak version='1.0' xml:lang='en-US'><voice name='{}'>{}</voice></speak>",
        xml_escape(&a.voice),
        xml_escape(&a.text)
    );
    let t0 = Instant::now();
    let tts_token = token(&http, &a.endpoint, &a.key).await?;
    let resp = http
        .post(format!("{}/cognitiveservices/v1", a.endpoint))
        .bearer_auth(&tts_token)
        .header("Content-Type", "application/ssml+xml")
        .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
        .header("User-Agent", "tandem-demo")
        .body(ssml)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "synthesis: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let wav = resp.bytes().await?;
    let tts_ms = t0.elapsed().as_millis();
    if let Some(path) = &a.output {
        std::fs::write(path, &wav).with_context(|| format!("writing {}", path.display()))?;
    }

    let stt_endpoint = a.recognize_endpoint.as_deref().unwrap_or(&a.endpoint);
    let stt_key = a.recognize_key.as_deref().unwrap_or(&a.key);
    let t1 = Instant::now();
    let stt_token = token(&http, stt_endpoint, stt_key).await?;
    let resp = http
        .post(format!(
            "{stt_endpoint}/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=detailed"
        ))
        .bearer_auth(&stt_token)
        .header("Content-Type", "audio/wav; codecs=audio/pcm; samplerate=16000")
        .header("Accept", "application/json")
        .body(wav.clone())
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("recognition answered non-JSON")?;
    if !status.is_success() {
        bail!("recognition: {status} {body}");
    }
    let stt_ms = t1.elapsed().as_millis();
    println!(
        "said  ({}, {voice}, {tts_ms} ms, {} bytes): {}",
        a.endpoint,
        wav.len(),
        a.text,
        voice = a.voice
    );
    println!(
        "heard ({stt_endpoint}, {stt_ms} ms): {}",
        body.get("DisplayText")
            .and_then(|v| v.as_str())
            .unwrap_or("<nothing>")
    );
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
