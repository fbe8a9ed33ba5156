//! Streaming content-defined chunking: FastCDC 2020 over a buffer that is refilled from the
//! source, cutting exactly where chunking the whole stream at once would.

use bytes::Bytes;
use fastcdc::v2020::{FastCDC, Normalization};

use crate::config::ChunkerParams;
use crate::object::{ChunkId, Codec};

/// Chunker settings for one repository.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunker {
    pub(crate) params: ChunkerParams,
    pub(crate) seed: u64,
}

/// The chunks cut from one buffer.
pub(crate) struct Cut {
    /// `(id, plaintext)` of each complete chunk, in order (slices of the buffer).
    pub(crate) chunks: Vec<(ChunkId, Bytes)>,
    /// The bytes after the last complete chunk: the start of the next buffer.
    pub(crate) rest: Vec<u8>,
}

impl Chunker {
    /// How many bytes to gather before cutting: enough for several chunks per call.
    pub(crate) fn buffer_target(&self) -> usize {
        (self.params.max_size as usize * 2).max(1 << 20)
    }

    /// Cuts `buf` into chunks. Unless `eof`, a chunk is only cut when `max_size` bytes follow
    /// its start (so the cut point does not depend on where the buffer ends); the rest is
    /// returned for the next call. `hasher` is fed every byte that went into a chunk.
    pub(crate) fn cut(
        &self,
        codec: &Codec,
        buf: Vec<u8>,
        eof: bool,
        hasher: &mut blake3::Hasher,
    ) -> Cut {
        let data = Bytes::from(buf);
        let p = self.params;
        let mut chunks = Vec::new();
        let mut consumed = 0;
        let cdc = FastCDC::with_level_and_seed(
            &data,
            p.min_size,
            p.avg_size,
            p.max_size,
            Normalization::Level1,
            self.seed,
        );
        for c in cdc {
            if !eof && c.offset + p.max_size as usize > data.len() {
                break;
            }
            let slice = data.slice(c.offset..c.offset + c.length);
            chunks.push((codec.id(&slice), slice));
            consumed = c.offset + c.length;
        }
        hasher.update(&data[..consumed]);
        Cut {
            chunks,
            rest: data[consumed..].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, mut s: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    #[test]
    fn streaming_cuts_match_whole_buffer_cuts() {
        let params = ChunkerParams {
            min_size: 1024,
            avg_size: 4096,
            max_size: 16384,
            ..ChunkerParams::default()
        };
        let codec = Codec::new(None, 0);
        let data = pseudo_random(300_000, 42);
        for seed in [0, 7] {
            let ch = Chunker { params, seed };
            let mut h = blake3::Hasher::new();
            let whole = ch.cut(&codec, data.clone(), true, &mut h);
            assert_eq!(h.finalize(), blake3::hash(&data));
            // Feed in odd-sized pieces.
            let mut h2 = blake3::Hasher::new();
            let mut ids = Vec::new();
            let mut buf = Vec::new();
            for piece in data.chunks(20_011) {
                buf.extend_from_slice(piece);
                let cut = ch.cut(&codec, std::mem::take(&mut buf), false, &mut h2);
                ids.extend(cut.chunks.into_iter().map(|c| c.0));
                buf = cut.rest;
            }
            let cut = ch.cut(&codec, buf, true, &mut h2);
            ids.extend(cut.chunks.into_iter().map(|c| c.0));
            assert!(cut.rest.is_empty());
            assert_eq!(ids, whole.chunks.iter().map(|c| c.0).collect::<Vec<_>>());
            assert_eq!(h2.finalize(), blake3::hash(&data));
        }
    }

    #[test]
    fn empty_input_has_no_chunks() {
        let ch = Chunker {
            params: ChunkerParams::default(),
            seed: 0,
        };
        let cut = ch.cut(
            &Codec::new(None, 0),
            Vec::new(),
            true,
            &mut blake3::Hasher::new(),
        );
        assert!(cut.chunks.is_empty() && cut.rest.is_empty());
    }
}
