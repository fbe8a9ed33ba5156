//! The repository config object, `tandem-backup.json` (never encrypted: it holds no secret).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Object key of the repository config.
pub const CONFIG_KEY: &str = "tandem-backup.json";
/// The repository format this build writes and the newest it reads.
pub const REPO_FORMAT: u32 = 1;

/// The repository config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Repository format version.
    pub format: u32,
    /// Random repository id (32 hex digits).
    pub id: String,
    /// When the repository was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created: time::OffsetDateTime,
    /// Chunker parameters: every backup into this repository chunks with them, so that equal
    /// data yields equal chunks.
    pub chunker: ChunkerParams,
    /// `None`: plaintext repository.
    pub encryption: Option<EncryptionConfig>,
}

/// Content-defined chunking parameters (FastCDC 2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Always `"fastcdc-v2020"`.
    pub algorithm: ChunkerAlgorithm,
    /// Minimum chunk size in bytes.
    pub min_size: u32,
    /// Average (target) chunk size in bytes.
    pub avg_size: u32,
    /// Maximum chunk size in bytes.
    pub max_size: u32,
}

/// The chunking algorithm (only one so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC 2020, normalisation level 1, gear table seeded (0 unless encrypted).
    #[serde(rename = "fastcdc-v2020")]
    FastCdcV2020,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdcV2020,
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Checks the sizes are ordered and within FastCDC's bounds.
    pub fn validate(&self) -> Result<()> {
        use fastcdc::v2020 as f;
        let ok = (f::MINIMUM_MIN..=f::MINIMUM_MAX).contains(&self.min_size)
            && (f::AVERAGE_MIN..=f::AVERAGE_MAX).contains(&self.avg_size)
            && (f::MAXIMUM_MIN..=f::MAXIMUM_MAX).contains(&self.max_size)
            && self.min_size <= self.avg_size
            && self.avg_size <= self.max_size;
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!("invalid chunker sizes {self:?}")))
        }
    }
}

/// Encryption settings of an encrypted repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionConfig {
    /// Always `"xchacha20poly1305"`.
    pub cipher: String,
    /// How keys derive from the key file: always `"blake3-derive-key-v1"`.
    pub kdf: String,
    /// [`crate::Key::check`] of the repository key, to refuse a wrong key up front.
    pub key_check: String,
}

/// The cipher name in [`EncryptionConfig::cipher`].
pub(crate) const CIPHER: &str = "xchacha20poly1305";
/// The KDF name in [`EncryptionConfig::kdf`].
pub(crate) const KDF: &str = "blake3-derive-key-v1";
