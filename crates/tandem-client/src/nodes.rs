//! The nodes of a region served by several `tandem serve` processes: what a try's outcome does
//! to its node's breaker, ejection and re-admission, and the events and metrics naming a node.
//!
//! Only regions with several nodes have node breakers (see [`crate::region`]). A node's fault
//! ([`crate::classify`]'s `node_fault`) counts against its breaker, anything else it answered
//! counts for it. The breaker is the region's kind, with the same policy: consecutive faults
//! or the failure ratio trip it, which ejects the node. Fail-fast applies per node: a try that
//! times out while the node answered nothing else ejects it at once. An ejected node is probed
//! on `/readyz` (the route set's readiness path) when its open period ends; the first good
//! probe puts it back in rotation, a failed one ejects it again for a longer period.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::time::Instant;

use crate::breaker::{BreakerState, ProbeEffect};
use crate::classify::Outcome;
use crate::config::CallKind;
use crate::engine::Engine;
use crate::observe::ClientEvent;
use crate::transport::TransportError;
use crate::wire::request;

impl Engine {
    /// Counts a try's outcome for or against its node (a region with several nodes only).
    pub(crate) fn node_outcome(
        &self,
        idx: usize,
        node: usize,
        fault: bool,
        outcome: &Outcome,
        started: Instant,
    ) {
        let now = Instant::now();
        let unit = rand::random::<f64>();
        let tripped = {
            let n = &self.regions[idx].nodes[node];
            let hung = fault
                && self.policy.failfast_on_hang
                && *outcome == Outcome::Transport(TransportError::Timeout)
                && n.last_answer
                    .lock()
                    .expect("answer lock")
                    .is_none_or(|t| t <= started);
            let mut b = n.breaker.lock().expect("node breaker lock");
            match (fault, hung) {
                (false, _) => {
                    b.on_success(now);
                    None
                }
                (true, false) => b.on_failure(now, unit),
                (true, true) => b.force_trip(now, unit),
            }
        };
        if let Some(open_for) = tripped {
            self.report_ejection(idx, node, open_for);
        }
    }

    /// A node fault moves the request to another node of the same region.
    pub(crate) fn node_retry(&self, idx: usize, from: usize, to: usize, outcome: &Outcome) {
        let why = match outcome {
            Outcome::Status { status, .. } => format!("status {status}"),
            Outcome::Transport(e) => e.to_string(),
        };
        tracing::debug!(
            region = self.label(idx),
            from = self.endpoint(idx, from),
            to = self.endpoint(idx, to),
            %why,
            "trying another node"
        );
        self.metrics.node_retries.inc();
        self.emit(ClientEvent::NodeRetry {
            region: self.label(idx),
            from: self.endpoint(idx, from).to_string(),
            to: self.endpoint(idx, to).to_string(),
        });
    }

    fn report_ejection(&self, idx: usize, node: usize, open_for: Duration) {
        let (region, endpoint) = (self.label(idx), self.endpoint(idx, node).to_string());
        self.metrics
            .node_ejections
            .with_label_values(&[&region, &endpoint])
            .inc();
        self.set_node_gauge(idx, node, BreakerState::Open);
        tracing::warn!(%region, node = %endpoint, ?open_for, "node ejected");
        self.emit(ClientEvent::NodeEjected {
            region,
            node: endpoint,
            open_for,
        });
    }

    /// The `node_ejected` gauge: 1 while the node is out of rotation, 0 in it.
    pub(crate) fn set_node_gauge(&self, idx: usize, node: usize, state: BreakerState) {
        self.metrics
            .node_ejected
            .with_label_values(&[&self.label(idx), self.endpoint(idx, node)])
            .set(i64::from(state != BreakerState::Closed));
    }

    /// Whether a node answers `GET {ready_path}` with a 2xx within the STS timeout.
    pub(crate) async fn node_ready(&self, idx: usize, node: usize) -> bool {
        let mut req = request(
            Method::GET,
            self.ready_path.into(),
            HeaderMap::new(),
            Bytes::new(),
        );
        req.timeout = self.policy.timeout(CallKind::Sts);
        matches!(self.send_node(idx, node, req).await, Ok(r) if r.status.is_success())
    }

    /// Probes an ejected node whose open period is over: a good probe puts it back in rotation.
    pub(crate) async fn probe_node(&self, idx: usize, node: usize) {
        let ok = self.node_ready(idx, node).await;
        let effect = {
            let n = &self.regions[idx].nodes[node];
            let mut b = n.breaker.lock().expect("node breaker lock");
            b.on_probe(ok, Instant::now(), Duration::ZERO, rand::random::<f64>())
        };
        match effect {
            ProbeEffect::Nothing | ProbeEffect::Recovering => {}
            ProbeEffect::FailedBack => {
                let (region, endpoint) = (self.label(idx), self.endpoint(idx, node).to_string());
                self.set_node_gauge(idx, node, BreakerState::Closed);
                tracing::info!(%region, node = %endpoint, "node back in rotation");
                self.emit(ClientEvent::NodeReadmitted {
                    region,
                    node: endpoint,
                });
            }
            ProbeEffect::Tripped(open_for) => self.report_ejection(idx, node, open_for),
        }
    }
}
