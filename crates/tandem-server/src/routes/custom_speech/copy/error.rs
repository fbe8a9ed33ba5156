//! [`CopyError`]: why a copy step failed, how a target's HTTP answer maps onto it, which
//! failures are retried, and how it becomes a v3 error.

use crate::{ApiError, V3Error};

/// Why a copy step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CopyError {
    /// The request or the data is wrong; retrying does not help (400).
    #[error("{message}")]
    Invalid {
        /// v3 detailed code, e.g. `InvalidBaseModel`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The grant does not let the copy in (403).
    #[error("{0}")]
    Refused(String),
    /// Nothing there (404; a key lookup that found nothing).
    #[error("{0}")]
    NotFound(String),
    /// The target is unreachable or failing (503); retried.
    #[error("{0}")]
    Unavailable(String),
    /// The target lost or lacks staged state (409); retried from `begin`.
    #[error("{0}")]
    Retry(String),
    /// A bug or an unexpected failure; not retried, logged.
    #[error("{0}")]
    Internal(String),
}

/// The v3 detailed codes a target may answer, kept as static strings.
const CODES: [&str; 11] = [
    "InvalidBaseModel",
    "InvalidModel",
    "InvalidChecksum",
    "InvalidParameterValue",
    "InvalidRequestBodyFormat",
    "SubscriptionNotFound",
    "ModelExists",
    "InvalidSubscription",
    "EmptyRequest",
    "InvalidLocale",
    "DeployNotAllowed",
];

impl CopyError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        CopyError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// From a target's HTTP answer.
    pub(crate) fn from_status(status: u16, inner: &str, message: String) -> Self {
        match status {
            400 | 413 | 422 => CopyError::Invalid {
                code: CODES
                    .into_iter()
                    .find(|c| *c == inner)
                    .unwrap_or("InvalidRequest"),
                message,
            },
            401 | 403 => CopyError::Refused(message),
            404 => CopyError::NotFound(message),
            409 => CopyError::Retry(message),
            _ => CopyError::Unavailable(message),
        }
    }

    /// Whether another attempt may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, CopyError::Unavailable(_) | CopyError::Retry(_))
    }

    /// The v3 `innerError.code` / operation error code.
    pub(crate) fn inner_code(&self) -> &'static str {
        match self {
            CopyError::Invalid { code, .. } => code,
            CopyError::Refused(_) => "Forbidden",
            CopyError::NotFound(_) => "NotFound",
            CopyError::Unavailable(_) | CopyError::Retry(_) => "ServiceUnavailable",
            CopyError::Internal(_) => "InternalServerError",
        }
    }

    /// The message a customer may see (internal details are logged instead).
    pub(crate) fn public_message(&self) -> String {
        match self {
            CopyError::Internal(_) => "the copy failed because of an internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<ApiError> for CopyError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadRequest { code, message } => CopyError::Invalid { code, message },
            ApiError::Unauthorized(m) | ApiError::Forbidden(m) => CopyError::Refused(m),
            ApiError::Refused { message, .. } => CopyError::Refused(message),
            ApiError::NotFound(m) => CopyError::NotFound(m),
            ApiError::Unavailable { message, .. } => CopyError::Unavailable(message),
            ApiError::Conflict(m) | ApiError::InUse(m) => CopyError::Retry(m),
            ApiError::Internal(m) => CopyError::Internal(m),
            other => CopyError::Unavailable(other.to_string()),
        }
    }
}

impl From<CopyError> for ApiError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Invalid { code, message } => ApiError::BadRequest { code, message },
            CopyError::Refused(m) => ApiError::Forbidden(m),
            CopyError::NotFound(m) => ApiError::NotFound(m),
            CopyError::Unavailable(m) => ApiError::Unavailable {
                message: m,
                retry_after: 5,
            },
            CopyError::Retry(m) => ApiError::Conflict(m),
            CopyError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<CopyError> for V3Error {
    fn from(e: CopyError) -> Self {
        V3Error(e.into())
    }
}
