//! Training a custom model in the background, and loading a trained one.
//!
//! Training reads the Language and Pronunciation files of the model's datasets, gets the
//! recognizer of the model's base (pulling and loading it first if it is loaded on demand, see
//! [`crate::BaseEngines`]), trains an [`AdaptedModel`] with its vocabulary on a blocking thread, writes its artifact as a blob of the model, and only
//! then marks the model `Succeeded`, so that a `Succeeded` model always has its artifact. A
//! failure marks it `Failed` with `properties.error`. A model deleted during training is left
//! deleted: the artifact written for it is removed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tandem_core::ResourceId;
use tandem_engines::AdaptedModel;
use tandem_store::{asset_file_key, Asset, AssetKind, AssetStatus, AssetUpdate, StoreError};
use uuid::Uuid;

use super::base_models::find_base;
use super::create::remove_blobs;
use super::entity::dataset_doc;
use super::models::model_doc;
use crate::{ApiError, AppState};

/// Why training failed: `properties.error` of the model.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn internal(message: impl Into<String>) -> Self {
        Self {
            code: "InternalError",
            message: message.into(),
        }
    }
}

/// Starts training `model` from `datasets` on a background task.
pub(crate) fn spawn(state: AppState, resource: ResourceId, model: Uuid, datasets: Vec<Uuid>) {
    tokio::spawn(async move {
        // Not run here: another node holds the job (it runs it) or this node runs it already.
        let _ = run(&state, resource, model, &datasets).await;
    });
}

/// Trains `model` and records the outcome in its row (what [`spawn`] runs), on the node that
/// holds the job's lease ([`crate::jobs`]); a model another node trains, or one that finished
/// meanwhile, is left alone.
pub(crate) async fn run(
    state: &AppState,
    resource: ResourceId,
    model: Uuid,
    datasets: &[Uuid],
) -> Result<(), crate::jobs::NotRun> {
    let job = format!("train/{resource}/{model}");
    crate::jobs::run_leased(state, &job, || async {
        if !super::resume::unfinished_one(state, resource, AssetKind::Model, model).await {
            return;
        }
        let started = Instant::now();
        let outcome = train(state, resource, model, datasets).await;
        let secs = started.elapsed().as_secs_f64();
        if let Err(f) = finish(state, resource, model, outcome).await {
            tracing::warn!(%model, error = %f, "could not record a model's training outcome");
        } else {
            tracing::info!(%model, secs, "custom model training finished");
        }
    })
    .await
}

/// Marks the model `Running`, trains it and writes its artifact; returns the artifact's id.
async fn train(
    state: &AppState,
    resource: ResourceId,
    model: Uuid,
    datasets: &[Uuid],
) -> Result<Option<Uuid>, Failure> {
    let meta = &state.store().meta;
    let running = AssetUpdate {
        status: Some(AssetStatus::Running),
        ..AssetUpdate::default()
    };
    let asset = match meta
        .update_asset(resource, AssetKind::Model, model, running)
        .await
    {
        Ok(asset) => asset,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(Failure::internal(format!("storage: {e}"))),
    };
    let base_id = model_doc(&asset)
        .map_err(|e| Failure::internal(e.to_string()))?
        .base_model;
    let base = find_base(state, base_id)
        .map_err(|e| Failure::internal(e.to_string()))?
        .ok_or_else(|| Failure {
            code: "InvalidBaseModel",
            message: format!("base model {base_id} is not available in this region"),
        })?;
    let mut texts = Vec::new();
    let mut pronunciations = Vec::new();
    for &id in datasets {
        let asset = meta
            .get_asset(resource, AssetKind::Dataset, id)
            .await
            .map_err(|e| Failure::internal(format!("storage: {e}")))?
            .ok_or_else(|| Failure {
                code: "InvalidDataset",
                message: format!("dataset {id} was deleted before the model was trained"),
            })?;
        let doc = dataset_doc(&asset).map_err(|e| Failure::internal(e.to_string()))?;
        for f in doc.files {
            if !matches!(f.kind.as_str(), "LanguageData" | "PronunciationData") {
                continue;
            }
            let bytes = state
                .store()
                .blobs
                .get(&asset_file_key(resource, id, f.id))
                .await
                .map_err(|e| Failure::internal(format!("storage: {e}")))?
                .ok_or_else(|| Failure::internal(format!("dataset {id} lost file {}", f.id)))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if f.kind == "LanguageData" {
                texts.push(text);
            } else {
                pronunciations.extend(text.lines().filter_map(|l| {
                    let (display, spoken) = l.split_once('\t')?;
                    Some((display.to_owned(), spoken.to_owned()))
                }));
            }
        }
    }
    // A base model loaded on demand is pulled and loaded now (the model stays `Running`).
    let recognizer = state
        .engines()
        .ok_or_else(|| Failure::internal("the speech engines are not loaded"))?
        .bases
        .get(&base.name)
        .await
        .map_err(|e| Failure {
            code: "InvalidBaseModel",
            message: e.to_string(),
        })?;
    let artifact = tokio::task::spawn_blocking(move || {
        let vocab = recognizer
            .vocabulary()
            .ok_or_else(|| Failure::internal("the base model cannot be adapted"))?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        AdaptedModel::train(&refs, &pronunciations, vocab)
            .map(|m| m.to_bytes())
            .map_err(|e| Failure {
                code: "InvalidDataset",
                message: format!("training failed: {e}"),
            })
    })
    .await
    .map_err(|e| Failure::internal(format!("training task: {e}")))??;
    let file = Uuid::new_v4();
    state
        .store()
        .blobs
        .put(&asset_file_key(resource, model, file), artifact.into())
        .await
        .map_err(|e| Failure::internal(format!("storage: {e}")))?;
    Ok(Some(file))
}

/// Records the outcome: `Succeeded` with the artifact, or `Failed` with the reason.
async fn finish(
    state: &AppState,
    resource: ResourceId,
    model: Uuid,
    outcome: Result<Option<Uuid>, Failure>,
) -> Result<(), StoreError> {
    let store = state.store();
    let Some(asset) = store
        .meta
        .get_asset(resource, AssetKind::Model, model)
        .await?
    else {
        // Deleted while training: drop whatever was written for it.
        remove_blobs(store, resource, model).await;
        return Ok(());
    };
    let mut properties = asset.properties.clone();
    let update = match outcome {
        Ok(None) => return Ok(()),
        Ok(Some(file)) => {
            let mut doc = match model_doc(&asset) {
                Ok(doc) => doc,
                Err(e) => {
                    tracing::error!(%model, error = %e, "unreadable model document");
                    return Ok(());
                }
            };
            doc.artifact = Some(file);
            AssetUpdate {
                status: Some(AssetStatus::Succeeded),
                doc: serde_json::to_value(&doc).ok(),
                ..AssetUpdate::default()
            }
        }
        Err(f) => {
            if f.code == "InternalError" {
                tracing::error!(%model, reason = %f.message, "custom model training failed");
            }
            let message = if f.code == "InternalError" {
                "training failed because of an internal error".to_owned()
            } else {
                f.message
            };
            properties["error"] = json!({ "code": f.code, "message": message });
            AssetUpdate {
                status: Some(AssetStatus::Failed),
                properties: Some(properties),
                ..AssetUpdate::default()
            }
        }
    };
    match store
        .meta
        .update_asset(resource, AssetKind::Model, model, update)
        .await
    {
        Err(StoreError::NotFound { .. }) => {
            remove_blobs(store, resource, model).await;
            Ok(())
        }
        other => other.map(drop),
    }
}

/// Loads and parses the artifact of a trained model (on a blocking thread). Which recognizer it
/// adapts is [`AdaptedModel::base_model`]; the callers check that this region has it.
pub(crate) async fn load_artifact(
    state: &AppState,
    model: &Asset,
) -> Result<Arc<AdaptedModel>, ApiError> {
    let doc = model_doc(model)?;
    let file = doc.artifact.ok_or_else(|| {
        ApiError::Internal(format!(
            "model {} is Succeeded without an artifact",
            model.id
        ))
    })?;
    let bytes = state
        .store()
        .blobs
        .get(&asset_file_key(model.resource_id, model.id, file))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("model {} lost its artifact", model.id)))?;
    let parsed = tokio::task::spawn_blocking(move || AdaptedModel::from_bytes(&bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("model loading task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("model {}: {e}", model.id)))?;
    Ok(Arc::new(parsed))
}
