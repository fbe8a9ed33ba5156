//! A region as a route set keeps it (breaker, token, latency, its nodes), and how a route set
//! authenticates.
//!
//! A region may be served by several nodes (`endpoints = [...]`): `tandem serve` processes
//! sharing the region's data and STS secret. Its calls are balanced round-robin over the nodes
//! in rotation. In a region with several nodes each node has a breaker of its own, with the
//! region's policy: a node whose breaker trips is *ejected* (it gets no calls) until a
//! readiness probe passes, which puts it back at once. When every node is ejected, calls go to
//! all of them again (a "panic mode", as Envoy's load balancer has), so that the region's own
//! breaker, not the nodes', decides when the region fails over. A one-node region has no node
//! breaker: the region's breaker is its node's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{Breaker, BreakerState};
use crate::config::{Policy, RegionEntry};
use crate::token::TokenCache;

/// One node of a region.
pub(crate) struct Node {
    /// Its base URL, as configured (named in events and metrics).
    pub endpoint: String,
    /// Used only when the region has several nodes.
    pub breaker: Mutex<Breaker>,
    /// When the node last answered anything.
    pub last_answer: Mutex<Option<Instant>>,
}

/// A region as the engine keeps it.
pub(crate) struct Region {
    pub entry: RegionEntry,
    pub key: String,
    pub breaker: Mutex<Breaker>,
    /// One token for the whole region: its nodes share the STS secret.
    pub tokens: TokenCache,
    pub ewma_ms: Mutex<Option<f64>>,
    /// When the region last answered anything (data plane, STS or probe), on any node.
    pub last_answer: Mutex<Option<Instant>>,
    /// At least one.
    pub nodes: Vec<Node>,
    /// The round-robin cursor.
    next: AtomicUsize,
}

impl Region {
    /// A region with closed breakers and no token yet.
    pub fn new(entry: RegionEntry, key: String, p: &Policy, now: Instant) -> Self {
        let nodes = entry
            .endpoints()
            .into_iter()
            .map(|e| Node {
                endpoint: e.to_string(),
                breaker: Mutex::new(Breaker::new(p, now)),
                last_answer: Mutex::new(None),
            })
            .collect();
        Region {
            key,
            entry,
            breaker: Mutex::new(Breaker::new(p, now)),
            tokens: TokenCache::new(Duration::from_millis(p.token_refresh_margin_ms)),
            ewma_ms: Mutex::new(None),
            last_answer: Mutex::new(None),
            nodes,
            next: AtomicUsize::new(0),
        }
    }

    /// Whether the region has several nodes, and so node breakers.
    pub fn balanced(&self) -> bool {
        self.nodes.len() > 1
    }

    /// A node's breaker state.
    pub fn node_state(&self, node: usize) -> BreakerState {
        self.nodes[node]
            .breaker
            .lock()
            .expect("node breaker lock")
            .state()
    }

    /// Whether a node takes calls: always in a one-node region, when its breaker is closed
    /// otherwise.
    pub fn in_rotation(&self, node: usize) -> bool {
        !self.balanced() || self.node_state(node) == BreakerState::Closed
    }

    /// The node for the next try, round-robin over the nodes in rotation that are not in
    /// `skip` (the nodes that already failed this round of the call); over all nodes not in
    /// `skip` when none is in rotation (panic mode). `None` when no such node is left.
    pub fn pick(&self, skip: &[usize]) -> Option<usize> {
        let all = 0..self.nodes.len();
        let mut eligible: Vec<usize> = all
            .clone()
            .filter(|&n| self.in_rotation(n) && !skip.contains(&n))
            .collect();
        if eligible.is_empty() && !(0..self.nodes.len()).any(|n| self.in_rotation(n)) {
            eligible = all.filter(|n| !skip.contains(n)).collect();
        }
        if eligible.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(eligible[turn % eligible.len()])
    }
}

/// How a route set authenticates its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// A bearer token from the region's own STS (cached, refreshed once on 401).
    Token,
    /// The region's resource key in `Ocp-Apim-Subscription-Key`; for a discovered pair, the key
    /// of the configured region it pairs (the pair accepts it; its STS would not).
    Key,
}
