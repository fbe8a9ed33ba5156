//! Custom Speech: Azure's Speech-to-text REST v3.2 (`/speechtotext/v3.2/…`, with the v3.1
//! paths as aliases). Today: datasets. Models, evaluations and endpoints reuse what is here:
//! [`Cx`] (the caller and the absolute base URL that `self` links are built from), paging
//! ([`Paging`], [`page_json`]), the stored [`Asset`](tandem_store::Asset) record, and
//! [`V3Error`], which renders every failure in v3's error shape.

mod content_url;
mod create;
mod datasets;
mod entity;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
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
            .route(&p("/datasets"), get(datasets::list).post(datasets::create))
            .route(
                &p("/datasets/upload"),
                post(datasets::upload).layer(DefaultBodyLimit::max(upload_limit)),
            )
            .route(&p("/datasets/locales"), get(datasets::locales))
            .route(
                &p("/datasets/{id}"),
                get(datasets::get)
                    .patch(datasets::update)
                    .delete(datasets::delete),
            )
            .route(&p("/datasets/{id}/files"), get(datasets::files))
            .route(&p("/datasets/{id}/files/{file}"), get(datasets::file))
            .route(
                &p("/datasets/{id}/files/{file}/content"),
                get(datasets::content),
            );
    }
    router
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

#[cfg(test)]
mod tests;
