//! The adapted model's artifact: `to_bytes` / `from_bytes`.
//!
//! Layout (little-endian), format version 2:
//!
//! ```text
//! magic "TNDMADPT" | u32 version | body | sha256(magic..body) (32 bytes)
//! body:  str base_model | str base_sha256 | u32 n_vocab | u32 sot | u32 eot
//!        u32 order | f32 lm_weight | f32 lm_floor | u32 beam_size | u32 prompt_tokens
//!        f32 word_bonus                                                          (v2 only)
//!        str prompt | u32 n, n x u32 prompt tokens
//!        u32 n, n x (str display, str spoken)                              (pronunciations)
//!        u32 n, n x u32                                              (punctuation tokens)
//!        for k in 1..=order: u32 n, n x (k x u32 token, u32 count)         (n-gram counts)
//!        u32 n, n x (u32 len, len x u32 token)                     (bias words, v2 only)
//! str:   u32 byte length | UTF-8 bytes
//! ```
//!
//! Format 1 is format 2 without the two v2 fields; it still loads, with no word bonus and no
//! bias words, and so recognizes exactly as it did.
//!
//! The smoothed tables are rebuilt from the counts on load (deterministic, a few ms).
//! `from_bytes` checks everything and never panics: a bad magic, a newer version, a checksum
//! mismatch, truncation, out-of-range tokens or trailing bytes are errors.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::bias::BiasTrie;
use super::ngram::{Counts, NgramLm};
use super::{AdaptParams, AdaptedModel};
use crate::{EngineError, Result};

const MAGIC: &[u8; 8] = b"TNDMADPT";
/// The artifact format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
/// Largest vocabulary accepted on load (the LM allocates a dense table of this size).
const MAX_VOCAB: u32 = 1 << 20;
const MAX_ORDER: u32 = 8;

fn bad(reason: impl Into<String>) -> EngineError {
    EngineError::BadModel {
        name: "adapted model".into(),
        reason: reason.into(),
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(bad("truncated artifact"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    /// A count of items of at least `item_bytes` bytes each, checked against what is left.
    fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes.max(1)) > self.buf.len() {
            return Err(bad("truncated artifact (a count exceeds the data)"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String> {
        let n = self.count(1)?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("a string is not UTF-8"))
    }
}

/// What an artifact's header says, read by [`inspect`] without building the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactHeader {
    /// The artifact format version.
    pub format: u32,
    /// The base model it adapts (e.g. `whisper-tiny.en`).
    pub base_model: String,
    /// The sha256 of the base model's weights it was trained against.
    pub base_sha256: String,
}

/// Checks what can be checked without building the n-gram tables — the magic, a format this
/// build reads, the trailing sha256 over the whole artifact — and returns the header. Cheap
/// (one hash pass); [`AdaptedModel::from_bytes`] does this and then builds the model.
pub fn inspect(bytes: &[u8]) -> Result<ArtifactHeader> {
    open(bytes).map(|(_, header)| header)
}

/// The checks of [`inspect`]; a reader positioned after the header.
fn open(bytes: &[u8]) -> Result<(Reader<'_>, ArtifactHeader)> {
    if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("not an adapted model artifact"));
    }
    let (content, digest) = bytes.split_at(bytes.len() - 32);
    let mut r = Reader {
        buf: &content[MAGIC.len()..],
    };
    let format = r.u32()?;
    if format > FORMAT_VERSION {
        return Err(bad(format!(
            "artifact format {format} is newer than this build reads ({FORMAT_VERSION})"
        )));
    }
    if format == 0 {
        return Err(bad("artifact format 0 does not exist"));
    }
    if Sha256::digest(content).as_slice() != digest {
        return Err(bad("checksum mismatch (corrupt or truncated artifact)"));
    }
    let base_model = r.str()?;
    let base_sha256 = r.str()?;
    Ok((
        r,
        ArtifactHeader {
            format,
            base_model,
            base_sha256,
        },
    ))
}

impl AdaptedModel {
    /// The self-contained, versioned artifact (see the module documentation of `codec`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(FORMAT_VERSION);
        w.str(&self.base_model);
        w.str(&self.base_sha256);
        w.u32(self.n_vocab);
        w.u32(self.sot);
        w.u32(self.eot);
        w.u32(self.params.order);
        w.f32(self.params.lm_weight);
        w.f32(self.params.lm_floor);
        w.u32(self.params.beam_size);
        w.u32(self.params.prompt_tokens);
        w.f32(self.params.word_bonus);
        w.str(&self.prompt);
        w.len(self.prompt_tokens.len());
        for &t in &self.prompt_tokens {
            w.u32(t);
        }
        w.len(self.pronunciations.len());
        for (d, s) in &self.pronunciations {
            w.str(d);
            w.str(s);
        }
        w.len(self.punctuation.len());
        for &t in &self.punctuation {
            w.u32(t);
        }
        for table in self.lm.counts() {
            // Sorted, so that the same model always gives the same bytes.
            let mut entries: Vec<(&Vec<u32>, &u32)> = table.iter().collect();
            entries.sort_unstable();
            w.len(entries.len());
            for (gram, &c) in entries {
                for &t in gram {
                    w.u32(t);
                }
                w.u32(c);
            }
        }
        w.len(self.bias.words().len());
        for word in self.bias.words() {
            w.len(word.len());
            for &t in word {
                w.u32(t);
            }
        }
        let digest = Sha256::digest(&w.0);
        w.0.extend_from_slice(&digest);
        w.0
    }

    /// Reads an artifact written by [`AdaptedModel::to_bytes`] (this or an older format).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (mut r, header) = open(bytes)?;
        let version = header.format;
        let ArtifactHeader {
            base_model,
            base_sha256,
            ..
        } = header;
        let n_vocab = r.u32()?;
        let sot = r.u32()?;
        let eot = r.u32()?;
        if n_vocab == 0 || n_vocab > MAX_VOCAB || sot >= n_vocab || eot >= n_vocab {
            return Err(bad("bad vocabulary size or special tokens"));
        }
        let params = AdaptParams {
            order: r.u32()?,
            lm_weight: r.f32()?,
            lm_floor: r.f32()?,
            beam_size: r.u32()?,
            prompt_tokens: r.u32()?,
            word_bonus: if version >= 2 { r.f32()? } else { 0.0 },
        };
        if !(1..=MAX_ORDER).contains(&params.order)
            || !params.lm_weight.is_finite()
            || !params.word_bonus.is_finite()
            || !(params.lm_floor.is_finite() || params.lm_floor == f32::NEG_INFINITY)
            || !(1..=16).contains(&params.beam_size)
        {
            return Err(bad("bad parameters"));
        }
        let token = |t: u32| {
            if t < n_vocab {
                Ok(t)
            } else {
                Err(bad(format!("token {t} is outside the vocabulary")))
            }
        };
        let prompt = r.str()?;
        let n = r.count(4)?;
        let prompt_tokens = (0..n)
            .map(|_| r.u32().and_then(token))
            .collect::<Result<Vec<_>>>()?;
        let n = r.count(8)?;
        let pronunciations = (0..n)
            .map(|_| Ok((r.str()?, r.str()?)))
            .collect::<Result<Vec<_>>>()?;
        let n = r.count(4)?;
        let punctuation = (0..n)
            .map(|_| r.u32().and_then(token))
            .collect::<Result<Vec<_>>>()?;
        let mut counts: Counts = Vec::with_capacity(params.order as usize);
        for k in 1..=params.order as usize {
            let n = r.count(4 * (k + 1))?;
            let mut table = HashMap::with_capacity(n);
            for _ in 0..n {
                let gram = (0..k)
                    .map(|_| r.u32().and_then(token))
                    .collect::<Result<Vec<_>>>()?;
                table.insert(gram, r.u32()?);
            }
            counts.push(table);
        }
        let mut words = Vec::new();
        if version >= 2 {
            let n = r.count(4)?;
            for _ in 0..n {
                let len = r.count(4)?;
                words.push(
                    (0..len)
                        .map(|_| r.u32().and_then(token))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
        }
        if !r.buf.is_empty() {
            return Err(bad("trailing bytes after the n-gram tables"));
        }
        let lm = NgramLm::from_counts(counts, n_vocab as usize, sot);
        Ok(Self {
            base_model,
            base_sha256,
            n_vocab,
            sot,
            eot,
            params,
            prompt,
            prompt_tokens,
            pronunciations,
            is_punct: super::punct_table(&punctuation, n_vocab),
            punctuation,
            lm,
            bias: BiasTrie::from_words(words),
        })
    }
}
