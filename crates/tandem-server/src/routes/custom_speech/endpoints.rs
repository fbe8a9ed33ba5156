//! `/endpoints`: Endpoints_Create, _List, _Get, _Delete. An endpoint deploys a trained custom
//! model: creating one loads and parses the model, so it is `Succeeded` at once, and
//! `?cid=<endpoint id>` on short-audio recognition then uses it ([`endpoint_model`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tandem_core::ResourceId;
use tandem_engines::AdaptedModel;
use tandem_store::{Asset, AssetKind, AssetStatus, AssetUpdate, NewAsset};
use uuid::Uuid;

use super::create::custom_properties;
use super::crud::{self, Entity};
use super::{azure_time, display_name, json_body, read_doc, ref_id, train, Cx, EntityRef, MAX_TOP};
use crate::{ApiError, AppState, V3Error};

type V3Result<T = Response> = Result<T, V3Error>;

/// The version of [`EndpointDoc`] this build writes and reads.
pub(crate) const ENDPOINT_DOC_FORMAT: u32 = 1;

/// An endpoint's [`Asset::doc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointDoc {
    /// [`ENDPOINT_DOC_FORMAT`] when written.
    pub format: u32,
    /// The custom model it serves.
    pub model: Uuid,
    /// Whether every recognition through it is logged (audio and transcription; see
    /// [`super::logs`]). Off unless the customer turns it on.
    #[serde(default)]
    pub logging_enabled: bool,
    /// The customer's `customProperties`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_properties: Map<String, Value>,
}

fn endpoint_doc(asset: &Asset) -> Result<EndpointDoc, ApiError> {
    read_doc(asset, "endpoint", ENDPOINT_DOC_FORMAT)
}

/// Azure's `Endpoint` entity; its `links` are this region's short-audio routes with `cid`.
fn endpoint_json(cx: &Cx, asset: &Asset, doc: &EndpointDoc) -> Value {
    let rest = |mode: &str| {
        format!(
            "{}/speech/recognition/{mode}/cognitiveservices/v1?cid={}",
            cx.origin(),
            asset.id
        )
    };
    let mut v = json!({
        "self": cx.url(&format!("/endpoints/{}", asset.id)),
        "model": { "self": cx.url(&format!("/models/{}", doc.model)) },
        "links": {
            "logs": cx.url(&format!("/endpoints/{}/files/logs", asset.id)),
            "restInteractive": rest("interactive"),
            "restConversation": rest("conversation"),
            "restDictation": rest("dictation"),
        },
        "properties": endpoint_properties(doc),
        "lastActionDateTime": azure_time(asset.last_action_at),
        "status": asset.status.as_str(),
        "createdDateTime": azure_time(asset.created_at),
        "locale": asset.locale,
        "displayName": asset.display_name,
    });
    if let Some(d) = asset.description.as_deref().filter(|d| !d.is_empty()) {
        v["description"] = json!(d);
    }
    if !doc.custom_properties.is_empty() {
        v["customProperties"] = Value::Object(doc.custom_properties.clone());
    }
    v
}

/// Azure's endpoint `properties`: Tandem's endpoints never expire, so only `loggingEnabled`.
fn endpoint_properties(doc: &EndpointDoc) -> Value {
    json!({ "loggingEnabled": doc.logging_enabled })
}

/// The `properties` of a create or update body. Azure reads `loggingEnabled` on create and
/// `contentLoggingEnabled` on update; both are accepted on both.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertiesBody {
    logging_enabled: Option<bool>,
    content_logging_enabled: Option<bool>,
}

impl PropertiesBody {
    fn logging(&self) -> Option<bool> {
        self.content_logging_enabled.or(self.logging_enabled)
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error(ApiError::bad_request(code, message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    model: Option<EntityRef>,
    locale: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    custom_properties: Option<Value>,
    #[serde(default)]
    properties: PropertiesBody,
}

/// The custom model that `url` names, checked for deployment: one of the caller's models,
/// `Succeeded`, adapting a base model this region runs. Else 400 `InvalidModel` or
/// `ModelNotDeployable`. Returns the model and its parsed artifact.
async fn deployable(state: &AppState, cx: &Cx, url: &str) -> V3Result<(Asset, Arc<AdaptedModel>)> {
    if ref_id(url, "models/base").is_some() {
        return Err(bad(
            "ModelNotDeployable",
            "base models are served without an endpoint: recognize without cid",
        ));
    }
    let missing = || bad("InvalidModel", format!("model {url:?} does not exist"));
    let model_id = ref_id(url, "models").ok_or_else(missing)?;
    let model = state
        .store()
        .meta
        .get_asset(cx.resource(), AssetKind::Model, model_id)
        .await?
        .ok_or_else(missing)?;
    if model.status != AssetStatus::Succeeded {
        return Err(bad(
            "ModelNotDeployable",
            format!(
                "model {model_id} is {}: only a Succeeded model can be deployed",
                model.status
            ),
        ));
    }
    let parsed = train::load_artifact(state, &model).await?;
    // Any base model of this region; one loaded on demand starts loading now.
    let bases = &super::base_models::engines(state)?.bases;
    if let Err(crate::BaseError::Unknown(_)) = bases.get_now(parsed.base_model()) {
        return Err(bad(
            "ModelNotDeployable",
            format!(
                "model {model_id} adapts {}, which this region does not run",
                parsed.base_model()
            ),
        ));
    }
    Ok((model, parsed))
}

/// `POST /endpoints`: deploys a `Succeeded` custom model (else 400 `ModelNotDeployable`).
pub(crate) async fn create(State(state): State<AppState>, cx: Cx, body: Bytes) -> V3Result {
    let b: CreateBody = json_body(&body)?;
    let name = display_name(b.display_name)?;
    let custom = custom_properties(b.custom_properties)?;
    let url = b
        .model
        .and_then(|m| m.url)
        .ok_or_else(|| bad("InvalidModel", "model is required"))?;
    let (model, parsed) = deployable(&state, &cx, &url).await?;
    let locale = b.locale.unwrap_or_else(|| model.locale.clone());
    if !locale.trim().eq_ignore_ascii_case(&model.locale) {
        return Err(bad(
            "InvalidLocale",
            format!(
                "the endpoint's locale {locale:?} is not the model's ({})",
                model.locale
            ),
        ));
    }
    let doc = EndpointDoc {
        format: ENDPOINT_DOC_FORMAT,
        model: model.id,
        logging_enabled: b.properties.logging().unwrap_or(false),
        custom_properties: custom,
    };
    let new = NewAsset {
        id: Uuid::new_v4(),
        resource_id: cx.resource(),
        kind: AssetKind::Endpoint,
        status: AssetStatus::Succeeded,
        display_name: name,
        description: b.description.filter(|d| !d.is_empty()),
        locale: model.locale.clone(),
        properties: endpoint_properties(&doc),
        doc: doc_value(&doc)?,
    };
    let asset = state.store().meta.create_asset(new).await?;
    state
        .custom_models()
        .insert(cx.resource(), asset.id, model.id, parsed);
    Ok(super::created(endpoint_json(&cx, &asset, &doc)))
}

fn doc_value(doc: &EndpointDoc) -> Result<Value, ApiError> {
    serde_json::to_value(doc).map_err(|e| ApiError::Internal(format!("endpoint document: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    model: Option<EntityRef>,
    display_name: Option<String>,
    description: Option<String>,
    custom_properties: Option<Value>,
    #[serde(default)]
    properties: PropertiesBody,
}

/// `PATCH /endpoints/{id}`: re-points the endpoint at another model without changing its id
/// (Azure's way to upgrade, or to fail over to a copied model), turns content logging on or
/// off, and renames. The new model is checked as on create and must have the endpoint's
/// locale; `?cid=` serves it from the next request on.
pub(crate) async fn update(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    body: Bytes,
) -> V3Result<axum::Json<Value>> {
    let b: UpdateBody = json_body(&body)?;
    let (asset, mut doc) = crud::load::<Endpoints>(&state, &cx, &id).await?;
    let mut repointed = None;
    if let Some(url) = b.model.and_then(|m| m.url) {
        let (model, parsed) = deployable(&state, &cx, &url).await?;
        if !model.locale.eq_ignore_ascii_case(&asset.locale) {
            return Err(bad(
                "InvalidLocale",
                format!(
                    "model {} is {}, the endpoint is {}: an endpoint keeps its locale",
                    model.id, model.locale, asset.locale
                ),
            ));
        }
        doc.model = model.id;
        repointed = Some(parsed);
    }
    if let Some(on) = b.properties.logging() {
        doc.logging_enabled = on;
    }
    if b.custom_properties.is_some() {
        doc.custom_properties = custom_properties(b.custom_properties)?;
    }
    let update = AssetUpdate {
        display_name: b.display_name.map(|n| display_name(Some(n))).transpose()?,
        description: b.description,
        properties: Some(endpoint_properties(&doc)),
        doc: Some(doc_value(&doc)?),
        ..AssetUpdate::default()
    };
    let asset = state
        .store()
        .meta
        .update_asset(cx.resource(), AssetKind::Endpoint, asset.id, update)
        .await?;
    let doc = endpoint_doc(&asset)?;
    if let Some(parsed) = repointed {
        state
            .custom_models()
            .insert(cx.resource(), asset.id, doc.model, parsed);
    }
    Ok(axum::Json(endpoint_json(&cx, &asset, &doc)))
}

/// The endpoint entity, for the shared handlers of [`crud`].
pub(crate) struct Endpoints;

impl Entity for Endpoints {
    const KIND: AssetKind = AssetKind::Endpoint;
    const NAME: &'static str = "endpoint";
    const COLLECTION: &'static str = "/endpoints";
    type Doc = EndpointDoc;
    fn doc(asset: &Asset) -> Result<EndpointDoc, ApiError> {
        endpoint_doc(asset)
    }
    fn json(cx: &Cx, asset: &Asset, doc: &EndpointDoc) -> Value {
        endpoint_json(cx, asset, doc)
    }
    fn custom_properties(doc: &mut EndpointDoc) -> &mut Map<String, Value> {
        &mut doc.custom_properties
    }
}

/// `DELETE /endpoints/{id}`: 204, also when there was no such endpoint. Its cached model is
/// dropped, and `?cid=` stops working at once.
pub(crate) async fn delete(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<StatusCode> {
    if let Some(uuid) = crud::delete::<Endpoints>(&state, &cx, &id).await? {
        state.custom_models().remove(uuid);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The first endpoint of `resource` that serves `model`, if any.
pub(crate) async fn first_using(
    state: &AppState,
    resource: ResourceId,
    model: Uuid,
) -> Result<Option<Uuid>, ApiError> {
    let mut skip = 0;
    loop {
        let page = state
            .store()
            .meta
            .list_assets(resource, AssetKind::Endpoint, skip, MAX_TOP)
            .await?;
        for a in &page.values {
            if endpoint_doc(a)?.model == model {
                return Ok(Some(a.id));
            }
        }
        skip += page.values.len() as u64;
        if page.values.is_empty() || skip >= page.total {
            return Ok(None);
        }
    }
}

/// The endpoint a `?cid=` request recognizes with, as read for that request.
pub(crate) struct Deployed {
    /// The endpoint's id.
    pub id: Uuid,
    /// Its parsed custom model.
    pub model: Arc<AdaptedModel>,
    /// Whether it logs every recognition (`loggingEnabled`).
    pub logging: bool,
}

/// The endpoint that `?cid=<endpoint>` names for a caller of `resource`, with its model (from
/// the cache, else loaded from the store) and its logging setting, from one read of its row. An
/// unknown id, another resource's endpoint and a deleted one are all the same 400
/// `InvalidEndpoint`.
pub(crate) async fn endpoint_model(
    state: &AppState,
    resource: ResourceId,
    cid: &str,
) -> Result<Deployed, ApiError> {
    let unknown = || {
        ApiError::bad_request(
            "InvalidEndpoint",
            format!("custom speech endpoint {cid:?} does not exist in this region"),
        )
    };
    let id = Uuid::parse_str(cid.trim()).map_err(|_| unknown())?;
    // The store decides whether the endpoint exists (another process may have deleted it);
    // the cache only saves parsing its model again.
    let endpoint = state
        .store()
        .meta
        .get_asset(resource, AssetKind::Endpoint, id)
        .await?
        .ok_or_else(unknown)?;
    let doc = endpoint_doc(&endpoint)?;
    let deployed = |model| Deployed {
        id,
        model,
        logging: doc.logging_enabled,
    };
    if let Some(m) = state.custom_models().get(resource, id, doc.model) {
        return Ok(deployed(m));
    }
    let model = state
        .store()
        .meta
        .get_asset(resource, AssetKind::Model, doc.model)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!(
                "endpoint {id} serves model {} which is gone",
                doc.model
            ))
        })?;
    let parsed = train::load_artifact(state, &model).await?;
    state
        .custom_models()
        .insert(resource, id, doc.model, parsed.clone());
    Ok(deployed(parsed))
}
