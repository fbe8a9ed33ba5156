//! `backup`: chunk the source, upload the chunks the repository lacks (in parallel), then write
//! the manifest, last.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt, TryStreamExt};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::chunker::Chunker;
use crate::manifest::{self, ChunkRef, FileEntry, Manifest, MetadataEntry, Totals};
use crate::object::ChunkId;
use crate::repo::{SnapshotSummary, StoredChunk};
use crate::{Error, Phase, Progress, Repository, Result};

/// A file the source offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its path, unique within the source; handed back to the sink at restore.
    pub path: String,
    /// Its size in bytes, as listed (for progress; the bytes actually read are recorded).
    pub size: u64,
    /// An optional change token (e.g. mtime, inode and size, or a content hash the source
    /// already knows). When the parent snapshot has the same path, size and fingerprint, the
    /// file is not read again: its chunk list is reused. `None`: always read.
    pub fingerprint: Option<String>,
}

/// What to back up. The integration implements it over Tandem's store.
#[async_trait]
pub trait BackupSource: Send + Sync {
    /// The metadata export, taken at one point in time. Called first, before [`files`].
    ///
    /// [`files`]: BackupSource::files
    async fn metadata(&self) -> std::io::Result<Bytes>;
    /// The files to back up, in a stable order.
    async fn files(&self) -> std::io::Result<Vec<SourceFile>>;
    /// Opens a listed file for reading.
    async fn open(&self, path: &str) -> std::io::Result<Box<dyn AsyncRead + Send + Unpin>>;
}

/// Which snapshot's file list lets unchanged files be skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest readable snapshot with the same region and host.
    #[default]
    Latest,
    /// None: read every file.
    None,
    /// This snapshot.
    Id(String),
}

/// Options of one backup.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// The region backed up (recorded in the manifest).
    pub region: String,
    /// The host running the backup (recorded).
    pub host: String,
    /// Free-form tags (recorded).
    pub tags: BTreeMap<String, String>,
    /// Parent snapshot selection.
    pub parent: ParentChoice,
    /// The snapshot time; `None`: now. (Tests and imports set it.)
    pub time: Option<OffsetDateTime>,
}

/// Shared state of one backup run.
struct Run<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    /// Chunks stored or scheduled for upload.
    known: Mutex<HashSet<ChunkId>>,
    progress: &'a dyn Progress,
    new_chunks: AtomicU64,
    new_bytes: AtomicU64,
    stored_bytes: AtomicU64,
}

type Job = (ChunkId, Bytes);

/// Maps a source I/O error to [`Error::Source`] naming `path`.
fn source_err(path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Source {
        path: path.to_owned(),
        source,
    }
}

impl Repository {
    /// Backs `source` up as a new snapshot and returns its summary. The manifest is written only
    /// after every chunk it names is stored, so a failed or killed backup leaves no snapshot
    /// (only orphan chunks, which [`Repository::prune`] sweeps after its grace period).
    pub async fn backup(
        &self,
        source: &dyn BackupSource,
        opts: &BackupOptions,
        progress: &dyn Progress,
    ) -> Result<SnapshotSummary> {
        let created = opts.time.unwrap_or_else(OffsetDateTime::now_utc);
        let id = manifest::new_snapshot_id(created);
        let created = manifest::snapshot_id_time(&id).expect("valid id");

        progress.start(Phase::Scan, None);
        let existing = self.list_chunks().await?;
        let parent = self.pick_parent(opts).await?;
        progress.finish(Phase::Scan);

        let meta_bytes = source
            .metadata()
            .await
            .map_err(source_err(manifest::METADATA_PATH))?;
        let files = source.files().await.map_err(source_err("<list>"))?;
        let mut seen = HashSet::with_capacity(files.len());
        if let Some(dup) = files.iter().find(|f| !seen.insert(f.path.as_str())) {
            return Err(Error::Source {
                path: dup.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "listed twice by the source",
                ),
            });
        }
        drop(seen);
        let total: u64 = meta_bytes.len() as u64 + files.iter().map(|f| f.size).sum::<u64>();
        progress.start(Phase::Backup, Some(total));

        let run_state = Run {
            repo: self,
            chunker: Chunker {
                params: self.config.chunker,
                seed: self.seed,
            },
            known: Mutex::new(existing.keys().copied().collect()),
            progress,
            new_chunks: AtomicU64::new(0),
            new_bytes: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
        };
        // Closures below capture this reference (not `run_state` itself), so that the futures
        // they return have one fixed lifetime and the whole backup future stays `Send`.
        let run = &run_state;
        let (tx, rx) = mpsc::channel::<Job>(self.concurrency);
        let uploader = run.upload_all(rx, self.concurrency);
        let parent_files: HashMap<&str, &FileEntry> = parent
            .as_ref()
            .map(|p| p.files.iter().map(|f| (f.path.as_str(), f)).collect())
            .unwrap_or_default();
        let producer = async {
            let meta_len = meta_bytes.len() as u64;
            let (chunks, blake3, size) = run
                .store_stream(
                    manifest::METADATA_PATH,
                    std::io::Cursor::new(meta_bytes),
                    tx.clone(),
                )
                .await?;
            debug_assert_eq!(size, meta_len);
            let metadata = MetadataEntry {
                size,
                blake3,
                chunks,
            };
            progress.file_done(manifest::METADATA_PATH);
            // Futures from a plain method (no stream-combinator closure returning a borrowing
            // async block): keeps the backup future `Send`.
            let jobs = files.into_iter().map(|f| {
                let reuse = parent_files
                    .get(f.path.as_str())
                    .filter(|p| unchanged(&f, p, &existing))
                    .map(|p| (*p).clone());
                run.file_entry(source, f, reuse, tx.clone())
            });
            let entries: Vec<FileEntry> = futures::stream::iter(jobs)
                .buffered(4)
                .try_collect()
                .await?;
            drop(tx);
            Ok::<_, Error>((metadata, entries))
        };
        let ((metadata, files), ()) = futures::future::try_join(producer, uploader).await?;
        progress.finish(Phase::Backup);

        let bytes = metadata.size + files.iter().map(|f| f.size).sum::<u64>();
        let m = Manifest {
            format: manifest::MANIFEST_FORMAT,
            id,
            created,
            region: opts.region.clone(),
            host: opts.host.clone(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            tags: opts.tags.clone(),
            parent: parent.map(|p| p.id),
            totals: Totals {
                files: files.len() as u64,
                bytes,
                new_chunks: run.new_chunks.load(Ordering::Relaxed),
                new_bytes: run.new_bytes.load(Ordering::Relaxed),
                stored_bytes: run.stored_bytes.load(Ordering::Relaxed),
            },
            metadata,
            files,
        };
        self.save_manifest(&m).await?;
        Ok(SnapshotSummary::from(&m))
    }

    async fn pick_parent(&self, opts: &BackupOptions) -> Result<Option<Manifest>> {
        match &opts.parent {
            ParentChoice::None => Ok(None),
            ParentChoice::Id(id) => self.load_manifest(id).await.map(Some),
            ParentChoice::Latest => {
                for id in self.snapshot_ids().await?.iter().rev() {
                    match self.load_manifest(id).await {
                        Ok(m) if m.region == opts.region && m.host == opts.host => {
                            return Ok(Some(m))
                        }
                        Ok(_) => {}
                        Err(e) if e.is_corrupt() => {
                            tracing::warn!(snapshot = %id, error = %e, "skipping unreadable snapshot as parent");
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(None)
            }
        }
    }
}

/// A parent entry can stand in for the file when size and fingerprint match and every chunk it
/// names is still stored.
fn unchanged(f: &SourceFile, p: &FileEntry, existing: &HashMap<ChunkId, StoredChunk>) -> bool {
    f.fingerprint.is_some()
        && f.fingerprint == p.fingerprint
        && f.size == p.size
        && p.chunks
            .iter()
            .all(|c| c.chunk_id().is_some_and(|id| existing.contains_key(&id)))
}

impl Run<'_> {
    /// Uploads queued chunks, at most `limit` at a time, until the queue closes.
    async fn upload_all(&self, mut rx: mpsc::Receiver<Job>, limit: usize) -> Result<()> {
        let mut inflight = FuturesUnordered::new();
        let mut open = true;
        loop {
            if open && inflight.len() < limit {
                tokio::select! {
                    job = rx.next() => match job {
                        Some(job) => inflight.push(self.upload_one(job)),
                        None => open = false,
                    },
                    Some(r) = inflight.next(), if !inflight.is_empty() => r?,
                }
            } else {
                match inflight.next().await {
                    Some(r) => r?,
                    None => return Ok(()),
                }
            }
        }
    }

    async fn upload_one(&self, (cid, data): Job) -> Result<()> {
        let len = data.len() as u64;
        let stored = self.repo.write_chunk(cid, data).await?;
        self.new_chunks.fetch_add(1, Ordering::Relaxed);
        self.new_bytes.fetch_add(len, Ordering::Relaxed);
        self.stored_bytes.fetch_add(stored, Ordering::Relaxed);
        Ok(())
    }

    /// One file's manifest entry: the parent's (`reuse`) or a fresh read.
    async fn file_entry(
        &self,
        source: &dyn BackupSource,
        f: SourceFile,
        reuse: Option<FileEntry>,
        tx: mpsc::Sender<Job>,
    ) -> Result<FileEntry> {
        let entry = match reuse {
            Some(p) => {
                self.progress.advance(p.size);
                p
            }
            None => {
                let reader = source.open(&f.path).await.map_err(source_err(&f.path))?;
                let (chunks, blake3, size) = self.store_stream(&f.path, reader, tx).await?;
                FileEntry {
                    path: f.path,
                    size,
                    blake3,
                    fingerprint: f.fingerprint,
                    chunks,
                }
            }
        };
        self.progress.file_done(&entry.path);
        Ok(entry)
    }

    /// Reads `reader` to the end, chunking and hashing off the async threads, and schedules
    /// uploads of the chunks not yet known. Returns the chunk list, content id and size.
    async fn store_stream(
        &self,
        path: &str,
        mut reader: impl AsyncRead + Unpin,
        mut tx: mpsc::Sender<Job>,
    ) -> Result<(Vec<ChunkRef>, String, u64)> {
        let target = self.chunker.buffer_target();
        let mut hasher = self.repo.codec.hasher();
        let mut refs = Vec::new();
        let mut size = 0u64;
        let mut buf: Vec<u8> = Vec::with_capacity(target);
        loop {
            // Fill the buffer to the target (or EOF).
            let mut eof = false;
            while buf.len() < target {
                let before = buf.len();
                let n = (&mut reader)
                    .take((target - before) as u64)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|source| Error::Source {
                        path: path.to_owned(),
                        source,
                    })?;
                if n == 0 {
                    eof = true;
                    break;
                }
            }
            let read = buf.len();
            let (chunker, codec) = (self.chunker, self.repo.codec.clone());
            let (cut, h) = tokio::task::spawn_blocking(move || {
                let cut = chunker.cut(&codec, buf, eof, &mut hasher);
                (cut, hasher)
            })
            .await?;
            hasher = h;
            let consumed = read - cut.rest.len();
            size += consumed as u64;
            for (cid, data) in cut.chunks {
                refs.push(ChunkRef {
                    id: cid.to_hex(),
                    size: data.len() as u64,
                });
                let is_new = self.known.lock().expect("not poisoned").insert(cid);
                if is_new {
                    // Copy, so that the upload queue does not pin whole read buffers.
                    let owned = Bytes::copy_from_slice(&data);
                    if tx.send((cid, owned)).await.is_err() {
                        return Err(Error::Internal("uploader stopped".into()));
                    }
                }
            }
            self.progress.advance(consumed as u64);
            buf = cut.rest;
            buf.reserve(target.saturating_sub(buf.len()));
            if eof {
                break;
            }
        }
        Ok((refs, hasher.finalize().to_hex().to_string(), size))
    }
}
