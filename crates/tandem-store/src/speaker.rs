//! Speaker recognition records: text-independent and text-dependent (passphrase) profiles and
//! their enrollments.
//!
//! A profile belongs to one resource and one service (verification or identification); it is
//! invisible to every other resource. Enrollments are append-only: a reset or a delete marks
//! them (and a deleted profile) with a tombstone, and every mutation is recorded in order, so a
//! replication log can be read from the store later without changing these types.

use std::fmt;
use std::str::FromStr;

use tandem_core::ResourceId;
use uuid::Uuid;

/// Which speaker service a profile belongs to. Profiles of one kind are not visible to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ProfileKind {
    /// `/speaker-recognition/verification/text-independent/...`
    #[serde(rename = "text-independent-verification")]
    TextIndependentVerification,
    /// `/speaker-recognition/identification/text-independent/...`
    #[serde(rename = "text-independent-identification")]
    TextIndependentIdentification,
    /// `/speaker-recognition/verification/text-dependent/...` (passphrases).
    #[serde(rename = "text-dependent-verification")]
    TextDependentVerification,
}

/// Live enrollments a text-dependent profile needs to be `Enrolled` (Azure's "at least 3").
pub const TEXT_DEPENDENT_ENROLLMENTS: u32 = 3;

impl ProfileKind {
    /// The stored name, e.g. `text-independent-verification`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileKind::TextIndependentVerification => "text-independent-verification",
            ProfileKind::TextIndependentIdentification => "text-independent-identification",
            ProfileKind::TextDependentVerification => "text-dependent-verification",
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProfileKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text-independent-verification" => Ok(ProfileKind::TextIndependentVerification),
            "text-independent-identification" => Ok(ProfileKind::TextIndependentIdentification),
            "text-dependent-verification" => Ok(ProfileKind::TextDependentVerification),
            other => Err(format!("unknown profile kind {other:?}")),
        }
    }
}

/// Where a profile stands: enough voiced speech (text-independent) or enough enrollments
/// (text-dependent, [`TEXT_DEPENDENT_ENROLLMENTS`]) for a voice signature, or not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    /// Still short of the required speech.
    Enrolling,
    /// Usable for verification or identification.
    Enrolled,
}

impl EnrollmentStatus {
    /// Azure's spelling: `Enrolling` or `Enrolled`.
    pub fn as_str(self) -> &'static str {
        match self {
            EnrollmentStatus::Enrolling => "Enrolling",
            EnrollmentStatus::Enrolled => "Enrolled",
        }
    }
}

/// A speaker profile as stored. The totals cover the live (not reset) enrollments.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerProfile {
    /// Random id (Azure's `profileId`).
    pub id: Uuid,
    /// The owning resource.
    pub resource_id: ResourceId,
    /// Verification or identification.
    pub kind: ProfileKind,
    /// Locale as given at creation, e.g. `en-us`.
    pub locale: String,
    /// Creation time (UTC).
    pub created_at: time::OffsetDateTime,
    /// Last change: creation, enrollment or reset (UTC).
    pub updated_at: time::OffsetDateTime,
    /// Live enrollments.
    pub enrollments_count: u32,
    /// Their total audio length, seconds.
    pub enrollments_secs: f64,
    /// Their total voiced speech, seconds.
    pub speech_secs: f64,
    /// Enrolling or Enrolled.
    pub status: EnrollmentStatus,
    /// The voice signature: renormalised mean of the live enrollment embeddings; empty when
    /// there are none.
    pub signature: Vec<f32>,
    /// Text-dependent: the passphrase of the earliest live enrollment (`None` while there is
    /// none, and always for text-independent profiles).
    pub passphrase: Option<String>,
}

/// What [`MetaStore::create_profile`](crate::MetaStore::create_profile) needs.
#[derive(Debug, Clone)]
pub struct NewProfile {
    /// Id chosen by the caller (random).
    pub id: Uuid,
    /// The owning resource.
    pub resource_id: ResourceId,
    /// Verification or identification.
    pub kind: ProfileKind,
    /// Locale, e.g. `en-us`.
    pub locale: String,
}

/// One enrollment of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    /// Random id.
    pub id: Uuid,
    /// The profile it belongs to.
    pub profile_id: Uuid,
    /// When it was added (UTC).
    pub created_at: time::OffsetDateTime,
    /// Length of the audio, seconds.
    pub audio_secs: f64,
    /// Voiced speech in it, seconds.
    pub speech_secs: f64,
    /// Key of its audio in the blob store ([`enrollment_audio_key`]).
    pub audio_key: String,
    /// Its speaker embedding (256 values for the GE2E encoder).
    pub embedding: Vec<f32>,
    /// Text-dependent: the passphrase said (as listed); `None` for text-independent.
    pub passphrase: Option<String>,
}

/// What [`MetaStore::add_enrollment`](crate::MetaStore::add_enrollment) needs.
#[derive(Debug, Clone)]
pub struct NewEnrollment {
    /// Id chosen by the caller (random).
    pub id: Uuid,
    /// The profile to add it to.
    pub profile_id: Uuid,
    /// Length of the audio, seconds.
    pub audio_secs: f64,
    /// Voiced speech in it, seconds.
    pub speech_secs: f64,
    /// Key of its audio in the blob store, already written.
    pub audio_key: String,
    /// Its speaker embedding.
    pub embedding: Vec<f32>,
    /// Text-dependent: the passphrase said (as listed); `None` for text-independent.
    pub passphrase: Option<String>,
}

/// The blob key of an enrollment's audio: `speaker/<resource>/<profile>/<enrollment>.wav`.
pub fn enrollment_audio_key(resource: ResourceId, profile: Uuid, enrollment: Uuid) -> String {
    format!("speaker/{resource}/{profile}/{enrollment}.wav")
}

/// The voice signature of several embeddings: their mean, renormalised to unit length (empty if
/// there are none or the mean is zero).
pub fn mean_signature<'a>(embeddings: impl IntoIterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for e in embeddings {
        if sum.is_empty() {
            sum = vec![0.0; e.len()];
        }
        sum.iter_mut().zip(e).for_each(|(a, b)| *a += b);
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|x| *x /= norm);
        sum
    } else {
        Vec::new()
    }
}

/// Little-endian f32 bytes, as embeddings are stored.
pub(crate) fn f32s_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`f32s_to_bytes`]; `None` if the length is not a multiple of 4.
pub(crate) fn bytes_to_f32s(b: &[u8]) -> Option<Vec<f32>> {
    let chunks = b.chunks_exact(4);
    chunks.remainder().is_empty().then(|| {
        chunks
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}
