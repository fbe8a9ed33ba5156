//! The operations every Custom Speech entity kind shares, written once: load one of the
//! caller's entities (404 otherwise), list a page, get, PATCH `displayName` / `description` /
//! `customProperties`, and delete the row then its blobs. Each kind says how its document reads
//! and renders through [`Entity`]; its module keeps only what is particular to it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tandem_store::{Asset, AssetKind, AssetUpdate};
use uuid::Uuid;

use super::create::{custom_properties, remove_blobs};
use super::{display_name, json_body, page_json, parse_id, Cx, Paging};
use crate::{ApiError, AppState, V3Error};

/// One kind of Custom Speech entity, as the shared handlers see it.
pub(crate) trait Entity: Send + Sync + 'static {
    /// Its rows in `speech_assets`.
    const KIND: AssetKind;
    /// Its name in messages, e.g. `model`.
    const NAME: &'static str;
    /// Its collection path, e.g. `/models`.
    const COLLECTION: &'static str;
    /// Its service document (the asset's `doc`).
    type Doc: Serialize + Send;
    /// Reads the document of one of its assets.
    fn doc(asset: &Asset) -> Result<Self::Doc, ApiError>;
    /// The entity as Azure shows it.
    fn json(cx: &Cx, asset: &Asset, doc: &Self::Doc) -> Value;
    /// Where the document keeps `customProperties`.
    fn custom_properties(doc: &mut Self::Doc) -> &mut Map<String, Value>;
}

/// The caller's entity `id` and its document, or 404.
pub(crate) async fn load<E: Entity>(
    state: &AppState,
    cx: &Cx,
    id: &str,
) -> Result<(Asset, E::Doc), V3Error> {
    let uuid = parse_id(id, E::NAME)?;
    let asset = state
        .store()
        .meta
        .get_asset(cx.resource(), E::KIND, uuid)
        .await?
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("{} {uuid} not found", E::NAME))))?;
    let doc = E::doc(&asset)?;
    Ok((asset, doc))
}

/// `GET /<collection>?skip=&top=`
pub(crate) async fn list<E: Entity>(
    State(state): State<AppState>,
    cx: Cx,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, V3Error> {
    let paging = Paging::parse(query.as_deref())?;
    let page = state
        .store()
        .meta
        .list_assets(cx.resource(), E::KIND, paging.skip, paging.top)
        .await?;
    let values = page
        .values
        .iter()
        .map(|a| Ok(E::json(&cx, a, &E::doc(a)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(page_json(
        values,
        page.total,
        paging,
        &cx.url(E::COLLECTION),
    )))
}

/// `GET /<collection>/{id}`
pub(crate) async fn get<E: Entity>(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> Result<Json<Value>, V3Error> {
    let (asset, doc) = load::<E>(&state, &cx, &id).await?;
    Ok(Json(E::json(&cx, &asset, &doc)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    display_name: Option<String>,
    description: Option<String>,
    custom_properties: Option<Value>,
}

/// `PATCH /<collection>/{id}`: `displayName`, `description`, `customProperties`.
pub(crate) async fn update<E: Entity>(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, V3Error> {
    let b: UpdateBody = json_body(&body)?;
    let (asset, mut doc) = load::<E>(&state, &cx, &id).await?;
    let mut update = AssetUpdate {
        display_name: b.display_name.map(|n| display_name(Some(n))).transpose()?,
        description: b.description,
        ..AssetUpdate::default()
    };
    if b.custom_properties.is_some() {
        *E::custom_properties(&mut doc) = custom_properties(b.custom_properties)?;
        update.doc = Some(
            serde_json::to_value(&doc)
                .map_err(|e| ApiError::Internal(format!("{} document: {e}", E::NAME)))?,
        );
    }
    let asset = state
        .store()
        .meta
        .update_asset(cx.resource(), E::KIND, asset.id, update)
        .await?;
    let doc = E::doc(&asset)?;
    Ok(Json(E::json(&cx, &asset, &doc)))
}

/// Deletes the caller's entity `id`, the row first (so it disappears at once), then its blobs.
/// `Ok(None)` when there was no such entity (Azure answers 204 then too).
pub(crate) async fn delete<E: Entity>(
    state: &AppState,
    cx: &Cx,
    id: &str,
) -> Result<Option<Uuid>, V3Error> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let store = state.store();
    if !store
        .meta
        .delete_asset(cx.resource(), E::KIND, uuid)
        .await?
    {
        return Ok(None);
    }
    remove_blobs(store, cx.resource(), uuid).await;
    Ok(Some(uuid))
}
