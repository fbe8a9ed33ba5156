//! Who is calling: resource keys, STS tokens and the admin token.
//!
//! Every data-plane route takes [`Caller`], which accepts `Ocp-Apim-Subscription-Key` or
//! `Authorization: Bearer <STS token>`, finds the resource in this region's store (on every
//! request, so a key deleted or rotated by the CLI stops working at once) and takes one slot of
//! the resource's concurrency quota for the life of the request.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tandem_core::{CoreError, ResourceId, ResourceKey};
use tandem_store::Resource;

use crate::quota::QuotaPermit;
use crate::{ApiError, AppState};

/// Header carrying a resource key.
pub const KEY_HEADER: &str = "ocp-apim-subscription-key";

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An authenticated data-plane caller holding a concurrency slot.
pub struct Caller {
    /// The resource the key or token belongs to.
    pub resource: Resource,
    _permit: QuotaPermit,
}

/// A speaker-recognition caller: like [`Caller`], except that a key of one of the paired
/// region's resources is accepted too, for that resource's speaker data, which is replicated
/// here. That is what lets a client that knows only its home region keep verifying through the
/// pair while the home region is down. The pair's STS tokens are not accepted (they are signed
/// with the pair's secret); its keys are, by hash, as replicated.
pub struct SpeakerCaller {
    /// The resource the key or token belongs to (possibly one of the pair's).
    pub resource: Resource,
    _permit: QuotaPermit,
}

impl FromRequestParts<AppState> for SpeakerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let resource = if let Some(key) = header(parts, KEY_HEADER) {
            match by_key(state, key).await {
                Ok(r) => r,
                Err(own) => match state.replication().pair() {
                    Some(pair) => {
                        let hash = ResourceKey::from_presented(key).hash();
                        match state.store().meta.authenticate(&pair.name, &hash).await? {
                            Some((r, _)) => r,
                            None => return Err(own),
                        }
                    }
                    None => return Err(own),
                },
            }
        } else if let Some(token) = bearer(parts) {
            by_token(state, token).await?
        } else {
            return Err(ApiError::MissingCredentials);
        };
        let permit = quota_permit(state, &resource).await?;
        Ok(SpeakerCaller {
            resource,
            _permit: permit,
        })
    }
}

/// A caller authenticated by key only (what `issueToken` requires).
pub struct KeyCaller {
    /// The resource the key belongs to.
    pub resource: Resource,
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = header(parts, "authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

async fn by_key(state: &AppState, key: &str) -> Result<Resource, ApiError> {
    let hash = ResourceKey::from_presented(key).hash();
    match state
        .store()
        .meta
        .authenticate(state.region(), &hash)
        .await?
    {
        Some((resource, _slot)) => Ok(resource),
        None => Err(ApiError::bad_credentials()),
    }
}

async fn by_token(state: &AppState, token: &str) -> Result<Resource, ApiError> {
    let claims = state.signer().verify(token, unix_now()).map_err(|e| match e {
        CoreError::TokenExpired => ApiError::Unauthorized(
            "Access denied: the authorization token has expired. Request a new one from /sts/v1.0/issueToken.".into(),
        ),
        CoreError::ForeignToken { .. } => ApiError::Unauthorized(format!(
            "Access denied: the authorization token was not issued by region {}. Tokens are valid only in the region that issued them.",
            state.region()
        )),
        _ => ApiError::bad_credentials(),
    })?;
    let id: ResourceId = claims
        .sub
        .parse()
        .map_err(|_| ApiError::bad_credentials())?;
    match state.store().meta.get_resource(id).await? {
        Some(r) if &r.region == state.region() => Ok(r),
        _ => Err(ApiError::bad_credentials()),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let resource = if let Some(key) = header(parts, KEY_HEADER) {
            by_key(state, key).await?
        } else if let Some(token) = bearer(parts) {
            by_token(state, token).await?
        } else {
            return Err(ApiError::MissingCredentials);
        };
        let permit = quota_permit(state, &resource).await?;
        Ok(Caller {
            resource,
            _permit: permit,
        })
    }
}

impl FromRequestParts<AppState> for KeyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match header(parts, KEY_HEADER) {
            Some(key) => Ok(KeyCaller {
                resource: by_key(state, key).await?,
            }),
            None => Err(ApiError::MissingCredentials),
        }
    }
}

/// A caller that presented the region's admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token() else {
            return Err(ApiError::Forbidden(
                "the admin API is disabled: set admin_token_file in the region's config".into(),
            ));
        };
        let presented = bearer(parts).ok_or_else(|| {
            ApiError::Forbidden("the admin API needs Authorization: Bearer <admin token>".into())
        })?;
        if crate::admin::token_matches(presented, expected) {
            Ok(Admin)
        } else {
            Err(ApiError::Forbidden("wrong admin token".into()))
        }
    }
}

/// One of `resource`'s concurrency slots, counted where the region's `quota_scope` says.
async fn quota_permit(state: &AppState, resource: &Resource) -> Result<QuotaPermit, ApiError> {
    match state.config().quota_scope {
        tandem_core::QuotaScope::Node => state
            .quotas()
            .try_acquire(resource.id, resource.concurrency_limit),
        tandem_core::QuotaScope::Region => {
            crate::quota::try_acquire_region(
                state.store(),
                &state.config().node_name(),
                resource.id,
                resource.concurrency_limit,
            )
            .await
        }
    }
}
