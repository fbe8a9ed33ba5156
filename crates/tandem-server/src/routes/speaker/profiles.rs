//! Profile CRUD and the `:verb` routes (`:reset`, `:verify`) of both verification kinds and of
//! identification: every operation scoped by the caller's resource and the service.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem_store::{NewProfile, ProfileKind};
use uuid::Uuid;

use super::*;
use crate::auth::SpeakerCaller as Caller;
use crate::{ApiError, AppState};

#[derive(serde::Deserialize)]
pub(crate) struct CreateBody {
    locale: Option<String>,
}

pub(crate) async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Path(svc): Path<String>,
    Query(q): Query<Params>,
    body: Option<Json<CreateBody>>,
) -> Result<Response, ApiError> {
    let kind = service(&svc, &q)?;
    create_kind(caller, state, kind, body).await
}

/// `POST …/verification/text-dependent/profiles`.
pub(crate) async fn td_create(
    caller: Caller,
    State(state): State<AppState>,
    Path(svc): Path<String>,
    Query(q): Query<Params>,
    body: Option<Json<CreateBody>>,
) -> Result<Response, ApiError> {
    let kind = td_service(&svc, &q)?;
    create_kind(caller, state, kind, body).await
}

async fn create_kind(
    caller: Caller,
    state: AppState,
    kind: ProfileKind,
    body: Option<Json<CreateBody>>,
) -> Result<Response, ApiError> {
    state.replication().check_serving()?;
    let locale = body
        .and_then(|Json(b)| b.locale)
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && l.len() <= 16)
        .ok_or_else(|| {
            ApiError::bad_request(
                "InvalidRequest",
                "the body must be JSON with a locale, e.g. {\"locale\":\"en-us\"}",
            )
        })?;
    if kind == ProfileKind::TextDependentVerification {
        text_dependent::locale_phrases(&locale)?;
    }
    let p = state
        .store()
        .meta
        .create_profile(NewProfile {
            id: Uuid::new_v4(),
            resource_id: caller.resource.id,
            kind,
            locale,
        })
        .await?;
    state.replication().local_changed();
    let location = format!("{}/{}?api-version={API_VERSION}", profiles_path(kind), p.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(profile_json(&p)),
    )
        .into_response())
}

pub(crate) async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(svc): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let kind = service(&svc, &q)?;
    list_kind(caller, state, kind, q, headers).await
}

/// `GET …/verification/text-dependent/profiles`.
pub(crate) async fn td_list(
    caller: Caller,
    State(state): State<AppState>,
    Path(svc): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let kind = td_service(&svc, &q)?;
    list_kind(caller, state, kind, q, headers).await
}

async fn list_kind(
    caller: Caller,
    state: AppState,
    kind: ProfileKind,
    q: Params,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.replication().check_serving()?;
    for refused in ["$filter", "$skip", "$orderBy"] {
        if param(&q, refused).is_some() {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                format!("{refused} is not supported; use $top and $continuationToken"),
            ));
        }
    }
    let top = match param(&q, "$top") {
        None => TOP_DEFAULT,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|t| (1..=TOP_MAX).contains(t))
            .ok_or_else(|| {
                ApiError::bad_request("InvalidArgument", format!("$top must be 1 to {TOP_MAX}"))
            })?,
    };
    let after =
        match param(&q, "$continuationToken") {
            None => None,
            Some(t) => Some(Uuid::parse_str(t).map_err(|_| {
                ApiError::bad_request("InvalidArgument", "invalid $continuationToken")
            })?),
        };
    let mut profiles = state
        .store()
        .meta
        .list_profiles(caller.resource.id, kind, after, top + 1)
        .await?;
    let more = profiles.len() > top as usize;
    profiles.truncate(top as usize);
    let mut out = json!({"profiles": profiles.iter().map(profile_json).collect::<Vec<_>>()});
    if let (true, Some(last)) = (more, profiles.last()) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        out["@nextLink"] = json!(format!(
            "http://{host}{}?api-version={API_VERSION}&$top={top}&$continuationToken={}",
            profiles_path(kind),
            last.id
        ));
    }
    Ok(Json(out))
}

pub(crate) async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let kind = service(&svc, &q)?;
    get_kind(caller, state, kind, &id).await
}

/// `GET …/verification/text-dependent/profiles/{id}`.
pub(crate) async fn td_get(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let kind = td_service(&svc, &q)?;
    get_kind(caller, state, kind, &id).await
}

async fn get_kind(
    caller: Caller,
    state: AppState,
    kind: ProfileKind,
    id: &str,
) -> Result<Json<Value>, ApiError> {
    state.replication().check_serving()?;
    let p = state
        .store()
        .meta
        .get_profile(caller.resource.id, kind, parse_id(id)?)
        .await?
        .ok_or_else(profile_not_found)?;
    Ok(Json(profile_json(&p)))
}

pub(crate) async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let kind = service(&svc, &q)?;
    delete_kind(caller, state, kind, &id).await
}

/// `DELETE …/verification/text-dependent/profiles/{id}`.
pub(crate) async fn td_delete(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let kind = td_service(&svc, &q)?;
    delete_kind(caller, state, kind, &id).await
}

async fn delete_kind(
    caller: Caller,
    state: AppState,
    kind: ProfileKind,
    id: &str,
) -> Result<StatusCode, ApiError> {
    state.replication().check_serving()?;
    let removed = state
        .store()
        .meta
        .delete_profile(caller.resource.id, kind, parse_id(id)?)
        .await
        .map_err(not_found_as_profile)?;
    state.replication().local_changed();
    drop_audio(&state, &removed).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/profiles/{id}:verify` and `…/profiles/{id}:reset` (one path segment, so one route).
pub(crate) async fn verb(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id_verb)): Path<(String, String)>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let bytes = recognize::read_all(&state, body).await?;
    let kind = service(&svc, &q)?;
    verb_kind(caller, state, kind, &id_verb, q, headers, bytes).await
}

/// `POST …/verification/text-dependent/profiles/{id}:verify` and `…:reset`.
pub(crate) async fn td_verb(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id_verb)): Path<(String, String)>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let bytes = recognize::read_all(&state, body).await?;
    let kind = td_service(&svc, &q)?;
    verb_kind(caller, state, kind, &id_verb, q, headers, bytes).await
}

async fn verb_kind(
    caller: Caller,
    state: AppState,
    kind: ProfileKind,
    id_verb: &str,
    q: Params,
    headers: HeaderMap,
    bytes: bytes::Bytes,
) -> Result<Response, ApiError> {
    state.replication().check_serving()?;
    let (id, verb) = id_verb.split_once(':').unwrap_or((id_verb, ""));
    let id = parse_id(id)?;
    match verb {
        "reset" => {
            let removed = state
                .store()
                .meta
                .reset_profile(caller.resource.id, kind, id)
                .await
                .map_err(not_found_as_profile)?;
            state.replication().local_changed();
            drop_audio(&state, &removed).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "verify" if kind == ProfileKind::TextIndependentVerification => {
            recognize::verify(caller, state, id, q, headers, bytes)
                .await
                .map(IntoResponse::into_response)
        }
        "verify" if kind == ProfileKind::TextDependentVerification => {
            text_dependent::verify(caller, state, id, headers, bytes)
                .await
                .map(IntoResponse::into_response)
        }
        _ => Err(ApiError::NotFound(format!(
            "no operation {verb:?} on {} profiles: use :reset{}",
            kind.as_str(),
            if kind == ProfileKind::TextIndependentIdentification {
                ""
            } else {
                " or :verify"
            }
        ))),
    }
}
