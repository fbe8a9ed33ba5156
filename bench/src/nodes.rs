//! One node against two nodes of one region (issue #10): the same closed-loop load of
//! text-to-speech and speech-to-text calls against one `tandem serve`, then spread over two
//! nodes sharing the region's data directory. Speech engines are CPU-bound and this machine has
//! two cores, so two nodes cannot add capacity here; the figure that carries over to bigger
//! machines is requests per second per core.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_testkit::{biology, RegionOptions, RegionProcess, HARVARD_SENTENCES};

use crate::stats::save;

/// Closed loop: `clients` tasks each send requests back to back for `secs`, round-robin over
/// `urls`; returns completed requests per second (every answer must be 200).
async fn load(
    urls: &[String],
    key: &str,
    clients: usize,
    secs: u64,
    stt: bool,
    clip: Arc<Vec<u8>>,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, urls, key, done, next, clip) = (
            http.clone(),
            urls.to_vec(),
            key.to_owned(),
            done.clone(),
            next.clone(),
            clip.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let base = &urls[i % urls.len()];
                let req = if stt {
                    http.post(format!(
                        "{base}/speech/recognition/conversation/cognitiveservices/v1?language=en-US"
                    ))
                    .header("Content-Type", "audio/wav")
                    .body(clip.as_ref().clone())
                } else {
                    let text = HARVARD_SENTENCES[i % HARVARD_SENTENCES.len()];
                    http.post(format!("{base}/cognitiveservices/v1"))
                        .header("Content-Type", "application/ssml+xml")
                        .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
                        .body(format!(
                            "<speak version='1.0' xml:lang='en-US'><voice name='en-US-SltFlite'>{text}</voice></speak>"
                        ))
                };
                let resp = req.header("Ocp-Apim-Subscription-Key", &key).send().await?;
                anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
                resp.bytes().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Runs the benchmark: `secs` seconds per configuration, `clients` concurrent clients.
pub async fn run(
    bin: &Path,
    out: &Path,
    secs: u64,
    clients: usize,
    engine_workers: Option<usize>,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = engine_workers
        .map(|n| format!("engine_workers = {n}"))
        .unwrap_or_default();
    let a = RegionProcess::start(
        bin,
        "benchus",
        RegionOptions {
            extra_config: vec!["node_name = \"node-a\"".into(), workers.clone()],
            ..RegionOptions::default()
        },
    )
    .await;
    let b = a.start_sibling(&["node_name = \"node-b\"", &workers]).await;
    let key = a.create_resource("bench").key1;
    let clip = biology()
        .into_iter()
        .next()
        .map(|c| std::fs::read(&c.path))
        .transpose()?
        .expect("a biology clip");
    let clip = Arc::new(clip);
    let one = vec![a.url.clone()];
    let two = vec![a.url.clone(), b.url.clone()];
    let mut rows = Vec::new();
    let sizing = engine_workers.map_or("default engine_workers".to_owned(), |n| {
        format!("engine_workers = {n}")
    });
    println!("\n### One node against two nodes of one region ({clients} clients, {secs} s each, {cores} cores, {sizing})\n");
    println!("| load | 1 node, req/s | 2 nodes, req/s | 2 / 1 | req/s per core (1 node) |");
    println!("|---|---|---|---|---|");
    for (name, stt) in [
        ("TTS (SltFlite, one Harvard sentence)", false),
        ("STT (one biology clip)", true),
    ] {
        // Warm both nodes' engines first.
        load(&two, &key, 2, 2, stt, clip.clone()).await?;
        let r1 = load(&one, &key, clients, secs, stt, clip.clone()).await?;
        let r2 = load(&two, &key, clients, secs, stt, clip.clone()).await?;
        println!(
            "| {name} | {r1:.1} | {r2:.1} | {:.2}× | {:.1} |",
            r2 / r1,
            r1 / cores as f64
        );
        rows.push(json!({"load": name, "one_node_rps": r1, "two_nodes_rps": r2, "cores": cores}));
    }
    save(
        out,
        "nodes",
        &json!({"clients": clients, "secs": secs, "rows": rows}),
    )
}
