//! Discovery and the speaker route set, through [`TandemClient`] over the scripted fake on paused
//! tokio time. Fake region 0 is the configured `westus` (key `key0`); fake region 1 is the pair
//! `eastus` at `http://127.0.0.1:5002`, reached only through the transport factory.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::Receiver;
use tokio::time::sleep;

use crate::discovery::parse;
use crate::fake::{Fake, Step, View};
use crate::speaker::Pair;
use crate::*;

const DOC: &str = r#"{"region":"westus","formatVersion":1,
    "pair":{"region":"eastus","endpoint":"http://127.0.0.1:5002","future":1},
    "services":{"speaker":{"state":"serving","pairedWith":"eastus"}},"later":[1,2]}"#;

const VERIFY: &str =
    "/speaker-recognition/verification/text-independent/profiles/p1:verify?api-version=2021-09-05";

fn config(tweak: impl FnOnce(&mut Policy)) -> ClientConfig {
    let mut policy = Policy {
        breaker_jitter: 0.0,
        ..Policy::default()
    };
    tweak(&mut policy);
    ClientConfig {
        regions: vec![RegionEntry {
            name: "westus".into(),
            endpoints: vec!["http://127.0.0.1:5001".into()],
            key: Some("key0".into()),
            key_file: None,
            cid: None,
            voice_deployment_id: None,
        }],
        policy,
        gateway_key: None,
        gateway_key_file: None,
    }
}

/// A client over fake region 0, whose factory maps `http://127.0.0.1:500N` to fake region N-1.
fn client(doc: Option<&str>, tweak: impl FnOnce(&mut Policy)) -> (TandemClient, Arc<Fake>) {
    let fake = Arc::new(Fake::new(2));
    if let Some(doc) = doc {
        fake.set_doc(0, 200, doc);
    }
    let f = fake.clone();
    let factory: TransportFactory = Arc::new(move |e: &RegionEntry| {
        let port: usize = e.endpoint().rsplit(':').next().unwrap().parse().unwrap();
        let t: Arc<dyn Transport> = Arc::new(View(f.clone(), port - 5001));
        Ok(t)
    });
    let c = TandemClient::with_transport_factory(config(tweak), fake.clone(), factory).unwrap();
    (c, fake)
}

fn events(rx: &mut Receiver<ClientEvent>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

fn names(s: &[RegionStatus]) -> Vec<&str> {
    s.iter().map(|r| r.name.as_str()).collect()
}

fn verify_req() -> ForwardRequest {
    ForwardRequest {
        method: ::http::Method::POST,
        path_and_query: VERIFY.into(),
        headers: ::http::HeaderMap::new(),
        body: Bytes::from_static(b"RIFF-voice"),
    }
}

fn refused(n: usize) -> Vec<Step> {
    vec![Step::Fail(TransportError::Refused); n]
}

#[tokio::test(start_paused = true)]
async fn discovery_learns_the_pair() {
    let (c, fake) = client(Some(DOC), |_| {});
    let mut rx = c.subscribe();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(names(&c.speaker_status()), ["westus", "eastus"]);
    assert_eq!(
        names(&c.status()),
        ["westus"],
        "only speaker calls see the pair"
    );
    assert_eq!(
        events(&mut rx),
        [ClientEvent::Discovered {
            region: "westus".into(),
            pair: Some("eastus".into())
        }]
    );
    // Answered once: the next request is the refresh, a minute later.
    sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.seen_path("/.well-known/tandem").len(), 1);
    sleep(Duration::from_secs(31)).await;
    assert_eq!(fake.seen_path("/.well-known/tandem").len(), 2);
    assert!(events(&mut rx).is_empty(), "an unchanged pair is not news");
}

#[tokio::test(start_paused = true)]
async fn a_failed_primary_fails_over_to_the_pair_with_its_own_key() {
    let (c, fake) = client(Some(DOC), |_| {});
    fake.script(0, refused(100));
    // Made at once: the call waits for the first discovery round.
    let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    assert_eq!((a.region.as_str(), a.failovers), ("eastus", 1));
    let seen = fake.data_seen();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].region, seen[1].region), (0, 1));
    for s in &seen {
        assert_eq!(s.path, VERIFY);
        assert_eq!(
            s.key.as_deref(),
            Some("key0"),
            "the primary's key, everywhere"
        );
        assert_eq!(s.auth, None, "no bearer token on the speaker path");
        assert_eq!(s.body, Bytes::from_static(b"RIFF-voice"));
    }
    assert_eq!(fake.issued(0) + fake.issued(1), 0, "no STS call");
    let metrics = c.render_metrics();
    assert!(metrics.contains(r#"region="eastus/speaker""#), "{metrics}");
}

#[tokio::test(start_paused = true)]
async fn a_primary_catching_up_hands_the_call_to_the_pair_without_retrying() {
    let (c, fake) = client(Some(DOC), |_| {});
    fake.script(0, [Step::UsePair]);
    let started = tokio::time::Instant::now();
    let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    assert_eq!(
        (a.region.as_str(), a.attempts, a.failovers),
        ("eastus", 2, 1)
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no Retry-After wait on the primary: {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn stt_is_never_sent_to_a_discovered_pair() {
    let (c, fake) = client(Some(DOC), |_| {});
    fake.script(0, refused(100));
    let err = c
        .recognize(Bytes::from_static(b"RIFF"), &RecognizeOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::AllRegionsFailed { .. }), "{err}");
    let a = c.verify_speaker("p1", Bytes::from_static(b"RIFF")).await;
    assert_eq!(a.unwrap().region, "eastus");
    let to_pair: Vec<_> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.region == 1)
        .cloned()
        .collect();
    assert_eq!(to_pair.len(), 1, "{to_pair:?}");
    assert_eq!(to_pair[0].path, VERIFY);
}

#[tokio::test(start_paused = true)]
async fn speaker_traffic_fails_back_only_once_the_primary_serves_speaker_again() {
    let (c, fake) = client(Some(DOC), |_| {});
    let mut rx = c.subscribe();
    fake.script(0, refused(5));
    for _ in 0..5 {
        let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
        assert_eq!(a.region, "eastus");
    }
    assert_eq!(c.speaker_status()[0].state, BreakerState::Open);
    assert_eq!(
        c.status()[0].state,
        BreakerState::Closed,
        "STT breakers are separate"
    );
    // Back up, but still catching up with the pair: speaker traffic stays there.
    fake.set_speaker_ready(0, false);
    sleep(Duration::from_secs(20)).await;
    let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    assert_eq!((a.region.as_str(), a.failovers), ("eastus", 0));
    assert_ne!(c.speaker_status()[0].state, BreakerState::Recovering);
    // Caught up: recovering, but traffic returns only after `failback_after`.
    fake.set_speaker_ready(0, true);
    for _ in 0..400 {
        if c.speaker_status()[0].state == BreakerState::Recovering {
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.speaker_status()[0].state, BreakerState::Recovering);
    let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    assert_eq!(a.region, "eastus");
    sleep(Duration::from_millis(10_600)).await;
    assert_eq!(c.speaker_status()[0].state, BreakerState::Closed);
    let a = c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    assert_eq!((a.region.as_str(), a.failovers), ("westus", 0));
    let ev = events(&mut rx);
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Failback { to } if to == "westus/speaker")),
        "{ev:?}"
    );
    assert!(ev
        .iter()
        .any(|e| matches!(e, ClientEvent::Trip { region, .. } if region == "westus/speaker")));
    let probes = fake.seen_path("/readyz/speaker");
    assert!(probes.iter().all(|p| p.region == 0 || p.region == 1));
    assert!(
        fake.seen_path("/readyz").is_empty(),
        "the STT breaker never tripped"
    );
}

#[tokio::test(start_paused = true)]
async fn without_discovery_there_is_no_pair() {
    let (c, fake) = client(Some(DOC), |p| p.discovery = false);
    fake.script(0, refused(100));
    let err = c
        .forward(CallKind::Speaker, verify_req())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::AllRegionsFailed { .. }), "{err}");
    sleep(Duration::from_secs(120)).await;
    assert_eq!(names(&c.speaker_status()), ["westus"]);
    assert!(fake.seen_path("/.well-known/tandem").is_empty());
    assert!(fake.data_seen().iter().all(|s| s.region == 0));
}

#[tokio::test(start_paused = true)]
async fn a_region_without_a_pair_adds_nothing() {
    let doc = r#"{"region":"westus","formatVersion":1,"pair":null,"services":{"speaker":{"state":"standalone"}}}"#;
    let (c, _fake) = client(Some(doc), |_| {});
    let mut rx = c.subscribe();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(names(&c.speaker_status()), ["westus"]);
    assert!(events(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn malformed_documents_are_ignored() {
    for doc in [
        "not json",
        r#"{"pair":5}"#,
        r#"{"pair":{"region":"eastus","endpoint":"ftp://x"}}"#,
    ] {
        let (c, fake) = client(Some(doc), |_| {});
        sleep(Duration::from_secs(5)).await;
        assert_eq!(names(&c.speaker_status()), ["westus"], "{doc}");
        assert_eq!(
            fake.seen_path("/.well-known/tandem").len(),
            1,
            "answered: {doc}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn discovery_retries_until_answered_and_keeps_the_pair_through_an_outage() {
    let (c, fake) = client(None, |_| {});
    fake.set_doc(0, 503, "{}");
    sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        fake.seen_path("/.well-known/tandem").len(),
        3,
        "every probe_interval"
    );
    fake.set_doc(0, 200, DOC);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(names(&c.speaker_status()), ["westus", "eastus"]);
    // The primary stops answering: its pair stays known.
    fake.set_doc(0, 503, "{}");
    sleep(Duration::from_secs(61)).await;
    assert_eq!(names(&c.speaker_status()), ["westus", "eastus"]);
    // It answers that it has no pair any more: the pair goes.
    let mut rx = c.subscribe();
    fake.set_doc(0, 200, r#"{"region":"westus","pair":null}"#);
    sleep(Duration::from_secs(61)).await;
    assert_eq!(names(&c.speaker_status()), ["westus"]);
    let ev = events(&mut rx);
    assert!(ev.contains(&ClientEvent::Discovered {
        region: "westus".into(),
        pair: None
    }));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_keeps_the_breakers_of_unchanged_regions() {
    let (c, fake) = client(Some(DOC), |_| {});
    fake.script(0, refused(5));
    for _ in 0..5 {
        c.forward(CallKind::Speaker, verify_req()).await.unwrap();
    }
    fake.set_speaker_ready(0, false);
    fake.set_doc(0, 200, &DOC.replace("5002", "5002/"));
    // Same pair (the trailing slash is trimmed): nothing rebuilt.
    sleep(Duration::from_secs(61)).await;
    assert_eq!(names(&c.speaker_status()), ["westus", "eastus"]);
    assert_ne!(c.speaker_status()[0].state, BreakerState::Closed);
    // A new pair: the route set is rebuilt, and westus keeps its breaker.
    let mut rx = c.subscribe();
    fake.set_doc(
        0,
        200,
        r#"{"region":"westus","pair":{"region":"centralus","endpoint":"http://127.0.0.1:5002"}}"#,
    );
    sleep(Duration::from_secs(60)).await;
    assert_eq!(names(&c.speaker_status()), ["westus", "centralus"]);
    assert_ne!(c.speaker_status()[0].state, BreakerState::Closed);
    assert!(events(&mut rx).contains(&ClientEvent::Discovered {
        region: "westus".into(),
        pair: Some("centralus".into())
    }));
}

#[tokio::test(start_paused = true)]
async fn typed_helpers_build_azure_paths_and_return_caller_errors() {
    let (c, fake) = client(None, |p| p.discovery = false);
    let a = c
        .create_speaker_profile(SpeakerKind::Identification, "en-us")
        .await
        .unwrap();
    assert_eq!(a.region, "westus");
    c.enroll_speaker(
        SpeakerKind::Verification,
        "p 1",
        Bytes::from_static(b"RIFF"),
    )
    .await
    .unwrap();
    c.identify_speaker(&["a", "b"], Bytes::from_static(b"RIFF"))
        .await
        .unwrap();
    fake.script(0, [Step::Status(404)]);
    let err = c
        .verify_speaker("p1", Bytes::from_static(b"RIFF"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Caller { status: 404, .. }),
        "{err}"
    );
    let paths: Vec<String> = fake.data_seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/speaker-recognition/identification/text-independent/profiles?api-version=2021-09-05",
            "/speaker-recognition/verification/text-independent/profiles/p%201/enrollments?api-version=2021-09-05",
            "/speaker-recognition/identification/text-independent/profiles:identifySingleSpeaker?profileIds=a,b&api-version=2021-09-05",
            VERIFY,
        ]
    );
    let first = &fake.data_seen()[0];
    assert_eq!(first.body, Bytes::from_static(br#"{"locale":"en-us"}"#));
}

#[test]
fn discovery_documents_parse_forward_compatibly() {
    let pair = Pair {
        name: "eastus".into(),
        endpoint: "http://127.0.0.1:5002".into(),
    };
    assert_eq!(parse("westus", DOC.as_bytes()), Ok(Some(pair)));
    assert_eq!(
        parse("westus", br#"{"region":"westus","pair":null}"#),
        Ok(None)
    );
    assert_eq!(parse("westus", br#"{"region":"westus"}"#), Ok(None));
    assert!(parse(
        "westus",
        br#"{"pair":{"region":"westus","endpoint":"http://x"}}"#
    )
    .is_err());
    assert!(parse("westus", br#"{"pair":{"region":"eastus"}}"#).is_err());
    assert!(parse("westus", b"").is_err());
}
