//! The policy engine: one region's attempts (token, timeout, classify, backoff, budget,
//! breaker) and the walk over regions in priority order (failover and hedging).

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method, StatusCode};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backoff::{Backoff, RetryBudget};
use crate::breaker::BreakerState;
use crate::classify::{classify, node_fault, redirect, retry_after, Class, Outcome};
use crate::config::{CallKind, Policy, RegionEntry};
use crate::observe::{ClientEvent, Metrics};
pub(crate) use crate::region::{Auth, Region};
use crate::transport::{Request, Response, StreamingResponse, Transport, TransportError};

/// An answer the engine can classify (by status and headers only) and hand back: buffered
/// ([`Response`]) or with its body still arriving ([`StreamingResponse`]).
#[async_trait::async_trait]
pub(crate) trait Reply: Sized + Send + 'static {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
    /// An STS answer (always buffered) as this kind of answer.
    fn from_buffered(r: Response) -> Self;
    /// Sends through the transport the way this kind of answer is read.
    async fn fetch(t: &dyn Transport, idx: usize, req: Request) -> Result<Self, TransportError>;
}

#[async_trait::async_trait]
impl Reply for Response {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn from_buffered(r: Response) -> Self {
        r
    }
    async fn fetch(t: &dyn Transport, idx: usize, req: Request) -> Result<Self, TransportError> {
        t.send(idx, req).await
    }
}

#[async_trait::async_trait]
impl Reply for StreamingResponse {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn from_buffered(r: Response) -> Self {
        r.into()
    }
    async fn fetch(t: &dyn Transport, idx: usize, req: Request) -> Result<Self, TransportError> {
        t.send_streaming(idx, req).await
    }
}

/// How a region's share of a call ended.
#[derive(Debug)]
pub(crate) enum RegionResult<R = Response> {
    /// 2xx.
    Ok(R),
    /// A caller-class status (4xx but 401).
    Caller(R),
    /// 401 after one refresh, or the STS refused the key.
    Unauthorized(R),
    /// Persistent failure or attempts exhausted; the description of the last outcome.
    Failed(String),
}

/// A region's result and the attempts it took.
#[derive(Debug)]
pub(crate) struct Tried<R = Response> {
    pub region: usize,
    /// The node of the region's last attempt.
    pub node: usize,
    pub attempts: u32,
    pub result: RegionResult<R>,
}

/// The decisive outcome of a whole call.
pub(crate) struct Walked<R = Response> {
    pub tried: Tried<R>,
    pub attempts: u32,
    pub failovers: u32,
}

/// Builds a region's request (without authentication) for a call.
pub(crate) type Build<'a> = &'a (dyn Fn(&RegionEntry) -> Request + Send + Sync);

/// One route set (the configured regions, or the speaker routes), shared between clones of
/// the client and its background tasks.
pub(crate) struct Engine {
    pub policy: Policy,
    pub regions: Vec<Arc<Region>>,
    pub transport: Arc<dyn Transport>,
    pub budget: Arc<RetryBudget>,
    pub events: broadcast::Sender<ClientEvent>,
    pub metrics: Metrics,
    pub backoff: Backoff,
    pub auth: Auth,
    /// The readiness probe's path (`/readyz`, or `/readyz/speaker`).
    pub ready_path: &'static str,
    /// Appended to region names in metric labels and events (`""`, or `/speaker`).
    pub suffix: &'static str,
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Status { status, .. } => format!("status {status}"),
        Outcome::Transport(e) => e.to_string(),
    }
}

impl Engine {
    pub fn emit(&self, e: ClientEvent) {
        tracing::debug!(event = ?e, "tandem client event");
        let _ = self.events.send(e);
    }

    pub fn name(&self, idx: usize) -> &str {
        &self.regions[idx].entry.name
    }

    /// A node's base URL, as events and metrics name it.
    pub fn endpoint(&self, idx: usize, node: usize) -> &str {
        &self.regions[idx].nodes[node].endpoint
    }

    /// The transport's index of a node: the nodes of every region in order, regions in
    /// priority order (so the region's index when every region has one node).
    pub fn slot(&self, idx: usize, node: usize) -> usize {
        let before: usize = self.regions[..idx].iter().map(|r| r.nodes.len()).sum();
        before + node
    }

    /// How many transport indices the route set uses.
    pub fn slots(&self) -> usize {
        self.regions.iter().map(|r| r.nodes.len()).sum()
    }

    /// The region's name in metric labels and events: `westus`, or `westus/speaker`.
    pub fn label(&self, idx: usize) -> String {
        format!("{}{}", self.name(idx), self.suffix)
    }

    pub fn set_gauge(&self, idx: usize, state: BreakerState) {
        self.metrics
            .breaker_state
            .with_label_values(&[&self.label(idx)])
            .set(state.gauge());
    }

    /// Regions to try, in order: closed ones by priority, then recovering ones by priority.
    pub fn candidates(&self) -> Vec<usize> {
        let states: Vec<BreakerState> = self
            .regions
            .iter()
            .map(|r| r.breaker.lock().expect("breaker lock").state())
            .collect();
        let states = &states;
        let pick = |s: BreakerState| (0..states.len()).filter(move |&i| states[i] == s);
        pick(BreakerState::Closed)
            .chain(pick(BreakerState::Recovering))
            .collect()
    }

    /// The region's bearer token, fetched from its STS when missing, near expiry or `stale`.
    /// The token is the region's, whichever node issued it: a region's nodes share its STS
    /// secret, so any of them accepts it.
    async fn token(
        &self,
        idx: usize,
        node: usize,
        stale: Option<&str>,
    ) -> Result<String, (Outcome, Option<Response>)> {
        let region = &self.regions[idx];
        let fetch = || async {
            let mut headers = http::HeaderMap::new();
            let mut key = HeaderValue::from_str(&region.key).map_err(|_| {
                (
                    Outcome::Transport(TransportError::Other("invalid key".into())),
                    None,
                )
            })?;
            key.set_sensitive(true);
            headers.insert("Ocp-Apim-Subscription-Key", key);
            let req = Request {
                method: Method::POST,
                path_and_query: "/sts/v1.0/issueToken".into(),
                headers,
                body: bytes::Bytes::new(),
                timeout: self.policy.timeout(CallKind::Sts),
            };
            let resp = self
                .send_node(idx, node, req)
                .await
                .map_err(|e| (Outcome::Transport(e), None))?;
            if resp.status.is_success() {
                Ok(String::from_utf8_lossy(&resp.body).trim().to_string())
            } else {
                let outcome = Outcome::Status {
                    status: resp.status.as_u16(),
                    retry_after: retry_after(&resp.headers),
                    redirect: redirect(&resp.headers),
                };
                Err((outcome, Some(resp)))
            }
        };
        let (token, fetched) = region.tokens.get(stale, fetch).await?;
        if fetched {
            self.emit(ClientEvent::TokenRefresh {
                region: region.entry.name.clone(),
                node: self.endpoint(idx, node).to_string(),
            });
        }
        Ok(token)
    }

    /// Sends to the region's first node in rotation (its first node when none is), under the
    /// request's timeout. The round-robin turn of calls is left alone.
    pub async fn send(&self, idx: usize, req: Request) -> Result<Response, TransportError> {
        let region = &self.regions[idx];
        let node = (0..region.nodes.len())
            .find(|&n| region.in_rotation(n))
            .unwrap_or(0);
        self.send_node(idx, node, req).await
    }

    /// Sends to one node through the transport under the request's timeout (tokio time, so
    /// tests pause it).
    pub async fn send_node(
        &self,
        idx: usize,
        node: usize,
        req: Request,
    ) -> Result<Response, TransportError> {
        self.send_as(idx, node, req).await
    }

    /// Sends through the transport under the request's timeout, reading the answer as `R`. For
    /// a [`StreamingResponse`] the timeout covers the response head only.
    async fn send_as<R: Reply>(
        &self,
        idx: usize,
        node: usize,
        req: Request,
    ) -> Result<R, TransportError> {
        let timeout = req.timeout;
        let fetch = R::fetch(self.transport.as_ref(), self.slot(idx, node), req);
        let result = match tokio::time::timeout(timeout, fetch).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout),
        };
        if result.is_ok() {
            let now = Some(Instant::now());
            let region = &self.regions[idx];
            *region.last_answer.lock().expect("answer lock") = now;
            *region.nodes[node].last_answer.lock().expect("answer lock") = now;
        }
        result
    }

    /// One attempt: token, then the request. The bool says whether the STS answered.
    async fn attempt<R: Reply>(
        &self,
        idx: usize,
        node: usize,
        base: &Request,
        stale: Option<&str>,
    ) -> (Outcome, Option<R>, Option<String>, bool) {
        let mut req = base.clone();
        let (name, value, token) = match self.auth {
            Auth::Key => (
                HeaderName::from_static("ocp-apim-subscription-key"),
                self.regions[idx].key.clone(),
                None,
            ),
            Auth::Token => match self.token(idx, node, stale).await {
                Ok(t) => (AUTHORIZATION, format!("Bearer {t}"), Some(t)),
                Err((outcome, resp)) => return (outcome, resp.map(R::from_buffered), None, true),
            },
        };
        match HeaderValue::from_str(&value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                req.headers.insert(name, v)
            }
            Err(_) => {
                let e = TransportError::Other("invalid credentials".into());
                return (Outcome::Transport(e), None, None, true);
            }
        };
        let started = Instant::now();
        match self.send_as::<R>(idx, node, req).await {
            Ok(resp) => {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let mut ewma = self.regions[idx].ewma_ms.lock().expect("ewma lock");
                *ewma = Some(ewma.map_or(ms, |prev| prev * 0.8 + ms * 0.2));
                let outcome = Outcome::Status {
                    status: resp.status().as_u16(),
                    retry_after: retry_after(resp.headers()),
                    redirect: redirect(resp.headers()),
                };
                (outcome, Some(resp), token, false)
            }
            Err(e) => (Outcome::Transport(e), None, token, false),
        }
    }

    fn record(&self, idx: usize, ok: bool) {
        let now = Instant::now();
        let mut b = self.regions[idx].breaker.lock().expect("breaker lock");
        if ok {
            b.on_success(now);
            return;
        }
        if let Some(open_for) = b.on_failure(now, rand::random::<f64>()) {
            drop(b);
            self.report_trip(idx, open_for);
        }
    }

    /// Fail-fast: a region that answered nothing (not even other calls) during a whole
    /// per-try timeout is hung, so retrying there only adds another timeout.
    fn hung(&self, idx: usize, outcome: &Outcome, started: Instant) -> bool {
        let last = *self.regions[idx].last_answer.lock().expect("answer lock");
        self.policy.failfast_on_hang
            && *outcome == Outcome::Transport(TransportError::Timeout)
            && last.is_none_or(|t| t <= started)
    }

    fn trip_now(&self, idx: usize) {
        let now = Instant::now();
        let tripped = {
            let mut b = self.regions[idx].breaker.lock().expect("breaker lock");
            b.force_trip(now, rand::random::<f64>())
        };
        if let Some(open_for) = tripped {
            self.report_trip(idx, open_for);
        }
    }

    fn report_trip(&self, idx: usize, open_for: Duration) {
        self.metrics.trips.inc();
        self.set_gauge(idx, BreakerState::Open);
        tracing::warn!(
            region = self.label(idx),
            ?open_for,
            "circuit breaker tripped"
        );
        self.emit(ClientEvent::Trip {
            region: self.label(idx),
            open_for,
        });
    }

    /// Up to `max_attempts` rounds of attempts on one region, with backoff and the retry
    /// budget between rounds.
    ///
    /// A round is one try, except in a region with several nodes: there a node's fault
    /// ([`node_fault`]: no answer, or a 5xx) is counted by the node's breaker and the same
    /// request goes at once, without backoff, to the next node in rotation that has not failed
    /// this round. The round ends with an answer, or when no such node is left; then its last
    /// outcome is the region's, as for a one-node region. So a dead node costs a call nothing,
    /// and the region counts as failed only when every node it could try failed.
    ///
    /// Transient outcomes are retried after [`Backoff::delay`] while rounds and budget last
    /// (and a `Retry-After` is no longer than the per-try timeout); then the region counts as
    /// failed. A 401 refetches the token once, without backoff.
    ///
    /// Only the status and headers decide; with `R` = [`StreamingResponse`] the body of an
    /// answer that is retried is dropped unread, and a decisive answer's body is left to the
    /// caller.
    pub async fn call_region<R: Reply>(
        &self,
        kind: CallKind,
        idx: usize,
        build: Build<'_>,
    ) -> Tried<R> {
        let name = self.label(idx);
        let region = &self.regions[idx];
        let mut base = build(&region.entry);
        base.timeout = self.policy.timeout(kind);
        let (mut attempts, mut rounds, mut retries) = (0, 0, 0);
        let mut stale: Option<String> = None;
        let mut refreshed = false;
        // Nodes that failed this round, and the node chosen for the next try.
        let mut failed: Vec<usize> = Vec::new();
        let mut next: Option<usize> = None;
        loop {
            // `pick` always finds a node when a round starts (no node has failed yet).
            let node = next.take().or_else(|| region.pick(&failed)).unwrap_or(0);
            attempts += 1;
            let span = tracing::debug_span!(
                "attempt",
                region = %name,
                node = self.endpoint(idx, node),
                attempt = attempts
            );
            let started = Instant::now();
            let stale_now = stale.take();
            let (outcome, resp, token, from_sts) = self
                .attempt::<R>(idx, node, &base, stale_now.as_deref())
                .instrument(span)
                .await;
            let class = classify(&outcome);
            let label = match &class {
                Class::Success => "success",
                Class::Transient { .. } => "transient",
                Class::Persistent => "persistent",
                Class::Caller => "caller",
                Class::Unauthorized => "unauthorized",
            };
            self.metrics
                .requests
                .with_label_values(&[&name, label])
                .inc();
            self.metrics
                .node_requests
                .with_label_values(&[&name, self.endpoint(idx, node), label])
                .inc();
            if region.balanced() {
                let fault = node_fault(&outcome);
                self.node_outcome(idx, node, fault, &outcome, started);
                if fault {
                    failed.push(node);
                    if let Some(other) = region.pick(&failed) {
                        self.node_retry(idx, node, other, &outcome);
                        next = Some(other);
                        stale = stale_now;
                        continue;
                    }
                }
            }
            failed.clear();
            rounds += 1;
            let done = |result| Tried {
                region: idx,
                node,
                attempts,
                result,
            };
            match (class, resp) {
                (Class::Success, Some(r)) if !from_sts => {
                    self.record(idx, true);
                    return done(RegionResult::Ok(r));
                }
                (Class::Caller, Some(r)) => {
                    self.record(idx, true);
                    return done(RegionResult::Caller(r));
                }
                (Class::Unauthorized, Some(r)) => {
                    // With the key there is no token to refresh: a 401 is final.
                    if from_sts || refreshed || token.is_none() {
                        return done(RegionResult::Unauthorized(r));
                    }
                    refreshed = true;
                    stale = token;
                }
                (Class::Transient { .. }, _) if self.hung(idx, &outcome, started) => {
                    tracing::warn!(region = %name, "no answer for a whole per-try timeout; failing fast");
                    self.trip_now(idx);
                    return done(RegionResult::Failed(
                        "hung: no answer within the per-try timeout".into(),
                    ));
                }
                // A Retry-After longer than a whole try is not waited for: the next region is
                // a better bet than an idle wait.
                (Class::Transient { retry_after }, _)
                    if rounds < self.policy.max_attempts
                        && retry_after.is_none_or(|ra| ra <= base.timeout)
                        && self.budget.withdraw() =>
                {
                    let delay = self
                        .backoff
                        .delay(retries, rand::random::<f64>(), retry_after);
                    retries += 1;
                    self.metrics.retries.inc();
                    tracing::debug!(region = %name, attempt = attempts, ?delay, "retrying");
                    self.emit(ClientEvent::Retry {
                        region: name.clone(),
                        node: self.endpoint(idx, node).to_string(),
                        attempt: attempts,
                        delay,
                    });
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    self.record(idx, false);
                    return done(RegionResult::Failed(describe(&outcome)));
                }
            }
        }
    }
}
