//! Resource keys: how they are made, stored and compared.
//!
//! A key is 128 bits from the OS's CSPRNG, printed as 32 lowercase hex digits (the shape of an
//! Azure key). Only its SHA-256 is stored. Because keys are uniformly random and long, a plain
//! digest is as strong as a slow password hash here, and it lets the server find the resource by
//! an index on the digest. The final comparison of digests is constant-time.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{CoreError, Result};

/// A plaintext resource key. It is shown once, at creation, and never logged: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ResourceKey(String);

impl ResourceKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// Wraps a key presented by a client. Any string is accepted: a wrong key simply hashes to
    /// something no resource has.
    pub fn from_presented(s: &str) -> Self {
        Self(s.trim().to_owned())
    }

    /// The plaintext, for printing to the operator who created it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest that is stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResourceKey(<redacted>)")
    }
}

/// The SHA-256 digest of a resource key, as stored at rest.
#[derive(Clone, Copy, Eq, Serialize, Deserialize)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hex form, as stored in the database.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl PartialEq for KeyHash {
    /// Constant-time: the comparison does not stop at the first differing byte.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

/// Which of a resource's two keys (Azure's Key1/Key2, so that keys can be rotated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySlot {
    /// The first key.
    Key1,
    /// The second key.
    Key2,
}

impl KeySlot {
    /// `key1` or `key2`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Key1 => "key1",
            KeySlot::Key2 => "key2",
        }
    }
}

impl std::str::FromStr for KeySlot {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "key1" => Ok(KeySlot::Key1),
            "key2" => Ok(KeySlot::Key2),
            _ => Err(CoreError::InvalidKeySlot(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hex_and_hash_stably() {
        let a = ResourceKey::generate();
        let b = ResourceKey::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.hash(), ResourceKey::from_presented(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(KeyHash::from_hex(&a.hash().to_hex()).unwrap(), a.hash());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = ResourceKey::generate();
        assert!(!format!("{k:?}").contains(k.expose()));
        assert!(!format!("{:?}", k.hash()).contains(&k.hash().to_hex()));
    }

    #[test]
    fn slots_parse() {
        assert_eq!("Key1".parse::<KeySlot>().unwrap(), KeySlot::Key1);
        assert_eq!("key2".parse::<KeySlot>().unwrap(), KeySlot::Key2);
        assert!("key3".parse::<KeySlot>().is_err());
    }
}
