//! The crate's one error type.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a backup repository. Variants carry what a CLI needs to
/// print a useful message (and choose an exit code) without parsing text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no `tandem-backup.json` at the URL: not a repository (or not yet initialised).
    #[error(
        "{url} is not a tandem-backup repository (no tandem-backup.json); initialise it first"
    )]
    NotARepository {
        /// The repository URL.
        url: String,
    },
    /// `init` on a URL that already holds a repository.
    #[error("{url} already holds a tandem-backup repository")]
    AlreadyExists {
        /// The repository URL.
        url: String,
    },
    /// The repository (or one of its objects) was written by a newer format than this build reads.
    #[error("{what} has format {found}, this build reads up to {supported}: upgrade tandem")]
    FormatTooNew {
        /// What carries the version (the repository config, a manifest, a chunk).
        what: String,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The repository is encrypted and no key was supplied.
    #[error("the repository is encrypted: a key file is required")]
    KeyRequired,
    /// The supplied key is not the repository's key.
    #[error("the key file does not match this repository's key (key check {expected_check})")]
    WrongKey {
        /// The repository's key check prefix, to help find the right key file.
        expected_check: String,
    },
    /// A key was supplied for a repository that is not encrypted.
    #[error("a key was supplied, but the repository is not encrypted")]
    NotEncrypted,
    /// A key file could not be read or parsed.
    #[error("key file {path}: {reason}")]
    BadKeyFile {
        /// The key file path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No snapshot with this id.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// Damaged or missing data. Names whatever is known: the snapshot, the chunk, the file path.
    #[error(
        "corrupt repository data{}{}{}: {reason}",
        opt(" in snapshot ", snapshot),
        opt(", chunk ", chunk),
        opt(", file ", path)
    )]
    Corrupt {
        /// The snapshot concerned, when known.
        snapshot: Option<String>,
        /// The chunk id (hex), when a chunk is concerned.
        chunk: Option<String>,
        /// The file path (or `<metadata>`) that uses the chunk, when known.
        path: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The repository URL is not supported or malformed.
    #[error("invalid repository URL {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A repository config, option or retention policy is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The backup source failed (listing or reading a file, exporting metadata).
    #[error("backup source, {path}: {source}")]
    Source {
        /// The file path, or `<metadata>` / `<list>`.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The restore sink failed.
    #[error("restore sink, {path}: {source}")]
    Sink {
        /// The file path, or `<metadata>`.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The object store failed (one line: what failed, on which path, and the server's reason;
    /// object_store's own message repeats its sources at every level).
    #[error("storage: {0}")]
    Storage(String),
    /// Local I/O failed (key files, fsync).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A worker task panicked or was cancelled.
    #[error("internal: {0}")]
    Internal(String),
}

fn opt(label: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!("{label}{v}"))
        .unwrap_or_default()
}

impl Error {
    /// A [`Error::Corrupt`] with only a reason; callers fill in the rest with the `with_*`
    /// helpers.
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            snapshot: None,
            chunk: None,
            path: None,
            reason: reason.into(),
        }
    }

    /// Sets the snapshot of a [`Error::Corrupt`] (other variants are returned unchanged).
    pub(crate) fn with_snapshot(mut self, id: &str) -> Self {
        if let Error::Corrupt { snapshot, .. } = &mut self {
            snapshot.get_or_insert_with(|| id.to_owned());
        }
        self
    }

    /// Sets the file path of a [`Error::Corrupt`].
    pub(crate) fn with_path(mut self, p: &str) -> Self {
        if let Error::Corrupt { path, .. } = &mut self {
            path.get_or_insert_with(|| p.to_owned());
        }
        self
    }

    /// True for damaged or missing repository data (as opposed to I/O, config or key errors).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("worker task: {e}"))
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Storage(tandem_objects::describe_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_are_one_line_with_the_servers_reason() {
        let server = std::io::Error::other(
            "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error>\
             <Code>AccessDenied</Code><Message>Forbidden: Invalid signature</Message></Error>",
        );
        let e: Error = object_store::Error::PermissionDenied {
            path: "repo/tandem-backup.json".into(),
            source: Box::new(server),
        }
        .into();
        let text = e.to_string();
        assert!(
            text.contains("access denied to repo/tandem-backup.json (AccessDenied: Forbidden: Invalid signature)"),
            "{text}"
        );
        assert_eq!(text.matches("Invalid signature").count(), 1, "{text}");
        let e: Error = object_store::Error::NotFound {
            path: "snapshots/x".into(),
            source: Box::new(std::io::Error::other("gone")),
        }
        .into();
        assert_eq!(e.to_string(), "storage: not found: snapshots/x");
    }
}
