//! A region as a route set keeps it (breaker, token, latency), and how a route set
//! authenticates.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::config::{Policy, RegionEntry};
use crate::token::TokenCache;

/// A region as the engine keeps it.
pub(crate) struct Region {
    pub entry: RegionEntry,
    pub key: String,
    pub breaker: Mutex<Breaker>,
    pub tokens: TokenCache,
    pub ewma_ms: Mutex<Option<f64>>,
    /// When the region last answered anything (data plane, STS or probe).
    pub last_answer: Mutex<Option<Instant>>,
}

impl Region {
    /// A region with a closed breaker and no token yet.
    pub fn new(entry: RegionEntry, key: String, p: &Policy, now: Instant) -> Self {
        Region {
            key,
            entry,
            breaker: Mutex::new(Breaker::new(p, now)),
            tokens: TokenCache::new(Duration::from_millis(p.token_refresh_margin_ms)),
            ewma_ms: Mutex::new(None),
            last_answer: Mutex::new(None),
        }
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
