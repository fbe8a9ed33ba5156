//! What export and import (`src/sql/backend/export.rs`) need to know of PostgreSQL: the schema,
//! read from the catalog (`pg_class`, `pg_attribute`, `pg_index`, `pg_constraint`) of the
//! current schema; cells, mapped to column types both ways (BIGINT and the other integers ⇄
//! `Integer`, DOUBLE PRECISION ⇄ `Real`, TEXT ⇄ `Text`, BYTEA ⇄ `Blob`); and the import's locks.
//! Parents are inserted before children, so no constraint needs deferring.

use sqlx::{Row, Transaction};

use super::{lock_speakers, Db, DbConn, DbPool, DbRow};
use crate::sql::{parents_first, quote, refused};
use crate::{Cell, Result, StoreError};

/// A query being bound, as the import builds it.
pub(super) type DbQuery<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// What a column holds, as a [`Cell`] kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Bytes,
}

impl Kind {
    fn of(type_name: &str) -> Option<Kind> {
        Some(match type_name {
            "int2" => Kind::Int2,
            "int4" => Kind::Int4,
            "int8" => Kind::Int8,
            "float4" => Kind::Float4,
            "float8" => Kind::Float8,
            "text" | "varchar" | "bpchar" | "name" => Kind::Text,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

/// One table of the schema, as the export reads and the import writes it.
pub(super) struct TableSchema {
    pub(super) name: String,
    /// Columns in schema order (dropped and generated columns excluded).
    pub(super) columns: Vec<String>,
    kinds: Vec<Kind>,
    /// The primary key's columns in key order, or `ctid` when there is none.
    order_by: Vec<String>,
    /// Columns fed by a sequence (identity or serial): moved past the imported rows.
    sequenced: Vec<String>,
}

/// Every table of the current schema but `tandem_meta`, `job_leases` and sqlx's
/// `_sqlx_migrations`, parents before children (ties by name, compared as bytes).
pub(super) async fn schema(conn: &mut DbConn) -> Result<Vec<TableSchema>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
         WHERE c.relkind IN ('r', 'p') \
         AND c.relname::text NOT IN ('_sqlx_migrations', 'tandem_meta', $1)",
    )
    .bind(crate::LEASE_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = Vec::new();
    for name in names {
        let cols = sqlx::query(
            "SELECT a.attname::text AS name, t.typname::text AS type, \
                 a.attidentity <> '' OR pg_get_serial_sequence(quote_ident($1), a.attname) \
                     IS NOT NULL AS sequenced \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = quote_ident($1)::regclass AND a.attnum > 0 \
             AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut columns = Vec::new();
        let mut kinds = Vec::new();
        let mut sequenced = Vec::new();
        for c in &cols {
            let col: String = c.try_get("name")?;
            let ty: String = c.try_get("type")?;
            let kind = Kind::of(&ty).ok_or_else(|| {
                StoreError::db(format!(
                    "column {name}.{col} has type {ty}, which metadata exports do not carry"
                ))
            })?;
            if c.try_get::<bool, _>("sequenced")? {
                sequenced.push(col.clone());
            }
            columns.push(col);
            kinds.push(kind);
        }
        let pk: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = quote_ident($1)::regclass AND i.indisprimary ORDER BY k.pos",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let order_by = if pk.is_empty() {
            vec!["ctid".to_owned()]
        } else {
            pk
        };
        let refs: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT p.relname::text FROM pg_constraint f \
             JOIN pg_class p ON p.oid = f.confrelid \
             WHERE f.conrelid = quote_ident($1)::regclass AND f.contype = 'f'",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let table = TableSchema {
            name: name.clone(),
            columns,
            kinds,
            order_by,
            sequenced,
        };
        tables.push((name, table, refs));
    }
    parents_first(tables)
}

/// What the export selects of `t`: its columns.
pub(super) fn select_exprs(t: &TableSchema) -> Vec<String> {
    t.columns.iter().map(|c| quote(c)).collect()
}

/// What the export orders `t` by: its primary key (or `ctid`), text compared as bytes, as
/// SQLite does.
pub(super) fn order_exprs(t: &TableSchema) -> Vec<String> {
    t.order_by
        .iter()
        .map(|c| {
            let text = t
                .columns
                .iter()
                .position(|x| x == c)
                .is_some_and(|i| t.kinds[i] == Kind::Text);
            if text {
                format!("{} COLLATE \"C\"", quote(c))
            } else {
                quote(c)
            }
        })
        .collect()
}

/// The cells of one row selected by [`select_exprs`], each read as its column's type.
pub(super) fn row_cells(row: &DbRow, t: &TableSchema) -> Result<Vec<Cell>> {
    t.kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| cell(row, i, *kind))
        .collect()
}

fn cell(row: &DbRow, i: usize, kind: Kind) -> Result<Cell> {
    Ok(match kind {
        Kind::Int2 => row
            .try_get::<Option<i16>, _>(i)?
            .map_or(Cell::Null, |v| Cell::Integer(v.into())),
        Kind::Int4 => row
            .try_get::<Option<i32>, _>(i)?
            .map_or(Cell::Null, |v| Cell::Integer(v.into())),
        Kind::Int8 => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Integer),
        Kind::Float4 => row
            .try_get::<Option<f32>, _>(i)?
            .map_or(Cell::Null, |v| Cell::Real(v.into())),
        Kind::Float8 => row
            .try_get::<Option<f64>, _>(i)?
            .map_or(Cell::Null, Cell::Real),
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Cell::Null, Cell::Blob),
    })
}

/// Binds `cell` for column `column` of `table`: a NULL takes the column's type; a value of
/// another kind than the column's is refused, not converted.
pub(super) fn bind<'q>(
    q: DbQuery<'q>,
    cell: &'q Cell,
    table: &TableSchema,
    column: usize,
) -> Result<DbQuery<'q>> {
    let kind = table.kinds[column];
    Ok(match (cell, kind) {
        (Cell::Null, Kind::Int2 | Kind::Int4 | Kind::Int8) => q.bind(None::<i64>),
        (Cell::Null, Kind::Float4 | Kind::Float8) => q.bind(None::<f64>),
        (Cell::Null, Kind::Text) => q.bind(None::<String>),
        (Cell::Null, Kind::Bytes) => q.bind(None::<Vec<u8>>),
        (Cell::Integer(i), Kind::Int2 | Kind::Int4 | Kind::Int8) => q.bind(*i),
        (Cell::Real(f), Kind::Float4 | Kind::Float8) => q.bind(*f),
        (Cell::Text(s), Kind::Text) => q.bind(s.as_str()),
        (Cell::Blob(b), Kind::Bytes) => q.bind(b.as_slice()),
        (cell, kind) => {
            let found = match cell {
                Cell::Null => "a null",
                Cell::Integer(_) => "an integer",
                Cell::Real(_) => "a real",
                Cell::Text(_) => "a text",
                Cell::Blob(_) => "a blob",
            };
            return Err(refused(format!(
                "table {}: column {} holds {found}, not a {kind:?} value",
                table.name, table.columns[column]
            )));
        }
    })
}

/// The import's transaction: an ordinary one, locked by [`lock_for_import`].
pub(super) async fn begin_import(pool: &DbPool) -> Result<Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// Speaker writers queue behind the import (its lock first, in the order every speaker writer
/// takes them), then every exported table is locked in `SHARE ROW EXCLUSIVE` mode: readers go
/// on, writers wait.
pub(super) async fn lock_for_import(conn: &mut DbConn, schema: &[TableSchema]) -> Result<()> {
    lock_speakers(&mut *conn).await?;
    if !schema.is_empty() {
        let names: Vec<String> = schema.iter().map(|t| quote(&t.name)).collect();
        let sql = format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            names.join(", ")
        );
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sequences (`speaker_changes.seq`) continue after the imported rows, as SQLite's
/// `AUTOINCREMENT` does.
pub(super) async fn after_table(conn: &mut DbConn, s: &TableSchema) -> Result<()> {
    for col in &s.sequenced {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(max({c}), 1), \
             max({c}) IS NOT NULL) FROM {t}",
            c = quote(col),
            t = quote(&s.name),
        );
        sqlx::query(&sql)
            .bind(quote(&s.name))
            .bind(col)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
