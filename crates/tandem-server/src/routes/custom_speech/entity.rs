//! What a dataset keeps in its asset document, and how it is shown (Azure's `Dataset` and
//! `File` entities).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tandem_store::Asset;
use uuid::Uuid;

use super::{azure_time, Cx};

/// The version of [`DatasetDoc`] this build writes and reads.
pub(crate) const DATASET_DOC_FORMAT: u32 = 1;

/// A dataset's [`Asset::doc`]: versioned, and self-contained apart from the files' bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatasetDoc {
    /// [`DATASET_DOC_FORMAT`] when written.
    pub format: u32,
    /// Azure's dataset kind: `Acoustic`, `Language`, `Pronunciation` or `AudioFiles`.
    pub kind: String,
    /// The customer's `customProperties`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_properties: Map<String, Value>,
    /// Where the data was fetched from, when created from a `contentUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    /// The dataset's files, report first.
    pub files: Vec<FileDoc>,
}

/// One file of a dataset; its bytes are at [`tandem_store::asset_file_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileDoc {
    /// Random id (the blob's name too).
    pub id: Uuid,
    /// The file's name, e.g. `b001.wav` or `report.json`.
    pub name: String,
    /// Azure's file kind: `DatasetReport`, `Audio`, `AcousticDataTranscriptionV2`,
    /// `LanguageData` or `PronunciationData`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Audio length, seconds (audio files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
}

impl FileDoc {
    /// The content type its bytes are served with.
    pub fn content_type(&self) -> &'static str {
        match self.kind.as_str() {
            "Audio" => "audio/wav",
            "DatasetReport" => "application/json",
            _ => "text/plain; charset=utf-8",
        }
    }
}

/// Reads a dataset's document, refusing one written by a newer build.
pub(crate) fn dataset_doc(asset: &Asset) -> Result<DatasetDoc, crate::ApiError> {
    let doc: DatasetDoc = serde_json::from_value(asset.doc.clone())
        .map_err(|e| crate::ApiError::Internal(format!("dataset {} document: {e}", asset.id)))?;
    if doc.format > DATASET_DOC_FORMAT {
        return Err(crate::ApiError::Internal(format!(
            "dataset {} document format {} is newer than this build ({DATASET_DOC_FORMAT})",
            asset.id, doc.format
        )));
    }
    Ok(doc)
}

/// Azure's `Dataset` entity.
pub(crate) fn dataset_json(cx: &Cx, asset: &Asset, doc: &DatasetDoc) -> Value {
    let this = cx.url(&format!("/datasets/{}", asset.id));
    let mut v = json!({
        "self": this,
        "kind": doc.kind,
        "links": { "files": format!("{this}/files") },
        "properties": asset.properties,
        "lastActionDateTime": azure_time(asset.last_action_at),
        "status": asset.status.as_str(),
        "createdDateTime": azure_time(asset.created_at),
        "locale": asset.locale,
        "displayName": asset.display_name,
    });
    if let Some(d) = asset.description.as_deref().filter(|d| !d.is_empty()) {
        v["description"] = json!(d);
    }
    if !doc.custom_properties.is_empty() {
        v["customProperties"] = Value::Object(doc.custom_properties.clone());
    }
    if let Some(url) = &doc.content_url {
        v["contentUrl"] = json!(url);
    }
    v
}

/// Azure's `File` entity for one file of a dataset; `links.contentUrl` is Tandem's route that
/// serves the bytes (to callers of the same resource).
pub(crate) fn file_json(cx: &Cx, asset: &Asset, f: &FileDoc) -> Value {
    let this = cx.url(&format!("/datasets/{}/files/{}", asset.id, f.id));
    let mut properties = json!({ "size": f.size });
    if let Some(secs) = f.duration_secs {
        properties["duration"] = json!(iso_duration(secs));
    }
    json!({
        "self": this,
        "name": f.name,
        "kind": f.kind,
        "properties": properties,
        "createdDateTime": azure_time(asset.created_at),
        "links": { "contentUrl": format!("{this}/content") },
    })
}

/// ISO 8601 duration of whole seconds, as Azure writes them (`PT4M12S`, `PT0S`).
pub(crate) fn iso_duration(secs: f64) -> String {
    tandem_datasets::Report {
        duration_secs: secs,
        ..Default::default()
    }
    .iso_duration()
}
