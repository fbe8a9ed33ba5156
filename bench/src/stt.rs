//! Speech-to-text: WER and real-time factor on the 50 biology recordings.

use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tandem_engines::models::{ModelCache, WHISPER_TINY_EN};
use tandem_engines::stt::WhisperRecognizer;
use tandem_engines::text::{word_errors, WerStats};
use tandem_engines::{RecognizeOptions, Recognizer};
use tandem_testkit::{biology, RegionOptions, RegionProcess};

use crate::stats::{median, save};

struct Run {
    name: &'static str,
    wer: WerStats,
    rtf: Vec<f64>,
    secs: f64,
}

impl Run {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            wer: WerStats::default(),
            rtf: Vec::new(),
            secs: 0.0,
        }
    }
}

/// Runs the STT benchmark.
pub async fn run(
    bin: &Path,
    out: &Path,
    model_dir: &Path,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let model = ModelCache::new(model_dir).whisper_model_path(WHISPER_TINY_EN)?;
    let engine = WhisperRecognizer::load(&model, cores)?;
    let region = RegionProcess::start(bin, "benchus", RegionOptions::default()).await;
    let key = region.create_resource("bench").key1;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/speech/recognition/conversation/cognitiveservices/v1?language=en-US",
        region.url
    );

    let clips: Vec<_> = biology()
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let mut runs = [
        Run::new("engine, audio_ctx 768"),
        Run::new("engine, full 30 s window"),
        Run::new("HTTP (tandem serve)"),
    ];
    let mut audio_total = 0.0;
    let mut added_ms = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        let bytes = std::fs::read(&clip.path)?;
        let pcm = tandem_audio::resample(&tandem_audio::decode_wav(&bytes)?, 16_000);
        let audio = pcm.duration_secs();
        audio_total += audio;
        let mut engine_secs = 0.0;
        for (run, ctx) in runs[..2].iter_mut().zip([768u32, 0]) {
            let opts = RecognizeOptions {
                language: "en-US".into(),
                audio_ctx: ctx,
            };
            let t = Instant::now();
            let r = engine.recognize(&pcm.samples, &opts)?;
            let s = t.elapsed().as_secs_f64();
            if ctx == 768 {
                engine_secs = s;
            }
            run.secs += s;
            run.rtf.push(s / audio);
            run.wer.add(&word_errors(&clip.transcript, &r.text));
        }
        let t = Instant::now();
        let resp = http
            .post(&url)
            .header("Ocp-Apim-Subscription-Key", &key)
            .header(
                "Content-Type",
                "audio/wav; codecs=audio/pcm; samplerate=16000",
            )
            .body(bytes)
            .send()
            .await?;
        let v: serde_json::Value = resp.json().await?;
        let s = t.elapsed().as_secs_f64();
        let text = v["DisplayText"].as_str().unwrap_or_default();
        runs[2].secs += s;
        runs[2].rtf.push(s / audio);
        runs[2].wer.add(&word_errors(&clip.transcript, text));
        added_ms.push((s - engine_secs) * 1e3);
        eprint!("\rstt {}/{}", i + 1, clips.len());
    }
    eprintln!();

    println!("\n### Speech-to-text: Whisper tiny.en on custom-speech-biology ({} recordings, {audio_total:.1} s of audio, {cores} cores)\n", clips.len());
    println!("| path | WER | median RTF | total RTF (Σ compute / Σ audio) |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for r in &runs {
        println!(
            "| {} | {:.1} % ({} errors / {} words) | {:.3} | {:.3} |",
            r.name,
            r.wer.wer() * 100.0,
            r.wer.errors(),
            r.wer.reference_words,
            median(&r.rtf),
            r.secs / audio_total
        );
        rows.push(json!({
            "path": r.name, "wer": r.wer.wer(), "errors": r.wer.errors(),
            "reference_words": r.wer.reference_words, "median_rtf": median(&r.rtf),
            "total_rtf": r.secs / audio_total,
        }));
    }
    let http_vs_engine = median(&runs[2].rtf) / median(&runs[0].rtf);
    println!(
        "\nHTTP path vs engine alone (same audio_ctx): median RTF ratio {http_vs_engine:.3}, median added latency {:.1} ms per request.",
        median(&added_ms)
    );
    save(
        out,
        "stt",
        &json!({
            "recordings": clips.len(), "audio_seconds": audio_total, "cores": cores,
            "runs": rows, "http_vs_engine_median_rtf_ratio": http_vs_engine,
            "median_added_ms": median(&added_ms),
        }),
    )
}
