//! The object envelope shared by chunks and manifests (see FORMAT.md, "Objects"), content ids,
//! and the codec that hashes, compresses and encrypts. All of it is CPU work: callers run it in
//! `spawn_blocking`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::key::Key;
use crate::{Error, Result};

/// Envelope magic.
pub(crate) const MAGIC: &[u8; 4] = b"TBK1";
/// Envelope version this build writes and the newest it reads.
pub(crate) const ENVELOPE_VERSION: u8 = 1;
/// Object kinds.
pub(crate) const KIND_CHUNK: u8 = 1;
pub(crate) const KIND_MANIFEST: u8 = 2;
const FLAG_ZSTD: u8 = 1;
const FLAG_ENCRYPTED: u8 = 2;
const HEADER_LEN: usize = 40;
const NONCE_LEN: usize = 24;

/// A content id: BLAKE3 of the plaintext, keyed when the repository is encrypted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(ChunkId(out))
    }

    /// The object key, relative to the repository: `chunks/<2 hex>/<64 hex>`.
    pub fn object_key(&self) -> String {
        let h = self.to_hex();
        format!("chunks/{}/{h}", &h[..2])
    }
}

impl std::fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Display for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Hashing, compression and encryption for one repository.
#[derive(Clone)]
pub(crate) struct Codec {
    id_key: Option<[u8; 32]>,
    cipher: Option<XChaCha20Poly1305>,
    /// zstd level; 0 stores uncompressed.
    pub(crate) level: i32,
}

impl Codec {
    pub(crate) fn new(key: Option<&Key>, level: i32) -> Self {
        Codec {
            id_key: key.map(Key::id_key),
            cipher: key.map(|k| XChaCha20Poly1305::new(&k.encryption_key().into())),
            level,
        }
    }

    /// The content id of `data`.
    pub(crate) fn id(&self, data: &[u8]) -> ChunkId {
        ChunkId(*self.hasher().update(data).finalize().as_bytes())
    }

    /// A hasher producing content ids (for whole files, fed incrementally).
    pub(crate) fn hasher(&self) -> blake3::Hasher {
        match &self.id_key {
            Some(k) => blake3::Hasher::new_keyed(k),
            None => blake3::Hasher::new(),
        }
    }

    /// Wraps `plain` (whose content id is `id`) in an envelope; `name` is the object key, bound
    /// as associated data when encrypting.
    pub(crate) fn seal(&self, kind: u8, id: &ChunkId, name: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut flags = 0;
        let compressed = if self.level > 0 {
            zstd::bulk::compress(plain, self.level)
                .ok()
                .filter(|c| c.len() < plain.len())
        } else {
            None
        };
        if compressed.is_some() {
            flags |= FLAG_ZSTD;
        }
        if self.cipher.is_some() {
            flags |= FLAG_ENCRYPTED;
        }
        let body = compressed.as_deref().unwrap_or(plain);
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + body.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[ENVELOPE_VERSION, kind, flags, 0]);
        out.extend_from_slice(&id.0);
        match &self.cipher {
            None => out.extend_from_slice(body),
            Some(cipher) => {
                let mut nonce = [0u8; NONCE_LEN];
                rand::rngs::OsRng.fill_bytes(&mut nonce);
                let aad = aad(&out[..HEADER_LEN], name);
                let ct = cipher
                    .encrypt(
                        XNonce::from_slice(&nonce),
                        Payload {
                            msg: body,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| Error::Internal("encryption failed".into()))?;
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
            }
        }
        Ok(out)
    }

    /// Opens an envelope: checks magic, version and kind, decrypts, decompresses, and checks the
    /// plaintext against the content id in the header (and `expect`, when given). Errors are
    /// [`Error::Corrupt`] with only a reason (or [`Error::FormatTooNew`]).
    pub(crate) fn open(
        &self,
        kind: u8,
        name: &str,
        expect: Option<&ChunkId>,
        obj: &[u8],
    ) -> Result<Vec<u8>> {
        if obj.len() < HEADER_LEN {
            return Err(Error::corrupt(format!(
                "object is {} bytes, shorter than the header",
                obj.len()
            )));
        }
        if &obj[..4] != MAGIC {
            return Err(Error::corrupt("bad magic"));
        }
        let (version, got_kind, flags) = (obj[4], obj[5], obj[6]);
        if version > ENVELOPE_VERSION {
            return Err(Error::FormatTooNew {
                what: name.to_owned(),
                found: version.into(),
                supported: ENVELOPE_VERSION.into(),
            });
        }
        if got_kind != kind {
            return Err(Error::corrupt(format!(
                "object kind {got_kind}, expected {kind}"
            )));
        }
        if flags & !(FLAG_ZSTD | FLAG_ENCRYPTED) != 0 || obj[7] != 0 {
            return Err(Error::corrupt(format!(
                "unknown flags {flags:#x} or reserved byte set"
            )));
        }
        let header_id = ChunkId(obj[8..HEADER_LEN].try_into().expect("32 bytes"));
        if let Some(e) = expect {
            if *e != header_id {
                return Err(Error::corrupt("header id does not match the object name"));
            }
        }
        let encrypted = flags & FLAG_ENCRYPTED != 0;
        let decrypted;
        let body = match (&self.cipher, encrypted) {
            (None, false) => &obj[HEADER_LEN..],
            (Some(cipher), true) => {
                if obj.len() < HEADER_LEN + NONCE_LEN + 16 {
                    return Err(Error::corrupt("encrypted object truncated"));
                }
                let nonce = XNonce::from_slice(&obj[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
                let aad = aad(&obj[..HEADER_LEN], name);
                decrypted = cipher
                    .decrypt(
                        nonce,
                        Payload {
                            msg: &obj[HEADER_LEN + NONCE_LEN..],
                            aad: &aad,
                        },
                    )
                    .map_err(|_| Error::corrupt("authentication failed (damaged or tampered)"))?;
                &decrypted[..]
            }
            (None, true) => return Err(Error::corrupt("object is encrypted, repository is not")),
            (Some(_), false) => return Err(Error::corrupt("object is not encrypted")),
        };
        let plain = if flags & FLAG_ZSTD != 0 {
            decompress(body)?
        } else {
            body.to_vec()
        };
        if self.id(&plain) != header_id {
            return Err(Error::corrupt("content hash mismatch"));
        }
        Ok(plain)
    }
}

fn decompress(body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    zstd::stream::copy_decode(body, &mut out).map_err(|e| Error::corrupt(format!("zstd: {e}")))?;
    Ok(out)
}

fn aad(header: &[u8], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + name.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: &Codec, data: &[u8]) {
        let id = codec.id(data);
        let name = id.object_key();
        let obj = codec.seal(KIND_CHUNK, &id, &name, data).unwrap();
        assert_eq!(
            codec.open(KIND_CHUNK, &name, Some(&id), &obj).unwrap(),
            data
        );
        // Every single-byte flip is detected.
        for i in [0, 5, 6, 8, 39, obj.len() / 2, obj.len() - 1] {
            let mut bad = obj.clone();
            bad[i] ^= 0x40;
            assert!(
                codec.open(KIND_CHUNK, &name, Some(&id), &bad).is_err(),
                "flip at {i}"
            );
        }
        // Truncation too.
        assert!(codec
            .open(KIND_CHUNK, &name, Some(&id), &obj[..obj.len() - 1])
            .is_err());
    }

    #[test]
    fn envelopes_round_trip_and_detect_damage() {
        let compressible = vec![7u8; 100_000];
        let mut random = vec![0u8; 10_000];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let key = Key::generate();
        for codec in [
            Codec::new(None, 3),
            Codec::new(Some(&key), 3),
            Codec::new(None, 0),
        ] {
            round_trip(&codec, &compressible);
            round_trip(&codec, &random);
            round_trip(&codec, b"x");
            round_trip(&codec, b"");
        }
    }

    #[test]
    fn keyed_ids_differ_and_wrong_key_fails() {
        let (a, b) = (Key::generate(), Key::generate());
        let (ca, cb, plain) = (
            Codec::new(Some(&a), 3),
            Codec::new(Some(&b), 3),
            Codec::new(None, 3),
        );
        assert_ne!(ca.id(b"hello"), plain.id(b"hello"));
        assert_ne!(ca.id(b"hello"), cb.id(b"hello"));
        let id = ca.id(b"hello");
        let obj = ca.seal(KIND_CHUNK, &id, "n", b"hello").unwrap();
        assert!(cb.open(KIND_CHUNK, "n", None, &obj).is_err());
        assert!(
            ca.open(KIND_CHUNK, "other-name", None, &obj).is_err(),
            "name is bound"
        );
        assert!(
            ca.open(KIND_MANIFEST, "n", None, &obj).is_err(),
            "kind is checked"
        );
    }
}
