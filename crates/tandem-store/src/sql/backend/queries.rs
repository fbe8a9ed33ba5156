//! The [`MetaStore`] queries of both SQL backends (shared source, see [`crate::sql`]): resources,
//! their keys and limits, and the dispatch to the other modules. The SQL is portable (`$n`
//! parameters, TEXT/BIGINT columns).

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::Row;
use tandem_core::{KeyHash, KeySlot, RegionName, ResourceId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{DbRow, SqlStore};
use crate::replication::{
    Applied, Cursor, ReplicatedResource, ResourceSync, SpeakerChange, SpeakerDigest,
};
use crate::sql::{conflict_or, format_time};
use crate::{Asset, AssetKind, AssetPage, AssetUpdate, Lease, MetadataExport, NewAsset};
use crate::{
    Enrollment, MetaStore, NewEnrollment, NewProfile, NewResource, ProfileKind, Resource, Result,
    SpeakerProfile, StoreError,
};
use uuid::Uuid;

#[async_trait]
impl MetaStore for SqlStore {
    async fn create_resource(&self, r: NewResource) -> Result<Resource> {
        let created_at = OffsetDateTime::now_utc();
        let conflict = || {
            format!(
                "resource {:?} in region {} or one of its keys already exists",
                r.name, r.region
            )
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO resources (id, region, name, concurrency_limit, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id.to_string())
        .bind(r.region.as_str())
        .bind(&r.name)
        .bind(i64::from(r.concurrency_limit))
        .bind(format_time(created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, conflict))?;
        for (slot, hash) in [(KeySlot::Key1, &r.key1), (KeySlot::Key2, &r.key2)] {
            sqlx::query(
                "INSERT INTO resource_keys (resource_id, slot, key_hash) VALUES ($1, $2, $3)",
            )
            .bind(r.id.to_string())
            .bind(slot.as_str())
            .bind(hash.to_hex())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, conflict))?;
        }
        tx.commit().await?;
        // Read back so the returned timestamp is exactly what is stored.
        self.get_resource(r.id)
            .await?
            .ok_or_else(|| StoreError::db("resource vanished right after insert"))
    }

    async fn get_resource(&self, id: ResourceId) -> Result<Option<Resource>> {
        self.fetch_one_where("r.id = $1", &id.to_string(), None)
            .await
    }

    async fn get_resource_by_name(
        &self,
        region: &RegionName,
        name: &str,
    ) -> Result<Option<Resource>> {
        self.fetch_one_where("r.region = $1 AND r.name = $2", region.as_str(), Some(name))
            .await
    }

    async fn list_resources(&self, region: &RegionName) -> Result<Vec<Resource>> {
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources r WHERE r.region = $1 ORDER BY r.created_at, r.name"
        );
        let rows = sqlx::query(&sql)
            .bind(region.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_resource).collect()
    }

    async fn delete_resource(&self, id: ResourceId) -> Result<bool> {
        // Keys, profiles and assets go with it (ON DELETE CASCADE; SQLite: foreign_keys is on
        // for every connection).
        let done = sqlx::query("DELETE FROM resources WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_key(&self, id: ResourceId, slot: KeySlot, hash: KeyHash) -> Result<()> {
        let done = sqlx::query(
            "UPDATE resource_keys SET key_hash = $1 WHERE resource_id = $2 AND slot = $3",
        )
        .bind(hash.to_hex())
        .bind(id.to_string())
        .bind(slot.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, || "that key hash is already in use".to_owned()))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("resource {id}"),
            });
        }
        Ok(())
    }

    async fn set_concurrency_limit(&self, id: ResourceId, limit: u32) -> Result<()> {
        let done = sqlx::query("UPDATE resources SET concurrency_limit = $1 WHERE id = $2")
            .bind(i64::from(limit))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("resource {id}"),
            });
        }
        Ok(())
    }

    async fn authenticate(
        &self,
        region: &RegionName,
        hash: &KeyHash,
    ) -> Result<Option<(Resource, KeySlot)>> {
        let sql = format!(
            "SELECT {RESOURCE_COLUMNS}, k.slot, k.key_hash FROM resource_keys k \
             JOIN resources r ON r.id = k.resource_id WHERE k.key_hash = $1 AND r.region = $2"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(hash.to_hex())
            .bind(region.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let stored: String = row.try_get("key_hash")?;
        let stored =
            KeyHash::from_hex(&stored).ok_or_else(|| StoreError::db("corrupt key hash"))?;
        if stored != *hash {
            return Ok(None);
        }
        let slot: String = row.try_get("slot")?;
        let slot = KeySlot::from_str(&slot).map_err(StoreError::db)?;
        Ok(Some((row_to_resource(&row)?, slot)))
    }

    async fn create_asset(&self, a: NewAsset) -> Result<Asset> {
        self.as_create(a).await
    }

    async fn get_asset(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
    ) -> Result<Option<Asset>> {
        self.as_get(resource, kind, id).await
    }

    async fn list_assets(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        skip: u64,
        top: u32,
    ) -> Result<AssetPage> {
        self.as_list(resource, kind, skip, top).await
    }

    async fn update_asset(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
        update: AssetUpdate,
    ) -> Result<Asset> {
        self.as_update(resource, kind, id, update).await
    }

    async fn delete_asset(&self, resource: ResourceId, kind: AssetKind, id: Uuid) -> Result<bool> {
        self.as_delete(resource, kind, id).await
    }

    async fn create_profile(&self, p: NewProfile) -> Result<SpeakerProfile> {
        self.sp_create_profile(p).await
    }

    async fn get_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Option<SpeakerProfile>> {
        self.sp_get_profile(resource, kind, id).await
    }

    async fn list_profiles(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SpeakerProfile>> {
        self.sp_list_profiles(resource, kind, after, limit).await
    }

    async fn add_enrollment(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        e: NewEnrollment,
        required_speech_secs: f64,
    ) -> Result<SpeakerProfile> {
        self.sp_add_enrollment(resource, kind, e, required_speech_secs)
            .await
    }

    async fn list_enrollments(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>> {
        self.sp_list_enrollments(resource, kind, id).await
    }

    async fn reset_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>> {
        self.sp_remove(resource, kind, id, false).await
    }

    async fn delete_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>> {
        self.sp_remove(resource, kind, id, true).await
    }

    async fn store_id(&self) -> Result<Uuid> {
        self.rp_store_id().await
    }

    async fn speaker_changes(&self, after: u64, limit: u32) -> Result<Vec<SpeakerChange>> {
        self.rp_speaker_changes(after, limit).await
    }

    async fn speaker_head(&self) -> Result<u64> {
        self.rp_speaker_head().await
    }

    async fn apply_speaker_changes(
        &self,
        peer: &RegionName,
        cursor: Cursor,
        changes: &[SpeakerChange],
        required_speech_secs: f64,
    ) -> Result<Applied> {
        self.rp_apply(peer, cursor, changes, required_speech_secs)
            .await
    }

    async fn replication_cursor(&self, peer: &RegionName) -> Result<Option<Cursor>> {
        self.rp_cursor(peer).await
    }

    async fn export_resources(&self, region: &RegionName) -> Result<Vec<ReplicatedResource>> {
        self.rp_export(region).await
    }

    async fn sync_foreign_resources(
        &self,
        region: &RegionName,
        resources: &[ReplicatedResource],
    ) -> Result<ResourceSync> {
        self.rp_sync(region, resources).await
    }

    async fn speaker_digest(&self) -> Result<SpeakerDigest> {
        self.rp_digest().await
    }

    async fn export_metadata(&self) -> Result<MetadataExport> {
        self.ex_export().await
    }

    async fn import_metadata(&self, export: &MetadataExport) -> Result<()> {
        self.ex_import(export).await
    }

    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>> {
        self.ls_acquire(job, holder, now, ttl).await
    }

    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.ls_renew(job, holder, now, ttl).await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        self.ls_release(job, holder).await
    }

    async fn get_lease(&self, job: &str) -> Result<Option<Lease>> {
        self.ls_get(job).await
    }

    async fn acquire_slot(
        &self,
        resource: ResourceId,
        limit: u32,
        slot: Uuid,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.ls_acquire_slot(resource, limit, slot, holder, now, ttl)
            .await
    }

    async fn release_slot(&self, resource: ResourceId, slot: Uuid) -> Result<()> {
        self.ls_release_slot(resource, slot).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn schema_version(&self) -> Result<u32> {
        let v: i64 = sqlx::query_scalar("SELECT format_version FROM tandem_meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        u32::try_from(v).map_err(|e| StoreError::db(format!("corrupt format_version: {e}")))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

const RESOURCE_COLUMNS: &str = "r.id, r.region, r.name, r.concurrency_limit, r.created_at";

impl SqlStore {
    async fn fetch_one_where(
        &self,
        filter: &str,
        a: &str,
        b: Option<&str>,
    ) -> Result<Option<Resource>> {
        let sql = format!("SELECT {RESOURCE_COLUMNS} FROM resources r WHERE {filter}");
        let mut q = sqlx::query(&sql).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        q.fetch_optional(&self.pool)
            .await?
            .map(|r| row_to_resource(&r))
            .transpose()
    }
}

pub(super) fn row_to_resource(row: &DbRow) -> Result<Resource> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::db(format!("corrupt {what}: {e}"));
    let id: String = row.try_get("id")?;
    let region: String = row.try_get("region")?;
    let limit: i64 = row.try_get("concurrency_limit")?;
    let created: String = row.try_get("created_at")?;
    Ok(Resource {
        id: ResourceId::from_str(&id).map_err(|e| corrupt("resource id", &e))?,
        region: RegionName::new(region).map_err(|e| corrupt("region", &e))?,
        name: row.try_get("name")?,
        concurrency_limit: u32::try_from(limit).map_err(|e| corrupt("concurrency_limit", &e))?,
        created_at: OffsetDateTime::parse(&created, &Rfc3339)
            .map_err(|e| corrupt("created_at", &e))?,
    })
}
