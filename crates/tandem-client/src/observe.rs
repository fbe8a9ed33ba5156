//! What the client tells the outside: events, Prometheus counters and region status.

use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::engine::Engine;

/// Something the policy engine did, broadcast to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ClientEvent {
    /// A transient failure is retried on the same region after `delay`.
    Retry {
        /// The region.
        region: String,
        /// The node (endpoint) whose answer is retried.
        node: String,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The backoff before the next attempt.
        delay: Duration,
    },
    /// A region's breaker tripped.
    Trip {
        /// The region.
        region: String,
        /// How long it stays open.
        open_for: Duration,
    },
    /// A call moved on to the next region.
    Failover {
        /// The region that failed.
        from: String,
        /// The region tried next.
        to: String,
    },
    /// A recovered region has been healthy for `failback_after`: traffic returns to it.
    Failback {
        /// The region.
        to: String,
    },
    /// A region's STS token was fetched or refreshed.
    TokenRefresh {
        /// The region.
        region: String,
        /// The node (endpoint) that issued it; the token is valid on every node of the region.
        node: String,
    },
    /// Discovery learned a configured region's pair, or saw it change (`None`: it has none).
    Discovered {
        /// The configured region.
        region: String,
        /// The name of its pair.
        pair: Option<String>,
    },
    /// A node of a region failed a try (no answer, or a 5xx): the same request went at once
    /// to another node of the region. Not a failover: the region did not fail.
    NodeRetry {
        /// The region.
        region: String,
        /// The node that failed.
        from: String,
        /// The node tried next.
        to: String,
    },
    /// A node's breaker tripped (or a probe of it failed): it gets no calls until a readiness
    /// probe passes.
    NodeEjected {
        /// The region.
        region: String,
        /// The node (endpoint).
        node: String,
        /// How long until it is probed.
        open_for: Duration,
    },
    /// An ejected node passed its readiness probe and takes calls again.
    NodeReadmitted {
        /// The region.
        region: String,
        /// The node (endpoint).
        node: String,
    },
    /// A slow call was also sent to the next region.
    Hedge {
        /// The slow region.
        from: String,
        /// The region hedged to.
        to: String,
    },
}

/// One region's health, for `status()`.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// Region name.
    pub name: String,
    /// Region endpoint (its first node's, when it has several).
    pub endpoint: String,
    /// Breaker state.
    pub state: BreakerState,
    /// Consecutive failed calls.
    pub consecutive_failures: u32,
    /// How long it has been closed or recovering, in milliseconds.
    pub healthy_for_ms: u64,
    /// Exponentially weighted mean latency of answered attempts, in milliseconds.
    pub ewma_latency_ms: f64,
    /// Whether new calls go here first.
    pub preferred: bool,
    /// The region's nodes, each with its own breaker, when it has several; empty for a
    /// one-node region, whose breaker is the region's.
    pub nodes: Vec<NodeStatus>,
}

/// One node's health, in a region with several nodes.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node's base URL.
    pub endpoint: String,
    /// Its breaker: `Closed` in rotation; otherwise ejected.
    pub state: BreakerState,
    /// Whether it takes calls.
    pub in_rotation: bool,
    /// Consecutive faults.
    pub consecutive_failures: u32,
}

/// The client's counters, in a registry it owns.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub retries: IntCounter,
    pub failovers: IntCounter,
    pub failbacks: IntCounter,
    pub trips: IntCounter,
    pub breaker_state: IntGaugeVec,
    pub node_requests: IntCounterVec,
    pub node_retries: IntCounter,
    pub node_ejections: IntCounterVec,
    pub node_ejected: IntGaugeVec,
    pub voice_answers: IntCounterVec,
    pub custom_speech_answers: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tandem_client_requests_total",
                "Attempts by region and outcome.",
            ),
            &["region", "outcome"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let retries = counter("tandem_client_retries_total", "Retries on the same region.");
        let failovers = counter("tandem_client_failovers_total", "Moves to the next region.");
        let failbacks = counter(
            "tandem_client_failbacks_total",
            "Returns to a recovered region.",
        );
        let trips = counter(
            "tandem_client_breaker_trips_total",
            "Circuit breaker trips.",
        );
        let breaker_state = IntGaugeVec::new(
            Opts::new(
                "tandem_client_breaker_state",
                "0 closed, 1 open, 2 half-open or recovering.",
            ),
            &["region"],
        )
        .expect("valid metric");
        let node_requests = IntCounterVec::new(
            Opts::new(
                "tandem_client_node_requests_total",
                "Attempts by region, node and outcome.",
            ),
            &["region", "node", "outcome"],
        )
        .expect("valid metric");
        let node_retries = counter(
            "tandem_client_node_retries_total",
            "Tries moved to another node of the same region.",
        );
        let node_ejections = IntCounterVec::new(
            Opts::new(
                "tandem_client_node_ejections_total",
                "Nodes taken out of rotation (breaker trips and failed probes).",
            ),
            &["region", "node"],
        )
        .expect("valid metric");
        let node_ejected = IntGaugeVec::new(
            Opts::new(
                "tandem_client_node_ejected",
                "1 while the node is out of rotation, 0 in it.",
            ),
            &["region", "node"],
        )
        .expect("valid metric");
        let voice_answers = IntCounterVec::new(
            Opts::new(
                "tandem_client_voice_answers_total",
                "Custom voice syntheses answered, by the link of the voice chain that answered \
                 (custom, custom-secondary, public) and its region.",
            ),
            &["link", "region"],
        )
        .expect("valid metric");
        let custom_speech_answers = IntCounterVec::new(
            Opts::new(
                "tandem_client_custom_speech_answers_total",
                "Recognitions asked of the custom model, by the region that answered and whether \
                 it had a cid (custom) or served its default model (default).",
            ),
            &["region", "model"],
        )
        .expect("valid metric");
        for v in [&voice_answers, &custom_speech_answers] {
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
        }
        for c in [&retries, &failovers, &failbacks, &trips, &node_retries] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(breaker_state.clone()))
            .expect("unique metric");
        for v in [&node_requests, &node_ejections] {
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(node_ejected.clone()))
            .expect("unique metric");
        Metrics {
            registry,
            requests,
            retries,
            failovers,
            failbacks,
            trips,
            breaker_state,
            node_requests,
            node_retries,
            node_ejections,
            node_ejected,
            voice_answers,
            custom_speech_answers,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        buf
    }
}

/// The health of a route set's regions, in priority order.
pub(crate) fn status_of(engine: &Engine) -> Vec<RegionStatus> {
    let now = Instant::now();
    let preferred = engine.candidates().first().copied();
    engine
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let nodes = match r.balanced() {
                false => Vec::new(),
                true => (0..r.nodes.len())
                    .map(|n| {
                        let b = r.nodes[n].breaker.lock().expect("node breaker lock");
                        NodeStatus {
                            endpoint: r.nodes[n].endpoint.clone(),
                            state: b.state(),
                            in_rotation: b.state() == BreakerState::Closed,
                            consecutive_failures: b.consecutive_failures(),
                        }
                    })
                    .collect(),
            };
            let b = r.breaker.lock().expect("breaker lock");
            RegionStatus {
                name: r.entry.name.clone(),
                endpoint: r.nodes[0].endpoint.clone(),
                nodes,
                state: b.state(),
                consecutive_failures: b.consecutive_failures(),
                healthy_for_ms: b.healthy_for(now).as_millis() as u64,
                ewma_latency_ms: r.ewma_ms.lock().expect("ewma lock").unwrap_or(0.0),
                preferred: preferred == Some(i),
            }
        })
        .collect()
}
