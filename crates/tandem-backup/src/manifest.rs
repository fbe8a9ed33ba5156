//! Snapshot manifests (`snapshots/<id>`) and snapshot ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::object::ChunkId;

/// The manifest format this build writes and the newest it reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// The path under which the metadata export is named in errors and reports.
pub const METADATA_PATH: &str = "<metadata>";

/// One chunk of a file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The chunk id (64 hex digits).
    pub id: String,
    /// Plaintext size in bytes.
    pub size: u64,
}

impl ChunkRef {
    pub(crate) fn chunk_id(&self) -> Option<ChunkId> {
        ChunkId::from_hex(&self.id)
    }
}

/// The metadata export of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataEntry {
    /// Size in bytes.
    pub size: u64,
    /// Content id of the whole export (BLAKE3, keyed when encrypted), 64 hex digits.
    pub blake3: String,
    /// Its chunks, in order.
    pub chunks: Vec<ChunkRef>,
}

/// A file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The source's path (opaque, `/`-separated by convention).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Content id of the whole file (BLAKE3, keyed when encrypted), 64 hex digits.
    pub blake3: String,
    /// The source's change token, when it gave one (see [`crate::SourceFile::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Its chunks, in order.
    pub chunks: Vec<ChunkRef>,
}

/// Snapshot totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Files (the metadata export not counted).
    pub files: u64,
    /// Plaintext bytes of the files and the metadata export.
    pub bytes: u64,
    /// Chunks this backup uploaded.
    pub new_chunks: u64,
    /// Plaintext bytes of those chunks.
    pub new_bytes: u64,
    /// Stored (compressed, encrypted) bytes of those chunks.
    #[serde(default)]
    pub stored_bytes: u64,
}

/// A snapshot manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Snapshot id.
    pub id: String,
    /// When the backup started (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Region that was backed up.
    #[serde(default)]
    pub region: String,
    /// Host that ran the backup.
    #[serde(default)]
    pub host: String,
    /// Version of the tool that wrote it.
    pub tool_version: String,
    /// Free-form user tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The snapshot whose file list was used to skip unchanged files, if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// The metadata export.
    pub metadata: MetadataEntry,
    /// The files, in the order the source listed them.
    pub files: Vec<FileEntry>,
    /// Totals.
    pub totals: Totals,
}

impl Manifest {
    /// Every (chunk, path) pair, the metadata export first.
    pub fn chunk_uses(&self) -> impl Iterator<Item = (&ChunkRef, &str)> {
        let meta = self.metadata.chunks.iter().map(|c| (c, METADATA_PATH));
        meta.chain(
            self.files
                .iter()
                .flat_map(|f| f.chunks.iter().map(move |c| (c, f.path.as_str()))),
        )
    }
}

/// A new snapshot id: `YYYYMMDDTHHMMSSZ-<8 hex>`, so that ids sort by time.
pub(crate) fn new_snapshot_id(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:03x}{:05x}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        // The milliseconds first, so that snapshots of the same second still sort in time
        // order; then 20 random bits.
        at.millisecond(),
        rand::random::<u32>() & 0xf_ffff
    )
}

/// The time encoded in a snapshot id, if it is one.
pub fn snapshot_id_time(id: &str) -> Option<OffsetDateTime> {
    let ts = id.get(..16)?;
    let b = ts.as_bytes();
    if b[8] != b'T' || b[15] != b'Z' || id.as_bytes().get(16) != Some(&b'-') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| ts.get(r)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(n(9..11)? as u8, n(11..13)? as u8, n(13..15)? as u8).ok()?;
    Some(date.with_time(t).assume_utc())
}

/// True for a well-formed snapshot id (used to ignore foreign objects under `snapshots/`).
pub(crate) fn is_snapshot_id(id: &str) -> bool {
    id.len() == 25
        && snapshot_id_time(id).is_some()
        && id[17..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_parse_back() {
        let t = time::macros::datetime!(2026-11-26 21:30:05 UTC);
        let id = new_snapshot_id(t);
        assert!(id.starts_with("20261126T213005Z-"), "{id}");
        assert!(is_snapshot_id(&id));
        assert_eq!(snapshot_id_time(&id), Some(t));
        let later = new_snapshot_id(t + time::Duration::seconds(1));
        assert!(later > id);
        assert!(!is_snapshot_id("20261126T213005Z-xyz"));
        assert!(!is_snapshot_id("garbage"));
    }
}
