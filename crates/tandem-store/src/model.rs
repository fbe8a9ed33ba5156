//! The records the store keeps, and the trait every metadata backend implements.

use async_trait::async_trait;
use tandem_core::{KeyHash, KeySlot, RegionName, ResourceId};

use crate::replication::{
    Applied, Cursor, ReplicatedResource, ResourceSync, SpeakerChange, SpeakerDigest,
};
use crate::{Asset, AssetKind, AssetPage, AssetUpdate, Lease, MetadataExport, NewAsset};
use crate::{Enrollment, NewEnrollment, NewProfile, ProfileKind, Result, SpeakerProfile};
use uuid::Uuid;

/// A speech resource as stored. Key hashes are deliberately absent: they are only ever compared,
/// through [`MetaStore::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Random id.
    pub id: ResourceId,
    /// The region the resource lives in; its keys work only there.
    pub region: RegionName,
    /// Name, unique within the region.
    pub name: String,
    /// Concurrent requests allowed before 429.
    pub concurrency_limit: u32,
    /// When it was created (UTC).
    pub created_at: time::OffsetDateTime,
}

/// What [`MetaStore::create_resource`] needs.
#[derive(Debug, Clone)]
pub struct NewResource {
    /// Id chosen by the caller (usually [`ResourceId::random`]).
    pub id: ResourceId,
    /// Region.
    pub region: RegionName,
    /// Name, unique within the region.
    pub name: String,
    /// SHA-256 of key 1.
    pub key1: KeyHash,
    /// SHA-256 of key 2.
    pub key2: KeyHash,
    /// Concurrent requests allowed before 429.
    pub concurrency_limit: u32,
}

/// Resource metadata. Every call goes to the backend: nothing is cached, because another process
/// (the `tandem resource` CLI) may write at any time and the server must see it at once.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Creates a resource. [`StoreError::Conflict`](crate::StoreError::Conflict) if the region
    /// already has one of that name, or if a key hash is already in use.
    async fn create_resource(&self, r: NewResource) -> Result<Resource>;
    /// The resource with this id, if any.
    async fn get_resource(&self, id: ResourceId) -> Result<Option<Resource>>;
    /// The resource of `region` named `name`, if any.
    async fn get_resource_by_name(
        &self,
        region: &RegionName,
        name: &str,
    ) -> Result<Option<Resource>>;
    /// The resources of `region`, ordered by `created_at`, then `name`.
    async fn list_resources(&self, region: &RegionName) -> Result<Vec<Resource>>;
    /// Deletes a resource and its keys; `false` if there was none.
    async fn delete_resource(&self, id: ResourceId) -> Result<bool>;
    /// Replaces one key's hash. `NotFound` if the resource does not exist.
    async fn set_key(&self, id: ResourceId, slot: KeySlot, hash: KeyHash) -> Result<()>;
    /// Changes the concurrency limit. `NotFound` if the resource does not exist.
    async fn set_concurrency_limit(&self, id: ResourceId, limit: u32) -> Result<()>;
    /// Finds the resource of `region` that has a key with this hash; compares the stored hash with
    /// [`KeyHash`]'s constant-time eq before returning.
    async fn authenticate(
        &self,
        region: &RegionName,
        hash: &KeyHash,
    ) -> Result<Option<(Resource, KeySlot)>>;
    /// Creates a speaker profile of a resource (status `Enrolling`, no enrollments).
    async fn create_profile(&self, p: NewProfile) -> Result<SpeakerProfile>;
    /// The live profile `id` of `resource` and `kind`; `None` if it does not exist, was deleted,
    /// or belongs to another resource or kind.
    async fn get_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Option<SpeakerProfile>>;
    /// Up to `limit` live profiles of `resource` and `kind`, ordered by creation time then id,
    /// starting after profile `after` (a continuation point; it may since have been deleted).
    async fn list_profiles(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SpeakerProfile>>;
    /// Appends an enrollment to a live profile of `resource` and `kind`, then recomputes its
    /// totals, its voice signature and its status (`Enrolled` once the live enrollments hold at
    /// least `required_speech_secs` of speech). `NotFound` if there is no such profile.
    async fn add_enrollment(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        e: NewEnrollment,
        required_speech_secs: f64,
    ) -> Result<SpeakerProfile>;
    /// The live enrollments of a profile, oldest first. `NotFound` if there is no such profile.
    async fn list_enrollments(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>>;
    /// Tombstones every live enrollment of a profile and zeroes it back to `Enrolling`; returns
    /// the enrollments removed (so their audio can be deleted). `NotFound` if no such profile.
    async fn reset_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>>;
    /// Tombstones a profile and its enrollments; returns the enrollments removed. `NotFound` if
    /// there is no such live profile.
    async fn delete_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>>;
    /// This database's identity: random, made when the database was created, stable for its
    /// life. A peer that sees it change knows the log it was following has restarted.
    async fn store_id(&self) -> Result<Uuid>;
    /// Up to `limit` changes of this region's origin log with `seq > after`, oldest first.
    async fn speaker_changes(&self, after: u64, limit: u32) -> Result<Vec<SpeakerChange>>;
    /// The newest `seq` of the origin log (0 when empty).
    async fn speaker_head(&self) -> Result<u64>;
    /// Applies changes pulled from `peer`'s log under the merge rules of
    /// [`crate::replication`], observes their HLCs, and in the same transaction sets the cursor
    /// for `peer` to `cursor`. Idempotent. The profiles' resources must exist locally (synced
    /// first with [`MetaStore::sync_foreign_resources`], or local); a change whose resource is
    /// unknown is `NotFound` and nothing of the batch is applied.
    async fn apply_speaker_changes(
        &self,
        peer: &RegionName,
        cursor: Cursor,
        changes: &[SpeakerChange],
        required_speech_secs: f64,
    ) -> Result<Applied>;
    /// Where this store stands with `peer`'s log, if it ever applied any of it.
    async fn replication_cursor(&self, peer: &RegionName) -> Result<Option<Cursor>>;
    /// The resources of `region`, with their key hashes, ordered by creation then name.
    async fn export_resources(&self, region: &RegionName) -> Result<Vec<ReplicatedResource>>;
    /// Makes this store's copy of `region`'s resources equal to `resources`: adds the missing
    /// ones, updates key hashes and limits, and removes (with their speaker data) those not in
    /// the list, in one transaction. Every entry must have `region` as its region, else
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) and nothing changes (likewise when
    /// an entry clashes with an existing id, name or key hash elsewhere). `updated` counts the
    /// resources whose name, limit or key hashes changed.
    async fn sync_foreign_resources(
        &self,
        region: &RegionName,
        resources: &[ReplicatedResource],
    ) -> Result<ResourceSync>;
    /// A digest of every speaker profile and enrollment, tombstones included.
    async fn speaker_digest(&self) -> Result<SpeakerDigest>;
    /// Creates a Custom Speech asset of a resource, stamped now (`created_at` =
    /// `last_action_at`). `NotFound` if the resource does not exist; `Conflict` if the id is
    /// taken. Write the asset's blobs first: once this returns, the asset is listed.
    async fn create_asset(&self, a: NewAsset) -> Result<Asset>;
    /// The asset `id` of `resource` and `kind`; `None` if there is none, or it belongs to
    /// another resource or is of another kind.
    async fn get_asset(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
    ) -> Result<Option<Asset>>;
    /// Up to `top` assets of `resource` and `kind`, ordered by creation time then id, after
    /// skipping `skip` of them; and how many there are in all.
    async fn list_assets(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        skip: u64,
        top: u32,
    ) -> Result<AssetPage>;
    /// Applies `update` to the asset `id` of `resource` and `kind` and sets its
    /// `last_action_at` to now; returns the updated asset. `NotFound` if there is no such asset.
    async fn update_asset(
        &self,
        resource: ResourceId,
        kind: AssetKind,
        id: Uuid,
        update: AssetUpdate,
    ) -> Result<Asset>;
    /// Deletes the asset `id` of `resource` and `kind`; `false` if there was none. Its blobs
    /// are the caller's to delete (after this, so that no listed asset ever lacks them).
    async fn delete_asset(&self, resource: ResourceId, kind: AssetKind, id: Uuid) -> Result<bool>;
    /// Every table of the metadata (but `tandem_meta`, see [`crate::export`]) as of one
    /// point in time: read in one read transaction, so concurrent writes never tear it. Tables
    /// are discovered from the schema, so a new migration's table is included by itself.
    async fn export_metadata(&self) -> Result<MetadataExport>;
    /// Puts `export` into this store, in one transaction: all of it or, on any error, nothing.
    /// The store keeps its own identity ([`MetaStore::store_id`]) and format version.
    /// [`StoreError::ImportRefused`](crate::StoreError::ImportRefused) if the store holds any
    /// row already (resources, assets, profiles, log entries or cursors), or if the export's
    /// schema is older or its tables and columns differ from this store's;
    /// [`StoreError::FormatTooNew`](crate::StoreError::FormatTooNew) if it is newer.
    async fn import_metadata(&self, export: &MetadataExport) -> Result<()>;
    /// Takes the lease on `job` for `holder` until `now + ttl` if it is free, expired, or
    /// already `holder`'s (a restarted node gets its own leases back at once); `None` if
    /// another holder's lease is live. Atomic: of two nodes racing, one wins. See [`crate::lease`].
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>> {
        let _ = (job, holder, now, ttl);
        Err(crate::StoreError::db(
            "job leases are not supported by this backend",
        ))
    }
    /// Extends `holder`'s lease on `job` to `now + ttl`; `false` if `holder` no longer holds
    /// it (it expired and another node took it, or it was released).
    async fn renew_lease(
        &self,
        job: &str,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let _ = (job, holder, now, ttl);
        Err(crate::StoreError::db(
            "job leases are not supported by this backend",
        ))
    }
    /// Gives up `holder`'s lease on `job` (the job is done); a lease held by another is kept.
    async fn release_lease(&self, job: &str, holder: &str) -> Result<()> {
        let _ = (job, holder);
        Err(crate::StoreError::db(
            "job leases are not supported by this backend",
        ))
    }
    /// The lease on `job`, live or expired, if one was ever taken and not released.
    async fn get_lease(&self, job: &str) -> Result<Option<Lease>> {
        let _ = job;
        Err(crate::StoreError::db(
            "job leases are not supported by this backend",
        ))
    }
    /// Takes one of `resource`'s `limit` concurrent-request slots for the whole region, as
    /// slot `slot` held by node `holder` until `now + ttl` (the slot lapses by itself if that
    /// node dies); `false` when `limit` live slots are taken. Atomic across nodes: with `limit`
    /// slots and `limit + 1` racing requests, exactly one is refused. Slots are leases named
    /// `slot/<resource>/<slot>` ([`crate::lease`]).
    async fn acquire_slot(
        &self,
        resource: ResourceId,
        limit: u32,
        slot: Uuid,
        holder: &str,
        now: time::OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let _ = (resource, limit, slot, holder, now, ttl);
        Err(crate::StoreError::db(
            "region-wide quotas are not supported by this backend",
        ))
    }
    /// Frees slot `slot` of `resource`.
    async fn release_slot(&self, resource: ResourceId, slot: Uuid) -> Result<()> {
        let _ = (resource, slot);
        Err(crate::StoreError::db(
            "region-wide quotas are not supported by this backend",
        ))
    }
    /// Cheap round trip to the backend, for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// The format version recorded in the database.
    async fn schema_version(&self) -> Result<u32>;
    /// Closes the backend's connections cleanly (SQLite checkpoints its WAL). Calls after this
    /// fail. Used on graceful shutdown.
    async fn close(&self);
}
