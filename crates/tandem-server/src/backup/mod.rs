//! Backups of a whole region (issue #5): the glue between the region's [`Store`] and the
//! storage-agnostic repository of `tandem-backup`.
//!
//! - [`RegionSource`] hands the repository a point-in-time metadata export (one read
//!   transaction, see `MetaStore::export_metadata`) and every blob;
//! - [`restore_region`] restores a snapshot into an *empty* region store, the same region or
//!   another one (then with new keys, which it returns so the caller can print them);
//! - [`spawn_worker`] backs the region up every `backup.interval_secs` and prunes by the
//!   retention policy every `backup.prune_interval_secs`.
//!
//! The repository comes from the region's `[backup]` config ([`open_repository`]).

mod recover;
mod restore;
mod source;
mod worker;

use std::time::Duration;

use tandem_backup::{Key, RepoOptions, Repository, Retention, S3Options};
use tandem_core::RegionConfig;

pub use recover::{
    recover_region, EndpointOutcome, EvaluationOutcome, ModelAction, ModelOutcome, RecoverError,
    RecoverOptions, RecoverProgress, RecoverReport, Step,
};
pub use restore::{restore_region, NewKeys, RestoreError, RestoreOutcome};
pub use source::RegionSource;
pub use worker::spawn_worker;

/// S3 settings from the region's `[backup]` table, falling back to the standard `AWS_*`
/// environment variables.
pub fn s3_options(cfg: &RegionConfig) -> Result<S3Options, tandem_backup::Error> {
    let b = &cfg.backup;
    s3_settings(
        b.s3_endpoint.as_deref(),
        b.s3_region.as_deref(),
        b.s3_access_key_id.as_deref(),
        b.s3_secret_access_key_file.as_deref(),
    )
    .map_err(|(path, reason)| tandem_backup::Error::BadKeyFile { path, reason })
}

/// S3 settings: the environment's ([`S3Options::from_env`]), overridden by the given config
/// values; the secret is the first line of `secret_file`. Errors name the file.
pub(crate) fn s3_settings(
    endpoint: Option<&str>,
    region: Option<&str>,
    access_key_id: Option<&str>,
    secret_file: Option<&std::path::Path>,
) -> Result<S3Options, (String, String)> {
    let mut s3 = S3Options::from_env();
    if let Some(e) = endpoint {
        s3.endpoint = Some(e.to_owned());
    }
    if let Some(r) = region {
        s3.region = Some(r.to_owned());
    }
    if let Some(k) = access_key_id {
        s3.access_key_id = Some(k.to_owned());
    }
    if let Some(f) = secret_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| (f.display().to_string(), e.to_string()))?;
        s3.secret_access_key = Some(text.lines().next().unwrap_or("").trim().to_owned());
    }
    if s3
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        s3.allow_http = true;
    }
    Ok(s3)
}

/// Opens the region's store: its metadata URL, and its blob URL with the `[storage] s3_*`
/// settings (or the `AWS_*` environment) when that is an `s3://` bucket.
pub async fn open_region_store(
    cfg: &RegionConfig,
) -> Result<tandem_store::Store, tandem_store::StoreError> {
    let st = &cfg.storage;
    let s3 = s3_settings(
        st.s3_endpoint.as_deref(),
        st.s3_region.as_deref(),
        st.s3_access_key_id.as_deref(),
        st.s3_secret_access_key_file.as_deref(),
    )
    .map_err(|(path, reason)| {
        tandem_store::StoreError::Blob(format!("reading the S3 secret file {path}: {reason}"))
    })?;
    tandem_store::Store::open_full(
        &cfg.metadata_url(),
        &cfg.blob_url(),
        &s3,
        st.migrate_on_start,
    )
    .await
}

/// The repository's options for this region: its encryption key, if one is configured.
pub fn repo_options(
    cfg: &RegionConfig,
    key_file: Option<&std::path::Path>,
) -> Result<RepoOptions, tandem_backup::Error> {
    let key = match key_file.or(cfg.backup.key_file.as_deref()) {
        Some(path) => Some(Key::from_file(path)?),
        None => None,
    };
    Ok(RepoOptions {
        key,
        ..RepoOptions::default()
    })
}

/// Opens the region's backup repository (`target`, else the config's, else the default
/// sibling directory), creating it when `create` is set and nothing is there yet.
pub async fn open_repository(
    cfg: &RegionConfig,
    target: Option<&str>,
    key_file: Option<&std::path::Path>,
    create: bool,
) -> Result<Repository, tandem_backup::Error> {
    let url = target
        .map(str::to_owned)
        .unwrap_or_else(|| cfg.backup_target());
    let s3 = s3_options(cfg)?;
    let opts = repo_options(cfg, key_file)?;
    let t = tandem_backup::target_from_url(&url, &s3)?;
    if create {
        match Repository::open_target(t, &url, &opts).await {
            Err(tandem_backup::Error::NotARepository { .. }) => {
                let t = tandem_backup::target_from_url(&url, &s3)?;
                Repository::init_target(t, &url, &opts).await
            }
            other => other,
        }
    } else {
        Repository::open_target(t, &url, &opts).await
    }
}

/// The region's retention policy.
pub fn retention(cfg: &RegionConfig) -> Retention {
    Retention {
        keep_last: cfg.backup.keep_last,
        keep_hourly: cfg.backup.keep_hourly,
        keep_daily: cfg.backup.keep_daily,
    }
}

/// How young an unreferenced chunk may be and still be kept by a prune: longer than any backup
/// that could be writing it (twice the interval, at least 15 minutes).
pub fn prune_grace(cfg: &RegionConfig) -> Duration {
    Duration::from_secs((2 * cfg.backup.interval_secs).max(15 * 60))
}

/// True when `store` holds no metadata row and no blob (a region a restore may fill).
pub async fn is_empty(store: &tandem_store::Store) -> Result<bool, tandem_store::StoreError> {
    let export = store.meta.export_metadata().await?;
    Ok(export.row_counts().iter().all(|(_, n)| *n == 0) && store.blobs.list("").await?.is_empty())
}
