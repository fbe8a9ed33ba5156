//! Authentication of calls between regions (replication, model copy).
//!
//! Every region of a federation shares one peer secret. A calling region signs each request
//! with HMAC-SHA256 over a canonical string — the caller's and the callee's region names, the
//! method, the path and query, a Unix timestamp and the SHA-256 of the body — and sends the
//! result in three headers ([`PEER_HEADER`], [`PEER_TIME_HEADER`], [`PEER_SIGNATURE_HEADER`]).
//! The callee recomputes it and compares in constant time, and refuses a timestamp more than
//! [`MAX_SKEW_SECS`] away from its own clock. The secret never travels; a captured request
//! cannot be redirected to another path, another region or, after the skew window, replayed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::RegionName;

/// Header naming the calling region.
pub const PEER_HEADER: &str = "x-tandem-peer";
/// Header carrying the signing time (Unix seconds).
pub const PEER_TIME_HEADER: &str = "x-tandem-peer-time";
/// Header carrying the hex HMAC-SHA256 signature.
pub const PEER_SIGNATURE_HEADER: &str = "x-tandem-peer-signature";
/// Largest accepted distance between the signing time and the callee's clock, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// Why a peer request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    /// A header is missing or unreadable.
    #[error("missing or malformed inter-region authentication headers")]
    Malformed,
    /// The calling region is not one of this region's peers.
    #[error("region {0} is not a configured peer")]
    UnknownPeer(String),
    /// The timestamp is too far from now.
    #[error("the request was signed {0} s away from this region's clock (max {MAX_SKEW_SECS})")]
    Skew(u64),
    /// The signature does not verify.
    #[error("bad inter-region signature")]
    BadSignature,
}

/// Signs and checks inter-region requests for one region.
#[derive(Clone)]
pub struct PeerAuth {
    region: RegionName,
    secret: Vec<u8>,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerAuth")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The three header values of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSignature {
    /// The caller's region, for [`PEER_HEADER`].
    pub region: String,
    /// Unix seconds, for [`PEER_TIME_HEADER`].
    pub time: String,
    /// Hex HMAC, for [`PEER_SIGNATURE_HEADER`].
    pub signature: String,
}

impl PeerAuth {
    /// `region` is this region (the signer of outgoing calls, the target of incoming ones).
    pub fn new(region: RegionName, secret: impl Into<Vec<u8>>) -> Self {
        PeerAuth {
            region,
            secret: secret.into(),
        }
    }

    /// The SHA-256 of a request body, as signatures cover it.
    pub fn body_sha256(body: &[u8]) -> [u8; 32] {
        Sha256::digest(body).into()
    }

    /// This region's name.
    pub fn region(&self) -> &RegionName {
        &self.region
    }

    fn mac(
        &self,
        from: &str,
        to: &str,
        method: &str,
        path_and_query: &str,
        time: u64,
        body_sha256: &[u8; 32],
    ) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        let body_hash = hex::encode(body_sha256);
        let canonical = format!(
            "tandem-peer-v1\n{from}\n{to}\n{}\n{path_and_query}\n{time}\n{body_hash}",
            method.to_ascii_uppercase()
        );
        mac.update(canonical.as_bytes());
        mac
    }

    /// Signs a request from this region to region `to`.
    pub fn sign(
        &self,
        to: &RegionName,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
    ) -> PeerSignature {
        let digest = Self::body_sha256(body);
        self.sign_digest(to, method, path_and_query, &digest, now)
    }

    /// [`PeerAuth::sign`] for a body whose SHA-256 the caller already has (a copy chunk,
    /// hashed once for its manifest), so that large bodies are not hashed twice.
    pub fn sign_digest(
        &self,
        to: &RegionName,
        method: &str,
        path_and_query: &str,
        body_sha256: &[u8; 32],
        now: u64,
    ) -> PeerSignature {
        let mac = self.mac(
            self.region.as_str(),
            to.as_str(),
            method,
            path_and_query,
            now,
            body_sha256,
        );
        PeerSignature {
            region: self.region.to_string(),
            time: now.to_string(),
            signature: hex::encode(mac.finalize().into_bytes()),
        }
    }

    /// Checks a request addressed to this region; returns the calling region. `is_peer` says
    /// whether a region name is one of this region's peers.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        from: Option<&str>,
        time: Option<&str>,
        signature: Option<&str>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
        is_peer: impl Fn(&RegionName) -> bool,
    ) -> Result<RegionName, PeerAuthError> {
        let digest = Self::body_sha256(body);
        self.verify_digest(
            from,
            time,
            signature,
            method,
            path_and_query,
            &digest,
            now,
            is_peer,
        )
    }

    /// [`PeerAuth::verify`] given the SHA-256 of the body as received, which the caller
    /// computes (and may use again, e.g. to check a copy chunk against its manifest).
    #[allow(clippy::too_many_arguments)]
    pub fn verify_digest(
        &self,
        from: Option<&str>,
        time: Option<&str>,
        signature: Option<&str>,
        method: &str,
        path_and_query: &str,
        body_sha256: &[u8; 32],
        now: u64,
        is_peer: impl Fn(&RegionName) -> bool,
    ) -> Result<RegionName, PeerAuthError> {
        let (Some(from), Some(time), Some(signature)) = (from, time, signature) else {
            return Err(PeerAuthError::Malformed);
        };
        let caller = RegionName::new(from).map_err(|_| PeerAuthError::Malformed)?;
        if !is_peer(&caller) {
            return Err(PeerAuthError::UnknownPeer(caller.to_string()));
        }
        let t: u64 = time.parse().map_err(|_| PeerAuthError::Malformed)?;
        let skew = t.abs_diff(now);
        if skew > MAX_SKEW_SECS {
            return Err(PeerAuthError::Skew(skew));
        }
        let sig = hex::decode(signature).map_err(|_| PeerAuthError::Malformed)?;
        self.mac(
            caller.as_str(),
            self.region.as_str(),
            method,
            path_and_query,
            t,
            body_sha256,
        )
        .verify_slice(&sig)
        .map_err(|_| PeerAuthError::BadSignature)?;
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> RegionName {
        RegionName::new(s).unwrap()
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn check(
        at: &PeerAuth,
        s: &PeerSignature,
        method: &str,
        pq: &str,
        body: &[u8],
        now: u64,
    ) -> Result<RegionName, PeerAuthError> {
        at.verify(
            Some(&s.region),
            Some(&s.time),
            Some(&s.signature),
            method,
            pq,
            body,
            now,
            |r| r.as_str() == "westus" || r.as_str() == "eastus",
        )
    }

    #[test]
    fn a_signed_request_verifies_at_its_target_only() {
        let west = PeerAuth::new(region("westus"), SECRET);
        let east = PeerAuth::new(region("eastus"), SECRET);
        let s = west.sign(&region("eastus"), "get", "/x?after=3", b"", 1000);
        assert_eq!(
            check(&east, &s, "GET", "/x?after=3", b"", 1000),
            Ok(region("westus"))
        );
        // Another path, query, method, body, or target region: refused.
        for (m, pq, body) in [
            ("GET", "/x?after=4", &b""[..]),
            ("POST", "/x?after=3", b""),
            ("GET", "/x?after=3", b"!"),
        ] {
            assert_eq!(
                check(&east, &s, m, pq, body, 1000),
                Err(PeerAuthError::BadSignature)
            );
        }
        let third = PeerAuth::new(region("centralus"), SECRET);
        assert_eq!(
            check(&third, &s, "GET", "/x?after=3", b"", 1000),
            Err(PeerAuthError::BadSignature)
        );
    }

    #[test]
    fn wrong_secret_skew_unknown_peer_and_garbage_are_refused() {
        let west = PeerAuth::new(region("westus"), SECRET);
        let east = PeerAuth::new(
            region("eastus"),
            b"another secret, another federation".to_vec(),
        );
        let s = west.sign(&region("eastus"), "GET", "/x", b"", 1000);
        assert_eq!(
            check(&east, &s, "GET", "/x", b"", 1000),
            Err(PeerAuthError::BadSignature)
        );
        let east = PeerAuth::new(region("eastus"), SECRET);
        assert_eq!(
            check(&east, &s, "GET", "/x", b"", 1000 + MAX_SKEW_SECS),
            Ok(region("westus"))
        );
        assert_eq!(
            check(&east, &s, "GET", "/x", b"", 1001 + MAX_SKEW_SECS),
            Err(PeerAuthError::Skew(MAX_SKEW_SECS + 1))
        );
        let stranger = PeerAuth::new(region("northeu"), SECRET).sign(
            &region("eastus"),
            "GET",
            "/x",
            b"",
            1000,
        );
        assert_eq!(
            check(&east, &stranger, "GET", "/x", b"", 1000),
            Err(PeerAuthError::UnknownPeer("northeu".into()))
        );
        let mut bad = s.clone();
        bad.signature = "zz".into();
        assert_eq!(
            check(&east, &bad, "GET", "/x", b"", 1000),
            Err(PeerAuthError::Malformed)
        );
        assert_eq!(
            east.verify(None, Some("1"), Some("00"), "GET", "/x", b"", 1, |_| true),
            Err(PeerAuthError::Malformed)
        );
    }
}
