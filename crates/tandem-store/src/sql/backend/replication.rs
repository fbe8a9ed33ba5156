//! Paired-region replication (both SQL backends): reading the origin log, applying a peer's log
//! under the merge rules of [`crate::replication`], peer cursors and mirroring the pair's
//! resources (the speaker digest is in `digest.rs`). The SQL is portable (`ON CONFLICT ... DO
//! NOTHING/UPDATE`, `$n`). Applying calls `lock_speakers` like a local speaker write, and
//! resource syncs serialise behind `lock_resource_sync`.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use sqlx::{Row, Transaction};
use tandem_core::{KeyHash, KeySlot, RegionName, ResourceId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::merge::{
    hlc_from_sql, hlc_sql, raise_reset, real, record_delete, refresh_totals, tombstone_dead,
};
use super::speaker::{corrupt, time_col, uuid_col};
use super::{lock_resource_sync, lock_speakers, Db, DbPool, DbRow, SqlStore};
use crate::replication::{
    Applied, Cursor, ProfileHeader, ReplicatedEnrollment, ReplicatedResource, ResourceSync,
    SpeakerChange, SpeakerOp,
};
use crate::speaker::{bytes_to_f32s, f32s_to_bytes};
use crate::sql::{conflict_or, format_time};
use crate::{Hlc, ProfileKind, Result, StoreError};

/// The newest HLC anywhere in the database (0 when there is none), to start the clock past it.
pub(super) async fn newest_hlc(pool: &DbPool) -> Result<Hlc> {
    let newest: Option<i64> = sqlx::query_scalar(
        "SELECT max(h) FROM ( \
             SELECT max(hlc) AS h FROM speaker_changes \
             UNION ALL SELECT max(hlc) FROM speaker_profiles \
             UNION ALL SELECT max(reset_hlc) FROM speaker_profiles \
             UNION ALL SELECT max(deleted_hlc) FROM speaker_profiles \
             UNION ALL SELECT max(hlc) FROM speaker_enrollments) AS stamps",
    )
    .fetch_one(pool)
    .await?;
    newest.map_or(Ok(Hlc(0)), hlc_from_sql)
}

const RESOURCE_WITH_KEYS: &str = "SELECT r.id, r.region, r.name, r.concurrency_limit, \
     r.created_at, k1.key_hash AS key1, k2.key_hash AS key2 FROM resources r \
     JOIN resource_keys k1 ON k1.resource_id = r.id AND k1.slot = 'key1' \
     JOIN resource_keys k2 ON k2.resource_id = r.id AND k2.slot = 'key2' \
     WHERE r.region = $1 ORDER BY r.created_at, r.name";

impl SqlStore {
    pub(super) async fn rp_store_id(&self) -> Result<Uuid> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT store_id FROM tandem_meta WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        let id = id.ok_or_else(|| StoreError::db("store_id missing from tandem_meta"))?;
        Uuid::parse_str(&id).map_err(|e| corrupt("store_id", e))
    }

    pub(super) async fn rp_speaker_changes(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SpeakerChange>> {
        // Changes of profiles since removed with their resource have no header any more: they
        // are skipped (the log allows gaps).
        let rows = sqlx::query(
            "SELECT c.seq, c.hlc, c.at, c.op, p.id, p.resource_id, p.kind, p.locale, \
             p.created_at, p.hlc AS p_hlc, e.id AS e_id, e.created_at AS e_created_at, \
             e.hlc AS e_hlc, e.audio_secs, e.speech_secs, e.audio_key, e.embedding, e.passphrase \
             FROM speaker_changes c JOIN speaker_profiles p ON p.id = c.profile_id \
             LEFT JOIN speaker_enrollments e ON e.id = c.enrollment_id \
             WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(change) = row_to_change(row)? {
                out.push(change);
            }
        }
        Ok(out)
    }

    pub(super) async fn rp_speaker_head(&self) -> Result<u64> {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM speaker_changes")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(head.unwrap_or(0)).map_err(|e| corrupt("seq", e))
    }

    pub(super) async fn rp_apply(
        &self,
        peer: &RegionName,
        cursor: Cursor,
        changes: &[SpeakerChange],
        required_speech_secs: f64,
    ) -> Result<Applied> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        lock_speakers(&mut tx).await?;
        // Write first (see the speaker module): the cursor moves with the batch, atomically.
        sqlx::query(
            "INSERT INTO replication_cursors (peer, store_id, seq, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (peer) DO UPDATE SET \
             store_id = excluded.store_id, seq = excluded.seq, updated_at = excluded.updated_at",
        )
        .bind(peer.as_str())
        .bind(cursor.store_id.to_string())
        .bind(i64::try_from(cursor.seq).map_err(|e| StoreError::db(format!("seq: {e}")))?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let resources: BTreeSet<ResourceId> =
            changes.iter().map(|c| c.profile.resource_id).collect();
        for r in resources {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM resources WHERE id = $1")
                    .bind(r.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::NotFound {
                    what: format!("resource {r} (sync the pair's resources first)"),
                });
            }
        }
        let mut applied = Applied::default();
        let mut touched = BTreeSet::new();
        for c in changes {
            self.clock.observe(c.hlc);
            self.clock.observe(c.profile.hlc);
            let id = c.profile.id;
            let at = format_time(c.at);
            let mut modified = insert_skeleton(&mut tx, &c.profile).await?;
            match &c.op {
                SpeakerOp::Create => {}
                SpeakerOp::Enroll { enrollment } => {
                    self.clock.observe(enrollment.hlc);
                    if let Some(born_dead) =
                        insert_enrollment(&mut tx, id, enrollment, &now).await?
                    {
                        modified = true;
                        if born_dead {
                            applied.removed_audio.push(enrollment.audio_key.clone());
                        }
                    }
                }
                SpeakerOp::Reset => modified |= raise_reset(&mut tx, id, c.hlc, &at).await?,
                SpeakerOp::Delete => modified |= record_delete(&mut tx, id, c.hlc, &at).await?,
            }
            let dead = tombstone_dead(&mut tx, id, &now).await?;
            modified |= !dead.is_empty();
            applied
                .removed_audio
                .extend(dead.into_iter().map(|e| e.audio_key));
            touched.insert(id);
            if modified {
                applied.changed += 1;
            }
        }
        for id in touched {
            refresh_totals(&mut tx, id, Some(required_speech_secs)).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    pub(super) async fn rp_cursor(&self, peer: &RegionName) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT store_id, seq FROM replication_cursors WHERE peer = $1")
            .bind(peer.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let seq: i64 = row.try_get("seq")?;
            Ok(Cursor {
                store_id: uuid_col(&row, "store_id")?,
                seq: u64::try_from(seq).map_err(|e| corrupt("cursor seq", e))?,
            })
        })
        .transpose()
    }

    pub(super) async fn rp_export(&self, region: &RegionName) -> Result<Vec<ReplicatedResource>> {
        let rows = sqlx::query(RESOURCE_WITH_KEYS)
            .bind(region.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_replicated).collect()
    }

    pub(super) async fn rp_sync(
        &self,
        region: &RegionName,
        resources: &[ReplicatedResource],
    ) -> Result<ResourceSync> {
        if let Some(bad) = resources.iter().find(|r| r.region != *region) {
            return Err(StoreError::Conflict {
                what: format!(
                    "resource {} belongs to region {}, not {region}",
                    bad.id, bad.region
                ),
            });
        }
        let mut tx = self.pool.begin().await?;
        // One sync at a time: what is read below stays what is there until the commit.
        lock_resource_sync(&mut tx).await?;
        let rows = sqlx::query(RESOURCE_WITH_KEYS)
            .bind(region.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let mut existing: BTreeMap<ResourceId, ReplicatedResource> = rows
            .iter()
            .map(|row| row_to_replicated(row).map(|r| (r.id, r)))
            .collect::<Result<_>>()?;
        let mut sync = ResourceSync::default();
        // What is not in the list is gone at home: remove it here too (speaker rows cascade),
        // first, so that a new resource may take a removed one's name or keys.
        let listed: std::collections::BTreeSet<ResourceId> =
            resources.iter().map(|r| r.id).collect();
        let gone: Vec<ResourceId> = existing
            .keys()
            .filter(|id| !listed.contains(id))
            .copied()
            .collect();
        for id in gone {
            existing.remove(&id);
            sqlx::query("DELETE FROM resources WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            sync.removed += 1;
        }
        for r in resources {
            let conflict = || {
                format!(
                    "resource {} ({:?} in {}) clashes with an existing name, id or key",
                    r.id, r.name, r.region
                )
            };
            match existing.remove(&r.id) {
                None => {
                    sqlx::query(
                        "INSERT INTO resources (id, region, name, concurrency_limit, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(r.id.to_string())
                    .bind(r.region.as_str())
                    .bind(&r.name)
                    .bind(i64::from(r.concurrency_limit))
                    .bind(format_time(r.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict_or(e, conflict))?;
                    insert_keys(&mut tx, r)
                        .await
                        .map_err(|e| conflict_or(e, conflict))?;
                    sync.added += 1;
                }
                Some(old) => {
                    if old.name != r.name || old.concurrency_limit != r.concurrency_limit {
                        sqlx::query(
                            "UPDATE resources SET name = $1, concurrency_limit = $2 WHERE id = $3",
                        )
                        .bind(&r.name)
                        .bind(i64::from(r.concurrency_limit))
                        .bind(r.id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| conflict_or(e, conflict))?;
                    }
                    if old.key1 != r.key1 || old.key2 != r.key2 {
                        // Replace both rows, so that swapped slots never collide on the unique
                        // hash index half-way.
                        sqlx::query("DELETE FROM resource_keys WHERE resource_id = $1")
                            .bind(r.id.to_string())
                            .execute(&mut *tx)
                            .await?;
                        insert_keys(&mut tx, r)
                            .await
                            .map_err(|e| conflict_or(e, conflict))?;
                    }
                    if old != *r {
                        sync.updated += 1;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(sync)
    }
}

/// Creates a profile from a change's header unless it exists. `true` if it was created.
async fn insert_skeleton(tx: &mut Transaction<'_, Db>, h: &ProfileHeader) -> Result<bool> {
    let created = format_time(h.created_at);
    let done = sqlx::query(
        "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, updated_at, hlc) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(h.id.to_string())
    .bind(h.resource_id.to_string())
    .bind(h.kind.as_str())
    .bind(&h.locale)
    .bind(created)
    .bind(hlc_sql(h.hlc)?)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Inserts a replicated enrollment unless it exists, born a tombstone (at `now`) if the profile
/// is deleted or reset at or after its HLC. `None` if it existed, else `Some(born_dead)`.
async fn insert_enrollment(
    tx: &mut Transaction<'_, Db>,
    profile: Uuid,
    e: &ReplicatedEnrollment,
    now: &str,
) -> Result<Option<bool>> {
    let done = sqlx::query(
        "INSERT INTO speaker_enrollments \
         (id, profile_id, created_at, audio_secs, speech_secs, audio_key, embedding, hlc, \
          deleted_at, passphrase) \
         SELECT $1, p.id, $2, $3, $4, $5, $6, $7, \
             CASE WHEN p.deleted_hlc IS NOT NULL OR $7 <= p.reset_hlc THEN $8 ELSE NULL END, $10 \
         FROM speaker_profiles p WHERE p.id = $9 \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.to_string())
    .bind(format_time(e.created_at))
    .bind(real(e.audio_secs))
    .bind(real(e.speech_secs))
    .bind(&e.audio_key)
    .bind(f32s_to_bytes(&e.embedding))
    .bind(hlc_sql(e.hlc)?)
    .bind(now)
    .bind(profile.to_string())
    .bind(&e.passphrase)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let deleted: Option<String> =
        sqlx::query_scalar("SELECT deleted_at FROM speaker_enrollments WHERE id = $1")
            .bind(e.id.to_string())
            .fetch_one(&mut **tx)
            .await?;
    Ok(Some(deleted.is_some()))
}

async fn insert_keys(
    tx: &mut Transaction<'_, Db>,
    r: &ReplicatedResource,
) -> std::result::Result<(), sqlx::Error> {
    for (slot, hash) in [(KeySlot::Key1, &r.key1), (KeySlot::Key2, &r.key2)] {
        sqlx::query("INSERT INTO resource_keys (resource_id, slot, key_hash) VALUES ($1, $2, $3)")
            .bind(r.id.to_string())
            .bind(slot.as_str())
            .bind(hash.to_hex())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn row_to_replicated(row: &DbRow) -> Result<ReplicatedResource> {
    let r = super::queries::row_to_resource(row)?;
    let key = |col: &str| -> Result<KeyHash> {
        let hex: String = row.try_get(col)?;
        KeyHash::from_hex(&hex).ok_or_else(|| corrupt("key hash", col))
    };
    Ok(ReplicatedResource {
        id: r.id,
        region: r.region,
        name: r.name,
        key1: key("key1")?,
        key2: key("key2")?,
        concurrency_limit: r.concurrency_limit,
        created_at: r.created_at,
    })
}

/// One log row as a change; `None` for an `enroll` whose enrollment row is gone.
fn row_to_change(row: &DbRow) -> Result<Option<SpeakerChange>> {
    let seq: i64 = row.try_get("seq")?;
    let kind: String = row.try_get("kind")?;
    let op: String = row.try_get("op")?;
    let op = match op.as_str() {
        "create" => SpeakerOp::Create,
        "reset" => SpeakerOp::Reset,
        "delete" => SpeakerOp::Delete,
        "enroll" => {
            if row.try_get::<Option<String>, _>("e_id")?.is_none() {
                return Ok(None);
            }
            let emb: Vec<u8> = row.try_get("embedding")?;
            SpeakerOp::Enroll {
                enrollment: ReplicatedEnrollment {
                    id: uuid_col(row, "e_id")?,
                    created_at: time_col(row, "e_created_at")?,
                    hlc: hlc_from_sql(row.try_get("e_hlc")?)?,
                    audio_secs: row.try_get("audio_secs")?,
                    speech_secs: row.try_get("speech_secs")?,
                    audio_key: row.try_get("audio_key")?,
                    embedding: bytes_to_f32s(&emb).ok_or_else(|| corrupt("embedding", "length"))?,
                    passphrase: row.try_get("passphrase")?,
                },
            }
        }
        other => return Err(corrupt("change op", other)),
    };
    Ok(Some(SpeakerChange {
        seq: u64::try_from(seq).map_err(|e| corrupt("seq", e))?,
        hlc: hlc_from_sql(row.try_get("hlc")?)?,
        at: time_col(row, "at")?,
        profile: ProfileHeader {
            id: uuid_col(row, "id")?,
            resource_id: ResourceId(uuid_col(row, "resource_id")?),
            kind: ProfileKind::from_str(&kind).map_err(|e| corrupt("kind", e))?,
            locale: row.try_get("locale")?,
            created_at: time_col(row, "created_at")?,
            hlc: hlc_from_sql(row.try_get("p_hlc")?)?,
        },
        op,
    }))
}
