//! Client-side continuity on real regions: the SDK and the gateway under kill -9, a hung
//! region, injected 503/429, failback, the custom-voice chain and caller errors.

mod common;
use common::*;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_client::{
    ClientConfig, ClientError, ClientEvent, RecognizeOptions, SynthesisRequest, TandemClient,
    VoiceLink,
};
use tandem_testkit::{Fault, FaultProxy, GatewayProcess};

const GATEWAY_KEY: &str = "gateway-test-key";

struct Entry<'a> {
    name: &'a str,
    endpoint: String,
    key: String,
    voice_deployment_id: Option<&'a str>,
}

fn regions_file(dir: &tempfile::TempDir, entries: &[Entry], policy: &str) -> PathBuf {
    let mut toml = format!("gateway_key = \"{GATEWAY_KEY}\"\n");
    for e in entries {
        toml.push_str(&format!(
            "[[regions]]\nname = \"{}\"\nendpoint = \"{}\"\nkey = \"{}\"\n",
            e.name, e.endpoint, e.key
        ));
        if let Some(d) = e.voice_deployment_id {
            toml.push_str(&format!("voice_deployment_id = \"{d}\"\n"));
        }
    }
    toml.push_str("[policy]\n");
    toml.push_str(policy);
    let path = dir.path().join("regions.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn entry<'a>(r: &'a RegionProcess, endpoint: Option<String>) -> Entry<'a> {
    Entry {
        name: &r.name,
        endpoint: endpoint.unwrap_or_else(|| r.url.clone()),
        key: r.create_resource("client").key1,
        voice_deployment_id: None,
    }
}

fn tts_request(text: &str) -> SynthesisRequest {
    SynthesisRequest {
        ssml: ssml("en-US-SltFlite", text),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: false,
    }
}

fn is_speech_wav(audio: &[u8]) -> bool {
    audio.len() > 16_000 && &audio[..4] == b"RIFF"
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>) -> Vec<ClientEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_primary_under_load_fails_no_call() {
    let (mut west, east, central) =
        tokio::join!(region("westus"), region("eastus"), region("centralus"));
    let dir = tempfile::tempdir().unwrap();
    let entries = [
        entry(&west, None),
        entry(&east, None),
        entry(&central, None),
    ];
    // A dead region refuses connections at once, so the per-try timeout plays no part in the
    // failover; it is generous because six concurrent recognitions on the two surviving regions
    // (one worker each, on a 2-core machine shared with the test itself) queue for seconds.
    let file = regions_file(
        &dir,
        &entries,
        "failback_after_ms = 600000\nstt_timeout_ms = 30000\n",
    );
    let client = TandemClient::new(ClientConfig::from_file(&file).unwrap()).unwrap();
    let gateway = GatewayProcess::start(std::path::Path::new(BIN), &file);
    let clip = biology()[0].clone();
    let clip_audio = Bytes::from(wav_bytes(&clip.path));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let after_kill = Arc::new(Mutex::new(Vec::<String>::new())); // regions that answered calls started after the kill
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let (client, stop, done, failures, after_kill, killed_at) = (
            client.clone(),
            stop.clone(),
            done.clone(),
            failures.clone(),
            after_kill.clone(),
            killed_at.clone(),
        );
        let (gw_url, clip, clip_audio) = (gateway.url.clone(), clip.clone(), clip_audio.clone());
        tasks.push(tokio::spawn(async move {
            let http = http();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let stt = i.is_multiple_of(4);
                let via_gateway = worker % 2 == 1;
                let result: Result<String, String> = if via_gateway {
                    let req = if stt {
                        http.post(stt_url(&gw_url, "language=en-US"))
                            .body(clip_audio.clone())
                    } else {
                        http.post(format!("{gw_url}/cognitiveservices/v1"))
                            .header("Content-Type", "application/ssml+xml")
                            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
                            .body(ssml("en-US-SltFlite", "Failover keeps every call."))
                    };
                    match req.header(KEY, GATEWAY_KEY).send().await {
                        Ok(r) if r.status() == 200 => {
                            let region =
                                r.headers()["x-tandem-region"].to_str().unwrap().to_owned();
                            let body = r.bytes().await.unwrap();
                            let ok = if stt {
                                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                                wer(&clip.transcript, v["DisplayText"].as_str().unwrap_or("")) < 0.5
                            } else {
                                is_speech_wav(&body)
                            };
                            if ok {
                                Ok(region)
                            } else {
                                Err(format!("wrong answer from {region}"))
                            }
                        }
                        Ok(r) => Err(format!("gateway {}", r.status())),
                        Err(e) => Err(format!("gateway transport: {e}")),
                    }
                } else if stt {
                    match client
                        .recognize(clip_audio.clone(), &RecognizeOptions::default())
                        .await
                    {
                        Ok(a)
                            if wer(
                                &clip.transcript,
                                a.value["DisplayText"].as_str().unwrap_or(""),
                            ) < 0.5 =>
                        {
                            Ok(a.region)
                        }
                        Ok(a) => Err(format!("wrong transcript from {}: {}", a.region, a.value)),
                        Err(e) => Err(format!("sdk: {e}")),
                    }
                } else {
                    match client
                        .synthesize(&tts_request("Failover keeps every call."))
                        .await
                    {
                        Ok(a) if is_speech_wav(&a.value.audio) => Ok(a.region),
                        Ok(a) => Err(format!("no speech from {}", a.region)),
                        Err(e) => Err(format!("sdk: {e}")),
                    }
                };
                match result {
                    Ok(region) => {
                        let k = *killed_at.lock().unwrap();
                        if k.is_some_and(|k| started > k) {
                            after_kill.lock().unwrap().push(region);
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    while done.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    *killed_at.lock().unwrap() = Some(Instant::now());
    west.kill9();
    let target = done.load(Ordering::SeqCst) + 60;
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    let after = after_kill.lock().unwrap();
    assert!(
        after.len() >= 40,
        "only {} calls completed after the kill",
        after.len()
    );
    assert!(
        after.iter().all(|r| r != "westus"),
        "a dead region answered: {after:?}"
    );
}

#[tokio::test]
async fn a_hung_primary_costs_one_per_try_timeout_then_is_skipped_until_failback() {
    let (west, east) = tokio::join!(region("westus"), region("eastus"));
    let dir = tempfile::tempdir().unwrap();
    let entries = [entry(&west, None), entry(&east, None)];
    let policy = "tts_timeout_ms = 1000\nsts_timeout_ms = 1000\nfailback_after_ms = 1500\nprobe_interval_ms = 100\n";
    let file = regions_file(&dir, &entries, policy);
    let client = TandemClient::new(ClientConfig::from_file(&file).unwrap()).unwrap();
    let mut rx = client.subscribe();

    let a = client.synthesize(&tts_request("warm up")).await.unwrap();
    assert_eq!(a.region, "westus");

    west.freeze(); // accepts TCP, never answers
    let t = Instant::now();
    let a = client
        .synthesize(&tts_request("the first call after the hang"))
        .await
        .unwrap();
    let first = t.elapsed();
    assert_eq!(a.region, "eastus");
    assert!(
        first < Duration::from_millis(1500),
        "first call took {first:?} (per-try timeout 1 s)"
    );

    for _ in 0..5 {
        let t = Instant::now();
        let a = client
            .synthesize(&tts_request("straight to the next region"))
            .await
            .unwrap();
        assert_eq!(a.region, "eastus");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "a later call waited {:?}",
            t.elapsed()
        );
    }

    west.thaw();
    let thawed = Instant::now();
    let deadline = thawed + Duration::from_secs(30);
    let back = loop {
        let a = client
            .synthesize(&tts_request("are we home yet"))
            .await
            .unwrap();
        if a.region == "westus" {
            break thawed.elapsed();
        }
        assert!(Instant::now() < deadline, "traffic never failed back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        back >= Duration::from_millis(1500),
        "failed back after {back:?}, before failback_after"
    );
    let ev = events(&mut rx);
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Trip { region, .. } if region == "westus")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Failback { to } if to == "westus")),
        "{ev:?}"
    );
}

#[tokio::test]
async fn injected_503s_and_429s_are_retried_then_failed_over() {
    let (west, east) = tokio::join!(region("westus"), region("eastus"));
    let proxy = FaultProxy::start(&west.url).await;
    let dir = tempfile::tempdir().unwrap();
    let entries = [entry(&west, Some(proxy.url())), entry(&east, None)];
    let file = regions_file(
        &dir,
        &entries,
        "failback_after_ms = 600000\nbreaker_consecutive_failures = 50\n",
    );
    let client = TandemClient::new(ClientConfig::from_file(&file).unwrap()).unwrap();
    let mut rx = client.subscribe();
    assert_eq!(
        client
            .synthesize(&tts_request("healthy"))
            .await
            .unwrap()
            .region,
        "westus"
    );
    events(&mut rx);

    proxy
        .set(Fault::Status {
            status: 503,
            retry_after: None,
        })
        .await;
    let a = client
        .synthesize(&tts_request("through a 503"))
        .await
        .unwrap();
    assert_eq!(a.region, "eastus");
    let ev = events(&mut rx);
    let retries = ev
        .iter()
        .filter(|e| matches!(e, ClientEvent::Retry { region, .. } if region == "westus"))
        .count();
    assert!(retries >= 1, "503 was not retried: {ev:?}");
    assert!(ev.iter().any(|e| matches!(e, ClientEvent::Failover { from, to } if from == "westus" && to == "eastus")), "{ev:?}");

    proxy
        .set(Fault::Status {
            status: 429,
            retry_after: Some(1),
        })
        .await;
    let t = Instant::now();
    let a = client
        .synthesize(&tts_request("through a 429"))
        .await
        .unwrap();
    assert_eq!(a.region, "eastus");
    let ev = events(&mut rx);
    let delays: Vec<Duration> = ev
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Retry { region, delay, .. } if region == "westus" => Some(*delay),
            _ => None,
        })
        .collect();
    assert!(!delays.is_empty(), "429 was not retried: {ev:?}");
    assert!(
        delays.iter().all(|d| *d >= Duration::from_secs(1)),
        "Retry-After ignored: {delays:?}"
    );
    assert!(t.elapsed() >= Duration::from_secs(1));

    // The primary is fine again: a fresh client (no breaker history) goes straight to it.
    proxy.set(Fault::None).await;
    let fresh = TandemClient::new(ClientConfig::from_file(&file).unwrap()).unwrap();
    assert_eq!(
        fresh
            .synthesize(&tts_request("healthy again"))
            .await
            .unwrap()
            .region,
        "westus"
    );
}

#[tokio::test]
async fn custom_voice_falls_back_along_the_chain_and_caller_errors_never_fail_over() {
    let (west, east) = tokio::join!(region("westus"), region("eastus"));
    let dir = tempfile::tempdir().unwrap();
    let mut w = entry(&west, None);
    w.voice_deployment_id = Some("cv-west");
    let mut e = entry(&east, None);
    e.voice_deployment_id = Some("cv-east");
    let file = regions_file(&dir, &[w, e], "");
    let client = TandemClient::new(ClientConfig::from_file(&file).unwrap()).unwrap();
    let mut rx = client.subscribe();

    // Neither region has the custom voice deployed: the chain ends at the public voice.
    let req = SynthesisRequest {
        ssml: ssml(
            "MyBrandVoiceNeural",
            "Custom voice or nothing? Neither: a public voice.",
        ),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: true,
    };
    let a = client.synthesize(&req).await.unwrap();
    assert!(is_speech_wav(&a.value.audio));
    assert_eq!(
        a.value.link,
        VoiceLink::Public {
            region: "westus".into()
        },
        "{:?}",
        a.value.link
    );

    // A caller error is returned at once, from the primary, and never failed over.
    events(&mut rx);
    let bad = SynthesisRequest {
        ssml: "<speak><voice>no name</voice></speak>".into(),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: false,
    };
    match client.synthesize(&bad).await {
        Err(ClientError::Caller { status, region, .. }) => {
            assert_eq!(status, 400);
            assert_eq!(region, "westus");
        }
        other => panic!("expected a caller error, got {other:?}"),
    }
    let ev = events(&mut rx);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, ClientEvent::Failover { .. } | ClientEvent::Retry { .. })),
        "{ev:?}"
    );

    // Through the gateway: its own key, tokens, pass-through of caller errors, status.
    let gateway = GatewayProcess::start(std::path::Path::new(BIN), &file);
    let http = http();
    let r = http
        .get(format!("{}/cognitiveservices/voices/list", gateway.url))
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;
    let r = http
        .get(format!("{}/cognitiveservices/voices/list", gateway.url))
        .header(KEY, "wrong")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 401).await;
    let token = http
        .post(format!("{}/sts/v1.0/issueToken", gateway.url))
        .header(KEY, GATEWAY_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let clip = &biology()[0];
    let r = http
        .post(stt_url(&gateway.url, "language=en-US&format=detailed"))
        .bearer_auth(&token)
        .body(wav_bytes(&clip.path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-region"], "westus");
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        wer(&clip.transcript, v["NBest"][0]["Display"].as_str().unwrap()) < 0.5,
        "{v}"
    );
    let r = http
        .post(format!("{}/cognitiveservices/v1", gateway.url))
        .header(KEY, GATEWAY_KEY)
        .header("Content-Type", "application/ssml+xml")
        .body("<speak><voice>no name</voice></speak>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-tandem-region"], "westus");
    let msg = assert_azure_error(r, 400).await;
    assert!(
        msg.contains("name"),
        "the region's own message passes through: {msg}"
    );
    let status: serde_json::Value = http
        .get(format!("{}/status", gateway.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["regions"].as_array().unwrap().len(), 2, "{status}");
    let metrics = http
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tandem_gateway_requests_total") && metrics.contains("tandem_client_"),
        "{metrics}"
    );
}
