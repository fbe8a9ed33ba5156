//! Speaker Recognition, Azure's 2021-09-05 text-independent API:
//! `/speaker-recognition/{verification|identification}/text-independent/profiles…`.
//!
//! Profiles belong to the calling resource (a profile of another resource is a 404) and to one
//! service. Profile CRUD is here; enrollment, verification and identification, which run the
//! speaker encoder, are in [`recognize`]. Storage is `MetaStore`'s speaker methods plus the
//! enrollment audio in the blob store.

mod recognize;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem_store::{Enrollment, NewProfile, ProfileKind, SpeakerProfile};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::auth::SpeakerCaller as Caller;
use crate::{ApiError, AppState};

pub(crate) use recognize::{enroll, identify};

/// The only API version served.
pub const API_VERSION: &str = "2021-09-05";
/// Voiced speech needed before a text-independent profile is `Enrolled`, seconds.
pub const REQUIRED_SPEECH_SECS: f64 = 20.0;
/// `$top` default and maximum of the profile list.
const TOP_DEFAULT: u32 = 100;
const TOP_MAX: u32 = 500;

pub(crate) type Params = HashMap<String, String>;

/// A query parameter, by case-insensitive name.
pub(crate) fn param<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The service from the path, after checking `api-version`.
pub(crate) fn service(service: &str, q: &Params) -> Result<ProfileKind, ApiError> {
    let kind = match service {
        "verification" => ProfileKind::TextIndependentVerification,
        "identification" => ProfileKind::TextIndependentIdentification,
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown speaker recognition service {other:?}: use verification or identification"
            )))
        }
    };
    match param(q, "api-version") {
        Some(API_VERSION) => Ok(kind),
        Some(v) => Err(ApiError::bad_request(
            "InvalidArgument",
            format!("api-version {v:?} is not supported: use api-version={API_VERSION}"),
        )),
        None => Err(ApiError::bad_request(
            "InvalidArgument",
            format!("the api-version query parameter is required: use api-version={API_VERSION}"),
        )),
    }
}

pub(crate) fn profile_not_found() -> ApiError {
    ApiError::NotFound("Requested profile doesn't exist.".into())
}

pub(crate) fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| profile_not_found())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Azure's profile object.
pub(crate) fn profile_json(p: &SpeakerProfile) -> Value {
    json!({
        "profileId": p.id,
        "locale": p.locale,
        "profileStatus": "Active",
        "enrollmentStatus": p.status.as_str(),
        "createdDateTime": rfc3339(p.created_at),
        "lastUpdatedDateTime": rfc3339(p.updated_at),
        "enrollmentsCount": p.enrollments_count,
        "enrollmentsLength": round2(p.enrollments_secs),
        "enrollmentsSpeechLength": round2(p.speech_secs),
        "remainingEnrollmentsSpeechLength": round2((REQUIRED_SPEECH_SECS - p.speech_secs).max(0.0)),
        "modelVersion": API_VERSION,
    })
}

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
    let location = format!(
        "/speaker-recognition/{svc}/text-independent/profiles/{}?api-version={API_VERSION}",
        p.id
    );
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
            "http://{host}/speaker-recognition/{svc}/text-independent/profiles?api-version={API_VERSION}&$top={top}&$continuationToken={}",
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
    state.replication().check_serving()?;
    let p = state
        .store()
        .meta
        .get_profile(caller.resource.id, kind, parse_id(&id)?)
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
    state.replication().check_serving()?;
    let removed = state
        .store()
        .meta
        .delete_profile(caller.resource.id, kind, parse_id(&id)?)
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
    state.replication().check_serving()?;
    let (id, verb) = id_verb.split_once(':').unwrap_or((&id_verb, ""));
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
        _ => Err(ApiError::NotFound(format!(
            "no operation {verb:?} on {svc} profiles: use :reset{}",
            if kind == ProfileKind::TextIndependentVerification {
                " or :verify"
            } else {
                ""
            }
        ))),
    }
}

pub(crate) fn not_found_as_profile(e: tandem_store::StoreError) -> ApiError {
    match e {
        tandem_store::StoreError::NotFound { .. } => profile_not_found(),
        other => other.into(),
    }
}

/// Deletes the audio of removed enrollments; their rows stay as tombstones. Best effort: a
/// failure leaves an orphan blob, logged, never a failed request.
async fn drop_audio(state: &AppState, removed: &[Enrollment]) {
    for e in removed {
        if let Err(err) = state.store().blobs.delete(&e.audio_key).await {
            tracing::warn!(key = %e.audio_key, %err, "could not delete enrollment audio");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn service_and_api_version() {
        let ok = q(&[("api-version", API_VERSION)]);
        assert_eq!(
            service("verification", &ok).unwrap(),
            ProfileKind::TextIndependentVerification
        );
        assert_eq!(
            service("identification", &q(&[("API-Version", API_VERSION)])).unwrap(),
            ProfileKind::TextIndependentIdentification
        );
        assert_eq!(service("other", &ok).unwrap_err().status().as_u16(), 404);
        for bad in [q(&[]), q(&[("api-version", "2020-01-01")])] {
            let e = service("verification", &bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.to_string().contains("api-version"));
        }
    }

    #[test]
    fn remaining_speech_never_goes_negative() {
        let now = time::OffsetDateTime::now_utc();
        let mut p = SpeakerProfile {
            id: Uuid::nil(),
            resource_id: tandem_core::ResourceId(Uuid::nil()),
            kind: ProfileKind::TextIndependentVerification,
            locale: "en-us".into(),
            created_at: now,
            updated_at: now,
            enrollments_count: 1,
            enrollments_secs: 14.0,
            speech_secs: 12.34,
            status: tandem_store::EnrollmentStatus::Enrolling,
            signature: Vec::new(),
        };
        assert_eq!(profile_json(&p)["remainingEnrollmentsSpeechLength"], 7.66);
        assert_eq!(profile_json(&p)["enrollmentsSpeechLength"], 12.34);
        p.speech_secs = 31.0;
        assert_eq!(profile_json(&p)["remainingEnrollmentsSpeechLength"], 0.0);
    }
}
