//! Text-to-speech: real-time factor through HTTP against the engine alone.

use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tandem_engines::ssml::{parse, SsmlLimits};
use tandem_engines::tts::{render, TtsEngine};
use tandem_testkit::{RegionOptions, RegionProcess, HARVARD_SENTENCES};

use crate::stats::{median, save};

const VOICES: &[&str] = &["en-US-SltFlite", "en-US-RmsFlite", "de-DE-Espeak"];

/// Runs the TTS benchmark.
pub async fn run(bin: &Path, out: &Path, reps: usize) -> anyhow::Result<()> {
    let engine = TtsEngine::new()?;
    let region = RegionProcess::start(bin, "benchus", RegionOptions::default()).await;
    let key = region.create_resource("bench").key1;
    let http = reqwest::Client::new();
    let url = format!("{}/cognitiveservices/v1", region.url);
    let format = tandem_audio::OutputFormat::parse("riff-16khz-16bit-mono-pcm")?;

    println!("\n### Text-to-speech: HTTP path against the engine alone (10 Harvard sentences × {reps}, riff-16khz-16bit-mono-pcm)\n");
    println!("| voice | engine alone, median RTF | HTTP, median RTF | ratio (goal ≤ 1.1×) |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for voice in VOICES {
        let (mut alone, mut via_http) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            for text in HARVARD_SENTENCES {
                let ssml = format!("<speak version='1.0' xml:lang='en-US'><voice name='{voice}'>{text}</voice></speak>");
                // Engine alone: parse, render and encode, exactly what the handler does.
                let t = Instant::now();
                let doc = parse(&ssml, &SsmlLimits::default())?;
                let pcm = render(&doc, &engine)?;
                let wav = format.encode(&pcm);
                let s = t.elapsed().as_secs_f64();
                let audio = pcm.duration_secs();
                alone.push(s / audio);
                // The same through HTTP.
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .header("Ocp-Apim-Subscription-Key", &key)
                    .header("Content-Type", "application/ssml+xml")
                    .header("X-Microsoft-OutputFormat", format.name())
                    .body(ssml)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
                let body = resp.bytes().await?;
                via_http.push(t.elapsed().as_secs_f64() / audio);
                anyhow::ensure!(
                    body.len().abs_diff(wav.len()) < wav.len() / 5,
                    "HTTP audio length differs"
                );
            }
        }
        let ratio = median(&via_http) / median(&alone);
        println!(
            "| {voice} | {:.4} | {:.4} | {ratio:.2}× |",
            median(&alone),
            median(&via_http)
        );
        rows.push(json!({"voice": voice, "engine_median_rtf": median(&alone), "http_median_rtf": median(&via_http), "ratio": ratio}));
    }
    save(
        out,
        "tts",
        &json!({ "reps": reps, "sentences": HARVARD_SENTENCES.len(), "voices": rows }),
    )
}
