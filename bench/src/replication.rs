//! Paired-region speaker replication, measured end to end on loopback:
//!
//! - **lag**: `enrollers` clients enrol continuously in the primary; after each 201, the
//!   enroller polls the pair (with the primary's key) until the enrollment shows there. The
//!   figure is the time from the primary's acknowledgement to visibility at the pair, polling
//!   every 2 ms (so it over-states the true lag by up to that, plus one HTTP round trip);
//! - **failover**: a client that knows only the primary verifies in a loop; the primary is
//!   killed with SIGKILL; the figure is the time from the kill to the first successful verify
//!   answered by the pair, and the failed calls during a 3 s outage. Then the primary restarts,
//!   catches up, and the time from its `/readyz/speaker` to the client being served by it again
//!   is the failback (the client's `failback_after`, 10 s by default, dominates it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tandem_client::{CallKind, ClientConfig, ForwardRequest, TandemClient};
use tandem_testkit::{FaultProxy, RegionOptions, RegionProcess};

use crate::stats::{median, percentile, save};

const V: &str = "api-version=2021-09-05";
const VOICE: &str = "en-US-SltFlite";
const CLIP: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
    background.";
const LONG: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
    background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
    Rice is often served in round bowls. The juice of lemons makes fine punch. The box was thrown \
    beside the parked truck. The hogs were fed chopped corn and garbage. Four hours of steady \
    work faced us. A large size in stockings is hard to sell.";
/// Enrollments per profile before the enroller moves to a new one (Azure allows 50).
const PER_PROFILE: usize = 40;

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn url(&self, rest: &str) -> String {
        format!(
            "{}/speaker-recognition/verification/text-independent/profiles{rest}",
            self.base
        )
    }

    async fn tts(&self, text: &str) -> anyhow::Result<Vec<u8>> {
        let r = self
            .http
            .post(format!("{}/cognitiveservices/v1", self.base))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
            .body(format!(
                "<speak version='1.0' xml:lang='en-US'><voice name='{VOICE}'>{text}</voice></speak>"
            ))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "tts: {}", r.status());
        Ok(r.bytes().await?.to_vec())
    }

    async fn create(&self) -> anyhow::Result<String> {
        let r = self
            .http
            .post(self.url(&format!("?{V}")))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .json(&json!({"locale": "en-us"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "create: {}", r.status());
        let v: Value = r.json().await?;
        Ok(v["profileId"].as_str().unwrap_or_default().to_owned())
    }

    /// Enrols; returns the profile's enrollment count after it.
    async fn enroll(&self, id: &str, wav: &[u8]) -> anyhow::Result<u64> {
        let r = self
            .http
            .post(self.url(&format!("/{id}/enrollments?{V}")))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .header("Content-Type", "audio/wav")
            .body(wav.to_vec())
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status == 201, "enroll: {status} {v}");
        Ok(v["enrollmentsCount"].as_u64().unwrap_or(0))
    }

    async fn count(&self, id: &str) -> anyhow::Result<Option<u64>> {
        let r = self
            .http
            .get(self.url(&format!("/{id}?{V}")))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .send()
            .await?;
        if r.status() != 200 {
            return Ok(None);
        }
        let v: Value = r.json().await?;
        Ok(v["enrollmentsCount"].as_u64())
    }
}

struct Pair {
    a: RegionProcess,
    b: RegionProcess,
    to_a: FaultProxy,
    _to_b: FaultProxy,
    _dir: tempfile::TempDir,
}

async fn start_pair(bin: &Path) -> anyhow::Result<Pair> {
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("peer.secret");
    std::fs::write(&secret, "bench-federation-secret-0123456789abcdef\n")?;
    let to_a = FaultProxy::start("127.0.0.1:9").await;
    let to_b = FaultProxy::start("127.0.0.1:9").await;
    let opts = |pair: &str, url: String| RegionOptions {
        extra_config: vec![
            format!("pair = \"{pair}\""),
            format!("peer_secret_file = \"{}\"", secret.display()),
            "[[peers]]".into(),
            format!("name = \"{pair}\""),
            format!("endpoint = \"{url}\""),
        ],
        ..RegionOptions::default()
    };
    let a = RegionProcess::start(bin, "westus", opts("eastus", to_b.url())).await;
    to_a.set_target(&a.url);
    let b = RegionProcess::start(bin, "eastus", opts("westus", to_a.url())).await;
    to_b.set_target(&b.url);
    for r in [&a.url, &b.url] {
        speaker_ready(r, Duration::from_secs(60)).await?;
    }
    Ok(Pair {
        a,
        b,
        to_a,
        _to_b: to_b,
        _dir: dir,
    })
}

async fn speaker_ready(base: &str, within: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz/speaker")).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{base}: speaker never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One enroller: `n` enrollments at `a`, each followed by polling `b` until it shows.
async fn enroller(
    a: Arc<Api>,
    b: Arc<Api>,
    wav: Arc<Vec<u8>>,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut lags = Vec::with_capacity(n);
    let mut id = String::new();
    for i in 0..n {
        if i % PER_PROFILE == 0 {
            id = a.create().await?;
        }
        let count = a.enroll(&id, &wav).await?;
        let acked = Instant::now();
        loop {
            if b.count(&id).await?.is_some_and(|c| c >= count) {
                break;
            }
            anyhow::ensure!(
                acked.elapsed() < Duration::from_secs(30),
                "enrollment never reached the pair"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    Ok(lags)
}

async fn verify(client: &TandemClient, id: &str, wav: &[u8]) -> (bool, String) {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", http::HeaderValue::from_static("audio/wav"));
    let req = ForwardRequest {
        method: http::Method::POST,
        path_and_query: format!(
            "/speaker-recognition/verification/text-independent/profiles/{id}:verify?{V}&ignoreMinLength=true"
        ),
        headers,
        body: bytes::Bytes::copy_from_slice(wav),
    };
    match client.forward(CallKind::Speaker, req).await {
        Ok(a) if a.value.status.is_success() => (true, a.region),
        Ok(a) => (false, a.region),
        Err(_) => (false, String::new()),
    }
}

/// Runs both measurements: `n` enrollments per enroller (`enrollers` in parallel), then
/// `kills` failover/failback cycles.
pub async fn run(
    bin: &Path,
    out: &Path,
    enrollers: usize,
    n: usize,
    kills: usize,
) -> anyhow::Result<()> {
    let mut pair = start_pair(bin).await?;
    let key = pair.a.create_resource("bench").key1;
    let http = reqwest::Client::new();
    let api = |base: &str| {
        Arc::new(Api {
            http: http.clone(),
            base: base.to_owned(),
            key: key.clone(),
        })
    };
    let (a, b) = (api(&pair.a.url), api(&pair.b.url));
    let clip = Arc::new(a.tts(CLIP).await?);
    let clip_secs = (clip.len() - 44) as f64 / 32_000.0;

    // Lag under an enrollment load.
    let t = Instant::now();
    let tasks: Vec<_> = (0..enrollers)
        .map(|_| tokio::spawn(enroller(a.clone(), b.clone(), clip.clone(), n)))
        .collect();
    let mut lags = Vec::new();
    for task in tasks {
        lags.extend(task.await??);
    }
    let rate = lags.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "\n### Speaker replication lag ({} enrollments of {clip_secs:.1} s by {enrollers} concurrent clients, {rate:.1}/s; loopback)\n",
        lags.len()
    );
    println!("| p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|");
    let max = lags.iter().copied().fold(0.0, f64::max);
    println!(
        "| {:.1} | {:.1} | {:.1} | {:.1} |",
        median(&lags),
        percentile(&lags, 90.0),
        percentile(&lags, 99.0),
        max
    );
    let lag = json!({
        "enrollments": lags.len(), "enrollers": enrollers, "clip_secs": clip_secs, "rate_per_s": rate,
        "p50_ms": median(&lags), "p90_ms": percentile(&lags, 90.0), "p99_ms": percentile(&lags, 99.0), "max_ms": max,
    });

    // Failover and failback of a client that knows only the primary (default policy).
    let long = a.tts(LONG).await?;
    let probe = a.tts(CLIP).await?;
    let id = a.create().await?;
    for _ in 0..2 {
        a.enroll(&id, &long).await?;
    }
    let cfg = ClientConfig::from_toml(&format!(
        "[[regions]]\nname = \"westus\"\nendpoint = \"{}\"\nkey = \"{key}\"\n",
        pair.to_a.url()
    ))?;
    let client = TandemClient::new(cfg)?;
    // Let discovery happen and the pair hold the profile.
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.count(&id).await? != Some(2) {
        anyhow::ensure!(Instant::now() < deadline, "profile never reached the pair");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(
        verify(&client, &id, &probe).await == (true, "westus".into()),
        "primary serves"
    );
    let (mut rto, mut failed, mut failback) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..kills {
        let killed = Instant::now();
        pair.a.kill9();
        let mut fails = 0;
        loop {
            match verify(&client, &id, &probe).await {
                (true, r) if r == "eastus" => break,
                (true, _) => {}
                (false, _) => fails += 1,
            }
            anyhow::ensure!(
                killed.elapsed() < Duration::from_secs(60),
                "no failover within 60 s"
            );
        }
        rto.push(killed.elapsed().as_secs_f64() * 1e3);
        // Keep the traffic going through the outage (the breaker opens, probes fail), as real
        // clients would, before the primary returns.
        let outage = Instant::now();
        while outage.elapsed() < Duration::from_secs(3) {
            if !verify(&client, &id, &probe).await.0 {
                fails += 1;
            }
        }
        failed.push(fails as f64);
        pair.a.restart().await;
        pair.to_a.set_target(&pair.a.url);
        speaker_ready(&pair.a.url, Duration::from_secs(60)).await?;
        let ready = Instant::now();
        loop {
            let (ok, r) = verify(&client, &id, &probe).await;
            if ok && r == "westus" {
                break;
            }
            anyhow::ensure!(
                ready.elapsed() < Duration::from_secs(120),
                "no failback within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failback.push(ready.elapsed().as_secs_f64() * 1e3);
    }
    println!("\n### Speaker failover: SIGKILL of the primary under a verify loop ({kills} runs, client knows only the primary, default policy)\n");
    println!("| measure | median | max |");
    println!("|---|---|---|");
    let mx = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "| kill → first verify served by the pair | {:.0} ms | {:.0} ms |",
        median(&rto),
        mx(&rto)
    );
    println!(
        "| failed verify calls during the 3 s outage | {:.0} | {:.0} |",
        median(&failed),
        mx(&failed)
    );
    println!(
        "| primary caught up → client served by it again | {:.0} ms | {:.0} ms |",
        median(&failback),
        mx(&failback)
    );
    save(
        out,
        "replication",
        &json!({
            "lag": lag,
            "failover": {"runs": kills, "kill_to_pair_ms": rto, "failed_calls": failed, "ready_to_failback_ms": failback},
        }),
    )?;
    Ok(())
}
