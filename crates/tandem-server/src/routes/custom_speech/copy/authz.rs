//! Copy authorizations (v3.2 `Models_AuthorizeCopy`): what the target region issues and later
//! checks. Azure's `ModelCopyAuthorization` has six fields; Tandem adds `signature`, a MAC of
//! all six with a key only the target region has (its STS secret, domain-separated through
//! [`TokenSigner::sign_detached`]). The source forwards the object untouched; the target
//! refuses it if any field was changed, if it names another region or resource, or once it
//! has expired.

use serde::{Deserialize, Serialize};
use tandem_core::{RegionName, ResourceId, TokenSigner};
use time::OffsetDateTime;
use uuid::Uuid;

use super::super::azure_time;

/// How long an authorization is valid.
pub(crate) const AUTHORIZATION_TTL_SECS: i64 = 24 * 3600;

/// The MAC's purpose label.
const PURPOSE: &str = "model-copy-authorization-v1";

/// Azure's `ModelCopyAuthorization`, plus Tandem's `signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CopyAuthorization {
    /// The id the copied model will have in the target (so a retried copy creates one model).
    pub id: Uuid,
    /// The target region.
    pub target_resource_region: String,
    /// The target resource.
    pub target_resource_id: String,
    /// The target's model collection URL (informational: the source never calls a URL from a
    /// request body, only its configured peers).
    pub target_resource_endpoint: String,
    /// The resource allowed to copy into the target, as the target's owner named it.
    pub source_resource_id: String,
    /// Expiry, RFC 3339 UTC.
    pub expiration_date_time: String,
    /// Hex HMAC-SHA256 over the six fields, with the target region's key.
    #[serde(default)]
    pub signature: String,
}

/// Why an authorization is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthzError {
    /// A field was changed, or the object was never issued by this region.
    #[error("the copy authorization's signature does not verify: it was not issued by region {0} or was altered")]
    Forged(String),
    /// Issued for another region.
    #[error("the copy authorization is for region {0}, not {1}")]
    OtherRegion(String, String),
    /// Past its expiry.
    #[error("the copy authorization expired at {0}")]
    Expired(String),
}

impl CopyAuthorization {
    fn canonical(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.id,
            self.target_resource_region,
            self.target_resource_id,
            self.target_resource_endpoint,
            self.source_resource_id,
            self.expiration_date_time
        )
    }

    /// Issues an authorization for `target` (a resource of the signer's region `region`).
    pub fn issue(
        signer: &TokenSigner,
        region: &RegionName,
        target: ResourceId,
        endpoint: String,
        source_resource_id: String,
        now: OffsetDateTime,
    ) -> Self {
        let mut a = CopyAuthorization {
            id: Uuid::new_v4(),
            target_resource_region: region.to_string(),
            target_resource_id: target.to_string(),
            target_resource_endpoint: endpoint,
            source_resource_id,
            expiration_date_time: azure_time(now + time::Duration::seconds(AUTHORIZATION_TTL_SECS)),
            signature: String::new(),
        };
        a.signature = signer.sign_detached(PURPOSE, a.canonical().as_bytes());
        a
    }

    /// The expiry, if it parses.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(
            &self.expiration_date_time,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }

    /// Whether it has expired at `now` (an unreadable expiry counts as expired).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at().is_none_or(|t| now >= t)
    }

    /// Checks it in the region that issued it: the signature first (nothing in a forged object
    /// is believed), then the region, then (if `check_expiry`) the expiry. Returns the target
    /// resource.
    pub fn verify(
        &self,
        signer: &TokenSigner,
        region: &RegionName,
        now: OffsetDateTime,
        check_expiry: bool,
    ) -> Result<ResourceId, AuthzError> {
        if !signer.verify_detached(PURPOSE, self.canonical().as_bytes(), &self.signature) {
            return Err(AuthzError::Forged(region.to_string()));
        }
        if self.target_resource_region != region.as_str() {
            return Err(AuthzError::OtherRegion(
                self.target_resource_region.clone(),
                region.to_string(),
            ));
        }
        if check_expiry && self.expired(now) {
            return Err(AuthzError::Expired(self.expiration_date_time.clone()));
        }
        self.target_resource_id
            .parse()
            .map_err(|_| AuthzError::Forged(region.to_string()))
    }
}

/// Whether an authorization's `sourceResourceId` names `resource`: its id, or an ARM-style
/// path (`/subscriptions/…/accounts/<name or id>`) whose last segment is its id or name.
pub(crate) fn names_source(source_resource_id: &str, id: ResourceId, name: &str) -> bool {
    let s = source_resource_id.trim().trim_end_matches('/');
    let last = s.rsplit('/').next().unwrap_or(s);
    let id = id.to_string();
    s.eq_ignore_ascii_case(&id) || last.eq_ignore_ascii_case(&id) || last.eq_ignore_ascii_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(region: &str, secret: &[u8]) -> TokenSigner {
        TokenSigner::new(RegionName::new(region).unwrap(), secret.to_vec(), 600)
    }

    fn issue(now: OffsetDateTime) -> (TokenSigner, RegionName, ResourceId, CopyAuthorization) {
        let s = signer("eastus", b"east-secret");
        let region = RegionName::new("eastus").unwrap();
        let target = ResourceId::random();
        let a = CopyAuthorization::issue(
            &s,
            &region,
            target,
            "http://east/speechtotext/v3.2/models".into(),
            "/subscriptions/x/accounts/src".into(),
            now,
        );
        (s, region, target, a)
    }

    #[test]
    fn an_authorization_verifies_where_issued_until_it_expires() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (s, region, target, a) = issue(now);
        assert_eq!(a.verify(&s, &region, now, true), Ok(target));
        let later = now + time::Duration::seconds(AUTHORIZATION_TTL_SECS);
        assert!(matches!(
            a.verify(&s, &region, later, true),
            Err(AuthzError::Expired(_))
        ));
        // Past expiry, a copy already under way may still commit.
        assert_eq!(a.verify(&s, &region, later, false), Ok(target));
        // It round-trips through JSON with Azure's field names.
        let v = serde_json::to_value(&a).unwrap();
        for f in [
            "id",
            "targetResourceRegion",
            "targetResourceId",
            "targetResourceEndpoint",
            "sourceResourceId",
            "expirationDateTime",
            "signature",
        ] {
            assert!(v.get(f).is_some(), "{f} missing from {v}");
        }
        let back: CopyAuthorization = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn altered_foreign_and_other_region_authorizations_are_refused() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (s, region, _, a) = issue(now);
        let mut later = a.clone();
        later.expiration_date_time = "2099-01-01T00:00:00Z".into();
        let mut other_target = a.clone();
        other_target.target_resource_id = ResourceId::random().to_string();
        let mut other_source = a.clone();
        other_source.source_resource_id = "someone-else".into();
        let mut other_id = a.clone();
        other_id.id = Uuid::new_v4();
        let mut unsigned = a.clone();
        unsigned.signature.clear();
        for forged in [later, other_target, other_source, other_id, unsigned] {
            assert!(matches!(
                forged.verify(&s, &region, now, true),
                Err(AuthzError::Forged(_))
            ));
        }
        // Another region's secret: forged there.
        let west = signer("westus", b"west-secret");
        let w = RegionName::new("westus").unwrap();
        assert!(matches!(
            a.verify(&west, &w, now, true),
            Err(AuthzError::Forged(_))
        ));
        // Same secret, wrong region (a misconfiguration) still fails on the region.
        assert!(matches!(
            a.verify(&signer("westus", b"east-secret"), &w, now, true),
            Err(AuthzError::OtherRegion(..))
        ));
    }

    #[test]
    fn the_source_is_named_by_id_name_or_arm_path() {
        let id = ResourceId::random();
        assert!(names_source(&id.to_string(), id, "src"));
        assert!(names_source(
            "/subscriptions/1/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/src",
            id,
            "src"
        ));
        assert!(names_source(&format!("/x/accounts/{id}/"), id, "src"));
        assert!(!names_source("/x/accounts/other", id, "src"));
        assert!(!names_source("", id, "src"));
    }
}
