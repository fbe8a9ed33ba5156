//! Object storage URLs, shared by every crate that keeps bytes in an object store (the blob
//! store of a region, the backup repository): one place turns a URL into an `object_store`
//! backend, so both accept the same URLs with the same settings.
//!
//! - `file:///abs/path`: the local filesystem (the directory is created). The caller gets the
//!   root back, because `object_store`'s local backend does not fsync and durable callers do.
//! - `s3://bucket/optional/prefix`: Amazon S3 or any S3-compatible server (Garage, MinIO, Ceph
//!   RGW), path-style by default, configured by [`S3Options`].
//!
//! | item | what |
//! |---|---|
//! | [`open_url`] | URL → [`Opened`] backend |
//! | [`S3Options`] | endpoint, region, credentials; [`S3Options::from_env`] |
//! | [`put_large`] | a put that uses multipart upload above [`MULTIPART_THRESHOLD`] |
//! | [`UrlError`] | what can go wrong opening one |
//! | [`describe_error`] | an object store error in one line |

#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, WriteMultipart};

/// S3 connection settings. [`S3Options::from_env`] reads them from the environment; any field
/// left `None` falls back to object_store's own defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// An opened backend, plus the local root when it is the filesystem (whose writes durable
/// callers fsync themselves).
#[derive(Debug, Clone)]
pub struct Opened {
    /// The backend, rooted at the URL's path or prefix.
    pub store: Arc<dyn ObjectStore>,
    /// The local directory, for `file://` URLs.
    pub local_root: Option<PathBuf>,
}

/// Why a URL could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// The URL is not one this build understands.
    #[error("{url}: {reason}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong, and what is supported.
        reason: String,
    },
    /// Creating the local directory failed.
    #[error("{url}: creating the directory: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// object_store refused the configuration.
    #[error("{url}: {source}")]
    Backend {
        /// The URL.
        url: String,
        /// The error.
        source: object_store::Error,
    },
}

/// The URLs [`open_url`] takes, for error messages.
pub const SUPPORTED: &str = "file:///abs/path, s3://bucket/prefix";

/// Turns `url` into a backend rooted at its path (`file://`) or prefix (`s3://`).
pub fn open_url(url: &str, s3: &S3Options) -> Result<Opened, UrlError> {
    let invalid = |reason: &str| UrlError::Invalid {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let backend = |source| UrlError::Backend {
        url: url.to_owned(),
        source,
    };
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(invalid(
                "file:// URLs need an absolute path (file:///abs/path)",
            ));
        }
        let root = PathBuf::from(path);
        std::fs::create_dir_all(&root).map_err(|source| UrlError::Io {
            url: url.to_owned(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(backend)?;
        return Ok(Opened {
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
        let s3store = b.build().map_err(backend)?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3store)
        } else {
            let p = object_store::path::Path::parse(prefix)
                .map_err(|e| invalid(&format!("bad prefix: {e}")))?;
            Arc::new(PrefixStore::new(s3store, p))
        };
        return Ok(Opened {
            store,
            local_root: None,
        });
    }
    Err(invalid(&format!("supported: {SUPPORTED}")))
}

/// Objects larger than this go up in parts ([`put_large`]).
pub const MULTIPART_THRESHOLD: usize = 32 << 20;
/// The size of each part of a multipart upload (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 16 << 20;

/// Stores `data` at `path`: one PUT up to [`MULTIPART_THRESHOLD`], a multipart upload of
/// [`PART_SIZE`] parts (a few in flight) above it, so a large model artifact neither needs one
/// huge request nor restarts from zero when a part fails (object_store retries parts). The
/// object appears only when the upload completes; a failed upload is aborted.
pub async fn put_large(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
    data: Bytes,
) -> object_store::Result<()> {
    if data.len() <= MULTIPART_THRESHOLD {
        store.put(path, data.into()).await?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    for part in data.chunks(PART_SIZE) {
        w.wait_for_capacity(4).await?;
        w.write(part);
    }
    w.finish().await?;
    Ok(())
}

/// A one-line description of an object store error: its kind and path, and the innermost
/// cause (for S3, the server's `<Message>` when the reply carries one).
pub fn describe_error(e: &object_store::Error) -> String {
    use object_store::Error as E;
    let mut innermost: &dyn std::error::Error = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let cause = innermost.to_string();
    let cause = match (cause.find("<Message>"), cause.find("</Message>")) {
        (Some(a), Some(b)) if a + 9 <= b => {
            let code = match (cause.find("<Code>"), cause.find("</Code>")) {
                (Some(c), Some(d)) if c + 6 <= d => format!("{}: ", &cause[c + 6..d]),
                _ => String::new(),
            };
            format!("{code}{}", &cause[a + 9..b])
        }
        _ => cause,
    };
    match e {
        E::NotFound { path, .. } => format!("not found: {path}"),
        E::PermissionDenied { path, .. } | E::Unauthenticated { path, .. } => format!(
            "access denied to {path} ({cause}); check the access key id and secret, and the \
             bucket's permissions"
        ),
        E::AlreadyExists { path, .. } => format!("already exists: {path}"),
        E::Precondition { path, .. } => format!("precondition failed: {path}"),
        E::Generic { store, .. } => format!("{store}: {cause}"),
        _ => cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/repo", dir.path().display());
        let t = open_url(&url, &S3Options::default()).unwrap();
        assert!(t.local_root.unwrap().is_dir());
        let s3 = S3Options {
            endpoint: Some("http://127.0.0.1:3900".into()),
            region: Some("garage".into()),
            access_key_id: Some("GK1".into()),
            secret_access_key: Some("s".into()),
            ..Default::default()
        };
        let t = open_url("s3://bucket/some/prefix", &s3).unwrap();
        assert!(t.local_root.is_none());
        for bad in ["file://rel/path", "s3:///x", "gs://b", "/abs"] {
            assert!(
                matches!(open_url(bad, &s3), Err(UrlError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn large_puts_go_in_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let t = open_url(
            &format!("file://{}", dir.path().display()),
            &S3Options::default(),
        )
        .unwrap();
        let big: Vec<u8> = (0..MULTIPART_THRESHOLD + PART_SIZE + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let path = object_store::path::Path::from("a/big");
        put_large(&*t.store, &path, Bytes::from(big.clone()))
            .await
            .unwrap();
        let back = t.store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(back.len(), big.len());
        assert!(back[..] == big[..]);
        let small = object_store::path::Path::from("a/small");
        put_large(&*t.store, &small, Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(
            &t.store.get(&small).await.unwrap().bytes().await.unwrap()[..],
            b"x"
        );
    }
}
