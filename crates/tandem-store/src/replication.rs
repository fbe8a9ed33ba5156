//! What paired-region replication reads from and writes to a store.
//!
//! A region's speaker data changes only through its own API (profiles, enrollments, resets,
//! deletes) or through changes applied from its pair. Local mutations are appended, in commit
//! order, to an origin log (`speaker_changes`) with a monotonic `seq` and a hybrid logical clock
//! timestamp ([`Hlc`]); the pair pulls that log ([`MetaStore::speaker_changes`](crate::MetaStore::speaker_changes)) and applies it
//! ([`MetaStore::apply_speaker_changes`](crate::MetaStore::apply_speaker_changes)). Changes applied from a peer are not re-logged: with
//! two regions per pair, each side's origin log is exactly what the other lacks.
//!
//! # Merge rules
//!
//! Applying is idempotent and commutative, so both sides converge whatever the interleaving
//! (a crash, or a partition with writes on both sides):
//!
//! 1. A profile is identified by its id and created once; its header (resource, kind, locale,
//!    creation time, creation HLC) never changes. Every change carries the header, so a change
//!    can be applied even where the profile is not known yet.
//! 2. Enrollments are append-only, identified by id; applying one twice is a no-op.
//! 3. A reset at HLC `h` raises the profile's `reset_hlc` to `max(reset_hlc, h)`. An enrollment
//!    is live iff the profile is not deleted and `enrollment.hlc > reset_hlc`: a reset removes
//!    what was enrolled before it, never what was enrolled concurrently after it elsewhere.
//! 4. A delete wins over everything: the profile and all its enrollments (including ones that
//!    arrive later) are tombstones. The earliest delete (lowest HLC) is the one recorded.
//! 5. Totals, signature, status and `updated_at` are recomputed from the live enrollments after
//!    every change, deterministically (sums in `(created_at, id)` order; `updated_at` is the
//!    latest of the creation, enrollment, reset and delete times; a text-dependent profile's
//!    passphrase is its earliest live enrollment's, and it is `Enrolled` at
//!    [`TEXT_DEPENDENT_ENROLLMENTS`](crate::TEXT_DEPENDENT_ENROLLMENTS) live enrollments), so
//!    two replicas that hold the same changes hold byte-identical profiles ([`MetaStore::speaker_digest`](crate::MetaStore::speaker_digest)).
//!
//! Nothing is ever physically removed by replication: tombstoned rows stay, so "no enrollment
//! is ever lost" can be checked after the fact. (Removing a resource, at home or through
//! [`MetaStore::sync_foreign_resources`](crate::MetaStore::sync_foreign_resources), does remove
//! its speaker data, on both sides alike.)
//!
//! # Clock and identity
//!
//! Each store owns an [`HlcClock`](crate::HlcClock), started past the newest stamp in its
//! database, that stamps local changes and observes every applied one, so a change made after
//! seeing another is ordered after it whatever the two hosts' clocks say. Each store also has a
//! random [`MetaStore::store_id`](crate::MetaStore::store_id); a peer's [`Cursor`] records it
//! with the last applied `seq`, so a replaced database (a restored backup, a new file) is seen
//! as a new log to read from the start, which is safe because applying is idempotent.

use serde::{Deserialize, Serialize};
use tandem_core::{KeyHash, RegionName, ResourceId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ProfileKind;

/// A hybrid logical clock timestamp: milliseconds since the Unix epoch in the upper 48 bits, a
/// logical counter in the lower 16. Ordered like `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hlc(pub u64);

/// A profile's immutable header, carried by every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileHeader {
    /// The profile id.
    pub id: Uuid,
    /// The owning resource.
    pub resource_id: ResourceId,
    /// Verification or identification.
    pub kind: ProfileKind,
    /// Locale, e.g. `en-us`.
    pub locale: String,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Creation HLC.
    pub hlc: Hlc,
}

/// An enrollment as replicated (its audio travels separately, by `audio_key`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicatedEnrollment {
    /// The enrollment id.
    pub id: Uuid,
    /// When it was added (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its HLC.
    pub hlc: Hlc,
    /// Length of the audio, seconds.
    pub audio_secs: f64,
    /// Voiced speech in it, seconds.
    pub speech_secs: f64,
    /// Key of its audio in the blob store.
    pub audio_key: String,
    /// Its speaker embedding.
    pub embedding: Vec<f32>,
    /// Text-dependent: the passphrase said. Absent on the wire from builds before format 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum SpeakerOp {
    /// The profile was created.
    Create,
    /// An enrollment was added.
    Enroll {
        /// The enrollment.
        enrollment: ReplicatedEnrollment,
    },
    /// The profile was reset.
    Reset,
    /// The profile was deleted.
    Delete,
}

/// One entry of a region's origin log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerChange {
    /// Position in the origin's log (1, 2, …; gaps are allowed).
    pub seq: u64,
    /// HLC of the change.
    pub hlc: Hlc,
    /// Wall-clock time of the change at its origin (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The profile concerned.
    pub profile: ProfileHeader,
    /// What happened.
    #[serde(flatten)]
    pub op: SpeakerOp,
}

/// A resource with its key hashes, as the pair needs it to accept the resource's keys for the
/// resource's speaker data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicatedResource {
    /// The id (the same in both regions).
    pub id: ResourceId,
    /// The home region of the resource.
    pub region: RegionName,
    /// Its name.
    pub name: String,
    /// SHA-256 of key 1 (hex on the wire).
    #[serde(with = "hex_hash")]
    pub key1: KeyHash,
    /// SHA-256 of key 2 (hex on the wire).
    #[serde(with = "hex_hash")]
    pub key2: KeyHash,
    /// Concurrent requests allowed.
    pub concurrency_limit: u32,
    /// Creation time (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What [`MetaStore::apply_speaker_changes`](crate::MetaStore::apply_speaker_changes) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Changes that modified something (the others were already applied).
    pub changed: u32,
    /// Audio keys of enrollments that became tombstones in this batch (their blobs may go).
    pub removed_audio: Vec<String>,
}

/// What [`MetaStore::sync_foreign_resources`](crate::MetaStore::sync_foreign_resources) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSync {
    /// Resources added.
    pub added: u32,
    /// Resources whose keys or limit changed.
    pub updated: u32,
    /// Resources removed (with their speaker data, as at home).
    pub removed: u32,
}

/// A summary of all speaker data, equal on two replicas iff they hold the same data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerDigest {
    /// Profiles, tombstones included.
    pub profiles: u64,
    /// Live (not deleted) profiles.
    pub live_profiles: u64,
    /// Enrollments, tombstones included.
    pub enrollments: u64,
    /// Live enrollments.
    pub live_enrollments: u64,
    /// SHA-256 (hex) over a canonical encoding of every profile and enrollment.
    pub sha256: String,
}

/// Where a store stands with one peer's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The peer store's id (its log restarts if this changes).
    pub store_id: Uuid,
    /// The last applied `seq` of that log.
    pub seq: u64,
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};
    use tandem_core::KeyHash;

    pub fn serialize<S: Serializer>(h: &KeyHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyHash, D::Error> {
        let s = String::deserialize(d)?;
        KeyHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a 64-digit hex SHA-256"))
    }
}
