//! The one error type every backend returns, so callers match on meaning, not on a driver.

use thiserror::Error;

/// What went wrong in the store. Backend errors are flattened to text so that the variants do
/// not change when a backend does.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `resource 1b4e…`.
        what: String,
    },
    /// The write would break a uniqueness rule (a resource name in a region, a key hash).
    #[error("conflict: {what}")]
    Conflict {
        /// What already exists.
        what: String,
    },
    /// The URL names a backend this build cannot use.
    #[error("unsupported storage URL {url:?}: supported is {supported}")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
        /// What this build supports, for the operator.
        supported: &'static str,
    },
    /// The data was written by a newer build; refusing to touch it.
    #[error("stored format version {found} is newer than this build supports ({supported}); upgrade tandem")]
    FormatTooNew {
        /// Version found on disk.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The metadata database is at an older format than this build, and this open was told
    /// not to migrate it.
    #[error("the metadata database is at format {found}; this build needs {required}: run `tandem migrate` (or set [storage] migrate_on_start = true)")]
    MigrationNeeded {
        /// The format recorded in the database (0: empty).
        found: u32,
        /// The format this build needs.
        required: u32,
    },
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Database(String),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(String),
    /// A metadata export is truncated, corrupt or inconsistent
    /// ([`MetadataExport::from_bytes`](crate::MetadataExport::from_bytes) and its helpers).
    #[error("invalid metadata export: {0}")]
    InvalidExport(String),
    /// [`MetaStore::import_metadata`](crate::MetaStore::import_metadata) refused: the store is
    /// not empty, or the export's schema differs from the store's. Nothing was changed.
    #[error("metadata import refused: {reason}")]
    ImportRefused {
        /// Why, for the operator.
        reason: String,
    },
    /// A blob key is not a valid relative key.
    #[error(
        "invalid blob key {0:?}: use non-empty '/'-separated segments of [A-Za-z0-9._=-], no '..'"
    )]
    InvalidKey(String),
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Database(e.to_string())
    }

    pub(crate) fn blob(e: impl std::fmt::Display) -> Self {
        StoreError::Blob(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::db(format!("migration failed: {e}"))
    }
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        StoreError::Blob(tandem_objects::describe_error(&e))
    }
}
