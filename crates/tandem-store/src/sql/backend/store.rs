//! What both store types offer besides [`MetaStore`]: `tandem migrate`, the clock, the pool.

use super::{DbPool, SqlStore};
use crate::{HlcClock, MetaStore, Result, StoreError};

impl SqlStore {
    /// Applies pending migrations to the database at `url` (a SQLite file is created if
    /// missing): returns the format before (0 for a new database) and after. What `tandem
    /// migrate` runs.
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

    /// The clock that stamps this store's speaker changes.
    pub fn clock(&self) -> &HlcClock {
        &self.clock
    }

    /// The underlying pool, for tests and tools that need raw SQL.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }
}
