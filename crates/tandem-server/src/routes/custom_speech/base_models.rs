//! `/models/base`: Models_ListBaseModels and _GetBaseModel. The one base model is the
//! recognizer this region loaded, under an id derived from its name and sha256.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{azure_time, page_json, parse_id, Cx, Paging};
use crate::{ApiError, AppState, V3Error};

type V3Result<T> = Result<T, V3Error>;

/// The base model this region serves: the loaded recognizer.
pub(crate) struct BaseModel {
    /// Stable id: derived from the model's name and sha256, so that every region running the
    /// same model file gives it the same id.
    pub id: Uuid,
    /// e.g. `whisper-tiny.en`.
    pub name: String,
    /// Whether the engine can be adapted (has a token vocabulary).
    pub adaptable: bool,
}

/// The base model, or 503 while the engines load.
pub(crate) fn base_model(state: &AppState) -> Result<BaseModel, ApiError> {
    let engines = state.engines().ok_or_else(|| ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    })?;
    let r = &engines.recognizer;
    let sha = r.vocabulary().map(|v| v.model_sha256()).unwrap_or_default();
    Ok(BaseModel {
        id: base_model_id(r.name(), sha),
        name: r.name().to_owned(),
        adaptable: r.vocabulary().is_some(),
    })
}

/// A version-8 GUID from the first 16 bytes of sha256(`name` NUL `sha256`).
pub(crate) fn base_model_id(name: &str, sha256: &str) -> Uuid {
    let digest = Sha256::digest(format!("{name}\0{sha256}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The features of what this region can do with a model (custom or base).
pub(crate) fn features(adaptable: bool, base: bool) -> Value {
    let mut f = json!({
        "supportsTranscriptions": false,
        "supportsEndpoints": true,
        "supportsTranscriptionsOnSpeechContainers": false,
    });
    if base {
        let with: &[&str] = if adaptable {
            &["Language", "Pronunciation"]
        } else {
            &[]
        };
        f["supportsAdaptationsWith"] = json!(with);
    }
    f
}

/// Azure's base `Model` entity.
fn base_json(cx: &Cx, base: &BaseModel) -> Value {
    // The release of Whisper's English models.
    let released = azure_time(time::macros::datetime!(2022-09-21 00:00 UTC));
    json!({
        "self": cx.url(&format!("/models/base/{}", base.id)),
        "properties": {
            "features": features(base.adaptable, true),
            "chargeForAdaptation": false,
            "supportedOutputFormat": ["Display", "Lexical"],
        },
        "lastActionDateTime": released,
        "status": "Succeeded",
        "createdDateTime": released,
        "locale": "en-US",
        "displayName": base.name,
        "description": format!("{} (English), the model this region loads", base.name),
    })
}

/// `GET /models/base`
pub(crate) async fn list(
    State(state): State<AppState>,
    cx: Cx,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    let paging = Paging::parse(query.as_deref())?;
    let base = base_model(&state)?;
    let values: Vec<Value> = std::iter::once(base_json(&cx, &base))
        .skip(usize::try_from(paging.skip).unwrap_or(usize::MAX))
        .collect();
    Ok(Json(page_json(values, 1, paging, &cx.url("/models/base"))))
}

/// `GET /models/base/{id}`
pub(crate) async fn get(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<Json<Value>> {
    let uuid = parse_id(&id, "base model")?;
    let base = base_model(&state)?;
    if uuid != base.id {
        return Err(V3Error(ApiError::NotFound(format!(
            "base model {uuid} not found"
        ))));
    }
    Ok(Json(base_json(&cx, &base)))
}
