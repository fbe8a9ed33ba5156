//! The speaker digest: SHA-256 over a canonical encoding of every profile and enrollment row,
//! tombstones included, ordered by id. Two replicas that hold the same changes produce the same
//! digest; local-only bookkeeping (enrollment `deleted_at` values, the remembered enrollment
//! threshold) is left out. Both backends store the same values, so replicas on different
//! backends compare equal.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{begin_snapshot, SqlStore};
use crate::replication::SpeakerDigest;
use crate::Result;

impl SqlStore {
    pub(super) async fn rp_digest(&self) -> Result<SpeakerDigest> {
        // One snapshot, so both tables are seen at the same instant.
        let mut tx = begin_snapshot(&self.pool).await?;
        let profiles = sqlx::query(
            "SELECT id, resource_id, kind, locale, created_at, hlc, reset_hlc, reset_at, \
             deleted_hlc, deleted_at, status, enrollments_count, enrollments_secs, speech_secs, \
             signature, updated_at, passphrase FROM speaker_profiles ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let enrollments = sqlx::query(
            "SELECT id, profile_id, created_at, hlc, deleted_at, audio_secs, speech_secs, \
             audio_key, embedding, passphrase FROM speaker_enrollments ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut canon = Canonical::default();
        let mut digest = SpeakerDigest {
            profiles: 0,
            live_profiles: 0,
            enrollments: 0,
            live_enrollments: 0,
            sha256: String::new(),
        };
        for p in &profiles {
            let deleted_hlc: Option<i64> = p.try_get("deleted_hlc")?;
            let count: i64 = p.try_get("enrollments_count")?;
            let signature: Option<Vec<u8>> = p.try_get("signature")?;
            canon.tag(b'P');
            for col in ["id", "resource_id", "kind", "locale", "created_at"] {
                canon.str(&p.try_get::<String, _>(col)?);
            }
            canon.int(p.try_get("hlc")?);
            canon.int(p.try_get("reset_hlc")?);
            canon.opt_str(p.try_get("reset_at")?);
            canon.opt_int(deleted_hlc);
            canon.opt_str(p.try_get("deleted_at")?);
            canon.str(&p.try_get::<String, _>("status")?);
            canon.int(count);
            canon.f64(p.try_get("enrollments_secs")?);
            canon.f64(p.try_get("speech_secs")?);
            canon.bytes(&signature.unwrap_or_default());
            canon.str(&p.try_get::<String, _>("updated_at")?);
            canon.opt_str(p.try_get("passphrase")?);
            digest.profiles += 1;
            digest.live_profiles += u64::from(deleted_hlc.is_none());
        }
        for e in &enrollments {
            let live = e.try_get::<Option<String>, _>("deleted_at")?.is_none();
            canon.tag(b'E');
            for col in ["id", "profile_id", "created_at"] {
                canon.str(&e.try_get::<String, _>(col)?);
            }
            canon.int(e.try_get("hlc")?);
            canon.tag(u8::from(live));
            canon.f64(e.try_get("audio_secs")?);
            canon.f64(e.try_get("speech_secs")?);
            canon.str(&e.try_get::<String, _>("audio_key")?);
            canon.bytes(&e.try_get::<Vec<u8>, _>("embedding")?);
            canon.opt_str(e.try_get("passphrase")?);
            digest.enrollments += 1;
            digest.live_enrollments += u64::from(live);
        }
        digest.sha256 = canon.finish();
        Ok(digest)
    }
}

/// A canonical, unambiguous encoding fed to SHA-256: every field length-prefixed or fixed-width.
#[derive(Default)]
struct Canonical(Sha256);

impl Canonical {
    fn tag(&mut self, t: u8) {
        self.0.update([t]);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<String>) {
        self.tag(u8::from(s.is_some()));
        self.str(s.as_deref().unwrap_or(""));
    }
    fn int(&mut self, v: i64) {
        self.0.update(v.to_be_bytes());
    }
    fn opt_int(&mut self, v: Option<i64>) {
        self.tag(u8::from(v.is_some()));
        self.int(v.unwrap_or(0));
    }
    fn f64(&mut self, v: f64) {
        self.0.update(v.to_bits().to_be_bytes());
    }
    fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
