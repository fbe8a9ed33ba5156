//! The follower's channel to its pair: [`PairLink`], over HTTP with signed requests
//! ([`HttpPairLink`]), or scripted in tests.

use std::time::Duration;

use tandem_core::{PeerAuth, PeerConfig, PEER_HEADER, PEER_SIGNATURE_HEADER, PEER_TIME_HEADER};

use super::wire::{PullResponse, PULL_PATH};
use crate::auth::unix_now;

/// Why a pull failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The pair could not be reached (refused, reset, timeout, DNS).
    #[error("pair unreachable: {0}")]
    Unreachable(String),
    /// The pair answered with an error status.
    #[error("pair answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The pair's answer did not parse.
    #[error("pair sent an unreadable answer: {0}")]
    Protocol(String),
}

/// Pulls a page of the pair's change log.
#[async_trait::async_trait]
pub trait PairLink: Send + Sync + 'static {
    /// Changes with `seq > after`, at most `limit`; when there are none, the pair may hold the
    /// request up to `wait` for new ones (long poll).
    async fn pull(&self, after: u64, limit: u32, wait: Duration)
        -> Result<PullResponse, LinkError>;
}

/// [`PairLink`] over HTTP, every request signed with the peer secret.
pub struct HttpPairLink {
    http: reqwest::Client,
    pair: PeerConfig,
    auth: PeerAuth,
}

impl HttpPairLink {
    /// A link to `pair`, signing as `auth`'s region.
    pub fn new(pair: PeerConfig, auth: PeerAuth) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("a plain HTTP client always builds");
        HttpPairLink { http, pair, auth }
    }
}

#[async_trait::async_trait]
impl PairLink for HttpPairLink {
    async fn pull(
        &self,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<PullResponse, LinkError> {
        let pq = format!(
            "{PULL_PATH}?after={after}&limit={limit}&wait_ms={}",
            wait.as_millis()
        );
        let sig = self.auth.sign(&self.pair.name, "GET", &pq, b"", unix_now());
        let url = format!("{}{pq}", self.pair.endpoint.trim_end_matches('/'));
        let resp = self
            .http
            .get(url)
            .header(PEER_HEADER, sig.region)
            .header(PEER_TIME_HEADER, sig.time)
            .header(PEER_SIGNATURE_HEADER, sig.signature)
            // The long poll plus room for a large batch.
            .timeout(wait + Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(LinkError::Status {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| LinkError::Protocol(e.to_string()))
    }
}
