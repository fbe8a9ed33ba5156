//! Custom Speech jobs that outlive a restart. Training and evaluation run on background tasks
//! and record their outcome in the asset row; a region stopped (or killed) in the middle leaves
//! rows `NotStarted` or `Running`. On start, once the engines are loaded, [`resume`] runs each
//! of them again from its stored document. Both jobs are deterministic and write their result
//! under a fresh blob id before the row says `Succeeded`, so running one twice is harmless.

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
                tracing::info!(resource = %resource.id, %kind, id = %asset.id, "unfinished job restarted");
                restarted += 1;
                if kind == AssetKind::Model {
                    let doc = model_doc(&asset)?;
                    train::run(&state, resource.id, asset.id, &doc.datasets).await;
                } else {
                    let doc = evaluation_doc(&asset)?;
                    evaluations::spawn(state.clone(), resource.id, asset.id, doc);
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

/// Runs [`resume`] on a background task; a failure is logged.
pub(crate) fn spawn(state: AppState) {
    tokio::spawn(async move {
        match resume(state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "unfinished Custom Speech jobs restarted"),
            Err(e) => tracing::warn!(error = %e, "could not restart unfinished Custom Speech jobs"),
        }
    });
}
