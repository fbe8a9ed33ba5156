//! Paired-region replication of speaker data, and the discovery document.
//!
//! A region with a `pair` follows its pair's origin log: a background [`Follower`] pulls
//! `GET /internal/v1/replication/speaker?after=N` (long poll, signed with the peer secret),
//! syncs the pair's resources (so their keys work here for their speaker data), writes the
//! enrollment audio, and applies the changes under the store's merge rules
//! ([`tandem_store::replication`]). Both regions of a pair do this, in both directions.
//!
//! After a start, a region is [`SpeakerState::CatchingUp`]: its speaker routes answer 503 (so
//! clients stay on the pair) until it has applied its pair's whole log, i.e. every change the
//! pair took while this region was down. Only then does it take speaker traffic back. If the pair
//! cannot be reached for `catchup_timeout_ms`, the region serves anyway (both may be down or
//! partitioned; concurrent writes merge when they meet again).
//!
//! A region of several nodes follows its pair once: every node runs the follower, but only the
//! holder of the region's replication lease pulls and applies ([`lease`]); the others take
//! it over when it lapses. A node that does not hold it still starts catching up, and serves
//! once the region's cursor (written by the holder in the shared store) reaches the pair's head.

mod lease;
mod link;
mod wire;
mod worker;

use std::sync::Mutex;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tandem_core::{
    PeerAuth, PeerConfig, RegionConfig, RegionName, ReplicationConfig, PEER_HEADER,
    PEER_SIGNATURE_HEADER, PEER_TIME_HEADER,
};
use time::OffsetDateTime;
use tokio::sync::watch;

pub use lease::replication_lease_job;
pub use link::{HttpPairLink, LinkError, PairLink};
pub use wire::{
    Discovery, PairRef, PullResponse, Services, SpeakerService, WireChange,
    DISCOVERY_FORMAT_VERSION, DISCOVERY_PATH, PULL_PATH,
};
pub use worker::Follower;

use crate::auth::unix_now;
use crate::ApiError;

/// Whether a region serves speaker traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpeakerState {
    /// No pair: serves, replicates nothing.
    Standalone,
    /// Applying what the pair took meanwhile; speaker routes answer 503.
    CatchingUp,
    /// Serving, and following the pair's log.
    Serving,
}

impl SpeakerState {
    fn gauge(self) -> i64 {
        match self {
            SpeakerState::CatchingUp => 0,
            SpeakerState::Serving | SpeakerState::Standalone => 1,
        }
    }
}

/// What the follower last saw, for the admin status route.
#[derive(Debug, Clone, Default)]
pub(crate) struct FollowerStatus {
    pub last_pull: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub caught_up_at: Option<OffsetDateTime>,
    pub pair_head: u64,
    pub cursor: u64,
    pub applied_total: u64,
    /// Whether this node held the region's replication lease at its last try.
    pub leader: bool,
}

/// A region's replication state, shared by the routes and the follower.
pub struct Replication {
    region: RegionName,
    pair: Option<PeerConfig>,
    peers: Vec<PeerConfig>,
    auth: Option<PeerAuth>,
    config: ReplicationConfig,
    node: String,
    lease_ttl: std::time::Duration,
    state: watch::Sender<SpeakerState>,
    local: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    pub(crate) status: Mutex<FollowerStatus>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("region", &self.region)
            .field("pair", &self.pair)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Replication {
    /// From the region's config and its peer secret (see [`RegionConfig::peer_secret`]). With
    /// a pair the region starts catching up; without one it is standalone.
    pub fn new(cfg: &RegionConfig, peer_secret: Option<String>) -> Self {
        let pair = cfg.pair_peer().cloned();
        let initial = if pair.is_some() {
            SpeakerState::CatchingUp
        } else {
            SpeakerState::Standalone
        };
        Replication {
            region: cfg.region.clone(),
            pair,
            peers: cfg.peers.clone(),
            auth: peer_secret.map(|s| PeerAuth::new(cfg.region.clone(), s.into_bytes())),
            config: cfg.replication.clone(),
            node: cfg.node_name(),
            lease_ttl: std::time::Duration::from_secs(cfg.job_lease_secs.max(1)),
            state: watch::channel(initial).0,
            local: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            status: Mutex::new(FollowerStatus::default()),
        }
    }

    /// The paired region, if any.
    pub fn pair(&self) -> Option<&PeerConfig> {
        self.pair.as_ref()
    }

    /// The signer/verifier of inter-region calls, if a peer secret is configured.
    pub fn auth(&self) -> Option<&PeerAuth> {
        self.auth.as_ref()
    }

    /// Replication tuning.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// This region.
    pub fn region(&self) -> &RegionName {
        &self.region
    }

    /// This node's name, the holder name of the region's replication lease.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The replication lease's time to live (`job_lease_secs`).
    pub fn lease_ttl(&self) -> std::time::Duration {
        self.lease_ttl
    }

    /// The speaker service's state.
    pub fn state(&self) -> SpeakerState {
        *self.state.borrow()
    }

    /// Watches the state (tests, the follower).
    pub fn watch_state(&self) -> watch::Receiver<SpeakerState> {
        self.state.subscribe()
    }

    pub(crate) fn set_state(&self, s: SpeakerState, metrics: &crate::Metrics) {
        self.state.send_replace(s);
        metrics.speaker_serving.set(s.gauge());
    }

    /// Refuses speaker traffic while catching up: 503 with `Retry-After: 1` and
    /// `x-tandem-redirect: pair`, on which the client SDK and the gateway fail over at once.
    pub fn check_serving(&self) -> Result<(), ApiError> {
        if self.state() == SpeakerState::CatchingUp {
            let pair = self
                .pair
                .as_ref()
                .map_or("its pair".into(), |p| p.name.to_string());
            return Err(ApiError::UsePair(format!(
                "region {} is catching up with the speaker data changed at {pair} while it was down; use {pair} meanwhile",
                self.region
            )));
        }
        Ok(())
    }

    /// Records that a local speaker change committed: wakes long polls.
    pub fn local_changed(&self) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Watches local commits (the pull route waits on it).
    pub fn watch_local(&self) -> watch::Receiver<u64> {
        self.local.subscribe()
    }

    /// Starts shutting down: long polls return at once and the follower stops.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Watches the shutdown flag.
    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Checks a signed inter-region request; returns the calling region. 403 when peering is
    /// not configured or the signature does not verify.
    pub fn verify_peer(
        &self,
        headers: &HeaderMap,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<RegionName, ApiError> {
        let Some(auth) = &self.auth else {
            return Err(ApiError::Forbidden(format!(
                "region {} accepts no inter-region calls: it has no peer secret",
                self.region
            )));
        };
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        auth.verify(
            h(PEER_HEADER),
            h(PEER_TIME_HEADER),
            h(PEER_SIGNATURE_HEADER),
            method,
            path_and_query,
            body,
            unix_now(),
            |r| self.peers.iter().any(|p| &p.name == r),
        )
        .map_err(|e| {
            tracing::warn!(error = %e, "refused an inter-region call");
            ApiError::Forbidden(format!("inter-region authentication failed: {e}"))
        })
    }

    /// The discovery document.
    pub fn discovery(&self) -> Discovery {
        Discovery {
            region: self.region.clone(),
            format_version: DISCOVERY_FORMAT_VERSION,
            pair: self.pair.as_ref().map(|p| PairRef {
                region: p.name.clone(),
                endpoint: p.endpoint.clone(),
            }),
            services: Services {
                speaker: SpeakerService {
                    state: self.state(),
                    paired_with: self.pair.as_ref().map(|p| p.name.clone()),
                },
            },
        }
    }

    /// The follower's view, for `GET /admin/v1/replication`.
    pub fn status_json(&self) -> Value {
        let s = self.status.lock().expect("status lock").clone();
        let t = |t: Option<OffsetDateTime>| {
            t.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
        };
        json!({
            "region": self.region,
            "pair": self.pair.as_ref().map(|p| json!({"region": p.name, "endpoint": p.endpoint})),
            "state": self.state(),
            "lastPull": t(s.last_pull),
            "lastError": s.last_error,
            "caughtUpAt": t(s.caught_up_at),
            "pairHead": s.pair_head,
            "cursor": s.cursor,
            "behind": s.pair_head.saturating_sub(s.cursor),
            "appliedTotal": s.applied_total,
            "node": self.node,
            "leader": s.leader,
        })
    }
}
