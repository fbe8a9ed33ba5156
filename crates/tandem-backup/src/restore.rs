//! `restore`: a preflight check of the whole snapshot, then every file streamed chunk by chunk to
//! the sink, each committed only once its content id matches the manifest.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::manifest::{ChunkRef, METADATA_PATH};
use crate::{Error, Phase, Progress, Repository, Result};

/// What is being restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The metadata export (always first).
    Metadata,
    /// A file.
    File,
}

/// An item handed to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreEntry {
    /// Metadata export or file.
    pub kind: EntryKind,
    /// The file's path as the source gave it (`<metadata>` for the export).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Where restored data goes. The integration implements it over Tandem's store.
///
/// Data arrives through a [`RestoreWriter`] and is only final once
/// [`RestoreWriter::commit`] is called, after the whole file's hash was checked; a writer
/// should write to a temporary place and move it into place on commit.
#[async_trait]
pub trait RestoreSink: Send + Sync {
    /// Starts an entry.
    async fn create(&self, entry: &RestoreEntry) -> std::io::Result<Box<dyn RestoreWriter>>;
}

/// One entry being restored.
#[async_trait]
pub trait RestoreWriter: Send {
    /// Appends data (already checked chunk by chunk).
    async fn write(&mut self, data: Bytes) -> std::io::Result<()>;
    /// The whole entry checked out: make it final.
    async fn commit(self: Box<Self>) -> std::io::Result<()>;
    /// The entry failed: discard what was written.
    async fn abort(self: Box<Self>);
}

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Before writing anything, read back and re-hash every chunk of the snapshot (default).
    /// When false, the preflight only checks that every chunk is present; chunks are still
    /// checked as they are restored, and a damaged one fails the restore midway.
    pub preflight_read_data: bool,
    /// Restore the metadata export (default true).
    pub metadata: bool,
    /// Restore these paths only; `None`: every file.
    pub paths: Option<Vec<String>>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            preflight_read_data: true,
            metadata: true,
            paths: None,
        }
    }
}

/// Outcome of a restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Files committed (the metadata export not counted).
    pub files: u64,
    /// Bytes committed, metadata export included.
    pub bytes: u64,
}

impl Repository {
    /// Restores snapshot `id` into `sink`.
    ///
    /// First runs [`Repository::verify_snapshot`] (reading every chunk, unless
    /// `opts.preflight_read_data` is false) and refuses, before the sink sees anything, with
    /// an [`Error::Corrupt`] naming the snapshot, the chunk and a file using it. Then each
    /// entry is streamed, every chunk re-checked, and committed only when the whole entry's
    /// content id matches. If restore returns an error anyway (storage failing midway, the
    /// sink failing), treat the restore as a whole as failed: entries committed before the
    /// error are correct, but the set is incomplete.
    pub async fn restore(
        &self,
        id: &str,
        sink: &dyn RestoreSink,
        opts: &RestoreOptions,
        progress: &dyn Progress,
    ) -> Result<RestoreReport> {
        let check = self
            .verify_snapshot(id, opts.preflight_read_data, progress)
            .await?;
        if let Some(e) = check.to_error() {
            return Err(e);
        }
        let m = self.load_manifest(id).await?;
        // Owned (not borrowed from the manifest): keeps the future `Send` for `tokio::spawn`.
        let mut entries: Vec<(RestoreEntry, String, Vec<ChunkRef>)> = Vec::new();
        if opts.metadata {
            let entry = RestoreEntry {
                kind: EntryKind::Metadata,
                path: METADATA_PATH.into(),
                size: m.metadata.size,
            };
            entries.push((entry, m.metadata.blake3.clone(), m.metadata.chunks.clone()));
        }
        for f in &m.files {
            if opts.paths.as_ref().is_some_and(|p| !p.contains(&f.path)) {
                continue;
            }
            let entry = RestoreEntry {
                kind: EntryKind::File,
                path: f.path.clone(),
                size: f.size,
            };
            entries.push((entry, f.blake3.clone(), f.chunks.clone()));
        }
        progress.start(Phase::Restore, Some(entries.iter().map(|e| e.0.size).sum()));
        drop(m);
        let mut report = RestoreReport::default();
        // The metadata export first, alone; then files, a few at a time.
        let mut iter = entries.into_iter().peekable();
        if let Some((e, _, _)) = iter.peek() {
            if e.kind == EntryKind::Metadata {
                let (e, hash, chunks) = iter.next().expect("peeked");
                report.bytes += self
                    .restore_entry(id, sink, e, hash, chunks, progress)
                    .await?;
            }
        }
        // After the first failure no new entry starts, but the ones in flight run to their
        // commit or abort: when this returns, the sink is quiescent, so a caller can roll back
        // what was committed without racing a late write.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let results: Vec<Result<u64>> = futures::stream::iter(iter)
            .map(|(e, hash, chunks)| {
                let failed = &failed;
                async move {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return Ok(None);
                    }
                    let r = self
                        .restore_entry(id, sink, e, hash, chunks, progress)
                        .await;
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    r.map(Some)
                }
            })
            .buffer_unordered(4)
            .filter_map(|r| async move { r.transpose() })
            .collect()
            .await;
        for r in results {
            let n = r?;
            report.files += 1;
            report.bytes += n;
        }
        progress.finish(Phase::Restore);
        Ok(report)
    }

    async fn restore_entry(
        &self,
        snapshot: &str,
        sink: &dyn RestoreSink,
        entry: RestoreEntry,
        hash: String,
        chunks: Vec<ChunkRef>,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let sink_err = |source| Error::Sink {
            path: entry.path.clone(),
            source,
        };
        let mut w = sink.create(&entry).await.map_err(sink_err)?;
        let r = self
            .stream_entry(&mut *w, &hash, chunks, progress)
            .await
            .map_err(|e| match e {
                Error::Sink { source, .. } => sink_err(source),
                e => e.with_snapshot(snapshot).with_path(&entry.path),
            });
        match r {
            Ok(n) => {
                w.commit().await.map_err(sink_err)?;
                progress.file_done(&entry.path);
                Ok(n)
            }
            Err(e) => {
                w.abort().await;
                Err(e)
            }
        }
    }

    async fn stream_entry(
        &self,
        w: &mut dyn RestoreWriter,
        hash: &str,
        chunks: Vec<ChunkRef>,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let mut hasher = self.codec.hasher();
        let mut total = 0u64;
        let mut datas = futures::stream::iter(chunks)
            .map(|c| async move {
                let id = c
                    .chunk_id()
                    .ok_or_else(|| Error::corrupt(format!("invalid chunk id {}", c.id)))?;
                let data = self.read_chunk(id).await?;
                if data.len() as u64 != c.size {
                    return Err(Error::Corrupt {
                        snapshot: None,
                        chunk: Some(c.id.clone()),
                        path: None,
                        reason: format!("chunk is {} bytes, manifest says {}", data.len(), c.size),
                    });
                }
                Ok(data)
            })
            .buffered(self.concurrency);
        while let Some(data) = datas.try_next().await? {
            let (h, d) = tokio::task::spawn_blocking(move || {
                hasher.update(&data);
                (hasher, data)
            })
            .await?;
            hasher = h;
            total += d.len() as u64;
            progress.advance(d.len() as u64);
            w.write(d).await.map_err(|source| Error::Sink {
                path: String::new(),
                source,
            })?;
        }
        let got = hasher.finalize().to_hex();
        if got.as_str() != hash {
            return Err(Error::corrupt(format!(
                "restored content hash {got} does not match the manifest's {hash}"
            )));
        }
        Ok(total)
    }
}
