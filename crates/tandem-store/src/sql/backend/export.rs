//! [`MetadataExport`] for both SQL backends. The schema is read from the database's catalog by
//! the backend's `catalog` module (`sqlite_master` and the `pragma_*` table functions, or
//! `pg_class`, `pg_attribute`, `pg_index` and `pg_constraint`), so every table a migration adds
//! is exported without a change here; the backend also reads and binds cells and locks the
//! store for an import. The rest is one procedure:
//!
//! - An export is one snapshot transaction (`begin_snapshot`): every SELECT sees the same
//!   committed state while writers carry on.
//! - An import is one transaction that locks the store against writers before it checks that
//!   the store is empty (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the speaker lock, then every
//!   exported table in `SHARE ROW EXCLUSIVE` mode), then inserts parents before children.
//!
//! Cells keep their kind both ways (integer, real, text, blob), so an export of either backend
//! imports into the other and exports again to the same bytes.

use std::collections::BTreeMap;

use super::catalog::{self, TableSchema};
use super::replication::newest_hlc;
use super::{begin_snapshot, DbConn, SqlStore};
use crate::sql::{quote, refused};
use crate::{Cell, ExportTable, MetadataExport, Result, StoreError, METADATA_IMPORTS_SINCE};

/// Every row of `t`, by primary key.
async fn read_rows(conn: &mut DbConn, t: &TableSchema) -> Result<Vec<Vec<Cell>>> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        catalog::select_exprs(t).join(", "),
        quote(&t.name),
        catalog::order_exprs(t).join(", ")
    );
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    rows.iter().map(|row| catalog::row_cells(row, t)).collect()
}

async fn format_version(conn: &mut DbConn) -> Result<u32> {
    let v: i64 = sqlx::query_scalar("SELECT format_version FROM tandem_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    u32::try_from(v).map_err(|e| StoreError::db(format!("corrupt format_version: {e}")))
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

impl SqlStore {
    pub(super) async fn ex_export(&self) -> Result<MetadataExport> {
        let mut tx = begin_snapshot(&self.pool).await?;
        // The first read fixes the snapshot; everything below sees the same one.
        let schema_version = format_version(&mut tx).await?;
        let mut tables = Vec::new();
        for t in catalog::schema(&mut tx).await? {
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
        let mut tx = catalog::begin_import(&self.pool).await?;
        let ours = format_version(&mut tx).await?;
        let theirs = export.schema_version;
        if theirs > ours {
            return Err(StoreError::FormatTooNew {
                found: theirs,
                supported: ours,
            });
        }
        if theirs < METADATA_IMPORTS_SINCE.min(ours) {
            return Err(refused(format!(
                "the export has metadata format {theirs}, this store {ours}: restore it with a \
                 build that writes format {theirs}, then upgrade"
            )));
        }
        let schema = catalog::schema(&mut tx).await?;
        check_shape(export, &schema)?;
        // Taken before the emptiness check, so nothing can slip in between.
        catalog::lock_for_import(&mut tx, &schema).await?;
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
                for (i, cell) in row.iter().enumerate() {
                    q = catalog::bind(q, cell, s, i)?;
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::db(format!("importing a row of {}: {e}", t.name)))?;
            }
            catalog::after_table(&mut tx, s).await?;
        }
        tx.commit().await?;
        // Stamps from now on must follow every imported one.
        self.clock.observe(newest_hlc(&self.pool).await?);
        Ok(())
    }
}
