//! The SQLite backend of [`MetaStore`]. What is SQLite's own lives here: the URL, the pragmas,
//! migrations, the busy retry on open, and the hooks of [`crate::sql`]: SQLite has a single
//! writer, so a write transaction that writes before it reads is already serialised, and the
//! lock hooks are no-ops (or a no-op write, where the first statement would be a read). The
//! metadata logic is the shared source in `src/sql/backend/`, compiled into this module.

#![allow(
    clippy::duplicate_mod,
    reason = "src/sql/backend/ is one source compiled into both backends on purpose (see crate::sql)"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Transaction;

crate::sql::backend_modules!();
mod catalog;
#[cfg(test)]
mod tests;

use crate::{HlcClock, MetaStore, Result, StoreError};

/// The names the shared source in `src/sql/backend/` reaches this backend by.
type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type DbConn = sqlx::SqliteConnection;
type DbPool = SqlitePool;
type SqlStore = SqliteMetaStore;

/// The metadata format version this build writes and the newest it reads.
pub const METADATA_FORMAT_VERSION: u32 = 8;

/// The oldest metadata format whose exports this build imports: the migrations after it only
/// relaxed constraints (format 7: more asset kinds) or added tables that exports leave out
/// (format 8: job leases), so such an export's tables and columns are this store's.
pub const METADATA_IMPORTS_SINCE: u32 = 6;

const SUPPORTED: &str = "sqlite://PATH (e.g. sqlite:///var/lib/tandem/tandem.db)";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Resource metadata in a SQLite file, in WAL mode with `synchronous=FULL`: a write that returned
/// `Ok` is on disk. Several processes may open the same file at once.
///
/// The store owns the [`HlcClock`] that stamps its speaker changes, started past the newest
/// stamp in the database when it is opened.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    pool: SqlitePool,
    clock: Arc<HlcClock>,
}

impl SqliteMetaStore {
    /// Opens (creating if missing, with its parent directory) the database at a `sqlite://PATH`
    /// URL, refuses one written by a newer build, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, true).await
    }

    /// [`SqliteMetaStore::open`], migrating only when `migrate` is set; otherwise a database
    /// behind this build's format is refused with [`StoreError::MigrationNeeded`] (nodes that
    /// share a database leave migrating to `tandem migrate`).
    pub async fn open_with(url: &str, migrate: bool) -> Result<Self> {
        let path = parse_url(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::db(format!("creating {}: {e}", dir.display())))?;
        }
        // Two processes (the server and the CLI) may open a fresh file at the same moment. The
        // switch to WAL mode needs an exclusive lock and does not wait on the busy handler, so
        // the loser gets SQLITE_BUSY at once: retry the whole open, briefly.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut delay = Duration::from_millis(5);
        loop {
            match Self::try_open(&path, migrate).await {
                Ok(store) => {
                    tracing::debug!(path = %path.display(), "opened metadata database");
                    return Ok(store);
                }
                Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(path = %path.display(), ?delay, "database busy while opening; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn try_open(
        path: &std::path::Path,
        migrate: bool,
    ) -> std::result::Result<Self, OpenError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(OpenError::Sql)?;
        let mut store = Self {
            pool,
            clock: Arc::default(),
        };
        store.check_format().await.map_err(OpenError::Store)?;
        if migrate {
            store.migrate().await?;
            store.check_format().await.map_err(OpenError::Store)?;
        } else {
            let found = store
                .recorded_format()
                .await
                .map_err(OpenError::Store)?
                .unwrap_or(0);
            if found < METADATA_FORMAT_VERSION {
                return Err(OpenError::Store(StoreError::MigrationNeeded {
                    found,
                    required: METADATA_FORMAT_VERSION,
                }));
            }
        }
        let newest = replication::newest_hlc(&store.pool)
            .await
            .map_err(OpenError::Store)?;
        store.clock = Arc::new(HlcClock::starting_after(newest));
        Ok(store)
    }

    /// The format recorded in the database; `None` for a new, empty one.
    async fn recorded_format(&self) -> Result<Option<u32>> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tandem_meta'",
        )
        .fetch_optional(&self.pool)
        .await?;
        match exists {
            None => Ok(None),
            Some(_) => Ok(Some(self.schema_version().await?)),
        }
    }

    /// Refuses a database whose recorded format is newer than this build.
    async fn check_format(&self) -> Result<()> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tandem_meta'",
        )
        .fetch_optional(&self.pool)
        .await?;
        if exists.is_none() {
            return Ok(());
        }
        let found = self.schema_version().await?;
        if found > METADATA_FORMAT_VERSION {
            return Err(StoreError::FormatTooNew {
                found,
                supported: METADATA_FORMAT_VERSION,
            });
        }
        Ok(())
    }

    /// Applies migrations. Several processes opening a file at once can race (SQLite has no
    /// migration lock): a loser fails on a migration another opener has just committed, and sees
    /// it applied on retry. Each failure means another opener made progress, so one try per
    /// migration plus one always suffices; busy errors are retried by [`Self::open`].
    async fn migrate(&self) -> std::result::Result<(), OpenError> {
        let tries = MIGRATOR.iter().count() + 1;
        let mut last = None;
        for _ in 0..tries {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || OpenError::Store(StoreError::db("no migration attempt ran")),
            OpenError::Migrate,
        ))
    }
}

fn parse_url(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| StoreError::UnsupportedUrl {
            url: url.to_owned(),
            supported: SUPPORTED,
        })?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_owned(),
            supported: SUPPORTED,
        });
    }
    Ok(PathBuf::from(path))
}

/// A read transaction whose statements see one state: deferred, so in WAL mode its snapshot is
/// fixed by its first read while writers carry on.
async fn begin_snapshot(pool: &DbPool) -> Result<Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// Serialises speaker writes: a no-op write, so the transaction holds SQLite's single write lock
/// before it reads the profile's stamps (a deferred transaction that read first could not upgrade
/// once another writer committed).
async fn lock_speakers(conn: &mut DbConn) -> Result<()> {
    sqlx::query("UPDATE tandem_meta SET format_version = format_version WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// Serialises syncs of the pair's resources: a no-op write, so the transaction holds SQLite's
/// write lock before it reads.
async fn lock_resource_sync(conn: &mut DbConn) -> Result<()> {
    sqlx::query("UPDATE tandem_meta SET format_version = format_version WHERE id = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// Serialises the takers of one resource's concurrency slots: nothing to do, the transaction's
/// first statement is a write and so takes SQLite's write lock.
async fn lock_slots(_conn: &mut DbConn, _range: &str) -> Result<()> {
    Ok(())
}

/// What opening can fail with, kept typed so that "busy" is recognised by SQLite's error code.
enum OpenError {
    Sql(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
    Store(StoreError),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Sql(e) => e.into(),
            OpenError::Migrate(e) => e.into(),
            OpenError::Store(e) => e,
        }
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), including their extended codes.
fn is_busy(e: &OpenError) -> bool {
    let sql = match e {
        OpenError::Sql(e) => Some(e),
        OpenError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => Some(e),
        _ => None,
    };
    sql.and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}
