//! The Tandem failover gateway.
//!
//! A local HTTP server that looks like one Tandem (or Azure) region to its clients and sends
//! every call through [`tandem_client::TandemClient`], so any language gets retries, circuit
//! breakers, failover and failback by changing only its host. The gateway holds the regions'
//! keys; its clients hold only the gateway's own key. `/status` (a self-refreshing page for
//! browsers, JSON otherwise) and `/status.json` show every region as the gateway sees it, with
//! the regions' own status pages aggregated.
//!
//! Text-to-speech also gets the custom-voice fallback chain (`src/tts.rs`): a
//! `POST /cognitiveservices/v1` that carries a `deploymentId` (Azure's way to address a custom
//! voice), on a gateway built [`with_voice_deployments`](Gateway::with_voice_deployments) over
//! regions of which at least one has a `voice_deployment_id`, is synthesized with the custom
//! voice in the first such region, then in the next one, then with `public_fallback_voice` on
//! the normal failover path. Deployment ids differ per region, so the caller's `deploymentId`
//! value is replaced by each region's configured one. Every TTS answer names the link that spoke
//! in [`x-tandem-voice-link`](VOICE_LINK_HEADER)`: custom | custom-secondary | public`, next to
//! `x-tandem-region` and `x-tandem-attempts`. Any other TTS request (no `deploymentId`, or no
//! region with a deployment) is forwarded as it is and streamed back, marked `public`.

#![deny(missing_docs)]

mod auth;
mod error;
mod routes;
mod status;
mod tts;

use std::net::SocketAddr;

pub use error::GatewayError;
pub use routes::{router, Gateway};
pub use tts::{DEFAULT_OUTPUT_FORMAT, VOICE_LINK_HEADER};

/// Refuses to serve without a gateway key on anything but a loopback address: an open gateway
/// would lend the regions' keys to the whole network.
pub fn check_listen(addr: SocketAddr, has_key: bool) -> Result<(), GatewayError> {
    if has_key || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(GatewayError::OpenGateway(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_gateway_listens_only_on_loopback() {
        assert!(check_listen("127.0.0.1:7000".parse().unwrap(), false).is_ok());
        assert!(check_listen("[::1]:7000".parse().unwrap(), false).is_ok());
        assert!(check_listen("0.0.0.0:7000".parse().unwrap(), false).is_err());
        assert!(check_listen("0.0.0.0:7000".parse().unwrap(), true).is_ok());
    }
}
