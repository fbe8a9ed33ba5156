//! The region's backup worker: a snapshot every `backup.interval_secs`, a prune by the
//! retention policy every `backup.prune_interval_secs`.
//!
//! Every node of a region runs the worker, but only one backs up: the holder of the
//! `backup/<region>` lease ([`tandem_store::lease`]), which it takes or extends (for two
//! intervals) at every tick and never releases. If it dies, another node's tick takes the
//! lease once it lapses, and backups go on from there.

use std::time::{Duration, Instant};

use tandem_backup::{BackupOptions, NoProgress, PruneOptions, Repository};

use super::{open_repository, prune_grace, retention, RegionSource};
use crate::workers::WorkerState;
use crate::AppState;

/// Starts the backup worker when `backup.interval_secs` > 0. The first backup runs at once (a
/// region that just started is backed up before its first interval ends).
pub fn spawn_worker(state: &AppState) {
    let interval = state.config().backup.interval_secs;
    let workers = state.workers();
    if interval == 0 {
        workers.register(
            "backup",
            "backup",
            WorkerState::Off,
            "backup.interval_secs = 0",
        );
        tracing::info!("backup worker off (backup.interval_secs = 0)");
        return;
    }
    workers.register(
        "backup",
        "backup",
        WorkerState::Idle,
        &format!("every {interval} s"),
    );
    let state = state.clone();
    tokio::spawn(async move {
        let cfg = state.config().clone();
        let target = cfg.backup_target();
        if cfg.backup.target.is_none() {
            tracing::info!(%target, "backing up to the default target, beside the data directory; set [backup] target to another disk or an s3:// bucket");
        }
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let prune_every = Duration::from_secs(cfg.backup.prune_interval_secs);
        let mut last_prune = Instant::now();
        let mut repo: Option<Repository> = None;
        loop {
            tick.tick().await;
            if repo.is_none() {
                match open_repository(&cfg, None, None, true).await {
                    Ok(r) => repo = Some(r),
                    Err(e) => {
                        state
                            .metrics()
                            .backup_runs
                            .with_label_values(&["error"])
                            .inc();
                        state.workers().started("backup");
                        state.workers().finished(
                            "backup",
                            Err(format!("cannot open the backup repository: {e}")),
                        );
                        tracing::warn!(%target, error = %e, "cannot open the backup repository");
                        continue;
                    }
                }
            }
            let Some(r) = repo.as_ref() else { continue };
            if !is_backup_leader(&state, interval).await {
                state.workers().finished(
                    "backup",
                    Ok("another node of the region backs it up".into()),
                );
                continue;
            }
            state.workers().started("backup");
            let outcome = run_once(&state, r).await;
            state.workers().finished("backup", outcome);
            if !prune_every.is_zero() && last_prune.elapsed() >= prune_every {
                last_prune = Instant::now();
                let opts = PruneOptions {
                    dry_run: false,
                    grace: prune_grace(&cfg),
                    now: None,
                };
                match r.prune(&retention(&cfg), &opts, &NoProgress).await {
                    Ok(p) => tracing::info!(
                        forgotten = p.forgotten.len(),
                        deleted_chunks = p.deleted_chunks,
                        deleted_bytes = p.deleted_bytes,
                        "backup prune"
                    ),
                    Err(e) => tracing::warn!(error = %e, "backup prune failed"),
                }
            }
        }
    });
}

/// Whether this node is the region's backup node: it takes or extends the `backup/<region>`
/// lease. A store without leases makes every node back up (one node: as before).
async fn is_backup_leader(state: &AppState, interval_secs: u64) -> bool {
    let job = format!("backup/{}", state.region());
    let node = state.config().node_name();
    let ttl = Duration::from_secs(interval_secs.saturating_mul(2).max(1));
    match state
        .store()
        .meta
        .acquire_lease(&job, &node, time::OffsetDateTime::now_utc(), ttl)
        .await
    {
        Ok(Some(_)) => true,
        Ok(None) => {
            tracing::debug!(%node, "another node of the region backs it up");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not take the backup lease; backing up anyway");
            true
        }
    }
}

/// One backup; outcome in the metrics and the log, and returned for the worker registry
/// (`Ok(snapshot id)`). Never panics, never stops the worker.
async fn run_once(state: &AppState, repo: &Repository) -> Result<String, String> {
    let started = Instant::now();
    let opts = BackupOptions {
        region: state.region().to_string(),
        host: tandem_core::host_name(),
        ..BackupOptions::default()
    };
    let source = RegionSource::new(state.store().clone());
    let m = state.metrics();
    match repo.backup(&source, &opts, &NoProgress).await {
        Ok(s) => {
            m.backup_runs.with_label_values(&["ok"]).inc();
            m.backup_duration.observe(started.elapsed().as_secs_f64());
            m.backup_last_success
                .set(s.created.unix_timestamp_nanos() as f64 / 1e9);
            m.backup_new_bytes.inc_by(s.totals.new_bytes);
            tracing::info!(
                snapshot = %s.id,
                files = s.totals.files,
                bytes = s.totals.bytes,
                new_chunks = s.totals.new_chunks,
                new_bytes = s.totals.new_bytes,
                took_ms = started.elapsed().as_millis() as u64,
                "backup"
            );
            Ok(s.id.to_string())
        }
        Err(e) => {
            m.backup_runs.with_label_values(&["error"]).inc();
            tracing::warn!(error = %e, "backup failed; the next run retries");
            Err(e.to_string())
        }
    }
}
