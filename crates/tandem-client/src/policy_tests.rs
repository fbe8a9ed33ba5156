//! The policy engine end to end, through [`TandemClient`] over the scripted fake transport, on
//! paused tokio time (no real sleeps).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::Receiver;
use tokio::time::{advance, sleep, Instant};

use crate::fake::{Fake, Step};
use crate::*;

const NAMES: [&str; 3] = ["westus", "eastus", "centralus"];

fn config(n: usize, tweak: impl FnOnce(&mut Policy)) -> ClientConfig {
    let mut policy = Policy {
        breaker_jitter: 0.0,
        ..Policy::default()
    };
    tweak(&mut policy);
    ClientConfig {
        regions: (0..n)
            .map(|i| RegionEntry {
                name: NAMES[i].into(),
                endpoints: vec![format!("http://127.0.0.1:{}", 5001 + i)],
                key: Some(format!("key{i}")),
                key_file: None,
                cid: None,
                voice_deployment_id: None,
            })
            .collect(),
        policy,
        gateway_key: None,
        gateway_key_file: None,
    }
}

fn client(n: usize, tweak: impl FnOnce(&mut Policy)) -> (TandemClient, Arc<Fake>) {
    let fake = Arc::new(Fake::new(n));
    let c = TandemClient::with_transport(config(n, tweak), fake.clone()).unwrap();
    (c, fake)
}

fn events(rx: &mut Receiver<ClientEvent>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

async fn stt(c: &TandemClient) -> Result<Answered<serde_json::Value>> {
    c.recognize(
        Bytes::from_static(b"RIFF-audio"),
        &RecognizeOptions::default(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_on_the_same_region() {
    let (c, fake) = client(2, |_| {});
    let mut rx = c.subscribe();
    fake.script(0, [Step::Status(503), Step::Fail(TransportError::Reset)]);
    let a = stt(&c).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.attempts, a.failovers),
        ("westus", 3, 0)
    );
    let seen = fake.data_seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.region == 0 && s.body == Bytes::from_static(b"RIFF-audio")));
    assert!(seen[0].path.starts_with(
        "/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=simple"
    ));
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer tok-0-1"));
    let retries: Vec<_> = events(&mut rx)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Retry { attempt, delay, .. } => Some((attempt, delay)),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert!(retries[0].1 <= Duration::from_millis(25) && retries[1].1 <= Duration::from_millis(50));
    assert!(c.render_metrics().contains("tandem_client_retries_total 2"));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let (c, fake) = client(1, |_| {});
    fake.script(0, [Step::RetryAfter(429, 3)]);
    let start = Instant::now();
    let a = stt(&c).await.unwrap();
    assert_eq!(a.attempts, 2);
    assert!(start.elapsed() >= Duration::from_secs(3));

    // Longer than a whole try (STT: 10 s): not waited for, the next region answers.
    let (c, fake) = client(2, |_| {});
    fake.script(0, [Step::RetryAfter(503, 60)]);
    let start = Instant::now();
    let a = stt(&c).await.unwrap();
    assert_eq!((a.region.as_str(), a.attempts), ("eastus", 2));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_per_try_and_transient() {
    let (c, fake) = client(1, |p| {
        p.stt_timeout_ms = 200;
        p.failfast_on_hang = false;
    });
    fake.script(0, [Step::Hang]);
    let start = Instant::now();
    let a = stt(&c).await.unwrap();
    assert_eq!(a.attempts, 2);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(300),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_region_costs_one_timeout_then_is_skipped() {
    let (c, fake) = client(2, |p| p.stt_timeout_ms = 1000);
    let mut rx = c.subscribe();
    stt(&c).await.unwrap();
    fake.set_ready(0, false);
    fake.script(0, [Step::Hang]);
    let start = Instant::now();
    let a = stt(&c).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.attempts, a.failovers),
        ("eastus", 2, 1)
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(1000),
        "one per-try timeout"
    );
    assert!(events(&mut rx)
        .iter()
        .any(|e| matches!(e, ClientEvent::Trip { region, .. } if region == "westus")));
    let before = fake.data_seen().len();
    let start = Instant::now();
    assert_eq!(stt(&c).await.unwrap().region, "eastus");
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the hung region is skipped"
    );
    assert_eq!(fake.data_seen().len(), before + 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_retried_while_the_region_answers_other_calls() {
    let (c, fake) = client(2, |p| p.stt_timeout_ms = 1000);
    stt(&c).await.unwrap();
    fake.script(0, [Step::Hang, Step::Slow(Duration::from_millis(100))]);
    let (a, b) = tokio::join!(stt(&c), stt(&c));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.region.as_str(), a.attempts),
        ("westus", 2),
        "retried on the same region"
    );
    assert_eq!((b.region.as_str(), b.attempts), ("westus", 1));
    assert_eq!(c.status()[0].state, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_fail_over_with_the_next_regions_token() {
    let (c, fake) = client(2, |_| {});
    let mut rx = c.subscribe();
    fake.script(0, [Step::Status(500), Step::Status(502), Step::Status(504)]);
    let a = stt(&c).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.attempts, a.failovers),
        ("eastus", 4, 1)
    );
    let last = fake.data_seen().pop().unwrap();
    assert_eq!(
        (last.region, last.auth.as_deref()),
        (1, Some("Bearer tok-1-1"))
    );
    let evs = events(&mut rx);
    assert!(evs.contains(&ClientEvent::Failover {
        from: "westus".into(),
        to: "eastus".into()
    }));
    assert!(evs.contains(&ClientEvent::TokenRefresh {
        region: "eastus".into(),
        node: "http://127.0.0.1:5002".into()
    }));
    assert_eq!(c.status()[0].consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn persistent_failures_fail_over_at_once() {
    let (c, fake) = client(3, |_| {});
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    fake.script(1, [Step::Fail(TransportError::Dns)]);
    let a = stt(&c).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.attempts, a.failovers),
        ("centralus", 3, 2)
    );
    let (c, fake) = client(2, |_| {});
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    fake.script(1, [Step::Fail(TransportError::Tls)]);
    match stt(&c).await {
        Err(ClientError::AllRegionsFailed { attempts: 2, last }) => {
            assert!(last.contains("eastus"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn caller_errors_return_at_once_and_never_fail_over() {
    for status in [400, 403, 404, 413, 415] {
        let (c, fake) = client(2, |_| {});
        fake.script(0, [Step::Status(status)]);
        match stt(&c).await {
            Err(ClientError::Caller {
                status: s,
                code,
                region,
                ..
            }) => {
                assert_eq!(
                    (s, code.as_str(), region.as_str()),
                    (status, format!("Code{status}").as_str(), "westus")
                );
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(fake.data_seen().len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn unauthorized_refreshes_the_token_once() {
    let (c, fake) = client(2, |_| {});
    fake.script(0, [Step::Status(401)]);
    let a = stt(&c).await.unwrap();
    assert_eq!((a.region.as_str(), a.attempts), ("westus", 2));
    let seen = fake.data_seen();
    assert_eq!(seen[0].auth.as_deref(), Some("Bearer tok-0-1"));
    assert_eq!(seen[1].auth.as_deref(), Some("Bearer tok-0-2"));

    fake.script(0, [Step::Status(401), Step::Status(401)]);
    match stt(&c).await {
        Err(ClientError::Unauthorized { region, .. }) => assert_eq!(region, "westus"),
        other => panic!("{other:?}"),
    }
    assert!(
        fake.data_seen().iter().all(|s| s.region == 0),
        "a 401 is not a failover"
    );

    let (c, fake) = client(2, |_| {});
    fake.script_sts(0, [Step::Status(401)]);
    assert!(matches!(
        stt(&c).await,
        Err(ClientError::Unauthorized { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn tokens_are_cached_and_refreshed_before_expiry() {
    let (c, fake) = client(1, |_| {});
    stt(&c).await.unwrap();
    stt(&c).await.unwrap();
    assert_eq!(fake.issued(0), 1);
    advance(Duration::from_secs(539)).await;
    stt(&c).await.unwrap();
    assert_eq!(fake.issued(0), 1, "still fresh 61 s before expiry");
    advance(Duration::from_secs(2)).await;
    stt(&c).await.unwrap();
    assert_eq!(
        fake.issued(0),
        2,
        "refreshed inside the 60 s margin, before expiry"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_budget_stops_retry_storms() {
    let (c, fake) = client(1, |p| {
        p.retry_budget_min_per_sec = 2;
        p.retry_budget_ratio = 0.0;
        p.breaker_consecutive_failures = 1000;
        p.max_attempts = 10;
    });
    fake.script(0, std::iter::repeat_n(Step::Status(503), 10));
    assert!(stt(&c).await.is_err());
    // Two retries from the budget (a little refill during their backoff may add one).
    let n = fake.data_seen().len();
    assert!((3..=4).contains(&n), "{n} attempts");
}

#[tokio::test(start_paused = true)]
async fn breaker_trips_then_probes_and_fails_back_after_the_healthy_period() {
    let (c, fake) = client(2, |_| {});
    let mut rx = c.subscribe();
    fake.set_ready(0, false);
    for _ in 0..5 {
        fake.script(0, [Step::Fail(TransportError::Refused)]);
        assert_eq!(stt(&c).await.unwrap().region, "eastus");
    }
    assert!(events(&mut rx).contains(&ClientEvent::Trip {
        region: "westus".into(),
        open_for: Duration::from_secs(1)
    }));
    assert_eq!(c.status()[0].state, BreakerState::Open);
    assert!(c.status()[1].preferred);
    let before = fake.data_seen().len();
    assert_eq!(stt(&c).await.unwrap().region, "eastus");
    assert_eq!(
        fake.data_seen().len(),
        before + 1,
        "an open region is skipped"
    );

    // The first probe after 1 s fails: open again for 2 s.
    sleep(Duration::from_millis(1600)).await;
    assert!(events(&mut rx).contains(&ClientEvent::Trip {
        region: "westus".into(),
        open_for: Duration::from_secs(2)
    }));
    fake.set_ready(0, true);
    sleep(Duration::from_millis(2500)).await;
    assert_eq!(c.status()[0].state, BreakerState::Recovering);
    assert_eq!(stt(&c).await.unwrap().region, "eastus", "no failback yet");
    sleep(Duration::from_millis(8500)).await;
    assert_eq!(
        c.status()[0].state,
        BreakerState::Recovering,
        "not before failback_after"
    );
    assert_eq!(stt(&c).await.unwrap().region, "eastus");
    sleep(Duration::from_millis(1500)).await;
    assert!(events(&mut rx).contains(&ClientEvent::Failback {
        to: "westus".into()
    }));
    assert_eq!(c.status()[0].state, BreakerState::Closed);
    assert!(c.status()[0].preferred);
    assert_eq!(stt(&c).await.unwrap().region, "westus");
    let m = c.render_metrics();
    assert!(m.contains("tandem_client_failbacks_total 1"), "{m}");
    assert!(m.contains("tandem_client_breaker_trips_total 2"), "{m}");
    assert!(
        m.contains(r#"tandem_client_breaker_state{region="westus"} 0"#),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn all_regions_open_fails_fast() {
    let (c, fake) = client(1, |p| p.breaker_consecutive_failures = 1);
    fake.set_ready(0, false);
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    assert!(stt(&c).await.is_err());
    match stt(&c).await {
        Err(ClientError::AllRegionsFailed { attempts: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn hedging_sends_slow_calls_to_the_next_region() {
    let (c, fake) = client(2, |p| p.hedge_stt_ms = Some(200));
    let mut rx = c.subscribe();
    fake.script(0, [Step::Slow(Duration::from_secs(3))]);
    let start = Instant::now();
    let a = stt(&c).await.unwrap();
    assert_eq!(a.region, "eastus");
    assert!(start.elapsed() < Duration::from_millis(300));
    assert!(events(&mut rx).contains(&ClientEvent::Hedge {
        from: "westus".into(),
        to: "eastus".into()
    }));

    // Under the threshold, no hedge.
    fake.script(0, [Step::Slow(Duration::from_millis(150))]);
    let a = stt(&c).await.unwrap();
    assert_eq!(a.region, "westus");
    assert!(!events(&mut rx)
        .iter()
        .any(|e| matches!(e, ClientEvent::Hedge { .. })));

    // Off by default: the slow region answers.
    let (c, fake) = client(2, |_| {});
    fake.script(0, [Step::Slow(Duration::from_secs(3))]);
    assert_eq!(stt(&c).await.unwrap().region, "westus");
}

fn custom_voice(cfg: &mut ClientConfig) {
    cfg.regions[0].voice_deployment_id = Some("dep-w".into());
    cfg.regions[1].voice_deployment_id = Some("dep-e".into());
}

#[tokio::test(start_paused = true)]
async fn voice_chain_falls_from_custom_to_secondary_to_public() {
    let req = SynthesisRequest {
        ssml: r#"<speak><voice name="MyVoice">hello</voice></speak>"#.into(),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: true,
    };
    let fake = Arc::new(Fake::new(3));
    let mut cfg = config(3, |_| {});
    custom_voice(&mut cfg);
    let c = TandemClient::with_transport(cfg, fake.clone()).unwrap();

    let a = c.synthesize(&req).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::Custom {
            region: "westus".into()
        }
    );
    assert_eq!(
        fake.data_seen()[0].path,
        "/cognitiveservices/v1?deploymentId=dep-w"
    );

    fake.script(0, [Step::Status(404)]);
    let a = c.synthesize(&req).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::CustomSecondary {
            region: "eastus".into()
        }
    );
    assert_eq!(
        fake.data_seen().last().unwrap().path,
        "/cognitiveservices/v1?deploymentId=dep-e"
    );

    fake.script(0, [Step::Status(404)]);
    fake.script(1, [Step::Status(400)]);
    let a = c.synthesize(&req).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::Public {
            region: "westus".into()
        }
    );
    let last = fake.data_seen().pop().unwrap();
    assert_eq!(last.path, "/cognitiveservices/v1");
    assert_eq!(
        last.body,
        Bytes::from(r#"<speak><voice name="en-US-SltFlite">hello</voice></speak>"#)
    );
    assert_eq!(a.failovers, 2);
    // Each link that answered is counted once, with its region.
    let metrics = c.render_metrics();
    for (link, region) in [
        ("custom", "westus"),
        ("custom-secondary", "eastus"),
        ("public", "westus"),
    ] {
        let line =
            format!("tandem_client_voice_answers_total{{link=\"{link}\",region=\"{region}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }

    // Other caller errors are returned, not advanced past.
    fake.script(0, [Step::Status(413)]);
    assert!(matches!(
        c.synthesize(&req).await,
        Err(ClientError::Caller { status: 413, .. })
    ));

    // Without prefer_custom_voice: the SSML as given, no deploymentId.
    let plain = SynthesisRequest {
        prefer_custom_voice: false,
        ..req.clone()
    };
    let a = c.synthesize(&plain).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::Public {
            region: "westus".into()
        }
    );
    let last = fake.data_seen().pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.body),
        ("/cognitiveservices/v1", Bytes::from(req.ssml.clone()))
    );
}

#[tokio::test(start_paused = true)]
async fn voice_chain_with_open_breakers_names_the_secondary_and_rewrites_for_the_public_voice() {
    let req = SynthesisRequest {
        ssml: r#"<speak><voice name="MyVoice">hello</voice></speak>"#.into(),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: true,
    };
    let fake = Arc::new(Fake::new(3));
    let mut cfg = config(3, |p| p.breaker_consecutive_failures = 1);
    custom_voice(&mut cfg);
    let c = TandemClient::with_transport(cfg, fake.clone()).unwrap();

    // westus dies: its breaker opens on the first refusal.
    fake.set_ready(0, false);
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    let a = c.synthesize(&req).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::CustomSecondary {
            region: "eastus".into()
        }
    );
    // The next call skips westus; eastus is still the secondary link, not the primary.
    let a = c.synthesize(&req).await.unwrap();
    assert_eq!(
        a.value.link,
        VoiceLink::CustomSecondary {
            region: "eastus".into()
        }
    );
    assert_eq!(a.failovers, 0);
    assert_eq!(
        fake.data_seen().last().unwrap().path,
        "/cognitiveservices/v1?deploymentId=dep-e"
    );

    // eastus dies too. With both custom regions skipped, the public link still gets the
    // public voice, never the custom voice's name.
    fake.set_ready(1, false);
    fake.script(1, [Step::Fail(TransportError::Refused)]);
    for _ in 0..2 {
        let a = c.synthesize(&req).await.unwrap();
        assert_eq!(
            a.value.link,
            VoiceLink::Public {
                region: "centralus".into()
            }
        );
        let last = fake.data_seen().pop().unwrap();
        assert_eq!(
            (last.region, last.path.as_str()),
            (2, "/cognitiveservices/v1")
        );
        assert_eq!(
            last.body,
            Bytes::from(r#"<speak><voice name="en-US-SltFlite">hello</voice></speak>"#)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn forward_passes_caller_errors_through_and_adds_cid_and_token() {
    let fake = Arc::new(Fake::new(2));
    let mut cfg = config(2, |_| {});
    cfg.regions[0].cid = Some("my cid".into());
    let c = TandemClient::with_transport(cfg, fake.clone()).unwrap();
    let mut headers = ::http::HeaderMap::new();
    headers.insert("ocp-apim-subscription-key", "gateway-key".parse().unwrap());
    headers.insert("content-type", "audio/wav".parse().unwrap());
    let req = ForwardRequest {
        method: ::http::Method::POST,
        path_and_query: "/speech/recognition/conversation/cognitiveservices/v1?language=en-US"
            .into(),
        headers,
        body: Bytes::from_static(b"wav"),
    };
    let a = c.forward(CallKind::Stt, req.clone()).await.unwrap();
    assert_eq!(a.value.status, 200);
    let seen = fake.data_seen().pop().unwrap();
    assert_eq!(
        seen.path,
        "/speech/recognition/conversation/cognitiveservices/v1?language=en-US&cid=my%20cid"
    );
    assert_eq!(seen.auth.as_deref(), Some("Bearer tok-0-1"));

    fake.script(0, [Step::Status(415)]);
    let a = c.forward(CallKind::Stt, req.clone()).await.unwrap();
    assert_eq!(
        (a.value.status.as_u16(), a.region.as_str(), a.failovers),
        (415, "westus", 0)
    );
    assert!(String::from_utf8_lossy(&a.value.body).contains("Code415"));

    let mut given = req;
    given.path_and_query.push_str("&cid=theirs");
    c.forward(CallKind::Stt, given).await.unwrap();
    assert!(fake
        .data_seen()
        .pop()
        .unwrap()
        .path
        .ends_with("&cid=theirs"));
}

#[tokio::test(start_paused = true)]
async fn forward_streaming_retries_on_the_head_then_streams_the_next_regions_body() {
    use futures::TryStreamExt;
    let (c, fake) = client(2, |_| {});
    let mut rx = c.subscribe();
    fake.script(0, [Step::Status(503), Step::Status(503), Step::Status(503)]);
    let req = ForwardRequest {
        method: ::http::Method::POST,
        path_and_query: "/speech/recognition/conversation/cognitiveservices/v1".into(),
        headers: ::http::HeaderMap::new(),
        body: Bytes::from_static(b"wav"),
    };
    let a = c
        .forward_streaming(CallKind::Stt, req.clone())
        .await
        .unwrap();
    assert_eq!(
        (
            a.value.status.as_u16(),
            a.region.as_str(),
            a.attempts,
            a.failovers
        ),
        (200, "eastus", 4, 1)
    );
    let chunks: Vec<Bytes> = a.value.body.try_collect().await.unwrap();
    let body: Vec<u8> = chunks.concat();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["region"], 1, "the body is the answering region's");
    let evs = events(&mut rx);
    let retries = evs
        .iter()
        .filter(|e| matches!(e, ClientEvent::Retry { .. }))
        .count();
    assert_eq!(retries, 2);
    assert!(evs.iter().any(|e| matches!(
        e,
        ClientEvent::Failover { from, to } if from == "westus" && to == "eastus"
    )));
    let seen = fake.data_seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|s| s.body == req.body),
        "every try replays the body"
    );

    // A caller error is handed over at once, body and all, and never failed over.
    fake.script(0, [Step::Status(415)]);
    let a = c.forward_streaming(CallKind::Stt, req).await.unwrap();
    assert_eq!(
        (a.value.status.as_u16(), a.region.as_str(), a.failovers),
        (415, "westus", 0)
    );
    let body: Vec<Bytes> = a.value.body.try_collect().await.unwrap();
    assert!(String::from_utf8_lossy(&body.concat()).contains("Code415"));
}

#[tokio::test(start_paused = true)]
async fn prober_stops_when_the_client_is_dropped() {
    let (c, fake) = client(1, |p| p.breaker_consecutive_failures = 1);
    fake.set_ready(0, false);
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    assert!(stt(&c).await.is_err());
    let probes = || {
        fake.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == "/readyz")
            .count()
    };
    let c2 = c.clone();
    drop(c);
    sleep(Duration::from_secs(5)).await;
    let before = probes();
    assert!(before >= 2, "a clone keeps the prober running ({before})");
    drop(c2);
    sleep(Duration::from_secs(120)).await;
    assert_eq!(probes(), before, "no probe after the last clone is dropped");
    assert_eq!(Arc::strong_count(&fake), 1, "the engine is gone");
}

#[tokio::test(start_paused = true)]
async fn status_and_metrics_describe_the_regions() {
    let (c, _fake) = client(2, |_| {});
    stt(&c).await.unwrap();
    let st = c.status();
    assert_eq!(st.len(), 2);
    assert!(st[0].preferred && !st[1].preferred);
    assert_eq!(st[0].state, BreakerState::Closed);
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json[0]["name"], "westus");
    let m = c.render_metrics();
    assert!(
        m.contains(r#"tandem_client_requests_total{outcome="success",region="westus"} 1"#),
        "{m}"
    );
    assert!(m.contains("tandem_client_failovers_total 0"));
}

#[tokio::test(start_paused = true)]
async fn custom_speech_answers_are_counted_by_region_and_model() {
    let mut cfg = config(2, |_| {});
    cfg.regions[0].cid = Some("c-west".into());
    let fake = Arc::new(Fake::new(2));
    let c = TandemClient::with_transport(cfg, fake.clone()).unwrap();
    let custom = RecognizeOptions {
        use_custom_model: true,
        ..RecognizeOptions::default()
    };
    let audio = || Bytes::from_static(b"RIFF-audio");
    c.recognize(audio(), &custom).await.unwrap();
    // westus refuses: eastus, which has no copy of the model, serves its default one.
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    let a = c.recognize(audio(), &custom).await.unwrap();
    assert_eq!(a.region, "eastus");
    // A default recognition is not counted.
    stt(&c).await.unwrap();
    let metrics = c.render_metrics();
    for (region, model, n) in [("westus", "custom", 1), ("eastus", "default", 1)] {
        let line = format!(
            "tandem_client_custom_speech_answers_total{{model=\"{model}\",region=\"{region}\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("tandem_client_custom_speech_answers_total{"))
            .count(),
        2,
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_cid_in_the_request_is_each_regions_own_there() {
    let fake = Arc::new(Fake::new(3));
    let mut cfg = config(3, |_| {});
    cfg.regions[0].cid = Some("c west".into());
    cfg.regions[1].cid = Some("c-east".into());
    let c = TandemClient::with_transport(cfg, fake.clone()).unwrap();
    let stt = |query: &str| ForwardRequest {
        method: ::http::Method::POST,
        path_and_query: format!("/speech/recognition/conversation/cognitiveservices/v1?{query}"),
        headers: ::http::HeaderMap::new(),
        body: Bytes::from_static(b"wav"),
    };
    let path = |fake: &Fake| {
        let p = fake.data_seen().pop().unwrap().path;
        p.split_once('?').unwrap().1.to_owned()
    };
    // An Azure script names westus's endpoint: westus gets it as it is.
    let req = stt("cid=c%20west&language=en-US");
    c.forward(CallKind::Stt, req.clone()).await.unwrap();
    assert_eq!(path(&fake), "cid=c%20west&language=en-US");
    // westus refuses: eastus gets its own endpoint id in the same place.
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    let a = c.forward(CallKind::Stt, req.clone()).await.unwrap();
    assert_eq!(a.region, "eastus");
    assert_eq!(path(&fake), "cid=c-east&language=en-US");
    // Both refuse: centralus has no copy, so its default model (no cid).
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    fake.script(1, [Step::Fail(TransportError::Refused)]);
    let a = c.forward(CallKind::Stt, req).await.unwrap();
    assert_eq!(a.region, "centralus");
    assert_eq!(path(&fake), "language=en-US");
    // A cid the file does not know is the caller's own business.
    fake.script(0, [Step::Fail(TransportError::Refused)]);
    c.forward(CallKind::Stt, stt("language=en-US&cid=other"))
        .await
        .unwrap();
    assert_eq!(path(&fake), "language=en-US&cid=other");
}
