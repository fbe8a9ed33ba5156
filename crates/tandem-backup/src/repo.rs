//! Opening and initialising a repository, and the object-level plumbing the operations share:
//! durable puts, chunk and manifest reads, listings.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions};
use time::OffsetDateTime;

use crate::config::{self, ChunkerParams, EncryptionConfig, RepoConfig, CONFIG_KEY, REPO_FORMAT};
use crate::key::Key;
use crate::manifest::{self, Manifest, Totals, MANIFEST_FORMAT};
use crate::object::{ChunkId, Codec, KIND_CHUNK, KIND_MANIFEST};
use crate::target::{target_from_url, S3Options, Target};
use crate::{Error, Result};

/// How to open (or create) a repository.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    /// The key, for an encrypted repository (and, at `init`, to make it encrypted).
    pub key: Option<Key>,
    /// S3 settings for `s3://` URLs.
    pub s3: S3Options,
    /// Chunker parameters for `init` (an existing repository keeps its own).
    pub chunker: ChunkerParams,
    /// zstd level for new objects; 0 stores them uncompressed. Default 3.
    pub compression_level: i32,
    /// Parallel object transfers. Default 8.
    pub concurrency: usize,
    /// fsync local-filesystem writes before counting them stored. Default true.
    pub fsync: bool,
}

impl Default for RepoOptions {
    fn default() -> Self {
        RepoOptions {
            key: None,
            s3: S3Options::default(),
            chunker: ChunkerParams::default(),
            compression_level: 3,
            concurrency: 8,
            fsync: true,
        }
    }
}

/// A snapshot as listed: its id and time, and the manifest's header when it could be read.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    /// Snapshot id.
    pub id: String,
    /// Time from the id (also available when the manifest is unreadable).
    pub time: OffsetDateTime,
    /// The manifest header, or `None` when it is unreadable.
    pub summary: Option<SnapshotSummary>,
    /// Why the manifest is unreadable.
    pub error: Option<String>,
}

/// A snapshot's manifest without its file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Snapshot id.
    pub id: String,
    /// When the backup started.
    pub created: OffsetDateTime,
    /// Region.
    pub region: String,
    /// Host.
    pub host: String,
    /// Tool version that wrote it.
    pub tool_version: String,
    /// User tags.
    pub tags: BTreeMap<String, String>,
    /// Parent snapshot.
    pub parent: Option<String>,
    /// Totals.
    pub totals: Totals,
}

impl From<&Manifest> for SnapshotSummary {
    fn from(m: &Manifest) -> Self {
        SnapshotSummary {
            id: m.id.clone(),
            created: m.created,
            region: m.region.clone(),
            host: m.host.clone(),
            tool_version: m.tool_version.clone(),
            tags: m.tags.clone(),
            parent: m.parent.clone(),
            totals: m.totals.clone(),
        }
    }
}

/// A listed chunk object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredChunk {
    /// Seconds since the Unix epoch.
    pub(crate) last_modified: i64,
    /// Stored size in bytes.
    pub(crate) size: u64,
}

/// An open repository. Cheap to share behind an `Arc`; operations take `&self`.
#[derive(Debug)]
pub struct Repository {
    pub(crate) store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    synced_dirs: Mutex<HashSet<PathBuf>>,
    pub(crate) config: RepoConfig,
    pub(crate) codec: Codec,
    pub(crate) seed: u64,
    pub(crate) concurrency: usize,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
}

impl Repository {
    /// Creates a repository at `url`; encrypted when `opts.key` is set. Refuses a URL that
    /// already holds one.
    pub async fn init(url: &str, opts: &RepoOptions) -> Result<Self> {
        Self::init_target(target_from_url(url, &opts.s3)?, url, opts).await
    }

    /// Opens the repository at `url`: checks its format and, when encrypted, the key.
    pub async fn open(url: &str, opts: &RepoOptions) -> Result<Self> {
        Self::open_target(target_from_url(url, &opts.s3)?, url, opts).await
    }

    /// Opens the repository at `url`, creating it if there is none.
    pub async fn open_or_init(url: &str, opts: &RepoOptions) -> Result<Self> {
        let target = target_from_url(url, &opts.s3)?;
        match Self::open_target(target.clone(), url, opts).await {
            Err(Error::NotARepository { .. }) => Self::init_target(target, url, opts).await,
            r => r,
        }
    }

    /// [`Repository::init`] on an already built backend (`label` names it in errors).
    pub async fn init_target(target: Target, label: &str, opts: &RepoOptions) -> Result<Self> {
        opts.chunker.validate()?;
        let config = RepoConfig {
            format: REPO_FORMAT,
            id: hex::encode(rand::random::<[u8; 16]>()),
            created: OffsetDateTime::now_utc(),
            chunker: opts.chunker,
            encryption: opts.key.as_ref().map(|k| EncryptionConfig {
                cipher: config::CIPHER.into(),
                kdf: config::KDF.into(),
                key_check: k.check(),
            }),
        };
        let body = serde_json::to_vec_pretty(&config).expect("config serializes");
        let repo = Self::assemble(target, config, opts);
        let path = Path::from(CONFIG_KEY);
        let put = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let exists = || Error::AlreadyExists {
            url: label.to_owned(),
        };
        // Look first: some S3-compatible servers accept `If-None-Match: *` and overwrite anyway
        // (Garage 2.5 does), and a second init over a repository would orphan every snapshot.
        if repo.get_raw(CONFIG_KEY).await?.is_some() {
            return Err(exists());
        }
        match repo.store.put_opts(&path, body.clone().into(), put).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Err(exists()),
            Err(object_store::Error::NotImplemented) => {
                repo.store.put(&path, body.clone().into()).await?;
            }
            Err(e) => return Err(e.into()),
        }
        // Two inits racing on such a server: the last write wins, and the loser learns it here.
        if repo.get_raw(CONFIG_KEY).await?.as_deref() != Some(&body[..]) {
            return Err(exists());
        }
        repo.sync_local(CONFIG_KEY).await?;
        Ok(repo)
    }

    /// [`Repository::open`] on an already built backend (`label` names it in errors).
    pub async fn open_target(target: Target, label: &str, opts: &RepoOptions) -> Result<Self> {
        let raw = match target.store.get(&Path::from(CONFIG_KEY)).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotARepository {
                    url: label.to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        #[derive(serde::Deserialize)]
        struct Version {
            format: u32,
        }
        let bad = |e: serde_json::Error| Error::Config(format!("{CONFIG_KEY}: {e}"));
        let v: Version = serde_json::from_slice(&raw).map_err(bad)?;
        if v.format > REPO_FORMAT {
            return Err(Error::FormatTooNew {
                what: CONFIG_KEY.into(),
                found: v.format,
                supported: REPO_FORMAT,
            });
        }
        let config: RepoConfig = serde_json::from_slice(&raw).map_err(bad)?;
        config.chunker.validate()?;
        match (&config.encryption, &opts.key) {
            (None, None) => {}
            (None, Some(_)) => return Err(Error::NotEncrypted),
            (Some(_), None) => return Err(Error::KeyRequired),
            (Some(enc), Some(key)) => {
                if enc.cipher != config::CIPHER || enc.kdf != config::KDF {
                    return Err(Error::Config(format!(
                        "unsupported encryption {}/{}",
                        enc.cipher, enc.kdf
                    )));
                }
                if key.check() != enc.key_check {
                    return Err(Error::WrongKey {
                        expected_check: enc.key_check.chars().take(16).collect(),
                    });
                }
            }
        }
        Ok(Self::assemble(target, config, opts))
    }

    fn assemble(target: Target, config: RepoConfig, opts: &RepoOptions) -> Self {
        Repository {
            store: target.store,
            local_root: target.local_root.filter(|_| opts.fsync),
            synced_dirs: Mutex::new(HashSet::new()),
            codec: Codec::new(opts.key.as_ref(), opts.compression_level),
            seed: opts.key.as_ref().map_or(0, Key::chunker_seed),
            config,
            concurrency: opts.concurrency.max(1),
        }
    }

    /// The repository config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The backend, rooted at the repository.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Snapshot ids, oldest first. Objects under `snapshots/` that are not snapshot ids (e.g. a
    /// third party's temporary files) are ignored.
    pub async fn snapshot_ids(&self) -> Result<Vec<String>> {
        let prefix = Path::from("snapshots");
        let mut ids: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location.filename().unwrap_or_default().to_owned())
            .try_filter(|name| futures::future::ready(manifest::is_snapshot_id(name)))
            .try_collect()
            .await?;
        ids.sort();
        Ok(ids)
    }

    /// Every snapshot, oldest first, with its manifest header (manifests read in parallel).
    pub async fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let ids = self.snapshot_ids().await?;
        futures::stream::iter(ids)
            .map(|id| async move {
                let time = manifest::snapshot_id_time(&id).expect("valid id");
                match self.load_manifest(&id).await {
                    Ok(m) => Ok(SnapshotInfo {
                        summary: Some(SnapshotSummary::from(&m)),
                        id,
                        time,
                        error: None,
                    }),
                    Err(e) if e.is_corrupt() || matches!(e, Error::FormatTooNew { .. }) => {
                        Ok(SnapshotInfo {
                            error: Some(e.to_string()),
                            id,
                            time,
                            summary: None,
                        })
                    }
                    Err(e) => Err(e),
                }
            })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    /// The manifest of snapshot `id`. Unreadable manifests are [`Error::Corrupt`] naming the
    /// snapshot.
    pub async fn load_manifest(&self, id: &str) -> Result<Manifest> {
        if !manifest::is_snapshot_id(id) {
            return Err(Error::SnapshotNotFound(id.to_owned()));
        }
        let name = format!("snapshots/{id}");
        let raw = self
            .get_raw(&name)
            .await?
            .ok_or_else(|| Error::SnapshotNotFound(id.to_owned()))?;
        let codec = self.codec.clone();
        let id2 = id.to_owned();
        let parsed = tokio::task::spawn_blocking(move || -> Result<Manifest> {
            let plain = codec.open(KIND_MANIFEST, &name, None, &raw)?;
            #[derive(serde::Deserialize)]
            struct Version {
                format: u32,
            }
            let v: Version = serde_json::from_slice(&plain)
                .map_err(|e| Error::corrupt(format!("manifest JSON: {e}")))?;
            if v.format > MANIFEST_FORMAT {
                return Err(Error::FormatTooNew {
                    what: name,
                    found: v.format,
                    supported: MANIFEST_FORMAT,
                });
            }
            let m: Manifest = serde_json::from_slice(&plain)
                .map_err(|e| Error::corrupt(format!("manifest JSON: {e}")))?;
            if m.id != id2 {
                return Err(Error::corrupt(format!("manifest names itself {}", m.id)));
            }
            Ok(m)
        })
        .await?;
        parsed.map_err(|e| e.with_snapshot(id))
    }

    /// Writes a manifest (durably). Called only once every chunk it names is stored.
    pub(crate) async fn save_manifest(&self, m: &Manifest) -> Result<()> {
        let name = format!("snapshots/{}", m.id);
        let json = serde_json::to_vec(m).expect("manifest serializes");
        let codec = self.codec.clone();
        let name2 = name.clone();
        let obj = tokio::task::spawn_blocking(move || {
            let id = codec.id(&json);
            codec.seal(KIND_MANIFEST, &id, &name2, &json)
        })
        .await??;
        self.put_durable(&name, obj.into()).await
    }

    /// Every chunk object, by id, from one recursive listing. Foreign names are ignored.
    pub(crate) async fn list_chunks(&self) -> Result<HashMap<ChunkId, StoredChunk>> {
        let prefix = Path::from("chunks");
        let mut out = HashMap::new();
        let mut stream = self.store.list(Some(&prefix));
        while let Some(meta) = stream.try_next().await? {
            let Some(id) = meta.location.filename().and_then(ChunkId::from_hex) else {
                continue;
            };
            if meta.location.as_ref() != id.object_key() {
                continue;
            }
            out.insert(
                id,
                StoredChunk {
                    last_modified: meta.last_modified.timestamp(),
                    size: meta.size,
                },
            );
        }
        Ok(out)
    }

    /// Reads and checks chunk `id`: missing or damaged chunks are [`Error::Corrupt`] naming it.
    pub(crate) async fn read_chunk(&self, id: ChunkId) -> Result<Bytes> {
        let name = id.object_key();
        let with_chunk = |e: Error| match e {
            Error::Corrupt {
                snapshot,
                path,
                reason,
                ..
            } => Error::Corrupt {
                snapshot,
                chunk: Some(id.to_hex()),
                path,
                reason,
            },
            e => e,
        };
        let raw = self
            .get_raw(&name)
            .await?
            .ok_or_else(|| with_chunk(Error::corrupt("chunk is missing")))?;
        let codec = self.codec.clone();
        let plain =
            tokio::task::spawn_blocking(move || codec.open(KIND_CHUNK, &name, Some(&id), &raw))
                .await?
                .map_err(with_chunk)?;
        Ok(Bytes::from(plain))
    }

    /// Encodes and stores one chunk; returns the stored size.
    pub(crate) async fn write_chunk(&self, id: ChunkId, data: Bytes) -> Result<u64> {
        let name = id.object_key();
        let codec = self.codec.clone();
        let name2 = name.clone();
        let obj = tokio::task::spawn_blocking(move || codec.seal(KIND_CHUNK, &id, &name2, &data))
            .await??;
        let len = obj.len() as u64;
        self.put_durable(&name, obj.into()).await?;
        Ok(len)
    }

    pub(crate) async fn get_raw(&self, name: &str) -> Result<Option<Bytes>> {
        match self.store.get(&Path::from(name)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&Path::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `data` under `name`; on the local filesystem, fsyncs it (and new directories).
    async fn put_durable(&self, name: &str, data: Bytes) -> Result<()> {
        self.store.put(&Path::from(name), data.into()).await?;
        self.sync_local(name).await
    }

    async fn sync_local(&self, name: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let file = root.join(name);
        let parent = file.parent().expect("has a parent").to_path_buf();
        let new_dir = self
            .synced_dirs
            .lock()
            .expect("not poisoned")
            .insert(parent);
        let root = root.clone();
        tokio::task::spawn_blocking(move || fsync_path(&root, &file, new_dir)).await??;
        Ok(())
    }
}

/// fsyncs `file` and its directory; when `all_dirs`, every directory up to `root` too (for
/// directories object_store may just have created).
fn fsync_path(root: &FsPath, file: &FsPath, all_dirs: bool) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
        if d == root || !all_dirs {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}
