//! Tandem's shared vocabulary.
//!
//! Everything that more than one layer has to agree on lives here and nowhere else: what a region
//! name is, how resource keys are made and hashed, how an STS token is signed and checked, and the
//! shape of a region's configuration. This crate does no I/O beyond reading a config file.

#![deny(missing_docs)]

mod config;
mod error;
mod ids;
mod keys;
mod peer;
mod status_page;
mod token;

pub use config::{
    default_model_dir, host_name, BackupConfig, CustomSpeechConfig, PeerConfig, QuotaScope,
    RegionConfig, ReplicationConfig, StorageConfig, CONFIG_FORMAT_VERSION,
};
pub use error::{CoreError, Result};
pub use ids::{RegionName, ResourceId};
pub use keys::{KeyHash, KeySlot, ResourceKey};
pub use peer::{
    PeerAuth, PeerAuthError, PeerSignature, MAX_SKEW_SECS, PEER_HEADER, PEER_SIGNATURE_HEADER,
    PEER_TIME_HEADER,
};
pub use status_page::{
    status_page_html, status_wants_html, EventLog, StatusEvent, STATUS_REFRESH_MS,
};
pub use token::{Claims, TokenSigner, TOKEN_ISSUER};
