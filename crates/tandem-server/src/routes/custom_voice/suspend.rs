//! `POST /customvoice/endpoints/{id}:suspend` and `:resume` (Azure: 202, `Operation-Location`,
//! `Operation-Id`; the endpoint shows `Disabled` while suspended). A suspended endpoint keeps
//! its row and its model (which stays in use: deleting it is still 409) but does not speak:
//! `?deploymentId=` answers 400 `EndpointSuspended`, so a client's voice chain moves on to its
//! next link, and the voice list leaves it out.
//!
//! Both take effect within the request, so their operation is `Succeeded` when answered. The
//! store's statuses are Azure's long-running ones (no `Disabled`), so the suspension is a flag
//! in the endpoint's document, and its last operations are kept there too, for
//! `GET /customvoice/operations/{id}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_store::AssetUpdate;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{all, check_client_id, entity_json, load, update, Coll, Doc};
use crate::routes::custom_speech::azure_time;
use crate::{ApiError, AppState};

/// Operations kept per endpoint.
const KEPT: usize = 16;

/// Whether the endpoint `doc` is suspended.
pub(crate) fn suspended(doc: &Doc) -> bool {
    doc.internal.get("suspended").and_then(Value::as_bool) == Some(true)
}

/// Suspends (`suspend = true`) or resumes the caller's endpoint `id`: 202 with the endpoint,
/// `Operation-Location` and `Operation-Id` (the request's own `Operation-Id`, if it sent one).
pub(crate) async fn set(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    suspend: bool,
    headers: &HeaderMap,
    version: &str,
) -> Result<Response, ApiError> {
    let (asset, mut doc) = load(state, resource, Coll::Endpoints, id).await?;
    let op_id = match headers.get("operation-id").and_then(|v| v.to_str().ok()) {
        Some(given) => {
            check_client_id(given)?;
            if find(state, resource, given).await?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "operation {given:?} exists already: send another Operation-Id"
                )));
            }
            given.to_owned()
        }
        None => Uuid::new_v4().to_string(),
    };
    let now = azure_time(OffsetDateTime::now_utc());
    let op = json!({
        "id": op_id,
        "kind": if suspend { "EndpointSuspend" } else { "EndpointResume" },
        "status": "Succeeded",
        "createdDateTime": now,
        "lastActionDateTime": now,
        "properties": { "endpointId": doc.id },
    });
    let mut ops: Vec<Value> = doc
        .internal
        .get("operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ops.push(op);
    let skip = ops.len().saturating_sub(KEPT);
    doc.internal
        .insert("operations".into(), Value::Array(ops.split_off(skip)));
    doc.internal.insert("suspended".into(), json!(suspend));
    let updated = update(
        state,
        &asset,
        AssetUpdate {
            doc: Some(doc.to_value()),
            ..AssetUpdate::default()
        },
    )
    .await?;
    tracing::info!(endpoint = %doc.id, suspend, "custom voice endpoint {}", if suspend { "suspended" } else { "resumed" });
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.config().listen.to_string());
    let location = format!("http://{host}/customvoice/operations/{op_id}?api-version={version}");
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(entity_json(&updated, &Doc::read(&updated)?)),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert("operation-location", v);
    }
    if let Ok(v) = HeaderValue::from_str(&op_id) {
        h.insert("operation-id", v);
    }
    Ok(resp)
}

/// The suspend or resume operation `id` of one of the caller's endpoints.
pub(crate) async fn find(
    state: &AppState,
    resource: ResourceId,
    id: &str,
) -> Result<Option<Value>, ApiError> {
    for (_, doc) in all(state, resource, Coll::Endpoints).await? {
        let found = doc
            .internal
            .get("operations")
            .and_then(Value::as_array)
            .and_then(|ops| ops.iter().find(|o| o["id"] == id).cloned());
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}
