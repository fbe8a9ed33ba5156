//! `verify`: are all snapshots readable, is every chunk they use present and, with
//! `read_data`, intact? Problems are reported per snapshot, naming the chunk and the files
//! that use it.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};

use crate::manifest::Manifest;
use crate::object::ChunkId;
use crate::{Error, Phase, Progress, Repository, Result};

/// The outcome of [`Repository::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One entry per snapshot, oldest first.
    pub snapshots: Vec<SnapshotCheck>,
    /// Distinct chunks the snapshots use.
    pub chunks_referenced: u64,
    /// Chunks read back and re-hashed (`read_data` only).
    pub chunks_read: u64,
    /// Plaintext bytes read back.
    pub bytes_read: u64,
    /// Stored chunks no snapshot uses (left by an interrupted backup or a prune to come).
    pub orphan_chunks: u64,
}

impl VerifyReport {
    /// True when every snapshot is OK.
    pub fn is_ok(&self) -> bool {
        self.snapshots.iter().all(SnapshotCheck::is_ok)
    }

    /// The snapshots with a problem.
    pub fn damaged(&self) -> impl Iterator<Item = &SnapshotCheck> {
        self.snapshots.iter().filter(|s| !s.is_ok())
    }
}

/// One snapshot's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The snapshot id.
    pub snapshot: String,
    /// Its state.
    pub status: SnapshotStatus,
}

impl SnapshotCheck {
    /// True when the snapshot is intact.
    pub fn is_ok(&self) -> bool {
        self.status == SnapshotStatus::Ok
    }

    /// The first problem as an [`Error::Corrupt`] naming snapshot, chunk and path (`None` when
    /// OK).
    pub fn to_error(&self) -> Option<Error> {
        let snapshot = Some(self.snapshot.clone());
        match &self.status {
            SnapshotStatus::Ok => None,
            SnapshotStatus::ManifestUnreadable { reason } => Some(Error::Corrupt {
                snapshot,
                chunk: None,
                path: None,
                reason: format!("manifest unreadable: {reason}"),
            }),
            SnapshotStatus::Damaged { chunks } => {
                let first = chunks.first()?;
                Some(Error::Corrupt {
                    snapshot,
                    chunk: Some(first.chunk.clone()),
                    path: first.paths.first().cloned(),
                    reason: format!(
                        "{} ({} damaged or missing chunk(s) in this snapshot)",
                        first.reason,
                        chunks.len()
                    ),
                })
            }
        }
    }
}

/// A snapshot's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Manifest readable; every chunk present (and, with `read_data`, intact).
    Ok,
    /// The manifest is missing, truncated, damaged, or cannot be decrypted.
    ManifestUnreadable {
        /// Why.
        reason: String,
    },
    /// Some chunks are missing or damaged.
    Damaged {
        /// Each bad chunk, once, in manifest order.
        chunks: Vec<ChunkProblem>,
    },
}

/// A missing or damaged chunk of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkProblem {
    /// The chunk id (64 hex digits).
    pub chunk: String,
    /// True when the object is absent; false when it is present but damaged.
    pub missing: bool,
    /// What is wrong.
    pub reason: String,
    /// The files of the snapshot that use it (`<metadata>` for the metadata export).
    pub paths: Vec<String>,
}

/// Bad chunks found so far: id to (missing, reason).
type Bad = HashMap<String, (bool, String)>;

impl Repository {
    /// Checks every snapshot. With `read_data`, downloads and re-hashes every chunk the
    /// snapshots use (each once, in parallel); without, only checks that each is listed.
    pub async fn verify(&self, read_data: bool, progress: &dyn Progress) -> Result<VerifyReport> {
        progress.start(Phase::Scan, None);
        let ids = self.snapshot_ids().await?;
        let stored = self.list_chunks().await?;
        // Pass 1: the union of referenced chunks (manifests are not kept: they can be large).
        let mut unreadable = BTreeMap::new();
        let mut referenced: HashMap<String, u64> = HashMap::new();
        let mut loads = futures::stream::iter(ids.clone())
            .map(|id| async move {
                let m = self.load_manifest(&id).await;
                (id, m)
            })
            .buffered(self.concurrency);
        while let Some((id, m)) = loads.next().await {
            match m {
                Ok(m) => {
                    for (c, _) in m.chunk_uses() {
                        referenced.entry(c.id.clone()).or_insert(c.size);
                    }
                }
                Err(e) if is_damage(&e) => {
                    unreadable.insert(id, e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        drop(loads);
        progress.finish(Phase::Scan);
        let mut bad = Bad::new();
        let mut present = Vec::new();
        for (hex, size) in &referenced {
            match ChunkId::from_hex(hex) {
                None => {
                    bad.insert(hex.clone(), (true, "invalid chunk id in manifest".into()));
                }
                Some(id) if !stored.contains_key(&id) => {
                    bad.insert(hex.clone(), (true, "chunk is missing".into()));
                }
                Some(id) => present.push((id, *size)),
            }
        }
        let mut report = VerifyReport {
            chunks_referenced: referenced.len() as u64,
            orphan_chunks: stored
                .keys()
                .filter(|id| !referenced.contains_key(&id.to_hex()))
                .count() as u64,
            ..Default::default()
        };
        if read_data {
            let (read, bytes) = self.read_check(present, &mut bad, progress).await?;
            report.chunks_read = read;
            report.bytes_read = bytes;
        }
        // Pass 2: name the snapshots and files that use bad chunks.
        for id in ids {
            let status = if let Some(reason) = unreadable.remove(&id) {
                SnapshotStatus::ManifestUnreadable { reason }
            } else if bad.is_empty() {
                SnapshotStatus::Ok
            } else {
                match self.load_manifest(&id).await {
                    Ok(m) => status_of(&m, &bad),
                    Err(e) if is_damage(&e) => SnapshotStatus::ManifestUnreadable {
                        reason: e.to_string(),
                    },
                    Err(e) => return Err(e),
                }
            };
            report.snapshots.push(SnapshotCheck {
                snapshot: id,
                status,
            });
        }
        Ok(report)
    }

    /// Checks one snapshot: its manifest, that each chunk is present and, with `read_data`,
    /// that each is intact. [`Repository::restore`] runs this first.
    pub async fn verify_snapshot(
        &self,
        id: &str,
        read_data: bool,
        progress: &dyn Progress,
    ) -> Result<SnapshotCheck> {
        let m = match self.load_manifest(id).await {
            Ok(m) => m,
            Err(e @ Error::SnapshotNotFound(_)) => return Err(e),
            Err(e) if is_damage(&e) => {
                return Ok(SnapshotCheck {
                    snapshot: id.to_owned(),
                    status: SnapshotStatus::ManifestUnreadable {
                        reason: e.to_string(),
                    },
                })
            }
            Err(e) => return Err(e),
        };
        let stored = self.list_chunks().await?;
        let mut bad = Bad::new();
        let mut present = HashMap::new();
        for (c, _) in m.chunk_uses() {
            match c.chunk_id() {
                None => {
                    bad.insert(c.id.clone(), (true, "invalid chunk id in manifest".into()));
                }
                Some(cid) if !stored.contains_key(&cid) => {
                    bad.insert(c.id.clone(), (true, "chunk is missing".into()));
                }
                Some(cid) => {
                    present.insert(cid, c.size);
                }
            }
        }
        if read_data {
            self.read_check(present.into_iter().collect(), &mut bad, progress)
                .await?;
        }
        Ok(SnapshotCheck {
            snapshot: id.to_owned(),
            status: status_of(&m, &bad),
        })
    }

    /// Reads back each chunk, recording damaged ones in `bad`. Returns (chunks, bytes) read.
    async fn read_check(
        &self,
        chunks: Vec<(ChunkId, u64)>,
        bad: &mut Bad,
        progress: &dyn Progress,
    ) -> Result<(u64, u64)> {
        progress.start(Phase::Verify, Some(chunks.iter().map(|c| c.1).sum()));
        let results: Vec<(ChunkId, Result<u64, String>)> = futures::stream::iter(chunks)
            .map(|(id, size)| async move {
                let r = match self.read_chunk(id).await {
                    Ok(data) if data.len() as u64 == size => Ok(size),
                    Ok(data) => Err(Error::Corrupt {
                        snapshot: None,
                        chunk: Some(id.to_hex()),
                        path: None,
                        reason: format!("chunk is {} bytes, manifest says {size}", data.len()),
                    }),
                    Err(e) => Err(e),
                };
                progress.advance(size);
                match r {
                    Ok(n) => Ok((id, Ok(n))),
                    Err(Error::Corrupt { reason, .. }) => Ok((id, Err(reason))),
                    Err(e @ Error::FormatTooNew { .. }) => Ok((id, Err(e.to_string()))),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        progress.finish(Phase::Verify);
        let (mut n, mut bytes) = (0, 0);
        for (id, r) in results {
            n += 1;
            match r {
                Ok(b) => bytes += b,
                Err(reason) => {
                    bad.insert(id.to_hex(), (false, reason));
                }
            }
        }
        Ok((n, bytes))
    }
}

fn is_damage(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt { .. } | Error::FormatTooNew { .. } | Error::SnapshotNotFound(_)
    )
}

fn status_of(m: &Manifest, bad: &Bad) -> SnapshotStatus {
    let mut problems: Vec<ChunkProblem> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (c, path) in m.chunk_uses() {
        let Some((missing, reason)) = bad.get(&c.id) else {
            continue;
        };
        let i = *index.entry(c.id.as_str()).or_insert_with(|| {
            problems.push(ChunkProblem {
                chunk: c.id.clone(),
                missing: *missing,
                reason: reason.clone(),
                paths: Vec::new(),
            });
            problems.len() - 1
        });
        let paths = &mut problems[i].paths;
        if paths.last().map(String::as_str) != Some(path) {
            paths.push(path.to_owned());
        }
    }
    if problems.is_empty() {
        SnapshotStatus::Ok
    } else {
        SnapshotStatus::Damaged { chunks: problems }
    }
}
