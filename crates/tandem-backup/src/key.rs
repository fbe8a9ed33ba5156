//! The key file and the keys derived from it. One 32-byte master key (a key file holds it as 64
//! hex digits) yields, through BLAKE3's `derive_key`, independent keys for encryption, chunk
//! ids, the chunker seed and the key check stored in the repository config.

use std::path::Path;

use rand::RngCore;

use crate::{Error, Result};

const CTX_ENCRYPT: &str = "tandem-backup v1 encryption key";
const CTX_ID: &str = "tandem-backup v1 chunk id key";
const CTX_SEED: &str = "tandem-backup v1 chunker seed";
const CTX_CHECK: &str = "tandem-backup v1 key check";

/// A repository master key. `Debug` never shows the key.
#[derive(Clone)]
pub struct Key {
    master: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(check {})", &self.check()[..16])
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut master = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut master);
        Key { master }
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(master: [u8; 32]) -> Self {
        Key { master }
    }

    /// Parses the key file text: 64 hex digits, surrounding whitespace ignored.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
        let master: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("expected 64 hex digits, found {}", text.len()))?;
        Ok(Key { master })
    }

    /// Reads a key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadKeyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Key::from_hex(&text).map_err(bad)
    }

    /// The key file text: 64 lower-case hex digits and a newline.
    pub fn to_hex(&self) -> String {
        format!("{}\n", hex::encode(self.master))
    }

    /// The value stored in the repository config to recognise this key (64 hex digits). It
    /// reveals nothing about the key.
    pub fn check(&self) -> String {
        hex::encode(blake3::derive_key(CTX_CHECK, &self.master))
    }

    pub(crate) fn encryption_key(&self) -> [u8; 32] {
        blake3::derive_key(CTX_ENCRYPT, &self.master)
    }

    pub(crate) fn id_key(&self) -> [u8; 32] {
        blake3::derive_key(CTX_ID, &self.master)
    }

    pub(crate) fn chunker_seed(&self) -> u64 {
        let k = blake3::derive_key(CTX_SEED, &self.master);
        u64::from_le_bytes(k[..8].try_into().expect("8 bytes"))
    }
}

/// Writes a new random key file at `path` (mode 0600 on Unix), refusing to overwrite an existing
/// file. Returns the key.
pub fn generate_key_file(path: &Path) -> Result<Key> {
    use std::io::Write;
    let key = Key::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::BadKeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    f.write_all(key.to_hex().as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_derived_keys_differ() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = generate_key_file(&path).unwrap();
        let again = Key::from_file(&path).unwrap();
        assert_eq!(key.check(), again.check());
        assert_ne!(key.encryption_key(), key.id_key());
        assert!(generate_key_file(&path).is_err(), "never overwrites");
        assert!(!format!("{key:?}").contains(&hex::encode(key.master)));
        assert!(Key::from_hex("abcd").is_err());
        assert!(Key::from_hex(&"zz".repeat(32)).is_err());
    }
}
