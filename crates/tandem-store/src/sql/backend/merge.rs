//! The state-based merge steps shared by local mutations and changes applied from the pair
//! (the rules are in [`crate::replication`]). Each step reads the profile's current markers and
//! writes what they imply, so the result does not depend on the order changes arrive in.

use sqlx::{Row, Transaction};
use uuid::Uuid;

use super::speaker::{corrupt, live_enrollments, row_to_enrollment, ENROLLMENT_COLUMNS};
use super::Db;
use crate::speaker::f32s_to_bytes;
use crate::{
    mean_signature, Enrollment, EnrollmentStatus, Hlc, ProfileKind, Result, StoreError,
    TEXT_DEPENDENT_ENROLLMENTS,
};

/// An HLC as stored (INTEGER/BIGINT is signed 64-bit; real stamps stay far below `i64::MAX`).
pub(super) fn hlc_sql(h: Hlc) -> Result<i64> {
    i64::try_from(h.0).map_err(|_| StoreError::db(format!("HLC {} out of range", h.0)))
}

/// The inverse of [`hlc_sql`].
pub(super) fn hlc_from_sql(v: i64) -> Result<Hlc> {
    u64::try_from(v).map(Hlc).map_err(|_| corrupt("hlc", v))
}

/// A REAL as SQLite stores it: PostgreSQL keeps the sign of a zero, SQLite does not (and Rust
/// sums an empty iterator to -0.0), so -0.0 is written as 0.0 and both backends hold the same
/// bits (digests and exports compare bytes).
pub(super) fn real(v: f64) -> f64 {
    v + 0.0
}

/// Raises a profile's reset marker to `(hlc, at)` if that is newer (ties broken by the later
/// time, so the result does not depend on the order resets arrive in). `true` if it changed.
pub(super) async fn raise_reset(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    hlc: Hlc,
    at: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE speaker_profiles SET reset_hlc = $2, reset_at = $3 WHERE id = $1 \
         AND (reset_hlc < $2 OR (reset_hlc = $2 AND (reset_at IS NULL OR reset_at < $3)))",
    )
    .bind(id.to_string())
    .bind(hlc_sql(hlc)?)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a delete at `(hlc, at)` unless an earlier one is recorded (ties broken by the earlier
/// time). `true` if it changed.
pub(super) async fn record_delete(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    hlc: Hlc,
    at: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE speaker_profiles SET deleted_hlc = $2, deleted_at = $3 WHERE id = $1 \
         AND (deleted_hlc IS NULL OR deleted_hlc > $2 OR (deleted_hlc = $2 AND deleted_at > $3))",
    )
    .bind(id.to_string())
    .bind(hlc_sql(hlc)?)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Tombstones (at `now`) the live enrollments of a profile that the merge rules say are dead:
/// all of them if the profile is deleted, else those with `hlc <= reset_hlc`. Returns them.
pub(super) async fn tombstone_dead(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    now: &str,
) -> Result<Vec<Enrollment>> {
    const DEAD: &str = "EXISTS (SELECT 1 FROM speaker_profiles p WHERE p.id = $1 \
         AND (p.deleted_hlc IS NOT NULL OR speaker_enrollments.hlc <= p.reset_hlc))";
    let sql = format!(
        "SELECT {ENROLLMENT_COLUMNS} FROM speaker_enrollments e \
         JOIN speaker_profiles p ON p.id = e.profile_id \
         WHERE e.profile_id = $1 AND e.deleted_at IS NULL \
         AND (p.deleted_hlc IS NOT NULL OR e.hlc <= p.reset_hlc) \
         ORDER BY e.created_at, e.id"
    );
    let rows = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_all(&mut **tx)
        .await?;
    let dead = rows
        .iter()
        .map(row_to_enrollment)
        .collect::<Result<Vec<_>>>()?;
    if !dead.is_empty() {
        let sql = format!(
            "UPDATE speaker_enrollments SET deleted_at = $2 \
             WHERE profile_id = $1 AND deleted_at IS NULL AND {DEAD}"
        );
        sqlx::query(&sql)
            .bind(id.to_string())
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(dead)
}

/// Recomputes a profile's totals, signature, status and `updated_at` from its rows alone, so two
/// replicas holding the same rows compute the same bytes: sums in `(created_at, id)` order;
/// `Enrolled` iff there are live enrollments with at least `required_speech_secs` of speech
/// (text-dependent: iff there are [`TEXT_DEPENDENT_ENROLLMENTS`], and the passphrase is the
/// earliest live enrollment's);
/// `updated_at` the latest of the creation, enrollment, reset and delete times. `required` is
/// remembered on the profile; `None` uses the remembered one (none yet: `Enrolling`).
pub(super) async fn refresh_totals(
    tx: &mut Transaction<'_, Db>,
    id: Uuid,
    required: Option<f64>,
) -> Result<()> {
    let live = live_enrollments(tx, id).await?;
    let row = sqlx::query(
        "SELECT p.kind, p.created_at, p.reset_at, p.deleted_at, p.required_speech_secs, \
         (SELECT max(e.created_at) FROM speaker_enrollments e WHERE e.profile_id = p.id) \
             AS last_enrolled \
         FROM speaker_profiles p WHERE p.id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    // Stored times share one fixed-width UTC format, so text order is time order.
    let mut updated_at: String = row.try_get("created_at")?;
    for col in ["reset_at", "deleted_at", "last_enrolled"] {
        if let Some(t) = row.try_get::<Option<String>, _>(col)? {
            updated_at = updated_at.max(t);
        }
    }
    let required = match required {
        Some(r) => r,
        None => row
            .try_get::<Option<f64>, _>("required_speech_secs")?
            .unwrap_or(f64::INFINITY),
    };
    let audio: f64 = live.iter().map(|e| e.audio_secs).sum();
    let speech: f64 = live.iter().map(|e| e.speech_secs).sum();
    let signature = mean_signature(live.iter().map(|e| e.embedding.as_slice()));
    let kind: String = row.try_get("kind")?;
    let text_dependent = kind == ProfileKind::TextDependentVerification.as_str();
    let enrolled = if text_dependent {
        live.len() >= TEXT_DEPENDENT_ENROLLMENTS as usize
    } else {
        !live.is_empty() && speech >= required
    };
    let status = if enrolled {
        EnrollmentStatus::Enrolled
    } else {
        EnrollmentStatus::Enrolling
    };
    let passphrase = live.first().and_then(|e| e.passphrase.clone());
    sqlx::query(
        "UPDATE speaker_profiles SET enrollments_count = $1, enrollments_secs = $2, \
         speech_secs = $3, status = $4, signature = $5, updated_at = $6, \
         required_speech_secs = $7, passphrase = $9 WHERE id = $8",
    )
    .bind(live.len() as i64)
    .bind(real(audio))
    .bind(real(speech))
    .bind(status.as_str())
    .bind((!signature.is_empty()).then(|| f32s_to_bytes(&signature)))
    .bind(updated_at)
    .bind(required.is_finite().then_some(required))
    .bind(id.to_string())
    .bind(passphrase)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
