//! The SQLite backend of [`MetaStore`]. Everything SQLite-specific (URL, pragmas, migrations,
//! error codes) lives in this module; the SQL itself is kept portable (`$n` parameters, plain
//! types) so that a PostgreSQL backend can reuse it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
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

use crate::{HlcClock, MetaStore, Resource, Result, StoreError};

/// The metadata format version this build writes and the newest it reads.
pub const METADATA_FORMAT_VERSION: u32 = 8;

/// The oldest metadata format whose exports this build imports: the migrations after it only
/// relaxed constraints (format 7: more asset kinds) or added tables that exports leave out
/// (format 8: job leases), so such an export's tables and columns are this store's.
pub const METADATA_IMPORTS_SINCE: u32 = 6;

const SUPPORTED: &str = "sqlite://PATH (e.g. sqlite:///var/lib/tandem/tandem.db)";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const RESOURCE_COLUMNS: &str = "r.id, r.region, r.name, r.concurrency_limit, r.created_at";

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

    /// Applies pending migrations to the database at `url` (created if missing): returns the
    /// format before (0 for a new database) and after. What `tandem migrate` runs.
    pub async fn migrate_url(url: &str) -> Result<(u32, u32)> {
        let before = match Self::open_with(url, false).await {
            Ok(s) => {
                let v = s.schema_version().await?;
                s.pool.close().await;
                v
            }
            Err(StoreError::MigrationNeeded { found, .. }) => found,
            Err(e) => return Err(e),
        };
        let store = Self::open(url).await?;
        let after = store.schema_version().await?;
        store.pool.close().await;
        Ok((before, after))
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

    /// The clock that stamps this store's speaker changes.
    pub fn clock(&self) -> &HlcClock {
        &self.clock
    }

    /// The underlying pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
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

/// Maps a driver error, turning unique violations into [`StoreError::Conflict`].
fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => e.into(),
    }
}

fn format_time(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .expect("UTC time formats")
}

fn row_to_resource(row: &SqliteRow) -> Result<Resource> {
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
