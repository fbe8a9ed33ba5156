//! Tandem's backup repository: content-addressed, deduplicated, optionally encrypted snapshots
//! in any `object_store` backend (`file://`, `s3://`).
//!
//! Why it looks the way it does: a backup must be cheap to repeat (unchanged data is neither
//! re-uploaded nor, with source fingerprints, re-read), must never leave a snapshot that points
//! at missing data (the manifest is written last), and must refuse to restore anything damaged
//! (every chunk and file is hashed on the way back). The on-bucket format is documented in
//! `FORMAT.md` beside this crate, precisely enough for a third party to write a reader.
//!
//! The crate knows nothing of Tandem's store: the caller provides a [`BackupSource`] (files
//! and a metadata export) and a [`RestoreSink`].
//!
//! | module | what |
//! |---|---|
//! | `repo` | [`Repository`]: `init`, `open`, [`Repository::list`], plumbing |
//! | `target` | [`target_from_url`], [`S3Options`]: URL to backend |
//! | `key` | [`Key`], [`generate_key_file`] |
//! | `config` | [`RepoConfig`] (`tandem-backup.json`) |
//! | `object` | the object envelope, [`ChunkId`] |
//! | `chunker` | streaming FastCDC |
//! | `manifest` | [`Manifest`] (`snapshots/<id>`) |
//! | `backup` | [`Repository::backup`], [`BackupSource`] |
//! | `restore` | [`Repository::restore`], [`RestoreSink`] |
//! | `verify` | [`Repository::verify`], [`Repository::verify_snapshot`] |
//! | `retention` | [`Retention`], [`plan_retention`] |
//! | `prune` | [`Repository::prune`], [`Repository::forget`] |
//! | `fs` | [`DirSource`], [`DirSink`] |
//! | `progress` | [`Progress`], [`NoProgress`] |
//! | `error` | [`Error`] |
//! | [`format`](mod@format) | the repository format (FORMAT.md) |
//!
//! Operational notes:
//!
//! - S3 settings come from [`S3Options`] ([`S3Options::from_env`] lists the variables): path-style
//!   requests by default, any region name (e.g. `garage`), SigV4, `allow_http` implied by an
//!   `http://` endpoint.
//! - A restore that returns an error must be treated as nothing restored. [`Repository::restore`]
//!   verifies the whole snapshot first, so damage is refused before the sink sees anything.
//! - Backups may run concurrently with each other; `prune` must not overlap another `prune`, nor a
//!   backup older than its grace period.
#![deny(missing_docs)]

#[doc = include_str!("../FORMAT.md")]
pub mod format {}

mod backup;
mod chunker;
mod config;
mod error;
mod fs;
mod key;
mod manifest;
mod object;
mod progress;
mod prune;
mod repo;
mod restore;
mod retention;
mod target;
mod verify;

pub use backup::{BackupOptions, BackupSource, ParentChoice, SourceFile};
pub use config::{
    ChunkerAlgorithm, ChunkerParams, EncryptionConfig, RepoConfig, CONFIG_KEY, REPO_FORMAT,
};
pub use error::{Error, Result};
pub use fs::{DirSink, DirSource};
pub use key::{generate_key_file, Key};
pub use manifest::{
    snapshot_id_time, ChunkRef, FileEntry, Manifest, MetadataEntry, Totals, MANIFEST_FORMAT,
    METADATA_PATH,
};
pub use object::ChunkId;
pub use progress::{NoProgress, Phase, Progress};
pub use prune::{PruneOptions, PruneReport};
pub use repo::{RepoOptions, Repository, SnapshotInfo, SnapshotSummary};
pub use restore::{
    EntryKind, RestoreEntry, RestoreOptions, RestoreReport, RestoreSink, RestoreWriter,
};
pub use retention::{plan_retention, KeepReason, Retention, RetentionPlan};
pub use target::{target_from_url, S3Options, Target};
pub use verify::{ChunkProblem, SnapshotCheck, SnapshotStatus, VerifyReport};
