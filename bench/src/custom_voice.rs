//! Custom voice (issue #8): deployment time beside the guide's "usually 3 minutes", and the
//! synthesis real-time factor of `?deploymentId=` against the same Piper voice run in-process
//! ("Piper alone", goal ≤ 1.1×), and the voice model's copy to another region (its ONNX,
//! config, consent recording and training audio) against a raw HTTP transfer of the same bytes
//! on the same loopback, interleaved in the same run. The customer's voice is the pinned Piper
//! voice `joe`; its consent and training audio are spoken by joe itself, so the consent check
//! passes.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tandem_engines::models::{ModelCache, PIPER_JOE, PIPER_JOE_CONFIG};
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::Prosody;
use tandem_testkit::{RegionOptions, RegionProcess, HARVARD_SENTENCES};

use crate::stats::{median, save};

const V: &str = "api-version=2026-01-01";
const STATEMENT: &str = "I Joe am aware that recordings of my voice will be used by Contoso to \
                         create and use a synthetic version of my voice.";

struct Cv {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Cv {
    fn url(&self, rest: &str) -> String {
        format!("{}/customvoice{rest}?{V}", self.base)
    }
    async fn put(&self, rest: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .put(self.url(rest))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "PUT {rest}: {}", r.text().await?);
        Ok(r.json().await?)
    }
    async fn form(&self, rest: &str, form: Form) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(self.url(rest))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .multipart(form)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "POST {rest}: {}", r.text().await?);
        Ok(r.json().await?)
    }
    async fn delete(&self, rest: &str) -> anyhow::Result<()> {
        self.http
            .delete(self.url(rest))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .send()
            .await?;
        Ok(())
    }
}

fn wav(voice: &PiperVoice, text: &str) -> anyhow::Result<Vec<u8>> {
    Ok(tandem_audio::encode_wav_pcm16(
        &voice.synthesize(text, &Prosody::default())?,
    ))
}

/// Runs the benchmark: `reps` deployments of each kind, each Harvard sentence `reps` times.
pub async fn run(bin: &Path, out: &Path, reps: usize) -> anyhow::Result<()> {
    let cache = ModelCache::new(tandem_core::default_model_dir());
    let (onnx_path, json_path) = (
        cache.model_path(PIPER_JOE)?,
        cache.model_path(PIPER_JOE_CONFIG)?,
    );
    let joe = PiperVoice::load(&onnx_path, &json_path)?;
    // Two federated regions: benchus (the voice's home) copies to benchdr.
    let secret = tempfile::tempdir()?;
    let secret_file = secret.path().join("peer.secret");
    std::fs::write(&secret_file, "b3nch-custom-voice-copy-0123456789abcdef\n")?;
    let peer = |name: &str, url: &str| RegionOptions {
        extra_config: vec![
            format!("peer_secret_file = \"{}\"", secret_file.display()),
            "[[peers]]".into(),
            format!("name = \"{name}\""),
            format!("endpoint = \"{url}\""),
        ],
        ..RegionOptions::default()
    };
    // benchdr first, so benchus can name it; benchdr never calls benchus during a copy.
    let dr = RegionProcess::start(bin, "benchdr", peer("benchus", "http://127.0.0.1:9")).await;
    let mut region = RegionProcess::start(bin, "benchus", peer("benchdr", &dr.url)).await;
    let key = region.create_resource("bench").key1;
    let cv = Cv {
        http: reqwest::Client::new(),
        base: region.url.clone(),
        key: key.clone(),
    };
    cv.put(
        "/projects/p",
        json!({"description": "joe", "kind": "ProfessionalVoice"}),
    )
    .await?;
    let consent_wav = wav(&joe, STATEMENT)?;
    let mut carried = consent_wav.len();
    let consent = Form::new()
        .text("voiceTalentName", "Joe")
        .text("companyName", "Contoso")
        .text("locale", "en-US")
        .text("projectId", "p")
        .part(
            "audiodata",
            Part::bytes(consent_wav)
                .file_name("c.wav")
                .mime_str("audio/wav")?,
        );
    cv.form("/consents/c", consent).await?;
    cv.put(
        "/trainingsets/t",
        json!({"description": "joe", "locale": "en-US", "projectId": "p"}),
    )
    .await?;
    let mut script = String::new();
    let mut form = Form::new();
    for (i, text) in HARVARD_SENTENCES.iter().take(5).enumerate() {
        script.push_str(&format!("{i:04}\t{text}\n"));
        let w = wav(&joe, text)?;
        carried += w.len();
        form = form.part("audiodata", Part::bytes(w).file_name(format!("{i:04}.wav")));
    }
    form = form.part(
        "script",
        Part::bytes(script.into_bytes()).file_name("script.txt"),
    );
    cv.form("/trainingsets/t:upload", form).await?;
    cv.put(
        "/models/m",
        json!({"voiceName": "JoeNeural", "projectId": "p", "consentId": "c",
               "trainingSetId": "t", "locale": "en-US", "recipe": {"kind": "Default"}}),
    )
    .await?;
    let model = Form::new()
        .part(
            "model",
            Part::bytes(std::fs::read(&onnx_path)?).file_name("joe.onnx"),
        )
        .part(
            "config",
            Part::bytes(std::fs::read(&json_path)?).file_name("joe.onnx.json"),
        );
    let t = Instant::now();
    cv.form("/models/m:upload", model).await?;
    let import_s = t.elapsed().as_secs_f64();

    // Deployment: warm (the voice is in the node's cache since the upload) and cold (the node
    // restarted: the endpoint loads the voice from the blob store).
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for i in 0..reps {
        let t = Instant::now();
        cv.put(
            &format!("/endpoints/w{i}"),
            json!({"projectId": "p", "modelId": "m"}),
        )
        .await?;
        warm.push(t.elapsed().as_secs_f64());
        cv.delete(&format!("/endpoints/w{i}")).await?;
    }
    for i in 0..reps {
        region.restart().await;
        let cv2 = Cv {
            http: reqwest::Client::new(),
            base: region.url.clone(),
            key: key.clone(),
        };
        let t = Instant::now();
        cv2.put(
            &format!("/endpoints/c{i}"),
            json!({"projectId": "p", "modelId": "m"}),
        )
        .await?;
        cold.push(t.elapsed().as_secs_f64());
        if i + 1 < reps {
            cv2.delete(&format!("/endpoints/c{i}")).await?;
        }
    }
    let deployment = format!("c{}", reps - 1);

    // Synthesis RTF: Piper in-process against `?deploymentId=` over HTTP.
    let (mut alone, mut http) = (Vec::new(), Vec::new());
    // joe's own rate: the comparison is synthesis and the HTTP path, not resampling.
    let format = tandem_audio::OutputFormat::parse("riff-22050hz-16bit-mono-pcm")?;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/cognitiveservices/v1?deploymentId={deployment}",
        region.url
    );
    for _ in 0..reps {
        for text in HARVARD_SENTENCES {
            let t = Instant::now();
            let pcm = joe.synthesize(text, &Prosody::default())?;
            let bytes = format.encode(&pcm);
            let audio = pcm.duration_secs();
            alone.push(t.elapsed().as_secs_f64() / audio);
            anyhow::ensure!(!bytes.is_empty());
            let ssml = format!(
                "<speak version='1.0' xml:lang='en-US'><voice name='JoeNeural'>{text}</voice></speak>"
            );
            let t = Instant::now();
            let r = client
                .post(&url)
                .header("Ocp-Apim-Subscription-Key", &key)
                .header("Content-Type", "application/ssml+xml")
                .header("X-Microsoft-OutputFormat", format.name())
                .body(ssml)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "synthesis: HTTP {}", r.status());
            r.bytes().await?;
            http.push(t.elapsed().as_secs_f64() / audio);
        }
    }
    let copy = measure_copy(&region, &dr, &key, &onnx_path, &json_path, carried, reps).await?;
    let (w, c, a, h) = (median(&warm), median(&cold), median(&alone), median(&http));
    println!("\n### Custom voice (joe, Piper ONNX): {reps} deployments of each kind, 10 Harvard sentences × {reps}\n");
    println!("| step | Tandem (median) | Microsoft's guide / anchor | ratio |");
    println!("|---|---|---|---|");
    println!("| import (upload 63 MB, validate, consent check) | {import_s:.2} s | | |");
    println!(
        "| deployment, voice cached on the node | {:.1} ms | usually 3 min | {:.5}× |",
        w * 1e3,
        w / 180.0
    );
    println!(
        "| deployment after a restart (loads the voice) | {:.0} ms | usually 3 min | {:.4}× |",
        c * 1e3,
        c / 180.0
    );
    println!(
        "| synthesis RTF, `?deploymentId=` over HTTP | {h:.4} | Piper alone (in-process): {a:.4} | {:.2}× (goal ≤ 1.1×) |",
        h / a
    );
    let (raw, durable, copied, deploy) = (
        median(&copy.raw),
        median(&copy.durable),
        median(&copy.copy),
        median(&copy.deploy),
    );
    println!(
        "\n### Voice model copy benchus → benchdr ({:.1} MB: ONNX, config, consent, 5 utterances), {reps} copies\n",
        copy.bytes as f64 / 1e6
    );
    println!("| step | median | anchor | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| raw HTTP POST of the same bytes (one body, read and dropped) | {:.1} ms | | |",
        raw * 1e3
    );
    println!(
        "| raw HTTP POST into an fsync'd file | {:.1} ms | | |",
        durable * 1e3
    );
    println!(
        "| `:copyto` → operation `Succeeded` (includes the target's test synthesis) | {:.0} ms | raw / fsync'd | {:.1}× / {:.1}× |",
        copied * 1e3,
        copied / raw,
        copied / durable
    );
    println!(
        "| of which the target's test synthesis (from the copy's `validation`) | {:.0} ms | | |",
        median(&copy.synth) * 1e3
    );
    println!(
        "| deployment of the copy in benchdr (loads the voice) | {:.0} ms | usually 3 min | {:.4}× |",
        deploy * 1e3,
        deploy / 180.0
    );
    save(
        out,
        "custom_voice",
        &json!({"reps": reps, "import_s": import_s, "deploy_warm_s": warm, "deploy_cold_s": cold,
                "rtf_alone_median": a, "rtf_http_median": h, "format": format.name(),
                "copy": {"bytes": copy.bytes, "raw_http_s": copy.raw, "raw_http_fsync_s": copy.durable,
                         "copyto_succeeded_s": copy.copy, "target_test_synthesis_s": copy.synth,
                         "deploy_copy_s": copy.deploy,
                         "medians_s": {"raw": raw, "raw_fsync": durable, "copy": copied, "deploy": deploy}}}),
    )
}

/// The copy's figures, seconds per repetition.
struct CopyRuns {
    bytes: usize,
    raw: Vec<f64>,
    durable: Vec<f64>,
    copy: Vec<f64>,
    /// The target's test synthesis within the copy (from the copied model's validation).
    synth: Vec<f64>,
    deploy: Vec<f64>,
}

/// `reps` copies of model `m` of `src` into a fresh resource of `dr` each (so that every copy
/// moves every byte), each after the two anchors: the same number of bytes in one HTTP POST to
/// a loopback sink that drops them, and to one that writes them to a file and fsyncs it.
async fn measure_copy(
    src: &RegionProcess,
    dr: &RegionProcess,
    key: &str,
    onnx: &Path,
    config: &Path,
    audio_bytes: usize,
    reps: usize,
) -> anyhow::Result<CopyRuns> {
    let bytes = std::fs::metadata(onnx)?.len() as usize
        + std::fs::metadata(config)?.len() as usize
        + audio_bytes;
    let body = bytes::Bytes::from(vec![0x5au8; bytes]);
    let sink_dir = tempfile::tempdir_in(dr.data_dir())?;
    let (sink, durable_sink) = (
        crate::copy::sink(None).await?,
        crate::copy::sink(Some(sink_dir.path().to_owned())).await?,
    );
    let http = reqwest::Client::new();
    let mut runs = CopyRuns {
        bytes,
        raw: Vec::new(),
        durable: Vec::new(),
        copy: Vec::new(),
        synth: Vec::new(),
        deploy: Vec::new(),
    };
    for i in 0..reps {
        for (url, out) in [(&sink, &mut runs.raw), (&durable_sink, &mut runs.durable)] {
            let t = Instant::now();
            let r = http.post(url).body(body.clone()).send().await?;
            anyhow::ensure!(r.status().as_u16() == 204, "sink: {}", r.status());
            out.push(t.elapsed().as_secs_f64());
        }
        let target = dr.create_resource(&format!("dr{i}")).key1;
        let t = Instant::now();
        let r = http
            .post(format!("{}/customvoice/models/m:copyto?{V}", src.url))
            .header("Ocp-Apim-Subscription-Key", key)
            .json(&json!({"targetSubscriptionKey": target, "targetRegion": "benchdr"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 202, "copyto: {}", r.text().await?);
        let op = r
            .headers()
            .get("operation-location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no Operation-Location"))?;
        loop {
            let v: Value = http
                .get(&op)
                .header("Ocp-Apim-Subscription-Key", key)
                .send()
                .await?
                .json()
                .await?;
            match v["status"].as_str() {
                Some("Succeeded") => break,
                Some("Failed") => anyhow::bail!("the copy failed: {v}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "the copy hangs");
        }
        runs.copy.push(t.elapsed().as_secs_f64());
        let cv = Cv {
            http: http.clone(),
            base: dr.url.clone(),
            key: target,
        };
        let m: Value = http
            .get(cv.url("/models/m"))
            .header("Ocp-Apim-Subscription-Key", &cv.key)
            .send()
            .await?
            .json()
            .await?;
        let v = &m["properties"]["validation"];
        runs.synth.push(
            v["durationInSeconds"].as_f64().unwrap_or(0.0)
                * v["realTimeFactor"].as_f64().unwrap_or(0.0),
        );
        let t = Instant::now();
        cv.put(
            &format!("/endpoints/dr{i}"),
            json!({"projectId": "p", "modelId": "m"}),
        )
        .await?;
        runs.deploy.push(t.elapsed().as_secs_f64());
    }
    Ok(runs)
}
