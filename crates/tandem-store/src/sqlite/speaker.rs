//! Speaker profiles and enrollments in SQLite. Every mutation runs in one transaction that also
//! appends to `speaker_changes`, the ordered log a replicator will read. Each transaction writes
//! before it reads, so it holds SQLite's write lock from its first statement and never has to
//! upgrade a read lock (which would fail with SQLITE_BUSY under concurrent writers).

use std::str::FromStr;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use tandem_core::ResourceId;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{format_time, SqliteMetaStore};
use crate::speaker::{bytes_to_f32s, f32s_to_bytes};
use crate::{
    mean_signature, Enrollment, EnrollmentStatus, NewEnrollment, NewProfile, ProfileKind, Result,
    SpeakerProfile, StoreError,
};

const PROFILE_COLUMNS: &str = "p.id, p.resource_id, p.kind, p.locale, p.created_at, p.updated_at, \
     p.enrollments_count, p.enrollments_secs, p.speech_secs, p.status, p.signature";
const ENROLLMENT_COLUMNS: &str =
    "e.id, e.profile_id, e.created_at, e.audio_secs, e.speech_secs, e.audio_key, e.embedding";
/// A live profile of one resource and kind: `$1` resource, `$2` kind, `$3` id.
const OWNED: &str = "p.resource_id = $1 AND p.kind = $2 AND p.id = $3 AND p.deleted_at IS NULL";

fn not_found(id: Uuid) -> StoreError {
    StoreError::NotFound {
        what: format!("speaker profile {id}"),
    }
}

impl SqliteMetaStore {
    pub(super) async fn sp_create_profile(&self, p: NewProfile) -> Result<SpeakerProfile> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(p.id.to_string())
        .bind(p.resource_id.to_string())
        .bind(p.kind.as_str())
        .bind(&p.locale)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| super::conflict_or(e, || format!("speaker profile {}", p.id)))?;
        log_change(&mut tx, &now, p.resource_id, p.id, "create", None).await?;
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
        // Insert first (only if the profile is live and owned): takes the write lock at once.
        let sql = format!(
            "INSERT INTO speaker_enrollments \
             (id, profile_id, created_at, audio_secs, speech_secs, audio_key, embedding) \
             SELECT $4, p.id, $5, $6, $7, $8, $9 FROM speaker_profiles p WHERE {OWNED}"
        );
        let done = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(e.profile_id.to_string())
            .bind(e.id.to_string())
            .bind(&now)
            .bind(e.audio_secs)
            .bind(e.speech_secs)
            .bind(&e.audio_key)
            .bind(f32s_to_bytes(&e.embedding))
            .execute(&mut *tx)
            .await
            .map_err(|err| super::conflict_or(err, || format!("enrollment {}", e.id)))?;
        if done.rows_affected() == 0 {
            return Err(not_found(e.profile_id));
        }
        log_change(&mut tx, &now, resource, e.profile_id, "enroll", Some(e.id)).await?;
        refresh_totals(&mut tx, e.profile_id, &now, required_speech_secs).await?;
        let profile = fetch_profile(&mut tx, resource, kind, e.profile_id).await?;
        tx.commit().await?;
        profile.ok_or_else(|| not_found(e.profile_id))
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

    /// Reset (`delete == false`) or delete a profile: tombstone its enrollments (and itself).
    pub(super) async fn sp_remove(
        &self,
        resource: ResourceId,
        kind: ProfileKind,
        id: Uuid,
        delete: bool,
    ) -> Result<Vec<Enrollment>> {
        let now = format_time(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE speaker_profiles AS p SET updated_at = $4, \
             deleted_at = CASE WHEN $5 THEN $4 ELSE NULL END WHERE {OWNED}"
        );
        let done = sqlx::query(&sql)
            .bind(resource.to_string())
            .bind(kind.as_str())
            .bind(id.to_string())
            .bind(&now)
            .bind(delete)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        let removed = live_enrollments(&mut tx, id).await?;
        sqlx::query(
            "UPDATE speaker_enrollments SET deleted_at = $1 \
             WHERE profile_id = $2 AND deleted_at IS NULL",
        )
        .bind(&now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let op = if delete { "delete" } else { "reset" };
        log_change(&mut tx, &now, resource, id, op, None).await?;
        refresh_totals(&mut tx, id, &now, f64::INFINITY).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

async fn log_change(
    tx: &mut Transaction<'_, Sqlite>,
    at: &str,
    resource: ResourceId,
    profile: Uuid,
    op: &str,
    enrollment: Option<Uuid>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO speaker_changes (at, resource_id, profile_id, op, enrollment_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(at)
    .bind(resource.to_string())
    .bind(profile.to_string())
    .bind(op)
    .bind(enrollment.map(|e| e.to_string()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Recomputes a profile's totals, signature and status from its live enrollments.
async fn refresh_totals(
    tx: &mut Transaction<'_, Sqlite>,
    id: Uuid,
    now: &str,
    required_speech_secs: f64,
) -> Result<()> {
    let live = live_enrollments(tx, id).await?;
    let audio: f64 = live.iter().map(|e| e.audio_secs).sum();
    let speech: f64 = live.iter().map(|e| e.speech_secs).sum();
    let signature = mean_signature(live.iter().map(|e| e.embedding.as_slice()));
    let status = if !live.is_empty() && speech >= required_speech_secs {
        EnrollmentStatus::Enrolled
    } else {
        EnrollmentStatus::Enrolling
    };
    sqlx::query(
        "UPDATE speaker_profiles SET enrollments_count = $1, enrollments_secs = $2, \
         speech_secs = $3, status = $4, signature = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(live.len() as i64)
    .bind(audio)
    .bind(speech)
    .bind(status.as_str())
    .bind((!signature.is_empty()).then(|| f32s_to_bytes(&signature)))
    .bind(now)
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn fetch_profile(
    tx: &mut Transaction<'_, Sqlite>,
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

async fn live_enrollments(conn: &mut sqlx::SqliteConnection, id: Uuid) -> Result<Vec<Enrollment>> {
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

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::db(format!("corrupt {what}: {e}"))
}

fn uuid_col(row: &SqliteRow, col: &str) -> Result<Uuid> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(col, e))
}

fn time_col(row: &SqliteRow, col: &str) -> Result<OffsetDateTime> {
    let s: String = row.try_get(col)?;
    OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| corrupt(col, e))
}

fn row_to_profile(row: &SqliteRow) -> Result<SpeakerProfile> {
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
    })
}

fn row_to_enrollment(row: &SqliteRow) -> Result<Enrollment> {
    let emb: Vec<u8> = row.try_get("embedding")?;
    Ok(Enrollment {
        id: uuid_col(row, "id")?,
        profile_id: uuid_col(row, "profile_id")?,
        created_at: time_col(row, "created_at")?,
        audio_secs: row.try_get("audio_secs")?,
        speech_secs: row.try_get("speech_secs")?,
        audio_key: row.try_get("audio_key")?,
        embedding: bytes_to_f32s(&emb).ok_or_else(|| corrupt("embedding", "length"))?,
    })
}
