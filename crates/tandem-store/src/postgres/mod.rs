//! The PostgreSQL backend of [`MetaStore`], for a region whose nodes share one database
//! (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`). It is the SQLite backend's port: the same
//! tables and columns (`migrations/postgres/`), the same portable SQL through `sqlx`, and the
//! same rules; only what SQLite gets from its single writer is spelled out here:
//!
//! - SQLite serialises every write transaction. PostgreSQL runs them at once, so each speaker
//!   mutation (and each batch applied from the pair) first takes one transaction-scoped
//!   advisory lock ([`SPEAKER_LOCK`]): mutations of a profile never interleave, and
//!   `speaker_changes.seq` (a sequence, handed out at insert) is in commit order, as the pair's
//!   reader of the log needs.
//! - Reads that must agree across statements (an asset page and its total, the speaker digest,
//!   an export) run in one `REPEATABLE READ` transaction.
//! - Migrations run under a session advisory lock ([`MIGRATE_LOCK`]), so nodes opening one
//!   database at once migrate it once.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use tandem_core::{RegionName, ResourceId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod asset;
mod digest;
mod export;
mod lease;
mod merge;
mod queries;
mod replication;
mod speaker;

use crate::{HlcClock, Resource, Result, StoreError, METADATA_FORMAT_VERSION};

const SUPPORTED: &str = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The session advisory lock held while checking the format and migrating ("TANDEMMG").
const MIGRATE_LOCK: i64 = 0x5441_4e44_454d_4d47;
/// The transaction advisory lock every speaker write takes first ("TANDEMSP").
pub(crate) const SPEAKER_LOCK: i64 = 0x5441_4e44_454d_5350;
/// The transaction advisory lock that serialises syncs of the pair's resources ("TANDEMRS").
const RESOURCE_SYNC_LOCK: i64 = 0x5441_4e44_454d_5253;

const RESOURCE_COLUMNS: &str = "r.id, r.region, r.name, r.concurrency_limit, r.created_at";

/// Resource metadata in a PostgreSQL database, shared by every node of a region. Writes are
/// committed (durable, as the server's `synchronous_commit` says) before they return.
///
/// Like [`SqliteMetaStore`](crate::SqliteMetaStore), the store owns the [`HlcClock`] that stamps
/// its speaker changes, started past the newest stamp in the database when it is opened.
#[derive(Debug, Clone)]
pub struct PgMetaStore {
    pool: PgPool,
    clock: Arc<HlcClock>,
}

impl PgMetaStore {
    /// Connects to the database at a `postgres://` URL, refuses one written by a newer build,
    /// and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, true).await
    }

    /// [`PgMetaStore::open`], migrating only when `migrate` is set; otherwise a database behind
    /// this build's format is refused with [`StoreError::MigrationNeeded`].
    pub async fn open_with(url: &str, migrate: bool) -> Result<Self> {
        let opts = connect_options(url)?;
        {
            // Check and migrate on a connection of its own, under the migration lock: a second
            // node opening at the same moment waits, then finds the migrations applied. The
            // lock is the session's; closing the connection (even by dropping it on an error)
            // releases it.
            let mut conn = opts.connect().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATE_LOCK)
                .execute(&mut conn)
                .await?;
            let checked = check_and_migrate(&mut conn, migrate).await;
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATE_LOCK)
                .execute(&mut conn)
                .await;
            conn.close().await.ok();
            checked?;
            unlocked?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        let newest = replication::newest_hlc(&pool).await?;
        tracing::debug!("opened PostgreSQL metadata database");
        Ok(Self {
            pool,
            clock: Arc::new(HlcClock::starting_after(newest)),
        })
    }

    /// Applies pending migrations to the database at `url`: returns the format before (0 for a
    /// new database) and after. What `tandem migrate` runs.
    pub async fn migrate_url(url: &str) -> Result<(u32, u32)> {
        let before = match Self::open_with(url, false).await {
            Ok(s) => {
                let v = crate::MetaStore::schema_version(&s).await?;
                s.pool.close().await;
                v
            }
            Err(StoreError::MigrationNeeded { found, .. }) => found,
            Err(e) => return Err(e),
        };
        let store = Self::open(url).await?;
        let after = crate::MetaStore::schema_version(&store).await?;
        store.pool.close().await;
        Ok((before, after))
    }

    /// The clock that stamps this store's speaker changes.
    pub fn clock(&self) -> &HlcClock {
        &self.clock
    }

    /// The underlying pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

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

fn connect_options(url: &str) -> Result<PgConnectOptions> {
    let unsupported = || StoreError::UnsupportedUrl {
        url: url.to_owned(),
        supported: SUPPORTED,
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(unsupported());
    }
    PgConnectOptions::from_str(url).map_err(|_| unsupported())
}

/// Under the migration lock: refuse a newer format, then migrate (or, when told not to, refuse
/// an older one).
async fn check_and_migrate(conn: &mut PgConnection, migrate: bool) -> Result<()> {
    let found = recorded_format(conn).await?;
    if let Some(found) = found.filter(|f| *f > METADATA_FORMAT_VERSION) {
        return Err(StoreError::FormatTooNew {
            found,
            supported: METADATA_FORMAT_VERSION,
        });
    }
    if !migrate {
        let found = found.unwrap_or(0);
        if found < METADATA_FORMAT_VERSION {
            return Err(StoreError::MigrationNeeded {
                found,
                required: METADATA_FORMAT_VERSION,
            });
        }
        return Ok(());
    }
    MIGRATOR.run_direct(conn).await?;
    match recorded_format(conn).await? {
        Some(v) if v > METADATA_FORMAT_VERSION => Err(StoreError::FormatTooNew {
            found: v,
            supported: METADATA_FORMAT_VERSION,
        }),
        Some(_) => Ok(()),
        None => Err(StoreError::db("tandem_meta missing after migrating")),
    }
}

/// The format recorded in the database; `None` for a new, empty one.
async fn recorded_format(conn: &mut PgConnection) -> Result<Option<u32>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('tandem_meta') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let v: i64 = sqlx::query_scalar("SELECT format_version FROM tandem_meta WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    u32::try_from(v)
        .map(Some)
        .map_err(|e| StoreError::db(format!("corrupt format_version: {e}")))
}

/// Takes a transaction-scoped advisory lock, released at commit or rollback.
async fn xact_lock(conn: &mut PgConnection, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Maps a driver error, turning unique violations into [`StoreError::Conflict`].
fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => e.into(),
    }
}

/// The stored time format, shared with SQLite: RFC 3339, UTC, 9 fractional digits.
fn format_time(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("UTC time formats")
}

fn row_to_resource(row: &PgRow) -> Result<Resource> {
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
