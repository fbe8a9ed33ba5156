//! One Tandem region, served over HTTP.
//!
//! [`router`] builds the whole API from a [`AppState`]: the Azure data-plane routes (STS,
//! short-audio speech-to-text, text-to-speech, voice list, speaker recognition, and Custom Speech
//! datasets under `/speechtotext/v3.2` and `/v3.1`), the admin API, and the operations routes
//! (`/healthz`, `/readyz`, `/metrics`, and the status page `/status` with `/status.json`, fed by
//! the [`workers`] registry). The `tandem` binary opens storage, builds the state and serves it.
//! Every error leaves through [`ApiError`], the one place where failures become status codes and
//! Azure error JSON.

#![deny(missing_docs)]

mod admin;
mod auth;
pub mod backup;
mod base_engines;
mod error;
mod jobs;
mod metrics;
mod model_cache;
mod pool;
mod quota;
pub mod replication;
mod routes;
mod state;
pub mod workers;

pub use admin::{create_resource, regenerate_key, CreatedResource};
pub use backup::open_region_store;
pub use base_engines::{BaseEngines, BaseError, BaseInfo, Loader, ON_DEMAND};
pub use error::{ApiError, V3Error};
pub use metrics::Metrics;
pub use pool::EnginePool;
pub use replication::{Follower, HttpPairLink, Replication, SpeakerState};
pub use routes::custom_speech::start_background;
pub use routes::router;
pub use routes::speaker::REQUIRED_SPEECH_SECS;
pub use state::{AppState, Engines, StateParts};
