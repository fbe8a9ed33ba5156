//! Which node of a region follows the pair: the holder of the region's replication lease.
//!
//! Every node of a region runs a [`Follower`](super::Follower), but only one pulls the pair's
//! log and applies it: the node holding `replication/speaker/<region>` in the shared store
//! ([`tandem_store::lease`]). The holder extends it every third of `job_lease_secs`, on its way
//! round the follow loop (a long poll never waits longer than that); the others try to take it
//! at the same pace, which succeeds once it lapses (the holder died or hung) and bumps its
//! generation. A node shutting down releases it, so another takes over at its next try.
//!
//! Two holders at once are possible only for a holder that stalls past its lease and then
//! applies one more batch; that is harmless, because applying changes is idempotent and
//! commutative (the store's merge rules).

use std::sync::Arc;
use std::time::Duration;

use tandem_core::RegionName;
use tandem_store::MetaStore;
use time::OffsetDateTime;

/// Where "now" comes from for lease decisions: the wall clock, or a test's.
pub(crate) type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The wall clock.
pub(crate) fn wall_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// The lease's job name for a region.
pub fn replication_lease_job(region: &RegionName) -> String {
    format!("replication/speaker/{region}")
}

/// This node's hold on the region's replication lease.
pub(crate) struct RegionLease {
    meta: Arc<dyn MetaStore>,
    job: String,
    node: String,
    ttl: Duration,
    clock: Clock,
    /// When this node last took or extended it; `None` when it does not hold it.
    held_since: Option<OffsetDateTime>,
}

impl RegionLease {
    pub(crate) fn new(
        meta: Arc<dyn MetaStore>,
        region: &RegionName,
        node: String,
        ttl: Duration,
        clock: Clock,
    ) -> Self {
        RegionLease {
            meta,
            job: replication_lease_job(region),
            node,
            ttl: ttl.max(Duration::from_secs(1)),
            clock,
            held_since: None,
        }
    }

    /// How often the holder extends it and the others try to take it.
    pub(crate) fn period(&self) -> Duration {
        self.ttl / 3
    }

    /// Whether this node holds the lease now: takes it if free or lapsed, extends it if held
    /// and a third of its time has passed. A store error answers `true`: following twice is
    /// harmless, not following at all is not.
    pub(crate) async fn hold(&mut self) -> bool {
        let now = (self.clock)();
        // Held and extended less than a period ago (a clock that stepped back extends now).
        if let Some(since) = self.held_since {
            if since <= now && now - since < self.period() {
                return true;
            }
        }
        match self
            .meta
            .acquire_lease(&self.job, &self.node, now, self.ttl)
            .await
        {
            Ok(Some(lease)) => {
                if self.held_since.is_none() {
                    if lease.generation > 1 {
                        tracing::info!(job = %self.job, node = %self.node, generation = lease.generation, "replication lease taken over from another node: this node follows the pair");
                    } else {
                        tracing::info!(job = %self.job, node = %self.node, "replication lease taken: this node follows the pair");
                    }
                }
                self.held_since = Some(now);
                true
            }
            Ok(None) => {
                if self.held_since.take().is_some() {
                    tracing::warn!(job = %self.job, node = %self.node, "replication lease lost: another node follows the pair");
                }
                false
            }
            Err(e) => {
                // As the backup worker does: a store that cannot keep the lease (or is failing)
                // does not stop replication; a second follower is harmless, merely wasteful.
                tracing::warn!(job = %self.job, error = %e, "could not take or extend the replication lease; following the pair regardless");
                true
            }
        }
    }

    /// Whether this node held it at its last [`Self::hold`].
    pub(crate) fn held(&self) -> bool {
        self.held_since.is_some()
    }

    /// Gives it up (shutdown), so another node takes over at its next try.
    pub(crate) async fn release(&mut self) {
        if self.held_since.take().is_some() {
            if let Err(e) = self.meta.release_lease(&self.job, &self.node).await {
                tracing::warn!(job = %self.job, error = %e, "could not release the replication lease; it lapses by itself");
            }
        }
    }
}
