//! The latency the HTTP path adds to a tiny request.

use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tandem_engines::ssml::{parse, SsmlLimits};
use tandem_engines::tts::{render, TtsEngine};
use tandem_testkit::{RegionOptions, RegionProcess};

use crate::stats::{median, percentile, save};

/// Runs the HTTP overhead benchmark.
pub async fn run(bin: &Path, out: &Path, n: usize) -> anyhow::Result<()> {
    let engine = TtsEngine::new()?;
    let region = RegionProcess::start(bin, "benchus", RegionOptions::default()).await;
    let key = region.create_resource("bench").key1;
    let http = reqwest::Client::new();
    let ssml =
        "<speak version='1.0' xml:lang='en-US'><voice name='en-US-Kal16Flite'>Hi.</voice></speak>";
    let format = tandem_audio::OutputFormat::parse("riff-16khz-16bit-mono-pcm")?;

    let (mut alone, mut via_http, mut token, mut health) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let pcm = render(&parse(ssml, &SsmlLimits::default())?, &engine)?;
        let _ = format.encode(&pcm);
        alone.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        let r = http
            .post(format!("{}/cognitiveservices/v1", region.url))
            .header("Ocp-Apim-Subscription-Key", &key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", format.name())
            .body(ssml)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success());
        r.bytes().await?;
        via_http.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        let r = http
            .post(format!("{}/sts/v1.0/issueToken", region.url))
            .header("Ocp-Apim-Subscription-Key", &key)
            .send()
            .await?;
        r.text().await?;
        token.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        http.get(format!("{}/healthz", region.url))
            .send()
            .await?
            .bytes()
            .await?;
        health.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let added = median(&via_http) - median(&alone);
    println!(
        "\n### HTTP path overhead on a tiny request ({n} requests each, loopback, keep-alive)\n"
    );
    println!("| request | median ms | p90 ms |");
    println!("|---|---|---|");
    println!(
        "| TTS \"Hi.\" (kal16), engine alone | {:.3} | {:.3} |",
        median(&alone),
        percentile(&alone, 90.0)
    );
    println!(
        "| TTS \"Hi.\" (kal16), through HTTP with key auth | {:.3} | {:.3} |",
        median(&via_http),
        percentile(&via_http, 90.0)
    );
    println!(
        "| `POST /sts/v1.0/issueToken` | {:.3} | {:.3} |",
        median(&token),
        percentile(&token, 90.0)
    );
    println!(
        "| `GET /healthz` | {:.3} | {:.3} |",
        median(&health),
        percentile(&health, 90.0)
    );
    println!(
        "\nAdded latency of the HTTP path (median HTTP − median engine alone): {added:.3} ms."
    );
    save(
        out,
        "http",
        &json!({
            "n": n,
            "tts_engine_alone_ms": {"median": median(&alone), "p90": percentile(&alone, 90.0)},
            "tts_http_ms": {"median": median(&via_http), "p90": percentile(&via_http, 90.0)},
            "issue_token_ms": {"median": median(&token), "p90": percentile(&token, 90.0)},
            "healthz_ms": {"median": median(&health), "p90": percentile(&health, 90.0)},
            "added_ms": added,
        }),
    )
}
