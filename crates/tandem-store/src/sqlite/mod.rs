//! The SQLite backend of [`MetaStore`]. Everything SQLite-specific (URL, pragmas, migrations,
//! error codes) lives in this module; the SQL itself is kept portable (`$n` parameters, plain
//! types) so that a PostgreSQL backend can reuse it.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use tandem_core::{RegionName, ResourceId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod queries;

use crate::{MetaStore, Resource, Result, StoreError};

/// The metadata format version this build writes and the newest it reads.
pub const METADATA_FORMAT_VERSION: u32 = 1;

const SUPPORTED: &str = "sqlite://PATH (e.g. sqlite:///var/lib/tandem/tandem.db)";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const RESOURCE_COLUMNS: &str = "r.id, r.region, r.name, r.concurrency_limit, r.created_at";

/// Resource metadata in a SQLite file, in WAL mode with `synchronous=FULL`: a write that returned
/// `Ok` is on disk. Several processes may open the same file at once.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    pool: SqlitePool,
}

impl SqliteMetaStore {
    /// Opens (creating if missing, with its parent directory) the database at a `sqlite://PATH`
    /// URL, refuses one written by a newer build, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let path = parse_url(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::db(format!("creating {}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        let store = Self { pool };
        store.check_format().await?;
        store.migrate().await?;
        store.check_format().await?;
        tracing::debug!(path = %path.display(), "opened metadata database");
        Ok(store)
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

    /// Applies migrations. Two processes opening a fresh file at once can race; the loser sees
    /// the winner's tables on retry.
    async fn migrate(&self) -> Result<()> {
        let mut last = None;
        for _ in 0..3 {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("loop ran").into())
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
