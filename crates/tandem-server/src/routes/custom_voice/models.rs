//! Voice models: `PUT /models/{id}` describes the voice, `POST /models/{id}:upload` imports
//! its Piper files (`model`: the `.onnx`, `config`: the `.onnx.json`), validates them (the
//! engine loads the model against its config, then test-speaks a sentence that must come out
//! as speech) and runs the consent check. A broken voice is refused (400 `InvalidModel`, the
//! reason in the message) and leaves the model as it was.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::EngineError;
use tandem_store::{asset_file_key, Asset, AssetStatus, AssetUpdate};
use uuid::Uuid;

use super::consent_check::{self as check, round4};
use super::entities::{check_project, stored_embedding, trainingset_embedding};
use super::{check_locale, insert, json_body, load, new_asset, required, Coll, Doc, Part};
use crate::{ApiError, AppState};

/// Largest model upload (multipart: the ONNX file and its config), bytes. Piper's "high"
/// voices are about 110 MB.
pub(crate) const MAX_MODEL_BYTES: usize = 256 * 1024 * 1024;

/// The blob ids of a model's two files.
pub(crate) const ONNX_FILE: Uuid = Uuid::from_u128(0x0c0e_5e27_0a0d_4000_8000_0000_0000_0002);
pub(crate) const CONFIG_FILE: Uuid = Uuid::from_u128(0x0c0e_5e27_0a0d_4000_8000_0000_0000_0003);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelBody {
    voice_name: Option<String>,
    description: Option<String>,
    recipe: Option<Value>,
    project_id: Option<String>,
    consent_id: Option<String>,
    #[serde(alias = "trainingsetId")]
    training_set_id: Option<String>,
    locale: Option<String>,
}

/// A voice name: 1–64 letters, digits and `-` (it is matched in SSML `<voice name>`).
fn check_voice_name(name: &str) -> Result<(), ApiError> {
    if !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidParameterValue",
            format!("voiceName {name:?} must be 1-64 letters, digits or '-'"),
        ))
    }
}

/// `PUT /models/{id}`: the model, `NotStarted` until its voice files are uploaded.
pub(crate) async fn put_model(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
) -> Result<Asset, ApiError> {
    let b: ModelBody = json_body(body)?;
    let voice_name = required(b.voice_name, "voiceName")?;
    check_voice_name(&voice_name)?;
    let project = required(b.project_id, "projectId")?;
    let consent = required(b.consent_id, "consentId")?;
    let trainingset = required(b.training_set_id, "trainingSetId")?;
    let locale = check_locale(b.locale.as_deref())?;
    check_project(state, resource, &project).await?;
    let missing = |what: &str, id: &str| {
        ApiError::bad_request(
            "InvalidParameterValue",
            format!("{what} {id:?} does not exist"),
        )
    };
    for (coll, id) in [
        (Coll::Consents, &consent),
        (Coll::TrainingSets, &trainingset),
    ] {
        let (_, doc) = load(state, resource, coll, id).await.map_err(|e| match e {
            ApiError::NotFound(_) => missing(coll.name(), id),
            other => other,
        })?;
        if doc.field("projectId") != Some(project.as_str()) {
            return Err(ApiError::bad_request(
                "InvalidParameterValue",
                format!("{} {id:?} belongs to another project", coll.name()),
            ));
        }
    }
    let recipe = match b.recipe {
        Some(Value::Object(r)) => Value::Object(r),
        _ => json!({ "kind": "Default" }),
    };
    let mut doc = Doc::new(id);
    doc.fields.insert("voiceName".into(), json!(voice_name));
    doc.fields.insert("recipe".into(), recipe);
    doc.fields.insert("projectId".into(), json!(project));
    doc.fields.insert("consentId".into(), json!(consent));
    doc.fields
        .insert("trainingSetId".into(), json!(trainingset));
    doc.fields
        .insert("engineVersion".into(), json!("piper-vits-onnx"));
    let mut new = new_asset(resource, Coll::Models, &doc, b.description, &locale);
    new.status = AssetStatus::NotStarted;
    insert(state, Coll::Models, new).await
}

/// Loads a Piper voice from its two files' bytes (blocking: writes them to a private temporary
/// directory, which is removed once ONNX Runtime has read them).
pub(crate) fn voice_from_bytes(
    model_dir: &Path,
    onnx: &[u8],
    config: &[u8],
) -> Result<PiperVoice, EngineError> {
    let dir = std::env::temp_dir().join(format!("tandem-voice-{}", Uuid::new_v4()));
    let io = |e| EngineError::io("writing a voice to a temporary directory", e);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let onnx_path = dir.join("voice.onnx");
    let json_path = dir.join("voice.onnx.json");
    let result = std::fs::write(&onnx_path, onnx)
        .and_then(|()| std::fs::write(&json_path, config))
        .map_err(io)
        .and_then(|()| PiperVoice::load_with(&onnx_path, &json_path, model_dir, 1));
    let _ = std::fs::remove_dir_all(&dir);
    // The temporary path is ours, not the caller's: keep it out of messages.
    result.map_err(|e| match e {
        EngineError::BadModel { name, reason } => EngineError::BadModel {
            name,
            reason: reason.replace(&format!("{}/", dir.display()), ""),
        },
        other => other,
    })
}

/// A voice that does not load or speak: 400 `InvalidModel` with the reason.
pub(crate) fn model_error(e: EngineError) -> ApiError {
    match e {
        EngineError::BadModel { reason, .. } => ApiError::bad_request(
            "InvalidModel",
            format!("the voice model is not usable: {reason}"),
        ),
        other => other.into(),
    }
}

/// `POST /models/{id}:upload` (multipart `model` + `config`).
pub(crate) async fn upload_model(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    form: Vec<Part>,
) -> Result<Asset, ApiError> {
    let (asset, doc) = load(state, resource, Coll::Models, id).await?;
    if asset.status == AssetStatus::Succeeded {
        return Err(ApiError::Conflict(format!(
            "model {id:?} has its voice already: create another model to import another voice"
        )));
    }
    let part = |name: &str| -> Result<Bytes, ApiError> {
        form.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.bytes.clone())
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "EmptyRequest",
                    format!(
                        "the form needs a \"model\" part (the .onnx file) and a \"config\" \
                         part (its .onnx.json); {name:?} is missing"
                    ),
                )
            })
    };
    let (onnx, config) = (part("model")?, part("config")?);
    let model_dir = state.config().model_dir();
    let (o, c) = (onnx.clone(), config.clone());
    let (voice, report) = state
        .tts_pool()
        .run(move || {
            let voice = voice_from_bytes(&model_dir, &o, &c)?;
            let report = voice.validate()?;
            Ok::<_, EngineError>((voice, report))
        })
        .await?
        .map_err(model_error)?;
    let consent_check = consent_check(state, resource, &doc).await?;
    let store = state.store();
    store
        .blobs
        .put(&asset_file_key(resource, asset.id, ONNX_FILE), onnx)
        .await?;
    store
        .blobs
        .put(&asset_file_key(resource, asset.id, CONFIG_FILE), config)
        .await?;
    let properties = json!({
        "consentCheck": consent_check,
        "sampleRateHertz": voice.sample_rate(),
        "validation": {
            "sentence": tandem_engines::tts::piper::VALIDATION_SENTENCE,
            "durationInSeconds": round4(report.duration_secs),
            "voicedSeconds": round4(report.voiced_secs),
            "realTimeFactor": round4(report.rtf),
        },
    });
    let updated = super::update(
        state,
        &asset,
        AssetUpdate {
            status: Some(AssetStatus::Succeeded),
            properties: Some(properties),
            ..AssetUpdate::default()
        },
    )
    .await?;
    super::synth::cache_voice(asset.id, Arc::new(voice));
    Ok(updated)
}

/// The model's consent check: its consent passed the statement check, and the consent's voice
/// is the training set's (cosine ≥ [`check::SPEAKER_SIMILARITY_THRESHOLD`]).
pub(crate) async fn consent_check(
    state: &AppState,
    resource: ResourceId,
    model: &Doc,
) -> Result<Value, ApiError> {
    let consent_id = model.field("consentId").unwrap_or_default();
    let set_id = model.field("trainingSetId").unwrap_or_default();
    let consent = load(state, resource, Coll::Consents, consent_id).await.ok();
    let set = load(state, resource, Coll::TrainingSets, set_id).await.ok();
    let text_score = consent
        .as_ref()
        .and_then(|(a, _)| a.properties["textScore"].as_f64())
        .unwrap_or(0.0);
    let text_passed = consent
        .as_ref()
        .is_some_and(|(a, _)| a.status == AssetStatus::Succeeded);
    let voice = consent
        .as_ref()
        .and_then(|(_, d)| stored_embedding(d.internal.get("embedding")));
    let talent = set.as_ref().and_then(|(_, d)| trainingset_embedding(d));
    let similarity = match (&voice, &talent) {
        (Some(v), Some(t)) => round4(f64::from(v.cosine(t))),
        _ => 0.0,
    };
    let speaker_passed = similarity >= check::SPEAKER_SIMILARITY_THRESHOLD;
    let mut out = json!({
        "textScore": text_score,
        "speakerSimilarity": similarity,
        "textScoreThreshold": check::TEXT_SCORE_THRESHOLD,
        "speakerSimilarityThreshold": check::SPEAKER_SIMILARITY_THRESHOLD,
        "passed": text_passed && speaker_passed,
    });
    let reason = if consent.is_none() {
        Some(format!("consent {consent_id:?} does not exist"))
    } else if talent.is_none() {
        Some(format!("training set {set_id:?} has no audio"))
    } else if !text_passed {
        Some("the consent recording does not say the consent statement".into())
    } else if !speaker_passed {
        Some("the voice of the consent is not the voice of the training set".into())
    } else {
        None
    };
    if let Some(r) = reason {
        out["reason"] = json!(r);
    }
    Ok(out)
}
