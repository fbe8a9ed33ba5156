//! The Tandem failover gateway.
//!
//! A local HTTP server that looks like one Tandem (or Azure) region to its clients and sends
//! every call through [`tandem_client::TandemClient`], so any language gets retries, circuit
//! breakers, failover, failback and the voice fallback chain by changing only its host. The
//! gateway holds the regions' keys; its clients hold only the gateway's own key. `/status` (a
//! self-refreshing page for browsers, JSON otherwise) and `/status.json` show every region as
//! the gateway sees it, with the regions' own status pages aggregated.

#![deny(missing_docs)]

mod auth;
mod error;
mod routes;
mod status;

use std::net::SocketAddr;

pub use error::GatewayError;
pub use routes::{router, Gateway};

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
