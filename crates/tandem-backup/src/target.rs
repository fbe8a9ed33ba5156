//! Where a repository lives: a URL turned into an `object_store` backend by
//! [`tandem_objects::open_url`], the one place Tandem opens object storage URLs.
//!
//! - `file:///abs/path`: the local filesystem (the directory is created).
//! - `s3://bucket/optional/prefix`: Amazon S3 or any S3-compatible server (Garage, MinIO),
//!   configured by [`S3Options`].

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
pub use tandem_objects::S3Options;
use tandem_objects::UrlError;

use crate::{Error, Result};

/// An opened backend, plus the local root when it is the filesystem (whose writes the
/// repository fsyncs itself).
#[derive(Debug, Clone)]
pub struct Target {
    /// The backend, rooted at the repository prefix.
    pub store: Arc<dyn ObjectStore>,
    /// The local directory, for `file://` URLs.
    pub local_root: Option<PathBuf>,
}

/// Builds the backend for `url` (`file:///abs/path` or `s3://bucket[/prefix]`), rooted at the
/// repository prefix.
pub fn target_from_url(url: &str, s3: &S3Options) -> Result<Target> {
    match tandem_objects::open_url(url, s3) {
        Ok(o) => Ok(Target {
            store: o.store,
            local_root: o.local_root,
        }),
        Err(UrlError::Invalid { url, reason }) => Err(Error::InvalidUrl { url, reason }),
        Err(UrlError::Io { source, .. }) => Err(Error::Io(source)),
        Err(UrlError::Backend { source, .. }) => Err(source.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/repo", dir.path().display());
        let t = target_from_url(&url, &S3Options::default()).unwrap();
        assert!(t.local_root.unwrap().is_dir());
        let s3 = S3Options {
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
            access_key_id: Some("GK1".into()),
            secret_access_key: Some("s".into()),
            ..Default::default()
        };
        let t = target_from_url("s3://bucket/some/prefix", &s3).unwrap();
        assert!(t.local_root.is_none());
        for bad in ["file://rel/path", "s3:///x", "gs://b", "/abs"] {
            assert!(
                matches!(target_from_url(bad, &s3), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
