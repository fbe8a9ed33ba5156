//! The one place where failures become HTTP responses.
//!
//! Data-plane routes answer with the Cognitive Services gateway's shape,
//! `{"error":{"code":…,"message":…}}`; the Speech-to-text v3 routes (Custom Speech) answer
//! with v3's `{"code":…,"message":…,"innerError":{"code":…,"message":…}}`: their handlers
//! return [`V3Error`], the same [`ApiError`] rendered in that shape. Internal details are
//! logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tandem_datasets::DatasetError;
use tandem_engines::EngineError;
use tandem_store::StoreError;

/// Everything a request can fail with, as the caller should see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No key and no token were presented.
    #[error("Access denied due to missing subscription key or token. Make sure to include an Ocp-Apim-Subscription-Key header or an Authorization: Bearer token.")]
    MissingCredentials,
    /// The key or token is wrong, expired, or belongs to another region.
    #[error("{0}")]
    Unauthorized(String),
    /// The admin token is missing or wrong, or the admin API is disabled.
    #[error("{0}")]
    Forbidden(String),
    /// The resource's concurrency quota is exhausted.
    #[error("Rate limit is exceeded. Try again in {retry_after} seconds.")]
    TooManyRequests {
        /// Seconds to wait, sent as `Retry-After`.
        retry_after: u32,
    },
    /// The request is malformed; the message says how.
    #[error("{message}")]
    BadRequest {
        /// Short machine code, e.g. `InvalidAudioFormat`.
        code: &'static str,
        /// What is wrong, for a human.
        message: String,
    },
    /// The request is well-formed but refused by a limit (Azure's 403 for speaker enrollments).
    #[error("{message}")]
    Refused {
        /// Short machine code, e.g. `InvalidRequest`.
        code: &'static str,
        /// What limit was hit.
        message: String,
    },
    /// The body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The Content-Type is not one the route accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name is already taken.
    #[error("{0}")]
    Conflict(String),
    /// The entity is used by another and cannot be deleted (v3 `InUseViolation`).
    #[error("{0}")]
    InUse(String),
    /// The region is overloaded or not ready; retry after a while.
    #[error("{message}")]
    Unavailable {
        /// What is unavailable.
        message: String,
        /// Seconds to wait, sent as `Retry-After`.
        retry_after: u32,
    },
    /// This region cannot serve the request now but its pair can (speaker data still catching
    /// up after a restart): 503 with `Retry-After: 1` and [`REDIRECT_HEADER`]`: pair`, which
    /// tells Tandem's clients to fail over at once instead of retrying here.
    #[error("{0}")]
    UsePair(String),
    /// A bug or an unexpected failure. The detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// Header telling Tandem clients that another region should take this request (`pair`).
pub const REDIRECT_HEADER: &str = "x-tandem-redirect";

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The Azure gateway's message for a bad key or token.
    pub fn bad_credentials() -> Self {
        Self::Unauthorized("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.".into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::InUse(_) => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } | ApiError::UsePair(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> String {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Refused { code, .. } => {
                (*code).to_owned()
            }
            ApiError::NotFound(_) => "NotFound".into(),
            ApiError::Conflict(_) | ApiError::InUse(_) => "Conflict".into(),
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge".into(),
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType".into(),
            ApiError::Unavailable { .. } | ApiError::UsePair(_) => "ServiceUnavailable".into(),
            ApiError::Internal(_) => "InternalServerError".into(),
            // The gateway uses the numeric status as the code for auth and throttling.
            other => other.status().as_u16().to_string(),
        }
    }

    /// The Speech-to-text v3 `ErrorCode` (top-level `code`) for this error's status.
    fn v3_code(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 413 => "InvalidRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            415 => "UnsupportedMediaType",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        }
    }

    /// The v3 `DetailedErrorCode` (`innerError.code`): the route's own code where it has one
    /// (e.g. `InvalidDataset`), else the top-level code.
    fn v3_inner_code(&self) -> String {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Refused { code, .. } => {
                (*code).to_owned()
            }
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge".into(),
            ApiError::InUse(_) => "InUseViolation".into(),
            other => other.v3_code().to_owned(),
        }
    }

    fn render(self, v3: bool) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let message = self.to_string();
        let body = if v3 {
            json!({
                "code": self.v3_code(),
                "message": message,
                "innerError": {"code": self.v3_inner_code(), "message": message},
            })
        } else {
            json!({"error": {"code": self.code(), "message": message}})
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after } => Some(*retry_after),
            ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            ApiError::UsePair(_) => {
                resp.headers_mut()
                    .insert(REDIRECT_HEADER, HeaderValue::from_static("pair"));
                Some(1)
            }
            _ => None,
        };
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(false)
    }
}

/// An [`ApiError`] on a Speech-to-text v3 route: the same status and headers, rendered as
/// `{"code","message","innerError":{"code","message"}}`.
#[derive(Debug)]
pub struct V3Error(pub ApiError);

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        self.0.render(true)
    }
}

impl From<ApiError> for V3Error {
    fn from(e: ApiError) -> Self {
        V3Error(e)
    }
}

impl From<StoreError> for V3Error {
    fn from(e: StoreError) -> Self {
        V3Error(e.into())
    }
}

impl From<DatasetError> for V3Error {
    fn from(e: DatasetError) -> Self {
        V3Error(e.into())
    }
}

impl From<DatasetError> for ApiError {
    /// A whole upload refused: 400 `InvalidDataset`, with the reason (which names the entry).
    fn from(e: DatasetError) -> Self {
        ApiError::bad_request("InvalidDataset", e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Conflict { what } => ApiError::Conflict(what),
            StoreError::InvalidKey(k) => ApiError::bad_request("InvalidArgument", k),
            other => ApiError::Unavailable {
                message: format!("storage is unavailable: {other}"),
                retry_after: 1,
            },
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadSsml(_) => ApiError::bad_request("InvalidSsml", e.to_string()),
            EngineError::UnknownVoice(_) => ApiError::bad_request("InvalidVoice", e.to_string()),
            EngineError::UnsupportedLanguage(_) => {
                ApiError::bad_request("InvalidLanguage", e.to_string())
            }
            EngineError::TooShort { .. } => ApiError::bad_request("InvalidRequest", e.to_string()),
            EngineError::ModelMissing { .. } => ApiError::Unavailable {
                message: "speech models are still loading".into(),
                retry_after: 5,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tandem_audio::AudioError> for ApiError {
    fn from(e: tandem_audio::AudioError) -> Self {
        ApiError::bad_request("InvalidAudioFormat", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (ApiError::MissingCredentials, 401, "401"),
            (ApiError::bad_credentials(), 401, "401"),
            (ApiError::TooManyRequests { retry_after: 1 }, 429, "429"),
            (
                ApiError::bad_request("InvalidAudioFormat", "x"),
                400,
                "InvalidAudioFormat",
            ),
            (
                ApiError::Refused {
                    code: "InvalidRequest",
                    message: "x".into(),
                },
                403,
                "InvalidRequest",
            ),
            (
                ApiError::PayloadTooLarge("x".into()),
                413,
                "PayloadTooLarge",
            ),
            (
                ApiError::UnsupportedMediaType("x".into()),
                415,
                "UnsupportedMediaType",
            ),
            (
                ApiError::Internal("secret detail".into()),
                500,
                "InternalServerError",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
        // v3 routes: the top-level code follows the status, the inner one the route's code.
        let e = ApiError::bad_request("InvalidDataset", "x");
        assert_eq!(
            (e.v3_code(), e.v3_inner_code().as_str()),
            ("InvalidRequest", "InvalidDataset")
        );
        let e = ApiError::NotFound("x".into());
        assert_eq!(
            (e.v3_code(), e.v3_inner_code().as_str()),
            ("NotFound", "NotFound")
        );
        assert_eq!(ApiError::bad_credentials().v3_code(), "Unauthorized");
        // Internal details never reach the caller.
        assert_eq!(
            ApiError::Internal("secret detail".into()).to_string(),
            "internal error"
        );
    }
}
