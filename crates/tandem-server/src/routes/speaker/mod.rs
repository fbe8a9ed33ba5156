//! Speaker Recognition, Azure's 2021-09-05 API:
//! `/speaker-recognition/{verification|identification}/text-independent/profiles…` and
//! `/speaker-recognition/verification/text-dependent/…` (passphrases).
//!
//! Profiles belong to the calling resource (a profile of another resource is a 404) and to one
//! service. Profile CRUD is here, shared by both APIs; text-independent enrollment,
//! verification and identification, which run the speaker encoder, are in [`recognize`]; the
//! passphrase list, enrollment and verification are in [`text_dependent`]. Storage is
//! `MetaStore`'s speaker methods plus the enrollment audio in the blob store.

mod profiles;
mod recognize;
mod text_dependent;

use std::collections::HashMap;

use serde_json::{json, Value};
use tandem_store::{Enrollment, ProfileKind, SpeakerProfile, TEXT_DEPENDENT_ENROLLMENTS};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::{ApiError, AppState};

pub(crate) use profiles::{
    create, delete, get, list, td_create, td_delete, td_get, td_list, td_verb, verb,
};
pub(crate) use recognize::{enroll, identify};
pub(crate) use text_dependent::{phrases, td_enroll};

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

/// The text-independent service from the path, after checking `api-version`.
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
    check_api_version(q).map(|()| kind)
}

/// The text-dependent service from the path (verification only), after checking `api-version`.
pub(crate) fn td_service(service: &str, q: &Params) -> Result<ProfileKind, ApiError> {
    if service != "verification" {
        return Err(ApiError::NotFound(format!(
            "unknown text-dependent speaker recognition service {service:?}: use verification"
        )));
    }
    check_api_version(q).map(|()| ProfileKind::TextDependentVerification)
}

/// 400 unless `api-version` is [`API_VERSION`].
pub(crate) fn check_api_version(q: &Params) -> Result<(), ApiError> {
    match param(q, "api-version") {
        Some(API_VERSION) => Ok(()),
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

/// The path of a kind's profile collection, e.g.
/// `/speaker-recognition/verification/text-dependent/profiles`.
pub(crate) fn profiles_path(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::TextIndependentVerification => {
            "/speaker-recognition/verification/text-independent/profiles"
        }
        ProfileKind::TextIndependentIdentification => {
            "/speaker-recognition/identification/text-independent/profiles"
        }
        ProfileKind::TextDependentVerification => {
            "/speaker-recognition/verification/text-dependent/profiles"
        }
    }
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

/// Azure's profile object. Text-dependent: no `profileStatus`, and `remainingEnrollmentsCount`
/// instead of `remainingEnrollmentsSpeechLength`.
pub(crate) fn profile_json(p: &SpeakerProfile) -> Value {
    if p.kind == ProfileKind::TextDependentVerification {
        return json!({
            "profileId": p.id,
            "locale": p.locale,
            "enrollmentStatus": p.status.as_str(),
            "createdDateTime": rfc3339(p.created_at),
            "lastUpdatedDateTime": rfc3339(p.updated_at),
            "enrollmentsCount": p.enrollments_count,
            "enrollmentsLength": round2(p.enrollments_secs),
            "enrollmentsSpeechLength": round2(p.speech_secs),
            "remainingEnrollmentsCount":
                TEXT_DEPENDENT_ENROLLMENTS.saturating_sub(p.enrollments_count),
            "modelVersion": API_VERSION,
        });
    }
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
mod tests;
