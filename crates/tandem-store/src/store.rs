//! A region's whole store: metadata plus blobs, opened from two URLs.

use std::sync::Arc;

use tandem_objects::S3Options;

use crate::{BlobStore, MetaStore, Result, SqliteMetaStore, StoreError};

/// What a region process holds: resource metadata and blobs.
#[derive(Clone)]
pub struct Store {
    /// Resource metadata.
    pub meta: Arc<dyn MetaStore>,
    /// Blobs.
    pub blobs: BlobStore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens both halves, picking each backend by URL scheme, and runs metadata migrations.
    /// Metadata: `sqlite://PATH`. Blobs: `file:///ABSOLUTE/PATH`, or `s3://BUCKET/PREFIX` with
    /// the S3 settings of the environment ([`S3Options::from_env`]).
    pub async fn open(metadata_url: &str, blob_url: &str) -> Result<Store> {
        Self::open_with(metadata_url, blob_url, &S3Options::from_env()).await
    }

    /// [`Store::open`] with explicit S3 settings for an `s3://` blob URL.
    pub async fn open_with(metadata_url: &str, blob_url: &str, s3: &S3Options) -> Result<Store> {
        let meta: Arc<dyn MetaStore> = if metadata_url.starts_with("sqlite:") {
            Arc::new(SqliteMetaStore::open(metadata_url).await?)
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: metadata_url.to_owned(),
                supported: "sqlite://PATH",
            });
        };
        let blobs = BlobStore::open(blob_url, s3).await?;
        Ok(Store { meta, blobs })
    }

    /// Closes the metadata connections cleanly, for graceful shutdown.
    pub async fn close(&self) {
        self.meta.close().await;
    }

    /// Checks both halves answer, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        self.meta.ping().await?;
        self.blobs.ping().await
    }
}
