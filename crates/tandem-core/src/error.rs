use thiserror::Error;

/// Errors of the core vocabulary: malformed names, keys, tokens and configuration.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A region name is not a lowercase DNS label such as `westus`.
    #[error("invalid region name {0:?}: use 1-32 lowercase letters, digits or '-'")]
    InvalidRegion(String),
    /// A resource id is not a UUID.
    #[error("invalid resource id {0:?}")]
    InvalidResourceId(String),
    /// A key slot other than key1/key2 was named.
    #[error("invalid key name {0:?}: use key1 or key2")]
    InvalidKeySlot(String),
    /// A token could not be parsed or its signature does not verify.
    #[error("malformed or forged token")]
    BadToken,
    /// A well-formed token has expired.
    #[error("token expired")]
    TokenExpired,
    /// A well-formed token was issued by another region.
    #[error("token was issued by region {issued_by}, not {expected}")]
    ForeignToken {
        /// Region named in the token.
        issued_by: String,
        /// Region that checked it.
        expected: String,
    },
    /// The configuration file could not be read or parsed.
    #[error("configuration: {0}")]
    Config(String),
}

/// Result alias for this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
