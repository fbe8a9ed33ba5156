//! `/models`: Models_ListBaseModels, _GetBaseModel, _Create, _ListCustomModels,
//! _GetCustomModel, _Update, _Delete (base models are in [`super::base_models`]). A custom model is a language adaptation of the loaded
//! Whisper model, trained in the background from Language and Pronunciation datasets
//! ([`super::train`]); acoustic adaptation is not supported.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tandem_store::{Asset, AssetKind, AssetStatus, NewAsset};
use uuid::Uuid;

use super::base_models::{features, resolve_base};
use super::create::{custom_properties, DATASET_LOCALES};
use super::crud::{self, Entity};
use super::entity::dataset_doc;
use super::{azure_time, display_name, json_body, read_doc, ref_id, train, Cx, EntityRef};
use crate::{ApiError, AppState, V3Error};

type V3Result<T = Response> = Result<T, V3Error>;

/// The version of [`ModelDoc`] this build writes and reads.
pub(crate) const MODEL_DOC_FORMAT: u32 = 1;

/// Most datasets one model is trained from.
const MAX_DATASETS: usize = 20;

/// A custom model's [`Asset::doc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelDoc {
    /// [`MODEL_DOC_FORMAT`] when written.
    pub format: u32,
    /// The base model's id (see [`BaseModel`]).
    pub base_model: Uuid,
    /// The datasets it is trained from.
    pub datasets: Vec<Uuid>,
    /// The customer's `customProperties`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_properties: Map<String, Value>,
    /// The blob (file id) of the trained artifact ([`tandem_engines::AdaptedModel::to_bytes`]),
    /// once trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Uuid>,
}

/// Reads a custom model's document.
pub(crate) fn model_doc(asset: &Asset) -> Result<ModelDoc, ApiError> {
    read_doc(asset, "model", MODEL_DOC_FORMAT)
}

/// Azure's custom `Model` entity.
pub(crate) fn model_json(cx: &Cx, asset: &Asset, doc: &ModelDoc) -> Value {
    model_json_at(&cx.base, asset, doc)
}

/// Azure's custom `Model` entity, with links under `base` (e.g. `http://host/speechtotext/v3.2`).
pub(crate) fn model_json_at(base: &str, asset: &Asset, doc: &ModelDoc) -> Value {
    let url = |rest: String| format!("{base}{rest}");
    let this = url(format!("/models/{}", asset.id));
    let mut v = json!({
        "links": { "copyTo": format!("{this}:copyto"), "copy": format!("{this}:copy") },
        "self": this,
        "baseModel": { "self": url(format!("/models/base/{}", doc.base_model)) },
        "datasets": doc
            .datasets
            .iter()
            .map(|d| json!({ "self": url(format!("/datasets/{d}")) }))
            .collect::<Vec<_>>(),
        "properties": asset.properties,
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

fn bad(code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error(ApiError::bad_request(code, message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    base_model: Option<EntityRef>,
    datasets: Option<Vec<EntityRef>>,
    locale: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    custom_properties: Option<Value>,
}

/// `POST /models`: checks the base model and datasets, stores the model as `NotStarted` and
/// trains it in the background.
pub(crate) async fn create(State(state): State<AppState>, cx: Cx, body: Bytes) -> V3Result {
    let b: CreateBody = json_body(&body)?;
    let name = display_name(b.display_name)?;
    let custom = custom_properties(b.custom_properties)?;
    let locale = b
        .locale
        .ok_or_else(|| bad("InvalidParameterValue", "locale is required"))?;
    let locale = DATASET_LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(locale.trim()))
        .ok_or_else(|| {
            bad(
                "InvalidLocale",
                format!(
                    "locale {locale:?} is not supported for models: use one of {}",
                    DATASET_LOCALES.join(", ")
                ),
            )
        })?;
    let base = resolve_base(&state, b.base_model.and_then(|r| r.url).as_deref())?;
    if !base.adaptable {
        return Err(bad(
            "InvalidBaseModel",
            format!("base model {} cannot be adapted", base.name),
        ));
    }
    let refs = b.datasets.unwrap_or_default();
    if refs.is_empty() || refs.len() > MAX_DATASETS {
        return Err(bad(
            "InvalidDataset",
            format!("give between 1 and {MAX_DATASETS} datasets to train from"),
        ));
    }
    let mut datasets = Vec::with_capacity(refs.len());
    for r in refs {
        let url = r.url.unwrap_or_default();
        let missing = || bad("InvalidDataset", format!("dataset {url:?} does not exist"));
        let id = ref_id(&url, "datasets").ok_or_else(missing)?;
        let asset = state
            .store()
            .meta
            .get_asset(cx.resource(), AssetKind::Dataset, id)
            .await?
            .ok_or_else(missing)?;
        let kind = dataset_doc(&asset)?.kind;
        if !matches!(kind.as_str(), "Language" | "Pronunciation") {
            return Err(bad(
                "InvalidDataset",
                format!(
                    "dataset {id} is {kind}: acoustic adaptation is not supported \
                     (train from Language and Pronunciation datasets)"
                ),
            ));
        }
        if asset.status != AssetStatus::Succeeded {
            return Err(bad(
                "InvalidDataset",
                format!("dataset {id} is {}, not Succeeded", asset.status),
            ));
        }
        if !asset.locale.eq_ignore_ascii_case(locale) {
            return Err(bad(
                "InvalidDataset",
                format!("dataset {id} is {}, the model {locale}", asset.locale),
            ));
        }
        if !datasets.contains(&id) {
            datasets.push(id);
        }
    }
    let doc = ModelDoc {
        format: MODEL_DOC_FORMAT,
        base_model: base.id,
        datasets: datasets.clone(),
        custom_properties: custom,
        artifact: None,
    };
    let new = NewAsset {
        id: Uuid::new_v4(),
        resource_id: cx.resource(),
        kind: AssetKind::Model,
        status: AssetStatus::NotStarted,
        display_name: name,
        description: b.description.filter(|d| !d.is_empty()),
        locale: (*locale).to_owned(),
        properties: json!({ "features": features(true, false) }),
        doc: serde_json::to_value(&doc)
            .map_err(|e| ApiError::Internal(format!("model document: {e}")))?,
    };
    let asset = state.store().meta.create_asset(new).await?;
    train::spawn(state.clone(), cx.resource(), asset.id, datasets);
    Ok(super::created(model_json(&cx, &asset, &doc)))
}

/// The model entity, for the shared handlers of [`crud`].
pub(crate) struct Models;

impl Entity for Models {
    const KIND: AssetKind = AssetKind::Model;
    const NAME: &'static str = "model";
    const COLLECTION: &'static str = "/models";
    type Doc = ModelDoc;
    fn doc(asset: &Asset) -> Result<ModelDoc, ApiError> {
        model_doc(asset)
    }
    fn json(cx: &Cx, asset: &Asset, doc: &ModelDoc) -> Value {
        model_json(cx, asset, doc)
    }
    fn custom_properties(doc: &mut ModelDoc) -> &mut Map<String, Value> {
        &mut doc.custom_properties
    }
}

/// `DELETE /models/{id}`: 204 (also when there is no such model); 409 `InUseViolation` while
/// an endpoint serves it. A model still training is deleted too: its training finds it gone
/// and removes what it wrote.
pub(crate) async fn delete(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<StatusCode> {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return Ok(StatusCode::NO_CONTENT);
    };
    if let Some(endpoint) = super::endpoints::first_using(&state, cx.resource(), uuid).await? {
        return Err(V3Error(ApiError::InUse(format!(
            "model {uuid} is deployed to endpoint {endpoint}: delete the endpoint first"
        ))));
    }
    crud::delete::<Models>(&state, &cx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
