//! Models_CopyTo between two regions on loopback (issue #6): the biology model trained in
//! `westus` and copied to `eastus` through v3.2 (`:authorizecopy` on the target, `:copy` on the
//! source, the operation polled until `Succeeded`) and through v3.1 (`:copyto`, synchronous),
//! against the anchor of the same run: the same artifact bytes POSTed once over HTTP on the same
//! loopback to a sink that only reads them. Then an endpoint for the copy in the target. Medians
//! of `reps` copies (each v3.2 copy has its own authorization, so each makes a new model).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tandem_testkit::{shared_data, RegionOptions, RegionProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::custom_speech::{id_of, Api};
use crate::stats::{median, save};

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

/// A loopback HTTP sink: reads each request's body and answers 204. Its URL.
async fn sink() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
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
                    let mut have = head.len() - end;
                    while have < length {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => have += n,
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

/// Runs the copy benchmark with `reps` copies of each kind.
pub async fn run(bin: &Path, out: &Path, reps: usize) -> anyhow::Result<()> {
    let reps = reps.max(1);
    let secret_dir = tempfile::tempdir()?;
    let secret = secret_dir.path().join("peer.secret");
    std::fs::write(&secret, "bench-copy-federation-secret-0123456789abcdef\n")?;
    let peer = |name: &str, url: &str| RegionOptions {
        extra_config: vec![
            format!("peer_secret_file = \"{}\"", secret.display()),
            "[[peers]]".into(),
            format!("name = \"{name}\""),
            format!("endpoint = \"{url}\""),
        ],
        ..RegionOptions::default()
    };
    // eastus first, so westus can name it; eastus reaches westus only for lookups, which the
    // benchmark does not need (the v3.2 authorization names the target).
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

    // The biology model, trained in westus from the language data only.
    let language = std::fs::read(shared_data().join("custom-speech-biology/language-data.txt"))?;
    let dataset = src.upload("Language", language).await?;
    let base = src.get(&format!("{}/models/base", src.base)).await?["values"][0]["self"].clone();
    let model = src
        .post(
            "/models",
            json!({"baseModel": {"self": base}, "datasets": [{"self": dataset["self"]}],
                   "locale": "en-US", "displayName": "biology"}),
        )
        .await?;
    let model = src.wait(model, Duration::from_secs(600)).await?;
    let model_id = id_of(&model);
    let bytes = artifact(&west, &src_keys.id, &model_id)?;

    // The anchor: the same bytes over HTTP on the same loopback.
    let sink = sink().await?;
    let mut raw = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let r = client.post(&sink).body(bytes.clone()).send().await?;
        ensure!(r.status().as_u16() == 204, "sink: {}", r.status());
        raw.push(t.elapsed().as_secs_f64());
    }

    // v3.2: authorize on the target, copy on the source, poll the operation.
    let mut v32 = Vec::new();
    let mut copied = None;
    for i in 0..reps {
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
            .post(format!("{}/models/{model_id}:copy", src.base))
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
        let op = wait_op(&src, &op_url).await?;
        v32.push(t.elapsed().as_secs_f64());
        copied.get_or_insert(op["result"]["link"].clone());
        eprint!("\rcopy: v3.2 {}/{reps}", i + 1);
    }

    // v3.1: one synchronous call.
    let mut v31 = Vec::new();
    let src31 = format!("{}/speechtotext/v3.1", west.url);
    for i in 0..reps {
        let t = Instant::now();
        let r = src
            .http
            .post(format!("{src31}/models/{model_id}:copyto"))
            .header("Ocp-Apim-Subscription-Key", &src.key)
            .json(&json!({"targetSubscriptionKey": dst_keys.key1}))
            .send()
            .await?;
        ensure!(r.status().as_u16() == 201, ":copyto: {}", r.status());
        v31.push(t.elapsed().as_secs_f64());
        eprint!("\rcopy: v3.1 {}/{reps}", i + 1);
    }

    // Deployment of the copy in the target.
    let copied = copied.context("no copy")?;
    let mut deploy = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let e = dst
            .post(
                "/endpoints",
                json!({"model": {"self": copied}, "locale": "en-US", "displayName": "copy"}),
            )
            .await?;
        ensure!(e["status"] == "Succeeded", "endpoint: {e}");
        deploy.push(t.elapsed().as_secs_f64());
    }
    eprintln!();

    let (raw_m, v32_m, v31_m, dep_m) = (median(&raw), median(&v32), median(&v31), median(&deploy));
    let ms = |s: f64| format!("{:.1} ms", s * 1e3);
    println!(
        "\n### Model copy between regions on loopback: the biology model ({} bytes), {reps} runs each\n",
        bytes.len()
    );
    println!("| step | median | vs raw HTTP of the same bytes | Azure's guide |");
    println!("|---|---|---|---|");
    println!(
        "| raw HTTP POST of the artifact (anchor) | {} | 1 | |",
        ms(raw_m)
    );
    println!(
        "| v3.2 `:copy` → operation `Succeeded` | {} | {:.1}× | 10 min |",
        ms(v32_m),
        v32_m / raw_m
    );
    println!(
        "| v3.1 `:copyto` (201) | {} | {:.1}× | 10 min |",
        ms(v31_m),
        v31_m / raw_m
    );
    println!(
        "| endpoint for the copy in eastus | {} | | 10 min |",
        ms(dep_m)
    );
    save(
        out,
        "copy",
        &json!({
            "artifact_bytes": bytes.len(),
            "reps": reps,
            "raw_http_s": raw,
            "v32_copy_s": v32,
            "v31_copyto_s": v31,
            "deploy_s": deploy,
            "medians_s": {"raw": raw_m, "v32": v32_m, "v31": v31_m, "deploy": dep_m},
        }),
    )?;
    Ok(())
}
