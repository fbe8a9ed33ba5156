//! The region as a backup source: the metadata export, then every blob.

use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use tandem_backup::{BackupSource, SourceFile};
use tandem_store::Store;
use tokio::io::AsyncRead;

/// A region's store, read for a backup.
///
/// The metadata export is taken first, in one read transaction, so it is one point in time.
/// Blobs are listed after it: a blob written later is included too (unreferenced by the export,
/// harmless); a blob deleted between the export and its read makes this backup fail with
/// `NotFound` rather than record an asset without its file, and the next run is consistent.
pub struct RegionSource {
    store: Store,
}

impl RegionSource {
    /// Reads `store`.
    pub fn new(store: Store) -> Self {
        RegionSource { store }
    }
}

fn io_err(e: tandem_store::StoreError) -> io::Error {
    io::Error::other(e.to_string())
}

#[async_trait]
impl BackupSource for RegionSource {
    async fn metadata(&self) -> io::Result<Bytes> {
        let export = self.store.meta.export_metadata().await.map_err(io_err)?;
        Ok(Bytes::from(export.to_bytes()))
    }

    async fn files(&self) -> io::Result<Vec<SourceFile>> {
        let blobs = self.store.blobs.list_meta("").await.map_err(io_err)?;
        Ok(blobs
            .into_iter()
            .map(|b| SourceFile {
                path: b.key,
                size: b.size,
                // Blobs are not versioned by the store: always read (chunks still dedup).
                fingerprint: None,
            })
            .collect())
    }

    async fn open(&self, path: &str) -> io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        match self.store.blobs.get(path).await.map_err(io_err)? {
            Some(bytes) => Ok(Box::new(io::Cursor::new(bytes))),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {path} was deleted during the backup"),
            )),
        }
    }
}
