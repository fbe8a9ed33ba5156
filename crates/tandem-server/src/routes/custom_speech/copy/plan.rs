//! The chunk plan of a transfer: how a file is cut, what each piece's digest is, and which
//! pieces the target still lacks. Pure, so that resumption is tested without a network.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Largest chunk a target accepts (`custom_speech.copy_chunk_bytes` is at most this; 4 MiB by
/// default).
pub(crate) const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;

/// Files at least this large are hashed on two threads by [`FilePlan::of`].
const PARALLEL_HASH_BYTES: usize = 8 * 1024 * 1024;

/// One file of a copied asset, as the target will verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FilePlan {
    /// The file's id (its blob name; the same in both regions).
    pub id: Uuid,
    /// Its length.
    pub size: u64,
    /// sha256 of the whole file, hex.
    pub sha256: String,
    /// Bytes per chunk.
    pub chunk_size: u64,
    /// sha256 of each chunk, hex, in order.
    pub chunks: Vec<String>,
}

impl FilePlan {
    /// The plan of `bytes` cut into `chunk_size` pieces (at least one chunk, even when empty).
    /// The whole-file digest and the chunk digests are two passes over the bytes: a large file
    /// runs them on two threads.
    pub fn of(id: Uuid, bytes: &[u8], chunk_size: usize) -> FilePlan {
        let chunk_size = chunk_size.max(1);
        let chunk_digests = || -> Vec<String> {
            ranges(bytes.len() as u64, chunk_size as u64)
                .into_iter()
                .map(|r| hex::encode(Sha256::digest(&bytes[r.start as usize..r.end as usize])))
                .collect()
        };
        let (sha256, chunks) = if bytes.len() >= PARALLEL_HASH_BYTES {
            std::thread::scope(|s| {
                let whole = s.spawn(|| hex::encode(Sha256::digest(bytes)));
                let chunks = chunk_digests();
                (whole.join().expect("hashing does not panic"), chunks)
            })
        } else {
            (hex::encode(Sha256::digest(bytes)), chunk_digests())
        };
        FilePlan {
            id,
            size: bytes.len() as u64,
            sha256,
            chunk_size: chunk_size as u64,
            chunks,
        }
    }

    /// The planned sha256 of chunk `index`, as bytes (`None` if there is no such chunk or its
    /// digest is not hex).
    pub fn chunk_digest(&self, index: u32) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.chunks.get(index as usize)?, &mut out).ok()?;
        Some(out)
    }

    /// The byte range of chunk `index`, if it is one of the plan's.
    pub fn range(&self, index: u32) -> Option<Range<u64>> {
        ranges(self.size, self.chunk_size)
            .into_iter()
            .nth(index as usize)
    }

    /// Whether the plan is self-consistent (sizes and chunk count agree).
    pub fn is_consistent(&self) -> bool {
        self.chunk_size > 0
            && ranges(self.size, self.chunk_size).len() == self.chunks.len()
            && self.sha256.len() == 64
    }

    /// Checks one chunk's bytes against the plan.
    #[cfg(test)]
    pub fn check_chunk(&self, index: u32, bytes: &[u8]) -> Result<(), String> {
        self.check_chunk_digest(index, bytes.len(), &Sha256::digest(bytes).into())
    }

    /// [`FilePlan::check_chunk`] given the chunk's length and sha256, computed once by the
    /// caller (the same digest authenticates the request that carried it).
    pub fn check_chunk_digest(
        &self,
        index: u32,
        len: usize,
        digest: &[u8; 32],
    ) -> Result<(), String> {
        let range = self
            .range(index)
            .ok_or_else(|| format!("file {} has no chunk {index}", self.id))?;
        if len as u64 != range.end - range.start {
            return Err(format!(
                "chunk {index} of file {} is {len} bytes, not {}",
                self.id,
                range.end - range.start
            ));
        }
        if self.chunk_digest(index) != Some(*digest) {
            return Err(format!(
                "chunk {index} of file {} does not match its sha256",
                self.id
            ));
        }
        Ok(())
    }

    /// Checks the whole reassembled file.
    pub fn check_file(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() as u64 != self.size || hex::encode(Sha256::digest(bytes)) != self.sha256 {
            return Err(format!(
                "file {} does not match its size and sha256 after reassembly",
                self.id
            ));
        }
        Ok(())
    }
}

/// `len` bytes cut in `chunk`-byte ranges; one empty range for an empty file.
pub(crate) fn ranges(len: u64, chunk: u64) -> Vec<Range<u64>> {
    if len == 0 {
        return std::iter::once(0..0).collect();
    }
    let chunk = chunk.max(1);
    (0..len.div_ceil(chunk))
        .map(|i| i * chunk..((i + 1) * chunk).min(len))
        .collect()
}

/// The chunks of `file` (with `n` chunks) that `have` lacks, in order.
pub(crate) fn missing(n: usize, have: &BTreeSet<u32>) -> Vec<u32> {
    (0..n as u32).filter(|i| !have.contains(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_file_once() {
        assert_eq!(ranges(0, 4), std::iter::once(0..0).collect::<Vec<_>>());
        assert_eq!(ranges(4, 4), std::iter::once(0..4).collect::<Vec<_>>());
        assert_eq!(ranges(9, 4), vec![0..4, 4..8, 8..9]);
        for len in [1u64, 7, 8, 1000] {
            for chunk in [1u64, 3, 8, 4096] {
                let r = ranges(len, chunk);
                assert_eq!(r.first().unwrap().start, 0);
                assert_eq!(r.last().unwrap().end, len);
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
                assert!(r
                    .iter()
                    .all(|r| r.end - r.start <= chunk && r.end > r.start));
            }
        }
    }

    #[test]
    fn chunks_and_the_whole_file_are_checked() {
        // Not periodic in 4096, so no two chunks are alike.
        let bytes: Vec<u8> = (0..10_000u32)
            .map(|i| (i * i / 7 + i / 300) as u8)
            .collect();
        let plan = FilePlan::of(Uuid::new_v4(), &bytes, 4096);
        assert!(plan.is_consistent());
        assert_eq!(plan.chunks.len(), 3);
        assert_eq!(plan.range(2), Some(8192..10_000));
        assert_eq!(plan.range(3), None);
        assert!(plan.check_chunk(0, &bytes[..4096]).is_ok());
        assert!(plan.check_chunk(2, &bytes[8192..]).is_ok());
        assert!(plan.check_chunk(1, &bytes[..4096]).is_err(), "wrong bytes");
        assert!(plan.check_chunk(2, &bytes[8000..]).is_err(), "wrong length");
        assert!(plan.check_chunk(9, &bytes[..1]).is_err(), "no such chunk");
        assert!(plan.check_file(&bytes).is_ok());
        let mut flipped = bytes.clone();
        flipped[5000] ^= 1;
        assert!(plan.check_file(&flipped).is_err());
        let mut bad = plan.clone();
        bad.chunks.pop();
        assert!(!bad.is_consistent());
        let empty = FilePlan::of(Uuid::new_v4(), &[], 4096);
        assert!(empty.is_consistent());
        assert!(empty.check_chunk(0, &[]).is_ok());
    }

    #[test]
    fn only_missing_chunks_are_resent() {
        let have: BTreeSet<u32> = [0, 2, 3].into_iter().collect();
        assert_eq!(missing(6, &have), vec![1, 4, 5]);
        assert_eq!(missing(3, &BTreeSet::new()), vec![0, 1, 2]);
        assert!(missing(4, &(0..4).collect()).is_empty());
    }
}
