//! What a recovery reports: its steps (with Azure's guide beside them) and what happened to
//! each model, evaluation and endpoint; and how it shows progress.

use std::time::Duration;

use tandem_core::ResourceId;
use tandem_store::{AssetStatus, StoreError};
use uuid::Uuid;

/// The steps of a recovery, in order, with the time Azure's guide gives each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Uploading the data (Tandem: restoring the snapshot).
    Restore,
    /// Model creation (Tandem: reusing or retraining each custom model).
    Models,
    /// Running the evaluations again.
    Evaluations,
    /// Deploying the endpoints.
    Endpoints,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 4] = [
        Step::Restore,
        Step::Models,
        Step::Evaluations,
        Step::Endpoints,
    ];

    /// A short name for tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Step::Restore => "upload/restore",
            Step::Models => "model creation",
            Step::Evaluations => "evaluation",
            Step::Endpoints => "deployment",
        }
    }

    /// What the Azure Custom Speech guide to offline failover budgets for the step: upload
    /// 15 min, model creation 6 h, evaluation 30 min, deployment 10 min.
    pub fn azure_guide(self) -> Duration {
        Duration::from_secs(match self {
            Step::Restore => 15 * 60,
            Step::Models => 6 * 3600,
            Step::Evaluations => 30 * 60,
            Step::Endpoints => 10 * 60,
        })
    }
}

/// What a recovery does beyond the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoverOptions {
    /// Retrain every model that has datasets, even one whose artifact could be reused (to
    /// measure the full cost).
    pub retrain_all: bool,
}

/// What happened to one custom model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelAction {
    /// Its artifact was kept: this region runs the same base engine.
    Reused {
        /// The base engine, e.g. `whisper-tiny.en`.
        base_model: String,
        /// sha256 of the base engine's weights, in the artifact and in this region.
        base_sha256: String,
    },
    /// It was trained again from its datasets, for `reason`.
    Retrained {
        /// Why its artifact was not reused.
        reason: String,
    },
    /// It was left as restored, for `reason` (failed in the source, or nothing to retrain
    /// from).
    Kept {
        /// Why.
        reason: String,
    },
}

/// One custom model's outcome.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// The owning resource.
    pub resource: ResourceId,
    /// The model (its id is kept by the restore).
    pub id: Uuid,
    /// `displayName`.
    pub name: String,
    /// Reused, retrained or kept.
    pub action: ModelAction,
    /// Its status afterwards (`Failed` when retraining failed).
    pub status: AssetStatus,
    /// `properties.error.message`, when it is `Failed`.
    pub error: Option<String>,
}

/// One evaluation run again.
#[derive(Debug, Clone)]
pub struct EvaluationOutcome {
    /// The owning resource.
    pub resource: ResourceId,
    /// The evaluation.
    pub id: Uuid,
    /// `displayName`.
    pub name: String,
    /// `wordErrorRate1` and `2` as restored (the source region's run).
    pub wer_before: [Option<f64>; 2],
    /// `wordErrorRate1` and `2` of the run in this region.
    pub wer_after: [Option<f64>; 2],
    /// Its status afterwards.
    pub status: AssetStatus,
    /// `properties.error.message`, when it is `Failed`.
    pub error: Option<String>,
}

/// One endpoint redeployed.
#[derive(Debug, Clone)]
pub struct EndpointOutcome {
    /// The owning resource.
    pub resource: ResourceId,
    /// The endpoint (its id, the `cid` of requests, is kept).
    pub id: Uuid,
    /// `displayName`.
    pub name: String,
    /// The custom model it serves.
    pub model: Option<Uuid>,
    /// Why it cannot serve, if it cannot.
    pub problem: Option<String>,
    /// How long checking and loading its model took.
    pub took: Duration,
}

/// What a recovery did, step by step.
#[derive(Debug, Clone, Default)]
pub struct RecoverReport {
    /// The steps run here, in order (the restore is timed by the caller).
    pub steps: Vec<(Step, Duration)>,
    /// Every custom model.
    pub models: Vec<ModelOutcome>,
    /// Every evaluation.
    pub evaluations: Vec<EvaluationOutcome>,
    /// Every endpoint.
    pub endpoints: Vec<EndpointOutcome>,
}

/// Why a recovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The speech engines are not loaded into the state.
    #[error("the speech engines are not loaded")]
    NoEngines,
    /// The store failed.
    #[error("the region's store: {0}")]
    Store(#[from] StoreError),
}

/// Progress of a recovery, for a command line to show.
pub trait RecoverProgress: Send + Sync {
    /// `step` starts, over `items` assets.
    fn start(&self, step: Step, items: usize);
    /// One asset of the step is done.
    fn advance(&self, what: &str);
    /// `step` is over.
    fn finish(&self, step: Step);
}

/// No progress shown.
impl RecoverProgress for () {
    fn start(&self, _: Step, _: usize) {}
    fn advance(&self, _: &str) {}
    fn finish(&self, _: Step) {}
}
