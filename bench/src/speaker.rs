//! Speaker recognition latency through a real region: verify against one profile, identify
//! against 50, each with a 6 s probe (`ignoreMinLength=true`) and a 20 s one (Azure's default
//! minimum). Enrollment audio is synthesized once per flite voice and reused, since only the
//! latency is measured here (the EER is `tandem-engines`' `speaker_eval` test).

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use tandem_testkit::{RegionOptions, RegionProcess};

use crate::stats::{median, percentile, save};

const VOICES: [&str; 4] = [
    "en-US-SltFlite",
    "en-US-RmsFlite",
    "en-US-AwbFlite",
    "en-US-Kal16Flite",
];
const ENROL: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
    background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
    Rice is often served in round bowls. The juice of lemons makes fine punch. The box was thrown \
    beside the parked truck. The hogs were fed chopped corn and garbage. Four hours of steady \
    work faced us. A large size in stockings is hard to sell. The boy was there when the sun \
    rose. A rod is used to catch pink salmon.";
const PROBE_SHORT: &str = "The salt breeze came across from the sea. The girl at the booth sold \
    fifty bonds. The small pup gnawed a hole in the sock.";
const PROFILES: usize = 50;

struct Region {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Region {
    async fn tts(&self, voice: &str, text: &str) -> anyhow::Result<Vec<u8>> {
        let ssml = format!(
            "<speak version='1.0' xml:lang='en-US'><voice name='{voice}'>{text}</voice></speak>"
        );
        let r = self
            .http
            .post(format!("{}/cognitiveservices/v1", self.base))
            .header("Ocp-Apim-Subscription-Key", &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
            .body(ssml)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "tts: {}", r.status());
        Ok(r.bytes().await?.to_vec())
    }

    async fn post(&self, path: &str, query: &str, wav: Option<&[u8]>) -> anyhow::Result<Value> {
        let url = format!(
            "{}/speaker-recognition/{path}?api-version=2021-09-05{query}",
            self.base
        );
        let mut req = self
            .http
            .post(url)
            .header("Ocp-Apim-Subscription-Key", &self.key);
        req = match wav {
            Some(w) => req.header("Content-Type", "audio/wav").body(w.to_vec()),
            None => req.json(&json!({"locale": "en-us"})),
        };
        let r = req.send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }

    /// A profile of `service` enrolled with `wav` until Enrolled; returns its id.
    async fn profile(&self, service: &str, wav: &[u8]) -> anyhow::Result<String> {
        let base = format!("{service}/text-independent/profiles");
        let p = self.post(&base, "", None).await?;
        let id = p["profileId"].as_str().unwrap_or_default().to_owned();
        for _ in 0..4 {
            let e = self
                .post(&format!("{base}/{id}/enrollments"), "", Some(wav))
                .await?;
            if e["enrollmentStatus"] == "Enrolled" {
                return Ok(id);
            }
        }
        anyhow::bail!("profile {id} not enrolled")
    }
}

fn row(name: &str, xs: &[f64]) -> Value {
    println!(
        "| {name} | {:.1} | {:.1} |",
        median(xs),
        percentile(xs, 90.0)
    );
    json!({"median_ms": median(xs), "p90_ms": percentile(xs, 90.0), "n": xs.len()})
}

/// Runs the speaker latency benchmark: `n` timed requests of each kind.
pub async fn run(bin: &Path, out: &Path, n: usize) -> anyhow::Result<()> {
    let region = RegionProcess::start(bin, "benchus", RegionOptions::default()).await;
    let r = Region {
        http: reqwest::Client::new(),
        base: region.url.clone(),
        key: region.create_resource("bench").key1,
    };
    let mut enrol = Vec::new();
    for v in VOICES {
        enrol.push(r.tts(v, ENROL).await?);
    }
    let probe_short = r.tts(VOICES[0], PROBE_SHORT).await?;
    let probe_long = r.tts(VOICES[0], &format!("{PROBE_SHORT} {ENROL}")).await?;
    let probe_secs = |w: &[u8]| (w.len() - 44) as f64 / 32_000.0;

    let t = Instant::now();
    let verify_id = r.profile("verification", &enrol[0]).await?;
    let mut ids = Vec::new();
    for i in 0..PROFILES {
        ids.push(
            r.profile("identification", &enrol[i % VOICES.len()])
                .await?,
        );
    }
    let setup = t.elapsed().as_secs_f64();
    let csv = ids.join(",");

    let mut results = serde_json::Map::new();
    println!(
        "\n### Speaker recognition latency ({n} requests each, loopback; {} enrolled profiles set up in {setup:.1} s)\n",
        PROFILES + 1
    );
    println!("| request | median ms | p90 ms |");
    println!("|---|---|---|");
    for (label, probe, query) in [
        ("short", &probe_short, "&ignoreMinLength=true"),
        ("long", &probe_long, ""),
    ] {
        let secs = probe_secs(probe);
        let (mut verify, mut identify) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let t = Instant::now();
            let path = format!("verification/text-independent/profiles/{verify_id}:verify");
            let v = r.post(&path, query, Some(probe)).await?;
            anyhow::ensure!(v["recognitionResult"] == "Accept", "verify: {v}");
            verify.push(t.elapsed().as_secs_f64() * 1e3);

            let t = Instant::now();
            let path = "identification/text-independent/profiles:identifySingleSpeaker";
            let v = r
                .post(path, &format!("{query}&profileIds={csv}"), Some(probe))
                .await?;
            // Every fourth profile holds the probe's voice.
            let slt = ids.iter().step_by(VOICES.len());
            let got = v["identifiedProfile"]["profileId"]
                .as_str()
                .unwrap_or_default();
            anyhow::ensure!(slt.into_iter().any(|id| id == got), "identify: {v}");
            identify.push(t.elapsed().as_secs_f64() * 1e3);
        }
        results.insert(
            format!("verify_{label}"),
            row(&format!("`:verify`, {secs:.1} s probe"), &verify),
        );
        results.insert(
            format!("identify50_{label}"),
            row(
                &format!("`:identifySingleSpeaker`, {PROFILES} profiles, {secs:.1} s probe"),
                &identify,
            ),
        );
        results.insert(format!("probe_{label}_secs"), json!(secs));
    }
    results.insert("setup_secs".into(), json!(setup));
    save(out, "speaker", &Value::Object(results))
}
