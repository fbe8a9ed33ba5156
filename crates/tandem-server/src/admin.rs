//! Resources and keys: the operations behind `tandem resource …` and the admin HTTP API.
//!
//! The CLI calls the same functions on the region's store directly, so the two can never
//! disagree. Plaintext keys exist only in the value returned to the operator.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tandem_core::{KeySlot, RegionName, ResourceId, ResourceKey};
use tandem_store::{MetaStore, NewResource, Resource};
use time::format_description::well_known::Rfc3339;

use crate::auth::Admin;
use crate::{ApiError, AppState};

/// A new resource and its two plaintext keys, shown once.
#[derive(Debug)]
pub struct CreatedResource {
    /// The resource as stored.
    pub resource: Resource,
    /// Key 1, plaintext.
    pub key1: ResourceKey,
    /// Key 2, plaintext.
    pub key2: ResourceKey,
}

impl CreatedResource {
    /// `{"id","region","name","key1","key2","concurrencyLimit"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.resource.id.to_string(),
            "region": self.resource.region.to_string(),
            "name": self.resource.name,
            "key1": self.key1.expose(),
            "key2": self.key2.expose(),
            "concurrencyLimit": self.resource.concurrency_limit,
        })
    }
}

/// The public view of a resource (no keys, no hashes).
pub fn resource_json(r: &Resource) -> Value {
    json!({
        "id": r.id.to_string(),
        "region": r.region.to_string(),
        "name": r.name,
        "concurrencyLimit": r.concurrency_limit,
        "createdDateTime": r.created_at.format(&Rfc3339).unwrap_or_default(),
    })
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidResourceName",
            format!("invalid resource name {name:?}: use 2-64 letters, digits, '-' or '_', starting with a letter or digit"),
        ))
    }
}

/// Creates a resource with two fresh keys in `region`.
pub async fn create_resource(
    meta: &dyn MetaStore,
    region: &RegionName,
    name: &str,
    concurrency_limit: u32,
) -> Result<CreatedResource, ApiError> {
    validate_name(name)?;
    if concurrency_limit == 0 {
        return Err(ApiError::bad_request(
            "InvalidArgument",
            "concurrencyLimit must be at least 1",
        ));
    }
    let (key1, key2) = (ResourceKey::generate(), ResourceKey::generate());
    let resource = meta
        .create_resource(NewResource {
            id: ResourceId::random(),
            region: region.clone(),
            name: name.to_owned(),
            key1: key1.hash(),
            key2: key2.hash(),
            concurrency_limit,
        })
        .await?;
    tracing::info!(resource = %resource.id, name, %region, "resource created");
    Ok(CreatedResource {
        resource,
        key1,
        key2,
    })
}

/// Replaces one key of a resource; the old one stops working at once.
pub async fn regenerate_key(
    meta: &dyn MetaStore,
    id: ResourceId,
    slot: KeySlot,
) -> Result<ResourceKey, ApiError> {
    let key = ResourceKey::generate();
    meta.set_key(id, slot, key.hash()).await?;
    tracing::info!(resource = %id, slot = slot.as_str(), "key regenerated");
    Ok(key)
}

/// Constant-time comparison of an admin token (digests first, so lengths leak nothing).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

fn parse_id(id: &str) -> Result<ResourceId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no resource {id:?} in this region")))
}

async fn get_in_region(state: &AppState, id: ResourceId) -> Result<Resource, ApiError> {
    match state.store().meta.get_resource(id).await? {
        Some(r) if &r.region == state.region() => Ok(r),
        _ => Err(ApiError::NotFound(format!(
            "no resource {id} in region {}",
            state.region()
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    #[serde(default)]
    concurrency_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchBody {
    concurrency_limit: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RegenerateBody {
    key_name: String,
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("InvalidPayload", format!("invalid JSON body: {e}")))
}

pub(crate) async fn list(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rs = state.store().meta.list_resources(state.region()).await?;
    Ok(Json(
        json!({ "values": rs.iter().map(resource_json).collect::<Vec<_>>() }),
    ))
}

pub(crate) async fn create(
    _: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: CreateBody = json_body(&body)?;
    let limit = body
        .concurrency_limit
        .unwrap_or(state.config().default_concurrency);
    let created = create_resource(
        state.store().meta.as_ref(),
        state.region(),
        &body.name,
        limit,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.to_json())))
}

pub(crate) async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = get_in_region(&state, parse_id(&id)?).await?;
    Ok(Json(resource_json(&r)))
}

pub(crate) async fn patch(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: PatchBody = json_body(&body)?;
    if body.concurrency_limit == 0 {
        return Err(ApiError::bad_request(
            "InvalidArgument",
            "concurrencyLimit must be at least 1",
        ));
    }
    let r = get_in_region(&state, parse_id(&id)?).await?;
    state
        .store()
        .meta
        .set_concurrency_limit(r.id, body.concurrency_limit)
        .await?;
    let r = get_in_region(&state, r.id).await?;
    Ok(Json(resource_json(&r)))
}

pub(crate) async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let r = get_in_region(&state, parse_id(&id)?).await?;
    state.store().meta.delete_resource(r.id).await?;
    state.quotas().forget(r.id);
    // The rows are gone, so nothing can reach the resource's Custom Speech blobs (datasets,
    // models, evaluation details, endpoint logs) any more: remove them too. A failure leaves
    // unreachable bytes behind, never a half-visible resource, so it is logged, not returned.
    let prefix = tandem_store::resource_blob_prefix(r.id);
    match state.store().blobs.delete_prefix(&prefix).await {
        Ok(n) => tracing::info!(resource = %r.id, blobs = n, "resource deleted"),
        Err(e) => {
            tracing::warn!(resource = %r.id, error = %e, "resource deleted; its blobs could not all be removed")
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn regenerate(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RegenerateBody = json_body(&body)?;
    let slot: KeySlot = body.key_name.parse().map_err(|e: tandem_core::CoreError| {
        ApiError::bad_request("InvalidArgument", e.to_string())
    })?;
    let r = get_in_region(&state, parse_id(&id)?).await?;
    let key = regenerate_key(state.store().meta.as_ref(), r.id, slot).await?;
    Ok(Json(
        json!({ "id": r.id.to_string(), slot.as_str(): key.expose() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_comparison() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd"));
        assert!(!token_matches("", "abc"));
        assert!(!token_matches("abcd", "abc"));
    }

    #[test]
    fn resource_names() {
        for ok in ["demo", "my-speech_1", "A1"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-x", "has space", "ü-name", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
