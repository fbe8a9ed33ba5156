//! The gateway's custom-voice fallback chain, over real HTTP on loopback: a TTS request with a
//! `deploymentId` is sent to the first custom-voice region with that region's own deployment
//! id, then to the second with its own, then to a public region with the SSML's voice rewritten
//! to `public_fallback_voice` and no `deploymentId`; `x-tandem-voice-link` names the link that
//! spoke. A request without `deploymentId` is forwarded as it is.
//!
//! The regions are small axum servers on 127.0.0.1:0 (and a closed port for a region that is
//! down) that record what they were sent; the gateway itself listens on 127.0.0.1:0 and is
//! called with reqwest. Nothing here depends on the clock: one attempt per region (no backoff
//! to wait out) and breakers that never trip in a test (no open periods, probes or failback).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tandem_client::{ClientConfig, Policy, RegionEntry, TandemClient};
use tandem_gateway::{router, Gateway, DEFAULT_OUTPUT_FORMAT, VOICE_LINK_HEADER};

const SSML: &str = r#"<speak version="1.0" xml:lang="en-US"><voice name="MyBrandVoiceNeural">Hello from the chain.</voice></speak>"#;
const FALLBACK_VOICE: &str = "en-US-FallbackNeural";

/// One TTS request as a region got it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    query: Option<String>,
    ssml: String,
    output_format: Option<String>,
}

impl Seen {
    /// The `deploymentId` the region was sent, if any.
    fn deployment(&self) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .find_map(|p| p.strip_prefix("deploymentId="))
    }
}

#[derive(Clone)]
struct Region {
    name: &'static str,
    /// The status the region answers TTS with: 200 (audio) or an error.
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Region {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn fail_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn tts(
    State(r): State<Region>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let output_format = headers
        .get("x-microsoft-outputformat")
        .map(|v| v.to_str().unwrap().to_string());
    r.seen.lock().unwrap().push(Seen {
        query,
        ssml: body,
        output_format,
    });
    match r.status.load(Ordering::SeqCst) {
        200 => (
            [(header::CONTENT_TYPE, format!("audio/x-{}", r.name))],
            format!("audio from {}", r.name),
        )
            .into_response(),
        s => (
            StatusCode::from_u16(s).unwrap(),
            Json(json!({"error": {"code": "ServiceUnavailable", "message": "stand-in"}})),
        )
            .into_response(),
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A region up on loopback: its STS, readiness, and TTS that records what it got.
async fn region(name: &'static str) -> (Region, String) {
    let r = Region {
        name,
        status: Arc::new(AtomicU16::new(200)),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/sts/v1.0/issueToken", post(|| async { "token" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/cognitiveservices/v1", post(tts))
        .with_state(r.clone());
    (r, serve(app).await)
}

/// A region that is down: a closed port, connections refused.
fn down() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn entry(name: &str, endpoint: String, deployment: Option<&str>) -> RegionEntry {
    RegionEntry {
        name: name.into(),
        endpoints: vec![endpoint],
        key: Some(format!("{name}-key")),
        key_file: None,
        cid: None,
        voice_deployment_id: deployment.map(str::to_owned),
    }
}

/// Starts a gateway over `regions` (highest priority first) and returns its base URL.
async fn gateway(regions: Vec<RegionEntry>) -> String {
    let policy = Policy {
        // One try per region: a failed region is failed over at once, with no backoff sleep.
        max_attempts: 1,
        // Breakers stay closed for the whole test: no open periods, probes or failback timers.
        breaker_consecutive_failures: 1_000,
        breaker_min_requests: 1_000,
        discovery: false,
        public_fallback_voice: FALLBACK_VOICE.into(),
        ..Policy::default()
    };
    let cfg = ClientConfig {
        regions: regions.clone(),
        policy,
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(cfg).unwrap();
    let gw = Gateway::new(client, None, 1 << 20).with_voice_deployments(&regions);
    serve(router(Arc::new(gw))).await
}

/// West and east have custom voice deployments (`cv-west`, `cv-east`); central has only public
/// voices.
async fn three_regions() -> ([Region; 3], [RegionEntry; 3]) {
    let (west, w) = region("westus").await;
    let (east, e) = region("eastus").await;
    let (central, c) = region("centralus").await;
    let entries = [
        entry("westus", w, Some("cv-west")),
        entry("eastus", e, Some("cv-east")),
        entry("centralus", c, None),
    ];
    ([west, east, central], entries)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }
}

async fn speak(gateway: &str, query: &str, output_format: Option<&str>) -> Answer {
    let mut req = reqwest::Client::new()
        .post(format!("{gateway}/cognitiveservices/v1{query}"))
        .header("content-type", "application/ssml+xml")
        .body(SSML);
    if let Some(f) = output_format {
        req = req.header("X-Microsoft-OutputFormat", f);
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        headers.insert(
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let body = resp.text().await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn with_both_custom_regions_up_the_first_speaks_with_its_own_deployment_id() {
    let ([west, east, central], entries) = three_regions().await;
    let gw = gateway(entries.to_vec()).await;

    let a = speak(
        &gw,
        "?deploymentId=the-callers-own",
        Some("riff-16khz-16bit-mono-pcm"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, "audio from westus");
    assert_eq!(a.header("content-type"), "audio/x-westus");
    assert_eq!(a.header(VOICE_LINK_HEADER), "custom");
    assert_eq!(a.header("x-tandem-region"), "westus");
    assert_eq!(a.header("x-tandem-attempts"), "1");

    let seen = west.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].deployment(),
        Some("cv-west"),
        "the region's own id, not the caller's"
    );
    assert_eq!(seen[0].ssml, SSML);
    assert_eq!(
        seen[0].output_format.as_deref(),
        Some("riff-16khz-16bit-mono-pcm")
    );
    assert!(east.seen().is_empty() && central.seen().is_empty());
}

#[tokio::test]
async fn with_the_first_custom_region_failing_the_second_speaks_with_its_own_deployment_id() {
    let ([west, east, central], entries) = three_regions().await;
    west.fail_with(503);
    let gw = gateway(entries.to_vec()).await;

    // No X-Microsoft-OutputFormat: the regions' default is sent on.
    let a = speak(&gw, "?deploymentId=the-callers-own", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, "audio from eastus");
    assert_eq!(a.header("content-type"), "audio/x-eastus");
    assert_eq!(a.header(VOICE_LINK_HEADER), "custom-secondary");
    assert_eq!(a.header("x-tandem-region"), "eastus");
    assert_eq!(a.header("x-tandem-attempts"), "2");

    let tried: Vec<_> = west
        .seen()
        .iter()
        .map(|s| s.deployment().map(str::to_owned))
        .collect();
    assert_eq!(tried, [Some("cv-west".to_string())]);
    let seen = east.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].deployment(), Some("cv-east"));
    assert_eq!(seen[0].ssml, SSML);
    assert_eq!(
        seen[0].output_format.as_deref(),
        Some(DEFAULT_OUTPUT_FORMAT)
    );
    assert!(central.seen().is_empty());
}

#[tokio::test]
async fn with_both_custom_regions_failing_the_public_region_speaks_the_fallback_voice() {
    let (east, e) = region("eastus").await;
    let (central, c) = region("centralus").await;
    east.fail_with(503);
    // West is down altogether.
    let gw = gateway(vec![
        entry("westus", down(), Some("cv-west")),
        entry("eastus", e, Some("cv-east")),
        entry("centralus", c, None),
    ])
    .await;

    let a = speak(
        &gw,
        "?deploymentId=the-callers-own",
        Some("riff-16khz-16bit-mono-pcm"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, "audio from centralus");
    assert_eq!(a.header("content-type"), "audio/x-centralus");
    assert_eq!(a.header(VOICE_LINK_HEADER), "public");
    assert_eq!(a.header("x-tandem-region"), "centralus");

    assert_eq!(east.seen()[0].deployment(), Some("cv-east"));
    let seen = central.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].query, None, "no deploymentId on the public link");
    assert_eq!(
        seen[0].ssml,
        SSML.replace("MyBrandVoiceNeural", FALLBACK_VOICE)
    );
    assert_eq!(
        seen[0].output_format.as_deref(),
        Some("riff-16khz-16bit-mono-pcm")
    );
}

#[tokio::test]
async fn without_a_deployment_id_the_request_is_forwarded_as_it_is() {
    let ([west, east, central], entries) = three_regions().await;
    let gw = gateway(entries.to_vec()).await;

    let a = speak(&gw, "", Some("riff-16khz-16bit-mono-pcm")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, "audio from westus");
    assert_eq!(a.header("content-type"), "audio/x-westus");
    assert_eq!(a.header(VOICE_LINK_HEADER), "public");
    assert_eq!(a.header("x-tandem-region"), "westus");
    assert_eq!(a.header("x-tandem-attempts"), "1");
    assert_eq!(
        west.seen(),
        [Seen {
            query: None,
            ssml: SSML.into(),
            output_format: Some("riff-16khz-16bit-mono-pcm".into()),
        }]
    );
    assert!(east.seen().is_empty() && central.seen().is_empty());
}

#[tokio::test]
async fn with_no_custom_voice_region_a_deployment_id_is_forwarded_as_it_is() {
    let (west, w) = region("westus").await;
    let gw = gateway(vec![entry("westus", w, None)]).await;

    let a = speak(&gw, "?deploymentId=the-callers-own", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.header(VOICE_LINK_HEADER), "public");
    assert_eq!(
        west.seen(),
        [Seen {
            query: Some("deploymentId=the-callers-own".into()),
            ssml: SSML.into(),
            output_format: None,
        }]
    );
}

#[tokio::test]
async fn when_every_link_fails_the_caller_gets_azures_error_json() {
    let ([west, east, central], entries) = three_regions().await;
    for r in [&west, &east, &central] {
        r.fail_with(503);
    }
    let gw = gateway(entries.to_vec()).await;

    let a = speak(&gw, "?deploymentId=the-callers-own", None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key("retry-after"));
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    assert!(!a.headers.contains_key(VOICE_LINK_HEADER));
}
