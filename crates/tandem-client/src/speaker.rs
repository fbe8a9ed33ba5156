//! The speaker route set: the configured regions in priority order, then each discovered pair
//! that is not configured itself, with breakers of their own (a region can serve speech while
//! its speaker data is still catching up) and readiness probes on `/readyz/speaker`.
//!
//! Speaker calls authenticate with the resource key, because a pair accepts the key of the
//! region it pairs but neither that region's tokens nor, through its STS, new ones for it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{CallKind, RegionEntry};
use crate::engine::{Auth, Engine, Region};
use crate::error::Result;
use crate::prober::probe_round;
use crate::transport::{Request, Response, StreamingResponse, Transport, TransportError};

/// Creates the [`Transport`] of a region learned at run time (a discovered pair); the
/// transport is then addressed with index 0. For HTTP this is `HttpTransport::new(&[entry])`.
pub type TransportFactory =
    Arc<dyn Fn(&RegionEntry) -> Result<Arc<dyn Transport>> + Send + Sync + 'static>;

/// A region's pair, as its discovery document names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pair {
    pub name: String,
    pub endpoint: String,
}

/// The configured regions' transport for the first `base_len` indices (their nodes), then one
/// transport per discovered pair (one node each).
struct SpeakerTransport {
    base: Arc<dyn Transport>,
    base_len: usize,
    extra: Vec<Arc<dyn Transport>>,
}

impl SpeakerTransport {
    fn route(&self, idx: usize) -> Result<(&dyn Transport, usize), TransportError> {
        if idx < self.base_len {
            return Ok((self.base.as_ref(), idx));
        }
        self.extra
            .get(idx - self.base_len)
            .map(|t| (t.as_ref(), 0))
            .ok_or_else(|| TransportError::Other("no such region".into()))
    }
}

#[async_trait::async_trait]
impl Transport for SpeakerTransport {
    async fn send(&self, idx: usize, req: Request) -> Result<Response, TransportError> {
        let (t, i) = self.route(idx)?;
        t.send(i, req).await
    }

    async fn send_streaming(
        &self,
        idx: usize,
        req: Request,
    ) -> Result<StreamingResponse, TransportError> {
        let (t, i) = self.route(idx)?;
        t.send_streaming(i, req).await
    }
}

impl Engine {
    /// Another route set sharing this one's policy, budget, events and metrics.
    pub fn sibling(
        &self,
        regions: Vec<Arc<Region>>,
        transport: Arc<dyn Transport>,
        auth: Auth,
        ready_path: &'static str,
        suffix: &'static str,
    ) -> Engine {
        let e = Engine {
            policy: self.policy.clone(),
            regions,
            transport,
            budget: self.budget.clone(),
            events: self.events.clone(),
            metrics: self.metrics.clone(),
            backoff: self.backoff,
            auth,
            ready_path,
            suffix,
        };
        for i in 0..e.regions.len() {
            let state = e.regions[i].breaker.lock().expect("breaker lock").state();
            e.set_gauge(i, state);
        }
        e
    }
}

/// The speaker routes and what discovery learned, shared by the client and its tasks.
pub(crate) struct SpeakerRoutes {
    /// The configured route set (discovery is sent through it).
    pub main: Arc<Engine>,
    factory: TransportFactory,
    current: RwLock<Arc<Engine>>,
    /// Each configured region's pair, by configured index.
    pub pairs: Mutex<Vec<Option<Pair>>>,
    /// Whether each configured region has answered discovery once.
    pub answered: Mutex<Vec<bool>>,
    /// Becomes true when the first discovery round is over.
    pub first_round: watch::Sender<bool>,
    /// Transports of pairs, by endpoint, made once each.
    transports: Mutex<HashMap<String, Arc<dyn Transport>>>,
}

impl SpeakerRoutes {
    /// The configured regions only, each with a fresh breaker.
    pub fn new(main: Arc<Engine>, factory: TransportFactory) -> Self {
        let now = Instant::now();
        let regions = main
            .regions
            .iter()
            .map(|r| {
                Arc::new(Region::new(
                    r.entry.clone(),
                    r.key.clone(),
                    &main.policy,
                    now,
                ))
            })
            .collect();
        let transport = Arc::new(SpeakerTransport {
            base: main.transport.clone(),
            base_len: main.slots(),
            extra: Vec::new(),
        });
        let engine = main.sibling(regions, transport, Auth::Key, "/readyz/speaker", "/speaker");
        let n = main.regions.len();
        SpeakerRoutes {
            main,
            factory,
            current: RwLock::new(Arc::new(engine)),
            pairs: Mutex::new(vec![None; n]),
            answered: Mutex::new(vec![false; n]),
            first_round: watch::channel(false).0,
            transports: Mutex::new(HashMap::new()),
        }
    }

    /// The route set new speaker calls use.
    pub fn current(&self) -> Arc<Engine> {
        self.current.read().expect("routes lock").clone()
    }

    /// The current route set, once the first discovery round is over (waiting at most the STS
    /// timeout for it); at once when discovery is off.
    pub async fn ready(&self) -> Arc<Engine> {
        if self.main.policy.discovery {
            let mut rx = self.first_round.subscribe();
            let wait = self.main.policy.timeout(CallKind::Sts);
            if tokio::time::timeout(wait, rx.wait_for(|done| *done))
                .await
                .is_err()
            {
                tracing::debug!("speaker call: discovery not finished; using what is known");
            }
        }
        self.current()
    }

    /// Rebuilds the route set from `pairs`: configured regions first, then each pair not
    /// already configured (the first configured region naming it lends its key). Regions that
    /// stay (same name, endpoint and key) keep their breaker, token and latency state; calls
    /// in flight finish on the route set they started with.
    pub fn rebuild(&self) {
        let old = self.current();
        let main = &self.main;
        let n = main.regions.len();
        let pairs = self.pairs.lock().expect("pairs lock").clone();
        let mut names: HashSet<String> =
            main.regions.iter().map(|r| r.entry.name.clone()).collect();
        let mut regions: Vec<Arc<Region>> = old.regions[..n].to_vec();
        let mut extra = Vec::new();
        let now = Instant::now();
        for (of, pair) in pairs.iter().enumerate() {
            let Some(pair) = pair else { continue };
            if !names.insert(pair.name.clone()) {
                continue;
            }
            let key = main.regions[of].key.clone();
            let transport = match self.transport(pair, &key) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(pair = %pair.name, error = %e, "cannot reach a discovered pair");
                    continue;
                }
            };
            let kept = old.regions[n..].iter().find(|r| {
                r.entry.name == pair.name
                    && r.entry.endpoints == [pair.endpoint.clone()]
                    && r.key == key
            });
            let region = match kept {
                Some(r) => r.clone(),
                None => Arc::new(Region::new(entry(pair, &key), key, &main.policy, now)),
            };
            regions.push(region);
            extra.push(transport);
        }
        let transport = Arc::new(SpeakerTransport {
            base: main.transport.clone(),
            base_len: main.slots(),
            extra,
        });
        let engine = main.sibling(regions, transport, Auth::Key, "/readyz/speaker", "/speaker");
        let routes: Vec<&str> = engine
            .regions
            .iter()
            .map(|r| r.entry.name.as_str())
            .collect();
        tracing::info!(?routes, "speaker routes rebuilt");
        *self.current.write().expect("routes lock") = Arc::new(engine);
    }

    fn transport(&self, pair: &Pair, key: &str) -> Result<Arc<dyn Transport>> {
        let mut cache = self.transports.lock().expect("transports lock");
        if let Some(t) = cache.get(&pair.endpoint) {
            return Ok(t.clone());
        }
        let t = (self.factory)(&entry(pair, key))?;
        cache.insert(pair.endpoint.clone(), t.clone());
        Ok(t)
    }
}

/// The configuration entry of a discovered pair, carrying the key of the region it pairs.
fn entry(pair: &Pair, key: &str) -> RegionEntry {
    RegionEntry {
        name: pair.name.clone(),
        endpoints: vec![pair.endpoint.clone()],
        key: Some(key.to_string()),
        key_file: None,
        cid: None,
        voice_deployment_id: None,
    }
}

/// Probes the current speaker routes on `/readyz/speaker` every `probe_interval`, until the
/// client is gone.
pub(crate) async fn speaker_prober(routes: Weak<SpeakerRoutes>) {
    let interval = match routes.upgrade() {
        Some(r) => Duration::from_millis(r.main.policy.probe_interval_ms),
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(r) = routes.upgrade() else { return };
        let engine = r.current();
        drop(r);
        probe_round(&engine).await;
    }
}
