//! What the two SQL backends of [`MetaStore`](crate::MetaStore) share.
//!
//! [`SqliteMetaStore`](crate::SqliteMetaStore) and [`PgMetaStore`](crate::PgMetaStore) run the
//! same logical schema through the same SQL (`$n` parameters, TEXT/BIGINT/DOUBLE/BLOB columns,
//! `ON CONFLICT`, `RETURNING`), so the metadata logic exists once, in `backend/`: the
//! [`MetaStore`](crate::MetaStore) queries, assets, the speaker digest, the logical export and
//! import, job leases, the merge steps, paired-region replication and speaker profiles.
//!
//! # One source, compiled once per backend
//!
//! Each file of `backend/` is compiled into both `crate::sqlite` and `crate::postgres`
//! (`#[path = "../sql/backend/queries.rs"] mod queries;`, declared for all of them by
//! [`backend_modules!`]), and reaches its backend through a module-level `use super::{…}` of a
//! small, fixed set of names that every backend defines:
//!
//! - the types: `Db` (the `sqlx::Database`), `DbRow`, `DbConn`, `DbPool`, and `SqlStore`, the
//!   backend's store type (the `impl` blocks of `backend/` are on it);
//! - the hooks for what really differs, which is how each database keeps concurrent writers and
//!   multi-statement reads apart: `begin_snapshot` (a deferred transaction on SQLite, whose WAL
//!   snapshot is fixed by its first read; `REPEATABLE READ READ ONLY` on PostgreSQL),
//!   `lock_speakers`, `lock_resource_sync` and `lock_slots` (SQLite's single writer already
//!   serialises them, or a no-op write takes its write lock; PostgreSQL takes transaction-scoped
//!   advisory locks);
//! - for export and import, the backend's `catalog` module: how the schema is read
//!   (`sqlite_master` and `pragma_*` against `pg_catalog`), how a cell is read and bound, and
//!   how an import locks the store and finishes a table.
//!
//! Connection setup, migrations (`migrations/sqlite`, `migrations/postgres`), the format check
//! and SQLite's busy retry stay in each backend's `mod.rs`.
//!
//! Why not one generic implementation over `sqlx::Database`: every method of the
//! `#[async_trait]` [`MetaStore`](crate::MetaStore) returns a `Send` future, and a generic
//! `sqlx` executor bound (`for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>`) held
//! across `.await` inside one is known to run into rustc's higher-ranked `Send` limitation
//! ("implementation of `Executor` is not general enough"); the usual way around it is boxing or
//! restating bounds on every helper, and each SQL type (`i64`, `f64`, `String`, `&[u8]`,
//! `Option<_>`) adds `Type + Encode + Decode` bounds of its own. Compiling one source per
//! backend keeps a single code path with concrete, readable signatures, and a hook a backend
//! forgets is a compile error in that backend.
//!
//! The helpers below need no database type and are compiled once.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::StoreError;

/// The stored time format of both backends: RFC 3339, UTC, 9 fractional digits (so that times
/// compare as text and exports move between backends byte for byte).
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("UTC time formats")
}

/// Maps a driver error, turning unique violations into [`StoreError::Conflict`].
pub(crate) fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => e.into(),
    }
}

/// `"name"`, with embedded quotes doubled.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `tables` (each with its name and the tables its foreign keys name) ordered parents before
/// children: Kahn's algorithm, always taking the first ready table by name (compared as bytes),
/// so both backends order the same schema the same way. A table's references to itself do not
/// hold it back.
pub(crate) fn parents_first<T>(tables: Vec<(String, T, Vec<String>)>) -> crate::Result<Vec<T>> {
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut waiting = BTreeMap::new();
    for (name, table, refs) in tables {
        let refs = refs.into_iter().filter(|p| *p != name).collect();
        parents.insert(name.clone(), refs);
        waiting.insert(name, table);
    }
    let mut ordered = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let ready = waiting
            .keys()
            .find(|t| parents[*t].iter().all(|p| !waiting.contains_key(p)))
            .cloned()
            .ok_or_else(|| StoreError::db("foreign keys form a cycle; cannot order tables"))?;
        ordered.extend(waiting.remove(&ready));
    }
    Ok(ordered)
}

/// An import refused for `reason`.
pub(crate) fn refused(reason: impl Into<String>) -> StoreError {
    StoreError::ImportRefused {
        reason: reason.into(),
    }
}

/// Declares the modules of `src/sql/backend/` in the backend module that invokes it (the paths
/// are relative to that module's file, `src/<backend>/mod.rs`), so that both backends compile
/// exactly the same set.
macro_rules! backend_modules {
    () => {
        #[path = "../sql/backend/asset.rs"]
        mod asset;
        #[path = "../sql/backend/digest.rs"]
        mod digest;
        #[path = "../sql/backend/export.rs"]
        mod export;
        #[path = "../sql/backend/lease.rs"]
        mod lease;
        #[path = "../sql/backend/merge.rs"]
        mod merge;
        #[path = "../sql/backend/queries.rs"]
        mod queries;
        #[path = "../sql/backend/replication.rs"]
        mod replication;
        #[path = "../sql/backend/speaker.rs"]
        mod speaker;
        #[path = "../sql/backend/store.rs"]
        mod store;
    };
}
pub(crate) use backend_modules;
