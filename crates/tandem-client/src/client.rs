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
use crate::config::{CallKind, ClientConfig, RegionEntry};
use crate::discovery::discovery;
use crate::engine::{Auth, Engine, Region, RegionResult, Reply, Walked};
use crate::error::{ClientError, Result};
use crate::http::HttpTransport;
use crate::observe::{status_of, ClientEvent, Metrics, RegionStatus};
use crate::prober::prober;
use crate::speaker::{speaker_prober, SpeakerRoutes, TransportFactory};
use crate::transport::{Response, StreamingResponse, Transport};
use crate::wire::{caller_error, enc, error_fields, json, param_value, replace_param, request};

/// A successful call's value and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Answered<T> {
    /// The value.
    pub value: T,
    /// The region that answered.
    pub region: String,
    /// The node (endpoint) of the region that answered.
    pub node: String,
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

/// The failover client. Cheap to clone; its background tasks (probers, discovery) stop when
/// the last clone is dropped.
#[derive(Clone)]
pub struct TandemClient {
    pub(crate) engine: Arc<Engine>,
    pub(crate) speaker: Arc<SpeakerRoutes>,
    _tasks: Arc<TaskGuard>,
}

struct TaskGuard(Mutex<Vec<tokio::task::AbortHandle>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for h in self.0.lock().expect("tasks lock").drain(..) {
            h.abort();
        }
    }
}

/// Discovered pairs are reached over HTTP.
fn http_factory() -> TransportFactory {
    Arc::new(|entry: &RegionEntry| {
        let t: Arc<dyn Transport> = Arc::new(HttpTransport::new(std::slice::from_ref(entry))?);
        Ok(t)
    })
}

impl TandemClient {
    /// A client over HTTP. Must be called inside a tokio runtime (it spawns the prober).
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        cfg.validate()?;
        let transport = HttpTransport::new(&cfg.regions)?;
        Self::with_transport(cfg, Arc::new(transport))
    }

    /// A client over any [`Transport`] (tests use a scripted one); discovered pairs are reached
    /// over HTTP. Must be called inside a tokio runtime.
    pub fn with_transport(cfg: ClientConfig, transport: Arc<dyn Transport>) -> Result<Self> {
        Self::with_transport_factory(cfg, transport, http_factory())
    }

    /// A client over any [`Transport`] for the configured regions, and transports made by
    /// `factory` for the pairs discovery learns. Must be called inside a tokio runtime.
    pub fn with_transport_factory(
        cfg: ClientConfig,
        transport: Arc<dyn Transport>,
        factory: TransportFactory,
    ) -> Result<Self> {
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
            let region = Region::new(entry, key, &p, now);
            if region.balanced() {
                for node in &region.nodes {
                    metrics
                        .node_ejected
                        .with_label_values(&[&region.entry.name, &node.endpoint])
                        .set(0);
                }
            }
            regions.push(Arc::new(region));
        }
        let engine = Arc::new(Engine {
            budget: Arc::new(RetryBudget::new(
                p.retry_budget_ratio,
                p.retry_budget_min_per_sec,
            )),
            backoff: Backoff {
                base: Duration::from_millis(p.backoff_base_ms),
                cap: Duration::from_millis(p.backoff_cap_ms),
            },
            events: broadcast::channel(1024).0,
            policy: p,
            regions,
            transport,
            metrics,
            auth: Auth::Token,
            ready_path: "/readyz",
            suffix: "",
        });
        let speaker = Arc::new(SpeakerRoutes::new(engine.clone(), factory));
        let mut tasks = vec![
            runtime
                .spawn(prober(Arc::downgrade(&engine)))
                .abort_handle(),
            runtime
                .spawn(speaker_prober(Arc::downgrade(&speaker)))
                .abort_handle(),
        ];
        if engine.policy.discovery {
            let task = runtime.spawn(discovery(Arc::downgrade(&speaker)));
            tasks.push(task.abort_handle());
        }
        Ok(TandemClient {
            engine,
            speaker,
            _tasks: Arc::new(TaskGuard(Mutex::new(tasks))),
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
        let answered = self.finish(walked).and_then(json)?;
        if opts.use_custom_model {
            let e = &self.engine;
            let custom = e
                .regions
                .iter()
                .any(|r| r.entry.name == answered.region && r.entry.cid.is_some());
            e.metrics
                .custom_speech_answers
                .with_label_values(&[
                    answered.region.as_str(),
                    if custom { "custom" } else { "default" },
                ])
                .inc();
        }
        Ok(answered)
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
    /// [`CallKind::Speaker`] calls take the speaker route set instead: the configured regions,
    /// then their discovered pairs, with breakers of their own, authenticated with the resource
    /// key (a pair gets the key of the region it pairs).
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
            node: answered.node,
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
        // A recognition's `cid` that names one of the configured regions' custom endpoints
        // stands for "the custom model": each region is sent its own (endpoint ids differ per
        // region; a region without one serves its default model). Any other `cid` is the
        // caller's and passes as it is; without one, the region's own is added.
        let known_cid = |given: &str| {
            self.engine.regions.iter().any(|r| {
                r.entry
                    .cid
                    .as_deref()
                    .is_some_and(|c| c == given || enc(c) == given)
            })
        };
        let build = |r: &RegionEntry| {
            let mut pq = req.path_and_query.clone();
            if kind == CallKind::Stt {
                match param_value(&pq, "cid") {
                    Some(given) if known_cid(given) => {
                        let own = r.cid.as_deref().map(enc);
                        pq = replace_param(&pq, "cid", own.as_deref());
                    }
                    Some(_) => {}
                    None => {
                        if let Some(cid) = &r.cid {
                            pq.push(if pq.contains('?') { '&' } else { '?' });
                            pq.push_str(&format!("cid={}", enc(cid)));
                        }
                    }
                }
            }
            request(req.method.clone(), pq, headers.clone(), req.body.clone())
        };
        let span = tracing::info_span!("tandem_client.forward", kind = kind.as_str());
        let engine = self.engine_for(kind).await;
        let walked = engine.walk::<R>(kind, &build).instrument(span).await?;
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
            region: engine.name(walked.tried.region).to_string(),
            node: engine
                .endpoint(walked.tried.region, walked.tried.node)
                .to_string(),
            attempts: walked.attempts,
            failovers: walked.failovers,
        })
    }

    /// The route set for a kind of call: the speaker routes (once the first discovery round is
    /// over) for [`CallKind::Speaker`], the configured regions for the rest.
    pub(crate) async fn engine_for(&self, kind: CallKind) -> Arc<Engine> {
        match kind {
            CallKind::Speaker => self.speaker.ready().await,
            _ => self.engine.clone(),
        }
    }

    /// Every configured region's health, in priority order (the speaker routes are in
    /// [`TandemClient::speaker_status`]).
    pub fn status(&self) -> Vec<RegionStatus> {
        status_of(&self.engine)
    }

    /// The speaker routes' health, in priority order: the configured regions, then the
    /// discovered pairs not configured themselves. Their breakers are separate from
    /// [`TandemClient::status`]'s; metric labels and events name them `region/speaker`.
    pub fn speaker_status(&self) -> Vec<RegionStatus> {
        status_of(&self.speaker.current())
    }

    /// Events from now on (retries, trips, failovers, failbacks, token refreshes, hedges,
    /// discoveries).
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.engine.events.subscribe()
    }

    /// The client's counters in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.engine.metrics.render()
    }

    /// Turns the decisive region result into a value or a typed error.
    pub(crate) fn finish(&self, w: Walked) -> Result<Answered<Response>> {
        finish_in(&self.engine, w)
    }
}

/// Turns the decisive region result of a walk over `engine` into a value or a typed error.
pub(crate) fn finish_in(engine: &Engine, w: Walked) -> Result<Answered<Response>> {
    let region = engine.name(w.tried.region).to_string();
    let node = engine.endpoint(w.tried.region, w.tried.node).to_string();
    match w.tried.result {
        RegionResult::Ok(r) => Ok(Answered {
            value: r,
            region,
            node,
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
