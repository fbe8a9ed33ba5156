//! The drill itself: start the regions behind their proxies, seed them, run the load and the
//! fault timeline side by side, then write the report and the chart.
//!
//! Everything it starts is owned by [`run`]'s future: the temporary directory, the proxies and
//! the region processes (killed on drop). So returning early with an error, or the caller
//! dropping the future on Ctrl-C, cleans up the same way as finishing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tandem_client::{CallKind, ClientConfig, RegionEntry, SynthesisRequest, TandemClient};
use tokio::time::Instant;

use crate::error::{DrillError, Result};
use crate::load::{self, speaker_request, ssml, Workload};
use crate::proxy::{Proxy, ProxyFault};
use crate::region::{random_hex, write_private, Layout, Region};
use crate::report::{self, FaultRecord, Readback, Report};
use crate::scenario::{Action, FaultSpec, Scenario};

/// Two long texts: about 24 s of speech, enough for a profile to be `Enrolled`.
const ENROL: [&str; 2] = [
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
     It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
     Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage. \
     Four hours of steady work faced us. A large size in stockings is hard to sell. \
     The boy was there when the sun rose. A rod is used to catch pink salmon.",
];
const PROBE: &str = "The salt breeze came across from the sea. The girl at the booth sold \
     fifty bonds. The small pup gnawed a hole in the sock.";
const STT_TEXT: &str = "Rice is often served in round bowls.";
/// A short text for the enrollments the load adds (a few seconds of speech each).
const ENROL_MORE: &str =
    "The girl at the booth sold fifty bonds. A pot of tea helps to pass the evening.";
const SPEAKER_BASE: &str = "/speaker-recognition/verification/text-independent/profiles";

/// How to run a drill.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `tandem` binary the regions run.
    pub bin: PathBuf,
    /// Where the report goes (created).
    pub out: PathBuf,
    /// The scenario's name in the report.
    pub name: String,
    /// Keep the temporary directory (region configs, data and logs) for a post-mortem,
    /// instead of removing it. The processes are stopped either way.
    pub keep_temp: bool,
}

/// What a drill wrote.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// `report.json`.
    pub json: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `chart.svg`.
    pub chart: PathBuf,
}

/// Runs `scenario` and writes its report into `opts.out`. A missed goal is `Ok` with
/// `report.passed == false`; `Err` means the drill itself could not run.
pub async fn run(scenario: &Scenario, opts: &Options) -> Result<Outcome> {
    scenario.validate()?;
    let tmp = tempfile::Builder::new()
        .prefix("tandem-drill-")
        .tempdir()
        .map_err(DrillError::io("creating the drill's temporary directory"))?;
    let peer_secret = tmp.path().join("peer.secret");
    write_private(&peer_secret, random_hex()?.as_bytes())?;
    let layout = Layout {
        bin: &opts.bin,
        root: tmp.path(),
        peer_secret: &peer_secret,
    };

    let mut proxies = Vec::new();
    for _ in &scenario.regions {
        proxies.push(Proxy::start().await?);
    }
    // One link proxy per ordered pair of regions (from, to), in front of `to`'s proxy: the
    // address `from` has for `to`, so a partition cuts exactly their replication link.
    let mut links: BTreeMap<(String, String), Proxy> = BTreeMap::new();
    for (from, _) in scenario.regions.iter().zip(&proxies) {
        for (to, to_proxy) in scenario.regions.iter().zip(&proxies) {
            if from.name != to.name {
                let link = Proxy::start().await?;
                link.set_target(&to_proxy.url())?;
                links.insert((from.name.clone(), to.name.clone()), link);
            }
        }
    }
    tracing::info!(regions = scenario.regions.len(), "starting regions");
    let starting = scenario.regions.iter().zip(proxies).map(|(spec, proxy)| {
        let peers: Vec<(String, String)> = links
            .iter()
            .filter(|((from, _), _)| *from == spec.name)
            .map(|((_, to), link)| (to.clone(), link.url()))
            .collect();
        let layout = &layout;
        async move { Region::start(spec, proxy, &peers, layout).await }
    });
    let mut regions = Vec::new();
    for r in futures::future::join_all(starting).await {
        regions.push(r?);
    }
    for (r, spec) in regions.iter_mut().zip(&scenario.regions) {
        if spec.pair.is_some() {
            r.wait_ready("/readyz/speaker").await?;
        }
    }

    let work = Arc::new(seed(scenario, &regions).await?);
    tracing::info!(secs = scenario.duration_secs, "load and faults start");
    let t0 = Instant::now();
    let duration = Duration::from_secs(scenario.duration_secs);
    let timeline = scenario.timeline();
    let pairs: BTreeMap<String, String> = scenario
        .regions
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.pair.clone()?)))
        .collect();
    let ((samples, skipped), faults) = tokio::join!(
        load::run(work.clone(), &scenario.load, t0, duration),
        apply_faults(&mut regions, &links, &pairs, &timeline, t0)
    );
    let readback = if scenario.load.speaker_enroll > 0 {
        Some(read_back(scenario, &mut regions, &work).await)
    } else {
        None
    };
    drop(work);
    let report = report::build(
        scenario,
        &opts.name,
        &samples,
        skipped,
        &faults,
        readback.as_ref(),
    );
    drop(links);
    drop(regions);
    if opts.keep_temp {
        let kept = tmp.keep();
        tracing::info!(dir = %kept.display(), "kept the drill's temporary directory");
        eprintln!("tandem drill: kept {}", kept.display());
    }
    write(&report, &opts.out)
}

fn entry(r: &Region, key: &str) -> RegionEntry {
    RegionEntry {
        name: r.name.clone(),
        endpoints: vec![r.proxy.url()],
        key: Some(key.to_owned()),
        key_file: None,
        cid: None,
        voice_deployment_id: None,
    }
}

fn client(scenario: &Scenario, regions: Vec<RegionEntry>) -> Result<TandemClient> {
    TandemClient::new(ClientConfig {
        regions,
        policy: scenario.policy.clone(),
        gateway_key: None,
        gateway_key_file: None,
    })
    .map_err(|e| DrillError::Setup(format!("client: {e}")))
}

async fn tts(c: &TandemClient, voice: &str, text: &str) -> Result<Bytes> {
    c.synthesize(&SynthesisRequest {
        ssml: ssml(voice, text),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: false,
    })
    .await
    .map(|a| a.value.audio)
    .map_err(|e| DrillError::Setup(format!("synthesizing the drill's audio: {e}")))
}

/// Resources in every region, the audio, and (for speaker load) a profile enrolled in the
/// primary and replicated to its pair.
async fn seed(scenario: &Scenario, regions: &[Region]) -> Result<Workload> {
    let mut entries = Vec::new();
    for r in regions {
        entries.push(entry(r, &r.create_resource("drill")?));
    }
    let voice = scenario.load.voice.clone();
    let primary_key = entries[0].key.clone().unwrap_or_default();
    let speaker_client = if scenario.load.speaker_verify + scenario.load.speaker_enroll > 0 {
        Some(client(scenario, vec![entries[0].clone()])?)
    } else {
        None
    };
    let client = client(scenario, entries)?;
    let stt_wav = tts(&client, &voice, STT_TEXT).await?;
    let probe_wav = tts(&client, &voice, PROBE).await?;
    let enroll_wav = if scenario.load.speaker_enroll > 0 {
        tts(&client, &voice, ENROL_MORE).await?
    } else {
        Bytes::new()
    };
    let mut profile_id = None;
    if let Some(sc) = &speaker_client {
        let created = speaker_call(
            sc,
            format!("{SPEAKER_BASE}?api-version=2021-09-05"),
            "application/json",
            Bytes::from_static(br#"{"locale":"en-us"}"#),
        )
        .await?;
        let id = created["profileId"]
            .as_str()
            .ok_or_else(|| DrillError::Setup("no profileId".into()))?
            .to_owned();
        for text in ENROL {
            let wav = tts(&client, &voice, text).await?;
            let path = format!("{SPEAKER_BASE}/{id}/enrollments?api-version=2021-09-05");
            speaker_call(sc, path, "audio/wav", wav).await?;
        }
        let all: Vec<&Region> = regions.iter().collect();
        if !replicated(&all).await {
            return Err(DrillError::Setup(
                "the speaker profile did not replicate to the pair within 60 s".into(),
            ));
        }
        profile_id = Some(id);
    }
    Ok(Workload {
        client,
        speaker_client,
        stt_wav,
        probe_wav,
        enroll_wav,
        profile_id,
        voice,
        primary_key,
        setup_enrollments: ENROL.len() as u64,
    })
}

async fn speaker_call(
    c: &TandemClient,
    path: String,
    content_type: &'static str,
    body: Bytes,
) -> Result<Value> {
    let a = c
        .forward(CallKind::Speaker, speaker_request(path, content_type, body))
        .await
        .map_err(|e| DrillError::Setup(format!("speaker setup: {e}")))?;
    if !a.value.status.is_success() {
        return Err(DrillError::Setup(format!(
            "speaker setup: {} answered {}",
            a.region, a.value.status
        )));
    }
    Ok(serde_json::from_slice(&a.value.body).unwrap_or(Value::Null))
}

/// Waits until `regions` hold the same speaker data (admin digest); false after 60 s.
async fn replicated(regions: &[&Region]) -> bool {
    let http = reqwest::Client::new();
    let digest = |r: &Region| {
        let req = http
            .get(format!("{}/admin/v1/replication", r.direct_url))
            .bearer_auth(&r.admin_token)
            .timeout(Duration::from_secs(5));
        async move {
            let v: Value = req.send().await.ok()?.json().await.ok()?;
            Some(v["digest"].clone())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for r in regions {
            seen.push(digest(r).await);
        }
        if seen.iter().all(|d| d.is_some() && *d == seen[0]) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After the run: waits for the live regions of the profile's pair to converge, then reads the
/// profile's enrollment count from each (directly, not through the proxies).
async fn read_back(scenario: &Scenario, regions: &mut [Region], w: &Workload) -> Readback {
    let home = &scenario.regions[0];
    let pair_names = [Some(&home.name), home.pair.as_ref()];
    let mut live = Vec::new();
    for r in regions.iter_mut() {
        if pair_names.contains(&Some(&r.name)) && r.is_running() {
            live.push(&*r);
        }
    }
    let converged = !live.is_empty() && replicated(&live).await;
    let mut count = BTreeMap::new();
    let http = reqwest::Client::new();
    for r in &live {
        let n = match &w.profile_id {
            Some(id) => {
                let req = http
                    .get(format!(
                        "{}{SPEAKER_BASE}/{id}?api-version=2021-09-05",
                        r.direct_url
                    ))
                    .header("ocp-apim-subscription-key", &w.primary_key)
                    .timeout(Duration::from_secs(10));
                async {
                    let resp = req.send().await.ok()?.error_for_status().ok()?;
                    resp.json::<Value>().await.ok()?["enrollmentsCount"].as_u64()
                }
                .await
            }
            None => None,
        };
        count.insert(r.name.clone(), n);
    }
    Readback {
        setup: w.setup_enrollments,
        count,
        converged,
    }
}

/// The age of the region's newest backup, from its `/status.json`.
async fn backup_age(r: &Region) -> Option<f64> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/status.json", r.direct_url))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["backup"]["lastSuccessAgeSecs"].as_f64()
}

async fn apply_faults(
    regions: &mut [Region],
    links: &BTreeMap<(String, String), Proxy>,
    pairs: &BTreeMap<String, String>,
    timeline: &[FaultSpec],
    t0: Instant,
) -> Vec<FaultRecord> {
    let mut out = Vec::new();
    for f in timeline {
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(f.at_secs)).await;
        let Some(r) = regions.iter_mut().find(|r| r.name == f.region) else {
            continue; // validated: not reached
        };
        let disruptive = f.action.is_disruptive();
        let backup_age_secs = if disruptive {
            backup_age(r).await
        } else {
            None
        };
        let at = t0.elapsed().as_secs_f64();
        tracing::info!(at, region = %r.name, action = %f.action.name(), "fault");
        let result = match &f.action {
            Action::Kill => {
                r.kill9();
                Ok(())
            }
            Action::Stop => r.signal(libc::SIGSTOP),
            Action::Cont => r.signal(libc::SIGCONT),
            Action::Restart => r.restart().await,
            Action::Blackhole => proxy(r, ProxyFault::Blackhole),
            Action::Status { status } => proxy(r, ProxyFault::Status(*status)),
            Action::Delay { delay_ms } => {
                proxy(r, ProxyFault::Delay(Duration::from_millis(*delay_ms)))
            }
            Action::Heal => proxy(r, ProxyFault::None),
            Action::Partition => partition(
                links,
                r,
                pairs.get(&f.region).map(String::as_str),
                ProxyFault::Partition,
            ),
            Action::HealPartition => partition(
                links,
                r,
                pairs.get(&f.region).map(String::as_str),
                ProxyFault::None,
            ),
        };
        out.push(FaultRecord {
            at_secs: f.at_secs,
            done_secs: t0.elapsed().as_secs_f64(),
            region: f.region.clone(),
            action: f.action.name(),
            disruptive,
            backup_age_secs,
            error: result.err().map(|e| e.to_string()),
        });
    }
    out
}

/// Sets `fault` on both links between `r` and `pair`.
fn partition(
    links: &BTreeMap<(String, String), Proxy>,
    r: &Region,
    pair: Option<&str>,
    fault: ProxyFault,
) -> Result<()> {
    let pair = pair.ok_or_else(|| DrillError::region(&r.name, "no pair to partition from"))?;
    for key in [
        (r.name.clone(), pair.to_owned()),
        (pair.to_owned(), r.name.clone()),
    ] {
        links
            .get(&key)
            .ok_or_else(|| DrillError::region(&r.name, format!("no link to {pair}")))?
            .set(fault.clone());
    }
    Ok(())
}

fn proxy(r: &Region, fault: ProxyFault) -> Result<()> {
    r.proxy.set(fault);
    Ok(())
}

fn write(report: &Report, out: &Path) -> Result<Outcome> {
    std::fs::create_dir_all(out).map_err(DrillError::io(format!("creating {}", out.display())))?;
    let json = out.join("report.json");
    let markdown = out.join("report.md");
    let chart = out.join("chart.svg");
    crate::chart::write_svg(report, &chart)?;
    let text =
        serde_json::to_string_pretty(report).map_err(|e| DrillError::Report(e.to_string()))?;
    std::fs::write(&json, text).map_err(DrillError::io(format!("writing {}", json.display())))?;
    std::fs::write(&markdown, report.markdown(Some("chart.svg")))
        .map_err(DrillError::io(format!("writing {}", markdown.display())))?;
    Ok(Outcome {
        report: report.clone(),
        json,
        markdown,
        chart,
    })
}
