//! Typed speaker-recognition calls (Azure's 2021-09-05 text-independent API), over the speaker
//! route set.

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::client::{finish_in, Answered, TandemClient};
use crate::config::{CallKind, RegionEntry};
use crate::error::{ClientError, Result};
use crate::transport::Response;
use crate::wire::{enc, request};

/// The `api-version` of the speaker-recognition calls.
pub const SPEAKER_API_VERSION: &str = "2021-09-05";

/// The kind of a speaker profile: which half of the API it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerKind {
    /// Text-independent verification (`/speaker-recognition/verification/…`).
    Verification,
    /// Text-independent identification (`/speaker-recognition/identification/…`).
    Identification,
}

impl SpeakerKind {
    /// The Azure path segment: `verification` or `identification`.
    pub fn as_path(self) -> &'static str {
        match self {
            SpeakerKind::Verification => "verification",
            SpeakerKind::Identification => "identification",
        }
    }

    fn base(self) -> String {
        format!("/speaker-recognition/{}/text-independent", self.as_path())
    }
}

/// The body as JSON; an empty body is `null`.
fn json_or_null(a: Answered<Response>) -> Result<Answered<serde_json::Value>> {
    let value = if a.value.body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&a.value.body).map_err(|e| ClientError::AllRegionsFailed {
            attempts: a.attempts,
            last: format!("{}: invalid JSON answer: {e}", a.region),
        })?
    };
    Ok(Answered {
        value,
        region: a.region,
        node: a.node,
        attempts: a.attempts,
        failovers: a.failovers,
    })
}

impl TandemClient {
    /// Creates a text-independent profile of `kind` for `locale` (e.g. `en-us`).
    pub async fn create_speaker_profile(
        &self,
        kind: SpeakerKind,
        locale: &str,
    ) -> Result<Answered<serde_json::Value>> {
        let path = format!("{}/profiles", kind.base());
        let body = serde_json::json!({ "locale": locale }).to_string();
        self.speaker_call(path, "application/json", Bytes::from(body))
            .await
    }

    /// Adds a WAV clip to a profile's enrollment.
    pub async fn enroll_speaker(
        &self,
        kind: SpeakerKind,
        profile_id: &str,
        wav: Bytes,
    ) -> Result<Answered<serde_json::Value>> {
        let path = format!("{}/profiles/{}/enrollments", kind.base(), enc(profile_id));
        self.speaker_call(path, "audio/wav", wav).await
    }

    /// Verifies a WAV clip against a verification profile.
    pub async fn verify_speaker(
        &self,
        profile_id: &str,
        wav: Bytes,
    ) -> Result<Answered<serde_json::Value>> {
        let path = format!(
            "{}/profiles/{}:verify",
            SpeakerKind::Verification.base(),
            enc(profile_id)
        );
        self.speaker_call(path, "audio/wav", wav).await
    }

    /// Identifies the speaker of a WAV clip among identification profiles.
    pub async fn identify_speaker<S: AsRef<str>>(
        &self,
        profile_ids: &[S],
        wav: Bytes,
    ) -> Result<Answered<serde_json::Value>> {
        let ids: Vec<String> = profile_ids.iter().map(|p| enc(p.as_ref())).collect();
        let path = format!(
            "{}/profiles:identifySingleSpeaker?profileIds={}",
            SpeakerKind::Identification.base(),
            ids.join(",")
        );
        self.speaker_call(path, "audio/wav", wav).await
    }

    /// A `POST` over the speaker routes; caller-class answers become [`ClientError::Caller`].
    async fn speaker_call(
        &self,
        path: String,
        content_type: &'static str,
        body: Bytes,
    ) -> Result<Answered<serde_json::Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let pq = format!("{path}{sep}api-version={SPEAKER_API_VERSION}");
        let build = |_: &RegionEntry| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(ACCEPT, HeaderValue::from_static("application/json"));
            request(Method::POST, pq.clone(), h, body.clone())
        };
        let span = tracing::info_span!("tandem_client.speaker", path = %path);
        let engine = self.engine_for(CallKind::Speaker).await;
        let walked = engine
            .walk(CallKind::Speaker, &build)
            .instrument(span)
            .await?;
        finish_in(&engine, walked).and_then(json_or_null)
    }
}
