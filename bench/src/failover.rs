//! Client continuity: failover under a dying primary, a hanging primary, hedging.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_client::{ClientConfig, SynthesisRequest, TandemClient};
use tandem_testkit::{Fault, FaultProxy, RegionOptions, RegionProcess};

use crate::stats::{median, percentile, save};

fn tiny() -> SynthesisRequest {
    SynthesisRequest {
        ssml: "<speak version='1.0' xml:lang='en-US'><voice name='en-US-Kal16Flite'>Hi.</voice></speak>".into(),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: false,
    }
}

fn regions_file(dir: &Path, name: &str, regions: &[(&str, &str, &str)], policy: &str) -> PathBuf {
    let mut toml = String::new();
    for (n, url, key) in regions {
        toml.push_str(&format!(
            "[[regions]]\nname = \"{n}\"\nendpoint = \"{url}\"\nkey = \"{key}\"\n"
        ));
    }
    toml.push_str("[policy]\n");
    toml.push_str(policy);
    let path = dir.join(name);
    std::fs::write(&path, toml).expect("write regions file");
    path
}

fn client(path: &Path) -> anyhow::Result<TandemClient> {
    Ok(TandemClient::new(ClientConfig::from_file(path)?)?)
}

async fn time_calls(c: &TandemClient, n: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    let (mut ms, mut failed) = (Vec::with_capacity(n), 0);
    for _ in 0..n {
        let t = Instant::now();
        match c.synthesize(&tiny()).await {
            Ok(_) => ms.push(t.elapsed().as_secs_f64() * 1e3),
            Err(_) => failed += 1,
        }
    }
    Ok((ms, failed))
}

/// Runs the failover benchmarks.
pub async fn run(bin: &Path, out: &Path) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let (mut west, east) = tokio::join!(
        RegionProcess::start(bin, "westus", RegionOptions::default()),
        RegionProcess::start(bin, "eastus", RegionOptions::default())
    );
    let (wk, ek) = (
        west.create_resource("bench").key1,
        east.create_resource("bench").key1,
    );

    // 1. Kill -9 of the primary under load: failed calls, then the per-call cost once open.
    let both = regions_file(
        &dir,
        "both.toml",
        &[("westus", &west.url, &wk), ("eastus", &east.url, &ek)],
        "failback_after_ms = 600000\n",
    );
    let only_east = regions_file(&dir, "east.toml", &[("eastus", &east.url, &ek)], "");
    let c = client(&both)?;
    let load = {
        let c = c.clone();
        tokio::spawn(async move { time_calls(&c, 2_000).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    west.kill9();
    let (_, failed_during_kill) = load.await??;
    let direct = client(&only_east)?;
    time_calls(&direct, 50).await?; // warm both paths (tokens, pools)
    time_calls(&c, 50).await?;
    let (mut d, mut f) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        d.extend(time_calls(&direct, 50).await?.0);
        f.extend(time_calls(&c, 50).await?.0);
    }
    let added = median(&f) - median(&d);

    // 2. A hanging primary (SIGSTOP): first-call latency of fresh clients vs the per-try timeout.
    let west2 = RegionProcess::start(bin, "westus", RegionOptions::default()).await;
    let wk2 = west2.create_resource("bench").key1;
    let timeout_ms = 500u64;
    let hang = regions_file(
        &dir,
        "hang.toml",
        &[("westus", &west2.url, &wk2), ("eastus", &east.url, &ek)],
        &format!("tts_timeout_ms = {timeout_ms}\nsts_timeout_ms = {timeout_ms}\nfailback_after_ms = 600000\n"),
    );
    let mut first = Vec::new();
    for _ in 0..10 {
        let c = client(&hang)?;
        c.synthesize(&tiny()).await?; // token and connection to west, before the hang
        west2.freeze();
        let t = Instant::now();
        c.synthesize(&tiny()).await?;
        first.push(t.elapsed().as_secs_f64() * 1e3);
        west2.thaw();
    }

    // 3. Hedging: a primary that is slow (300 ms) on every 10th call, hedging off and on.
    let proxy = FaultProxy::start(&west2.url).await;
    let slow = Duration::from_millis(300);
    let mut p99 = Vec::new();
    for (label, hedge) in [
        ("hedging off", ""),
        ("hedging on (50 ms)", "hedge_tts_ms = 50\n"),
    ] {
        let file = regions_file(
            &dir,
            "hedge.toml",
            &[("westus", &proxy.url(), &wk2), ("eastus", &east.url, &ek)],
            &format!("tts_timeout_ms = 2000\nfailback_after_ms = 600000\n{hedge}"),
        );
        let c = client(&file)?;
        time_calls(&c, 20).await?;
        let mut ms = Vec::new();
        for i in 0..300 {
            // Switching the fault closes the proxy's connections, so switch only when it changes.
            match i % 10 {
                0 => proxy.set(Fault::Delay(slow)).await,
                1 => proxy.set(Fault::None).await,
                _ => {}
            }
            let t = Instant::now();
            c.synthesize(&tiny()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        proxy.set(Fault::None).await;
        p99.push((label, median(&ms), percentile(&ms, 99.0)));
    }

    println!("\n### Client continuity (tandem-client, TTS \"Hi.\", 2 regions on loopback)\n");
    println!("| measure | result | goal |");
    println!("|---|---|---|");
    println!("| failed calls while the primary is killed under load (2 000 sequential calls) | {failed_during_kill} | 0 |");
    println!("| added latency per call once the breaker is open (median, vs a client of the secondary alone) | {added:.3} ms | ≤ 1 ms |");
    println!(
        "| first call with a hanging primary (median of 10 fresh clients; per-try timeout {timeout_ms} ms) | {:.0} ms ({:.2}× timeout) | ≤ timeout + 10 % |",
        median(&first),
        median(&first) / timeout_ms as f64
    );
    for (label, p50, p) in &p99 {
        println!(
            "| p50 / p99, primary 300 ms slow on every 10th call, {label} | {p50:.1} / {p:.1} ms | |"
        );
    }
    save(
        out,
        "failover",
        &json!({
            "failed_during_kill": failed_during_kill,
            "open_breaker_added_ms": added,
            "direct_median_ms": median(&d), "failover_median_ms": median(&f),
            "hang_first_call_ms": first, "per_try_timeout_ms": timeout_ms,
            "hedging": p99.iter().map(|(l, a, b)| json!({"mode": l, "p50_ms": a, "p99_ms": b})).collect::<Vec<_>>(),
        }),
    )
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tandem-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
