//! The crate's one error enum.

/// What a call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The region refused the request itself (400, 403, 404, 413, 415): never failed over.
    #[error("{region} answered {status} {code}: {message}")]
    Caller {
        /// HTTP status.
        status: u16,
        /// Azure error code, or the status's reason when the body had none.
        code: String,
        /// Azure error message.
        message: String,
        /// The region that answered.
        region: String,
    },
    /// 401 again after refreshing the token once, or the key was refused by the STS.
    #[error("{region} refused the credentials: {message}")]
    Unauthorized {
        /// The region that refused.
        region: String,
        /// What it said.
        message: String,
    },
    /// Every candidate region failed (or none was available).
    #[error("all regions failed after {attempts} attempts; last: {last}")]
    AllRegionsFailed {
        /// Attempts made in total.
        attempts: u32,
        /// The last failure seen.
        last: String,
    },
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

/// The crate's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
