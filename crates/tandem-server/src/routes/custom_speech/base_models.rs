//! `/models/base`: Models_ListBaseModels and _GetBaseModel. The base models are the region's
//! [`crate::BaseEngines`]: the default recognizer (Whisper tiny.en, loaded at start), then the
//! models pulled and loaded on first use (Whisper base, multilingual). Each has one entry, for
//! `en-US` (Custom Speech datasets here are English), under an id derived from its name and
//! pinned sha256, so that it is listed (and stable) before its file is ever pulled.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{azure_time, page_json, parse_id, ref_id, Cx, Paging};
use crate::{ApiError, AppState, Engines, V3Error};

type V3Result<T> = Result<T, V3Error>;

/// A base model this region serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseModel {
    /// Stable id: derived from the model's name and sha256, so that every region running the
    /// same model file gives it the same id.
    pub id: Uuid,
    /// e.g. `whisper-tiny.en`: the recognizer's name, which adapted models record.
    pub name: String,
    /// Whether the engine can be adapted (has a token vocabulary).
    pub adaptable: bool,
    /// Whether it is the region's default recognizer (else it is loaded on first use).
    pub default: bool,
}

/// The engines, or 503 while they load.
pub(crate) fn engines(state: &AppState) -> Result<&Engines, ApiError> {
    state.engines().ok_or_else(|| ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    })
}

/// Every base model, the default first; 503 while the engines load.
pub(crate) fn base_models(state: &AppState) -> Result<Vec<BaseModel>, ApiError> {
    Ok(engines(state)?
        .bases
        .models()
        .into_iter()
        .map(|m| BaseModel {
            id: base_model_id(&m.name, &m.sha256),
            name: m.name,
            adaptable: m.adaptable,
            default: m.default,
        })
        .collect())
}

/// The base model with this id, if the region has it.
pub(crate) fn find_base(state: &AppState, id: Uuid) -> Result<Option<BaseModel>, ApiError> {
    Ok(base_models(state)?.into_iter().find(|b| b.id == id))
}

/// The base model that a create body's `baseModel.self` names (the default one when it names
/// none); 400 `InvalidBaseModel` when it is not one of [`base_models`].
pub(crate) fn resolve_base(state: &AppState, url: Option<&str>) -> Result<BaseModel, ApiError> {
    let all = base_models(state)?;
    let Some(url) = url else {
        return all
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("no base model".into()));
    };
    ref_id(url, "models/base")
        .and_then(|id| all.into_iter().find(|b| b.id == id))
        .ok_or_else(|| {
            ApiError::bad_request(
                "InvalidBaseModel",
                format!("base model {url:?} does not exist: see GET /models/base"),
            )
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
    // The release of Whisper's models.
    let released = azure_time(time::macros::datetime!(2022-09-21 00:00 UTC));
    let description = if base.default {
        format!("{} (English), the model this region loads", base.name)
    } else {
        format!(
            "{} (multilingual), pulled and loaded by this region on first use",
            base.name
        )
    };
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
        "description": description,
    })
}

/// `GET /models/base`
pub(crate) async fn list(
    State(state): State<AppState>,
    cx: Cx,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    let paging = Paging::parse(query.as_deref())?;
    let all = base_models(&state)?;
    let total = all.len() as u64;
    let values: Vec<Value> = all
        .iter()
        .skip(usize::try_from(paging.skip).unwrap_or(usize::MAX))
        .take(paging.top as usize)
        .map(|b| base_json(&cx, b))
        .collect();
    Ok(Json(page_json(
        values,
        total,
        paging,
        &cx.url("/models/base"),
    )))
}

/// `GET /models/base/{id}`
pub(crate) async fn get(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<Json<Value>> {
    let uuid = parse_id(&id, "base model")?;
    let base = find_base(&state, uuid)?
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("base model {uuid} not found"))))?;
    Ok(Json(base_json(&cx, &base)))
}

#[cfg(test)]
mod tests {
    use tandem_engines::models::{pinned, WHISPER_BASE, WHISPER_TINY_EN};

    use super::*;

    /// The ids are part of the API (clients store them): they come from the name and the
    /// *pinned* sha256, so they are known before a model is pulled, and never change.
    #[test]
    fn base_model_ids_are_pinned() {
        let id = |name| base_model_id(name, pinned(name).unwrap().ggml_sha256).to_string();
        assert_eq!(id(WHISPER_TINY_EN), "5b60ccf5-8f3b-83c2-bd90-4d0990072ab9");
        assert_eq!(id(WHISPER_BASE), "b287ec2b-8538-81bf-b7b7-2c7235233910");
    }
}
