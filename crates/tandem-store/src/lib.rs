//! Tandem's storage: where a region keeps its resources and its blobs.
//!
//! Metadata (resources, key hashes, limits, speaker profiles and enrollments, Custom Speech
//! [`Asset`]s, and what paired-region
//! replication reads and writes: see [`replication`]) goes through the [`MetaStore`] trait, on
//! SQLite via `sqlx` ([`SqliteMetaStore`], `sqlite://PATH`: one machine) or PostgreSQL through
//! the same SQL ([`PgMetaStore`], `postgres://…`: the nodes of a region sharing one database).
//! Blobs go through [`BlobStore`], a thin layer over the `object_store` crate: the local
//! filesystem or an S3-compatible bucket (`s3://`, settings in [`S3Options`]), picked by URL.
//!
//! Durability is the contract: a write that returned `Ok` survives `kill -9` (SQLite in WAL mode
//! with `synchronous=FULL`, or PostgreSQL's commit; blobs fsynced with their directories). Every
//! persisted format carries a version, and a build refuses data written by a newer one
//! ([`StoreError::FormatTooNew`]).
//! Nothing is cached: the `tandem resource` CLI and the server may share one database, and the
//! server sees a change on its next request.
//!
//! [`MetaStore::export_metadata`] and [`MetaStore::import_metadata`] take and restore a
//! consistent, point-in-time logical export of all of it ([`MetadataExport`], see [`export`]):
//! rows in a versioned, checksummed line format, for backups and for moving between backends.
//!
//! [`conformance`] is a backend-independent test suite; every backend runs all of it.

#![deny(missing_docs)]

mod asset;
mod blob;
pub mod conformance;
mod error;
pub mod export;
mod hlc;
pub mod lease;
mod model;
mod postgres;
pub mod replication;
mod speaker;
mod sql;
mod sqlite;
mod store;

pub use asset::{
    asset_blob_prefix, asset_file_key, resource_blob_prefix, Asset, AssetKind, AssetPage,
    AssetStatus, AssetUpdate, NewAsset,
};
pub use blob::{BlobMeta, BlobStore, BLOB_FORMAT_VERSION, FORMAT_MARKER_KEY};
pub use error::{Result, StoreError};
pub use export::{Cell, ExportTable, MetadataExport, Retargeted, EXPORT_FORMAT_VERSION};
pub use hlc::HlcClock;
pub use lease::{Lease, LEASE_TABLE};
pub use model::{MetaStore, NewResource, Resource};
pub use postgres::PgMetaStore;
pub use replication::{
    Applied, Cursor, Hlc, ProfileHeader, ReplicatedEnrollment, ReplicatedResource, ResourceSync,
    SpeakerChange, SpeakerDigest, SpeakerOp,
};
pub use speaker::{
    enrollment_audio_key, mean_signature, Enrollment, EnrollmentStatus, NewEnrollment, NewProfile,
    ProfileKind, SpeakerProfile, TEXT_DEPENDENT_ENROLLMENTS,
};
pub use sqlite::{SqliteMetaStore, METADATA_FORMAT_VERSION, METADATA_IMPORTS_SINCE};
pub use store::Store;
pub use tandem_objects::S3Options;
