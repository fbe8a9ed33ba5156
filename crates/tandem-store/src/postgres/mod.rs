//! The PostgreSQL backend of [`MetaStore`](crate::MetaStore), for a region whose nodes share one
//! database (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`). The same tables and columns as
//! SQLite (`migrations/postgres/`), and the same code: the metadata logic is the shared source in
//! `src/sql/backend/`, compiled into this module (see [`crate::sql`]). What lives here is the
//! connection, migrations, the catalog reading of export and import (`catalog.rs`), and the hooks
//! for what SQLite gets from its single writer:
//!
//! - SQLite serialises every write transaction. PostgreSQL runs them at once, so each speaker
//!   mutation (and each batch applied from the pair) first takes one transaction-scoped
//!   advisory lock ([`SPEAKER_LOCK`]): mutations of a profile never interleave, and
//!   `speaker_changes.seq` (a sequence, handed out at insert) is in commit order, as the pair's
//!   reader of the log needs.
//! - Reads that must agree across statements (an asset page and its total, the speaker digest,
//!   an export) run in one `REPEATABLE READ` transaction.
//! - Syncs of the pair's resources take [`RESOURCE_SYNC_LOCK`], and takers of one resource's
//!   concurrency slots an advisory lock keyed by that resource.
//! - Migrations run under a session advisory lock ([`MIGRATE_LOCK`]), so nodes opening one
//!   database at once migrate it once.

#![allow(
    clippy::duplicate_mod,
    reason = "src/sql/backend/ is one source compiled into both backends on purpose (see crate::sql)"
)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Transaction};

crate::sql::backend_modules!();
mod catalog;

use crate::{HlcClock, Result, StoreError, METADATA_FORMAT_VERSION};

/// The names the shared source in `src/sql/backend/` reaches this backend by.
type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type DbConn = PgConnection;
type DbPool = PgPool;
type SqlStore = PgMetaStore;

const SUPPORTED: &str = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The session advisory lock held while checking the format and migrating ("TANDEMMG").
const MIGRATE_LOCK: i64 = 0x5441_4e44_454d_4d47;
/// The transaction advisory lock every speaker write takes first ("TANDEMSP").
const SPEAKER_LOCK: i64 = 0x5441_4e44_454d_5350;
/// The transaction advisory lock that serialises syncs of the pair's resources ("TANDEMRS").
const RESOURCE_SYNC_LOCK: i64 = 0x5441_4e44_454d_5253;

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
async fn xact_lock(conn: &mut DbConn, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// A read-only transaction on one snapshot, so that statements that must agree (an asset page
/// and its total, the speaker digest, an export) see the same committed state.
async fn begin_snapshot(pool: &DbPool) -> Result<Transaction<'static, Db>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?)
}

/// Serialises speaker writes (and batches applied from the pair) on [`SPEAKER_LOCK`]: a
/// profile's totals are recomputed from rows no concurrent transaction is changing, and log
/// `seq` is handed out in commit order.
async fn lock_speakers(conn: &mut DbConn) -> Result<()> {
    xact_lock(conn, SPEAKER_LOCK).await
}

/// Serialises syncs of the pair's resources: what a sync reads stays what is there until its
/// commit.
async fn lock_resource_sync(conn: &mut DbConn) -> Result<()> {
    xact_lock(conn, RESOURCE_SYNC_LOCK).await
}

/// Serialises the takers of one resource's concurrency slots (the lease names in `range`), so
/// that counting the held slots and inserting one are a single step for every node.
async fn lock_slots(conn: &mut DbConn, range: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(range)
        .execute(conn)
        .await?;
    Ok(())
}
