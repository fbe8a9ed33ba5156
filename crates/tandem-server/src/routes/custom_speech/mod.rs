//! Custom Speech: Azure's Speech-to-text REST v3.2 (`/speechtotext/v3.2/…`, with the v3.1
//! paths as aliases). Today: datasets, models (language adaptation), evaluations, endpoints and
//! model copy between regions ([`copy`]).
//! They share
//! [`Cx`] (the caller and the absolute base URL that `self` links are built from), paging
//! ([`Paging`], [`page_json`]), the stored [`Asset`](tandem_store::Asset) record, and
//! [`V3Error`], which renders every failure in v3's error shape.

mod base_models;
pub(crate) mod content_url;
pub(crate) mod copy;
mod create;
mod crud;
mod datasets;
mod endpoints;
mod entity;
mod evaluations;
mod logs;
mod models;
mod resume;
mod train;

pub(crate) use endpoints::{endpoint_model, Deployed};
pub(crate) use logs::{base_scope, record as record_log, transcription_doc, Scope as LogScope};

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_store::Asset;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Caller;
use crate::{ApiError, AppState, V3Error};

/// The API versions served, as path segments; the first is the one links prefer.
pub(crate) const VERSIONS: [&str; 2] = ["v3.2", "v3.1"];

/// Adds the Custom Speech routes, under every version in [`VERSIONS`].
pub(crate) fn routes(mut router: Router<AppState>, upload_limit: usize) -> Router<AppState> {
    for v in VERSIONS {
        let p = |rest: &str| format!("/speechtotext/{v}{rest}");
        router = router
            .route(
                &p("/datasets"),
                get(crud::list::<datasets::Datasets>).post(datasets::create),
            )
            .route(
                &p("/datasets/upload"),
                post(datasets::upload).layer(DefaultBodyLimit::max(upload_limit)),
            )
            .route(&p("/datasets/locales"), get(datasets::locales))
            .route(
                &p("/datasets/{id}"),
                get(crud::get::<datasets::Datasets>)
                    .patch(crud::update::<datasets::Datasets>)
                    .delete(datasets::delete),
            )
            .route(&p("/datasets/{id}/files"), get(datasets::files))
            .route(&p("/datasets/{id}/files/{file}"), get(datasets::file))
            .route(
                &p("/datasets/{id}/files/{file}/content"),
                get(datasets::content),
            )
            .route(
                &p("/models"),
                get(crud::list::<models::Models>).post(models::create),
            )
            .route(&p("/models/locales"), get(locales))
            .route(&p("/models/base"), get(base_models::list))
            .route(&p("/models/base/{id}"), get(base_models::get))
            .route(
                &p("/models/{id}"),
                get(crud::get::<models::Models>)
                    .patch(crud::update::<models::Models>)
                    .delete(models::delete)
                    // `{id}:copyto` and `{id}:copy`.
                    .post(copy::action),
            )
            .route(&p("/models:authorizecopy"), post(copy::authorize))
            .route(&p("/operations/models/copy/{id}"), get(copy::operation))
            .route(
                &p("/evaluations"),
                get(crud::list::<evaluations::Evaluations>).post(evaluations::create),
            )
            .route(
                &p("/evaluations/{id}"),
                get(crud::get::<evaluations::Evaluations>)
                    .patch(crud::update::<evaluations::Evaluations>)
                    .delete(evaluations::delete),
            )
            .route(&p("/evaluations/locales"), get(locales))
            .route(&p("/evaluations/{id}/files"), get(evaluations::files))
            .route(&p("/evaluations/{id}/files/{file}"), get(evaluations::file))
            .route(
                &p("/evaluations/{id}/files/{file}/content"),
                get(evaluations::content),
            )
            .route(
                &p("/endpoints"),
                get(crud::list::<endpoints::Endpoints>).post(endpoints::create),
            )
            .route(
                &p("/endpoints/{id}"),
                get(crud::get::<endpoints::Endpoints>)
                    .patch(endpoints::update)
                    .delete(endpoints::delete),
            )
            .route(&p("/endpoints/locales"), get(locales))
            .route(
                &p("/endpoints/{id}/files/logs"),
                get(logs::list).delete(logs::delete_all),
            )
            .route(
                &p("/endpoints/{id}/files/logs/{log}"),
                get(logs::get).delete(logs::delete_one),
            )
            .route(
                &p("/endpoints/{id}/files/logs/{log}/content"),
                get(logs::content),
            )
            .route(
                &p("/endpoints/base/{locale}/files/logs"),
                get(logs::base_list).delete(logs::base_delete_all),
            )
            .route(
                &p("/endpoints/base/{locale}/files/logs/{log}"),
                get(logs::base_get).delete(logs::base_delete_one),
            )
            .route(
                &p("/endpoints/base/{locale}/files/logs/{log}/content"),
                get(logs::base_content),
            );
    }
    copy::internal_routes(router)
}

/// Starts the background work of Custom Speech: the endpoint-log retention sweep, and the
/// trainings, evaluations and model copies that a previous run of this region left unfinished.
pub fn start_background(state: &AppState) {
    logs::spawn_retention(state.clone());
    crate::routes::status::spawn_watch(state.clone());
    resume::spawn(state.clone());
    copy::spawn_resume(state.clone());
}

/// `GET /models/locales`, `/evaluations/locales`, `/endpoints/locales`: the locales this region
/// trains, evaluates and deploys (the datasets' locales), as Azure's array of names.
pub(crate) async fn locales(_cx: Cx) -> Json<Value> {
    Json(json!(create::DATASET_LOCALES))
}

/// An authenticated Custom Speech request: the caller (holding its concurrency slot) and the
/// absolute base URL of the API version it called, e.g. `http://host:5000/speechtotext/v3.2`.
pub(crate) struct Cx {
    /// The caller.
    pub caller: Caller,
    /// Scheme, host and version prefix, without a trailing slash.
    pub base: String,
}

impl Cx {
    /// The caller's resource id.
    pub fn resource(&self) -> tandem_core::ResourceId {
        self.caller.resource.id
    }

    /// An absolute URL under this version: `base` + `rest` (which starts with `/`).
    pub fn url(&self, rest: &str) -> String {
        format!("{}{rest}", self.base)
    }

    /// Scheme and host, e.g. `http://host:5000`: where this region's other APIs are.
    pub fn origin(&self) -> &str {
        self.base
            .rsplit_once("/speechtotext/")
            .map_or(self.base.as_str(), |(origin, _)| origin)
    }
}

impl FromRequestParts<AppState> for Cx {
    type Rejection = V3Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V3Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let version = VERSIONS
            .into_iter()
            .find(|v| parts.uri.path().starts_with(&format!("/speechtotext/{v}/")))
            .unwrap_or(VERSIONS[0]);
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| state.config().listen.to_string());
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        let scheme = if https { "https" } else { "http" };
        Ok(Cx {
            caller,
            base: format!("{scheme}://{host}/speechtotext/{version}"),
        })
    }
}

/// `skip` and `top` of a list request (Azure: `top` defaults to 100 and is at most 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub skip: u64,
    pub top: u32,
}

/// Most entities a page holds.
pub(crate) const MAX_TOP: u32 = 100;

impl Paging {
    /// Reads `skip` and `top` from a raw query string; anything else is ignored.
    pub fn parse(query: Option<&str>) -> Result<Paging, V3Error> {
        let mut paging = Paging {
            skip: 0,
            top: MAX_TOP,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| {
                V3Error(ApiError::bad_request(
                    "InvalidParameterValue",
                    format!("{what} must be a non-negative integer, not {v:?}"),
                ))
            };
            match k {
                "skip" => paging.skip = v.parse().map_err(|_| bad("skip"))?,
                "top" => {
                    let top: u32 = v.parse().map_err(|_| bad("top"))?;
                    if top == 0 || top > MAX_TOP {
                        return Err(V3Error(ApiError::bad_request(
                            "InvalidParameterValue",
                            format!("top must be between 1 and {MAX_TOP}"),
                        )));
                    }
                    paging.top = top;
                }
                _ => {}
            }
        }
        Ok(paging)
    }
}

/// A page in Azure's shape: `{"values":[…]}`, plus `@nextLink` (`list_url` with the next
/// `skip`) while there is more.
pub(crate) fn page_json(values: Vec<Value>, total: u64, paging: Paging, list_url: &str) -> Value {
    let n = values.len() as u64;
    let next = paging.skip + n;
    let mut page = json!({ "values": values });
    if n > 0 && next < total {
        page["@nextLink"] = json!(format!("{list_url}?skip={next}&top={}", paging.top));
    }
    page
}

/// Azure's timestamps: RFC 3339, UTC, whole seconds (`2019-01-07T11:36:07Z`).
pub(crate) fn azure_time(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// An entity id from a path: a GUID, else no such entity (404).
pub(crate) fn parse_id(id: &str, what: &str) -> Result<Uuid, V3Error> {
    Uuid::parse_str(id).map_err(|_| V3Error(ApiError::NotFound(format!("{what} {id} not found"))))
}

/// The id in an entity reference (`{"self": ".../<collection>/<id>"}`), whichever host and
/// version it names; `None` unless the last path segments are exactly `<collection>/<GUID>`.
pub(crate) fn ref_id(url: &str, collection: &str) -> Option<Uuid> {
    let path = url.split(['?', '#']).next()?.trim_end_matches('/');
    let (head, id) = path.rsplit_once('/')?;
    let head = head.strip_suffix(collection)?;
    if !head.ends_with('/') {
        return None;
    }
    Uuid::parse_str(id).ok()
}

/// A reference to another entity, as Azure writes them.
#[derive(Debug, Deserialize)]
pub(crate) struct EntityRef {
    #[serde(rename = "self")]
    pub url: Option<String>,
}

/// A JSON request body, or 400 (`EmptyRequest`, `InvalidRequestBodyFormat`).
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, V3Error> {
    if body.is_empty() {
        return Err(V3Error(ApiError::bad_request(
            "EmptyRequest",
            "the request body is empty",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        V3Error(ApiError::bad_request(
            "InvalidRequestBodyFormat",
            format!("the body is not the expected JSON: {e}"),
        ))
    })
}

/// 201 with `Location` set to the entity's `self`.
pub(crate) fn created(body: Value) -> Response {
    let location = body["self"].as_str().unwrap_or_default().to_owned();
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A required, trimmed `displayName` of at most 256 characters.
pub(crate) fn display_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("InvalidParameterValue", "displayName is required"))?;
    if name.chars().count() > 256 {
        return Err(ApiError::bad_request(
            "InvalidParameterValue",
            "displayName is longer than 256 characters",
        ));
    }
    Ok(name)
}

/// An asset's document (`what` names it in errors), refusing one whose `format` is newer than
/// `current`: a build never guesses at a layout it does not know.
pub(crate) fn read_doc<T: DeserializeOwned>(
    asset: &Asset,
    what: &str,
    current: u32,
) -> Result<T, ApiError> {
    let format = asset.doc.get("format").and_then(Value::as_u64).unwrap_or(0);
    if format > u64::from(current) {
        return Err(ApiError::Internal(format!(
            "{what} {} document format {format} is newer than this build ({current})",
            asset.id
        )));
    }
    serde_json::from_value(asset.doc.clone())
        .map_err(|e| ApiError::Internal(format!("{what} {} document: {e}", asset.id)))
}

#[cfg(test)]
mod tests;
