//! [`MetadataExport`] for PostgreSQL: the schema is read from the catalog (`pg_class`,
//! `pg_attribute`, `pg_index`, `pg_constraint`) of the current schema, so every table a migration
//! adds is exported without a change here, exactly as the SQLite backend reads `sqlite_master`.
//!
//! An export is one `REPEATABLE READ READ ONLY` transaction: one snapshot for every SELECT while
//! writers carry on. An import is one transaction that first locks every exported table in
//! `SHARE ROW EXCLUSIVE` mode (readers go on, writers wait; SQLite: `BEGIN IMMEDIATE`), checks
//! that they are empty, and inserts parents before children, so no constraint needs deferring.
//! Cells map to column types both ways: BIGINT (and the other integers) ⇄ `Integer`,
//! DOUBLE PRECISION ⇄ `Real`, TEXT ⇄ `Text`, BYTEA ⇄ `Blob`; so an export of either backend
//! imports into the other and exports again to the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::replication::newest_hlc;
use super::{xact_lock, PgMetaStore, SPEAKER_LOCK};
use crate::{Cell, ExportTable, MetadataExport, Result, StoreError};

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
struct TableSchema {
    name: String,
    /// Columns in schema order (dropped and generated columns excluded).
    columns: Vec<String>,
    kinds: Vec<Kind>,
    /// The primary key's columns in key order, or `ctid` when there is none.
    order_by: Vec<String>,
    /// Columns fed by a sequence (identity or serial): moved past the imported rows.
    sequenced: Vec<String>,
}

/// `"name"`, with embedded quotes doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of the current schema but `tandem_meta`, `job_leases` and sqlx's
/// `_sqlx_migrations`, parents before children (ties by name, compared as bytes).
async fn schema(conn: &mut PgConnection) -> Result<Vec<TableSchema>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() \
         WHERE c.relkind IN ('r', 'p') \
         AND c.relname::text NOT IN ('_sqlx_migrations', 'tandem_meta', $1)",
    )
    .bind(crate::LEASE_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = BTreeMap::new();
    let mut parents = BTreeMap::new();
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
        let refs: BTreeSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT p.relname::text FROM pg_constraint f \
             JOIN pg_class p ON p.oid = f.confrelid \
             WHERE f.conrelid = quote_ident($1)::regclass AND f.contype = 'f'",
        )
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
                kinds,
                order_by,
                sequenced,
            },
        );
    }
    // Kahn's algorithm, always taking the first ready table by name: deterministic, and the
    // SQLite backend's order for the same schema.
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

/// Every row of `t`, by primary key (text compared as bytes, as SQLite does).
async fn read_rows(conn: &mut PgConnection, t: &TableSchema) -> Result<Vec<Vec<Cell>>> {
    let select: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
    let order: Vec<String> = t
        .order_by
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
        .collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        select.join(", "),
        quote(&t.name),
        order.join(", ")
    );
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            t.kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| cell(row, i, *kind))
                .collect()
        })
        .collect()
}

fn cell(row: &PgRow, i: usize, kind: Kind) -> Result<Cell> {
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

/// Binds `cell` for a column of `kind`: a NULL takes the column's type; a value of another
/// kind than the column's is refused, not converted.
fn bind<'q>(
    q: Query<'q, Postgres, PgArguments>,
    cell: &'q Cell,
    kind: Kind,
) -> std::result::Result<Query<'q, Postgres, PgArguments>, &'static str> {
    Ok(match (cell, kind) {
        (Cell::Null, Kind::Int2 | Kind::Int4 | Kind::Int8) => q.bind(None::<i64>),
        (Cell::Null, Kind::Float4 | Kind::Float8) => q.bind(None::<f64>),
        (Cell::Null, Kind::Text) => q.bind(None::<String>),
        (Cell::Null, Kind::Bytes) => q.bind(None::<Vec<u8>>),
        (Cell::Integer(i), Kind::Int2 | Kind::Int4 | Kind::Int8) => q.bind(*i),
        (Cell::Real(f), Kind::Float4 | Kind::Float8) => q.bind(*f),
        (Cell::Text(s), Kind::Text) => q.bind(s.as_str()),
        (Cell::Blob(b), Kind::Bytes) => q.bind(b.as_slice()),
        (Cell::Integer(_), _) => return Err("an integer"),
        (Cell::Real(_), _) => return Err("a real"),
        (Cell::Text(_), _) => return Err("a text"),
        (Cell::Blob(_), _) => return Err("a blob"),
    })
}

async fn format_version(conn: &mut PgConnection) -> Result<u32> {
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

impl PgMetaStore {
    pub(super) async fn ex_export(&self) -> Result<MetadataExport> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        // The first statement fixes the snapshot; everything below sees the same one.
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
        let mut tx = self.pool.begin().await?;
        // Speaker writers queue behind the import, as every writer does behind the table locks.
        xact_lock(&mut tx, SPEAKER_LOCK).await?;
        let ours = format_version(&mut tx).await?;
        let theirs = export.schema_version;
        if theirs > ours {
            return Err(StoreError::FormatTooNew {
                found: theirs,
                supported: ours,
            });
        }
        if theirs < crate::METADATA_IMPORTS_SINCE.min(ours) {
            return Err(refused(format!(
                "the export has metadata format {theirs}, this store {ours}: restore it with a \
                 build that writes format {theirs}, then upgrade"
            )));
        }
        let schema = schema(&mut tx).await?;
        check_shape(export, &schema)?;
        if !schema.is_empty() {
            // Taken before the emptiness check, so nothing can slip in between.
            let names: Vec<String> = schema.iter().map(|t| quote(&t.name)).collect();
            let sql = format!(
                "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                names.join(", ")
            );
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
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
                for ((cell, kind), col) in row.iter().zip(&s.kinds).zip(&s.columns) {
                    q = bind(q, cell, *kind).map_err(|found| {
                        refused(format!(
                            "table {}: column {col} holds {found}, not a {kind:?} value",
                            t.name
                        ))
                    })?;
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::db(format!("importing a row of {}: {e}", t.name)))?;
            }
            // Sequences (speaker_changes.seq) continue after the imported rows, as SQLite's
            // AUTOINCREMENT does.
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
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        // Stamps from now on must follow every imported one.
        self.clock.observe(newest_hlc(&self.pool).await?);
        Ok(())
    }
}
