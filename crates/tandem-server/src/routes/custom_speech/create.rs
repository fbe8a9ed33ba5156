//! Creating a dataset: check what describes it, validate the data, store the files as blobs,
//! and only then insert the row, so that nothing half-created is ever listed.

use std::str::FromStr;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};
use tandem_datasets::{validate, DatasetKind, Limits, Validated};
use tandem_store::{
    asset_blob_prefix, asset_file_key, Asset, AssetKind, AssetStatus, NewAsset, Store,
};
use uuid::Uuid;

use super::entity::{DatasetDoc, FileDoc, DATASET_DOC_FORMAT};
use crate::{ApiError, AppState};

/// Locales datasets may have (the engines' languages). Matched case-insensitively.
pub(crate) const DATASET_LOCALES: &[&str] = &[
    "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-NZ", "en-US",
];

/// What describes a new dataset, whichever way its data arrives.
#[derive(Debug, Clone, Default)]
pub(crate) struct DatasetMeta {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub locale: Option<String>,
    pub kind: Option<String>,
    pub custom_properties: Option<Value>,
}

/// [`DatasetMeta`], checked.
#[derive(Debug, Clone)]
pub(crate) struct CheckedMeta {
    pub display_name: String,
    pub description: Option<String>,
    pub locale: String,
    pub kind: DatasetKind,
    pub custom_properties: Map<String, Value>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameterValue", message)
}

impl DatasetMeta {
    /// Checks the fields Azure requires and the limits it documents.
    pub fn check(self) -> Result<CheckedMeta, ApiError> {
        let display_name = super::display_name(self.display_name)?;
        let locale = self.locale.ok_or_else(|| invalid("locale is required"))?;
        let locale = DATASET_LOCALES
            .iter()
            .find(|l| l.eq_ignore_ascii_case(locale.trim()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidLocale",
                    format!(
                        "locale {locale:?} is not supported for datasets: use one of {}",
                        DATASET_LOCALES.join(", ")
                    ),
                )
            })?;
        let kind = self.kind.ok_or_else(|| invalid("kind is required"))?;
        let kind = DatasetKind::from_str(kind.trim()).map_err(invalid)?;
        Ok(CheckedMeta {
            display_name,
            description: self.description.filter(|d| !d.is_empty()),
            locale: (*locale).to_owned(),
            kind,
            custom_properties: custom_properties(self.custom_properties)?,
        })
    }
}

/// Azure's rule: at most 10 entries, keys up to 64 characters, string values up to 256.
pub(crate) fn custom_properties(v: Option<Value>) -> Result<Map<String, Value>, ApiError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("customProperties must be a JSON object of strings")),
    };
    if map.len() > 10 {
        return Err(invalid("customProperties holds more than 10 entries"));
    }
    for (k, v) in &map {
        match v {
            Value::String(s) if k.chars().count() <= 64 && s.chars().count() <= 256 => {}
            Value::String(_) => {
                return Err(invalid(format!(
                    "customProperties entry {k:?}: keys are at most 64 characters, values 256"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "customProperties entry {k:?} is not a string"
                )))
            }
        }
    }
    Ok(map)
}

/// The zip and text limits of this region.
fn limits(state: &AppState) -> Limits {
    let cfg = &state.config().custom_speech;
    Limits {
        max_entry_bytes: cfg.max_zip_entry_bytes,
        max_total_bytes: cfg.max_zip_total_bytes,
        ..Limits::default()
    }
}

/// Validates `data` as `meta.kind` (on a blocking thread: decoding the audio takes a while),
/// stores its files, then the row. A refused upload leaves nothing behind.
pub(crate) async fn create_dataset(
    state: &AppState,
    resource: tandem_core::ResourceId,
    meta: CheckedMeta,
    data: Bytes,
    content_url: Option<String>,
) -> Result<Asset, ApiError> {
    let kind = meta.kind;
    let limits = limits(state);
    let validated = tokio::task::spawn_blocking(move || validate(kind, &data, &limits))
        .await
        .map_err(|e| ApiError::Internal(format!("dataset validation task: {e}")))??;
    let id = Uuid::new_v4();
    let (files, blobs) = dataset_files(kind, &validated)?;
    let store = state.store();
    if let Err(e) = put_all(store, resource, id, blobs).await {
        remove_blobs(store, resource, id).await;
        return Err(e.into());
    }
    let report = &validated.report;
    let mut properties = json!({
        "acceptedLineCount": report.accepted_line_count,
        "rejectedLineCount": report.rejected_line_count,
    });
    if matches!(kind, DatasetKind::Acoustic | DatasetKind::AudioFiles) {
        properties["duration"] = json!(report.iso_duration());
    }
    let status = if report.accepted_line_count > 0 {
        AssetStatus::Succeeded
    } else {
        properties["error"] = json!({
            "code": "DataImportFailed",
            "message": "nothing in the upload was usable: see the dataset's report file",
        });
        AssetStatus::Failed
    };
    let doc = DatasetDoc {
        format: DATASET_DOC_FORMAT,
        kind: kind.as_str().to_owned(),
        custom_properties: meta.custom_properties,
        content_url,
        files,
    };
    let new = NewAsset {
        id,
        resource_id: resource,
        kind: AssetKind::Dataset,
        status,
        display_name: meta.display_name,
        description: meta.description,
        locale: meta.locale,
        properties,
        doc: serde_json::to_value(&doc)
            .map_err(|e| ApiError::Internal(format!("dataset document: {e}")))?,
    };
    match store.meta.create_asset(new).await {
        Ok(asset) => Ok(asset),
        Err(e) => {
            remove_blobs(store, resource, id).await;
            Err(e.into())
        }
    }
}

/// A file's id (its blob's name) and its bytes.
type FileBytes = (Uuid, Bytes);

/// The files a validated dataset keeps: the report, then the data, each with its bytes.
fn dataset_files(
    kind: DatasetKind,
    v: &Validated,
) -> Result<(Vec<FileDoc>, Vec<FileBytes>), ApiError> {
    let mut files = Vec::new();
    let mut blobs = Vec::new();
    let mut add = |name: &str, kind: &str, bytes: Bytes, duration_secs: Option<f64>| {
        let id = Uuid::new_v4();
        files.push(FileDoc {
            id,
            name: name.to_owned(),
            kind: kind.to_owned(),
            size: bytes.len() as u64,
            duration_secs,
        });
        blobs.push((id, bytes));
    };
    let report = serde_json::to_vec_pretty(&v.report)
        .map_err(|e| ApiError::Internal(format!("dataset report: {e}")))?;
    add("report.json", "DatasetReport", report.into(), None);
    match kind {
        DatasetKind::Acoustic | DatasetKind::AudioFiles => {
            if kind == DatasetKind::Acoustic && !v.audio.is_empty() {
                let trans: String = v
                    .audio
                    .iter()
                    .map(|(u, _)| format!("{}\t{}\n", u.name, u.transcript))
                    .collect();
                add(
                    "trans.txt",
                    "AcousticDataTranscriptionV2",
                    trans.into(),
                    None,
                );
            }
            for (u, bytes) in &v.audio {
                add(
                    &u.name,
                    "Audio",
                    Bytes::copy_from_slice(bytes),
                    Some(u.duration_secs),
                );
            }
        }
        DatasetKind::Language => {
            if !v.lines.is_empty() {
                let text: String = v.lines.iter().map(|l| format!("{l}\n")).collect();
                add("language.txt", "LanguageData", text.into(), None);
            }
        }
        DatasetKind::Pronunciation => {
            if !v.pronunciations.is_empty() {
                let text: String = v
                    .pronunciations
                    .iter()
                    .map(|(w, s)| format!("{w}\t{s}\n"))
                    .collect();
                add("pronunciation.txt", "PronunciationData", text.into(), None);
            }
        }
    }
    Ok((files, blobs))
}

/// Writes an asset's files, a few at a time.
async fn put_all(
    store: &Store,
    resource: tandem_core::ResourceId,
    asset: Uuid,
    blobs: Vec<FileBytes>,
) -> tandem_store::Result<()> {
    futures::stream::iter(blobs)
        .map(|(file, bytes)| async move {
            store
                .blobs
                .put(&asset_file_key(resource, asset, file), bytes)
                .await
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

/// Deletes every blob of an asset, best effort (logged): used when a creation fails half-way
/// and after a delete.
pub(crate) async fn remove_blobs(store: &Store, resource: tandem_core::ResourceId, asset: Uuid) {
    let prefix = asset_blob_prefix(resource, asset);
    let keys = match store.blobs.list(&prefix).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(%asset, error = %e, "could not list an asset's blobs to delete them");
            return;
        }
    };
    for key in keys {
        if let Err(e) = store.blobs.delete(&key).await {
            tracing::warn!(%asset, %key, error = %e, "could not delete an asset blob");
        }
    }
}
