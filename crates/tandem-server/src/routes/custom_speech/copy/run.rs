//! The source's side: the copy operation, kept as an asset of kind
//! [`AssetKind::CopyOperation`] of the source resource (so a restart finds it), and the job
//! that runs it: read the entity's files, plan the chunks, `begin` on the target (which says
//! what it already holds), send the missing chunks, `commit`. A transient failure (target
//! unreachable, 5xx, staging lost) is retried with backoff for [`RETRY_WINDOW`]; anything else
//! fails the operation with the target's reason. Running an operation twice is harmless: the
//! target asset id is fixed in the operation, and the target's begin/commit are idempotent.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_store::{Asset, AssetKind, AssetStatus, AssetUpdate};
use uuid::Uuid;

use super::kind::kind_for;
use super::link::{link_to, TargetLink};
use super::plan::{missing, FilePlan};
use super::wire::{BeginRequest, ChunkRef, CommitRequest, Grant, Manifest, MANIFEST_FORMAT};
use super::CopyError;
use crate::{ApiError, AppState};

/// Chunks sent at once by one copy.
const CHUNKS_IN_FLIGHT: usize = 3;

/// How long transient failures are retried before the operation fails.
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(300);

/// The version of [`CopyOpDoc`] this build writes and reads.
pub(crate) const COPY_OP_FORMAT: u32 = 1;

/// A copy operation's [`Asset::doc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CopyOpDoc {
    /// [`COPY_OP_FORMAT`].
    pub format: u32,
    /// The kind copied (`model`).
    pub asset_kind: String,
    /// The source entity.
    pub source: Uuid,
    /// The target region.
    pub target_region: String,
    /// The target resource.
    pub target_resource: ResourceId,
    /// The entity's id in the target: the copy's identity there.
    pub target_asset: Uuid,
    /// What lets the copy in (a key's sha256, or the target's authorization).
    pub grant: Grant,
    /// `v3.1` or `v3.2`: the version of the links the target answers.
    pub api_version: String,
    /// Scheme and host of this region's API as the caller used it (for same-region copies).
    pub origin: String,
    /// The copied entity's `self` in the target, once Succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `{code, message}` once Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// Reads an operation's document.
pub(crate) fn op_doc(asset: &Asset) -> Result<CopyOpDoc, ApiError> {
    super::super::read_doc(asset, "copy operation", COPY_OP_FORMAT)
}

/// Runs operation `op` of `resource` to its end; the copied entity as the target serves it.
pub(crate) async fn run(
    state: &AppState,
    resource: ResourceId,
    op: Uuid,
) -> Result<Value, CopyError> {
    // One node of the region runs an operation at a time ([`crate::jobs`]).
    let job = format!("copy/{resource}/{op}");
    match crate::jobs::run_leased(state, &job, || run_unleased(state, resource, op)).await {
        Ok(r) => r,
        Err(why) => Err(CopyError::Unavailable(format!(
            "copy operation {op} is running {}",
            match why {
                crate::jobs::NotRun::HeldElsewhere => "on another node of this region",
                crate::jobs::NotRun::AlreadyRunning => "already",
            }
        ))),
    }
}

async fn run_unleased(
    state: &AppState,
    resource: ResourceId,
    op: Uuid,
) -> Result<Value, CopyError> {
    let meta = &state.store().meta;
    let asset = meta
        .get_asset(resource, AssetKind::CopyOperation, op)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| CopyError::NotFound(format!("copy operation {op} not found")))?;
    let mut doc = op_doc(&asset)?;
    if asset.status.is_terminal() {
        return match (&doc.result, &doc.error) {
            (Some(link), _) => Ok(json!({ "self": link })),
            (_, Some(e)) => Err(CopyError::Invalid {
                code: "InvalidModel",
                message: e["message"]
                    .as_str()
                    .unwrap_or("the copy failed")
                    .to_owned(),
            }),
            _ => Err(CopyError::Internal(format!(
                "copy operation {op} has no outcome"
            ))),
        };
    }
    let mut backoff = Duration::from_millis(250);
    let deadline = tokio::time::Instant::now() + RETRY_WINDOW;
    set_status(state, resource, op, AssetStatus::Running, None).await;
    let outcome = loop {
        match attempt(state, resource, &doc).await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(%op, error = %e, "copy attempt failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => break other,
        }
    };
    match &outcome {
        Ok(entity) => {
            doc.result = entity["self"].as_str().map(str::to_owned);
            set_status(state, resource, op, AssetStatus::Succeeded, Some(&doc)).await;
            tracing::info!(%op, target = %doc.target_region, "copy succeeded");
        }
        Err(e) => {
            doc.error = Some(json!({ "code": e.inner_code(), "message": e.public_message() }));
            set_status(state, resource, op, AssetStatus::Failed, Some(&doc)).await;
            tracing::warn!(%op, error = %e, "copy failed");
        }
    }
    outcome
}

async fn set_status(
    state: &AppState,
    resource: ResourceId,
    op: Uuid,
    status: AssetStatus,
    doc: Option<&CopyOpDoc>,
) {
    let update = AssetUpdate {
        status: Some(status),
        doc: doc.and_then(|d| serde_json::to_value(d).ok()),
        ..AssetUpdate::default()
    };
    if let Err(e) = state
        .store()
        .meta
        .update_asset(resource, AssetKind::CopyOperation, op, update)
        .await
    {
        tracing::warn!(%op, error = %e, "could not record a copy operation's status");
    }
}

/// Reads the entity and its files and plans the transfer.
pub(crate) async fn manifest(
    state: &AppState,
    resource: ResourceId,
    kind: AssetKind,
    id: Uuid,
) -> Result<(Manifest, Vec<Bytes>), CopyError> {
    let copy = kind_for(kind).ok_or_else(|| {
        CopyError::invalid("InvalidParameterValue", format!("{kind}s cannot be copied"))
    })?;
    let asset = state
        .store()
        .meta
        .get_asset(resource, kind, id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            CopyError::invalid("InvalidModel", format!("{kind} {id} no longer exists"))
        })?;
    let chunk_size = state.config().custom_speech.copy_chunk_bytes;
    let mut plans = Vec::new();
    let mut bodies = Vec::new();
    let package = copy.package(state, &asset).await?;
    for (file, key) in package.files {
        let bytes = state
            .store()
            .blobs
            .get(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| CopyError::Internal(format!("{kind} {id} lost file {file}")))?;
        let plan = {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || FilePlan::of(file, &bytes, chunk_size))
                .await
                .map_err(|e| CopyError::Internal(e.to_string()))?
        };
        plans.push(plan);
        bodies.push(bytes);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        kind: kind.as_str().to_owned(),
        source_region: state.region().to_string(),
        source_id: id,
        display_name: asset.display_name.clone(),
        description: asset.description.clone(),
        locale: asset.locale.clone(),
        properties: asset.properties.clone(),
        doc: package.doc,
        files: plans,
    };
    Ok((manifest, bodies))
}

async fn attempt(
    state: &AppState,
    resource: ResourceId,
    doc: &CopyOpDoc,
) -> Result<Value, CopyError> {
    let kind: AssetKind = doc
        .asset_kind
        .parse()
        .map_err(|e: String| CopyError::Internal(e))?;
    let (manifest, bodies) = manifest(state, resource, kind, doc.source).await?;
    let link = link_to(state, &doc.target_region, &doc.origin)?;
    transfer(&*link, doc, manifest, &bodies).await
}

/// One attempt over `link`: `begin`, the chunks the target lacks, `commit`.
pub(crate) async fn transfer(
    link: &dyn TargetLink,
    doc: &CopyOpDoc,
    manifest: Manifest,
    bodies: &[Bytes],
) -> Result<Value, CopyError> {
    let begin = BeginRequest {
        grant: doc.grant.clone(),
        manifest,
    };
    let started = link
        .begin(doc.target_resource, doc.target_asset, &begin)
        .await?;
    // Committed by an earlier attempt (whose answer was lost): that is the copy.
    if let Some(entity) = started.committed {
        return Ok(entity);
    }
    {
        let mut jobs = Vec::new();
        for (plan, bytes) in begin.manifest.files.iter().zip(bodies) {
            let have: BTreeSet<u32> = started
                .have
                .iter()
                .filter(|c| c.file == plan.id)
                .map(|c| c.index)
                .collect();
            for index in missing(plan.chunks.len(), &have) {
                let range = plan.range(index).expect("a planned chunk");
                let chunk = bytes.slice(range.start as usize..range.end as usize);
                let sha256 = plan.chunk_digest(index).ok_or_else(|| {
                    CopyError::Internal(format!("chunk {index} has no sha256 in the plan"))
                })?;
                let at = ChunkRef {
                    file: plan.id,
                    index,
                };
                jobs.push((at, chunk, sha256));
            }
        }
        let sent = jobs.len();
        // A few chunks in flight: the target hashes and stores one while the next arrives.
        // The first failure stops the rest; the next attempt sends what is still missing.
        futures::stream::iter(jobs)
            .map(|(at, chunk, sha256)| {
                link.put_chunk(doc.target_resource, doc.target_asset, at, chunk, sha256)
            })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        tracing::info!(target = %doc.target_asset, skipped = started.have.len(), sent, "copy chunks sent");
    }
    let commit = CommitRequest {
        grant: doc.grant.clone(),
        api_version: doc.api_version.clone(),
    };
    link.commit(doc.target_resource, doc.target_asset, &commit)
        .await
}

/// Resumes the copy operations this region left unfinished (a crash or a restart mid-copy).
pub(crate) fn spawn_resume(state: AppState) {
    tokio::spawn(async move {
        let meta = &state.store().meta;
        let resources = match meta.list_resources(state.region()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not list resources to resume copies");
                return;
            }
        };
        for r in resources {
            let mut skip = 0;
            loop {
                let page = match meta
                    .list_assets(r.id, AssetKind::CopyOperation, skip, 100)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not list copy operations");
                        break;
                    }
                };
                for op in page.values.iter().filter(|a| !a.status.is_terminal()) {
                    tracing::info!(op = %op.id, "resuming a copy operation");
                    let (state, resource, id) = (state.clone(), r.id, op.id);
                    tokio::spawn(async move {
                        let _ = run(&state, resource, id).await;
                    });
                }
                skip += page.values.len() as u64;
                if page.values.is_empty() || skip >= page.total {
                    break;
                }
            }
        }
    });
}
