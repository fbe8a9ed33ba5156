//! Text-dependent verification (passphrases): the phrase list, enrollment and `:verify`.
//!
//! Each enrollment and each probe is 1–10 s of WAV. It is transcribed by the region's
//! recognizer (Whisper, on the recognition worker pool, as the STT route does) and matched
//! against the locale's passphrases (`tandem_engines::speaker::passphrase`: a tolerant
//! letter-level match, [`passphrase::MATCH_BOUND`]). The first enrollment fixes the profile's passphrase
//! (the store derives it from the earliest live enrollment), later ones must say the same, and
//! the profile is `Enrolled` at three. A probe is accepted iff it says the profile's passphrase
//! and its embedding's cosine with the voice signature is at least
//! [`TEXT_DEPENDENT_THRESHOLD`]; a wrong phrase is a plain `Reject` with score 0, without the
//! voice being scored, so that the answer is no oracle for either half.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tandem_audio::{resample, Pcm};
use tandem_engines::speaker::passphrase;
use tandem_engines::speaker::TEXT_DEPENDENT_THRESHOLD;
use tandem_engines::{Embedding, RecognizeOptions};
use tandem_store::{enrollment_audio_key, EnrollmentStatus, NewEnrollment, ProfileKind};
use uuid::Uuid;

use super::recognize::{embed, encoder, read_all, read_audio, round4, Limits, MAX_ENROLLMENTS};
use super::{
    check_api_version, not_found_as_profile, parse_id, profile_json, profile_not_found, td_service,
    Params, REQUIRED_SPEECH_SECS,
};
use crate::auth::SpeakerCaller as Caller;
use crate::{ApiError, AppState};

/// Audio of one enrollment or probe: Azure's 1–10 s. At least half a second of it must be
/// voiced speech (the encoder's own minimum).
const LIMITS: Limits = Limits {
    min_secs: 1.0,
    max_secs: 10.0,
    min_speech: tandem_engines::speaker::MIN_VOICED_SECS,
};

/// The locale's passphrases, or 400 naming the supported locale.
pub(super) fn locale_phrases(locale: &str) -> Result<&'static [&'static str], ApiError> {
    passphrase::phrases(locale).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidArgument",
            format!(
                "Locale {locale:?} has no passphrases: text-dependent verification supports en-us."
            ),
        )
    })
}

/// `GET /speaker-recognition/verification/text-dependent/phrases/{locale}`:
/// `[{"passPhrase": "…"}, …]`; an unknown locale is a 400.
pub(crate) async fn phrases(
    _caller: Caller,
    Path(locale): Path<String>,
    Query(q): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    check_api_version(&q)?;
    let list = locale_phrases(&locale)?;
    Ok(Json(Value::Array(
        list.iter().map(|p| json!({ "passPhrase": p })).collect(),
    )))
}

/// Transcribes `pcm` with the region's recognizer on the recognition pool.
async fn transcribe(state: &AppState, pcm: &Pcm, locale: &str) -> Result<String, ApiError> {
    let recognizer = state
        .engines()
        .map(|e| e.recognizer.clone())
        .ok_or_else(|| ApiError::Unavailable {
            message: "the speech engines are still loading".into(),
            retry_after: 2,
        })?;
    let pcm16 = resample(pcm, 16_000);
    let opts = RecognizeOptions {
        language: locale.to_owned(),
        audio_ctx: state.config().whisper_audio_ctx,
    };
    let result = state
        .stt_pool()
        .run(move || recognizer.recognize(&pcm16.samples, &opts))
        .await??;
    Ok(result.text)
}

/// `POST …/verification/text-dependent/profiles/{id}/enrollments`.
pub(crate) async fn td_enroll(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = read_all(&state, body).await?;
    let kind = td_service(&svc, &q)?;
    state.replication().check_serving()?;
    let id = parse_id(&id)?;
    let resource = caller.resource.id;
    let meta = &state.store().meta;
    let profile = meta
        .get_profile(resource, kind, id)
        .await?
        .ok_or_else(profile_not_found)?;
    let phrases = locale_phrases(&profile.locale)?;
    encoder(&state)?;
    let audio = read_audio(&state, &headers, bytes, LIMITS).await?;
    if profile.enrollments_count >= MAX_ENROLLMENTS {
        return Err(ApiError::Refused {
            code: "InvalidOperation",
            message: format!("A profile holds at most {MAX_ENROLLMENTS} enrollments."),
        });
    }
    let heard = transcribe(&state, &audio.pcm, &profile.locale).await?;
    let Some(said) = passphrase::match_passphrase(phrases, &heard) else {
        tracing::info!(%resource, profile = %id, "text-dependent enrollment: no listed passphrase");
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!(
                "The audio does not say one of the passphrases of locale {}: see GET \
                 /speaker-recognition/verification/text-dependent/phrases/{}.",
                profile.locale, profile.locale
            ),
        ));
    };
    if profile.passphrase.as_deref().is_some_and(|p| p != said) {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            "The audio says another passphrase than the profile's earlier enrollments; every \
             enrollment of a profile must say the same passphrase (reset the profile to choose \
             another).",
        ));
    }
    let embedding = embed(&state, audio.pcm).await?;
    let enrollment = Uuid::new_v4();
    let key = enrollment_audio_key(resource, id, enrollment);
    state.store().blobs.put(&key, audio.bytes).await?;
    let added = meta
        .add_enrollment(
            resource,
            kind,
            NewEnrollment {
                id: enrollment,
                profile_id: id,
                audio_secs: audio.secs,
                speech_secs: audio.speech_secs,
                audio_key: key.clone(),
                embedding: embedding.0,
                passphrase: Some(said.to_owned()),
            },
            REQUIRED_SPEECH_SECS,
        )
        .await;
    let profile = match added {
        Ok(p) => p,
        Err(e) => {
            // Deleted meanwhile, a concurrent enrollment with another passphrase won (409), or
            // the store failed: do not leave the audio behind.
            let _ = state.store().blobs.delete(&key).await;
            return Err(not_found_as_profile(e));
        }
    };
    state.replication().local_changed();
    tracing::info!(%resource, profile = %id, count = profile.enrollments_count, "text-dependent enrollment");
    let mut out = profile_json(&profile);
    out["passPhrase"] = json!(said);
    out["audioLength"] = json!((audio.secs * 100.0).round() / 100.0);
    out["audioSpeechLength"] = json!((audio.speech_secs * 100.0).round() / 100.0);
    Ok((StatusCode::CREATED, Json(out)))
}

/// `POST …/verification/text-dependent/profiles/{id}:verify`.
pub(super) async fn verify(
    caller: Caller,
    state: AppState,
    id: Uuid,
    headers: HeaderMap,
    bytes: bytes::Bytes,
) -> Result<Json<Value>, ApiError> {
    let profile = state
        .store()
        .meta
        .get_profile(
            caller.resource.id,
            ProfileKind::TextDependentVerification,
            id,
        )
        .await?
        .ok_or_else(profile_not_found)?;
    let (EnrollmentStatus::Enrolled, Some(expected)) = (profile.status, &profile.passphrase) else {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            "Profile is not enrolled.",
        ));
    };
    let phrases = locale_phrases(&profile.locale)?;
    encoder(&state)?;
    let audio = read_audio(&state, &headers, bytes, LIMITS).await?;
    let heard = transcribe(&state, &audio.pcm, &profile.locale).await?;
    if !passphrase::says(phrases, expected, &heard) {
        tracing::info!(resource = %caller.resource.id, profile = %id, "text-dependent verify: wrong passphrase");
        return Ok(Json(json!({"recognitionResult": "Reject", "score": 0.0})));
    }
    let probe = embed(&state, audio.pcm).await?;
    let score = probe.cosine(&Embedding(profile.signature));
    let result = if score >= TEXT_DEPENDENT_THRESHOLD {
        "Accept"
    } else {
        "Reject"
    };
    Ok(Json(
        json!({"recognitionResult": result, "score": round4(score)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_locale_is_a_400_naming_the_supported_one() {
        assert_eq!(locale_phrases("en-US").unwrap().len(), 10);
        let e = locale_phrases("de-de").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("en-us"));
    }

    #[test]
    fn audio_limits_are_azures() {
        assert_eq!((LIMITS.min_secs, LIMITS.max_secs), (1.0, 10.0));
    }
}
