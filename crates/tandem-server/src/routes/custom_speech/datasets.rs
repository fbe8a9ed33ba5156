//! `/datasets`: Datasets_Upload, _Create, _List, _Get, _Update, _Delete, _ListFiles, _GetFile,
//! _ListSupportedLocales, and the bytes of a file.

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tandem_store::{asset_file_key, Asset, AssetKind};
use uuid::Uuid;

use super::create::{create_dataset, DatasetMeta, DATASET_LOCALES};
use super::crud::{self, Entity};
use super::entity::{dataset_doc, dataset_json, file_json, DatasetDoc, FileDoc};
use super::{content_url, json_body, page_json, Cx, Paging};
use crate::{ApiError, AppState, V3Error};

type V3Result<T = Response> = Result<T, V3Error>;

/// 201 with `Location` and the entity.
fn created(cx: &Cx, asset: &Asset) -> V3Result {
    let doc = dataset_doc(asset)?;
    Ok(super::created(dataset_json(cx, asset, &doc)))
}

/// `POST /datasets/upload` (multipart: `displayName`, `description`, `locale`, `kind`,
/// `customProperties` as JSON text, and the file in `data`).
pub(crate) async fn upload(
    State(state): State<AppState>,
    cx: Cx,
    form: Result<Multipart, MultipartRejection>,
) -> V3Result {
    let mut form = form.map_err(|e| {
        V3Error(ApiError::UnsupportedMediaType(format!(
            "send the dataset as multipart/form-data: {e}"
        )))
    })?;
    let mut meta = DatasetMeta::default();
    let mut data = None;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        V3Error(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the upload is larger than this region's limit ({} bytes)",
                state.config().custom_speech.max_upload_bytes
            ))
        } else {
            ApiError::bad_request("InvalidRequestBodyFormat", format!("the form: {e}"))
        })
    };
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "data" {
            data = Some(field.bytes().await.map_err(form_error)?);
            continue;
        }
        let text = field.text().await.map_err(form_error)?;
        match name.as_str() {
            "displayName" => meta.display_name = Some(text),
            "description" => meta.description = Some(text),
            "locale" => meta.locale = Some(text),
            "kind" => meta.kind = Some(text),
            "customProperties" if !text.trim().is_empty() => {
                meta.custom_properties = Some(serde_json::from_str(&text).map_err(|e| {
                    V3Error(ApiError::bad_request(
                        "InvalidParameterValue",
                        format!("customProperties is not JSON: {e}"),
                    ))
                })?)
            }
            // `project`, `email` and anything unknown: accepted and ignored.
            _ => {}
        }
    }
    let meta = meta.check()?;
    let data = data.filter(|d| !d.is_empty()).ok_or_else(|| {
        V3Error(ApiError::bad_request(
            "EmptyRequest",
            "the form has no data: put the dataset file in the field named \"data\"",
        ))
    })?;
    let asset = create_dataset(&state, cx.resource(), meta, data, None).await?;
    created(&cx, &asset)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    display_name: Option<String>,
    description: Option<String>,
    locale: Option<String>,
    kind: Option<String>,
    content_url: Option<String>,
    custom_properties: Option<Value>,
}

/// `POST /datasets` (JSON with `contentUrl`): fetched only from an allowed host.
pub(crate) async fn create(State(state): State<AppState>, cx: Cx, body: Bytes) -> V3Result {
    let b: CreateBody = json_body(&body)?;
    let meta = DatasetMeta {
        display_name: b.display_name,
        description: b.description,
        locale: b.locale,
        kind: b.kind,
        custom_properties: b.custom_properties,
    }
    .check()?;
    let raw = b
        .content_url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            V3Error(ApiError::bad_request(
                "InvalidParameterValue",
                "contentUrl is required (or upload the data with POST /datasets/upload)",
            ))
        })?;
    let cfg = &state.config().custom_speech;
    let url = content_url::check(&raw, &cfg.content_url_allow_hosts)?;
    let data = content_url::fetch(url, cfg).await?;
    let asset = create_dataset(&state, cx.resource(), meta, data, Some(raw)).await?;
    created(&cx, &asset)
}

/// The dataset entity, for the shared handlers of [`crud`].
pub(crate) struct Datasets;

impl Entity for Datasets {
    const KIND: AssetKind = AssetKind::Dataset;
    const NAME: &'static str = "dataset";
    const COLLECTION: &'static str = "/datasets";
    type Doc = DatasetDoc;
    fn doc(asset: &Asset) -> Result<DatasetDoc, ApiError> {
        dataset_doc(asset)
    }
    fn json(cx: &Cx, asset: &Asset, doc: &DatasetDoc) -> Value {
        dataset_json(cx, asset, doc)
    }
    fn custom_properties(doc: &mut DatasetDoc) -> &mut Map<String, Value> {
        &mut doc.custom_properties
    }
}

/// `DELETE /datasets/{id}`: 204, also when there was no such dataset (as Azure documents).
/// The row goes first, so the dataset disappears at once; then its blobs.
pub(crate) async fn delete(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<StatusCode> {
    crud::delete::<Datasets>(&state, &cx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /datasets/{id}/files?skip=&top=`
pub(crate) async fn files(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    let paging = Paging::parse(query.as_deref())?;
    let (asset, doc) = crud::load::<Datasets>(&state, &cx, &id).await?;
    let skip = usize::try_from(paging.skip).unwrap_or(usize::MAX);
    let values: Vec<Value> = doc
        .files
        .iter()
        .skip(skip)
        .take(paging.top as usize)
        .map(|f| file_json(&cx, &asset, f))
        .collect();
    let list_url = cx.url(&format!("/datasets/{}/files", asset.id));
    Ok(Json(page_json(
        values,
        doc.files.len() as u64,
        paging,
        &list_url,
    )))
}

fn find_file<'a>(doc: &'a DatasetDoc, file: &str) -> V3Result<&'a FileDoc> {
    Uuid::parse_str(file)
        .ok()
        .and_then(|f| doc.files.iter().find(|x| x.id == f))
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("file {file} not found"))))
}

/// `GET /datasets/{id}/files/{file}`
pub(crate) async fn file(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, file)): Path<(String, String)>,
) -> V3Result<Json<Value>> {
    let (asset, doc) = crud::load::<Datasets>(&state, &cx, &id).await?;
    let f = find_file(&doc, &file)?;
    Ok(Json(file_json(&cx, &asset, f)))
}

/// `GET /datasets/{id}/files/{file}/content`: the file's bytes (what `links.contentUrl` names).
pub(crate) async fn content(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, file)): Path<(String, String)>,
) -> V3Result {
    let (asset, doc) = crud::load::<Datasets>(&state, &cx, &id).await?;
    let f = find_file(&doc, &file)?;
    let bytes = state
        .store()
        .blobs
        .get(&asset_file_key(cx.resource(), asset.id, f.id))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("dataset {} lost file {}", asset.id, f.id)))?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        f.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(f.content_type()),
        )],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `GET /datasets/locales`: the locales of each dataset kind (Azure's `DatasetLocales`).
pub(crate) async fn locales(_cx: Cx) -> Json<Value> {
    let mut m = Map::new();
    for kind in ["Acoustic", "AudioFiles", "Language", "Pronunciation"] {
        m.insert(kind.into(), json!(DATASET_LOCALES));
    }
    Json(Value::Object(m))
}
