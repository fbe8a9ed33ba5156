//! Model copy between regions: v3.1 `Models_CopyTo`, v3.2 `Models_AuthorizeCopy` +
//! `Models_Copy` + the copy operation, and the inter-region transfer under them.
//!
//! - **Finding the target.** A `targetSubscriptionKey` is looked up in this region, then in
//!   every peer at once with sha256(key) in a peer-signed request ([`link::find_key`]); the
//!   peers compare it with their stored key hashes (constant time). A v3.2 authorization names
//!   its region, which must be a configured peer (the endpoint URL in its body is never called).
//! - **The grant** ([`wire::Grant`]): the key's hash, or the target's signed authorization
//!   ([`authz`]), checked by the target on every `begin` and `commit`.
//! - **The transfer** ([`run`] on the source, [`target`] on the target): chunks of
//!   `custom_speech.copy_chunk_bytes` (4 MiB) with their sha256, staged and checked by the target, resumed from what
//!   it already holds, and committed (whole-file sha256, the kind's checks, files, then the row)
//!   so a half-copied entity is never listed. The target id is fixed by the operation (the
//!   authorization's id in v3.2), so a retried copy never creates two entities.
//! - **Generic over kinds** ([`kind::CopyKind`]): what files an asset carries and how the
//!   target rebuilds it. Custom Speech models, and custom voice models with their consent and
//!   training set (`POST /customvoice/models/{id}:copyto`, in `routes/custom_voice/copy.rs`,
//!   which starts the same operation through [`start_operation`]).
//! - **Base models.** The target accepts a model only if its base model is one it lists
//!   (loaded, or pulled on demand like whisper-base: the pull starts at commit, and endpoint
//!   creation waits for it); a base it does not know fails the copy with `InvalidBaseModel`.

mod authz;
mod error;
mod internal;
mod kind;
mod link;
mod plan;
mod run;
mod target;
mod wire;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_store::{Asset, AssetKind, AssetStatus, NewAsset};
use time::OffsetDateTime;
use uuid::Uuid;

use self::authz::{names_source, CopyAuthorization};
use self::kind::kind_for;
use self::link::link_to;
use self::run::{op_doc, CopyOpDoc, COPY_OP_FORMAT};
use self::wire::{Grant, COPY_PREFIX};
use super::{azure_time, json_body, parse_id, Cx};
use crate::{ApiError, AppState, V3Error};

pub(crate) use error::CopyError;
pub(crate) use kind::{CopyKind, Package};
pub(crate) use link::find_key;
pub(crate) use run::{op_doc as copy_op_doc, spawn_resume};
pub(crate) use wire::Manifest;

type V3Result<T = Response> = Result<T, V3Error>;

/// Adds the internal (peer-signed) copy routes a target serves.
pub(crate) fn internal_routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            &format!("{COPY_PREFIX}/lookup"),
            post(internal::lookup_route),
        )
        .route(&format!("{COPY_PREFIX}/check"), post(internal::check_route))
        .route(
            &format!("{COPY_PREFIX}/{{resource}}/{{asset}}/begin"),
            post(internal::begin_route),
        )
        .route(
            &format!("{COPY_PREFIX}/{{resource}}/{{asset}}/chunks/{{file}}/{{index}}"),
            put(internal::chunk_route)
                .layer(DefaultBodyLimit::max(plan::MAX_CHUNK_SIZE + 64 * 1024)),
        )
        .route(
            &format!("{COPY_PREFIX}/{{resource}}/{{asset}}/commit"),
            post(internal::commit_route),
        )
}

/// `POST /models/{id}:copyto` and `POST /models/{id}:copy` (one route: the router cannot
/// split a parameter from a literal suffix inside one path segment).
pub(crate) async fn action(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    body: Bytes,
) -> V3Result {
    match id.rsplit_once(':') {
        Some((id, verb)) if verb.eq_ignore_ascii_case("copyto") => {
            copy_to(&state, &cx, id, &body).await
        }
        Some((id, verb)) if verb.eq_ignore_ascii_case("copy") => copy(&state, &cx, id, &body).await,
        _ => Err(V3Error(ApiError::NotFound(format!(
            "POST /models/{id} is not an operation: use /models/{{id}}:copyto or /models/{{id}}:copy"
        )))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CopyBody {
    target_subscription_key: Option<String>,
}

/// Checks that the caller's model exists and can be copied now.
async fn source_model(state: &AppState, cx: &Cx, id: &str) -> Result<Asset, V3Error> {
    let uuid = parse_id(id, "model")?;
    let asset = state
        .store()
        .meta
        .get_asset(cx.resource(), AssetKind::Model, uuid)
        .await?
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("model {uuid} not found"))))?;
    kind_for(AssetKind::Model)
        .expect("models copy")
        .package(state, &asset)
        .await?;
    Ok(asset)
}

fn api_version(cx: &Cx) -> String {
    cx.base.rsplit('/').next().unwrap_or("v3.2").to_owned()
}

/// Records a new copy operation (NotStarted) of the caller's resource.
async fn create_op(
    state: &AppState,
    cx: &Cx,
    model: &Asset,
    region: &str,
    target_resource: tandem_core::ResourceId,
    target_asset: Uuid,
    grant: Grant,
) -> Result<Asset, V3Error> {
    let target = OpTarget {
        region: region.to_owned(),
        resource: target_resource,
        asset: target_asset,
        grant,
    };
    Ok(create_operation(state, model, target, &api_version(cx), cx.origin()).await?)
}

/// Where a copy goes: region, resource, the entity's id there, and what lets it in.
pub(crate) struct OpTarget {
    /// The target region.
    pub region: String,
    /// The target resource.
    pub resource: tandem_core::ResourceId,
    /// The entity's id in the target.
    pub asset: Uuid,
    /// The grant.
    pub grant: Grant,
}

/// Records a new copy operation (NotStarted) of `source`'s resource, for any kind
/// [`kind_for`] knows. `api_version` names the links the target answers; `origin` is this
/// region's API as the caller reached it.
pub(crate) async fn create_operation(
    state: &AppState,
    source: &Asset,
    target: OpTarget,
    api_version: &str,
    origin: &str,
) -> Result<Asset, ApiError> {
    let region = target.region;
    let doc = CopyOpDoc {
        format: COPY_OP_FORMAT,
        asset_kind: source.kind.as_str().to_owned(),
        source: source.id,
        target_region: region.clone(),
        target_resource: target.resource,
        target_asset: target.asset,
        grant: target.grant,
        api_version: api_version.to_owned(),
        origin: origin.to_owned(),
        result: None,
        error: None,
    };
    let new = NewAsset {
        id: Uuid::new_v4(),
        resource_id: source.resource_id,
        kind: AssetKind::CopyOperation,
        status: AssetStatus::NotStarted,
        display_name: format!("copy of {} to {region}", source.display_name),
        description: None,
        locale: source.locale.clone(),
        properties: json!({}),
        doc: serde_json::to_value(&doc)
            .map_err(|e| ApiError::Internal(format!("copy operation document: {e}")))?,
    };
    Ok(state.store().meta.create_asset(new).await?)
}

/// Runs operation `op` of `resource` on its own task (a client that hangs up does not cut
/// it short); the handle answers the copied entity as the target serves it.
pub(crate) fn start_operation(
    state: &AppState,
    resource: tandem_core::ResourceId,
    op: Uuid,
) -> tokio::task::JoinHandle<Result<Value, CopyError>> {
    let state = state.clone();
    tokio::spawn(async move { run::run(&state, resource, op).await })
}

/// v3.1 `POST /models/{id}:copyto` `{"targetSubscriptionKey"}`: copies the model, then answers
/// 201 with the new model as the target serves it (its `self` is on the target's host).
async fn copy_to(state: &AppState, cx: &Cx, id: &str, body: &[u8]) -> V3Result {
    let b: CopyBody = json_body(body)?;
    let key = b
        .target_subscription_key
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            V3Error(ApiError::bad_request(
                "InvalidParameterValue",
                "targetSubscriptionKey is required",
            ))
        })?;
    let model = source_model(state, cx, id).await?;
    let owner = find_key(state, &key).await?;
    let op = create_op(
        state,
        cx,
        &model,
        owner.region.as_str(),
        owner.resource,
        Uuid::new_v4(),
        owner.grant,
    )
    .await?;
    // The copy runs on its own task: a client that hangs up does not cut it short.
    let (state2, resource) = (state.clone(), cx.resource());
    let entity = tokio::spawn(async move { run::run(&state2, resource, op.id).await })
        .await
        .map_err(|e| ApiError::Internal(format!("copy task: {e}")))??;
    Ok(super::created(entity))
}

/// v3.2 `POST /models/{id}:copy` with a `ModelCopyAuthorization` (or, as one Azure page shows,
/// `{"targetSubscriptionKey"}`): 202 with `Operation-Location`; the copy runs in the background.
async fn copy(state: &AppState, cx: &Cx, id: &str, body: &[u8]) -> V3Result {
    let v: Value = json_body(body)?;
    let model = source_model(state, cx, id).await?;
    let (region, resource, target_asset, grant) = if v.get("targetResourceId").is_some() {
        let a: CopyAuthorization = serde_json::from_value(v).map_err(|e| {
            V3Error(ApiError::bad_request(
                "InvalidRequestBodyFormat",
                format!("the body is not a ModelCopyAuthorization: {e}"),
            ))
        })?;
        let me = &cx.caller.resource;
        if !names_source(&a.source_resource_id, me.id, &me.name) {
            return Err(V3Error(ApiError::Forbidden(format!(
                "the copy authorization is for source resource {:?}, not this resource",
                a.source_resource_id
            ))));
        }
        if a.expired(OffsetDateTime::now_utc()) {
            return Err(V3Error(ApiError::Forbidden(format!(
                "the copy authorization expired at {}",
                a.expiration_date_time
            ))));
        }
        let grant = Grant::Authorization(a.clone());
        // The target checks its signature now, so a forged one is refused here, not later.
        // An unreachable target does not refuse: the operation retries, and reports.
        let link = link_to(state, &a.target_resource_region, cx.origin())?;
        let resource = match link.check(&grant).await {
            Ok(resource) => resource,
            Err(e) if e.is_transient() => a.target_resource_id.parse().map_err(|_| {
                V3Error(ApiError::Forbidden(
                    "the copy authorization names no valid target resource".into(),
                ))
            })?,
            Err(e) => return Err(e.into()),
        };
        (a.target_resource_region.clone(), resource, a.id, grant)
    } else {
        let b: CopyBody = serde_json::from_value(v).map_err(|e| {
            V3Error(ApiError::bad_request(
                "InvalidRequestBodyFormat",
                e.to_string(),
            ))
        })?;
        let key = b
            .target_subscription_key
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                V3Error(ApiError::bad_request(
                    "InvalidParameterValue",
                    "give a ModelCopyAuthorization (from POST /models:authorizecopy on the target) or targetSubscriptionKey",
                ))
            })?;
        let owner = find_key(state, &key).await?;
        (
            owner.region.to_string(),
            owner.resource,
            Uuid::new_v4(),
            owner.grant,
        )
    };
    let op = create_op(state, cx, &model, &region, resource, target_asset, grant).await?;
    let (state2, resource) = (state.clone(), cx.resource());
    let op_id = op.id;
    tokio::spawn(async move {
        let _ = run::run(&state2, resource, op_id).await;
    });
    let body = op_json(cx, &op)?;
    let location = body["self"].as_str().unwrap_or_default().to_owned();
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert("operation-location", v.clone());
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizeBody {
    source_resource_id: Option<String>,
}

/// v3.2 `POST /models:authorizecopy` on the target, with the target's key:
/// `{"sourceResourceId"}` → a signed `ModelCopyAuthorization` for the caller's resource.
pub(crate) async fn authorize(State(state): State<AppState>, cx: Cx, body: Bytes) -> V3Result {
    let b: AuthorizeBody = json_body(&body)?;
    let source = b
        .source_resource_id
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .ok_or_else(|| {
            V3Error(ApiError::bad_request(
                "InvalidParameterValue",
                "sourceResourceId is required: the resource (id, name or ARM path) allowed to copy here",
            ))
        })?;
    let a = CopyAuthorization::issue(
        state.signer(),
        state.region(),
        cx.resource(),
        cx.url("/models"),
        source,
        OffsetDateTime::now_utc(),
    );
    Ok((StatusCode::OK, Json(a)).into_response())
}

fn op_json(cx: &Cx, op: &Asset) -> Result<Value, ApiError> {
    let doc = op_doc(op)?;
    let mut v = json!({
        "self": cx.url(&format!("/operations/models/copy/{}", op.id)),
        "id": op.id,
        "status": op.status.as_str(),
        "createdDateTime": azure_time(op.created_at),
        "lastActionDateTime": azure_time(op.last_action_at),
    });
    if let Some(link) = &doc.result {
        v["result"] = json!({ "link": link });
    }
    if let Some(error) = &doc.error {
        v["error"] = error.clone();
    }
    Ok(v)
}

/// `GET /operations/models/copy/{id}`: the copy operation's status, with `result.link` (the
/// copied model in the target) once Succeeded, or `error` once Failed.
pub(crate) async fn operation(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<Json<Value>> {
    let uuid = parse_id(&id, "operation")?;
    let op = state
        .store()
        .meta
        .get_asset(cx.resource(), AssetKind::CopyOperation, uuid)
        .await?
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("operation {uuid} not found"))))?;
    Ok(Json(op_json(&cx, &op)?))
}

#[cfg(test)]
mod tests;
