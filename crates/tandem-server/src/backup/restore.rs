//! Restoring a snapshot into a region's store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tandem_backup::{
    EntryKind, Progress, Repository, RestoreEntry, RestoreOptions, RestoreSink, RestoreWriter,
};
use tandem_core::{KeySlot, RegionName, ResourceId, ResourceKey};
use tandem_store::{MetadataExport, Store};

/// A key issued by a restore into another region (keys are region-bound).
#[derive(Debug, Clone)]
pub struct NewKeys {
    /// The resource (its id is preserved).
    pub resource: ResourceId,
    /// `key1`.
    pub key1: ResourceKey,
    /// `key2`.
    pub key2: ResourceKey,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    /// The snapshot restored.
    pub snapshot: String,
    /// The region the snapshot was taken in.
    pub source_region: String,
    /// Blobs restored.
    pub files: u64,
    /// Bytes restored (blobs and the metadata export).
    pub bytes: u64,
    /// Metadata rows imported, by table.
    pub rows: Vec<(String, usize)>,
    /// New keys, when the snapshot came from another region; empty otherwise.
    pub new_keys: Vec<NewKeys>,
    /// Rows of the source's paired-region data left out of a cross-region restore.
    pub dropped_rows: usize,
}

/// Errors of a restore, for the CLI to print.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target region already holds data.
    #[error("the target region already holds data ({0}); restore into an empty region, or move its data directory aside (tandem restore --on-existing move-aside)")]
    NotEmpty(String),
    /// The repository refused or failed (corruption is named here).
    #[error(transparent)]
    Backup(#[from] tandem_backup::Error),
    /// The store failed.
    #[error("the region's store: {0}")]
    Store(#[from] tandem_store::StoreError),
}

/// Collects the export in memory and puts blobs into the store, each only once its content was
/// checked by the repository.
///
/// Blobs are written without fsync and made durable together at the end
/// ([`tandem_store::BlobStore::sync_bulk`]: every file, several at once, then each directory
/// once), before the metadata that refers to them is imported.
struct StoreSink {
    store: Store,
    metadata: Arc<Mutex<Option<Bytes>>>,
    written: Arc<Mutex<Vec<String>>>,
}

struct Writer {
    kind: EntryKind,
    path: String,
    buf: BytesMut,
    store: Store,
    metadata: Arc<Mutex<Option<Bytes>>>,
    written: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl RestoreSink for StoreSink {
    async fn create(&self, entry: &RestoreEntry) -> std::io::Result<Box<dyn RestoreWriter>> {
        Ok(Box::new(Writer {
            kind: entry.kind,
            path: entry.path.clone(),
            buf: BytesMut::with_capacity(entry.size.min(1 << 30) as usize),
            store: self.store.clone(),
            metadata: self.metadata.clone(),
            written: self.written.clone(),
        }))
    }
}

#[async_trait]
impl RestoreWriter for Writer {
    async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        self.buf.extend_from_slice(&data);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> std::io::Result<()> {
        let bytes = self.buf.freeze();
        match self.kind {
            EntryKind::Metadata => {
                *self.metadata.lock().expect("not poisoned") = Some(bytes);
                Ok(())
            }
            EntryKind::File => {
                self.store
                    .blobs
                    .put_unsynced(&self.path, bytes)
                    .await
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", self.path)))?;
                self.written
                    .lock()
                    .expect("not poisoned")
                    .push(self.path.clone());
                Ok(())
            }
        }
    }

    async fn abort(self: Box<Self>) {}
}

/// Tables and row counts of a non-empty export (for the refusal message).
fn non_empty(export: &MetadataExport) -> Option<String> {
    let held: Vec<String> = export
        .row_counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    (!held.is_empty()).then(|| held.join(", "))
}

/// Restores snapshot `id` of `repo` into `store`, the store of region `region`.
///
/// Refuses when the store holds any metadata row or blob. Every chunk is checked as it is
/// read, and a blob is written only once its whole content checked out; a damaged snapshot is
/// refused, naming the chunk, and the blobs written before the damage was found are removed,
/// leaving the store empty. Blobs are written first and the metadata last, in one transaction,
/// so the region shows the restored assets only once all their files are in place. Asset ids are kept. When
/// the snapshot comes from another region, its resources move to `region` with new keys
/// (returned, never stored in clear), and the source's paired-region data is left out.
pub async fn restore_region(
    repo: &Repository,
    id: &str,
    store: &Store,
    region: &RegionName,
    progress: &dyn Progress,
) -> Result<RestoreOutcome, RestoreError> {
    if let Some(held) = non_empty(&store.meta.export_metadata().await?) {
        return Err(RestoreError::NotEmpty(held));
    }
    let blobs = store.blobs.list("").await?;
    if !blobs.is_empty() {
        return Err(RestoreError::NotEmpty(format!("{} blobs", blobs.len())));
    }
    let manifest = repo.load_manifest(id).await?;
    let source_region = manifest.region.clone();
    let metadata = Arc::new(Mutex::new(None));
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink = StoreSink {
        store: store.clone(),
        metadata: metadata.clone(),
        written: written.clone(),
    };
    // Every chunk is checked as it is restored and a blob is written only once its whole
    // content checked out, so the snapshot is read once, not twice (a read-back preflight
    // would double the reading). On damage, what was written is removed again: the store was
    // empty, nothing refers to the blobs yet, and `restore` returns only once no write is in
    // flight.
    let opts = RestoreOptions {
        preflight_read_data: false,
        ..RestoreOptions::default()
    };
    let report = match repo.restore(id, &sink, &opts, progress).await {
        Ok(report) => report,
        Err(e) => {
            let removed = store.blobs.delete_prefix("").await;
            tracing::warn!(snapshot = id, error = %e, removed = ?removed, "restore failed; written blobs removed");
            return Err(e.into());
        }
    };
    let written = std::mem::take(&mut *written.lock().expect("not poisoned"));
    store.blobs.sync_bulk(&written).await?;
    let bytes = metadata
        .lock()
        .expect("not poisoned")
        .take()
        .ok_or_else(|| tandem_backup::Error::Corrupt {
            snapshot: Some(id.to_owned()),
            chunk: None,
            path: Some("<metadata>".into()),
            reason: "the snapshot carries no metadata export".into(),
        })?;
    let mut export = MetadataExport::from_bytes(&bytes)?;
    let mut new_keys = Vec::new();
    let mut dropped_rows = 0;
    if source_region != region.as_str() {
        let from: RegionName = source_region.parse().map_err(|e: tandem_core::CoreError| {
            tandem_backup::Error::Corrupt {
                snapshot: Some(id.to_owned()),
                chunk: None,
                path: None,
                reason: format!("the snapshot names region {source_region:?}: {e}"),
            }
        })?;
        dropped_rows = export.retarget_region(&from, region)?.dropped_rows;
        let mut issued: Vec<(ResourceId, KeySlot, ResourceKey)> = Vec::new();
        export.replace_key_hashes(|resource, slot| {
            let key = ResourceKey::generate();
            let hash = key.hash();
            issued.push((resource, slot, key));
            hash
        })?;
        for (resource, slot, key) in issued {
            let at = match new_keys
                .iter()
                .position(|k: &NewKeys| k.resource == resource)
            {
                Some(i) => i,
                None => {
                    new_keys.push(NewKeys {
                        resource,
                        key1: key.clone(),
                        key2: key.clone(),
                    });
                    new_keys.len() - 1
                }
            };
            match slot {
                KeySlot::Key1 => new_keys[at].key1 = key,
                KeySlot::Key2 => new_keys[at].key2 = key,
            }
        }
    }
    let rows = export
        .row_counts()
        .into_iter()
        .map(|(t, n)| (t.to_owned(), n))
        .collect();
    store.meta.import_metadata(&export).await?;
    tracing::info!(snapshot = id, %source_region, %region, files = report.files, "restored");
    Ok(RestoreOutcome {
        snapshot: id.to_owned(),
        source_region,
        files: report.files,
        bytes: report.bytes,
        rows,
        new_keys,
        dropped_rows,
    })
}
