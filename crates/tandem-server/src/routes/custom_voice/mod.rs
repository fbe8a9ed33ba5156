//! Custom voice (Azure's `/customvoice/…` management API, 2023-04-01-preview to 2026-01-01):
//! projects, consents, training sets, voice models (Piper ONNX voices imported as the
//! resource's assets) and their endpoints, which `POST /cognitiveservices/v1?deploymentId=`
//! speaks with ([`synth`]).
//!
//! Every entity is an [`Asset`] of the caller's resource. Azure lets clients choose ids, so the
//! row id is [`row_id`] (name-based on resource, kind and client id) and the client's id is kept
//! in the document ([`Doc`]); another resource's entity with the same client id is another row,
//! never visible here. Errors use the data-plane shape `{"error":{"code","message"}}`.
//!
//! Paths are one route per collection (`/customvoice/{coll}/{id}`), dispatched here:
//! `POST …/consents/{id}` is the multipart consent, and `POST …/{trainingsets|models}/{id}:upload`
//! the uploads, `POST /models/{id}:copyto` the copy to another region ([`copy`]), and
//! `POST /endpoints/{id}:suspend|:resume` ([`suspend`]) (matchit cannot split a parameter from
//! a literal inside one segment).

mod consent_check;
pub(crate) mod copy;
mod entities;
mod models;
mod suspend;
pub(crate) mod synth;
#[cfg(test)]
mod tests;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tandem_core::ResourceId;
use tandem_store::{Asset, AssetKind, AssetUpdate, NewAsset};
use uuid::Uuid;

use super::custom_speech::azure_time;
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// The `api-version`s accepted.
pub(crate) const API_VERSIONS: [&str; 4] = [
    "2023-04-01-preview",
    "2023-12-01-preview",
    "2024-02-01-preview",
    "2026-01-01",
];

/// Namespace of [`row_id`] (fixed forever: changing it would orphan every stored entity).
pub(crate) const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b0f_3c1e_8d2a_4f57_9a61_2c4e_7d90_b35a);

/// The version of [`Doc`] this build writes and reads.
const DOC_FORMAT: u32 = 1;

/// Largest JSON body of a PUT.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The stored row id of the client's entity `client_id` of `kind` in `resource`: a
/// name-based UUID (RFC 9562 version 8, SHA-256) of [`ID_NAMESPACE`] and
/// `"{resource}/{kind}/{client_id}"`.
pub(crate) fn row_id(resource: ResourceId, kind: AssetKind, client_id: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(ID_NAMESPACE.as_bytes());
    h.update(format!("{resource}/{}/{client_id}", kind.as_str()).as_bytes());
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// Azure's id rule: 1–64 characters of letters, digits, `-`, `_` and `.`.
pub(crate) fn check_client_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidParameterValue",
            format!("id {id:?} must be 1-64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// A custom voice collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coll {
    Projects,
    Consents,
    TrainingSets,
    Models,
    Endpoints,
}

impl Coll {
    fn parse(s: &str) -> Option<Coll> {
        Some(match s {
            "projects" => Coll::Projects,
            "consents" => Coll::Consents,
            "trainingsets" => Coll::TrainingSets,
            "models" => Coll::Models,
            "endpoints" => Coll::Endpoints,
            _ => return None,
        })
    }

    pub(crate) fn kind(self) -> AssetKind {
        match self {
            Coll::Projects => AssetKind::VoiceProject,
            Coll::Consents => AssetKind::VoiceConsent,
            Coll::TrainingSets => AssetKind::VoiceTrainingSet,
            Coll::Models => AssetKind::VoiceModel,
            Coll::Endpoints => AssetKind::VoiceEndpoint,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Coll::Projects => "project",
            Coll::Consents => "consent",
            Coll::TrainingSets => "training set",
            Coll::Models => "model",
            Coll::Endpoints => "endpoint",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Coll::Projects => "projects",
            Coll::Consents => "consents",
            Coll::TrainingSets => "trainingsets",
            Coll::Models => "models",
            Coll::Endpoints => "endpoints",
        }
    }
}

/// What an entity keeps in its asset document: the client's id, the fields Azure shows as they
/// are (`projectId`, `voiceName`, …), and what only the service reads (files, embeddings).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Doc {
    /// [`DOC_FORMAT`] when written.
    pub format: u32,
    /// The client's id.
    pub id: String,
    /// Shown in the entity as they are.
    #[serde(default)]
    pub fields: Map<String, Value>,
    /// Never shown.
    #[serde(default)]
    pub internal: Map<String, Value>,
}

impl Doc {
    pub(crate) fn new(id: &str) -> Doc {
        Doc {
            format: DOC_FORMAT,
            id: id.to_owned(),
            ..Doc::default()
        }
    }

    pub(crate) fn field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(Value::as_str)
    }

    pub(crate) fn read(asset: &Asset) -> Result<Doc, ApiError> {
        let doc: Doc = serde_json::from_value(asset.doc.clone())
            .map_err(|e| ApiError::Internal(format!("voice asset {} document: {e}", asset.id)))?;
        if doc.format > DOC_FORMAT {
            return Err(ApiError::Internal(format!(
                "voice asset {} document format {} is newer than this build",
                asset.id, doc.format
            )));
        }
        Ok(doc)
    }

    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The entity as Azure shows it.
pub(crate) fn entity_json(asset: &Asset, doc: &Doc) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), json!(doc.id));
    if let Some(d) = asset.description.as_deref() {
        v.insert("description".into(), json!(d));
    }
    for (k, x) in &doc.fields {
        v.insert(k.clone(), x.clone());
    }
    if asset.kind != AssetKind::VoiceProject {
        if !asset.locale.is_empty() {
            v.insert("locale".into(), json!(asset.locale));
        }
        let status = if asset.kind == AssetKind::VoiceEndpoint && suspend::suspended(doc) {
            "Disabled"
        } else {
            asset.status.as_str()
        };
        v.insert("status".into(), json!(status));
        v.insert(
            "lastActionDateTime".into(),
            json!(azure_time(asset.last_action_at)),
        );
        if asset.properties.as_object().is_some_and(|p| !p.is_empty()) {
            v.insert("properties".into(), asset.properties.clone());
        }
    }
    v.insert(
        "createdDateTime".into(),
        json!(azure_time(asset.created_at)),
    );
    Value::Object(v)
}

/// `api-version` from a raw query: one of [`API_VERSIONS`], else 400.
pub(crate) fn check_version(query: Option<&str>) -> Result<(), ApiError> {
    match query_param(query, "api-version") {
        Some(v) if API_VERSIONS.contains(&v.as_str()) => Ok(()),
        Some(v) => Err(ApiError::bad_request(
            "InvalidRequest",
            format!(
                "api-version {v:?} is not supported: use one of {}",
                API_VERSIONS.join(", ")
            ),
        )),
        None => Err(ApiError::bad_request(
            "InvalidRequest",
            "the api-version query parameter is required",
        )),
    }
}

/// A query parameter's raw value (the values used here never need decoding).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// The caller's entity of `coll` with client id `id`, or 404.
pub(crate) async fn load(
    state: &AppState,
    resource: ResourceId,
    coll: Coll,
    id: &str,
) -> Result<(Asset, Doc), ApiError> {
    let asset = state
        .store()
        .meta
        .get_asset(resource, coll.kind(), row_id(resource, coll.kind(), id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} {id:?} not found", coll.name())))?;
    let doc = Doc::read(&asset)?;
    Ok((asset, doc))
}

/// Every entity of `coll` of the resource (for cascades and checks; a resource holds few).
pub(crate) async fn all(
    state: &AppState,
    resource: ResourceId,
    coll: Coll,
) -> Result<Vec<(Asset, Doc)>, ApiError> {
    let mut out = Vec::new();
    loop {
        let page = state
            .store()
            .meta
            .list_assets(resource, coll.kind(), out.len() as u64, 100)
            .await?;
        let n = page.values.len();
        for a in page.values {
            let d = Doc::read(&a)?;
            out.push((a, d));
        }
        if n == 0 || out.len() as u64 >= page.total {
            return Ok(out);
        }
    }
}

/// Creates the row of a new entity; an existing one with that id is 409.
pub(crate) async fn insert(state: &AppState, coll: Coll, new: NewAsset) -> Result<Asset, ApiError> {
    state
        .store()
        .meta
        .create_asset(new)
        .await
        .map_err(|e| match e {
            tandem_store::StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "a {} with this id exists already: delete it first",
                coll.name()
            )),
            other => other.into(),
        })
}

/// A new row of `coll` for the client id `id` (`Succeeded`, no properties).
pub(crate) fn new_asset(
    resource: ResourceId,
    coll: Coll,
    doc: &Doc,
    description: Option<String>,
    locale: &str,
) -> NewAsset {
    NewAsset {
        id: row_id(resource, coll.kind(), &doc.id),
        resource_id: resource,
        kind: coll.kind(),
        status: tandem_store::AssetStatus::Succeeded,
        display_name: doc.id.clone(),
        description: description.filter(|d| !d.is_empty()),
        locale: locale.to_owned(),
        properties: json!({}),
        doc: doc.to_value(),
    }
}

/// Updates a row.
pub(crate) async fn update(
    state: &AppState,
    asset: &Asset,
    update: AssetUpdate,
) -> Result<Asset, ApiError> {
    Ok(state
        .store()
        .meta
        .update_asset(asset.resource_id, asset.kind, asset.id, update)
        .await?)
}

/// Deletes a row, then its blobs.
pub(crate) async fn remove(state: &AppState, asset: &Asset) -> Result<(), ApiError> {
    let store = state.store();
    if store
        .meta
        .delete_asset(asset.resource_id, asset.kind, asset.id)
        .await?
    {
        let prefix = tandem_store::asset_blob_prefix(asset.resource_id, asset.id);
        if let Err(e) = store.blobs.delete_prefix(&prefix).await {
            tracing::warn!(asset = %asset.id, error = %e, "could not delete a voice asset's blobs");
        }
    }
    Ok(())
}

/// Adds the custom voice routes. Uploads may be up to `upload_limit` bytes at the transport;
/// each handler applies its own, smaller limit (413).
pub(crate) fn routes(router: Router<AppState>, upload_limit: usize) -> Router<AppState> {
    router
        .route("/customvoice/{coll}", get(list))
        .route("/customvoice/operations/{id}", get(get_operation))
        .route(
            "/customvoice/{coll}/{id}",
            get(get_one)
                .put(put)
                .delete(delete)
                .post(post)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
}

fn coll_of(s: &str) -> Result<Coll, ApiError> {
    Coll::parse(s).ok_or_else(|| ApiError::NotFound(format!("no collection /customvoice/{s}")))
}

/// `GET /customvoice/{coll}?skip=&maxpagesize=` → `{value, nextLink}`.
async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(coll): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let query = req.uri().query().map(str::to_owned);
    check_version(query.as_deref())?;
    let coll = coll_of(&coll)?;
    let num = |k: &str| -> Result<Option<u64>, ApiError> {
        query_param(query.as_deref(), k)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "InvalidParameterValue",
                        format!("{k} must be a non-negative integer"),
                    )
                })
            })
            .transpose()
    };
    let skip = num("skip")?.unwrap_or(0);
    let top = num("maxpagesize")?
        .or(num("top")?)
        .unwrap_or(100)
        .clamp(1, 100) as u32;
    let page = state
        .store()
        .meta
        .list_assets(caller.resource.id, coll.kind(), skip, top)
        .await?;
    let values = page
        .values
        .iter()
        .map(|a| Ok(entity_json(a, &Doc::read(a)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let next = skip + values.len() as u64;
    let mut body = json!({ "value": values });
    if !values.is_empty() && next < page.total {
        let host = req
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        let version = query_param(query.as_deref(), "api-version").unwrap_or_default();
        body["nextLink"] = json!(format!(
            "http://{host}/customvoice/{}?api-version={version}&skip={next}&maxpagesize={top}",
            coll.path()
        ));
    }
    Ok(Json(body))
}

/// `GET /customvoice/operations/{id}`: a voice model copy's operation, or an endpoint's
/// suspend or resume.
async fn get_operation(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    check_version(req.uri().query())?;
    let resource = caller.resource.id;
    match copy::operation(&state, resource, &id).await {
        Err(ApiError::NotFound(m)) => suspend::find(&state, resource, &id)
            .await?
            .map(Json)
            .ok_or(ApiError::NotFound(m)),
        other => other.map(Json),
    }
}

async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    Path((coll, id)): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    check_version(req.uri().query())?;
    let coll = coll_of(&coll)?;
    let (asset, doc) = load(&state, caller.resource.id, coll, &id).await?;
    Ok(Json(entity_json(&asset, &doc)))
}

/// `PUT /customvoice/{coll}/{id}`: creates the entity (JSON).
async fn put(
    caller: Caller,
    State(state): State<AppState>,
    Path((coll, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let query = req.uri().query().map(str::to_owned);
    let body = super::read_body(req.into_body(), MAX_JSON_BYTES, "request body").await?;
    check_version(query.as_deref())?;
    let coll = coll_of(&coll)?;
    check_client_id(&id)?;
    let resource = caller.resource.id;
    let asset = match coll {
        Coll::Projects => entities::put_project(&state, resource, &id, &body).await?,
        Coll::Consents => entities::put_consent_url(&state, resource, &id, &body).await?,
        Coll::TrainingSets => entities::put_trainingset(&state, resource, &id, &body).await?,
        Coll::Models => models::put_model(&state, resource, &id, &body).await?,
        Coll::Endpoints => synth::put_endpoint(&state, resource, &id, &body).await?,
    };
    created(&asset)
}

/// `POST /consents/{id}` (multipart consent), `POST /{trainingsets|models}/{id}:upload`.
async fn post(
    caller: Caller,
    State(state): State<AppState>,
    Path((coll, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let coll = coll_of(&coll)?;
    let resource = caller.resource.id;
    let (base, verb) = match id.split_once(':') {
        Some((b, v)) => (b.to_owned(), Some(v.to_owned())),
        None => (id.clone(), None),
    };
    let query = req.uri().query().map(str::to_owned);
    match (coll, verb.as_deref()) {
        (Coll::Consents, None) => {
            let form = multipart(&state, req, entities::MAX_CONSENT_BYTES).await?;
            check_version(query.as_deref())?;
            check_client_id(&base)?;
            let asset = entities::post_consent(&state, resource, &base, form).await?;
            created(&asset)
        }
        (Coll::TrainingSets, Some("upload")) => {
            let form = multipart(&state, req, entities::MAX_TRAININGSET_BYTES).await?;
            check_version(query.as_deref())?;
            let asset = entities::upload_trainingset(&state, resource, &base, form).await?;
            let doc = Doc::read(&asset)?;
            Ok((StatusCode::ACCEPTED, Json(entity_json(&asset, &doc))).into_response())
        }
        (Coll::Models, Some("upload")) => {
            let form = multipart(&state, req, models::MAX_MODEL_BYTES).await?;
            check_version(query.as_deref())?;
            let asset = models::upload_model(&state, resource, &base, form).await?;
            let doc = Doc::read(&asset)?;
            Ok(Json(entity_json(&asset, &doc)).into_response())
        }
        (Coll::Endpoints, Some(verb @ ("suspend" | "resume"))) => {
            let headers = req.headers().clone();
            super::read_body(req.into_body(), MAX_JSON_BYTES, "request body").await?;
            check_version(query.as_deref())?;
            let version = query_param(query.as_deref(), "api-version").unwrap_or_default();
            suspend::set(
                &state,
                resource,
                &base,
                verb == "suspend",
                &headers,
                &version,
            )
            .await
        }
        (Coll::Models, Some("copyto")) => {
            let headers = req.headers().clone();
            let body = super::read_body(req.into_body(), MAX_JSON_BYTES, "request body").await?;
            check_version(query.as_deref())?;
            let version = query_param(query.as_deref(), "api-version").unwrap_or_default();
            copy::copy_to(&state, resource, &base, &body, &headers, &version).await
        }
        _ => Err(ApiError::NotFound(format!(
            "no operation POST /customvoice/{}/{id}",
            coll.path()
        ))),
    }
}

/// `DELETE /customvoice/{coll}/{id}`: 204, also when there was no such entity (as Azure).
async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path((coll, id)): Path<(String, String)>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    check_version(req.uri().query())?;
    let coll = coll_of(&coll)?;
    let resource = caller.resource.id;
    let (asset, doc) = match load(&state, resource, coll, &id).await {
        Ok(found) => found,
        Err(ApiError::NotFound(_)) => return Ok(StatusCode::NO_CONTENT),
        Err(e) => return Err(e),
    };
    match coll {
        Coll::Projects => entities::delete_project_children(&state, resource, &doc.id).await?,
        Coll::Models => {
            let used = all(&state, resource, Coll::Endpoints)
                .await?
                .into_iter()
                .find(|(_, e)| e.field("modelId") == Some(doc.id.as_str()));
            if let Some((_, e)) = used {
                return Err(ApiError::InUse(format!(
                    "model {:?} is deployed by endpoint {:?}: delete the endpoint first",
                    doc.id, e.id
                )));
            }
            synth::forget_model(asset.id);
        }
        _ => {}
    }
    remove(&state, &asset).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 201 with the entity.
fn created(asset: &Asset) -> Result<Response, ApiError> {
    let doc = Doc::read(asset)?;
    Ok((StatusCode::CREATED, Json(entity_json(asset, &doc))).into_response())
}

/// One part of a multipart form.
pub(crate) struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub bytes: bytes::Bytes,
}

/// Reads a whole multipart form of at most `limit` bytes: the body first (413 past the limit,
/// after reading it, so the client sees the error), then its parts.
async fn multipart(state: &AppState, req: Request, limit: usize) -> Result<Vec<Part>, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = super::read_body(body, limit, "upload").await?;
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut form = Multipart::from_request(req, state).await.map_err(|e| {
        ApiError::UnsupportedMediaType(format!("send the upload as multipart/form-data: {e}"))
    })?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("InvalidRequestBodyFormat", format!("the form: {e}"))
    };
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(bad)?;
        out.push(Part {
            name,
            file_name,
            bytes,
        });
    }
    Ok(out)
}

/// The trimmed text of the form's field `name`, if any and not empty.
pub(crate) fn text_field(form: &[Part], name: &str) -> Option<String> {
    form.iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| String::from_utf8_lossy(&p.bytes).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A JSON body, or 400.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "EmptyRequest",
            "the request body is empty",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "InvalidRequestBodyFormat",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// Only en-US: the consent check runs the region's English recognizer.
pub(crate) fn check_locale(locale: Option<&str>) -> Result<String, ApiError> {
    let l = locale.unwrap_or("en-US").trim();
    if l.eq_ignore_ascii_case("en-US") {
        Ok("en-US".into())
    } else {
        Err(ApiError::bad_request(
            "InvalidLocale",
            format!("locale {l:?} is not supported for custom voice here: use en-US"),
        ))
    }
}

/// A required, non-empty string field of a JSON body.
pub(crate) fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    v.map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("InvalidParameterValue", format!("{name} is required"))
        })
}
