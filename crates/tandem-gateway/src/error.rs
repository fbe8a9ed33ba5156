use std::net::SocketAddr;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tandem_client::ClientError;

/// What the gateway can fail with, and how each becomes an Azure-style response.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No gateway key or token was presented.
    #[error("Access denied due to missing subscription key. Send the gateway key as Ocp-Apim-Subscription-Key, or a gateway token as Authorization: Bearer.")]
    MissingCredentials,
    /// A wrong gateway key or token.
    #[error("Access denied due to invalid subscription key or token for this gateway.")]
    Unauthorized,
    /// The request body is over the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// The request cannot be sent on as it is (e.g. SSML that is not UTF-8).
    #[error("{0}")]
    InvalidRequest(String),
    /// Asked to listen beyond loopback with no key.
    #[error("refusing to listen on {0} without a gateway_key: an open gateway would lend the regions' keys to anyone who can reach it; set gateway_key(_file) in the regions file or listen on 127.0.0.1")]
    OpenGateway(SocketAddr),
    /// The client policy gave up or is misconfigured.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = match &self {
            GatewayError::MissingCredentials | GatewayError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "401".to_owned(), None)
            }
            GatewayError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge".into(),
                None,
            ),
            GatewayError::BadBody(_) | GatewayError::InvalidRequest(_) => {
                (StatusCode::BAD_REQUEST, "InvalidRequest".into(), None)
            }
            GatewayError::OpenGateway(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError".into(),
                None,
            ),
            GatewayError::Client(ClientError::AllRegionsFailed { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable".into(),
                Some(1u32),
            ),
            // A region refused the gateway's own key: the caller did nothing wrong.
            GatewayError::Client(ClientError::Unauthorized { .. }) => {
                (StatusCode::BAD_GATEWAY, "BadGateway".into(), None)
            }
            GatewayError::Client(ClientError::Caller { status, code, .. }) => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                code.clone(),
                None,
            ),
            GatewayError::Client(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError".into(),
                None,
            ),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "gateway error");
        }
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
