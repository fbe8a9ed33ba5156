//! Test support: in-memory sources and sinks, backends, and raw object surgery.
#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;
use tandem_backup::*;
use tokio::io::AsyncRead;

/// Deterministic pseudo-random bytes (incompressible).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Compressible text-like bytes.
pub fn text(n: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog, 0123456789\n"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

/// An in-memory source. `fail_at`: reading that file fails after half its bytes.
#[derive(Default)]
pub struct MemSource {
    pub metadata: Bytes,
    pub files: BTreeMap<String, Bytes>,
    pub fail_at: Option<String>,
    pub opens: AtomicUsize,
    /// When true, fingerprints are a hash of the content (so unchanged files are skipped).
    pub fingerprints: bool,
}

impl MemSource {
    pub fn new(metadata: &[u8], files: &[(&str, Vec<u8>)]) -> Self {
        MemSource {
            metadata: Bytes::copy_from_slice(metadata),
            files: files
                .iter()
                .map(|(p, d)| (p.to_string(), Bytes::from(d.clone())))
                .collect(),
            ..Default::default()
        }
    }
}

#[async_trait]
impl BackupSource for MemSource {
    async fn metadata(&self) -> std::io::Result<Bytes> {
        Ok(self.metadata.clone())
    }

    async fn files(&self) -> std::io::Result<Vec<SourceFile>> {
        Ok(self
            .files
            .iter()
            .map(|(p, d)| SourceFile {
                path: p.clone(),
                size: d.len() as u64,
                fingerprint: self
                    .fingerprints
                    .then(|| blake3::hash(d).to_hex().to_string()),
            })
            .collect())
    }

    async fn open(&self, path: &str) -> std::io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let data = self.files[path].clone();
        if self.fail_at.as_deref() == Some(path) {
            let half = data.slice(..data.len() / 2);
            let failing = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(half), FailingReader);
            return Ok(Box::new(failing));
        }
        Ok(Box::new(std::io::Cursor::new(data)))
    }
}

struct FailingReader;

impl AsyncRead for FailingReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::other("disk on fire")))
    }
}

/// An in-memory sink: records every `create` and committed entries.
#[derive(Default, Clone)]
pub struct MemSink {
    pub created: Arc<AtomicUsize>,
    pub committed: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemSink {
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.committed.lock().unwrap().clone()
    }
}

#[async_trait]
impl RestoreSink for MemSink {
    async fn create(&self, entry: &RestoreEntry) -> std::io::Result<Box<dyn RestoreWriter>> {
        self.created.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemWriter {
            path: entry.path.clone(),
            data: Vec::new(),
            out: self.committed.clone(),
        }))
    }
}

struct MemWriter {
    path: String,
    data: Vec<u8>,
    out: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

#[async_trait]
impl RestoreWriter for MemWriter {
    async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        self.data.extend_from_slice(&data);
        Ok(())
    }
    async fn commit(self: Box<Self>) -> std::io::Result<()> {
        self.out.lock().unwrap().insert(self.path, self.data);
        Ok(())
    }
    async fn abort(self: Box<Self>) {}
}

/// A backend under test: makes fresh, empty targets.
pub trait Backend: Send + Sync {
    fn name(&self) -> &str;
    fn fresh(&self) -> Target;
}

pub struct Memory;
impl Backend for Memory {
    fn name(&self) -> &str {
        "memory"
    }
    fn fresh(&self) -> Target {
        Target {
            store: Arc::new(InMemory::new()),
            local_root: None,
        }
    }
}

pub struct Local(pub tempfile::TempDir);
impl Backend for Local {
    fn name(&self) -> &str {
        "local"
    }
    fn fresh(&self) -> Target {
        let dir = self.0.path().join(hex::encode(rand::random::<[u8; 6]>()));
        target_from_url(&format!("file://{}", dir.display()), &S3Options::default()).unwrap()
    }
}

/// S3 (e.g. Garage), from `TANDEM_TEST_S3_URL=s3://bucket/prefix` and [`S3Options::from_env`].
pub struct S3 {
    pub url: String,
    pub opts: S3Options,
}
impl S3 {
    pub fn from_env() -> Option<Self> {
        let url = std::env::var("TANDEM_TEST_S3_URL").ok()?;
        Some(S3 {
            url: url.trim_end_matches('/').to_owned(),
            opts: S3Options::from_env(),
        })
    }
}
impl Backend for S3 {
    fn name(&self) -> &str {
        "s3"
    }
    fn fresh(&self) -> Target {
        let url = format!("{}/{}", self.url, hex::encode(rand::random::<[u8; 6]>()));
        target_from_url(&url, &self.opts).unwrap()
    }
}

/// Every object key in the repository.
pub async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let mut k: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    k.sort();
    k
}

pub async fn get(store: &Arc<dyn ObjectStore>, key: &str) -> Vec<u8> {
    store
        .get(&Path::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

pub async fn put(store: &Arc<dyn ObjectStore>, key: &str, data: Vec<u8>) {
    store.put(&Path::from(key), data.into()).await.unwrap();
}

/// Flips one byte in the middle of the object.
pub async fn flip_byte(store: &Arc<dyn ObjectStore>, key: &str) {
    let mut data = get(store, key).await;
    let i = data.len() / 2 + 3;
    data[i] ^= 0x01;
    put(store, key, data).await;
}

/// Truncates the object to half its length.
pub async fn truncate(store: &Arc<dyn ObjectStore>, key: &str) {
    let mut data = get(store, key).await;
    data.truncate(data.len() / 2);
    put(store, key, data).await;
}
