//! A logical, point-in-time export of the whole metadata store, for backups and restores
//! (issue #5), and later for moving between backends (issue #10).
//!
//! A [`MetadataExport`] is rows, not a database file: every table of the schema (discovered by
//! the backend, so a new migration's table is included without touching this module), each with
//! its column names and its rows of [`Cell`]s. A backend takes it inside one read transaction
//! ([`MetaStore::export_metadata`](crate::MetaStore::export_metadata)), so it is one consistent
//! snapshot however busy the store is, and puts it back in one write transaction
//! ([`MetaStore::import_metadata`](crate::MetaStore::import_metadata)), all or nothing, into an
//! empty store only.
//!
//! It is deterministic: tables in dependency order (a table after every table its foreign keys
//! point to, ties by name), rows by primary key. Two exports of unchanged data serialize
//! ([`MetadataExport::to_bytes`], format in [`format`](self#format)) to the same bytes, so a backup
//! deduplicates them and a restore is verified by comparing exports.
//!
//! # What is not exported: `tandem_meta`
//!
//! `tandem_meta` holds the store's format version and its identity (`store_id`, see
//! [`MetaStore::store_id`](crate::MetaStore::store_id)). The version travels as
//! [`MetadataExport::schema_version`]; the identity does not travel at all. A restored store is a
//! new store instance and keeps its own `store_id`: a paired region sees the id change, and
//! re-pulls the restored store's log from the start (applying is idempotent). Anything a future
//! migration wants backed up belongs in its own table, not in `tandem_meta`.
//!
//! # Restoring into another region
//!
//! [`MetadataExport::retarget_region`] makes an export of region `from` the data of region `to`
//! (see its docs for what is kept and dropped); [`MetadataExport::replace_key_hashes`] lets the
//! caller issue new keys, so that the old region's keys do not also work in the new one.
//!
//! # Format
//!
//! UTF-8, one JSON document per line, each line ending in `\n`:
//!
//! 1. a header: `{"format":"tandem-metadata-export","version":1,"schema_version":6,"tables":7}`
//!    (`version` is [`EXPORT_FORMAT_VERSION`], of this line layout; `schema_version` is the
//!    store's metadata format version);
//! 2. per table, a table line `{"table":"resources","columns":["id","region",...],"rows":2}`
//!    followed by exactly `rows` row lines, each a JSON array with one value per column:
//!    `null`, an integer, a string (TEXT), `{"real":"1.5"}` (a REAL, as Rust's shortest
//!    round-tripping decimal, so it is exact; also `inf`, `-inf`, `NaN`) or
//!    `{"blob":"<base64>"}` (standard alphabet, padded);
//! 3. a trailer: `{"end":{"tables":7,"rows":123,"sha256":"<hex>"}}`, where `sha256` is of every
//!    byte before the trailer line. Nothing may follow it.
//!
//! [`MetadataExport::from_bytes`] is strict: an unknown field, a missing or extra row, a
//! truncated file or a single flipped bit is [`StoreError::InvalidExport`], never a partial
//! export.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use tandem_core::{KeyHash, KeySlot, RegionName, ResourceId};

use crate::{Result, StoreError};

mod format;
#[cfg(test)]
mod tests;

/// The version of the line layout written by [`MetadataExport::to_bytes`]; a newer one is
/// refused with [`StoreError::FormatTooNew`].
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// One stored value, by SQL storage class. Equality of reals is bitwise, so an export equals
/// itself even with a NaN in it.
#[derive(Debug, Clone)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// A UTF-8 string.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Integer(a), Cell::Integer(b)) => a == b,
            (Cell::Real(a), Cell::Real(b)) => a.to_bits() == b.to_bits(),
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Blob(a), Cell::Blob(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Cell {}

impl Cell {
    /// The text, if this is a [`Cell::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One table of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTable {
    /// The table's name.
    pub name: String,
    /// Its column names, in the schema's order.
    pub columns: Vec<String>,
    /// Its rows, by primary key; each has one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl ExportTable {
    /// The index of column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// Everything in a metadata store at one point in time (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataExport {
    /// The metadata format version of the store it came from; a store imports only its own.
    pub schema_version: u32,
    /// Every table but `tandem_meta`, parents before children.
    pub tables: Vec<ExportTable>,
}

/// What [`MetadataExport::retarget_region`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retargeted {
    /// Resources moved from the old region to the new one.
    pub resources: usize,
    /// Rows dropped: the pair's replicated data and the replication cursors.
    pub dropped_rows: usize,
}

/// Tables and columns that name a region, and which [`MetadataExport::retarget_region`] knows
/// how to treat. A column of another table that looks like a region makes it refuse.
const KNOWN_REGION_COLUMNS: [(&str, &str); 2] =
    [("resources", "region"), ("replication_cursors", "peer")];

impl MetadataExport {
    /// The table called `name`, if the export has it.
    pub fn table(&self, name: &str) -> Option<&ExportTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    fn table_mut(&mut self, name: &str) -> Option<&mut ExportTable> {
        self.tables.iter_mut().find(|t| t.name == name)
    }

    /// Each table's name and row count, in export order: for reports and for checking a
    /// restore.
    pub fn row_counts(&self) -> Vec<(&str, usize)> {
        self.tables
            .iter()
            .map(|t| (t.name.as_str(), t.rows.len()))
            .collect()
    }

    /// The SHA-256 (lowercase hex) of [`Self::to_bytes`]: equal digests mean every row matches.
    pub fn digest(&self) -> String {
        format!("{:x}", Sha256::digest(self.to_bytes()))
    }

    /// Makes an export of region `from` the data of region `to`, for restoring a lost region's
    /// backup into another one (`from == to` just drops the pair's data):
    ///
    /// - `resources` of `from` get `to` as their region. Resources of any other region are
    ///   replicated copies of the paired region's resources; they are dropped, with every row
    ///   of a table with a `resource_id` column that points at them (keys, speaker profiles,
    ///   Custom Speech assets, origin-log entries), then every row of a table with a
    ///   `profile_id` column whose profile is gone (enrollments, log entries). The new
    ///   region's own pairing syncs the pair's data afresh.
    /// - `replication_cursors` are dropped: they are the old region's progress in its peers'
    ///   logs. The speaker origin log of the kept resources stays: peers of the new region
    ///   pull it from the start.
    /// - JSON documents inside rows (asset `properties` and `doc`) are not rewritten; a
    ///   copy operation names its *target* region there, which is a peer, not the source.
    ///
    /// Refuses ([`StoreError::InvalidExport`]) an export without a `resources` table, or with a
    /// column named `region`, `peer` or `*_region` that this function does not know how to
    /// treat (a migration that adds one must teach it here).
    pub fn retarget_region(&mut self, from: &RegionName, to: &RegionName) -> Result<Retargeted> {
        for t in &self.tables {
            for c in &t.columns {
                let regional = c == "region" || c == "peer" || c.ends_with("_region");
                if regional && !KNOWN_REGION_COLUMNS.contains(&(t.name.as_str(), c.as_str())) {
                    return Err(StoreError::InvalidExport(format!(
                        "column {}.{c} may name a region and retarget_region does not know it",
                        t.name
                    )));
                }
            }
        }
        let resources = self
            .table_mut("resources")
            .ok_or_else(|| StoreError::InvalidExport("no resources table".into()))?;
        let (id_col, region_col) = match (resources.column("id"), resources.column("region")) {
            (Some(i), Some(r)) => (i, r),
            _ => {
                return Err(StoreError::InvalidExport(
                    "resources lacks id or region".into(),
                ))
            }
        };
        let mut done = Retargeted::default();
        let before = resources.rows.len();
        resources
            .rows
            .retain(|r| r[region_col].as_text() == Some(from.as_str()));
        done.dropped_rows += before - resources.rows.len();
        let mut kept = BTreeSet::new();
        for row in &mut resources.rows {
            row[region_col] = Cell::Text(to.as_str().to_owned());
            kept.insert(text(&row[id_col])?.to_owned());
        }
        done.resources = kept.len();
        done.dropped_rows += self.retain_where("resource_id", &kept);
        let profiles = match self.table("speaker_profiles") {
            Some(t) => ids(t)?,
            None => BTreeSet::new(),
        };
        done.dropped_rows += self.retain_where("profile_id", &profiles);
        if let Some(cursors) = self.table_mut("replication_cursors") {
            done.dropped_rows += cursors.rows.len();
            cursors.rows.clear();
        }
        Ok(done)
    }

    /// Drops the rows of every table with column `column` whose value is not in `keep`
    /// (NULLs are kept); returns how many.
    fn retain_where(&mut self, column: &str, keep: &BTreeSet<String>) -> usize {
        let mut dropped = 0;
        for t in &mut self.tables {
            let Some(c) = t.column(column) else { continue };
            let before = t.rows.len();
            t.rows.retain(|r| match &r[c] {
                Cell::Null => true,
                v => v.as_text().is_some_and(|s| keep.contains(s)),
            });
            dropped += before - t.rows.len();
        }
        dropped
    }

    /// Replaces the hash of every key in `resource_keys` with `new_hash(resource, slot)`, in
    /// export order, so that a restore can issue new keys (the caller generates each key, keeps
    /// it to print, and returns its hash). Returns how many keys were replaced.
    /// [`StoreError::InvalidExport`] if the table or a value in it is not what it should be.
    pub fn replace_key_hashes(
        &mut self,
        mut new_hash: impl FnMut(ResourceId, KeySlot) -> KeyHash,
    ) -> Result<usize> {
        let bad = |what: String| StoreError::InvalidExport(format!("resource_keys: {what}"));
        let keys = self
            .table_mut("resource_keys")
            .ok_or_else(|| bad("no such table".into()))?;
        let cols = ["resource_id", "slot", "key_hash"].map(|c| keys.column(c));
        let [Some(rc), Some(sc), Some(hc)] = cols else {
            return Err(bad("lacks resource_id, slot or key_hash".into()));
        };
        for row in &mut keys.rows {
            let resource = text(&row[rc])?
                .parse::<ResourceId>()
                .map_err(|e| bad(e.to_string()))?;
            let slot = text(&row[sc])?
                .parse::<KeySlot>()
                .map_err(|e| bad(e.to_string()))?;
            row[hc] = Cell::Text(new_hash(resource, slot).to_hex());
        }
        Ok(keys.rows.len())
    }
}

fn text(c: &Cell) -> Result<&str> {
    c.as_text()
        .ok_or_else(|| StoreError::InvalidExport(format!("expected text, found {c:?}")))
}

/// The `id` column of a table, as a set.
fn ids(t: &ExportTable) -> Result<BTreeSet<String>> {
    let c = t
        .column("id")
        .ok_or_else(|| StoreError::InvalidExport(format!("{} has no id column", t.name)))?;
    t.rows
        .iter()
        .map(|r| text(&r[c]).map(str::to_owned))
        .collect()
}
