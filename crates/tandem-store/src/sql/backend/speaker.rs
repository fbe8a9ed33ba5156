//! Speaker profiles and enrollments (both SQL backends). Every mutation runs in one transaction
//! that also appends to `speaker_changes`, the origin log the pair region pulls, and first calls
//! the backend's `lock_speakers`: what SQLite's single writer gives for free (a profile's totals
//! recomputed from rows no concurrent transaction is changing, log `seq` in commit order) is a
//! transaction-scoped advisory lock on PostgreSQL. Each transaction also writes before it reads,
//! so on SQLite it holds the write lock from its first statement and never has to upgrade a read
//! lock (which would fail with SQLITE_BUSY under concurrent writers).
//!
//! Every mutation is stamped by the store's HLC and goes through the same state-based helpers
//! as changes applied from the pair (the `merge` module), so a local write and its replay
//! elsewhere leave identical rows.

use std::str::FromStr;

use sqlx::{Row, Transaction};
use tandem_core::ResourceId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::merge::{hlc_from_sql, hlc_sql, real, refresh_totals, tombstone_dead};
use super::{lock_speakers, Db, DbConn, DbRow, SqlStore};
use crate::speaker::{bytes_to_f32s, f32s_to_bytes};
use crate::sql::{conflict_or, format_time};
use crate::{
    Enrollment, EnrollmentStatus, Hlc, NewEnrollment, NewProfile, ProfileKind, Result,
    SpeakerProfile, StoreError,
};

const PROFILE_COLUMNS: &str = "p.id, p.resource_id, p.kind, p.locale, p.created_at, p.updated_at, \
     p.enrollments_count, p.enrollments_secs, p.speech_secs, p.status, p.signature, p.passphrase";
pub(super) const ENROLLMENT_COLUMNS: &str =
    "e.id, e.profile_id, e.created_at, e.audio_secs, e.speech_secs, e.audio_key, e.embedding, \
     e.passphrase";
/// A live profile of one resource and kind: `$1` resource, `$2` kind, `$3` id.
const OWNED: &str = "p.resource_id = $1 AND p.kind = $2 AND p.id = $3 AND p.deleted_at IS NULL";

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        what: format!("speaker profile {id}"),
    }
}

impl SqlStore {
    pub(super) async fn sp_create_profile(&self, p: NewProfile) -> Result<SpeakerProfile> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        lock_speakers(&mut tx).await?;
        let hlc = self.clock.now();
        sqlx::query(
            "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, updated_at, hlc) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(p.id.to_string())
        .bind(p.resource_id.to_string())
        .bind(p.kind.as_str())
        .bind(&p.locale)
        .bind(&now)
        .bind(hlc_sql(hlc)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("speaker profile {}", p.id)))?;
        log_change(&mut tx, &now, hlc, p.resource_id, p.id, "create", None).await?;
        let profile = fetch_profile(&mut tx, p.resource_id, p.kind, p.id).await?;
        tx.commit().await?;
        profile.ok_or_else(|| StoreError::db("profile vanished right after insert"))
    }

    pub(super) async fn sp_get_profile(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Option<SpeakerProfile>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM speaker_profiles p WHERE {OWNED}");
        let row = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(row_to_profile).transpose()
    }

    pub(super) async fn sp_list_profiles(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SpeakerProfile>> {
        // Keyset paging on (created_at, id); the anchor row stays even when tombstoned.
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM speaker_profiles p \
             WHERE p.resource_id = $1 AND p.kind = $2 AND p.deleted_at IS NULL \
             AND ($3 IS NULL OR (p.created_at, p.id) > \
                 (SELECT a.created_at, a.id FROM speaker_profiles a WHERE a.id = $3)) \
             ORDER BY p.created_at, p.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_profile).collect()
    }

    pub(super) async fn sp_add_enrollment(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        e: NewEnrollment,
        required_speech_secs: f64,
    ) -> Result<SpeakerProfile> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        lock_speakers(&mut tx).await?;
        let hlc = self.stamp_after(&mut tx, e.profile_id).await?;
        // Insert first (only if the profile is live and owned): takes SQLite's write lock at
        // once. Born a tombstone only if a reset with a later HLC won a race with this insert (merge
        // rule 3), exactly as it would be where this change is replayed.
        let sql = format!(
            "INSERT INTO speaker_enrollments \
             (id, profile_id, created_at, audio_secs, speech_secs, audio_key, embedding, hlc, \
              deleted_at, passphrase) \
             SELECT $4, p.id, $5, $6, $7, $8, $9, $10, \
                 CASE WHEN $10 <= p.reset_hlc THEN $5 ELSE NULL END, $11 \
             FROM speaker_profiles p WHERE {OWNED}"
        );
        let done = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(e.profile_id.to_string())
            .bind(e.id.to_string())
            .bind(&now)
            .bind(real(e.audio_secs))
            .bind(real(e.speech_secs))
            .bind(&e.audio_key)
            .bind(f32s_to_bytes(&e.embedding))
            .bind(hlc_sql(hlc)?)
            .bind(&e.passphrase)
            .execute(&mut *tx)
            .await
            .map_err(|err| conflict_or(err, || format!("enrollment {}", e.id)))?;
        if done.rows_affected() == 0 {
            return Err(not_found(e.profile_id));
        }
        log_change(
            &mut tx,
            &now,
            hlc,
            resource,
            e.profile_id,
            "enroll",
            Some(e.id),
        )
        .await?;
        refresh_totals(&mut tx, e.profile_id, Some(required_speech_secs)).await?;
        let profile = fetch_profile(&mut tx, resource, kind, e.profile_id)
            .await?
            .ok_or_else(|| not_found(e.profile_id))?;
        // A text-dependent profile keeps one passphrase: an enrollment that raced another with
        // a different phrase (the caller checked before it embedded) is refused, not stored.
        if kind == ProfileKind::TextDependentVerification && profile.passphrase != e.passphrase {
            return Err(StoreError::Conflict {
                what: format!(
                    "enrollment {}: profile {} has another passphrase",
                    e.id, e.profile_id
                ),
            });
        }
        tx.commit().await?;
        Ok(profile)
    }

    pub(super) async fn sp_list_enrollments(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
    ) -> Result<Vec<Enrollment>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT p.id FROM speaker_profiles p WHERE {OWNED}");
        let exists = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(not_found(id));
        }
        live_enrollments(&mut conn, id).await
    }

    /// Reset (`delete == false`) or delete a profile: record the reset or delete at a new HLC,
    /// then tombstone what the merge rules say is dead (everything, for a local change).
    pub(super) async fn sp_remove(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
        delete: bool,
    ) -> Result<Vec<Enrollment>> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        lock_speakers(&mut tx).await?;
        let hlc = self.stamp_after(&mut tx, id).await?;
        let sql = if delete {
            format!(
                "UPDATE speaker_profiles AS p SET deleted_hlc = $4, deleted_at = $5 WHERE {OWNED}"
            )
        } else {
            format!(
                "UPDATE speaker_profiles AS p SET \
                 reset_at = CASE WHEN p.reset_hlc < $4 THEN $5 ELSE p.reset_at END, \
                 reset_hlc = CASE WHEN p.reset_hlc < $4 THEN $4 ELSE p.reset_hlc END \
                 WHERE {OWNED}"
            )
        };
        let done = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .bind(hlc_sql(hlc)?)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        let removed = tombstone_dead(&mut tx, id, &now).await?;
        let op = if delete { "delete" } else { "reset" };
        log_change(&mut tx, &now, hlc, resource, id, op, None).await?;
        refresh_totals(&mut tx, id, None).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

impl SqlStore {
    /// A stamp for a change to profile `id`, later than every stamp the database holds for that
    /// profile (its own, its reset and delete, its enrollments'). Taken under the speaker lock.
    ///
    /// Nodes that share one database each stamp with their own clock, and the node that applies
    /// the pair's changes raises stamps past the others' clocks (a pair ahead in time, or hosts
    /// with skewed clocks). The merge rules compare stamps within a profile, so a change made
    /// after a stored stamp must be stamped after it, or it is merged as if it came first: an
    /// enrollment after a newer reset would be born deleted.
    async fn stamp_after(&self, tx: &mut Transaction<'_, Db>, id: Uuid) -> Result<Hlc> {
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT max(h) FROM ( \
                 SELECT max(hlc) AS h FROM speaker_profiles WHERE id = $1 \
                 UNION ALL SELECT max(reset_hlc) FROM speaker_profiles WHERE id = $1 \
                 UNION ALL SELECT max(deleted_hlc) FROM speaker_profiles WHERE id = $1 \
                 UNION ALL SELECT max(hlc) FROM speaker_enrollments WHERE profile_id = $1) \
             AS stamps",
        )
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await?;
        if let Some(newest) = newest {
            self.clock.observe(hlc_from_sql(newest)?);
        }
        Ok(self.clock.now())
    }
}

async fn log_change(
    tx: &mut Transaction<'_, Db>,
    at: &str,
    hlc: Hlc,
    resource: ResourceId,
    profile: Uuid,
    op: &str,
    enrollment: Option<Uuid>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO speaker_changes (at, resource_id, profile_id, op, enrollment_id, hlc) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(resource.to_string())
    .bind(profile.to_string())
    .bind(op)
    .bind(enrollment.map(|e| e.to_string()))
    .bind(hlc_sql(hlc)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn fetch_profile(
    tx: &mut Transaction<'_, Db>,
    resource: ResourceId,
    kind: ProfileKind,
    id: Uuid,
) -> Result<Option<SpeakerProfile>> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM speaker_profiles p WHERE {OWNED}");
    let row = sqlx::query(&sql)
        .bind(resource.to_string())
        .bind(kind.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(row_to_profile).transpose()
}

pub(super) async fn live_enrollments(conn: &mut DbConn, id: Uuid) -> Result<Vec<Enrollment>> {
    let sql = format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM speaker_enrollments e \
         WHERE e.profile_id = $1 AND e.deleted_at IS NULL ORDER BY e.created_at, e.id"
    );
    let rows = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row_to_enrollment).collect()
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::db(format!("corrupt {what}: {e}"))
}

pub(super) fn uuid_col(row: &DbRow, col: &str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(col, e))
}

pub(super) fn time_col(row: &DbRow, col: &str) -> Result<OffsetDateTime> {
    let s: String = row.try_get(col)?;
    OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| corrupt(col, e))
}

fn row_to_profile(row: &DbRow) -> Result<SpeakerProfile> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let count: i64 = row.try_get("enrollments_count")?;
    let signature: Option<Vec<u8>> = row.try_get("signature")?;
    Ok(SpeakerProfile {
        id: uuid_col(row, "id")?,
        resource_id: ResourceId(uuid_col(row, "resource_id")?),
        kind: ProfileKind::from_str(&kind).map_err(|e| corrupt("kind", e))?,
        locale: row.try_get("locale")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
        enrollments_count: u32::try_from(count).map_err(|e| corrupt("enrollments_count", e))?,
        enrollments_secs: row.try_get("enrollments_secs")?,
        speech_secs: row.try_get("speech_secs")?,
        status: match status.as_str() {
            "Enrolled" => EnrollmentStatus::Enrolled,
            _ => EnrollmentStatus::Enrolling,
        },
        signature: match signature {
            Some(b) => bytes_to_f32s(&b).ok_or_else(|| corrupt("signature", "length"))?,
            None => Vec::new(),
        },
        passphrase: row.try_get("passphrase")?,
    })
}

pub(super) fn row_to_enrollment(row: &DbRow) -> Result<Enrollment> {
    let emb: Vec<u8> = row.try_get("embedding")?;
    Ok(Enrollment {
        id: uuid_col(row, "id")?,
        profile_id: uuid_col(row, "profile_id")?,
        created_at: time_col(row, "created_at")?,
        audio_secs: row.try_get("audio_secs")?,
        speech_secs: row.try_get("speech_secs")?,
        audio_key: row.try_get("audio_key")?,
        embedding: bytes_to_f32s(&emb).ok_or_else(|| corrupt("embedding", "length"))?,
        passphrase: row.try_get("passphrase")?,
    })
}
