//! [`TandemClient`]: the public face of the engine, and its background prober.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backoff::{Backoff, RetryBudget};
use crate::breaker::Breaker;
use crate::config::{CallKind, ClientConfig, RegionEntry};
use crate::engine::{Engine, Region, RegionResult, Reply, Walked};
use crate::error::{ClientError, Result};
use crate::http::HttpTransport;
use crate::observe::{ClientEvent, Metrics, RegionStatus};
use crate::prober::prober;
use crate::token::TokenCache;
use crate::transport::{Response, StreamingResponse, Transport};
use crate::wire::{caller_error, enc, error_fields, has_param, json, request};

/// A successful call's value and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Answered<T> {
    /// The value.
    pub value: T,
    /// The region that answered.
    pub region: String,
    /// Attempts made in total, over every region.
    pub attempts: u32,
    /// Times the call moved on to another region.
    pub failovers: u32,
}

/// Options of a speech-to-text call.
#[derive(Debug, Clone)]
pub struct RecognizeOptions {
    /// `conversation`, `interactive` or `dictation`.
    pub mode: String,
    /// Language, e.g. `en-US`.
    pub language: String,
    /// `simple` or `detailed`.
    pub format: String,
    /// `masked`, `removed` or `raw`.
    pub profanity: Option<String>,
    /// Send the region's `cid` (custom speech endpoint), where it has one.
    pub use_custom_model: bool,
}

impl Default for RecognizeOptions {
    fn default() -> Self {
        RecognizeOptions {
            mode: "conversation".into(),
            language: "en-US".into(),
            format: "simple".into(),
            profanity: None,
            use_custom_model: false,
        }
    }
}

/// An already-built data-plane request, for the gateway.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    /// Method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// Headers; any authentication and hop-by-hop headers are dropped.
    pub headers: HeaderMap,
    /// Body, replayed as-is on every attempt.
    pub body: Bytes,
}

/// A region's answer to a forwarded request.
#[derive(Debug, Clone)]
pub struct ForwardResponse {
    /// Status (2xx, or a caller-class 4xx passed through).
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// The failover client. Cheap to clone; the prober stops when the last clone is dropped.
#[derive(Clone)]
pub struct TandemClient {
    pub(crate) engine: Arc<Engine>,
    _prober: Arc<ProberGuard>,
}

struct ProberGuard(Mutex<Option<tokio::task::AbortHandle>>);

impl Drop for ProberGuard {
    fn drop(&mut self) {
        if let Some(h) = self.0.lock().expect("prober lock").take() {
            h.abort();
        }
    }
}

impl TandemClient {
    /// A client over HTTP. Must be called inside a tokio runtime (it spawns the prober).
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        cfg.validate()?;
        let transport = HttpTransport::new(&cfg.regions)?;
        Self::with_transport(cfg, Arc::new(transport))
    }

    /// A client over any [`Transport`] (tests use a scripted one). Must be called inside a
    /// tokio runtime.
    pub fn with_transport(cfg: ClientConfig, transport: Arc<dyn Transport>) -> Result<Self> {
        cfg.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ClientError::Config("TandemClient needs a tokio runtime".into()))?;
        let p = cfg.policy.clone();
        let now = Instant::now();
        let metrics = Metrics::new();
        let mut regions = Vec::with_capacity(cfg.regions.len());
        for entry in cfg.regions {
            metrics
                .breaker_state
                .with_label_values(&[&entry.name])
                .set(0);
            let key = entry.resolve_key()?;
            if http::HeaderValue::from_str(&key).is_err() {
                return Err(ClientError::Config(format!(
                    "region {}: the key is not a valid header value",
                    entry.name
                )));
            }
            regions.push(Region {
                key,
                entry,
                breaker: Mutex::new(Breaker::new(&p, now)),
                tokens: TokenCache::new(Duration::from_millis(p.token_refresh_margin_ms)),
                ewma_ms: Mutex::new(None),
                last_answer: Mutex::new(None),
            });
        }
        let engine = Arc::new(Engine {
            budget: RetryBudget::new(p.retry_budget_ratio, p.retry_budget_min_per_sec),
            backoff: Backoff {
                base: Duration::from_millis(p.backoff_base_ms),
                cap: Duration::from_millis(p.backoff_cap_ms),
            },
            events: broadcast::channel(1024).0,
            policy: p,
            regions,
            transport,
            metrics,
        });
        let task = runtime.spawn(prober(Arc::downgrade(&engine)));
        Ok(TandemClient {
            engine,
            _prober: Arc::new(ProberGuard(Mutex::new(Some(task.abort_handle())))),
        })
    }

    /// Speech-to-text of a WAV clip.
    pub async fn recognize(
        &self,
        audio: Bytes,
        opts: &RecognizeOptions,
    ) -> Result<Answered<serde_json::Value>> {
        let build = |r: &RegionEntry| {
            let mut q = format!(
                "/speech/recognition/{}/cognitiveservices/v1?language={}&format={}",
                enc(&opts.mode),
                enc(&opts.language),
                enc(&opts.format)
            );
            if let Some(p) = &opts.profanity {
                q.push_str(&format!("&profanity={}", enc(p)));
            }
            if let (true, Some(cid)) = (opts.use_custom_model, &r.cid) {
                q.push_str(&format!("&cid={}", enc(cid)));
            }
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            h.insert(ACCEPT, HeaderValue::from_static("application/json"));
            request(Method::POST, q, h, audio.clone())
        };
        let span = tracing::info_span!("tandem_client.recognize", mode = %opts.mode);
        let walked = self
            .engine
            .walk(CallKind::Stt, &build)
            .instrument(span)
            .await?;
        self.finish(walked).and_then(json)
    }

    /// The voice list.
    pub async fn voices(&self) -> Result<Answered<serde_json::Value>> {
        let build = |_: &RegionEntry| {
            let path = "/cognitiveservices/voices/list".to_string();
            request(Method::GET, path, HeaderMap::new(), Bytes::new())
        };
        let span = tracing::info_span!("tandem_client.voices");
        let walked = self
            .engine
            .walk(CallKind::Voices, &build)
            .instrument(span)
            .await?;
        self.finish(walked).and_then(json)
    }

    /// Sends an already-built data-plane request with the full policy, adding the region's
    /// bearer token (and, for [`CallKind::Stt`], the region's `cid` when it has one and the
    /// request has none).
    ///
    /// Caller-class answers (4xx, and 401 after the one refresh) come back as `Ok` with that
    /// status, unchanged, so the gateway can pass them through; they are never failed over.
    /// `Err` is only [`ClientError::AllRegionsFailed`] or [`ClientError::Config`].
    pub async fn forward(
        &self,
        kind: CallKind,
        req: ForwardRequest,
    ) -> Result<Answered<ForwardResponse>> {
        let answered = self.forward_as::<Response>(kind, req).await?;
        let resp = answered.value;
        Ok(Answered {
            value: ForwardResponse {
                status: resp.status,
                headers: resp.headers,
                body: resp.body,
            },
            region: answered.region,
            attempts: answered.attempts,
            failovers: answered.failovers,
        })
    }

    /// [`TandemClient::forward`], returning as soon as the decisive region's status and headers
    /// are in, with the body streamed from that region as the caller polls it.
    ///
    /// The policy is the same as `forward`'s, because every decision (retry, failover, hedge,
    /// breaker) is made on the status and headers alone, before any body byte reaches the
    /// caller: an answer that is retried or failed over has its body dropped unread, and with
    /// hedging the first decisive response head wins. The request body stays buffered, so each
    /// attempt replays the same bytes.
    ///
    /// Once the answer is handed over, nothing is retried: if the body breaks off midway (the
    /// region resets, say) the stream ends with an `Err` item, and that is final. The per-try
    /// timeout covers getting the response head only; the body has no total timeout, because a
    /// long audio stream is legitimate (drop the stream to give up on it).
    pub async fn forward_streaming(
        &self,
        kind: CallKind,
        req: ForwardRequest,
    ) -> Result<Answered<StreamingResponse>> {
        self.forward_as(kind, req).await
    }

    async fn forward_as<R: Reply>(
        &self,
        kind: CallKind,
        req: ForwardRequest,
    ) -> Result<Answered<R>> {
        let mut headers = req.headers.clone();
        for h in [
            "authorization",
            "ocp-apim-subscription-key",
            "host",
            "content-length",
            "connection",
            "transfer-encoding",
        ] {
            headers.remove(HeaderName::from_static(h));
        }
        let build = |r: &RegionEntry| {
            let mut pq = req.path_and_query.clone();
            if let (CallKind::Stt, Some(cid)) = (kind, &r.cid) {
                if !has_param(&pq, "cid") {
                    pq.push(if pq.contains('?') { '&' } else { '?' });
                    pq.push_str(&format!("cid={}", enc(cid)));
                }
            }
            request(req.method.clone(), pq, headers.clone(), req.body.clone())
        };
        let span = tracing::info_span!("tandem_client.forward", kind = kind.as_str());
        let walked = self.engine.walk::<R>(kind, &build).instrument(span).await?;
        let resp = match walked.tried.result {
            RegionResult::Ok(r) | RegionResult::Caller(r) | RegionResult::Unauthorized(r) => r,
            RegionResult::Failed(last) => {
                return Err(ClientError::AllRegionsFailed {
                    attempts: walked.attempts,
                    last,
                })
            }
        };
        Ok(Answered {
            value: resp,
            region: self.engine.name(walked.tried.region).to_string(),
            attempts: walked.attempts,
            failovers: walked.failovers,
        })
    }

    /// Every region's health, in priority order.
    pub fn status(&self) -> Vec<RegionStatus> {
        let now = Instant::now();
        let preferred = self.engine.candidates().first().copied();
        self.engine
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let b = r.breaker.lock().expect("breaker lock");
                RegionStatus {
                    name: r.entry.name.clone(),
                    endpoint: r.entry.endpoint.clone(),
                    state: b.state(),
                    consecutive_failures: b.consecutive_failures(),
                    healthy_for_ms: b.healthy_for(now).as_millis() as u64,
                    ewma_latency_ms: r.ewma_ms.lock().expect("ewma lock").unwrap_or(0.0),
                    preferred: preferred == Some(i),
                }
            })
            .collect()
    }

    /// Events from now on (retries, trips, failovers, failbacks, token refreshes, hedges).
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.engine.events.subscribe()
    }

    /// The client's counters in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.engine.metrics.render()
    }

    /// Turns the decisive region result into a value or a typed error.
    pub(crate) fn finish(&self, w: Walked) -> Result<Answered<Response>> {
        let region = self.engine.name(w.tried.region).to_string();
        match w.tried.result {
            RegionResult::Ok(r) => Ok(Answered {
                value: r,
                region,
                attempts: w.attempts,
                failovers: w.failovers,
            }),
            RegionResult::Caller(r) => Err(caller_error(&r, region)),
            RegionResult::Unauthorized(r) => Err(ClientError::Unauthorized {
                message: error_fields(&r).1,
                region,
            }),
            RegionResult::Failed(last) => Err(ClientError::AllRegionsFailed {
                attempts: w.attempts,
                last,
            }),
        }
    }
}
