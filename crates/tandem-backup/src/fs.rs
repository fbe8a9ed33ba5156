//! A directory tree as a [`BackupSource`] and as a [`RestoreSink`]: for the CLI's plain-directory
//! mode, benchmarks and tests.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;

use tokio::io::AsyncRead;

use crate::backup::{BackupSource, SourceFile};
use crate::restore::{EntryKind, RestoreEntry, RestoreSink, RestoreWriter};

/// Backs up every regular file under `root` (symlinks are not followed), paths relative and
/// `/`-separated, sorted. The fingerprint is size, mtime, ctime and inode, so unchanged files
/// are skipped against the parent snapshot.
#[derive(Debug, Clone)]
pub struct DirSource {
    /// The directory.
    pub root: PathBuf,
    /// The metadata export to store with the files.
    pub metadata: Bytes,
}

#[async_trait]
impl BackupSource for DirSource {
    async fn metadata(&self) -> std::io::Result<Bytes> {
        Ok(self.metadata.clone())
    }

    async fn files(&self) -> std::io::Result<Vec<SourceFile>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&root, &root, &mut out)?;
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    async fn open(&self, path: &str) -> std::io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        let f = tokio::fs::File::open(safe_join(&self.root, path)?).await?;
        Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 20, f)))
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            let meta = entry.metadata()?;
            let rel = path.strip_prefix(root).expect("under root");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(SourceFile {
                path: rel.join("/"),
                size: meta.len(),
                fingerprint: Some(fingerprint(&meta)),
            });
        }
    }
    Ok(())
}

#[cfg(unix)]
fn fingerprint(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "size={} mtime={}.{} ctime={}.{} ino={}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino()
    )
}

#[cfg(not(unix))]
fn fingerprint(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("size={} mtime={mtime}", meta.len())
}

/// Joins a snapshot path under `root`, refusing absolute paths and `..`.
fn safe_join(root: &Path, rel: &str) -> std::io::Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unsafe path {rel:?}"),
        ));
    }
    Ok(root.join(p))
}

/// Restores files under `root` (each written to a temporary name, renamed on commit) and the
/// metadata export to `metadata_file`, when set.
#[derive(Debug, Clone)]
pub struct DirSink {
    /// The directory to restore into.
    pub root: PathBuf,
    /// Where the metadata export goes; `None`: discarded.
    pub metadata_file: Option<PathBuf>,
}

#[async_trait]
impl RestoreSink for DirSink {
    async fn create(&self, entry: &RestoreEntry) -> std::io::Result<Box<dyn RestoreWriter>> {
        let dest = match entry.kind {
            EntryKind::Metadata => match &self.metadata_file {
                Some(p) => p.clone(),
                None => return Ok(Box::new(Discard)),
            },
            EntryKind::File => safe_join(&self.root, &entry.path)?,
        };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut tmp = dest.clone().into_os_string();
        tmp.push(".tandem-restore");
        let tmp = PathBuf::from(tmp);
        let file = tokio::fs::File::create(&tmp).await?.into_std().await;
        Ok(Box::new(FileWriter {
            file: Some(file),
            tmp,
            dest,
        }))
    }
}

struct FileWriter {
    /// `None` only while a blocking write holds it.
    file: Option<std::fs::File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl FileWriter {
    /// Runs `f` on the file in the blocking pool (std I/O, one hop per call, no extra copy).
    async fn with_file<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut std::fs::File) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("writer failed"))?;
        let (file, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut file);
            (file, r)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.file = Some(file);
        r
    }
}

#[async_trait]
impl RestoreWriter for FileWriter {
    async fn write(&mut self, data: Bytes) -> std::io::Result<()> {
        self.with_file(move |f| f.write_all(&data)).await
    }

    async fn commit(mut self: Box<Self>) -> std::io::Result<()> {
        self.with_file(|f| f.sync_all()).await?;
        tokio::fs::rename(&self.tmp, &self.dest).await
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

struct Discard;

#[async_trait]
impl RestoreWriter for Discard {
    async fn write(&mut self, _data: Bytes) -> std::io::Result<()> {
        Ok(())
    }
    async fn commit(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
    async fn abort(self: Box<Self>) {}
}
