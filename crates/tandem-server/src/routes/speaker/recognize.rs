//! The speaker-encoder side: enrollments, `:verify` and `:identifySingleSpeaker`.
//!
//! Audio is checked (WAV, at most 120 s), its voiced speech measured with the encoder's own
//! silence removal (`voiced_seconds`), and embedded on the recognition worker pool. A profile's
//! voice signature is the renormalised mean of its enrollment embeddings, kept by the store;
//! scores are cosine similarities, accepted at [`THRESHOLD`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tandem_audio::{decode_wav, Pcm};
use tandem_engines::speaker::{voiced_seconds, THRESHOLD};
use tandem_engines::{Embedding, SpeakerEncoder};
use tandem_store::{enrollment_audio_key, EnrollmentStatus, NewEnrollment, ProfileKind};
use uuid::Uuid;

use super::{
    not_found_as_profile, param, parse_id, profile_json, profile_not_found, service, Params,
    REQUIRED_SPEECH_SECS,
};
use crate::auth::SpeakerCaller as Caller;
use crate::routes::read_body;
use crate::{ApiError, AppState};

/// Longest audio accepted by any text-independent operation, seconds.
const MAX_AUDIO_SECS: f64 = 120.0;
/// Total enrollment audio a profile may hold, seconds (403 beyond).
const MAX_TOTAL_ENROLLMENT_SECS: f64 = 300.0;
/// Most enrollments a profile may hold (403 beyond).
pub(super) const MAX_ENROLLMENTS: u32 = 50;
/// Least voiced speech in any audio (an enrollment, or a verify/identify with
/// `ignoreMinLength=true`), seconds.
const MIN_SPEECH_SECS: f64 = 1.0;
/// Most candidate profiles of one identification.
const MAX_CANDIDATES: usize = 50;
/// Entries of `profilesRanking`.
const RANKING: usize = 5;

/// Checked audio: the WAV bytes, decoded samples, and their lengths.
pub(super) struct Audio {
    pub(super) bytes: bytes::Bytes,
    pub(super) pcm: Pcm,
    pub(super) secs: f64,
    pub(super) speech_secs: f64,
}

/// What [`read_audio`] accepts, seconds.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    /// Least audio (0 for no minimum).
    pub(super) min_secs: f64,
    /// Most audio.
    pub(super) max_secs: f64,
    /// Least voiced speech.
    pub(super) min_speech: f64,
}

impl Limits {
    /// Text-independent: at most [`MAX_AUDIO_SECS`], at least `min_speech` of speech.
    fn text_independent(min_speech: f64) -> Self {
        Self {
            min_secs: 0.0,
            max_secs: MAX_AUDIO_SECS,
            min_speech,
        }
    }
}

pub(super) fn encoder(state: &AppState) -> Result<Arc<SpeakerEncoder>, ApiError> {
    state
        .engines()
        .map(|e| e.speaker.clone())
        .ok_or_else(|| ApiError::Unavailable {
            message: "the speaker model is still loading".into(),
            retry_after: 2,
        })
}

/// Reads the whole body first, before any check can fail: answering while the client is still
/// sending would break its connection instead of giving it the error.
pub(super) async fn read_all(state: &AppState, body: Body) -> Result<bytes::Bytes, ApiError> {
    read_body(body, state.config().max_body_bytes, "audio").await
}

/// Checks the audio: a WAV within `limits`.
pub(super) async fn read_audio(
    state: &AppState,
    headers: &HeaderMap,
    bytes: bytes::Bytes,
    limits: Limits,
) -> Result<Audio, ApiError> {
    let Limits {
        min_secs,
        max_secs,
        min_speech,
    } = limits;
    if let Some(ct) = headers.get("content-type").and_then(|v| v.to_str().ok()) {
        let ct = ct.to_ascii_lowercase();
        if !(ct.contains("wav") || ct.contains("pcm") || ct.contains("octet-stream")) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content type {ct:?} is not supported: send audio/wav; codecs=audio/pcm"
            )));
        }
    }
    let pcm = decode_wav(&bytes)?;
    let secs = pcm.duration_secs();
    if secs > max_secs {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!("Audio is too long: {secs:.1} s, at most {max_secs} s are accepted."),
        ));
    }
    if secs < min_secs {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!("Audio is too short: {secs:.2} s, at least {min_secs} s needed."),
        ));
    }
    let (speech_secs, pcm) = state
        .stt_pool()
        .run(move || (voiced_seconds(&pcm), pcm))
        .await?;
    if speech_secs < min_speech {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!(
                "Audio is too short: {speech_secs:.2} s of speech, at least {min_speech} s needed."
            ),
        ));
    }
    Ok(Audio {
        bytes,
        pcm,
        secs,
        speech_secs,
    })
}

/// The speech a verify or identify needs: Azure's 20 s, or 1 s with `ignoreMinLength=true`.
fn min_speech(q: &Params) -> f64 {
    if param(q, "ignoreMinLength").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        MIN_SPEECH_SECS
    } else {
        REQUIRED_SPEECH_SECS
    }
}

pub(super) async fn embed(state: &AppState, pcm: Pcm) -> Result<Embedding, ApiError> {
    let enc = encoder(state)?;
    Ok(state.stt_pool().run(move || enc.embed(&pcm)).await??)
}

pub(super) fn round4(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// `POST …/profiles/{id}/enrollments`: adds audio to a profile.
pub(crate) async fn enroll(
    caller: Caller,
    State(state): State<AppState>,
    Path((svc, id)): Path<(String, String)>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bytes = read_all(&state, body).await?;
    let kind = service(&svc, &q)?;
    state.replication().check_serving()?;
    let id = parse_id(&id)?;
    let resource = caller.resource.id;
    let meta = &state.store().meta;
    let profile = meta
        .get_profile(resource, kind, id)
        .await?
        .ok_or_else(profile_not_found)?;
    encoder(&state)?;
    let audio = read_audio(
        &state,
        &headers,
        bytes,
        Limits::text_independent(MIN_SPEECH_SECS),
    )
    .await?;
    if profile.enrollments_count >= MAX_ENROLLMENTS {
        return Err(ApiError::Refused {
            code: "InvalidOperation",
            message: format!("A profile holds at most {MAX_ENROLLMENTS} enrollments."),
        });
    }
    if profile.enrollments_secs + audio.secs > MAX_TOTAL_ENROLLMENT_SECS {
        return Err(ApiError::Refused {
            code: "InvalidRequest",
            message: format!(
                "Enrollments of a profile total at most {MAX_TOTAL_ENROLLMENT_SECS} s of audio."
            ),
        });
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
                passphrase: None,
            },
            REQUIRED_SPEECH_SECS,
        )
        .await;
    let profile = match added {
        Ok(p) => p,
        Err(e) => {
            // Deleted meanwhile (or the store failed): do not leave the audio behind.
            let _ = state.store().blobs.delete(&key).await;
            return Err(not_found_as_profile(e));
        }
    };
    state.replication().local_changed();
    tracing::info!(%resource, profile = %id, speech_secs = audio.speech_secs, "speaker enrollment");
    let mut out = profile_json(&profile);
    out["audioLength"] = json!((audio.secs * 100.0).round() / 100.0);
    out["audioSpeechLength"] = json!((audio.speech_secs * 100.0).round() / 100.0);
    Ok((StatusCode::CREATED, Json(out)))
}

/// `POST …/verification/text-independent/profiles/{id}:verify`.
pub(super) async fn verify(
    caller: Caller,
    state: AppState,
    id: Uuid,
    q: Params,
    headers: HeaderMap,
    bytes: bytes::Bytes,
) -> Result<Json<Value>, ApiError> {
    let profile = state
        .store()
        .meta
        .get_profile(
            caller.resource.id,
            ProfileKind::TextIndependentVerification,
            id,
        )
        .await?
        .ok_or_else(profile_not_found)?;
    if profile.status != EnrollmentStatus::Enrolled {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            "Profile is not enrolled.",
        ));
    }
    let audio = read_audio(
        &state,
        &headers,
        bytes,
        Limits::text_independent(min_speech(&q)),
    )
    .await?;
    let probe = embed(&state, audio.pcm).await?;
    let score = probe.cosine(&Embedding(profile.signature));
    let result = if score >= THRESHOLD {
        "Accept"
    } else {
        "Reject"
    };
    Ok(Json(
        json!({"recognitionResult": result, "score": round4(score)}),
    ))
}

/// `POST …/identification/text-independent/profiles:identifySingleSpeaker?profileIds=a,b`.
pub(crate) async fn identify(
    caller: Caller,
    State(state): State<AppState>,
    Path(svc): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_all(&state, body).await?;
    let kind = service(&svc, &q)?;
    state.replication().check_serving()?;
    if kind != ProfileKind::TextIndependentIdentification {
        return Err(ApiError::NotFound(
            "identifySingleSpeaker is an identification operation".into(),
        ));
    }
    let ids: Vec<&str> = param(&q, "profileIds")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > MAX_CANDIDATES {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!("profileIds must name 1 to {MAX_CANDIDATES} profiles, comma-separated"),
        ));
    }
    let mut profiles = Vec::with_capacity(ids.len());
    for id in ids {
        let p = state
            .store()
            .meta
            .get_profile(caller.resource.id, kind, parse_id(id)?)
            .await?
            .ok_or_else(profile_not_found)?;
        if p.status != EnrollmentStatus::Enrolled {
            return Err(ApiError::bad_request(
                "InvalidRequest",
                format!("Profile {} is not enrolled.", p.id),
            ));
        }
        profiles.push(p);
    }
    if profiles
        .iter()
        .any(|p| !p.locale.eq_ignore_ascii_case(&profiles[0].locale))
    {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            "All candidate profiles must have the same locale.",
        ));
    }
    let audio = read_audio(
        &state,
        &headers,
        bytes,
        Limits::text_independent(min_speech(&q)),
    )
    .await?;
    let probe = embed(&state, audio.pcm).await?;
    let mut ranking: Vec<(Uuid, f32)> = profiles
        .into_iter()
        .map(|p| (p.id, probe.cosine(&Embedding(p.signature))))
        .collect();
    ranking.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranking.dedup_by_key(|r| r.0);
    let (best, best_score) = ranking[0];
    let identified = if best_score >= THRESHOLD {
        best
    } else {
        Uuid::nil()
    };
    let ranked: Vec<Value> = ranking
        .iter()
        .take(RANKING)
        .map(|(id, s)| json!({"profileId": id, "score": round4(*s)}))
        .collect();
    Ok(Json(json!({
        "identifiedProfile": {"profileId": identified, "score": round4(best_score)},
        "profilesRanking": ranked,
    })))
}
