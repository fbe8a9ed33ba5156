//! The gateway's own credentials: its key, and tokens it issues for that key.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::routes::Gateway;
use crate::GatewayError;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Constant-time comparison on digests (so lengths leak nothing).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// Checks a data-plane request: the gateway key, or a token this gateway issued.
pub(crate) fn check(gw: &Gateway, headers: &HeaderMap, now: u64) -> Result<(), GatewayError> {
    let Some(expected) = gw.key() else {
        return Ok(()); // open gateway, loopback only (enforced at startup)
    };
    if let Some(k) = header(headers, "ocp-apim-subscription-key") {
        return if same_secret(k.trim(), expected) {
            Ok(())
        } else {
            Err(GatewayError::Unauthorized)
        };
    }
    if let Some(v) = header(headers, "authorization") {
        if let Some((scheme, token)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return gw
                    .signer()
                    .verify(token.trim(), now)
                    .map(|_| ())
                    .map_err(|_| GatewayError::Unauthorized);
            }
        }
    }
    Err(GatewayError::MissingCredentials)
}

/// Checks an `issueToken` request: only the key itself may mint tokens.
pub(crate) fn check_key(gw: &Gateway, headers: &HeaderMap) -> Result<(), GatewayError> {
    match (gw.key(), header(headers, "ocp-apim-subscription-key")) {
        (None, _) => Ok(()),
        (Some(expected), Some(k)) if same_secret(k.trim(), expected) => Ok(()),
        (Some(_), Some(_)) => Err(GatewayError::Unauthorized),
        (Some(_), None) => Err(GatewayError::MissingCredentials),
    }
}
