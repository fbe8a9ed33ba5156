//! Custom Speech jobs that outlive a restart or their node. Training and evaluation run on
//! background tasks and record their outcome in the asset row; a region stopped (or killed) in
//! the middle leaves rows `NotStarted` or `Running`. Once the engines are loaded, [`resume`]
//! runs each of them again from its stored document, and then looks again every
//! `job_lease_secs`: with several nodes, a job whose node died is taken over once that node's
//! lease lapses ([`crate::jobs`]); a job another live node runs is left to it. Both jobs are
//! deterministic and write their result under a fresh blob id before the row says
//! `Succeeded`, so a takeover is harmless.

use std::time::Duration;

use tandem_core::ResourceId;
use tandem_store::{Asset, AssetKind};

use super::evaluations::evaluation_doc;
use super::models::model_doc;
use super::{evaluations, train, MAX_TOP};
use crate::{ApiError, AppState};

/// How often [`resume`] looks whether the engines are loaded.
const ENGINES_POLL: Duration = Duration::from_millis(200);

/// Waits for the engines, then restarts every unfinished training and evaluation of this
/// region's resources. Returns how many jobs it restarted.
pub(crate) async fn resume(state: AppState) -> Result<usize, ApiError> {
    while state.engines().is_none() {
        tokio::time::sleep(ENGINES_POLL).await;
    }
    let meta = &state.store().meta;
    let mut restarted = 0;
    // Models first, to the end: an unfinished evaluation may compare one of them.
    for kind in [AssetKind::Model, AssetKind::Evaluation] {
        for resource in meta.list_resources(state.region()).await? {
            for asset in unfinished(&state, resource.id, kind).await? {
                let ran = if kind == AssetKind::Model {
                    let doc = model_doc(&asset)?;
                    train::run(&state, resource.id, asset.id, &doc.datasets).await
                } else {
                    let doc = evaluation_doc(&asset)?;
                    evaluations::run(&state, resource.id, asset.id, doc).await
                };
                if ran.is_ok() {
                    tracing::info!(resource = %resource.id, %kind, id = %asset.id, "unfinished job restarted");
                    restarted += 1;
                }
            }
        }
    }
    Ok(restarted)
}

/// The assets of `kind` of `resource` that are neither `Succeeded` nor `Failed`.
async fn unfinished(
    state: &AppState,
    resource: ResourceId,
    kind: AssetKind,
) -> Result<Vec<Asset>, ApiError> {
    let meta = &state.store().meta;
    let mut found = Vec::new();
    let mut skip = 0;
    loop {
        let page = meta.list_assets(resource, kind, skip, MAX_TOP).await?;
        skip += page.values.len() as u64;
        let done = page.values.is_empty() || skip >= page.total;
        found.extend(page.values.into_iter().filter(|a| !a.status.is_terminal()));
        if done {
            return Ok(found);
        }
    }
}

/// Whether asset `id` still exists and is neither `Succeeded` nor `Failed` (checked again by a
/// job once it holds its lease: the scan that started it may be stale).
pub(crate) async fn unfinished_one(
    state: &AppState,
    resource: ResourceId,
    kind: AssetKind,
    id: uuid::Uuid,
) -> bool {
    match state.store().meta.get_asset(resource, kind, id).await {
        Ok(Some(a)) => !a.status.is_terminal(),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(%kind, %id, error = %e, "could not read a job's row; not running it");
            false
        }
    }
}

/// Runs [`resume`] on a background task, then again every `job_lease_secs`; failures are
/// logged.
pub(crate) fn spawn(state: AppState) {
    const NAME: &str = "job-resume";
    let every = crate::jobs::lease_ttl(&state);
    state.workers().register(
        NAME,
        "scan",
        crate::workers::WorkerState::Idle,
        &format!(
            "finds unfinished trainings and evaluations every {} s",
            every.as_secs()
        ),
    );
    tokio::spawn(async move {
        loop {
            state.workers().started(NAME);
            let outcome = resume(state.clone()).await;
            match &outcome {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "unfinished Custom Speech jobs run"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not restart unfinished Custom Speech jobs")
                }
            }
            let outcome = outcome
                .map(|n| format!("last scan ran {n} jobs"))
                .map_err(|e| e.to_string());
            state.workers().finished(NAME, outcome);
            tokio::time::sleep(every).await;
        }
    });
}
