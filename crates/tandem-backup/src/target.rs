//! Where a repository lives: a URL turned into an `object_store` backend.
//!
//! - `file:///abs/path`: the local filesystem (the directory is created).
//! - `s3://bucket/optional/prefix`: Amazon S3 or any S3-compatible server (Garage, MinIO),
//!   configured by [`S3Options`].

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::{Error, Result};

/// S3 connection settings. [`S3Options::from_env`] reads them from the environment; any field
/// left `None` falls back to object_store's own defaults.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL, e.g. `http://127.0.0.1:3900` for Garage. `None`: AWS.
    pub endpoint: Option<String>,
    /// Region (SigV4 signs with it). Garage's default is `garage`. `None`: `us-east-1`.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
    /// Allow plain-http endpoints. Implied by an `http://` endpoint.
    pub allow_http: bool,
    /// Use virtual-hosted-style requests (`bucket.host`); the default is path style
    /// (`host/bucket`), which S3-compatible servers expect.
    pub virtual_hosted_style: bool,
}

impl S3Options {
    /// Reads, in order of precedence:
    ///
    /// | field | variables |
    /// |---|---|
    /// | endpoint | `TANDEM_BACKUP_S3_ENDPOINT`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` |
    /// | region | `TANDEM_BACKUP_S3_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION` |
    /// | access key | `AWS_ACCESS_KEY_ID` |
    /// | secret | `AWS_SECRET_ACCESS_KEY` |
    /// | session token | `AWS_SESSION_TOKEN` |
    /// | allow_http | `TANDEM_BACKUP_S3_ALLOW_HTTP`, `AWS_ALLOW_HTTP` (`true`/`1`) |
    /// | virtual_hosted_style | `TANDEM_BACKUP_S3_VIRTUAL_HOSTED_STYLE` (`true`/`1`) |
    pub fn from_env() -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let flag =
            |names: &[&str]| var(names).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        S3Options {
            endpoint: var(&[
                "TANDEM_BACKUP_S3_ENDPOINT",
                "AWS_ENDPOINT_URL_S3",
                "AWS_ENDPOINT_URL",
            ]),
            region: var(&[
                "TANDEM_BACKUP_S3_REGION",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
            ]),
            access_key_id: var(&["AWS_ACCESS_KEY_ID"]),
            secret_access_key: var(&["AWS_SECRET_ACCESS_KEY"]),
            session_token: var(&["AWS_SESSION_TOKEN"]),
            allow_http: flag(&["TANDEM_BACKUP_S3_ALLOW_HTTP", "AWS_ALLOW_HTTP"]),
            virtual_hosted_style: flag(&["TANDEM_BACKUP_S3_VIRTUAL_HOSTED_STYLE"]),
        }
    }
}

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
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(invalid(
                "file:// URLs need an absolute path (file:///abs/path)",
            ));
        }
        let root = PathBuf::from(path);
        std::fs::create_dir_all(&root)?;
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        return Ok(Target {
            store: Arc::new(fs),
            local_root: Some(root),
        });
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket (s3://bucket/prefix)"));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(s3.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_virtual_hosted_style_request(s3.virtual_hosted_style);
        if let Some(e) = &s3.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(s3.allow_http || e.starts_with("http://"));
        } else if s3.allow_http {
            b = b.with_allow_http(true);
        }
        if let Some(k) = &s3.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &s3.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        if let Some(t) = &s3.session_token {
            b = b.with_token(t);
        }
        let s3store = b.build()?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3store)
        } else {
            let p = object_store::path::Path::parse(prefix)
                .map_err(|e| invalid(&format!("bad prefix: {e}")))?;
            Arc::new(PrefixStore::new(s3store, p))
        };
        return Ok(Target {
            store,
            local_root: None,
        });
    }
    Err(invalid("supported: file:///abs/path, s3://bucket/prefix"))
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
