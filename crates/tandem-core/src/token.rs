//! STS access tokens: compact JWTs (HS256) signed with the region's secret.
//!
//! The claims follow what Azure's tokens are observed to carry (`region`, `aud` =
//! `urn:ms.speechservices.<region>`, `iss`, `exp`), plus the resource id in `sub`. A token is
//! accepted only by the region named in it, and only while `exp` is in the future. Time is a
//! parameter, so expiry is tested without waiting.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{CoreError, RegionName, ResourceId, Result};

/// The `iss` claim of every Tandem token.
pub const TOKEN_ISSUER: &str = "urn:tandem.sts";

/// The claims of an STS token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always [`TOKEN_ISSUER`].
    pub iss: String,
    /// Audience: `urn:ms.speechservices.<region>`.
    pub aud: String,
    /// The region that issued the token.
    pub region: String,
    /// The resource the token was issued to.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Scope, `speechservices`.
    pub scope: String,
}

/// Signs and verifies the tokens of one region.
#[derive(Clone)]
pub struct TokenSigner {
    region: RegionName,
    secret: Vec<u8>,
    ttl_secs: u64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("region", &self.region)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for `region` with the given secret and token lifetime.
    pub fn new(region: RegionName, secret: Vec<u8>, ttl_secs: u64) -> Self {
        Self {
            region,
            secret,
            ttl_secs,
        }
    }

    /// Token lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length")
    }

    /// Issues a token for `resource` at time `now` (Unix seconds).
    pub fn issue(&self, resource: ResourceId, now: u64) -> String {
        let claims = Claims {
            iss: TOKEN_ISSUER.to_owned(),
            aud: format!("urn:ms.speechservices.{}", self.region),
            region: self.region.to_string(),
            sub: resource.to_string(),
            iat: now,
            exp: now + self.ttl_secs,
            scope: "speechservices".to_owned(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims. Tests use it to make expired or foreign tokens.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// A MAC of `data` with this region's secret, for `purpose` (domain-separated from tokens
    /// and from every other purpose): hex HMAC-SHA256. Model copy authorizations are signed
    /// with it, so only the region that issued one can check it.
    pub fn sign_detached(&self, purpose: &str, data: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(b"tandem-detached-v1\n");
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a [`TokenSigner::sign_detached`] MAC, in constant time.
    pub fn verify_detached(&self, purpose: &str, data: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature.trim()) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(b"tandem-detached-v1\n");
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(data);
        mac.verify_slice(&sig).is_ok()
    }

    /// Verifies a token at time `now` and returns the resource it was issued to.
    ///
    /// The signature is checked first, in constant time, so that nothing about a forged token's
    /// claims is believed. Then the region and the expiry.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims> {
        let mut parts = token.trim().splitn(3, '.');
        let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CoreError::BadToken);
        };
        let header: serde_json::Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(CoreError::BadToken)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(CoreError::BadToken);
        }
        let sig = B64.decode(s).map_err(|_| CoreError::BadToken)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| CoreError::BadToken)?;
        let claims: Claims = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(CoreError::BadToken)?;
        if claims.region != self.region.as_str() || claims.iss != TOKEN_ISSUER {
            return Err(CoreError::ForeignToken {
                issued_by: claims.region,
                expected: self.region.to_string(),
            });
        }
        if now >= claims.exp {
            return Err(CoreError::TokenExpired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(region: &str, secret: &[u8]) -> TokenSigner {
        TokenSigner::new(RegionName::new(region).unwrap(), secret.to_vec(), 600)
    }

    #[test]
    fn detached_macs_are_bound_to_secret_purpose_and_data() {
        let w = signer("westus", b"secret-w");
        let sig = w.sign_detached("copy", b"data");
        assert!(w.verify_detached("copy", b"data", &sig));
        assert!(!w.verify_detached("copy", b"datA", &sig));
        assert!(!w.verify_detached("other", b"data", &sig));
        assert!(!signer("westus", b"secret-x").verify_detached("copy", b"data", &sig));
        assert!(!w.verify_detached("copy", b"data", "not hex"));
    }

    #[test]
    fn issues_and_verifies_within_lifetime() {
        let s = signer("westus", b"secret-w");
        let id = ResourceId::random();
        let t = s.issue(id, 1_000);
        let c = s.verify(&t, 1_000).unwrap();
        assert_eq!(c.sub, id.to_string());
        assert_eq!(c.aud, "urn:ms.speechservices.westus");
        assert!(s.verify(&t, 1_599).is_ok());
        assert!(matches!(s.verify(&t, 1_600), Err(CoreError::TokenExpired)));
    }

    #[test]
    fn foreign_and_forged_tokens_are_rejected() {
        let w = signer("westus", b"secret-w");
        let e = signer("eastus", b"secret-e");
        let t = w.issue(ResourceId::random(), 0);
        // Another region's secret: the signature fails before the claims are read.
        assert!(matches!(e.verify(&t, 1), Err(CoreError::BadToken)));
        // Same secret (a shared-secret misconfiguration) still fails on the region claim.
        let e_same_secret = signer("eastus", b"secret-w");
        assert!(matches!(
            e_same_secret.verify(&t, 1),
            Err(CoreError::ForeignToken { .. })
        ));
        // Tampered payload.
        let mut parts: Vec<&str> = t.split('.').collect();
        let evil = B64.encode(br#"{"iss":"urn:tandem.sts","aud":"x","region":"westus","sub":"x","iat":0,"exp":99999999999,"scope":"speechservices"}"#);
        parts[1] = &evil;
        assert!(matches!(
            w.verify(&parts.join("."), 1),
            Err(CoreError::BadToken)
        ));
        for junk in ["", "a.b", "a.b.c", "..", "x.y.z.w"] {
            assert!(w.verify(junk, 1).is_err(), "{junk}");
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let w = signer("westus", b"k");
        let t = w.issue(ResourceId::random(), 0);
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[0] = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[2] = String::new();
        assert!(w.verify(&parts.join("."), 1).is_err());
    }
}
