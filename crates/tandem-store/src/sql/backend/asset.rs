//! Custom Speech assets (both SQL backends): one row per entity in `speech_assets`, scoped by resource
//! and kind in every query, so another resource's asset is simply not found.

use std::str::FromStr;

use sqlx::Row;
use tandem_core::ResourceId;
use time::OffsetDateTime;
use uuid::Uuid;

use super::speaker::{corrupt, time_col, uuid_col};
use super::{begin_snapshot, DbRow, SqlStore};
use crate::sql::{conflict_or, format_time};
use crate::{Asset, AssetKind, AssetPage, AssetStatus, AssetUpdate, NewAsset, Result, StoreError};

const ASSET_COLUMNS: &str = "id, resource_id, kind, status, display_name, description, locale, \
     created_at, last_action_at, properties, doc";
/// One asset of one resource and kind: `$1` resource, `$2` kind, `$3` id.
const OWNED: &str = "resource_id = $1 AND kind = $2 AND id = $3";

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

impl SqlStore {
    pub(super) async fn as_create(&self, a: NewAsset) -> Result<Asset> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO speech_assets (id, resource_id, kind, status, display_name, description, \
             locale, created_at, last_action_at, properties, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        )
        .bind(a.id.to_string())
        .bind(a.resource_id.to_string())
        .bind(a.kind.as_str())
        .bind(a.status.as_str())
        .bind(&a.display_name)
        .bind(&a.description)
        .bind(&a.locale)
        .bind(&now)
        .bind(json_text(&a.properties))
        .bind(json_text(&a.doc))
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound {
                what: format!("resource {}", a.resource_id),
            },
            _ => conflict_or(e, || format!("{} {}", a.kind, a.id)),
        })?;
        let sql = format!("SELECT {ASSET_COLUMNS} FROM speech_assets WHERE {OWNED}");
        let row = sqlx::query(&sql)
            .bind(a.resource_id.to_string())
            .bind(a.kind.as_str())
            .bind(a.id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row_to_asset(&row)
    }

    pub(super) async fn as_get(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
    ) -> Result<Option<Asset>> {
        let sql = format!("SELECT {ASSET_COLUMNS} FROM speech_assets WHERE {OWNED}");
        let row = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_asset).transpose()
    }

    pub(super) async fn as_list(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        skip: u64,
        top: u32,
    ) -> Result<AssetPage> {
        // One snapshot for both statements, so the page and the total agree.
        let mut tx = begin_snapshot(&self.pool).await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM speech_assets WHERE resource_id = $1 AND kind = $2",
        )
        .bind(resource.to_string())
        .bind(kind.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT {ASSET_COLUMNS} FROM speech_assets WHERE resource_id = $1 AND kind = $2 \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(i64::from(top))
            .bind(i64::try_from(skip).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AssetPage {
            values: rows.iter().map(row_to_asset).collect::<Result<_>>()?,
            total: u64::try_from(total).map_err(|e| corrupt("count", e))?,
        })
    }

    pub(super) async fn as_update(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
        u: AssetUpdate,
    ) -> Result<Asset> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        // Writes first: SQLite's transaction holds the write lock from its first statement,
        // PostgreSQL's locks the row; the read-back in the same transaction sees it as written.
        let done = sqlx::query(
            "UPDATE speech_assets SET status = COALESCE($4, status), \
             display_name = COALESCE($5, display_name), description = COALESCE($6, description), \
             properties = COALESCE($7, properties), doc = COALESCE($8, doc), last_action_at = $9 \
             WHERE resource_id = $1 AND kind = $2 AND id = $3",
        )
        .bind(resource.to_string())
        .bind(kind.as_str())
        .bind(id.to_string())
        .bind(u.status.map(AssetStatus::as_str))
        .bind(u.display_name)
        .bind(u.description)
        .bind(u.properties.as_ref().map(json_text))
        .bind(u.doc.as_ref().map(json_text))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("{kind} {id}"),
            });
        }
        let sql = format!("SELECT {ASSET_COLUMNS} FROM speech_assets WHERE {OWNED}");
        let row = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row_to_asset(&row)
    }

    pub(super) async fn as_delete(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
    ) -> Result<bool> {
        let sql = format!("DELETE FROM speech_assets WHERE {OWNED}");
        let done = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn json_col(row: &DbRow, col: &str) -> Result<serde_json::Value> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn row_to_asset(row: &DbRow) -> Result<Asset> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(Asset {
        id: uuid_col(row, "id")?,
        resource_id: ResourceId(uuid_col(row, "resource_id")?),
        kind: AssetKind::from_str(&kind).map_err(|e| corrupt("kind", e))?,
        status: AssetStatus::from_str(&status).map_err(|e| corrupt("status", e))?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        locale: row.try_get("locale")?,
        created_at: time_col(row, "created_at")?,
        last_action_at: time_col(row, "last_action_at")?,
        properties: json_col(row, "properties")?,
        doc: json_col(row, "doc")?,
    })
}
