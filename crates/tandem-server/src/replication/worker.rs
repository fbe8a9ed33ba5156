//! The follower: pulls the pair's origin log and applies it here, for as long as the region
//! runs, on the node that holds the region's replication lease ([`super::lease`]). Time comes
//! from tokio, so the catch-up timeout and the backoff are tested on paused time with a
//! scripted [`PairLink`]; the lease's "now" is an injected clock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tandem_core::{RegionName, ResourceId};
use tandem_store::{enrollment_audio_key, Cursor, SpeakerOp, Store};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::lease::{wall_clock, Clock, RegionLease};
use super::link::{LinkError, PairLink};
use super::wire::PullResponse;
use super::{Replication, SpeakerState};
use crate::Metrics;

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The pull failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] tandem_store::StoreError),
    /// The pair sent something inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Follows one pair's log into this region's store.
pub struct Follower {
    store: Store,
    pair: RegionName,
    link: Arc<dyn PairLink>,
    repl: Arc<Replication>,
    metrics: Metrics,
    required_speech_secs: f64,
    clock: Clock,
}

impl Follower {
    /// A follower of `repl`'s pair through `link`. `required_speech_secs` is the voiced speech
    /// a profile needs to be `Enrolled` (recomputed here for merged profiles).
    pub fn new(
        store: Store,
        link: Arc<dyn PairLink>,
        repl: Arc<Replication>,
        metrics: Metrics,
        required_speech_secs: f64,
    ) -> Option<Self> {
        let pair = repl.pair()?.name.clone();
        Some(Follower {
            store,
            pair,
            link,
            repl,
            metrics,
            required_speech_secs,
            clock: wall_clock(),
        })
    }

    /// The same follower with lease decisions on `clock` (tests).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// For a node that does not hold the lease: whether the region (its cursor, written by
    /// the holder) holds the pair's whole log. One page of one change, without waiting.
    pub async fn probe(&self) -> Result<bool, StepError> {
        let cursor = self.store.meta.replication_cursor(&self.pair).await?;
        let after = cursor.map_or(0, |c| c.seq);
        let resp = self.link.pull(after, 1, Duration::ZERO).await?;
        if resp.region != self.pair {
            return Err(StepError::Invalid(format!(
                "the pair's endpoint answered as region {}, not {}",
                resp.region, self.pair
            )));
        }
        let same_log = cursor.is_none_or(|c| c.store_id == resp.store_id);
        let mut st = self.repl.status.lock().expect("status lock");
        st.last_pull = Some(OffsetDateTime::now_utc());
        st.last_error = None;
        st.pair_head = resp.head;
        st.cursor = after;
        Ok(same_log && resp.changes.is_empty() && after >= resp.head)
    }

    /// One pull and apply. `Ok(true)` when this region then holds the pair's whole log.
    pub async fn step(&self, wait: Duration) -> Result<bool, StepError> {
        let meta = &self.store.meta;
        let cursor = meta.replication_cursor(&self.pair).await?;
        let limit = self.repl.config().batch_limit;
        let mut after = cursor.map_or(0, |c| c.seq);
        let mut resp = self.link.pull(after, limit, wait).await?;
        if resp.region != self.pair {
            return Err(StepError::Invalid(format!(
                "the pair's endpoint answered as region {}, not {}",
                resp.region, self.pair
            )));
        }
        let restarted = cursor.is_some_and(|c| c.store_id != resp.store_id);
        if restarted {
            tracing::warn!(pair = %self.pair, "the pair's log restarted (new store): following it from the start");
            after = 0;
            resp = self.link.pull(0, limit, Duration::ZERO).await?;
        }
        self.sync_resources(&resp, restarted).await?;
        let changes = self.known_changes(&resp).await?;
        self.write_audio(&resp).await?;
        let seq = resp.changes.last().map_or(after, |c| c.change.seq);
        let applied = if resp.changes.is_empty() {
            Default::default()
        } else {
            let cursor = Cursor {
                store_id: resp.store_id,
                seq,
            };
            meta.apply_speaker_changes(&self.pair, cursor, &changes, self.required_speech_secs)
                .await?
        };
        for key in &applied.removed_audio {
            if let Err(e) = self.store.blobs.delete(key).await {
                tracing::warn!(%key, error = %e, "could not delete replicated enrollment audio");
            }
        }
        let now = OffsetDateTime::now_utc();
        for c in &resp.changes {
            let lag = (now - c.change.at).as_seconds_f64().max(0.0);
            self.metrics.replication_lag.observe(lag);
        }
        self.metrics
            .replication_applied
            .inc_by(u64::from(applied.changed));
        self.metrics
            .replication_behind
            .set(i64::try_from(resp.head.saturating_sub(seq)).unwrap_or(i64::MAX));
        let mut st = self.repl.status.lock().expect("status lock");
        st.last_pull = Some(now);
        st.last_error = None;
        st.pair_head = resp.head;
        st.cursor = seq;
        st.applied_total += u64::from(applied.changed);
        Ok(resp.reaches_head(after))
    }

    /// Makes the local copy of the pair's resources match its list. After a log restart only
    /// adds and updates: an empty new store must not wipe the resources it used to have.
    async fn sync_resources(&self, resp: &PullResponse, restarted: bool) -> Result<(), StepError> {
        let meta = &self.store.meta;
        if let Some(bad) = resp.resources.iter().find(|r| r.region != self.pair) {
            return Err(StepError::Invalid(format!(
                "the pair listed resource {} of region {} as its own",
                bad.id, bad.region
            )));
        }
        let list = if restarted {
            let mut merged: HashMap<ResourceId, _> = meta
                .export_resources(&self.pair)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
            // The new store's resources win, by id and by name (a name is unique in a region).
            for r in &resp.resources {
                merged.retain(|id, old| *id == r.id || old.name != r.name);
                merged.insert(r.id, r.clone());
            }
            merged.into_values().collect()
        } else {
            resp.resources.clone()
        };
        let sync = meta.sync_foreign_resources(&self.pair, &list).await?;
        if sync.added + sync.updated + sync.removed > 0 {
            tracing::info!(pair = %self.pair, added = sync.added, updated = sync.updated, removed = sync.removed, "synced the pair's resources");
        }
        Ok(())
    }

    /// The batch without changes whose resource no longer exists here (deleted at its home
    /// region, with all its speaker data).
    async fn known_changes(
        &self,
        resp: &PullResponse,
    ) -> Result<Vec<tandem_store::SpeakerChange>, StepError> {
        let ids: HashSet<ResourceId> = resp
            .changes
            .iter()
            .map(|c| c.change.profile.resource_id)
            .collect();
        let mut known = HashSet::new();
        for id in ids {
            if self.store.meta.get_resource(id).await?.is_some() {
                known.insert(id);
            }
        }
        let (keep, skip): (Vec<_>, Vec<_>) = resp
            .changes
            .iter()
            .map(|c| c.change.clone())
            .partition(|c| known.contains(&c.profile.resource_id));
        if !skip.is_empty() {
            tracing::info!(pair = %self.pair, skipped = skip.len(), "skipped changes of deleted resources");
        }
        Ok(keep)
    }

    /// Stores the enrollment audio of the batch before its metadata commits.
    async fn write_audio(&self, resp: &PullResponse) -> Result<(), StepError> {
        for c in &resp.changes {
            let (SpeakerOp::Enroll { enrollment }, Some(audio)) = (&c.change.op, &c.audio) else {
                continue;
            };
            let p = &c.change.profile;
            let expected = enrollment_audio_key(p.resource_id, p.id, enrollment.id);
            if enrollment.audio_key != expected {
                return Err(StepError::Invalid(format!(
                    "enrollment {} has audio key {:?}, expected {expected:?}",
                    enrollment.id, enrollment.audio_key
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(audio)
                .map_err(|e| {
                    StepError::Invalid(format!("enrollment {} audio: {e}", enrollment.id))
                })?;
            self.store.blobs.put(&expected, bytes.into()).await?;
        }
        Ok(())
    }

    /// Follows the pair until shutdown: catch up first (speaker routes refuse traffic until
    /// then), then long-poll. Failed pulls back off exponentially; past `catchup_timeout_ms`
    /// without reaching the pair, the region serves anyway. Only while this node holds the
    /// region's replication lease; otherwise it checks (while catching up) whether the region
    /// has caught up, and tries to take the lease every third of its time to live.
    pub async fn run(self) {
        let cfg = self.repl.config().clone();
        let mut shutdown = self.repl.watch_shutdown();
        let mut retry = Retry::new(&cfg, Instant::now());
        let mut lease = RegionLease::new(
            self.store.meta.clone(),
            self.repl.region(),
            self.repl.node().to_owned(),
            self.repl.lease_ttl(),
            self.clock.clone(),
        );
        self.repl.set_state(SpeakerState::CatchingUp, &self.metrics);
        tracing::info!(pair = %self.pair, "catching up with the pair before serving speaker traffic");
        loop {
            if *shutdown.borrow() {
                lease.release().await;
                return;
            }
            let catching_up = self.repl.state() == SpeakerState::CatchingUp;
            let leader = lease.hold().await;
            self.repl.status.lock().expect("status lock").leader = lease.held();
            let wait = if catching_up {
                Duration::ZERO
            } else {
                // The holder comes round in time to extend its lease.
                Duration::from_millis(cfg.poll_wait_ms).min(lease.period())
            };
            let result = tokio::select! {
                r = self.step(wait), if leader => r,
                r = self.probe(), if !leader && catching_up => r,
                _ = std::future::ready(()), if !leader && !catching_up => Ok(false),
                _ = shutdown.changed() => {
                    lease.release().await;
                    return;
                }
            };
            match result {
                Ok(reached) => {
                    if retry.succeeded() {
                        tracing::info!(pair = %self.pair, "replication link restored");
                    }
                    if reached && catching_up {
                        self.repl.set_state(SpeakerState::Serving, &self.metrics);
                        self.repl.status.lock().expect("status lock").caught_up_at =
                            Some(OffsetDateTime::now_utc());
                        tracing::info!(pair = %self.pair, took = ?retry.started.elapsed(), "caught up with the pair: serving speaker traffic");
                    }
                    if leader {
                        continue;
                    }
                    // Not the holder: try again for the lease (and, catching up, check the
                    // region's cursor again) a little later.
                    let pause = if self.repl.state() == SpeakerState::CatchingUp {
                        lease.period().min(Duration::from_millis(cfg.retry_base_ms))
                    } else {
                        lease.period()
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    self.metrics.replication_errors.inc();
                    self.repl.status.lock().expect("status lock").last_error = Some(e.to_string());
                    let next = retry.failed(Instant::now(), catching_up);
                    if next.failures == 1 || next.failures.is_multiple_of(20) {
                        tracing::warn!(pair = %self.pair, error = %e, failures = next.failures, "replication pull failed");
                    }
                    if next.give_up_catching_up {
                        self.repl.set_state(SpeakerState::Serving, &self.metrics);
                        tracing::warn!(pair = %self.pair, "pair unreachable for {} ms: serving speaker traffic without catching up; changes will merge when it is back", cfg.catchup_timeout_ms);
                    }
                    // A holder still extends its lease while the pair is unreachable.
                    let delay = if leader {
                        next.delay.min(lease.period())
                    } else {
                        next.delay
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }
}

/// The follower's timing decisions, separate from I/O so they are tested on explicit instants.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    started: Instant,
    catchup: Duration,
    base_ms: u64,
    max_ms: u64,
    failures: u32,
}

/// What to do after a failed pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AfterFailure {
    /// Failed pulls in a row, this one included.
    pub failures: u32,
    /// Stop refusing speaker traffic: the pair stayed unreachable for the whole catch-up
    /// timeout.
    pub give_up_catching_up: bool,
    /// How long to wait before the next pull.
    pub delay: Duration,
}

impl Retry {
    pub(crate) fn new(cfg: &tandem_core::ReplicationConfig, started: Instant) -> Self {
        Retry {
            started,
            catchup: Duration::from_millis(cfg.catchup_timeout_ms),
            base_ms: cfg.retry_base_ms,
            max_ms: cfg.retry_max_ms,
            failures: 0,
        }
    }

    /// A pull succeeded; `true` if it ends a run of failures.
    pub(crate) fn succeeded(&mut self) -> bool {
        std::mem::take(&mut self.failures) > 0
    }

    /// A pull failed at `now`. While catching up, the delay never overshoots the catch-up
    /// deadline, so the region gives up catching up at the timeout, not a backoff later.
    pub(crate) fn failed(&mut self, now: Instant, catching_up: bool) -> AfterFailure {
        self.failures = self.failures.saturating_add(1);
        let deadline = self.started + self.catchup;
        let give_up = catching_up && now >= deadline;
        let mut delay = backoff(self.failures, self.base_ms, self.max_ms);
        if catching_up && !give_up {
            delay = delay.min(deadline.saturating_duration_since(now));
        }
        AfterFailure {
            failures: self.failures,
            give_up_catching_up: give_up,
            delay,
        }
    }
}

/// `base · 2^(failures-1)`, capped at `max`.
fn backoff(failures: u32, base_ms: u64, max_ms: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    Duration::from_millis(base_ms.saturating_mul(1u64 << exp).min(max_ms.max(base_ms)))
}

#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod tests;
