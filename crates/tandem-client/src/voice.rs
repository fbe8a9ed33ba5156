//! Text-to-speech and the custom-voice fallback chain:
//! custom voice in the first region with a `voice_deployment_id` → the same voice in the next
//! such region → `public_fallback_voice` (SSML rewritten, no `deploymentId`) on the normal
//! failover path. A 400/404 from a custom link (the deployment or voice is missing there) moves
//! to the next link: the one place a caller-class answer advances.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method};
use serde::Serialize;
use tracing::Instrument;

use crate::client::{Answered, TandemClient};
use crate::config::{CallKind, RegionEntry};
use crate::engine::{RegionResult, Tried, Walked};
use crate::error::{ClientError, Result};
use crate::observe::ClientEvent;
use crate::wire::{caller_error, enc, request};

/// A synthesis call.
#[derive(Debug, Clone)]
pub struct SynthesisRequest {
    /// The SSML document.
    pub ssml: String,
    /// `X-Microsoft-OutputFormat`, e.g. `riff-16khz-16bit-mono-pcm`.
    pub output_format: String,
    /// Try the regions' custom voice deployments first.
    pub prefer_custom_voice: bool,
}

/// Which link of the voice chain answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VoiceLink {
    /// The custom voice in the first configured region that has a deployment.
    Custom {
        /// The region.
        region: String,
    },
    /// The custom voice in another region that has a deployment (the first one failed, or its
    /// breaker is open).
    CustomSecondary {
        /// The region.
        region: String,
    },
    /// A public voice (the request's own, or `public_fallback_voice` after the custom links).
    Public {
        /// The region.
        region: String,
    },
}

impl VoiceLink {
    /// The link's name: `custom`, `custom-secondary` or `public` (the gateway's
    /// `x-tandem-voice-link`, the metrics' `link` label).
    pub fn as_str(&self) -> &'static str {
        match self {
            VoiceLink::Custom { .. } => "custom",
            VoiceLink::CustomSecondary { .. } => "custom-secondary",
            VoiceLink::Public { .. } => "public",
        }
    }

    /// The region that answered.
    pub fn region(&self) -> &str {
        match self {
            VoiceLink::Custom { region }
            | VoiceLink::CustomSecondary { region }
            | VoiceLink::Public { region } => region,
        }
    }
}

/// Synthesized audio.
#[derive(Debug, Clone)]
pub struct Synthesized {
    /// The audio bytes.
    pub audio: Bytes,
    /// The response's `Content-Type`.
    pub content_type: String,
    /// Which link answered.
    pub link: VoiceLink,
}

/// Replaces the `name` attribute of every `<voice>` element with `voice`.
pub fn rewrite_voice(ssml: &str, voice: &str) -> String {
    let mut out = String::with_capacity(ssml.len());
    let mut rest = ssml;
    while let Some(pos) = rest.find("<voice") {
        let after = &rest[pos + 6..];
        // `<voice` must be the whole element name.
        if !after.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            out.push_str(&rest[..pos + 6]);
            rest = after;
            continue;
        }
        let end = after.find('>').map_or(after.len(), |e| e);
        let tag = &after[..end];
        out.push_str(&rest[..pos + 6]);
        out.push_str(&rewrite_name_attr(tag, voice));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn rewrite_name_attr(tag: &str, voice: &str) -> String {
    let bytes = tag.as_bytes();
    let mut i = 0;
    while let Some(off) = tag[i..].find("name") {
        let at = i + off;
        let boundary = at == 0 || bytes[at - 1].is_ascii_whitespace();
        let mut j = at + 4;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if boundary && j < bytes.len() && bytes[j] == b'=' {
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                let q = bytes[j] as char;
                if let Some(close) = tag[j + 1..].find(q) {
                    return format!("{}{}{}", &tag[..j + 1], voice, &tag[j + 1 + close..]);
                }
            }
        }
        i = at + 4;
    }
    tag.to_string()
}

impl TandemClient {
    /// Text-to-speech, with the voice chain when `prefer_custom_voice` is set.
    pub async fn synthesize(&self, req: &SynthesisRequest) -> Result<Answered<Synthesized>> {
        let span =
            tracing::info_span!("tandem_client.synthesize", custom = req.prefer_custom_voice);
        let answered = self.synthesize_inner(req).instrument(span).await?;
        if req.prefer_custom_voice {
            let link = &answered.value.link;
            self.engine
                .metrics
                .voice_answers
                .with_label_values(&[link.as_str(), link.region()])
                .inc();
        }
        Ok(answered)
    }

    async fn synthesize_inner(&self, req: &SynthesisRequest) -> Result<Answered<Synthesized>> {
        let e = &self.engine;
        let (mut attempts, mut failovers) = (0, 0);
        let mut ssml = req.ssml.clone();
        if req.prefer_custom_voice {
            let custom: Vec<usize> = e
                .candidates()
                .into_iter()
                .filter(|&i| e.regions[i].entry.voice_deployment_id.is_some())
                .take(2)
                .collect();
            // The configured first custom region is the primary link, even when its breaker
            // keeps it out of this call's candidates.
            let primary = e
                .regions
                .iter()
                .position(|r| r.entry.voice_deployment_id.is_some());
            let mut prev: Option<usize> = None;
            for &idx in &custom {
                if let Some(p) = prev {
                    failovers += 1;
                    e.metrics.failovers.inc();
                    e.emit(ClientEvent::Failover {
                        from: e.name(p).into(),
                        to: e.name(idx).into(),
                    });
                }
                prev = Some(idx);
                let build = |r: &RegionEntry| {
                    self.tts_request(req, &req.ssml, r.voice_deployment_id.as_deref())
                };
                let tried: Tried = e.call_region(CallKind::Tts, idx, &build).await;
                attempts += tried.attempts;
                let region = e.name(idx).to_string();
                let node = e.endpoint(idx, tried.node).to_string();
                match tried.result {
                    RegionResult::Ok(r) => {
                        let link = if Some(idx) == primary {
                            VoiceLink::Custom {
                                region: region.clone(),
                            }
                        } else {
                            VoiceLink::CustomSecondary {
                                region: region.clone(),
                            }
                        };
                        let at = (region, node);
                        return Ok(synthesized(r, link, at, attempts, failovers));
                    }
                    RegionResult::Caller(r) if matches!(r.status.as_u16(), 400 | 404) => {
                        tracing::info!(region = %region, status = r.status.as_u16(), "custom voice unavailable; next link");
                    }
                    RegionResult::Caller(r) => return Err(caller_error(&r, region)),
                    RegionResult::Unauthorized(_) => {
                        return Err(ClientError::Unauthorized {
                            region,
                            message: "refused after a token refresh".into(),
                        })
                    }
                    RegionResult::Failed(why) => {
                        tracing::info!(region = %region, %why, "custom voice link failed")
                    }
                }
            }
            // The SSML names the custom voice, which no public link speaks: rewritten, also
            // when every custom region was skipped (their breakers open).
            if primary.is_some() {
                ssml = rewrite_voice(&req.ssml, &e.policy.public_fallback_voice);
            }
            if let Some(p) = prev {
                if let Some(&next) = e.candidates().first() {
                    failovers += 1;
                    e.metrics.failovers.inc();
                    e.emit(ClientEvent::Failover {
                        from: e.name(p).into(),
                        to: e.name(next).into(),
                    });
                }
            }
        }
        let build = |_: &RegionEntry| self.tts_request(req, &ssml, None);
        let walked: Walked = e
            .walk(CallKind::Tts, &build)
            .await
            .map_err(|err| match err {
                ClientError::AllRegionsFailed { attempts: a, last } => {
                    ClientError::AllRegionsFailed {
                        attempts: a + attempts,
                        last,
                    }
                }
                other => other,
            })?;
        let a = self.finish(walked)?;
        let link = VoiceLink::Public {
            region: a.region.clone(),
        };
        Ok(synthesized(
            a.value,
            link,
            (a.region, a.node),
            a.attempts + attempts,
            a.failovers + failovers,
        ))
    }

    fn tts_request(
        &self,
        req: &SynthesisRequest,
        ssml: &str,
        deployment: Option<&str>,
    ) -> crate::transport::Request {
        let path = match deployment {
            Some(id) => format!("/cognitiveservices/v1?deploymentId={}", enc(id)),
            None => "/cognitiveservices/v1".to_string(),
        };
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/ssml+xml"),
        );
        if let Ok(v) = HeaderValue::from_str(&req.output_format) {
            h.insert("X-Microsoft-OutputFormat", v);
        }
        request(Method::POST, path, h, Bytes::from(ssml.to_string()))
    }
}

fn synthesized(
    r: crate::transport::Response,
    link: VoiceLink,
    (region, node): (String, String),
    attempts: u32,
    failovers: u32,
) -> Answered<Synthesized> {
    let content_type = r
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    Answered {
        value: Synthesized {
            audio: r.body,
            content_type,
            link,
        },
        region,
        node,
        attempts,
        failovers,
    }
}
