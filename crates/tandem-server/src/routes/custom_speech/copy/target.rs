//! The target's side of a copy: key lookup, grant checks, staging, and the commit that makes
//! the copy visible. The internal routes ([`super::internal`], signed with the peer secret) and
//! a same-region copy both call these functions.
//!
//! Staging: `begin` writes the manifest to `assets/<resource>/<asset>/staging/manifest.json`;
//! each chunk is checked against its sha256 and written to `…/staging/<file>/<index>`;
//! `commit` reads the chunks back, checks the whole file's sha256 again, lets the kind
//! check the content (a model's artifact must parse and adapt a base model this region has),
//! writes the files where the entity keeps them, and only then creates the row — so nothing
//! half-copied is ever listed — and finally drops the staging blobs. The staging blobs live
//! under the future asset's own prefix, so deleting the resource deletes them too.

use std::collections::BTreeSet;

use axum::body::Bytes;
use serde_json::Value;
use tandem_core::{KeyHash, ResourceId};
use tandem_store::{
    asset_blob_prefix, asset_file_key, AssetKind, AssetStatus, NewAsset, StoreError,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::kind::{kind_for, CopyKind};
use super::plan::MAX_CHUNK_SIZE;
use super::wire::{
    BeginRequest, BeginResponse, ChunkRef, CommitRequest, Grant, Manifest, MANIFEST_FORMAT,
};
use super::CopyError;
use crate::{ApiError, AppState};

/// Largest file a copy carries.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

fn staging(resource: ResourceId, asset: Uuid) -> String {
    format!("{}staging/", asset_blob_prefix(resource, asset))
}

fn manifest_key(resource: ResourceId, asset: Uuid) -> String {
    format!("{}manifest.json", staging(resource, asset))
}

fn chunk_key(resource: ResourceId, asset: Uuid, file: Uuid, index: u32) -> String {
    format!("{}{file}/{index:08}", staging(resource, asset))
}

/// The resource of this region that has a key with this hash.
pub(crate) async fn lookup(
    state: &AppState,
    key_hash: &str,
) -> Result<Option<ResourceId>, CopyError> {
    let hash = KeyHash::from_hex(key_hash)
        .ok_or_else(|| CopyError::invalid("InvalidParameterValue", "keyHash is not a sha256"))?;
    Ok(state
        .store()
        .meta
        .authenticate(state.region(), &hash)
        .await
        .map_err(ApiError::from)?
        .map(|(r, _)| r.id))
}

/// The target resource a grant opens, checked in this region.
pub(crate) async fn resolve(
    state: &AppState,
    grant: &Grant,
    check_expiry: bool,
) -> Result<ResourceId, CopyError> {
    match grant {
        Grant::Key { key_hash } => lookup(state, key_hash).await?.ok_or_else(|| {
            CopyError::Refused(format!(
                "targetSubscriptionKey is not a key of any resource in region {}",
                state.region()
            ))
        }),
        Grant::Authorization(a) => {
            let id = a
                .verify(
                    state.signer(),
                    state.region(),
                    OffsetDateTime::now_utc(),
                    check_expiry,
                )
                .map_err(|e| CopyError::Refused(e.to_string()))?;
            match state
                .store()
                .meta
                .get_resource(id)
                .await
                .map_err(ApiError::from)?
            {
                Some(r) if &r.region == state.region() => Ok(id),
                _ => Err(CopyError::Refused(format!(
                    "the authorization's target resource {id} no longer exists in region {}",
                    state.region()
                ))),
            }
        }
    }
}

/// Checks that `grant` opens `resource` for the copy `asset`.
async fn admit_grant(
    state: &AppState,
    grant: &Grant,
    resource: ResourceId,
    asset: Uuid,
    check_expiry: bool,
) -> Result<(), CopyError> {
    let opened = resolve(state, grant, check_expiry).await?;
    if opened != resource {
        return Err(CopyError::Refused(
            "the grant does not open that target resource".into(),
        ));
    }
    if let Grant::Authorization(a) = grant {
        if a.id != asset {
            return Err(CopyError::Refused(
                "the authorization is for another copy".into(),
            ));
        }
    }
    Ok(())
}

/// The copy's target id is another entity's (a custom voice model keeps its client id).
fn taken(kind: &dyn CopyKind, asset: Uuid) -> CopyError {
    CopyError::invalid(
        "ModelExists",
        format!(
            "the target resource has another {} with this copy's id ({asset}): delete it first",
            kind.kind()
        ),
    )
}

fn copy_kind(manifest: &Manifest) -> Result<&'static dyn CopyKind, CopyError> {
    if manifest.format > MANIFEST_FORMAT {
        return Err(CopyError::invalid(
            "InvalidRequestBodyFormat",
            format!(
                "copy manifest format {} is newer than this region's",
                manifest.format
            ),
        ));
    }
    manifest
        .kind
        .parse::<AssetKind>()
        .ok()
        .and_then(kind_for)
        .ok_or_else(|| {
            CopyError::invalid(
                "InvalidParameterValue",
                format!("assets of kind {:?} cannot be copied", manifest.kind),
            )
        })
}

async fn staged_manifest(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
) -> Result<Option<Manifest>, CopyError> {
    let Some(bytes) = state
        .store()
        .blobs
        .get(&manifest_key(resource, asset))
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Starts (or resumes) a copy: checks the grant and the manifest, and answers the chunks
/// already staged — or the entity, if this copy was committed before.
pub(crate) async fn begin(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    req: &BeginRequest,
    base: &str,
) -> Result<BeginResponse, CopyError> {
    admit_grant(state, &req.grant, resource, asset, true).await?;
    let m = &req.manifest;
    let kind = copy_kind(m)?;
    if let Some(done) = state
        .store()
        .meta
        .get_asset(resource, kind.kind(), asset)
        .await
        .map_err(ApiError::from)?
    {
        if !kind.is_copy(&done, m) {
            return Err(taken(kind, asset));
        }
        return Ok(BeginResponse {
            have: Vec::new(),
            committed: Some(kind.render(base, &done)?),
        });
    }
    let mut ids = BTreeSet::new();
    for f in &m.files {
        if !f.is_consistent()
            || f.size > MAX_FILE_BYTES
            || f.chunk_size > MAX_CHUNK_SIZE as u64
            || !ids.insert(f.id)
        {
            return Err(CopyError::invalid(
                "InvalidRequestBodyFormat",
                format!("the copy manifest's file {} is inconsistent", f.id),
            ));
        }
    }
    kind.admit(state, m)?;
    let have = stage(state, resource, asset, m).await?;
    tracing::info!(%asset, staged = have.len(), "copy begun");
    Ok(BeginResponse {
        have,
        committed: None,
    })
}

/// Stages `m` for the copy `asset`: the chunks already staged for the same manifest (a resumed
/// copy), or none after clearing whatever another manifest left.
pub(crate) async fn stage(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    m: &Manifest,
) -> Result<Vec<ChunkRef>, CopyError> {
    let blobs = &state.store().blobs;
    let prefix = staging(resource, asset);
    let mut have = Vec::new();
    let old = staged_manifest(state, resource, asset).await?;
    if old.as_ref() == Some(m) {
        for key in blobs.list(&prefix).await.map_err(ApiError::from)? {
            if let Some((file, index)) = key[prefix.len()..].split_once('/') {
                if let (Ok(file), Ok(index)) = (Uuid::parse_str(file), index.parse::<u32>()) {
                    have.push(ChunkRef { file, index });
                }
            }
        }
    } else {
        let dropped = blobs.delete_prefix(&prefix).await.map_err(ApiError::from)?;
        if dropped > 0 {
            let differs = old
                .as_ref()
                .map_or("unreadable".to_owned(), |o| differs(o, m));
            tracing::info!(%asset, dropped, %differs, "copy restaged: another manifest was staged");
        }
        let json = serde_json::to_vec(m).map_err(|e| CopyError::Internal(e.to_string()))?;
        blobs
            .put(&manifest_key(resource, asset), json.into())
            .await
            .map_err(ApiError::from)?;
    }
    Ok(have)
}

/// Which fields of two manifests differ (for the log).
fn differs(a: &Manifest, b: &Manifest) -> String {
    let (a, b) = (serde_json::to_value(a), serde_json::to_value(b));
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (a, b) else {
        return "unreadable".into();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads every staged file back and checks each whole file against its size and sha256.
#[cfg(test)]
pub(crate) async fn assemble(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    m: &Manifest,
) -> Result<Vec<(Uuid, Bytes)>, CopyError> {
    let files = read_staged(state, resource, asset, m).await?;
    check_files(m, &files).await?;
    Ok(files)
}

/// Reads every staged file back, unchecked (see [`check_files`]).
async fn read_staged(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    m: &Manifest,
) -> Result<Vec<(Uuid, Bytes)>, CopyError> {
    let blobs = &state.store().blobs;
    let mut files = Vec::with_capacity(m.files.len());
    for plan in &m.files {
        let mut whole = Vec::with_capacity(plan.size.min(MAX_FILE_BYTES) as usize);
        for index in 0..plan.chunks.len() as u32 {
            let chunk = blobs
                .get(&chunk_key(resource, asset, plan.id, index))
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| {
                    CopyError::Retry(format!("chunk {index} of file {} is missing", plan.id))
                })?;
            whole.extend_from_slice(&chunk);
        }
        files.push((plan.id, Bytes::from(whole)));
    }
    Ok(files)
}

/// Checks each reassembled file against its size and sha256. Each chunk was checked when it
/// was staged; the whole-file digest covers every byte again (so a chunk damaged since is
/// caught), in one pass instead of two.
async fn check_files(m: &Manifest, files: &[(Uuid, Bytes)]) -> Result<(), CopyError> {
    for (plan, (_, bytes)) in m.files.iter().zip(files) {
        let (plan, bytes) = (plan.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || plan.check_file(&bytes))
            .await
            .map_err(|e| CopyError::Internal(format!("file check: {e}")))?
            .map_err(|e| CopyError::invalid("InvalidChecksum", e))?;
    }
    Ok(())
}

/// Stages one chunk after checking it against the manifest.
#[cfg(test)]
pub(crate) async fn put_chunk(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    file: Uuid,
    index: u32,
    bytes: Bytes,
) -> Result<(), CopyError> {
    let digest = tandem_core::PeerAuth::body_sha256(&bytes);
    put_verified_chunk(
        state,
        resource,
        asset,
        ChunkRef { file, index },
        bytes,
        digest,
    )
    .await
}

/// [`put_chunk`] given the sha256 of `bytes`, computed by the caller from the bytes as they
/// arrived (the internal route computes it once, to check the request's signature and here).
pub(crate) async fn put_verified_chunk(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    chunk: ChunkRef,
    bytes: Bytes,
    sha256: [u8; 32],
) -> Result<(), CopyError> {
    let ChunkRef { file, index } = chunk;
    let m = staged_manifest(state, resource, asset)
        .await?
        .ok_or_else(|| CopyError::Retry(format!("copy {asset} has not begun here")))?;
    let plan =
        m.files.iter().find(|f| f.id == file).ok_or_else(|| {
            CopyError::invalid("InvalidParameterValue", format!("no file {file}"))
        })?;
    plan.check_chunk_digest(index, bytes.len(), &sha256)
        .map_err(|e| CopyError::invalid("InvalidChecksum", e))?;
    state
        .store()
        .blobs
        .put(&chunk_key(resource, asset, file, index), bytes)
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// Verifies everything staged and creates the entity; answers it as this region serves it.
/// Idempotent: a committed copy answers the entity again.
pub(crate) async fn commit(
    state: &AppState,
    resource: ResourceId,
    asset: Uuid,
    req: &CommitRequest,
    base: &str,
) -> Result<serde_json::Value, CopyError> {
    admit_grant(state, &req.grant, resource, asset, false).await?;
    let store = state.store();
    let m = staged_manifest(state, resource, asset).await?;
    let kind = match &m {
        Some(m) => copy_kind(m)?,
        None => kind_for(AssetKind::Model).expect("models copy"),
    };
    if let Some(done) = store
        .meta
        .get_asset(resource, kind.kind(), asset)
        .await
        .map_err(ApiError::from)?
    {
        if m.as_ref().is_some_and(|m| !kind.is_copy(&done, m)) {
            return Err(taken(kind, asset));
        }
        return kind.render(base, &done);
    }
    let m = m.ok_or_else(|| CopyError::Retry(format!("copy {asset} has nothing staged here")))?;
    let files = read_staged(state, resource, asset, &m).await?;
    // The files are written where the entity keeps them while they are checked (the digests
    // on other threads, the writes mostly waiting on the disk): no row names them until both
    // are done, and a file that fails its checks is removed.
    let own = kind.entity_files(&m);
    let write = async {
        for (id, bytes) in files.iter().filter(|(id, _)| own.contains(id)) {
            let key = asset_file_key(resource, asset, *id);
            store.blobs.put(&key, bytes.clone()).await?;
        }
        Ok::<_, StoreError>(())
    };
    let check = async {
        let (whole, finished) = tokio::join!(
            check_files(&m, &files),
            kind.finish(state, resource, asset, &m, &files)
        );
        // A damaged file is a checksum error, whatever the kind makes of it.
        whole.and(finished)
    };
    let (written, checked) = tokio::join!(write, check);
    let (properties, doc) = match checked {
        Ok(finished) => finished,
        Err(e) => {
            for (id, _) in &files {
                let _ = store
                    .blobs
                    .delete(&asset_file_key(resource, asset, *id))
                    .await;
            }
            return Err(e);
        }
    };
    written.map_err(ApiError::from)?;
    let new = NewAsset {
        id: asset,
        resource_id: resource,
        kind: kind.kind(),
        status: AssetStatus::Succeeded,
        display_name: m.display_name.clone(),
        description: m.description.clone(),
        locale: m.locale.clone(),
        properties,
        doc,
    };
    let created = match store.meta.create_asset(new).await {
        Ok(a) => a,
        // A concurrent commit of the same copy won.
        Err(StoreError::Conflict { .. }) => store
            .meta
            .get_asset(resource, kind.kind(), asset)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                CopyError::invalid(
                    "ModelExists",
                    format!("id {asset} is taken by another entity"),
                )
            })?,
        Err(e) => return Err(ApiError::from(e).into()),
    };
    // Only the staging blobs go: the files are the entity's now.
    if let Err(e) = store.blobs.delete_prefix(&staging(resource, asset)).await {
        tracing::warn!(%asset, error = %e, "could not remove a copy's staging blobs");
    }
    tracing::info!(%asset, kind = %kind.kind(), "copy committed");
    kind.render(base, &created)
}
