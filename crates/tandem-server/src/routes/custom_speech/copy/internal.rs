//! The internal copy routes a target serves (see [`super::wire`]): each checks the peer
//! signature over method, path and body, then calls [`super::target`].

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use tandem_core::{PeerAuth, ResourceId, PEER_HEADER, PEER_SIGNATURE_HEADER, PEER_TIME_HEADER};
use uuid::Uuid;

use super::target::{begin, commit, lookup, put_verified_chunk, resolve};
use super::wire::{
    BeginRequest, BeginResponse, ChunkRef, CommitRequest, Grant, LookupRequest, LookupResponse,
};
use crate::auth::unix_now;
use crate::{ApiError, AppState, V3Error};

fn parse_uuid(s: &str) -> Result<Uuid, V3Error> {
    Uuid::parse_str(s).map_err(|_| V3Error(ApiError::NotFound(format!("no copy {s}"))))
}

fn parse_resource(s: &str) -> Result<ResourceId, V3Error> {
    s.parse()
        .map_err(|_| V3Error(ApiError::NotFound(format!("no resource {s}"))))
}

fn verify(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Result<(), V3Error> {
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    state.replication().verify_peer(headers, method, pq, body)?;
    Ok(())
}

/// The base of this region's v3 links, as the caller reached it (`Host`).
fn base_url(state: &AppState, headers: &HeaderMap, version: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.config().listen.to_string());
    let version = if version == "v3.1" { "v3.1" } else { "v3.2" };
    format!("http://{host}/speechtotext/{version}")
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, V3Error> {
    serde_json::from_slice(body).map_err(|e| {
        V3Error(ApiError::bad_request(
            "InvalidRequestBodyFormat",
            format!("bad copy request: {e}"),
        ))
    })
}

/// `POST /internal/v1/copy/lookup`
pub(crate) async fn lookup_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LookupResponse>, V3Error> {
    verify(&state, &headers, "POST", &uri, &body)?;
    let req: LookupRequest = json(&body)?;
    match lookup(&state, &req.key_hash).await? {
        Some(id) => Ok(Json(LookupResponse {
            region: state.region().to_string(),
            resource_id: id.to_string(),
        })),
        None => Err(V3Error(ApiError::NotFound(format!(
            "no resource of region {} has that key",
            state.region()
        )))),
    }
}

/// `POST /internal/v1/copy/check`
pub(crate) async fn check_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LookupResponse>, V3Error> {
    verify(&state, &headers, "POST", &uri, &body)?;
    let grant: Grant = json(&body)?;
    let id = resolve(&state, &grant, true).await?;
    Ok(Json(LookupResponse {
        region: state.region().to_string(),
        resource_id: id.to_string(),
    }))
}

/// `POST /internal/v1/copy/{resource}/{asset}/begin`
pub(crate) async fn begin_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path((resource, asset)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<BeginResponse>, V3Error> {
    verify(&state, &headers, "POST", &uri, &body)?;
    let req: BeginRequest = json(&body)?;
    let base = base_url(&state, &headers, "v3.2");
    let (resource, asset) = (parse_resource(&resource)?, parse_uuid(&asset)?);
    Ok(Json(begin(&state, resource, asset, &req, &base).await?))
}

/// Checks a signed request given its body's sha256 (computed once, and used again by the
/// caller): the same check as [`verify`], which hashes the body itself.
fn verify_digest(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    uri: &axum::http::Uri,
    body_sha256: &[u8; 32],
) -> Result<(), V3Error> {
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let Some(auth) = state.replication().auth() else {
        return Err(V3Error(ApiError::Forbidden(format!(
            "region {} accepts no inter-region calls: it has no peer secret",
            state.region()
        ))));
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let peers = &state.config().peers;
    auth.verify_digest(
        h(PEER_HEADER),
        h(PEER_TIME_HEADER),
        h(PEER_SIGNATURE_HEADER),
        method,
        pq,
        body_sha256,
        unix_now(),
        |r| peers.iter().any(|p| &p.name == r),
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "refused an inter-region call");
        V3Error(ApiError::Forbidden(format!(
            "inter-region authentication failed: {e}"
        )))
    })?;
    Ok(())
}

/// `PUT /internal/v1/copy/{resource}/{asset}/chunks/{file}/{index}`
///
/// The body is hashed once: that digest checks the signature (so the body is authenticated)
/// and the chunk against the manifest.
pub(crate) async fn chunk_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path((resource, asset, file, index)): Path<(String, String, String, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, V3Error> {
    let digest = {
        let body = body.clone();
        tokio::task::spawn_blocking(move || PeerAuth::body_sha256(&body))
            .await
            .map_err(|e| V3Error(ApiError::Internal(format!("chunk digest: {e}"))))?
    };
    verify_digest(&state, &headers, "PUT", &uri, &digest)?;
    let (resource, asset, file) = (
        parse_resource(&resource)?,
        parse_uuid(&asset)?,
        parse_uuid(&file)?,
    );
    let chunk = ChunkRef { file, index };
    put_verified_chunk(&state, resource, asset, chunk, body, digest).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /internal/v1/copy/{resource}/{asset}/commit`
pub(crate) async fn commit_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path((resource, asset)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, V3Error> {
    verify(&state, &headers, "POST", &uri, &body)?;
    let req: CommitRequest = json(&body)?;
    let base = base_url(&state, &headers, &req.api_version);
    let (resource, asset) = (parse_resource(&resource)?, parse_uuid(&asset)?);
    Ok(Json(commit(&state, resource, asset, &req, &base).await?))
}
