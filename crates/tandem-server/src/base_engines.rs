//! The region's base recognizers: the Custom Speech base models it can train on, evaluate and
//! serve.
//!
//! The default recognizer (Whisper tiny.en) is loaded when the region starts, as before. The
//! others ([`ON_DEMAND`]: Whisper base, multilingual) are *pulled and loaded on first use*: the
//! first caller that needs one starts a single background job (a blocking task) that pulls the
//! model into the region's model directory if it is not there ([`ModelCache::pull`]: pinned
//! sha256, written to a temporary file and renamed, so processes sharing the directory never see
//! half a file), then loads it. Meanwhile, callers that cannot wait get
//! [`BaseError::Loading`] (recognition answers 503 with `Retry-After`), and the ones that can
//! ([`BaseEngines::get`], e.g. training) wait for the outcome. A failed job is logged and retried
//! by the next caller.

use std::path::PathBuf;
use std::sync::Arc;

use tandem_engines::models::{pinned, ModelCache, WHISPER_BASE};
use tandem_engines::stt::WhisperRecognizer;
use tandem_engines::Recognizer;
use tokio::sync::watch;

use crate::ApiError;

/// The base models loaded on first use, in the order `GET /models/base` lists them (after the
/// default recognizer).
pub const ON_DEMAND: &[&str] = &[WHISPER_BASE];

/// Pulls (if needed) and loads one base model by name; blocking.
pub type Loader = Arc<dyn Fn(&str) -> Result<Arc<dyn Recognizer>, String> + Send + Sync>;

/// What a base model is, whether or not it is loaded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseInfo {
    /// The engine's name, e.g. `whisper-tiny.en`: what adapted models record as their base.
    pub name: String,
    /// sha256 of the model file (the pinned one: the file need not be present).
    pub sha256: String,
    /// Whether it has a token vocabulary, so that it can be adapted.
    pub adaptable: bool,
    /// Whether it is the region's default recognizer (loaded at start).
    pub default: bool,
}

/// Why a base recognizer cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseError {
    /// This region does not know that base model.
    #[error("base model {0} is not available in this region")]
    Unknown(String),
    /// It is being pulled and loaded; try again shortly.
    #[error("base model {0} is being installed in this region; try again shortly")]
    Loading(String),
    /// Pulling or loading it failed (the reason is logged); the next use tries again.
    #[error("base model {0} could not be installed in this region; try again later")]
    Failed(String),
}

/// Where a request needs the recognizer now: unknown → 400 `ModelNotDeployable`; being
/// installed, or failed (retried on the next use) → 503 with `Retry-After`.
impl From<BaseError> for ApiError {
    fn from(e: BaseError) -> Self {
        let message = e.to_string();
        match e {
            BaseError::Unknown(_) => ApiError::bad_request("ModelNotDeployable", message),
            BaseError::Loading(_) => ApiError::Unavailable {
                message,
                retry_after: 5,
            },
            BaseError::Failed(_) => ApiError::Unavailable {
                message,
                retry_after: 30,
            },
        }
    }
}

#[derive(Clone)]
enum Phase {
    Absent,
    Loading,
    Ready(Arc<dyn Recognizer>),
    Failed,
}

/// One base model loaded on first use.
struct OnDemand {
    name: &'static str,
    sha256: &'static str,
    phase: watch::Sender<Phase>,
}

/// The default recognizer and the base models loaded on demand.
pub struct BaseEngines {
    default: Arc<dyn Recognizer>,
    on_demand: Vec<Arc<OnDemand>>,
    loader: Loader,
}

impl BaseEngines {
    /// The registry of a region: `default` (already loaded) and the Whisper models of
    /// [`ON_DEMAND`], pulled into `model_dir` and loaded with `threads` CPU threads per
    /// recognition when first needed.
    pub fn new(default: Arc<dyn Recognizer>, model_dir: PathBuf, threads: usize) -> Self {
        let loader: Loader = Arc::new(move |name: &str| {
            let cache = ModelCache::new(model_dir.clone());
            let path = match cache.model_path(name) {
                Ok(p) => p,
                Err(_) => {
                    tracing::info!(model = name, dir = %model_dir.display(), "pulling a base model on first use");
                    cache
                        .pull(name, &|ev| tracing::info!(model = name, ?ev, "model pull"))
                        .map_err(|e| e.to_string())?
                }
            };
            let r = WhisperRecognizer::load(&path, threads).map_err(|e| e.to_string())?;
            Ok(Arc::new(r) as Arc<dyn Recognizer>)
        });
        Self::with_loader(default, ON_DEMAND, loader)
    }

    /// A registry whose on-demand models (`names`, each pinned) are made by `loader`.
    pub fn with_loader(default: Arc<dyn Recognizer>, names: &[&str], loader: Loader) -> Self {
        let on_demand = names
            .iter()
            .filter(|&&n| n != default.name())
            .filter_map(|&n| pinned(n))
            .map(|m| {
                Arc::new(OnDemand {
                    name: m.name,
                    sha256: m.ggml_sha256,
                    phase: watch::Sender::new(Phase::Absent),
                })
            })
            .collect();
        Self {
            default,
            on_demand,
            loader,
        }
    }

    /// The region's default recognizer.
    pub fn default_recognizer(&self) -> &Arc<dyn Recognizer> {
        &self.default
    }

    /// Every base model, the default first.
    pub fn models(&self) -> Vec<BaseInfo> {
        let d = &self.default;
        let first = BaseInfo {
            name: d.name().to_owned(),
            sha256: d
                .vocabulary()
                .map(|v| v.model_sha256().to_owned())
                .unwrap_or_default(),
            adaptable: d.vocabulary().is_some(),
            default: true,
        };
        let rest = self.on_demand.iter().map(|m| BaseInfo {
            name: m.name.to_owned(),
            sha256: m.sha256.to_owned(),
            adaptable: true,
            default: false,
        });
        std::iter::once(first).chain(rest).collect()
    }

    fn slot(&self, name: &str) -> Option<&Arc<OnDemand>> {
        self.on_demand.iter().find(|m| m.name == name)
    }

    /// The recognizer of base model `name` if it is loaded; otherwise starts pulling and
    /// loading it (once) and answers [`BaseError::Loading`].
    pub fn get_now(&self, name: &str) -> Result<Arc<dyn Recognizer>, BaseError> {
        if name == self.default.name() {
            return Ok(self.default.clone());
        }
        let slot = self
            .slot(name)
            .ok_or_else(|| BaseError::Unknown(name.to_owned()))?;
        if let Phase::Ready(r) = &*slot.phase.borrow() {
            return Ok(r.clone());
        }
        self.start(slot);
        match &*slot.phase.borrow() {
            Phase::Ready(r) => Ok(r.clone()),
            _ => Err(BaseError::Loading(name.to_owned())),
        }
    }

    /// The recognizer of base model `name`, pulling and loading it first if needed (and
    /// waiting for a job already running). [`BaseError::Failed`] if that job fails.
    pub async fn get(&self, name: &str) -> Result<Arc<dyn Recognizer>, BaseError> {
        if name == self.default.name() {
            return Ok(self.default.clone());
        }
        let slot = self
            .slot(name)
            .ok_or_else(|| BaseError::Unknown(name.to_owned()))?;
        let mut rx = slot.phase.subscribe();
        if let Phase::Ready(r) = &*rx.borrow_and_update() {
            return Ok(r.clone());
        }
        // Starts a job unless one is running; a previous failure is retried.
        self.start(slot);
        let phase = rx
            .wait_for(|p| matches!(p, Phase::Ready(_) | Phase::Failed))
            .await
            .map(|p| p.clone())
            .unwrap_or(Phase::Failed);
        match phase {
            Phase::Ready(r) => Ok(r),
            _ => Err(BaseError::Failed(name.to_owned())),
        }
    }

    /// Starts the pull-and-load job of `slot` unless it is loading or loaded.
    fn start(&self, slot: &Arc<OnDemand>) {
        let begin = slot.phase.send_if_modified(|p| {
            if matches!(p, Phase::Absent | Phase::Failed) {
                *p = Phase::Loading;
                true
            } else {
                false
            }
        });
        if !begin {
            return;
        }
        let slot = slot.clone();
        let loader = self.loader.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader(slot.name)))
                    .unwrap_or_else(|_| Err("the loader panicked".into()));
            let phase = match outcome {
                Ok(r) => {
                    tracing::info!(
                        model = slot.name,
                        secs = started.elapsed().as_secs_f64(),
                        "base model loaded"
                    );
                    Phase::Ready(r)
                }
                Err(reason) => {
                    tracing::error!(model = slot.name, %reason, "cannot pull or load a base model");
                    Phase::Failed
                }
            };
            slot.phase.send_replace(phase);
        });
    }
}

#[cfg(test)]
mod tests;
