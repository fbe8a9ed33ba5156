//! Models_CopyTo between two regions on loopback (issue #6), for two artifacts: the biology
//! model (trained in `westus` from its language data), and a model of at least `large_mb` MB
//! trained from a synthetic corpus (see [`corpus`]). Each is copied to `eastus` through v3.2
//! (`:authorizecopy` on the target, `:copy` on the source, the operation polled until
//! `Succeeded`) and through v3.1 (`:copyto`, synchronous), against the anchor of the same run:
//! the same artifact bytes POSTed once over HTTP on the same loopback to a sink that only reads
//! them. Then an endpoint for the copy in the target. Medians of `reps` copies (each v3.2 copy
//! has its own authorization, so each makes a new model).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use tandem_testkit::{shared_data, RegionOptions, RegionProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::custom_speech::{id_of, Api};
use crate::stats::{median, save};

/// Azure's guide: a copy, and an endpoint deployment, take up to 10 minutes each.
const GUIDE: &str = "10 min";

/// Polls a copy operation every 2 ms until it ends; its final JSON.
async fn wait_op(api: &Api, url: &str) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let v = api.get(url).await?;
        match v["status"].as_str() {
            Some("Succeeded") => return Ok(v),
            Some("Failed") => anyhow::bail!("copy failed: {v}"),
            _ => {}
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "copy hangs: {v}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A loopback HTTP sink: reads each request's body and answers 204. Its URL. With `dir`, the
/// durable anchor: each body is written to a file there and fsync'd before the answer, as a
/// copy's target must do before it acknowledges.
pub(crate) async fn sink(dir: Option<std::path::PathBuf>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 20];
                let mut head = Vec::new();
                loop {
                    // Headers, up to the blank line.
                    let end = loop {
                        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    };
                    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut file = match &dir {
                        Some(d) => match tokio::fs::File::create(d.join("body")).await {
                            Ok(f) => Some(f),
                            Err(_) => return,
                        },
                        None => None,
                    };
                    let mut have = head.len() - end;
                    if let Some(f) = file.as_mut() {
                        if f.write_all(&head[end..]).await.is_err() {
                            return;
                        }
                    }
                    while have < length {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                have += n;
                                if let Some(f) = file.as_mut() {
                                    if f.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                    if let Some(f) = file.as_mut() {
                        if f.sync_all().await.is_err() {
                            return;
                        }
                    }
                    head.clear();
                    let reply = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// The synthetic corpus behind the large artifact. A copy moves bytes: what it measures is
/// the artifact's size, not what the model knows, and no real text of that size ships with
/// the repository. So the corpus is made of pseudo-random sentences (seeded, the same on every
/// run) over the vocabulary of the biology language data. Uniformly drawn words make almost
/// every 3- and 4-gram new, so the artifact (Kneser-Ney counts over BPE tokens, 20 bytes per
/// 4-gram entry) grows with the corpus: 16.7 MB of text give a 114 MB artifact.
pub(crate) mod corpus {
    /// Artifact bytes per corpus byte, less a margin: measured 12.8 for 0.9 MB of text, 7.7
    /// for 9.1 MB, 6.8 for 16.7 MB (the shorter n-grams repeat more as the corpus grows).
    const ARTIFACT_PER_TEXT_BYTE: f64 = 6.0;

    /// splitmix64: small, fast and the same everywhere.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The distinct words of `text`, first-seen order, stripped of surrounding punctuation.
    pub(crate) fn vocabulary(text: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        text.split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .filter(|w| seen.insert(w.to_string()))
            .map(str::to_owned)
            .collect()
    }

    /// Sentences of 6–18 words drawn from `vocab` with seed `seed`, until the text is long
    /// enough for an artifact of about `artifact_bytes`.
    pub(crate) fn generate(vocab: &[String], seed: u64, artifact_bytes: u64) -> String {
        let want = (artifact_bytes as f64 / ARTIFACT_PER_TEXT_BYTE) as usize;
        let mut rng = Rng(seed);
        let mut out = String::with_capacity(want + 256);
        while out.len() < want {
            let n = 6 + rng.below(13);
            for i in 0..n {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&vocab[rng.below(vocab.len())]);
            }
            out.push('\n');
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_corpus_is_deterministic_and_sized() {
            let vocab = vocabulary("The cell, the Nucleus; and DNA. the");
            assert_eq!(vocab, ["The", "cell", "the", "Nucleus", "and", "DNA"]);
            let a = generate(&vocab, 7, 1_000_000);
            assert_eq!(a, generate(&vocab, 7, 1_000_000));
            assert_ne!(a, generate(&vocab, 8, 1_000_000));
            assert!(a.len() as f64 >= 1_000_000.0 / ARTIFACT_PER_TEXT_BYTE);
            assert!(a.lines().all(|l| l.len() < 1_000));
        }
    }
}

/// The two regions, the resources and the clients of the benchmark.
struct Bench {
    west: RegionProcess,
    /// Kept alive for the benchmark's length.
    _east: RegionProcess,
    src: Api,
    dst: Api,
    dst_key: String,
    src_resource: String,
    client: reqwest::Client,
    sink: String,
    durable_sink: String,
    _sink_dir: tempfile::TempDir,
}

/// The timings of one artifact, in seconds.
struct Row {
    name: String,
    bytes: usize,
    raw: Vec<f64>,
    durable: Vec<f64>,
    v32: Vec<f64>,
    v31: Vec<f64>,
    deploy: Vec<f64>,
}

/// The artifact file of `model` in the region's blob directory.
fn artifact(region: &RegionProcess, resource: &str, model: &str) -> anyhow::Result<Vec<u8>> {
    let dir = region
        .data_dir()
        .join("blobs/assets")
        .join(resource)
        .join(model)
        .join("files");
    let file = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .next()
        .context("the model has no artifact")??;
    Ok(std::fs::read(file.path())?)
}

impl Bench {
    async fn start(bin: &Path, secret: &Path) -> anyhow::Result<Bench> {
        let peer = |name: &str, url: &str| RegionOptions {
            extra_config: vec![
                format!("peer_secret_file = \"{}\"", secret.display()),
                "[[peers]]".into(),
                format!("name = \"{name}\""),
                format!("endpoint = \"{url}\""),
            ],
            ..RegionOptions::default()
        };
        // eastus first, so westus can name it; eastus reaches westus only for lookups, which
        // the benchmark does not need (the v3.2 authorization names the target).
        let east = RegionProcess::start(bin, "eastus", peer("westus", "http://127.0.0.1:9")).await;
        let west = RegionProcess::start(bin, "westus", peer("eastus", &east.url)).await;
        let src_keys = west.create_resource("src");
        let dst_keys = east.create_resource("dst");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(900))
            .build()?;
        let api = |region: &RegionProcess, key: &str| Api {
            http: client.clone(),
            base: format!("{}/speechtotext/v3.2", region.url),
            origin: region.url.clone(),
            key: key.to_owned(),
        };
        let (src, dst) = (api(&west, &src_keys.key1), api(&east, &dst_keys.key1));
        let sink_dir = tempfile::tempdir_in(west.data_dir())?;
        Ok(Bench {
            durable_sink: sink(Some(sink_dir.path().to_owned())).await?,
            _sink_dir: sink_dir,
            src,
            dst,
            dst_key: dst_keys.key1,
            src_resource: src_keys.id,
            sink: sink(None).await?,
            client,
            west,
            _east: east,
        })
    }

    /// Trains a model in westus from `text` (a Language dataset); its id and artifact.
    async fn train(&self, name: &str, text: Vec<u8>) -> anyhow::Result<(String, Vec<u8>)> {
        let src = &self.src;
        let dataset = src.upload("Language", text).await?;
        let base =
            src.get(&format!("{}/models/base", src.base)).await?["values"][0]["self"].clone();
        let model = src
            .post(
                "/models",
                json!({"baseModel": {"self": base}, "datasets": [{"self": dataset["self"]}],
                       "locale": "en-US", "displayName": name}),
            )
            .await?;
        let model = src.wait(model, Duration::from_secs(1800)).await?;
        let id = id_of(&model);
        let bytes = artifact(&self.west, &self.src_resource, &id)?;
        Ok((id, bytes))
    }

    /// Times `reps` raw transfers, v3.2 copies, v3.1 copies and deployments of `model`.
    async fn measure(
        &self,
        name: &str,
        model: &str,
        bytes: Vec<u8>,
        reps: usize,
    ) -> anyhow::Result<Row> {
        let (src, dst) = (&self.src, &self.dst);
        let len = bytes.len();
        let bytes = Bytes::from(bytes);
        let mut row = Row {
            name: name.to_owned(),
            bytes: len,
            raw: Vec::new(),
            durable: Vec::new(),
            v32: Vec::new(),
            v31: Vec::new(),
            deploy: Vec::new(),
        };
        let mut copied = None;
        // Interleaved, so that machine noise hits the anchor and the copies alike.
        for i in 0..reps {
            // The anchor: the same bytes over HTTP on the same loopback.
            let t = Instant::now();
            let r = self
                .client
                .post(&self.sink)
                .body(bytes.clone())
                .send()
                .await?;
            ensure!(r.status().as_u16() == 204, "sink: {}", r.status());
            row.raw.push(t.elapsed().as_secs_f64());
            // The durable anchor: the same, written to a file and fsync'd.
            let t = Instant::now();
            let r = self
                .client
                .post(&self.durable_sink)
                .body(bytes.clone())
                .send()
                .await?;
            ensure!(r.status().as_u16() == 204, "durable sink: {}", r.status());
            row.durable.push(t.elapsed().as_secs_f64());

            // v3.2: authorize on the target, copy on the source, poll the operation.
            let auth = dst
                .http
                .post(format!("{}/models:authorizecopy", dst.base))
                .header("Ocp-Apim-Subscription-Key", &dst.key)
                .json(&json!({"sourceResourceId": "src"}))
                .send()
                .await?;
            ensure!(
                auth.status().as_u16() == 200,
                "authorizecopy: {}",
                auth.status()
            );
            let auth: Value = auth.json().await?;
            let t = Instant::now();
            let r = src
                .http
                .post(format!("{}/models/{model}:copy", src.base))
                .header("Ocp-Apim-Subscription-Key", &src.key)
                .json(&auth)
                .send()
                .await?;
            ensure!(r.status().as_u16() == 202, ":copy: {}", r.status());
            let op_url = r
                .headers()
                .get("operation-location")
                .and_then(|v| v.to_str().ok())
                .context("no Operation-Location")?
                .to_owned();
            let op = wait_op(src, &op_url).await?;
            row.v32.push(t.elapsed().as_secs_f64());
            copied.get_or_insert(op["result"]["link"].clone());

            // v3.1: one synchronous call.
            let t = Instant::now();
            let r = src
                .http
                .post(format!(
                    "{}/speechtotext/v3.1/models/{model}:copyto",
                    src.origin
                ))
                .header("Ocp-Apim-Subscription-Key", &src.key)
                .json(&json!({"targetSubscriptionKey": self.dst_key}))
                .send()
                .await?;
            ensure!(r.status().as_u16() == 201, ":copyto: {}", r.status());
            row.v31.push(t.elapsed().as_secs_f64());
            eprint!("\rcopy: {name} {}/{reps}", i + 1);
        }

        // Deployment of the copy in the target.
        let copied = copied.context("no copy")?;
        for _ in 0..reps {
            let t = Instant::now();
            let e = dst
                .post(
                    "/endpoints",
                    json!({"model": {"self": copied}, "locale": "en-US", "displayName": "copy"}),
                )
                .await?;
            ensure!(e["status"] == "Succeeded", "endpoint: {e}");
            row.deploy.push(t.elapsed().as_secs_f64());
        }
        eprintln!();
        Ok(row)
    }
}

/// Runs the copy benchmark with `reps` copies of each kind, for the biology model and, unless
/// `large_mb` is 0, a synthetic model of at least `large_mb` MB.
pub async fn run(bin: &Path, out: &Path, reps: usize, large_mb: u64) -> anyhow::Result<()> {
    let reps = reps.max(1);
    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("peer.secret");
    std::fs::write(&secret, "bench-copy-federation-secret-0123456789abcdef\n")?;
    let bench = Bench::start(bin, &secret).await?;

    let language = std::fs::read(shared_data().join("custom-speech-biology/language-data.txt"))?;
    let mut rows = Vec::new();
    let (id, bytes) = bench.train("biology", language.clone()).await?;
    rows.push(bench.measure("biology", &id, bytes, reps).await?);
    let mut corpus_bytes = 0;
    if large_mb > 0 {
        let vocab = corpus::vocabulary(&String::from_utf8_lossy(&language));
        let text = corpus::generate(&vocab, 6, large_mb * 1_000_000);
        corpus_bytes = text.len();
        let t = Instant::now();
        let (id, bytes) = bench.train("synthetic", text.into_bytes()).await?;
        eprintln!(
            "copy: trained the synthetic model ({} MB artifact from a {:.1} MB corpus) in {:.0} s",
            bytes.len() / 1_000_000,
            corpus_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        ensure!(
            bytes.len() as u64 >= large_mb * 1_000_000,
            "the synthetic artifact is {} bytes, under {large_mb} MB: lower corpus::ARTIFACT_PER_TEXT_BYTE",
            bytes.len()
        );
        rows.push(bench.measure("synthetic", &id, bytes, reps).await?);
    }
    drop(bench);

    let ms = |s: f64| {
        if s < 0.1 {
            format!("{:.1} ms", s * 1e3)
        } else if s < 10.0 {
            format!("{:.0} ms", s * 1e3)
        } else {
            format!("{s:.1} s")
        }
    };
    println!("\n### Model copy between regions on loopback, {reps} runs each (medians)\n");
    println!(
        "| artifact | raw HTTP POST (anchor) | raw HTTP into an fsync'd file | v3.2 `:copy` → `Succeeded` | ratio (raw / fsync'd) | v3.1 `:copyto` (201) | ratio (raw / fsync'd) | Azure's guide | endpoint for the copy | Azure's guide |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let (raw, v32, v31, dep) = (
            median(&r.raw),
            median(&r.v32),
            median(&r.v31),
            median(&r.deploy),
        );
        let durable = median(&r.durable);
        println!(
            "| {} ({:.1} MB) | {} | {} | {} | {:.1}× / {:.1}× | {} | {:.1}× / {:.1}× | {} | {} | {} |",
            r.name,
            r.bytes as f64 / 1e6,
            ms(raw),
            ms(durable),
            ms(v32),
            v32 / raw,
            v32 / durable,
            ms(v31),
            v31 / raw,
            v31 / durable,
            GUIDE,
            ms(dep),
            GUIDE,
        );
    }
    if large_mb > 0 {
        println!(
            "\nThe synthetic model is trained from {:.1} MB of seeded pseudo-random sentences over \
             the biology vocabulary: a copy moves bytes, so its size, not its content, is what \
             this measures.",
            corpus_bytes as f64 / 1e6
        );
    }
    let json_row = |r: &Row| {
        json!({
            "artifact_bytes": r.bytes,
            "raw_http_s": r.raw,
            "raw_http_fsync_s": r.durable,
            "v32_copy_s": r.v32,
            "v31_copyto_s": r.v31,
            "deploy_s": r.deploy,
            "medians_s": {"raw": median(&r.raw), "raw_fsync": median(&r.durable), "v32": median(&r.v32),
                          "v31": median(&r.v31), "deploy": median(&r.deploy)},
        })
    };
    let artifacts: serde_json::Map<String, Value> =
        rows.iter().map(|r| (r.name.clone(), json_row(r))).collect();
    save(
        out,
        "copy",
        &json!({"reps": reps, "synthetic_corpus_bytes": corpus_bytes, "artifacts": artifacts}),
    )?;
    Ok(())
}
