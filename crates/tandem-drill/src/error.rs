//! The crate's one error enum.

/// What a drill can fail with (a missed goal is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The scenario file is invalid.
    #[error("scenario: {0}")]
    Scenario(String),
    /// A region process could not be started, signalled or made ready.
    #[error("region {region}: {message}")]
    Region {
        /// The region.
        region: String,
        /// What went wrong.
        message: String,
    },
    /// Setting up the load (resources, audio, speaker profile) failed.
    #[error("setup: {0}")]
    Setup(String),
    /// Writing the report or the chart failed.
    #[error("report: {0}")]
    Report(String),
    /// No usable font for the PNG chart's text (the message says what to install); the SVG
    /// chart needs none, so a caller can make this a warning.
    #[error("chart font: {0}")]
    ChartFont(String),
    /// A fault proxy could not be set up.
    #[error("fault proxy: {0}")]
    Proxy(#[from] tandem_faults::ProxyError),
    /// A local I/O failure (temporary directory, proxy socket).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl DrillError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DrillError {
        let what = what.into();
        move |source| DrillError::Io { what, source }
    }

    pub(crate) fn region(region: &str, message: impl Into<String>) -> DrillError {
        DrillError::Region {
            region: region.to_owned(),
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DrillError> = std::result::Result<T, E>;
