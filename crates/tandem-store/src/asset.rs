//! Custom Speech assets: datasets, models, evaluations and endpoints of a resource.
//!
//! One generic record serves every Custom Speech entity, so that listing, paging, tenancy,
//! backup and copy are written once. What differs between kinds lives in two JSON documents:
//! [`Asset::properties`] (the entity's Azure `properties` object) and [`Asset::doc`] (what the
//! service keeps for itself: customProperties, files and their blob keys, references).
//!
//! An asset belongs to one resource and is invisible to every other. Its blobs live under
//! [`asset_blob_prefix`]; callers write them *before* [`MetaStore::create_asset`], so that an
//! asset that can be listed is always complete.
//!
//! [`MetaStore::create_asset`]: crate::MetaStore::create_asset

use std::fmt;
use std::str::FromStr;

use tandem_core::ResourceId;
use uuid::Uuid;

/// Which Custom Speech entity an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetKind {
    /// `/datasets`
    Dataset,
    /// `/models`
    Model,
    /// `/evaluations`
    Evaluation,
    /// `/endpoints`
    Endpoint,
    /// `/operations/models/copy`: a copy of one of the resource's assets to another resource
    /// (usually in another region), kept by the source so that a restart resumes it.
    CopyOperation,
    /// `/customvoice/projects`
    VoiceProject,
    /// `/customvoice/consents`: a voice talent's recorded statement, and how it was checked.
    VoiceConsent,
    /// `/customvoice/trainingsets`: the voice's training audio and script.
    VoiceTrainingSet,
    /// `/customvoice/models`: a neural voice (a Piper ONNX model and its config).
    VoiceModel,
    /// `/customvoice/endpoints`: a deployed voice model (`deploymentId`).
    VoiceEndpoint,
}

impl AssetKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AssetKind; 10] = [
        AssetKind::Dataset,
        AssetKind::Model,
        AssetKind::Evaluation,
        AssetKind::Endpoint,
        AssetKind::CopyOperation,
        AssetKind::VoiceProject,
        AssetKind::VoiceConsent,
        AssetKind::VoiceTrainingSet,
        AssetKind::VoiceModel,
        AssetKind::VoiceEndpoint,
    ];

    /// The stored name: `dataset`, `model`, `evaluation`, `endpoint`, `copy-operation`, or
    /// `voice-project`, `voice-consent`, `voice-trainingset`, `voice-model`, `voice-endpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Dataset => "dataset",
            AssetKind::Model => "model",
            AssetKind::Evaluation => "evaluation",
            AssetKind::Endpoint => "endpoint",
            AssetKind::CopyOperation => "copy-operation",
            AssetKind::VoiceProject => "voice-project",
            AssetKind::VoiceConsent => "voice-consent",
            AssetKind::VoiceTrainingSet => "voice-trainingset",
            AssetKind::VoiceModel => "voice-model",
            AssetKind::VoiceEndpoint => "voice-endpoint",
        }
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dataset" => Ok(AssetKind::Dataset),
            "model" => Ok(AssetKind::Model),
            "evaluation" => Ok(AssetKind::Evaluation),
            "endpoint" => Ok(AssetKind::Endpoint),
            "copy-operation" => Ok(AssetKind::CopyOperation),
            "voice-project" => Ok(AssetKind::VoiceProject),
            "voice-consent" => Ok(AssetKind::VoiceConsent),
            "voice-trainingset" => Ok(AssetKind::VoiceTrainingSet),
            "voice-model" => Ok(AssetKind::VoiceModel),
            "voice-endpoint" => Ok(AssetKind::VoiceEndpoint),
            other => Err(format!("unknown asset kind {other:?}")),
        }
    }
}

/// Azure's long-running status of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetStatus {
    /// Accepted, not started.
    NotStarted,
    /// Being processed.
    Running,
    /// Done and usable.
    Succeeded,
    /// Done and not usable; the entity says why.
    Failed,
}

impl AssetStatus {
    /// Azure's spelling, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::NotStarted => "NotStarted",
            AssetStatus::Running => "Running",
            AssetStatus::Succeeded => "Succeeded",
            AssetStatus::Failed => "Failed",
        }
    }

    /// Whether the status is final (`Succeeded` or `Failed`).
    pub fn is_terminal(self) -> bool {
        matches!(self, AssetStatus::Succeeded | AssetStatus::Failed)
    }
}

impl fmt::Display for AssetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssetStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "NotStarted" => Ok(AssetStatus::NotStarted),
            "Running" => Ok(AssetStatus::Running),
            "Succeeded" => Ok(AssetStatus::Succeeded),
            "Failed" => Ok(AssetStatus::Failed),
            other => Err(format!("unknown asset status {other:?}")),
        }
    }
}

/// A Custom Speech entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    /// Random id (the entity's GUID).
    pub id: Uuid,
    /// The owning resource.
    pub resource_id: ResourceId,
    /// Dataset, model, evaluation or endpoint.
    pub kind: AssetKind,
    /// Long-running status.
    pub status: AssetStatus,
    /// `displayName`.
    pub display_name: String,
    /// `description`, if any.
    pub description: Option<String>,
    /// `locale`, e.g. `en-US`.
    pub locale: String,
    /// `createdDateTime` (UTC).
    pub created_at: time::OffsetDateTime,
    /// `lastActionDateTime` (UTC): creation or the last update.
    pub last_action_at: time::OffsetDateTime,
    /// The entity's Azure `properties` object.
    pub properties: serde_json::Value,
    /// Everything else the service keeps about the entity (kind-specific).
    pub doc: serde_json::Value,
}

/// What [`MetaStore::create_asset`](crate::MetaStore::create_asset) needs.
#[derive(Debug, Clone)]
pub struct NewAsset {
    /// Id chosen by the caller (random; its blobs are already under [`asset_blob_prefix`]).
    pub id: Uuid,
    /// The owning resource.
    pub resource_id: ResourceId,
    /// Dataset, model, evaluation or endpoint.
    pub kind: AssetKind,
    /// Initial status.
    pub status: AssetStatus,
    /// `displayName`.
    pub display_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `locale`.
    pub locale: String,
    /// The entity's Azure `properties` object.
    pub properties: serde_json::Value,
    /// The service's own document.
    pub doc: serde_json::Value,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AssetUpdate {
    /// New status.
    pub status: Option<AssetStatus>,
    /// New `displayName`.
    pub display_name: Option<String>,
    /// New `description`.
    pub description: Option<String>,
    /// New `properties` (replaces the whole object).
    pub properties: Option<serde_json::Value>,
    /// New document (replaces the whole document).
    pub doc: Option<serde_json::Value>,
}

/// One page of a list, and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetPage {
    /// The assets of the page, oldest first.
    pub values: Vec<Asset>,
    /// All assets of that resource and kind.
    pub total: u64,
}

/// The blob prefix of everything a resource's assets keep: `assets/<resource>/` (with the
/// slash).
pub fn resource_blob_prefix(resource: ResourceId) -> String {
    format!("assets/{resource}/")
}

/// The blob prefix of an asset's files: `assets/<resource>/<asset>/` (with the slash).
pub fn asset_blob_prefix(resource: ResourceId, asset: Uuid) -> String {
    format!("{}{asset}/", resource_blob_prefix(resource))
}

/// The blob key of one file of an asset: `assets/<resource>/<asset>/files/<file>`. Files are
/// named by id, never by the name the customer gave, so no upload can shape a key.
pub fn asset_file_key(resource: ResourceId, asset: Uuid, file: Uuid) -> String {
    format!("{}files/{file}", asset_blob_prefix(resource, asset))
}
