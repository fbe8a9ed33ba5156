//! Black-box test support for Tandem.
//!
//! [`RegionProcess::start`] writes a region config into a fresh temporary directory, starts the
//! real `tandem serve` binary on `127.0.0.1:0`, reads the bound address from its stdout and
//! waits for `/readyz`. Tests then talk to it over real HTTP, kill it with SIGKILL or SIGTERM,
//! and restart it on the same data. The STS secret is written by the harness, so tests can also
//! sign tokens (expired, foreign) with [`RegionProcess::signer`]. [`FaultProxy`] sits in front of
//! a region to inject hangs, refusals, resets, delays and error statuses. [`SharedStorage`]
//! puts the nodes of a region on SQLite and local files, or on a fresh PostgreSQL database and
//! S3 prefix of their own.

#![deny(missing_docs)]

mod data;
mod fixtures;
mod gateway;
mod process;
mod proxy;
mod region;
mod storage;

pub use data::{biology, shared_data, BiologyClip};
pub use fixtures::{model_dir, HARVARD_SENTENCES, SPEAKER_SAMPLE_VOICES};
pub use gateway::GatewayProcess;
pub use proxy::{Fault, FaultProxy};
pub use region::{RegionOptions, RegionProcess, ResourceKeys};
pub use storage::{SharedStorage, TestDatabase};
