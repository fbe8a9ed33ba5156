//! The inter-region copy protocol (every call signed with the peer secret, see
//! [`tandem_core::PeerAuth`]), called by the source on the target:
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /internal/v1/copy/lookup` | [`LookupRequest`]: sha256 of a key | [`LookupResponse`], 404 if no resource of the target has it |
//! | `POST /internal/v1/copy/check` | [`Grant`] | [`LookupResponse`], 403 if refused |
//! | `POST /internal/v1/copy/{resource}/{asset}/begin` | [`BeginRequest`] | [`BeginResponse`]: chunks already staged, or the committed entity |
//! | `PUT /internal/v1/copy/{resource}/{asset}/chunks/{file}/{index}` | the chunk's bytes | 204, or 400 on a digest mismatch |
//! | `POST /internal/v1/copy/{resource}/{asset}/commit` | [`CommitRequest`] | the new entity, as the target serves it |
//!
//! `{asset}` is the id the copy will have in the target: the authorization's id, or one the
//! source chose for the operation. It is the copy's identity: a retried copy finds it staged
//! or committed, and never creates a second entity.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::authz::CopyAuthorization;
use super::plan::FilePlan;

/// Prefix of every internal copy route.
pub(crate) const COPY_PREFIX: &str = "/internal/v1/copy";

/// The version of [`Manifest`] this build writes and reads.
pub(crate) const MANIFEST_FORMAT: u32 = 1;

/// What lets a copy into the target resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum Grant {
    /// v3.1 `targetSubscriptionKey`: the key's sha256 (the plain key never leaves the source);
    /// the target checks that one of its resources still has it.
    #[serde(rename_all = "camelCase")]
    Key {
        /// Hex sha256 of the key.
        key_hash: String,
    },
    /// v3.2: an authorization the target issued and signed.
    Authorization(CopyAuthorization),
}

/// `POST /lookup`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupRequest {
    /// Hex sha256 of the key.
    pub key_hash: String,
}

/// Where a key or grant leads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LookupResponse {
    /// The answering region.
    pub region: String,
    /// The resource.
    pub resource_id: String,
}

/// What is copied: the entity's portable fields and its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The asset kind (`model`).
    pub kind: String,
    /// Lineage: the source region.
    pub source_region: String,
    /// Lineage: the source entity.
    pub source_id: Uuid,
    /// `displayName`.
    pub display_name: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `locale`.
    pub locale: String,
    /// The entity's Azure `properties`.
    pub properties: Value,
    /// The kind's document, as the source keeps it.
    pub doc: Value,
    /// The files, each cut in chunks.
    pub files: Vec<FilePlan>,
}

/// `POST /begin`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BeginRequest {
    /// The grant.
    pub grant: Grant,
    /// What will be sent.
    pub manifest: Manifest,
}

/// One staged chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    /// The file.
    pub file: Uuid,
    /// The chunk's index.
    pub index: u32,
}

/// The answer to `begin`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct BeginResponse {
    /// Chunks the target already holds, verified (a resumed copy skips them).
    #[serde(default)]
    pub have: Vec<ChunkRef>,
    /// The entity, when this copy was already committed (a retry).
    #[serde(default)]
    pub committed: Option<Value>,
}

/// `POST /commit`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommitRequest {
    /// The grant, checked again.
    pub grant: Grant,
    /// The API version the entity's links use (`v3.1` or `v3.2`).
    pub api_version: String,
}
