//! How the source reaches a target region ([`TargetLink`]): over HTTP to a configured peer,
//! every request signed with the peer secret ([`HttpTarget`]), or in-process for a copy within
//! this region ([`LocalTarget`]). Also the federation-wide key lookup ([`find_key`]): the
//! source sends sha256(key), never the key, to every peer at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures::future::join_all;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tandem_core::{
    PeerAuth, PeerConfig, RegionName, ResourceId, ResourceKey, PEER_HEADER, PEER_SIGNATURE_HEADER,
    PEER_TIME_HEADER,
};
use uuid::Uuid;

use super::target;
use super::wire::{
    BeginRequest, BeginResponse, ChunkRef, CommitRequest, Grant, LookupRequest, LookupResponse,
    COPY_PREFIX,
};
use super::CopyError;
use crate::auth::unix_now;
use crate::AppState;

/// Time allowed to a lookup or check call.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to any other call (a chunk, a commit that reassembles a large file).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The target region of a copy, as the source calls it.
#[async_trait::async_trait]
pub(crate) trait TargetLink: Send + Sync {
    /// Which resource `grant` opens there (403 if none).
    async fn check(&self, grant: &Grant) -> Result<ResourceId, CopyError>;
    /// Starts or resumes the copy `asset` into `resource`.
    async fn begin(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &BeginRequest,
    ) -> Result<BeginResponse, CopyError>;
    /// Sends one chunk; `sha256` is its digest from the plan (so it is not hashed again to
    /// sign the request).
    async fn put_chunk(
        &self,
        resource: ResourceId,
        asset: Uuid,
        chunk: ChunkRef,
        bytes: Bytes,
        sha256: [u8; 32],
    ) -> Result<(), CopyError>;
    /// Commits the copy; the entity as the target serves it.
    async fn commit(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &CommitRequest,
    ) -> Result<Value, CopyError>;
}

/// A link to `region`: this region itself (`origin` is where its API is), or a configured peer.
pub(crate) fn link_to(
    state: &AppState,
    region: &str,
    origin: &str,
) -> Result<Arc<dyn TargetLink>, CopyError> {
    if region == state.region().as_str() {
        return Ok(Arc::new(LocalTarget {
            state: state.clone(),
            origin: origin.to_owned(),
        }));
    }
    let peer = state
        .config()
        .peers
        .iter()
        .find(|p| p.name.as_str() == region)
        .ok_or_else(|| {
            CopyError::invalid(
                "InvalidParameterValue",
                format!(
                    "region {region:?} is not a peer of region {}: add it with --peer {region}=URL",
                    state.region()
                ),
            )
        })?;
    Ok(Arc::new(HttpTarget::new(state, peer)?))
}

/// A copy within this region.
pub(crate) struct LocalTarget {
    state: AppState,
    origin: String,
}

impl LocalTarget {
    fn base(&self, version: &str) -> String {
        format!("{}/speechtotext/{version}", self.origin)
    }
}

#[async_trait::async_trait]
impl TargetLink for LocalTarget {
    async fn check(&self, grant: &Grant) -> Result<ResourceId, CopyError> {
        target::resolve(&self.state, grant, true).await
    }
    async fn begin(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &BeginRequest,
    ) -> Result<BeginResponse, CopyError> {
        target::begin(&self.state, resource, asset, req, &self.base("v3.2")).await
    }
    async fn put_chunk(
        &self,
        resource: ResourceId,
        asset: Uuid,
        chunk: ChunkRef,
        bytes: Bytes,
        sha256: [u8; 32],
    ) -> Result<(), CopyError> {
        // In-process, `sha256` is the digest the plan computed from these very bytes.
        target::put_verified_chunk(&self.state, resource, asset, chunk, bytes, sha256).await
    }
    async fn commit(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &CommitRequest,
    ) -> Result<Value, CopyError> {
        let base = self.base(&req.api_version);
        target::commit(&self.state, resource, asset, req, &base).await
    }
}

/// A copy to a peer region, over signed HTTP.
pub(crate) struct HttpTarget {
    http: reqwest::Client,
    peer: PeerConfig,
    auth: PeerAuth,
}

impl HttpTarget {
    fn new(state: &AppState, peer: &PeerConfig) -> Result<Self, CopyError> {
        let auth = state.replication().auth().cloned().ok_or_else(|| {
            CopyError::Unavailable(format!(
                "region {} has no peer secret, so it cannot call region {}: set peer_secret_file",
                state.region(),
                peer.name
            ))
        })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| CopyError::Internal(e.to_string()))?;
        Ok(HttpTarget {
            http,
            peer: peer.clone(),
            auth,
        })
    }

    /// A signed call; `body_sha256` is the body's digest if the caller has it already.
    async fn call(
        &self,
        method: reqwest::Method,
        pq: &str,
        body: Bytes,
        body_sha256: Option<[u8; 32]>,
        timeout: Duration,
    ) -> Result<Bytes, CopyError> {
        let digest = body_sha256.unwrap_or_else(|| PeerAuth::body_sha256(&body));
        let sig = self
            .auth
            .sign_digest(&self.peer.name, method.as_str(), pq, &digest, unix_now());
        let url = format!("{}{pq}", self.peer.endpoint.trim_end_matches('/'));
        let unreachable = |e: reqwest::Error| {
            CopyError::Unavailable(format!(
                "peer region {} ({}) could not be reached: {e}",
                self.peer.name, self.peer.endpoint
            ))
        };
        let resp = self
            .http
            .request(method, url)
            .header(PEER_HEADER, sig.region)
            .header(PEER_TIME_HEADER, sig.time)
            .header(PEER_SIGNATURE_HEADER, sig.signature)
            .header("content-type", "application/octet-stream")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = v["message"]
            .as_str()
            .or_else(|| v["error"]["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        let message = format!("region {} answered {status}: {message}", self.peer.name);
        let inner = v["innerError"]["code"].as_str().unwrap_or("InvalidRequest");
        Err(CopyError::from_status(status, inner, message))
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        pq: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, CopyError> {
        let bytes = self
            .call(reqwest::Method::POST, pq, body.into(), None, timeout)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            CopyError::Unavailable(format!(
                "region {} sent an unreadable answer: {e}",
                self.peer.name
            ))
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CopyError> {
    serde_json::to_vec(v).map_err(|e| CopyError::Internal(e.to_string()))
}

fn resource_of(r: LookupResponse) -> Result<ResourceId, CopyError> {
    r.resource_id
        .parse()
        .map_err(|_| CopyError::Unavailable("a peer named an unreadable resource id".into()))
}

#[async_trait::async_trait]
impl TargetLink for HttpTarget {
    async fn check(&self, grant: &Grant) -> Result<ResourceId, CopyError> {
        let r: LookupResponse = self
            .call_json(
                &format!("{COPY_PREFIX}/check"),
                to_json(grant)?,
                LOOKUP_TIMEOUT,
            )
            .await?;
        resource_of(r)
    }
    async fn begin(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &BeginRequest,
    ) -> Result<BeginResponse, CopyError> {
        self.call_json(
            &format!("{COPY_PREFIX}/{resource}/{asset}/begin"),
            to_json(req)?,
            CALL_TIMEOUT,
        )
        .await
    }
    async fn put_chunk(
        &self,
        resource: ResourceId,
        asset: Uuid,
        chunk: ChunkRef,
        bytes: Bytes,
        sha256: [u8; 32],
    ) -> Result<(), CopyError> {
        let ChunkRef { file, index } = chunk;
        let pq = format!("{COPY_PREFIX}/{resource}/{asset}/chunks/{file}/{index}");
        self.call(reqwest::Method::PUT, &pq, bytes, Some(sha256), CALL_TIMEOUT)
            .await
            .map(drop)
    }
    async fn commit(
        &self,
        resource: ResourceId,
        asset: Uuid,
        req: &CommitRequest,
    ) -> Result<Value, CopyError> {
        self.call_json(
            &format!("{COPY_PREFIX}/{resource}/{asset}/commit"),
            to_json(req)?,
            CALL_TIMEOUT,
        )
        .await
    }
}

/// Where a `targetSubscriptionKey` belongs.
pub(crate) struct KeyOwner {
    /// Its region.
    pub region: RegionName,
    /// Its resource.
    pub resource: ResourceId,
    /// The grant that key gives (its sha256).
    pub grant: Grant,
}

/// Finds the region and resource of `key`: this region first, then every peer at once with
/// sha256(key) in a signed request. Unknown everywhere → 400 `SubscriptionNotFound`; not found
/// where every peer answered, but some peer unreachable → 503 naming it (the key may be its).
pub(crate) async fn find_key(state: &AppState, key: &str) -> Result<KeyOwner, CopyError> {
    let hash = ResourceKey::from_presented(key).hash().to_hex();
    let grant = Grant::Key {
        key_hash: hash.clone(),
    };
    if let Some(resource) = target::lookup(state, &hash).await? {
        return Ok(KeyOwner {
            region: state.region().clone(),
            resource,
            grant,
        });
    }
    let peers = &state.config().peers;
    let body = to_json(&LookupRequest {
        key_hash: hash.clone(),
    })?;
    let asks = peers.iter().map(|peer| {
        let body = body.clone();
        async move {
            let link = HttpTarget::new(state, peer)?;
            let r: LookupResponse = link
                .call_json(&format!("{COPY_PREFIX}/lookup"), body, LOOKUP_TIMEOUT)
                .await?;
            Ok::<_, CopyError>((peer.name.clone(), resource_of(r)?))
        }
    });
    let mut failures = Vec::new();
    for (peer, answer) in peers.iter().zip(join_all(asks).await) {
        match answer {
            Ok((region, resource)) => {
                return Ok(KeyOwner {
                    region,
                    resource,
                    grant,
                })
            }
            Err(CopyError::NotFound(_)) => {}
            Err(e) => failures.push(format!("{} ({}): {e}", peer.name, peer.endpoint)),
        }
    }
    if !failures.is_empty() {
        return Err(CopyError::Unavailable(format!(
            "targetSubscriptionKey is not a key of region {}, and these peers could not be asked: {}",
            state.region(),
            failures.join("; ")
        )));
    }
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    Err(CopyError::invalid(
        "SubscriptionNotFound",
        format!(
            "targetSubscriptionKey is not a key of any resource in region {}{}",
            state.region(),
            if names.is_empty() {
                " (it has no peers)".to_owned()
            } else {
                format!(" or its peers ({})", names.join(", "))
            }
        ),
    ))
}
