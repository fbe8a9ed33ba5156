//! A region's whole store: metadata plus blobs, opened from two URLs.

use std::sync::Arc;

use tandem_objects::S3Options;

use crate::{BlobStore, MetaStore, PgMetaStore, Result, SqliteMetaStore, StoreError};

/// The metadata URLs [`Store::open`] takes.
const SUPPORTED: &str = "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

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
    /// Metadata: `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
    /// ([`PgMetaStore`]). Blobs: `file:///ABSOLUTE/PATH`, or `s3://BUCKET/PREFIX` with the S3
    /// settings of the environment ([`S3Options::from_env`]).
    pub async fn open(metadata_url: &str, blob_url: &str) -> Result<Store> {
        Self::open_with(metadata_url, blob_url, &S3Options::from_env()).await
    }

    /// [`Store::open`] with explicit S3 settings for an `s3://` blob URL.
    pub async fn open_with(metadata_url: &str, blob_url: &str, s3: &S3Options) -> Result<Store> {
        Self::open_full(metadata_url, blob_url, s3, true).await
    }

    /// [`Store::open_with`], migrating the metadata only when `migrate` is set (otherwise an
    /// older database is refused with [`StoreError::MigrationNeeded`]).
    pub async fn open_full(
        metadata_url: &str,
        blob_url: &str,
        s3: &S3Options,
        migrate: bool,
    ) -> Result<Store> {
        let meta: Arc<dyn MetaStore> = if metadata_url.starts_with("sqlite:") {
            Arc::new(SqliteMetaStore::open_with(metadata_url, migrate).await?)
        } else if is_postgres(metadata_url) {
            Arc::new(PgMetaStore::open_with(metadata_url, migrate).await?)
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: metadata_url.to_owned(),
                supported: SUPPORTED,
            });
        };
        let blobs = BlobStore::open(blob_url, s3).await?;
        Ok(Store { meta, blobs })
    }

    /// Applies pending metadata migrations at `metadata_url`; returns the format before and
    /// after (`tandem migrate`).
    pub async fn migrate(metadata_url: &str) -> Result<(u32, u32)> {
        if metadata_url.starts_with("sqlite:") {
            SqliteMetaStore::migrate_url(metadata_url).await
        } else if is_postgres(metadata_url) {
            PgMetaStore::migrate_url(metadata_url).await
        } else {
            Err(StoreError::UnsupportedUrl {
                url: metadata_url.to_owned(),
                supported: SUPPORTED,
            })
        }
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
