//! [`MetadataExport`] for SQLite: the schema is read from `sqlite_master` and the `pragma_*`
//! table functions, so every table a migration adds is exported without a change here.
//!
//! An export is one deferred read transaction on one connection: in WAL mode its snapshot is
//! fixed by its first read, so every later SELECT sees the same committed state while writers
//! carry on. An import is one `BEGIN IMMEDIATE` transaction (the write lock is taken before the
//! emptiness check, so nothing can slip in between), with foreign keys deferred to the commit.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::sqlite::SqliteConnection;
use sqlx::Row;

use super::replication::newest_hlc;
use super::SqliteMetaStore;
use crate::{Cell, ExportTable, MetadataExport, Result, StoreError};

/// One table of the schema, as the export reads and the import writes it.
struct TableSchema {
    name: String,
    /// Columns in schema order (generated columns excluded: they cannot be inserted).
    columns: Vec<String>,
    /// The primary key's columns in key order, or `rowid` when there is none.
    order_by: Vec<String>,
}

/// `"name"`, with embedded quotes doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of the metadata but `tandem_meta`, `job_leases`, sqlx's `_sqlx_migrations` and SQLite's own
/// (`sqlite_sequence`, ...), parents before children (ties by name).
async fn schema(conn: &mut SqliteConnection) -> Result<Vec<TableSchema>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT IN ('_sqlx_migrations', 'tandem_meta', 'job_leases') ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = BTreeMap::new();
    let mut parents = BTreeMap::new();
    for name in names {
        let cols = sqlx::query("SELECT name, pk FROM pragma_table_info($1) ORDER BY cid")
            .bind(&name)
            .fetch_all(&mut *conn)
            .await?;
        let mut columns = Vec::new();
        let mut pk = Vec::new();
        for c in &cols {
            let col: String = c.try_get("name")?;
            let at: i64 = c.try_get("pk")?;
            if at > 0 {
                pk.push((at, col.clone()));
            }
            columns.push(col);
        }
        pk.sort();
        let order_by = if pk.is_empty() {
            vec!["rowid".to_owned()]
        } else {
            pk.into_iter().map(|(_, c)| c).collect()
        };
        let refs: BTreeSet<String> =
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .filter(|p: &String| *p != name)
                .collect();
        parents.insert(name.clone(), refs);
        tables.insert(
            name.clone(),
            TableSchema {
                name,
                columns,
                order_by,
            },
        );
    }
    // Kahn's algorithm, always taking the first ready table by name: deterministic.
    let mut ordered = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables
            .keys()
            .find(|t| parents[*t].iter().all(|p| !tables.contains_key(p)))
            .cloned()
            .ok_or_else(|| StoreError::db("foreign keys form a cycle; cannot order tables"))?;
        ordered.extend(tables.remove(&ready));
    }
    Ok(ordered)
}

/// Every row of `t`, by primary key. Each value is selected with its `typeof`, so a cell keeps
/// the storage class SQLite actually holds, whatever the column's declared type.
async fn read_rows(conn: &mut SqliteConnection, t: &TableSchema) -> Result<Vec<Vec<Cell>>> {
    let select: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("typeof({0}), {0}", quote(c)))
        .collect();
    let order: Vec<String> = t.order_by.iter().map(|c| quote(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        select.join(", "),
        quote(&t.name),
        order.join(", ")
    );
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            (0..t.columns.len())
                .map(|i| {
                    let kind: String = row.try_get(2 * i)?;
                    let v = 2 * i + 1;
                    Ok(match kind.as_str() {
                        "null" => Cell::Null,
                        "integer" => Cell::Integer(row.try_get_unchecked(v)?),
                        "real" => Cell::Real(row.try_get_unchecked(v)?),
                        "text" => Cell::Text(row.try_get_unchecked(v)?),
                        "blob" => Cell::Blob(row.try_get_unchecked(v)?),
                        other => {
                            return Err(StoreError::db(format!("unknown SQLite type {other}")))
                        }
                    })
                })
                .collect()
        })
        .collect()
}

async fn format_version(conn: &mut SqliteConnection) -> Result<u32> {
    let v: i64 = sqlx::query_scalar("SELECT format_version FROM tandem_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    u32::try_from(v).map_err(|e| StoreError::db(format!("corrupt format_version: {e}")))
}

fn refused(reason: impl Into<String>) -> StoreError {
    StoreError::ImportRefused {
        reason: reason.into(),
    }
}

/// Refuses an export whose tables or columns are not exactly `schema`'s.
fn check_shape(export: &MetadataExport, schema: &[TableSchema]) -> Result<()> {
    let ours: BTreeMap<&str, &TableSchema> = schema.iter().map(|t| (t.name.as_str(), t)).collect();
    for t in &export.tables {
        let Some(s) = ours.get(t.name.as_str()) else {
            return Err(refused(format!("this store has no table {}", t.name)));
        };
        if t.columns != s.columns {
            return Err(refused(format!(
                "table {}: the export has columns {:?}, this store {:?}",
                t.name, t.columns, s.columns
            )));
        }
        if let Some(bad) = t.rows.iter().find(|r| r.len() != t.columns.len()) {
            return Err(refused(format!(
                "table {}: a row of {} cells",
                t.name,
                bad.len()
            )));
        }
    }
    if let Some(missing) = schema.iter().find(|s| export.table(&s.name).is_none()) {
        return Err(refused(format!("the export lacks table {}", missing.name)));
    }
    Ok(())
}

impl SqliteMetaStore {
    pub(super) async fn ex_export(&self) -> Result<MetadataExport> {
        let mut tx = self.pool.begin().await?;
        // The first read fixes the snapshot; everything below sees the same one.
        let schema_version = format_version(&mut tx).await?;
        let mut tables = Vec::new();
        for t in schema(&mut tx).await? {
            let rows = read_rows(&mut tx, &t).await?;
            tables.push(ExportTable {
                name: t.name,
                columns: t.columns,
                rows,
            });
        }
        tx.rollback().await?;
        Ok(MetadataExport {
            schema_version,
            tables,
        })
    }

    pub(super) async fn ex_import(&self, export: &MetadataExport) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ours = format_version(&mut tx).await?;
        let theirs = export.schema_version;
        if theirs > ours {
            return Err(StoreError::FormatTooNew {
                found: theirs,
                supported: ours,
            });
        }
        if theirs < super::METADATA_IMPORTS_SINCE.min(ours) {
            return Err(refused(format!(
                "the export has metadata format {theirs}, this store {ours}: restore it with a \
                 build that writes format {theirs}, then upgrade"
            )));
        }
        let schema = schema(&mut tx).await?;
        check_shape(export, &schema)?;
        let mut busy = Vec::new();
        for t in &schema {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", quote(&t.name));
            if sqlx::query_scalar::<_, bool>(&sql)
                .fetch_one(&mut *tx)
                .await?
            {
                busy.push(t.name.as_str());
            }
        }
        if !busy.is_empty() {
            return Err(refused(format!(
                "the store is not empty (rows in {}); import only into a new store",
                busy.join(", ")
            )));
        }
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        for s in &schema {
            let t = export.table(&s.name).expect("checked by check_shape");
            let columns: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
            let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote(&t.name),
                columns.join(", "),
                params.join(", ")
            );
            for row in &t.rows {
                let mut q = sqlx::query(&sql);
                for cell in row {
                    q = match cell {
                        Cell::Null => q.bind(None::<i64>),
                        Cell::Integer(i) => q.bind(*i),
                        Cell::Real(f) => q.bind(*f),
                        Cell::Text(s) => q.bind(s.as_str()),
                        Cell::Blob(b) => q.bind(b.as_slice()),
                    };
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::db(format!("importing a row of {}: {e}", t.name)))?;
            }
        }
        tx.commit().await?;
        // Stamps from now on must follow every imported one.
        self.clock.observe(newest_hlc(&self.pool).await?);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
