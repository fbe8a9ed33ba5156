//! What every handler can reach.

use std::sync::{Arc, OnceLock};

use tandem_core::{RegionConfig, RegionName, TokenSigner};
use tandem_engines::tts::TtsEngine;
use tandem_engines::{Recognizer, SpeakerEncoder};
use tandem_store::Store;

use crate::base_engines::BaseEngines;
use crate::model_cache::{ModelCache, MODEL_CACHE_CAPACITY};
use crate::replication::Replication;
use crate::routes::status::RECENT_EVENTS;
use crate::workers::Workers;
use crate::{quota::Quotas, EnginePool, Metrics};
use tandem_core::EventLog;

/// The loaded speech engines. They load after the listener is up, so `/readyz` can say "not yet".
pub struct Engines {
    /// Speech-to-text: the region's default recognizer.
    pub recognizer: Arc<dyn Recognizer>,
    /// The Custom Speech base recognizers: the default one and those loaded on first use.
    pub bases: BaseEngines,
    /// Text-to-speech, with voice resolution and aliases.
    pub tts: Arc<TtsEngine>,
    /// Speaker embeddings (voice signatures) for speaker recognition.
    pub speaker: Arc<SpeakerEncoder>,
}

/// Shared state of one region's server.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegionConfig,
    store: Store,
    signer: TokenSigner,
    admin_token: Option<String>,
    engines: OnceLock<Engines>,
    stt_pool: EnginePool,
    tts_pool: EnginePool,
    quotas: Quotas,
    metrics: Metrics,
    replication: Arc<Replication>,
    custom_models: ModelCache,
    workers: Workers,
    events: EventLog,
}

/// Everything [`AppState::new`] assembles.
pub struct StateParts {
    /// The region's configuration.
    pub config: RegionConfig,
    /// Metadata and blobs.
    pub store: Store,
    /// The STS signer.
    pub signer: TokenSigner,
    /// The admin token, if the admin API is enabled.
    pub admin_token: Option<String>,
    /// The recognition (and speaker embedding) worker pool.
    pub stt_pool: EnginePool,
    /// The synthesis worker pool.
    pub tts_pool: EnginePool,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Paired-region replication state.
    pub replication: Arc<Replication>,
}

impl AppState {
    /// Builds the state. Engines are attached later with [`AppState::set_engines`].
    pub fn new(parts: StateParts) -> Self {
        let StateParts {
            config,
            store,
            signer,
            admin_token,
            stt_pool,
            tts_pool,
            metrics,
            replication,
        } = parts;
        metrics
            .speaker_serving
            .set(i64::from(replication.check_serving().is_ok()));
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                signer,
                admin_token,
                engines: OnceLock::new(),
                stt_pool,
                tts_pool,
                quotas: Quotas::default(),
                metrics,
                replication,
                custom_models: ModelCache::new(MODEL_CACHE_CAPACITY),
                workers: Workers::default(),
                events: EventLog::new(RECENT_EVENTS),
            }),
        }
    }

    /// Attaches the loaded engines; the region becomes ready.
    pub fn set_engines(&self, engines: Engines) {
        let _ = self.inner.engines.set(engines);
    }

    /// The engines, if loaded.
    pub fn engines(&self) -> Option<&Engines> {
        self.inner.engines.get()
    }

    /// The region's configuration.
    pub fn config(&self) -> &RegionConfig {
        &self.inner.config
    }

    /// The region's name.
    pub fn region(&self) -> &RegionName {
        &self.inner.config.region
    }

    /// Metadata and blobs.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The STS signer.
    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    /// The admin token, if the admin API is enabled.
    pub fn admin_token(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }

    /// The recognition worker pool.
    pub fn stt_pool(&self) -> &EnginePool {
        &self.inner.stt_pool
    }

    /// The synthesis worker pool.
    pub fn tts_pool(&self) -> &EnginePool {
        &self.inner.tts_pool
    }

    pub(crate) fn quotas(&self) -> &Quotas {
        &self.inner.quotas
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Paired-region replication and the speaker service's state.
    pub fn replication(&self) -> &Arc<Replication> {
        &self.inner.replication
    }

    /// Parsed Custom Speech models of deployed endpoints.
    pub(crate) fn custom_models(&self) -> &ModelCache {
        &self.inner.custom_models
    }

    /// The background workers' registry (`/status.json`, `tandem workers`).
    pub fn workers(&self) -> &Workers {
        &self.inner.workers
    }

    /// Recent failover-related events of this region, for the status page.
    pub(crate) fn events(&self) -> &EventLog {
        &self.inner.events
    }
}
