//! Background jobs that run on exactly one node of a region: training, evaluation.
//!
//! Several nodes share a region's store. Before a node runs a job it takes the job's lease
//! ([`tandem_store::lease`]) under its `node_name`; while the job runs, a task renews the lease
//! every third of `job_lease_secs`; when it ends, the lease is released. Another node that
//! finds the job unfinished (its periodic scan, [`crate::routes::custom_speech`]'s resume)
//! cannot take a live lease, so it leaves the job alone; if the holder dies, its lease lapses
//! and the next scan anywhere takes the job over (the lease's generation counts it). A
//! restarted node takes its own leases back at once (same holder).
//!
//! Within a node, a job already running is not started again by a scan (the holder is the
//! same, so the lease alone would not stop it).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;

use crate::AppState;

/// Why [`run_leased`] did not run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotRun {
    /// Another node holds a live lease: it runs the job.
    HeldElsewhere,
    /// This node is running it already.
    AlreadyRunning,
}

/// Jobs running in this process, by `node/job`.
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Removes its job from [`running`] when dropped (also on panic or cancellation).
struct RunningGuard(String);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        running().lock().expect("not poisoned").remove(&self.0);
    }
}

/// Lists the job in the worker registry while it runs on this node (also on panic or
/// cancellation, it leaves the list when dropped).
struct Listed<'a>(&'a AppState, &'a str);

impl<'a> Listed<'a> {
    fn new(state: &'a AppState, job: &'a str) -> Self {
        state.workers().job_started(job);
        Listed(state, job)
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.0.workers().job_finished(self.1);
    }
}

/// The lease's time to live, from the config (at least 1 s).
pub(crate) fn lease_ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.config().job_lease_secs.max(1))
}

/// Runs `job` (a name such as `train/<resource>/<model>`) with `work` if this node can take
/// its lease, renewing the lease while `work` runs and releasing it after.
///
/// A store that cannot keep leases (an error when acquiring) is logged and the job runs
/// anyway: with one node that is what it did before leases existed.
pub(crate) async fn run_leased<F, Fut, T>(state: &AppState, job: &str, work: F) -> Result<T, NotRun>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let node = state.config().node_name();
    let local = format!("{node}/{job}");
    if !running()
        .lock()
        .expect("not poisoned")
        .insert(local.clone())
    {
        return Err(NotRun::AlreadyRunning);
    }
    let _guard = RunningGuard(local);
    let meta = state.store().meta.clone();
    let ttl = lease_ttl(state);
    match meta
        .acquire_lease(job, &node, OffsetDateTime::now_utc(), ttl)
        .await
    {
        Ok(Some(lease)) => {
            if lease.generation > 1 {
                tracing::info!(job, %node, generation = lease.generation, "job taken over from another node");
            }
        }
        Ok(None) => return Err(NotRun::HeldElsewhere),
        Err(e) => {
            tracing::warn!(job, error = %e, "could not take the job's lease; running it anyway");
            let _listed = Listed::new(state, job);
            return Ok(work().await);
        }
    }
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let (meta, job, node, lost) = (meta.clone(), job.to_owned(), node.clone(), lost.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ttl / 3);
            every.tick().await;
            loop {
                every.tick().await;
                match meta
                    .renew_lease(&job, &node, OffsetDateTime::now_utc(), ttl)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(%job, %node, "job lease lost (renewed too late); another node may run it too");
                        return;
                    }
                    Err(e) => tracing::warn!(%job, error = %e, "could not renew a job lease"),
                }
            }
        })
    };
    let listed = Listed::new(state, job);
    let out = work().await;
    drop(listed);
    renewer.abort();
    if !lost.load(std::sync::atomic::Ordering::Relaxed) {
        if let Err(e) = meta.release_lease(job, &node).await {
            tracing::warn!(job, error = %e, "could not release a job lease; it lapses by itself");
        }
    }
    Ok(out)
}
