//! Custom Speech against Microsoft's guide times (issue #4), through a real region on loopback,
//! on the full biology set (50 recordings): upload of the Acoustic zip and the Language data
//! until `Succeeded`, model creation, an evaluation of base against custom (its WER on all 50
//! files and on the held-out half B), endpoint deployment, and the real-time factor of
//! short-audio recognition with `?cid=` against the base model.
//!
//! Half B is the split of `tandem-engines/tests/adapt_eval.rs`: the 50 files sorted by name,
//! odd positions (0-based).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tandem_engines::text::{word_errors, WerStats};
use tandem_testkit::{biology, shared_data, RegionOptions, RegionProcess};

use crate::stats::{median, save};

/// Microsoft's guide times (Custom Speech "Train a model" and related pages), in seconds.
const GUIDE_UPLOAD: f64 = 15.0 * 60.0;
const GUIDE_TRAINING: f64 = 6.0 * 3600.0;
const GUIDE_EVALUATION: f64 = 30.0 * 60.0;
const GUIDE_DEPLOYMENT: f64 = 10.0 * 60.0;

/// How often a `NotStarted`/`Running` entity is polled: every 10 ms at first, then every
/// 1/50 of the time waited so far (at most 1 s), so a step is timed within about 2 %.
pub(crate) fn poll_interval(waited: Duration) -> Duration {
    (waited / 50).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) origin: String,
    pub(crate) key: String,
}

impl Api {
    pub(crate) async fn get(&self, url: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(url)
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        ensure!(status.is_success(), "GET {url}: {status} {v}");
        Ok(v)
    }

    pub(crate) async fn post(&self, rest: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{rest}", self.base))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        ensure!(status.as_u16() == 201, "POST {rest}: {status} {v}");
        Ok(v)
    }

    async fn delete(&self, url: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .delete(url)
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .send()
            .await?;
        ensure!(r.status().as_u16() == 204, "DELETE {url}: {}", r.status());
        Ok(())
    }

    /// Polls `entity` (a created entity's JSON) until it is `Succeeded`.
    pub(crate) async fn wait(&self, entity: Value, limit: Duration) -> anyhow::Result<Value> {
        let started = Instant::now();
        let url = entity["self"].as_str().context("no self")?.to_owned();
        let mut v = entity;
        loop {
            match v["status"].as_str() {
                Some("Succeeded") => return Ok(v),
                Some("Failed") => anyhow::bail!("{url} failed: {v}"),
                _ => {}
            }
            ensure!(started.elapsed() < limit, "{url} hangs: {v}");
            tokio::time::sleep(poll_interval(started.elapsed())).await;
            v = self.get(&url).await?;
        }
    }

    /// Uploads a dataset and waits until it is `Succeeded`.
    pub(crate) async fn upload(&self, kind: &str, data: Vec<u8>) -> anyhow::Result<Value> {
        let form = reqwest::multipart::Form::new()
            .text("displayName", format!("bench {kind}"))
            .text("locale", "en-US")
            .text("kind", kind.to_owned())
            .part(
                "data",
                reqwest::multipart::Part::bytes(data).file_name("upload.bin"),
            );
        let r = self
            .http
            .post(format!("{}/datasets/upload", self.base))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .multipart(form)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        ensure!(status.as_u16() == 201, "upload {kind}: {status} {v}");
        self.wait(v, Duration::from_secs(600)).await
    }

    /// Short-audio recognition; returns the display text.
    async fn recognize(&self, query: &str, wav: Vec<u8>) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!(
                "{}/speech/recognition/conversation/cognitiveservices/v1?{query}",
                self.origin
            ))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .header(
                "Content-Type",
                "audio/wav; codecs=audio/pcm; samplerate=16000",
            )
            .body(wav)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        ensure!(status.is_success(), "recognize: {status} {v}");
        Ok(v["DisplayText"].as_str().unwrap_or_default().to_owned())
    }
}

pub(crate) fn id_of(entity: &Value) -> String {
    entity["self"]
        .as_str()
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// The Acoustic zip of the whole biology set: its 50 WAVs and `trans.txt` as shipped.
fn biology_zip(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for clip in biology() {
        w.start_file(clip.name.as_str(), opts)?;
        w.write_all(&std::fs::read(&clip.path)?)?;
    }
    w.start_file("trans.txt", opts)?;
    w.write_all(&std::fs::read(dir.join("trans.txt"))?)?;
    Ok(w.finish()?.into_inner())
}

/// All, half A and half B (sorted by name, even/odd positions) of per-file counts.
fn halves(mut per_file: Vec<(String, WerStats)>) -> [WerStats; 3] {
    per_file.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = [WerStats::default(); 3];
    for (i, (_, s)) in per_file.iter().enumerate() {
        out[0].add(s);
        out[1 + i % 2].add(s);
    }
    out
}

fn errors_of(v: &Value) -> WerStats {
    let get = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
    WerStats {
        substitutions: get("substitutions"),
        deletions: get("deletions"),
        insertions: get("insertions"),
        reference_words: get("wordCount"),
    }
}

fn pct(s: &WerStats) -> String {
    format!("{:.1} %", 100.0 * s.wer())
}

/// Formats seconds for a table: ms under a second.
fn dur(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else {
        format!("{secs:.1} s")
    }
}

/// Runs the Custom Speech benchmark; the fast steps are repeated `reps` times.
pub async fn run(bin: &Path, out: &Path, reps: usize, evals: usize) -> anyhow::Result<()> {
    let reps = reps.max(1);
    let evals = evals.max(1);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let dir = shared_data().join("custom-speech-biology");
    let zip = biology_zip(&dir)?;
    let language = std::fs::read(dir.join("language-data.txt"))?;
    let region = RegionProcess::start(bin, "benchus", RegionOptions::default()).await;
    let key = region.create_resource("bench").key1;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(900))
            .build()?,
        base: format!("{}/speechtotext/v3.2", region.url),
        origin: region.url.clone(),
        key,
    };
    let base_self = api.get(&format!("{}/models/base", api.base)).await?["values"][0]["self"]
        .as_str()
        .context("no base model")?
        .to_owned();

    // Uploads: the Acoustic zip, then the Language data, each until Succeeded.
    let (mut up_acoustic, mut up_language, mut up_both) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept = None;
    for i in 0..reps {
        let t = Instant::now();
        let acoustic = api.upload("Acoustic", zip.clone()).await?;
        let a = t.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let lang = api.upload("Language", language.clone()).await?;
        let l = t2.elapsed().as_secs_f64();
        up_acoustic.push(a);
        up_language.push(l);
        up_both.push(a + l);
        ensure!(
            acoustic["properties"]["acceptedLineCount"] == 50,
            "not all 50 utterances accepted: {acoustic}"
        );
        if kept.is_none() {
            kept = Some((acoustic, lang));
        } else {
            api.delete(acoustic["self"].as_str().unwrap_or_default())
                .await?;
            api.delete(lang["self"].as_str().unwrap_or_default())
                .await?;
        }
        eprint!("\rcustom-speech: upload {}/{reps}", i + 1);
    }
    eprintln!();
    let (acoustic, lang) = kept.context("no upload")?;
    let zip_mib = zip.len() as f64 / (1024.0 * 1024.0);

    // Model creation until Succeeded.
    let mut training = Vec::new();
    let mut model = None;
    for i in 0..reps {
        let t = Instant::now();
        let m = api
            .post(
                "/models",
                json!({"baseModel": {"self": base_self}, "datasets": [{"self": lang["self"]}],
                       "locale": "en-US", "displayName": "bench biology"}),
            )
            .await?;
        let m = api.wait(m, Duration::from_secs(1800)).await?;
        training.push(t.elapsed().as_secs_f64());
        if model.is_none() {
            model = Some(m);
        } else {
            api.delete(m["self"].as_str().unwrap_or_default()).await?;
        }
        eprint!("\rcustom-speech: model {}/{reps}", i + 1);
    }
    eprintln!();
    let model = model.context("no model")?;
    let model_self = model["self"].as_str().unwrap_or_default().to_owned();

    // Evaluation base (1) vs custom (2) on the 50 files until Succeeded.
    let mut evaluation = Vec::new();
    let mut last = None;
    for i in 0..evals {
        let t = Instant::now();
        let e = api
            .post(
                "/evaluations",
                json!({"model1": {"self": base_self}, "model2": {"self": model_self},
                       "dataset": {"self": acoustic["self"]}, "locale": "en-US",
                       "displayName": "bench base vs custom"}),
            )
            .await?;
        let e = api.wait(e, Duration::from_secs(3600)).await?;
        evaluation.push(t.elapsed().as_secs_f64());
        last = Some(e);
        eprintln!("custom-speech: evaluation {}/{evals}", i + 1);
    }
    let eval = last.context("no evaluation")?;
    let files = api
        .get(&format!(
            "{}/files",
            eval["self"].as_str().unwrap_or_default()
        ))
        .await?;
    let details = api
        .get(
            files["values"][0]["links"]["contentUrl"]
                .as_str()
                .context("no details file")?,
        )
        .await?;
    let entries = details["files"].as_array().context("no files")?;
    ensure!(entries.len() == 50, "{} files evaluated", entries.len());
    let per_file = |n: u8| -> Vec<(String, WerStats)> {
        entries
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_owned(),
                    errors_of(&e[format!("errors{n}")]),
                )
            })
            .collect()
    };
    let eval_base = halves(per_file(1));
    let eval_custom = halves(per_file(2));
    let p = &eval["properties"];
    for (n, h) in [(1, &eval_base), (2, &eval_custom)] {
        let wer = p[format!("wordErrorRate{n}")].as_f64().unwrap_or(f64::NAN);
        ensure!(
            (wer - h[0].wer()).abs() < 1e-9,
            "wordErrorRate{n} {wer} is not the per-file total {}",
            h[0].wer()
        );
    }

    // Endpoint deployment until Succeeded.
    let mut deployment = Vec::new();
    let mut endpoint = None;
    for i in 0..reps {
        let t = Instant::now();
        let e = api
            .post(
                "/endpoints",
                json!({"model": {"self": model_self}, "locale": "en-US",
                       "displayName": "bench endpoint"}),
            )
            .await?;
        let e = api.wait(e, Duration::from_secs(600)).await?;
        deployment.push(t.elapsed().as_secs_f64());
        if endpoint.is_none() {
            endpoint = Some(e);
        } else {
            api.delete(e["self"].as_str().unwrap_or_default()).await?;
        }
        eprint!("\rcustom-speech: endpoint {}/{reps}", i + 1);
    }
    eprintln!();
    let cid = id_of(&endpoint.context("no endpoint")?);

    // Recognition of the 50 files, base and `?cid=` interleaved.
    let mut audio_total = 0.0;
    let mut wall = [0.0f64; 2];
    let mut per_file_http: [Vec<(String, WerStats)>; 2] = [Vec::new(), Vec::new()];
    let mut texts_http: [Vec<(String, String)>; 2] = [Vec::new(), Vec::new()];
    let queries = [
        "language=en-US".to_owned(),
        format!("language=en-US&cid={cid}"),
    ];
    let clips = biology();
    for (i, clip) in clips.iter().enumerate() {
        let bytes = std::fs::read(&clip.path)?;
        let pcm = tandem_audio::resample(&tandem_audio::decode_wav(&bytes)?, 16_000);
        audio_total += pcm.duration_secs();
        // Alternate which goes first, so that warm caches favour neither.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let t = Instant::now();
            let text = api.recognize(&queries[k], bytes.clone()).await?;
            wall[k] += t.elapsed().as_secs_f64();
            per_file_http[k].push((clip.name.clone(), word_errors(&clip.transcript, &text)));
            texts_http[k].push((clip.name.clone(), text));
        }
        eprint!("\rcustom-speech: recognize {}/{}", i + 1, clips.len());
    }
    eprintln!();
    let [http_base, http_custom] = per_file_http.map(halves);
    // Files whose `/v1` text differs from the evaluation's hypothesis with the same model.
    let differing = |n: u8| -> Vec<Value> {
        texts_http[usize::from(n - 1)]
            .iter()
            .filter_map(|(name, text)| {
                let e = entries.iter().find(|e| e["name"] == name.as_str())?;
                let hyp = e[format!("hypothesis{n}")].as_str().unwrap_or_default();
                (hyp != text).then(|| json!({"name": name, "evaluation": hyp, "v1": text}))
            })
            .collect()
    };
    let differ = [differing(1), differing(2)];
    let rtf = [wall[0] / audio_total, wall[1] / audio_total];

    // Report.
    let row = |step: &str, xs: &[f64], guide: f64| {
        let m = median(xs);
        println!(
            "| {step} | {} | {} | {} | {:.1e} (1 / {:.0}) |",
            dur(m),
            xs.len(),
            dur(guide),
            m / guide,
            guide / m
        );
        json!({"step": step, "median_seconds": m, "runs": xs, "guide_seconds": guide,
               "ratio_to_guide": m / guide})
    };
    println!(
        "\n### Custom Speech against Microsoft's guide times: biology set, 50 recordings ({audio_total:.1} s of audio, {zip_mib:.1} MiB zip), {cores} cores\n"
    );
    println!("| step (until `Succeeded`) | Tandem, median | runs | Microsoft's guide | ratio |");
    println!("|---|---|---|---|---|");
    let steps = vec![
        row(
            "upload: Acoustic zip + Language data",
            &up_both,
            GUIDE_UPLOAD,
        ),
        row("model creation", &training, GUIDE_TRAINING),
        row(
            "evaluation, base vs custom (100 decodes)",
            &evaluation,
            GUIDE_EVALUATION,
        ),
        row("endpoint deployment", &deployment, GUIDE_DEPLOYMENT),
    ];
    println!(
        "\nUpload split: Acoustic zip median {}, Language data median {}.",
        dur(median(&up_acoustic)),
        dur(median(&up_language))
    );
    println!("\n| model | WER all 50 (evaluation) | WER half B, held out (evaluation) | WER all 50 (`/v1` short audio) | WER half B (`/v1`) | RTF, `/v1` short audio (Σ wall / Σ audio) |");
    println!("|---|---|---|---|---|---|");
    for (label, e, h, r) in [
        ("base (tiny.en)", &eval_base, &http_base, rtf[0]),
        ("custom (`?cid=`)", &eval_custom, &http_custom, rtf[1]),
    ] {
        println!(
            "| {label} | {} | {} | {} | {} | {r:.3} |",
            pct(&e[0]),
            pct(&e[2]),
            pct(&h[0]),
            pct(&h[2])
        );
    }
    println!(
        "\ncustom/base: WER all 50 {:.2}, half B {:.2}; RTF {:.2}. Files whose `/v1` text \
         differs from the evaluation's: base {}, custom {}.",
        eval_custom[0].wer() / eval_base[0].wer(),
        eval_custom[2].wer() / eval_base[2].wer(),
        rtf[1] / rtf[0],
        differ[0].len(),
        differ[1].len()
    );
    let wer_json = |h: &[WerStats; 3]| {
        json!({"all": h[0].wer(), "half_a": h[1].wer(), "half_b": h[2].wer(),
               "errors_all": h[0].errors(), "words_all": h[0].reference_words})
    };
    save(
        out,
        "custom_speech",
        &json!({
            "recordings": 50, "audio_seconds": audio_total, "zip_bytes": zip.len(),
            "cores": cores, "reps": reps, "steps": steps,
            "upload_acoustic_seconds": up_acoustic, "upload_language_seconds": up_language,
            "evaluation": {"base": wer_json(&eval_base), "custom": wer_json(&eval_custom),
                           "properties": p},
            "short_audio": {"base": wer_json(&http_base), "custom": wer_json(&http_custom),
                            "rtf_base": rtf[0], "rtf_custom": rtf[1],
                            "wall_seconds": wall,
                            "differs_from_evaluation": {"base": differ[0], "custom": differ[1]}},
        }),
    )
}
