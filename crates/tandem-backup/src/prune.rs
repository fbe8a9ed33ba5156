//! `forget` and `prune`: drop snapshots by policy, then mark and sweep the chunks no remaining
//! snapshot uses and that are older than a grace period.

use std::collections::HashSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::manifest::snapshot_id_time;
use crate::object::ChunkId;
use crate::retention::{plan_retention, KeepReason, Retention};
use crate::{Error, Phase, Progress, Repository, Result};

/// Options of a prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Report only; delete nothing.
    pub dry_run: bool,
    /// Unused chunks younger than this are kept: they may belong to a backup still running.
    /// Default one hour.
    pub grace: Duration,
    /// The time to measure the grace from; `None`: now. (Tests set it.)
    pub now: Option<OffsetDateTime>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            grace: Duration::from_secs(3600),
            now: None,
        }
    }
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Kept snapshots, oldest first, with the rules that keep them.
    pub kept: Vec<(String, Vec<KeepReason>)>,
    /// Forgotten snapshots, oldest first.
    pub forgotten: Vec<String>,
    /// Chunks deleted.
    pub deleted_chunks: u64,
    /// Stored bytes of those chunks.
    pub deleted_bytes: u64,
    /// Unused chunks kept because they are younger than the grace period.
    pub chunks_in_grace: u64,
    /// Chunks still in use.
    pub chunks_in_use: u64,
    /// True when nothing was deleted because `dry_run` was set.
    pub dry_run: bool,
}

impl Repository {
    /// Forgets the snapshots `policy` does not keep, then deletes every chunk that no kept
    /// snapshot uses and that is older than `opts.grace`.
    ///
    /// Refuses (with [`Error::Corrupt`] naming it) when a kept snapshot's manifest is
    /// unreadable, since its chunks cannot be known: forget it explicitly first with
    /// [`Repository::forget`]. Do not run two prunes at once, nor a prune alongside a backup
    /// that started more than `grace` ago.
    pub async fn prune(
        &self,
        policy: &Retention,
        opts: &PruneOptions,
        progress: &dyn Progress,
    ) -> Result<PruneReport> {
        progress.start(Phase::Scan, None);
        let ids = self.snapshot_ids().await?;
        let timed: Vec<(String, OffsetDateTime)> = ids
            .iter()
            .map(|id| (id.clone(), snapshot_id_time(id).expect("valid id")))
            .collect();
        let plan = plan_retention(&timed, policy);
        let kept_ids: Vec<String> = ids
            .iter()
            .filter(|id| plan.keep.contains_key(*id))
            .cloned()
            .collect();
        // Mark: everything the kept snapshots use.
        let mut used: HashSet<ChunkId> = HashSet::new();
        let mut loads = futures::stream::iter(kept_ids)
            .map(|id| async move { self.load_manifest(&id).await })
            .buffered(self.concurrency);
        while let Some(m) = loads.next().await {
            let m = m.map_err(|e| match e {
                Error::Corrupt {
                    snapshot, reason, ..
                } => Error::Corrupt {
                    snapshot,
                    chunk: None,
                    path: None,
                    reason: format!(
                        "cannot prune: a kept snapshot is unreadable ({reason}); forget it first"
                    ),
                },
                e => e,
            })?;
            for (c, path) in m.chunk_uses() {
                let id = c.chunk_id().ok_or_else(|| Error::Corrupt {
                    snapshot: Some(m.id.clone()),
                    chunk: Some(c.id.clone()),
                    path: Some(path.to_owned()),
                    reason: "invalid chunk id in manifest".into(),
                })?;
                used.insert(id);
            }
        }
        drop(loads);
        let stored = self.list_chunks().await?;
        progress.finish(Phase::Scan);

        let now = opts.now.unwrap_or_else(OffsetDateTime::now_utc);
        let cutoff = now.unix_timestamp() - i64::try_from(opts.grace.as_secs()).unwrap_or(i64::MAX);
        let mut report = PruneReport {
            kept: plan.keep.into_iter().collect(),
            forgotten: plan.forget,
            dry_run: opts.dry_run,
            ..Default::default()
        };
        report.forgotten.sort();
        let mut sweep = Vec::new();
        for (id, meta) in &stored {
            if used.contains(id) {
                report.chunks_in_use += 1;
            } else if meta.last_modified > cutoff {
                report.chunks_in_grace += 1;
            } else {
                sweep.push((*id, meta.size));
            }
        }
        report.deleted_chunks = sweep.len() as u64;
        report.deleted_bytes = sweep.iter().map(|s| s.1).sum();
        if opts.dry_run {
            return Ok(report);
        }
        progress.start(Phase::Prune, Some(report.deleted_bytes));
        // Manifests first: interrupted here, the repository only holds extra orphans.
        self.forget(&report.forgotten).await?;
        futures::stream::iter(sweep)
            .map(|(id, size)| async move {
                self.delete(&id.object_key()).await?;
                progress.advance(size);
                Ok::<_, Error>(())
            })
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await?;
        progress.finish(Phase::Prune);
        Ok(report)
    }

    /// Deletes the manifests of these snapshots (their chunks stay until the next prune).
    /// Unknown ids are not an error; malformed ones are [`Error::SnapshotNotFound`].
    pub async fn forget(&self, ids: &[String]) -> Result<()> {
        if let Some(bad) = ids.iter().find(|id| !crate::manifest::is_snapshot_id(id)) {
            return Err(Error::SnapshotNotFound(bad.clone()));
        }
        futures::stream::iter(ids.to_vec())
            .map(|id| async move { self.delete(&format!("snapshots/{id}")).await })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
    }
}
