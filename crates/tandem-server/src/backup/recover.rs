//! Offline failover of a whole region (`tandem recover`): after a snapshot is restored into an
//! empty region ([`super::restore_region`]), make every custom speech asset work there.
//!
//! 1. Custom models: an artifact is *reused* when this build parses it and the region runs the
//!    very base engine it was trained against (same name and same sha256 of the weights, as
//!    the artifact records them); otherwise, or with [`RecoverOptions::retrain_all`], the model
//!    is *retrained* from its datasets (restored with it).
//! 2. Evaluations are run again, so their word error rates are this region's.
//! 3. Endpoints are redeployed: each one's model is checked deployable and loaded once, the
//!    way the first `?cid=` request would.
//!
//! Retraining and re-evaluating use the region's own job machinery: the assets to redo are
//! marked `NotStarted` and the resume path of `tandem serve` (the one that restarts jobs a
//! crash left unfinished, [`crate::start_background`]) runs them with the server's training
//! and evaluation code; this module waits for their rows to say `Succeeded` or `Failed`. A
//! recovery interrupted half-way therefore finishes by itself when the region next starts.
//! (That path also starts the endpoint-log retention sweep and resumes unfinished model
//! copies, as a region's start does.)
//!
//! Loading an endpoint's model proves it deployable and times it; the parsed model is cached
//! in the recovering process, so the region's own process parses it again on its first `?cid=`
//! request.

use std::time::{Duration, Instant};

use tandem_core::ResourceId;
use tandem_store::{asset_file_key, Asset, AssetKind, AssetStatus, AssetUpdate, StoreError};
use uuid::Uuid;

use crate::routes::custom_speech::{endpoint_model, MAX_TOP};
use crate::AppState;

mod report;

pub use report::{
    EndpointOutcome, EvaluationOutcome, ModelAction, ModelOutcome, RecoverError, RecoverOptions,
    RecoverProgress, RecoverReport, Step,
};

/// How often the rows of the jobs being redone are read.
const POLL: Duration = Duration::from_millis(200);

/// Recovers the custom speech assets of `state`'s region, whose store a snapshot was just
/// restored into: models, then evaluations, then endpoints (see the module documentation).
/// `state` must have its engines loaded.
pub async fn recover_region(
    state: &AppState,
    opts: RecoverOptions,
    progress: &dyn RecoverProgress,
) -> Result<RecoverReport, RecoverError> {
    let engines = state.engines().ok_or(RecoverError::NoEngines)?;
    let mut models = Vec::new();
    let mut evaluations = Vec::new();
    let mut endpoints = Vec::new();
    for r in state.store().meta.list_resources(state.region()).await? {
        models.extend(all(state, r.id, AssetKind::Model).await?);
        evaluations.extend(all(state, r.id, AssetKind::Evaluation).await?);
        endpoints.extend(all(state, r.id, AssetKind::Endpoint).await?);
    }
    let bases = engines.bases.models();
    let mut report = RecoverReport::default();

    // 1. Decide for every model; mark the ones to retrain, and every evaluation, unfinished.
    let started = Instant::now();
    progress.start(Step::Models, models.len());
    let mut training = Vec::new();
    for m in &models {
        let action = decide(state, &bases, m, opts).await;
        if let ModelAction::Retrained { .. } = action {
            training.push((m.resource_id, m.id, doc_uuid(m, &["artifact"])));
            mark_unfinished(state, m, AssetKind::Model).await?;
        } else {
            progress.advance(&m.display_name);
        }
        report.models.push(ModelOutcome {
            resource: m.resource_id,
            id: m.id,
            name: m.display_name.clone(),
            action,
            status: m.status,
            error: error_message(m),
        });
    }
    let mut redo = Vec::new();
    for e in &evaluations {
        redo.push((e.resource_id, e.id, doc_uuid(e, &["details", "id"])));
        mark_unfinished(state, e, AssetKind::Evaluation).await?;
    }
    if !training.is_empty() || !redo.is_empty() {
        // Models first, to the end; then the evaluations (resume's order).
        crate::start_background(state);
    }
    for (resource, id, old) in &training {
        let done = wait_terminal(state, *resource, AssetKind::Model, *id).await?;
        progress.advance(&done.display_name);
        drop_replaced(state, &done, &["artifact"], *old).await;
        if let Some(o) = report.models.iter_mut().find(|o| o.id == *id) {
            o.status = done.status;
            o.error = error_message(&done);
        }
    }
    progress.finish(Step::Models);
    report.steps.push((Step::Models, started.elapsed()));

    // 2. The evaluations, started by the same resume once the models are done.
    let started = Instant::now();
    progress.start(Step::Evaluations, redo.len());
    for ((resource, id, old), before) in redo.iter().zip(&evaluations) {
        let done = wait_terminal(state, *resource, AssetKind::Evaluation, *id).await?;
        progress.advance(&done.display_name);
        drop_replaced(state, &done, &["details", "id"], *old).await;
        report.evaluations.push(EvaluationOutcome {
            resource: *resource,
            id: *id,
            name: done.display_name.clone(),
            wer_before: wers(before),
            wer_after: wers(&done),
            status: done.status,
            error: error_message(&done),
        });
    }
    progress.finish(Step::Evaluations);
    report.steps.push((Step::Evaluations, started.elapsed()));

    // 3. The endpoints: each model checked and loaded once.
    let started = Instant::now();
    progress.start(Step::Endpoints, endpoints.len());
    for e in &endpoints {
        let began = Instant::now();
        let model = doc_uuid(e, &["model"]);
        let problem = redeploy(state, e, model).await.err();
        if let Some(p) = &problem {
            tracing::warn!(endpoint = %e.id, problem = %p, "endpoint not redeployed");
        }
        progress.advance(&e.display_name);
        report.endpoints.push(EndpointOutcome {
            resource: e.resource_id,
            id: e.id,
            name: e.display_name.clone(),
            model,
            problem,
            took: began.elapsed(),
        });
    }
    progress.finish(Step::Endpoints);
    report.steps.push((Step::Endpoints, started.elapsed()));
    Ok(report)
}

/// Every asset of `kind` of `resource`.
async fn all(
    state: &AppState,
    resource: ResourceId,
    kind: AssetKind,
) -> Result<Vec<Asset>, StoreError> {
    let mut found = Vec::new();
    loop {
        let page = state
            .store()
            .meta
            .list_assets(resource, kind, found.len() as u64, MAX_TOP)
            .await?;
        let done = page.values.is_empty();
        found.extend(page.values);
        if done || found.len() as u64 >= page.total {
            return Ok(found);
        }
    }
}

/// The uuid at `path` in an asset's document (`artifact`, `details.id`, `model`).
fn doc_uuid(asset: &Asset, path: &[&str]) -> Option<Uuid> {
    let mut v = &asset.doc;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

fn error_message(asset: &Asset) -> Option<String> {
    if asset.status != AssetStatus::Failed {
        return None;
    }
    asset.properties["error"]["message"]
        .as_str()
        .map(str::to_owned)
}

fn wers(asset: &Asset) -> [Option<f64>; 2] {
    [1, 2].map(|n| asset.properties[format!("wordErrorRate{n}")].as_f64())
}

/// Reuse or retrain (see the module documentation).
async fn decide(
    state: &AppState,
    bases: &[crate::BaseInfo],
    model: &Asset,
    opts: RecoverOptions,
) -> ModelAction {
    let has_datasets = model.doc["datasets"]
        .as_array()
        .is_some_and(|d| !d.is_empty());
    match model.status {
        AssetStatus::Failed => {
            return ModelAction::Kept {
                reason: "its training failed in the source region".into(),
            }
        }
        AssetStatus::NotStarted | AssetStatus::Running => {
            return ModelAction::Retrained {
                reason: "the snapshot caught it before its training finished".into(),
            }
        }
        AssetStatus::Succeeded => {}
    }
    let reusable = reusable(state, bases, model).await;
    let retrain = |reason: String| {
        if has_datasets {
            ModelAction::Retrained { reason }
        } else {
            ModelAction::Kept {
                reason: format!(
                    "{reason}, but it has no datasets to retrain from (a copied model)"
                ),
            }
        }
    };
    match reusable {
        Ok((base_model, base_sha256)) if !opts.retrain_all => ModelAction::Reused {
            base_model,
            base_sha256,
        },
        Ok(_) => retrain("--retrain".into()),
        Err(reason) => retrain(reason),
    }
}

/// The base engine (name, sha256) a model's artifact adapts, if this build reads the artifact
/// and this region runs that very engine; else why not.
async fn reusable(
    state: &AppState,
    bases: &[crate::BaseInfo],
    model: &Asset,
) -> Result<(String, String), String> {
    let file = doc_uuid(model, &["artifact"]).ok_or("it has no artifact")?;
    let bytes = state
        .store()
        .blobs
        .get(&asset_file_key(model.resource_id, model.id, file))
        .await
        .map_err(|e| format!("its artifact cannot be read: {e}"))?
        .ok_or("its artifact is missing")?;
    // The header and checksum only: the endpoint step loads the model fully anyway.
    let header = tokio::task::spawn_blocking(move || tandem_engines::adapt::inspect(&bytes))
        .await
        .map_err(|e| format!("artifact check: {e}"))?
        .map_err(|e| format!("its artifact does not load here: {e}"))?;
    let (name, sha) = (header.base_model.as_str(), header.base_sha256.as_str());
    let base = bases
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| format!("this region does not run its base engine {name}"))?;
    if sha.is_empty() || base.sha256 != sha {
        return Err(format!(
            "its base engine {name} changed (trained against sha256 {}, this region runs {})",
            if sha.is_empty() { "unknown" } else { sha },
            base.sha256
        ));
    }
    Ok((name.to_owned(), sha.to_owned()))
}

/// Marks an asset `NotStarted`, so that the resume path runs its job again.
async fn mark_unfinished(
    state: &AppState,
    asset: &Asset,
    kind: AssetKind,
) -> Result<(), StoreError> {
    let update = AssetUpdate {
        status: Some(AssetStatus::NotStarted),
        ..AssetUpdate::default()
    };
    state
        .store()
        .meta
        .update_asset(asset.resource_id, kind, asset.id, update)
        .await
        .map(drop)
}

/// Waits until the asset's row says `Succeeded` or `Failed`.
async fn wait_terminal(
    state: &AppState,
    resource: ResourceId,
    kind: AssetKind,
    id: Uuid,
) -> Result<Asset, StoreError> {
    loop {
        match state.store().meta.get_asset(resource, kind, id).await? {
            Some(a) if a.status.is_terminal() => return Ok(a),
            Some(_) => tokio::time::sleep(POLL).await,
            None => {
                return Err(StoreError::NotFound {
                    what: format!("{kind} {id}"),
                })
            }
        }
    }
}

/// Deletes the file a redone job replaced (a new artifact or result file is written under a
/// fresh id before the row points at it).
async fn drop_replaced(state: &AppState, done: &Asset, path: &[&str], old: Option<Uuid>) {
    let Some(old) = old else { return };
    if done.status != AssetStatus::Succeeded || doc_uuid(done, path) == Some(old) {
        return;
    }
    let key = asset_file_key(done.resource_id, done.id, old);
    if let Err(e) = state.store().blobs.delete(&key).await {
        tracing::warn!(%key, error = %e, "could not delete a replaced file");
    }
}

/// Checks an endpoint's model deployable and loads it, as its first `?cid=` request would.
async fn redeploy(state: &AppState, endpoint: &Asset, model: Option<Uuid>) -> Result<(), String> {
    let model = model.ok_or("its document names no model")?;
    let row = state
        .store()
        .meta
        .get_asset(endpoint.resource_id, AssetKind::Model, model)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("its model {model} is gone"))?;
    if row.status != AssetStatus::Succeeded {
        return Err(format!("its model {model} is {}", row.status));
    }
    let deployed = endpoint_model(state, endpoint.resource_id, &endpoint.id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let engines = state.engines().ok_or("the speech engines are not loaded")?;
    engines
        .bases
        .get(deployed.model.base_model())
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
