//! The internal copy routes a target serves (see [`super::wire`]): each checks the peer
//! signature over method, path and body, then calls [`super::target`].

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use tandem_core::ResourceId;
use uuid::Uuid;

use super::target::{begin, commit, lookup, put_chunk, resolve};
use super::wire::{
    BeginRequest, BeginResponse, CommitRequest, Grant, LookupRequest, LookupResponse,
};
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

/// `PUT /internal/v1/copy/{resource}/{asset}/chunks/{file}/{index}`
pub(crate) async fn chunk_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path((resource, asset, file, index)): Path<(String, String, String, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, V3Error> {
    verify(&state, &headers, "PUT", &uri, &body)?;
    let (resource, asset, file) = (
        parse_resource(&resource)?,
        parse_uuid(&asset)?,
        parse_uuid(&file)?,
    );
    put_chunk(&state, resource, asset, file, index, body).await?;
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
