//! What each asset kind carries across a copy ([`CopyKind`]): the files to send, what the
//! target checks before accepting bytes, and how it builds the new entity once every file is
//! verified. Custom Speech models ([`ModelCopy`]) and custom voice models
//! ([`crate::routes::custom_voice::copy::VoiceModelCopy`], which also carries its consent and
//! training set) implement it; [`kind_for`] names them.

use bytes::Bytes;
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_store::{asset_file_key, Asset, AssetKind, AssetStatus};
use uuid::Uuid;

use super::super::base_models::find_base;
use super::super::models::{model_doc, model_json_at, ModelDoc, MODEL_DOC_FORMAT};
use super::wire::Manifest;
use super::CopyError;
use crate::AppState;

/// What the source sends of one entity: its files (each with the blob key it is read from:
/// a kind may carry files of related entities) and the document the manifest carries.
pub(crate) struct Package {
    /// `(file id, blob key)`; file ids are unique within the package.
    pub files: Vec<(Uuid, String)>,
    /// The manifest's `doc`.
    pub doc: Value,
}

/// One copyable asset kind.
#[async_trait::async_trait]
pub(crate) trait CopyKind: Send + Sync + 'static {
    /// Its rows.
    fn kind(&self) -> AssetKind;
    /// Source: checks that `asset` can be copied now; what it carries.
    async fn package(&self, state: &AppState, asset: &Asset) -> Result<Package, CopyError>;
    /// Target, before any byte is staged: whether this region can take it.
    fn admit(&self, state: &AppState, manifest: &Manifest) -> Result<(), CopyError>;
    /// Target: the files the new entity keeps under its own prefix (commit writes these; the
    /// kind's [`CopyKind::finish`] places the others). All of them by default.
    fn entity_files(&self, manifest: &Manifest) -> Vec<Uuid> {
        manifest.files.iter().map(|f| f.id).collect()
    }
    /// Target: whether `existing`, a row with the copy's target id, is this copy committed
    /// before (a retry), rather than another entity. Ids of copies are fresh for most kinds.
    fn is_copy(&self, _existing: &Asset, _manifest: &Manifest) -> bool {
        true
    }
    /// Target, once every file is verified: the new entity's `(properties, doc)`. `asset` is
    /// its id in `resource`; no row of it exists yet.
    async fn finish(
        &self,
        state: &AppState,
        resource: ResourceId,
        asset: Uuid,
        manifest: &Manifest,
        files: &[(Uuid, Bytes)],
    ) -> Result<(Value, Value), CopyError>;
    /// Target: the entity as Azure shows it, with links under `base`.
    fn render(&self, base: &str, asset: &Asset) -> Result<Value, CopyError>;
}

/// The implementation for `kind`, if that kind can be copied.
pub(crate) fn kind_for(kind: AssetKind) -> Option<&'static dyn CopyKind> {
    match kind {
        AssetKind::Model => Some(&ModelCopy),
        AssetKind::VoiceModel => Some(&crate::routes::custom_voice::copy::VoiceModelCopy),
        _ => None,
    }
}

/// The base model an adapted-model artifact adapts, after the checks a copy can afford
/// ([`tandem_engines::adapt::inspect`]: magic, a format this build reads, the artifact's own
/// trailing sha256).
///
/// Why not [`tandem_engines::AdaptedModel::from_bytes`]: it rebuilds the n-gram tables, some
/// 15 s for a 100 MB artifact, for a model that no copy serves. What it would add is the
/// structure of the tables; the bytes are the source's artifact exactly (the manifest's
/// sha256 is checked on reassembly), written by a region's trainer and sealed by its digest.
/// An endpoint parses the model fully when it loads it.
pub(crate) fn artifact_base(bytes: &[u8]) -> Result<String, String> {
    tandem_engines::adapt::inspect(bytes)
        .map(|h| h.base_model)
        .map_err(|e| e.to_string())
}

/// Custom Speech models: one file, the `TNDMADPT` artifact.
pub(crate) struct ModelCopy;

fn target_doc(manifest: &Manifest) -> Result<ModelDoc, CopyError> {
    let doc: ModelDoc = serde_json::from_value(manifest.doc.clone()).map_err(|e| {
        CopyError::invalid(
            "InvalidModel",
            format!("the model document is unreadable: {e}"),
        )
    })?;
    if doc.format > MODEL_DOC_FORMAT {
        return Err(CopyError::invalid(
            "InvalidModel",
            format!(
                "the model document format {} is newer than this region's ({MODEL_DOC_FORMAT})",
                doc.format
            ),
        ));
    }
    Ok(doc)
}

#[async_trait::async_trait]
impl CopyKind for ModelCopy {
    fn kind(&self) -> AssetKind {
        AssetKind::Model
    }

    async fn package(&self, _state: &AppState, asset: &Asset) -> Result<Package, CopyError> {
        if asset.status != AssetStatus::Succeeded {
            return Err(CopyError::invalid(
                "InvalidModel",
                format!(
                    "model {} is {}: only a Succeeded model can be copied",
                    asset.id, asset.status
                ),
            ));
        }
        let doc = model_doc(asset)?;
        let artifact = doc.artifact.ok_or_else(|| {
            CopyError::Internal(format!(
                "model {} is Succeeded without an artifact",
                asset.id
            ))
        })?;
        Ok(Package {
            files: vec![(
                artifact,
                asset_file_key(asset.resource_id, asset.id, artifact),
            )],
            doc: asset.doc.clone(),
        })
    }

    fn admit(&self, state: &AppState, manifest: &Manifest) -> Result<(), CopyError> {
        let doc = target_doc(manifest)?;
        if doc.artifact.is_none() || manifest.files.len() != 1 {
            return Err(CopyError::invalid(
                "InvalidModel",
                "a model copy carries exactly its artifact",
            ));
        }
        // A base this region lists (loaded, or pulled on demand) is fine; any other is not.
        if find_base(state, doc.base_model)?.is_none() {
            return Err(CopyError::invalid(
                "InvalidBaseModel",
                format!(
                    "the model's base model {} is not available in region {}: see GET /models/base there",
                    doc.base_model,
                    state.region()
                ),
            ));
        }
        Ok(())
    }

    async fn finish(
        &self,
        state: &AppState,
        _resource: ResourceId,
        _asset: Uuid,
        manifest: &Manifest,
        files: &[(Uuid, Bytes)],
    ) -> Result<(Value, Value), CopyError> {
        let mut doc = target_doc(manifest)?;
        let (id, bytes) = files
            .iter()
            .find(|(id, _)| Some(*id) == doc.artifact)
            .cloned()
            .ok_or_else(|| CopyError::invalid("InvalidModel", "the artifact was not sent"))?;
        let adapts = tokio::task::spawn_blocking(move || artifact_base(&bytes))
            .await
            .map_err(|e| CopyError::Internal(format!("artifact check: {e}")))?
            .map_err(|e| {
                CopyError::invalid("InvalidModel", format!("artifact {id} is not a model: {e}"))
            })?;
        let base = find_base(state, doc.base_model)?.ok_or_else(|| {
            CopyError::invalid(
                "InvalidBaseModel",
                format!("base model {} is not available here", doc.base_model),
            )
        })?;
        if adapts != base.name {
            return Err(CopyError::invalid(
                "InvalidModel",
                format!(
                    "the artifact adapts {adapts}, the document says {}",
                    base.name
                ),
            ));
        }
        // A base loaded on demand starts pulling now, so the first endpoint is quick.
        if let Some(engines) = state.engines() {
            let _ = engines.bases.get_now(&base.name);
        }
        // The source's datasets do not exist here; the lineage says where the model came from.
        doc.datasets.clear();
        doc.format = MODEL_DOC_FORMAT;
        let mut properties = manifest.properties.clone();
        if !properties.is_object() {
            properties = json!({});
        }
        properties["copiedFrom"] = json!({
            "region": manifest.source_region,
            "modelId": manifest.source_id,
        });
        let doc = serde_json::to_value(&doc)
            .map_err(|e| CopyError::Internal(format!("model document: {e}")))?;
        Ok((properties, doc))
    }

    fn render(&self, base: &str, asset: &Asset) -> Result<Value, CopyError> {
        Ok(model_json_at(base, asset, &model_doc(asset)?))
    }
}
