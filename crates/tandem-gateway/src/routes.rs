//! The gateway's routes: Azure's data plane in front, the client policy behind.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use serde_json::json;
use tandem_client::{CallKind, ForwardRequest, RegionEntry, TandemClient};
use tandem_core::{RegionName, ResourceId, TokenSigner};

use crate::{auth, status, tts, GatewayError};

/// Request headers passed on to the regions; everything else (auth, hop-by-hop) is dropped.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "user-agent",
    "x-microsoft-outputformat",
    "pronunciation-assessment",
];

/// Response headers passed back to the caller.
const RETURNED_HEADERS: &[&str] = &["content-type", "retry-after"];

/// The gateway's state.
pub struct Gateway {
    pub(crate) client: TandemClient,
    key: Option<String>,
    identity: ResourceId,
    signer: TokenSigner,
    max_body: usize,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Reads the regions' own `/status.json`.
    pub(crate) http: reqwest::Client,
    /// Recent failovers, failbacks, trips and node ejections.
    pub(crate) events: Arc<tandem_core::EventLog>,
    /// Whether each region's `/status.json` answered the last read.
    pub(crate) region_reachable: prometheus::IntGaugeVec,
    /// Some region has a custom voice deployment: TTS requests with a `deploymentId` take the
    /// voice chain (see [`Gateway::with_voice_deployments`]).
    pub(crate) custom_voice: bool,
}

impl Gateway {
    /// A gateway over `client`, protected by `key` (None: open, loopback only), buffering bodies
    /// up to `max_body` bytes so that retries replay them.
    pub fn new(client: TandemClient, key: Option<String>, max_body: usize) -> Self {
        use rand::RngCore;
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let signer = TokenSigner::new(RegionName::new("gateway").expect("valid name"), secret, 600);
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tandem_gateway_requests_total",
                "gateway requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("tandem_gateway_request_duration_seconds", "gateway latency")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ]),
            &["route"],
        )
        .expect("metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique");
        registry
            .register(Box::new(latency.clone()))
            .expect("unique");
        let region_reachable = status::reachable_gauge();
        registry
            .register(Box::new(region_reachable.clone()))
            .expect("unique");
        let events = Arc::new(tandem_core::EventLog::new(status::RECENT_EVENTS));
        status::spawn_recorder(&client, events.clone());
        Self {
            client,
            key,
            identity: ResourceId::random(),
            signer,
            max_body,
            registry,
            requests,
            latency,
            http: reqwest::Client::new(),
            events,
            region_reachable,
            custom_voice: false,
        }
    }

    /// Turns on the custom-voice fallback chain when any of `regions` (the regions the client
    /// was built from) has a `voice_deployment_id`: a TTS request that carries a `deploymentId`
    /// then goes custom voice → secondary custom voice → public voice, each region with its own
    /// deployment id. Without this call, or when no region has a deployment, TTS requests are
    /// forwarded as they are.
    pub fn with_voice_deployments(mut self, regions: &[RegionEntry]) -> Self {
        self.custom_voice = regions.iter().any(|r| r.voice_deployment_id.is_some());
        self
    }

    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    pub(crate) fn signer(&self) -> &TokenSigner {
        &self.signer
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Builds the gateway's routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/sts/v1.0/issueToken", post(issue_token))
        .route("/sts/v1.0/issuetoken", post(issue_token))
        .route(
            "/speech/recognition/{mode}/cognitiveservices/v1",
            post(|s, r| forward(s, r, CallKind::Stt)),
        )
        .route("/cognitiveservices/v1", post(tts::synthesize))
        .route(
            "/cognitiveservices/voices/list",
            get(|s, r| forward(s, r, CallKind::Voices)),
        )
        // Speaker recognition: every method, over the speaker routes (which may include the
        // regions' discovered pairs).
        .route(
            "/speaker-recognition/{*rest}",
            get(|s, r| forward(s, r, CallKind::Speaker))
                .post(|s, r| forward(s, r, CallKind::Speaker))
                .delete(|s, r| forward(s, r, CallKind::Speaker)),
        )
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "live", "role": "gateway"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/status", get(status::page))
        .route("/status.json", get(status::json))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(gw.clone(), track))
        .with_state(gw)
}

async fn track(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    gw.requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    gw.latency
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn issue_token(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    auth::check_key(&gw, &headers)?;
    let token = gw.signer.issue(gw.identity, now());
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response())
}

/// Reads a request body whole (bounded by `max_body`), so that retries and failover replay it.
pub(crate) async fn read_body(gw: &Gateway, body: Body) -> Result<bytes::Bytes, GatewayError> {
    axum::body::to_bytes(body, gw.max_body).await.map_err(|e| {
        // Decided by the error's type, never its message.
        let too_large = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .any(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            GatewayError::PayloadTooLarge(gw.max_body)
        } else {
            GatewayError::BadBody(e.to_string())
        }
    })
}

/// Marks an answer with where it came from: `x-tandem-region` and `x-tandem-attempts`.
pub(crate) fn mark_origin(headers: &mut HeaderMap, region: &str, attempts: u32) {
    if let Ok(v) = HeaderValue::from_str(region) {
        headers.insert("x-tandem-region", v);
    }
    headers.insert("x-tandem-attempts", HeaderValue::from(attempts));
}

/// Sends the caller's request, as it is, through the client's policy for `kind`, and streams
/// the decisive region's answer back.
pub(crate) async fn forward(
    State(gw): State<Arc<Gateway>>,
    req: Request,
    kind: CallKind,
) -> Result<Response, GatewayError> {
    auth::check(&gw, req.headers(), now())?;
    let (parts, body) = req.into_parts();
    let body = read_body(&gw, body).await?;
    let mut headers = HeaderMap::new();
    for name in FORWARDED_HEADERS {
        if let Some(v) = parts.headers.get(*name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let answered = gw
        .client
        .forward_streaming(
            kind,
            ForwardRequest {
                method: parts.method,
                path_and_query,
                headers,
                body,
            },
        )
        .await?;
    // The decisive region's head is in; its body is streamed through as it arrives. A body that
    // breaks off midway cannot be retried any more: the response to the caller is cut short.
    let upstream = answered.value;
    let mut resp = Response::new(Body::from_stream(upstream.body));
    *resp.status_mut() = upstream.status;
    for name in RETURNED_HEADERS {
        if let Some(v) = upstream.headers.get(*name) {
            resp.headers_mut()
                .insert(HeaderName::from_static(name), v.clone());
        }
    }
    mark_origin(resp.headers_mut(), &answered.region, answered.attempts);
    Ok(resp)
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> (StatusCode, Json<serde_json::Value>) {
    let regions = gw.client.status();
    let usable = regions
        .iter()
        .filter(|r| !matches!(r.state, tandem_client::BreakerState::Open))
        .count();
    let status = if usable > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"usable_regions": usable, "regions": regions.len()})),
    )
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    status::refresh_gauges(&gw).await;
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&gw.registry.gather(), &mut buf)
        .expect("text encoding");
    let mut text = String::from_utf8(buf).expect("utf-8");
    text.push_str(&gw.client.render_metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
