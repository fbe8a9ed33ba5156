//! `POST /cognitiveservices/v1`: text-to-speech, with the custom-voice fallback chain.
//!
//! Azure addresses a custom voice with a `deploymentId` query parameter. A request that carries
//! one, when some region has a `voice_deployment_id` (and the gateway was told so, see
//! [`Gateway::with_voice_deployments`]), goes through [`TandemClient::synthesize`] with
//! `prefer_custom_voice`: the custom voice in the first region with a deployment, then in the
//! next one, then `public_fallback_voice` (the SSML's voice rewritten, no `deploymentId`) on
//! the normal failover path. Deployment ids differ per region, so the caller's own
//! `deploymentId` value only says "a custom voice": each region is sent the id configured for
//! it in the regions file. That path sends the SSML with `X-Microsoft-OutputFormat` (the
//! caller's, else [`DEFAULT_OUTPUT_FORMAT`]) and nothing else of the caller's query or headers,
//! buffers the audio, and answers with the region's `Content-Type`.
//!
//! Any other request (no `deploymentId`, or no region with a deployment) is forwarded as it is
//! and its answer streamed through, as every other route is.
//!
//! Every answer says which link of the chain spoke: `x-tandem-voice-link: custom`,
//! `custom-secondary` or `public` (a forwarded request is always `public`), next to
//! `x-tandem-region` and `x-tandem-attempts`.
//!
//! [`TandemClient::synthesize`]: tandem_client::TandemClient::synthesize

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tandem_client::{CallKind, SynthesisRequest};

use crate::routes::{forward, mark_origin, now, read_body, Gateway};
use crate::{auth, GatewayError};

/// The output format when a caller sends no `X-Microsoft-OutputFormat`: the regions' own
/// default (`tandem-server`'s TTS route), so that the gateway's answer is what a region would
/// have sent.
pub const DEFAULT_OUTPUT_FORMAT: &str = "riff-24khz-16bit-mono-pcm";

/// The response header naming the voice link that answered.
pub const VOICE_LINK_HEADER: &str = "x-tandem-voice-link";

/// Whether the query asks for a custom voice: it has a `deploymentId` parameter (matched
/// without regard to case, as the regions match it).
fn asks_for_custom_voice(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            key.eq_ignore_ascii_case("deploymentId")
        })
    })
}

/// The route's handler.
pub(crate) async fn synthesize(
    State(gw): State<Arc<Gateway>>,
    req: Request,
) -> Result<Response, GatewayError> {
    if !(gw.custom_voice && asks_for_custom_voice(req.uri().query())) {
        let mut resp = forward(State(gw), req, CallKind::Tts).await?;
        resp.headers_mut()
            .insert(VOICE_LINK_HEADER, HeaderValue::from_static("public"));
        return Ok(resp);
    }
    auth::check(&gw, req.headers(), now())?;
    let (parts, body) = req.into_parts();
    let output_format = match parts.headers.get("x-microsoft-outputformat") {
        None => DEFAULT_OUTPUT_FORMAT.to_owned(),
        Some(v) => v
            .to_str()
            .map_err(|_| {
                GatewayError::InvalidRequest("X-Microsoft-OutputFormat is not ASCII".into())
            })?
            .trim()
            .to_owned(),
    };
    let body = read_body(&gw, body).await?;
    let ssml = String::from_utf8(body.to_vec())
        .map_err(|_| GatewayError::InvalidRequest("the SSML document is not valid UTF-8".into()))?;
    let answered = gw
        .client
        .synthesize(&SynthesisRequest {
            ssml,
            output_format,
            prefer_custom_voice: true,
        })
        .await?;
    let audio = answered.value;
    let mut resp = Response::new(Body::from(audio.audio));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&audio.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        VOICE_LINK_HEADER,
        HeaderValue::from_static(audio.link.as_str()),
    );
    mark_origin(h, &answered.region, answered.attempts);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_id_in_the_query_asks_for_a_custom_voice() {
        for (query, custom) in [
            (None, false),
            (Some(""), false),
            (Some("deploymentId=abc"), true),
            (Some("x=1&deploymentid=abc"), true),
            (Some("deploymentId"), true),
            (Some("mydeploymentId=abc"), false),
            (Some("x=deploymentId"), false),
        ] {
            assert_eq!(asks_for_custom_voice(query), custom, "{query:?}");
        }
    }
}
