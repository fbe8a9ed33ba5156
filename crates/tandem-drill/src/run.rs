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
use crate::lag;
use crate::load::{self, speaker_request, ssml, GatewayTarget, Workload};
use crate::region::{random_hex, write_private, GatewayProcess, Layout, Region};
use crate::report::{self, FaultRecord, Readback, Report};
use crate::scenario::{Action, FaultSpec, Scenario};
use crate::seed;
use tandem_faults::{Proxy, ProxyFault};

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
    /// The scenario file's directory: `[seed]` paths are relative to it.
    pub base_dir: PathBuf,
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
    /// `chart.png` (`None` when no font was found for its text; the warning said which
    /// package to install).
    pub png: Option<PathBuf>,
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
        base_dir: &opts.base_dir,
    };

    let mut proxies = Vec::new();
    for _ in &scenario.regions {
        proxies.push(Proxy::start().await?);
    }
    // One link proxy per ordered pair of regions the drill starts (from, to), in front of
    // `to`'s proxy: the address `from` has for `to`, so a partition cuts exactly their
    // replication link. Existing endpoints have their own peers, out of the drill's reach.
    let mut links: BTreeMap<(String, String), Proxy> = BTreeMap::new();
    for (from, _) in scenario.regions.iter().zip(&proxies) {
        for (to, to_proxy) in scenario.regions.iter().zip(&proxies) {
            if from.name != to.name && !from.is_existing() && !to.is_existing() {
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
        async move {
            if spec.is_existing() {
                Region::existing(spec, proxy, layout).await
            } else {
                Region::start(spec, proxy, &peers, layout).await
            }
        }
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

    let work = Arc::new(seed(scenario, opts, &regions, tmp.path()).await?);
    let mut lag_start = BTreeMap::new();
    for r in &regions {
        lag_start.insert(r.name.clone(), lag_histogram(r).await);
    }
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
        // A region restarted during the run has a new histogram: its own figures are the run's.
        for f in faults.iter().filter(|f| f.action == "restart") {
            lag_start.remove(&f.region);
        }
        Some(read_back(scenario, &mut regions, &work, &lag_start).await)
    } else {
        None
    };
    // Stops the gateway.
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

/// Resources in every region, the audio, the custom model and voice the load uses (in the
/// primary and its pair), a gateway when part of the load goes through one, and (for speaker
/// load) a profile enrolled in the primary and replicated to its pair.
async fn seed(
    scenario: &Scenario,
    opts: &Options,
    regions: &[Region],
    root: &Path,
) -> Result<Workload> {
    let mut entries = Vec::new();
    for r in regions {
        entries.push(entry(r, &r.resource_key("drill")?));
    }
    let load = &scenario.load;
    let http = reqwest::Client::new();
    // The pair of the primary holds the copies.
    let pair_idx = scenario.regions[0]
        .pair
        .as_ref()
        .and_then(|p| regions.iter().position(|r| &r.name == p));
    let target = |i: usize| seed::Target {
        region: &regions[i].name,
        url: &regions[i].direct_url,
        key: entries[i].key.as_deref().unwrap_or_default(),
    };
    let mut custom_clips = Vec::new();
    let mut cids = None;
    if load.stt_custom > 0 {
        let pair = pair_idx.ok_or_else(|| DrillError::Setup("no pair for custom speech".into()))?;
        let dir = match &scenario.seed.custom_speech_data {
            Some(d) => opts.base_dir.join(d),
            None => std::env::var_os("TANDEM_SHARED_DATA")
                .map(|d| PathBuf::from(d).join("custom-speech-biology"))
                .ok_or_else(|| {
                    DrillError::Setup(
                        "stt_custom needs the custom speech dataset: set [seed] \
                         custom_speech_data or TANDEM_SHARED_DATA"
                            .into(),
                    )
                })?,
        };
        let data = seed::SpeechData::read(&dir)?;
        cids = Some(seed::custom_speech(&http, &target(0), &target(pair), &data).await?);
        custom_clips = data.clips;
    }
    let mut deployments = None;
    if load.tts_custom > 0 {
        let pair = pair_idx.ok_or_else(|| DrillError::Setup("no pair for custom voice".into()))?;
        let dir = scenario
            .seed
            .model_dir
            .as_ref()
            .map(|d| opts.base_dir.join(d))
            .unwrap_or_else(tandem_core::default_model_dir);
        let data = tokio::task::spawn_blocking(move || seed::VoiceData::make(&dir))
            .await
            .map_err(|e| DrillError::Setup(format!("making the voice's recordings: {e}")))??;
        deployments = Some(seed::custom_voice(&http, &target(0), &target(pair), &data).await?);
    }
    if let Some(pair) = pair_idx {
        if let Some((home, secondary)) = cids {
            entries[0].cid = Some(home);
            entries[pair].cid = Some(secondary);
        }
        if let Some((home, secondary)) = deployments {
            entries[0].voice_deployment_id = Some(home);
            entries[pair].voice_deployment_id = Some(secondary);
        }
    }
    let home_cid = entries[0].cid.clone();
    let voice = load.voice.clone();
    let primary_key = entries[0].key.clone().unwrap_or_default();
    let speaker_client = if load.speaker_verify + load.speaker_enroll > 0 {
        Some(client(scenario, vec![entries[0].clone()])?)
    } else {
        None
    };
    let gateway = if load.gateway_share > 0.0 {
        // With custom speech load, the gateway knows the regions' `cid`s and serves the custom
        // model (see `Kind::via_gateway`).
        let regions = entries.clone();
        let config = ClientConfig {
            regions,
            policy: scenario.policy.clone(),
            gateway_key: None,
            gateway_key_file: None,
        };
        let process = GatewayProcess::start(&opts.bin, root, &config).await?;
        tracing::info!(url = %process.url, "gateway started");
        Some(process)
    } else {
        None
    };
    let client = client(scenario, entries)?;
    let stt_wav = tts(&client, &voice, STT_TEXT).await?;
    let probe_wav = tts(&client, &voice, PROBE).await?;
    let enroll_wav = if load.speaker_enroll > 0 {
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
        // The primary and its pair: by their replication digests, or (an existing region
        // without admin token) by the profile's enrollments, readable in both.
        let home_pair = [Some(0), pair_idx].map(|i| i.map(|i| &regions[i]));
        let home_pair: Vec<&Region> = home_pair.into_iter().flatten().collect();
        let same = match replicated(&home_pair).await {
            Some(same) => same,
            None => profile_everywhere(&home_pair, &id, &primary_key, ENROL.len() as u64).await,
        };
        if !same {
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
        custom_clips,
        gateway: gateway.map(|process| GatewayTarget {
            url: process.url.clone(),
            home_cid: home_cid.clone(),
            http: reqwest::Client::new(),
            _process: process,
        }),
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

/// Waits until `regions` hold the same speaker data (admin digest); false after 60 s. `None`
/// when one of them is an existing endpoint given without `admin_token_file`: its digest
/// cannot be read, so whether they converged is not known.
async fn replicated(regions: &[&Region]) -> Option<bool> {
    let tokens: Vec<&str> = regions
        .iter()
        .map(|r| r.admin_token.as_deref())
        .collect::<Option<_>>()?;
    let http = reqwest::Client::new();
    let digest = |r: &Region, token: &str| {
        let req = http
            .get(format!("{}/admin/v1/replication", r.direct_url))
            .bearer_auth(token)
            .timeout(Duration::from_secs(5));
        async move {
            let v: Value = req.send().await.ok()?.json().await.ok()?;
            Some(v["digest"].clone())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for (r, token) in regions.iter().zip(&tokens) {
            seen.push(digest(r, token).await);
        }
        if seen.iter().all(|d| d.is_some() && *d == seen[0]) {
            return Some(true);
        }
        if Instant::now() > deadline {
            return Some(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The profile's `enrollmentsCount` in `r` (directly, not through the proxy).
async fn enrollments(http: &reqwest::Client, r: &Region, id: &str, key: &str) -> Option<u64> {
    let resp = http
        .get(format!(
            "{}{SPEAKER_BASE}/{id}?api-version=2021-09-05",
            r.direct_url
        ))
        .header("ocp-apim-subscription-key", key)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    resp.json::<Value>().await.ok()?["enrollmentsCount"].as_u64()
}

/// Setup without admin digests: waits until every region shows the profile with `n`
/// enrollments; false after 60 s.
async fn profile_everywhere(regions: &[&Region], id: &str, key: &str, n: u64) -> bool {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all = true;
        for r in regions {
            all &= enrollments(&http, r, id, key).await == Some(n);
        }
        if all {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After the run: waits for the live regions of the profile's pair to converge, then reads the
/// profile's enrollment count from each (directly, not through the proxies). An existing
/// region counts as live. When convergence cannot be checked (an existing region without
/// `admin_token_file`), nothing is read: the counts are unknown, so the loss is not measured
/// (a count read before convergence could report an enrollment still in flight as lost).
async fn read_back(
    scenario: &Scenario,
    regions: &mut [Region],
    w: &Workload,
    lag_start: &BTreeMap<String, Option<lag::Histogram>>,
) -> Readback {
    // `lag_start` has no entry for a region restarted during the run.
    let home = &scenario.regions[0];
    let pair_names = [Some(&home.name), home.pair.as_ref()];
    let mut live = Vec::new();
    for r in regions.iter_mut() {
        if pair_names.contains(&Some(&r.name)) && r.is_running() {
            live.push(&*r);
        }
    }
    let converged = if live.is_empty() {
        Some(false)
    } else {
        replicated(&live).await
    };
    if converged.is_none() {
        tracing::warn!(
            "an existing region of the pair has no admin_token_file: convergence is not \
             checked and enrollments are not read back (not measured)"
        );
    }
    let mut count = BTreeMap::new();
    let http = reqwest::Client::new();
    for r in &live {
        let n = match (&w.profile_id, converged) {
            (Some(id), Some(_)) => enrollments(&http, r, id, &w.primary_key).await,
            _ => None,
        };
        count.insert(r.name.clone(), n);
    }
    let mut replication_lag = BTreeMap::new();
    for r in &live {
        if let Some(end) = lag_histogram(r).await {
            let lag = match lag_start.get(&r.name) {
                Some(start) => lag::LagSeen::between(start.as_ref(), &end),
                None => lag::LagSeen {
                    restarted: true,
                    ..lag::LagSeen::between(None, &end)
                },
            };
            replication_lag.insert(r.name.clone(), lag);
        }
    }
    Readback {
        setup: w.setup_enrollments,
        count,
        replication_lag,
        converged,
    }
}

/// `GET {direct_url}{path}` on the region itself; `None` unless it answers 2xx in `timeout`.
async fn get_direct(r: &Region, path: &str, timeout: Duration) -> Option<reqwest::Response> {
    reqwest::Client::new()
        .get(format!("{}{path}", r.direct_url))
        .timeout(timeout)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()
}

/// The region's replication lag histogram, from its `/metrics` (`None`: not readable).
async fn lag_histogram(r: &Region) -> Option<lag::Histogram> {
    let text = get_direct(r, "/metrics", Duration::from_secs(5))
        .await?
        .text()
        .await
        .ok()?;
    lag::parse(&text)
}

/// The age of the region's newest backup, from its `/status.json`.
async fn backup_age(r: &Region) -> Option<f64> {
    let v: Value = get_direct(r, "/status.json", Duration::from_secs(2))
        .await?
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
    let png = out.join("chart.png");
    let png = match crate::chart::write_png(report, &png) {
        Ok(()) => Some(png),
        Err(DrillError::ChartFont(why)) => {
            tracing::warn!(%why, "no PNG chart");
            eprintln!("tandem drill: no chart.png: {why}");
            None
        }
        Err(e) => return Err(e),
    };
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
        png,
    })
}
