//! What export and import (`src/sql/backend/export.rs`) need to know of SQLite: the schema,
//! read from `sqlite_master` and the `pragma_*` table functions; cells, each read with its
//! `typeof` so that it keeps the storage class SQLite actually holds, whatever the column's
//! declared type; and the import's lock, `BEGIN IMMEDIATE` (the write lock is taken before the
//! emptiness check, so nothing can slip in between), with foreign keys deferred to the commit.

use sqlx::{Row, Transaction};

use super::{Db, DbConn, DbPool, DbRow};
use crate::sql::{parents_first, quote};
use crate::{Cell, Result, StoreError};

/// A query being bound, as the import builds it.
pub(super) type DbQuery<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// One table of the schema, as the export reads and the import writes it.
pub(super) struct TableSchema {
    pub(super) name: String,
    /// Columns in schema order.
    pub(super) columns: Vec<String>,
    /// The primary key's columns in key order, or `rowid` when there is none.
    order_by: Vec<String>,
}

/// Every table of the metadata but `tandem_meta`, `job_leases`, sqlx's `_sqlx_migrations` and
/// SQLite's own (`sqlite_sequence`, ...), parents before children (ties by name).
pub(super) async fn schema(conn: &mut DbConn) -> Result<Vec<TableSchema>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT IN ('_sqlx_migrations', 'tandem_meta', $1) ORDER BY name",
    )
    .bind(crate::LEASE_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = Vec::new();
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
        let refs: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await?;
        let table = TableSchema {
            name: name.clone(),
            columns,
            order_by,
        };
        tables.push((name, table, refs));
    }
    parents_first(tables)
}

/// What the export selects of `t`: each column with its `typeof`, so a cell keeps the storage
/// class SQLite actually holds, whatever the column's declared type.
pub(super) fn select_exprs(t: &TableSchema) -> Vec<String> {
    t.columns
        .iter()
        .map(|c| format!("typeof({0}), {0}", quote(c)))
        .collect()
}

/// What the export orders `t` by: its primary key (or `rowid`).
pub(super) fn order_exprs(t: &TableSchema) -> Vec<String> {
    t.order_by.iter().map(|c| quote(c)).collect()
}

/// The cells of one row selected by [`select_exprs`].
pub(super) fn row_cells(row: &DbRow, t: &TableSchema) -> Result<Vec<Cell>> {
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
                other => return Err(StoreError::db(format!("unknown SQLite type {other}"))),
            })
        })
        .collect()
}

/// Binds a cell as what it is: SQLite stores each value with its own storage class.
pub(super) fn bind<'q>(
    q: DbQuery<'q>,
    cell: &'q Cell,
    _table: &TableSchema,
    _column: usize,
) -> Result<DbQuery<'q>> {
    Ok(match cell {
        Cell::Null => q.bind(None::<i64>),
        Cell::Integer(i) => q.bind(*i),
        Cell::Real(f) => q.bind(*f),
        Cell::Text(s) => q.bind(s.as_str()),
        Cell::Blob(b) => q.bind(b.as_slice()),
    })
}

/// The import's transaction: `BEGIN IMMEDIATE` takes the write lock at once.
pub(super) async fn begin_import(pool: &DbPool) -> Result<Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// The write lock is held since `BEGIN IMMEDIATE`; foreign keys are checked at the commit, so
/// rows may go in in any order.
pub(super) async fn lock_for_import(conn: &mut DbConn, _schema: &[TableSchema]) -> Result<()> {
    sqlx::query("PRAGMA defer_foreign_keys = ON")
        .execute(conn)
        .await?;
    Ok(())
}

/// Nothing to finish: `AUTOINCREMENT` continues after the largest key inserted.
pub(super) async fn after_table(_conn: &mut DbConn, _table: &TableSchema) -> Result<()> {
    Ok(())
}
