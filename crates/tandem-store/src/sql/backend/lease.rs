//! Job leases (both SQL backends): one `INSERT … ON CONFLICT DO UPDATE … WHERE` statement decides
//! who holds a lease, so concurrent nodes cannot both win (SQLite runs it under its write lock;
//! PostgreSQL locks the conflicting row and re-checks the condition on its newest version).
//! Concurrency slots count and insert in one transaction behind the backend's `lock_slots`.

use std::time::Duration;

use sqlx::Row;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{lock_slots, DbRow, SqlStore};
use crate::sql::format_time;
use crate::{Lease, Result, StoreError};

fn until(now: OffsetDateTime, ttl: Duration) -> Result<OffsetDateTime> {
    let ttl =
        time::Duration::try_from(ttl).map_err(|e| StoreError::db(format!("lease ttl: {e}")))?;
    Ok(now + ttl)
}

fn row_to_lease(row: &DbRow) -> Result<Lease> {
    let expires: String = row.try_get("expires_at")?;
    let generation: i64 = row.try_get("generation")?;
    Ok(Lease {
        job: row.try_get("job")?,
        holder: row.try_get("holder")?,
        expires_at: OffsetDateTime::parse(&expires, &Rfc3339)
            .map_err(|e| StoreError::db(format!("corrupt lease expiry: {e}")))?,
        generation: u64::try_from(generation)
            .map_err(|e| StoreError::db(format!("corrupt lease generation: {e}")))?,
    })
}

impl SqlStore {
    pub(super) async fn ls_acquire(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<Lease>> {
        let expires = format_time(until(now, ttl)?);
        // Taken when absent; retaken when expired or already ours. A new holder bumps the
        // generation; a holder retaking its own lease keeps it.
        let row = sqlx::query(
            "INSERT INTO job_leases (job, holder, expires_at, generation) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (job) DO UPDATE SET \
                 generation = job_leases.generation + \
                     CASE WHEN job_leases.holder <> excluded.holder THEN 1 ELSE 0 END, \
                 holder = excluded.holder, \
                 expires_at = excluded.expires_at \
             WHERE job_leases.expires_at <= $4 OR job_leases.holder = excluded.holder \
             RETURNING job, holder, expires_at, generation",
        )
        .bind(job)
        .bind(holder)
        .bind(&expires)
        .bind(format_time(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_lease).transpose()
    }

    pub(super) async fn ls_renew(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<bool> {
        let expires = format_time(until(now, ttl)?);
        let done = sqlx::query(
            "UPDATE job_leases SET expires_at = $1 WHERE job = $2 AND holder = $3 \
             AND expires_at > $4",
        )
        .bind(&expires)
        .bind(job)
        .bind(holder)
        .bind(format_time(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn ls_release(&self, job: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE job = $1 AND holder = $2")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn ls_get(&self, job: &str) -> Result<Option<Lease>> {
        let row = sqlx::query(
            "SELECT job, holder, expires_at, generation FROM job_leases WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_lease).transpose()
    }

    pub(super) async fn ls_acquire_slot(
        &self,
        resource: tandem_core::ResourceId,
        limit: u32,
        slot: uuid::Uuid,
        holder: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<bool> {
        let (lo, hi) = slot_range(resource);
        let now_text = format_time(now);
        let mut tx = self.pool.begin().await?;
        // Takers of this resource's slots queue here (SQLite: behind its write lock, taken by
        // the delete), so the count below and the insert are one step for every node sharing
        // the database.
        lock_slots(&mut tx, &lo).await?;
        // Lapsed slots (their node died) go first; the count ignores them anyway.
        sqlx::query("DELETE FROM job_leases WHERE job >= $1 AND job < $2 AND expires_at <= $3")
            .bind(&lo)
            .bind(&hi)
            .bind(&now_text)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO job_leases (job, holder, expires_at, generation) \
             SELECT $1, $2, $3, 1 WHERE \
                 (SELECT COUNT(*) FROM job_leases \
                  WHERE job >= $4 AND job < $5 AND expires_at > $6) < $7",
        )
        .bind(format!("{lo}{slot}"))
        .bind(holder)
        .bind(format_time(until(now, ttl)?))
        .bind(&lo)
        .bind(&hi)
        .bind(&now_text)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn ls_release_slot(
        &self,
        resource: tandem_core::ResourceId,
        slot: uuid::Uuid,
    ) -> Result<()> {
        let (lo, _) = slot_range(resource);
        sqlx::query("DELETE FROM job_leases WHERE job = $1")
            .bind(format!("{lo}{slot}"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The lease names of `resource`'s slots are `slot/<resource>/<uuid>`: every one sorts in
/// `[lo, hi)`, a range on the primary key.
fn slot_range(resource: tandem_core::ResourceId) -> (String, String) {
    (format!("slot/{resource}/"), format!("slot/{resource}0"))
}
