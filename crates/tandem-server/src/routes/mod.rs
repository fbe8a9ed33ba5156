//! The route table.

pub(crate) mod custom_speech;
pub(crate) mod custom_voice;
mod ops;
mod replication;
pub(crate) mod speaker;
pub(crate) mod status;
mod sts;
mod stt;
mod tts;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{admin, metrics, ApiError, AppState};

/// Builds the whole HTTP API of a region.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().max_body_bytes;
    let upload_limit = state.config().custom_speech.max_upload_bytes;
    let router = Router::new()
        // Azure data plane.
        .route("/sts/v1.0/issueToken", post(sts::issue_token))
        .route("/sts/v1.0/issuetoken", post(sts::issue_token))
        .route(
            "/speech/recognition/{mode}/cognitiveservices/v1",
            post(stt::recognize),
        )
        .route("/cognitiveservices/v1", post(tts::synthesize))
        .route("/cognitiveservices/voices/list", get(tts::voices))
        // Speaker recognition (2021-09-05, text-independent).
        .route(
            "/speaker-recognition/{service}/text-independent/profiles",
            get(speaker::list).post(speaker::create),
        )
        .route(
            "/speaker-recognition/{service}/text-independent/profiles:identifySingleSpeaker",
            post(speaker::identify),
        )
        .route(
            "/speaker-recognition/{service}/text-independent/profiles/{id}",
            get(speaker::get)
                .delete(speaker::delete)
                .post(speaker::verb),
        )
        .route(
            "/speaker-recognition/{service}/text-independent/profiles/{id}/enrollments",
            post(speaker::enroll),
        )
        // Speaker recognition (2021-09-05, text-dependent verification: passphrases).
        .route(
            "/speaker-recognition/verification/text-dependent/phrases/{locale}",
            get(speaker::phrases),
        )
        .route(
            "/speaker-recognition/{service}/text-dependent/profiles",
            get(speaker::td_list).post(speaker::td_create),
        )
        .route(
            "/speaker-recognition/{service}/text-dependent/profiles/{id}",
            get(speaker::td_get)
                .delete(speaker::td_delete)
                .post(speaker::td_verb),
        )
        .route(
            "/speaker-recognition/{service}/text-dependent/profiles/{id}/enrollments",
            post(speaker::td_enroll),
        )
        // Inter-region and discovery.
        .route(crate::replication::PULL_PATH, get(replication::pull))
        .route(
            crate::replication::DISCOVERY_PATH,
            get(replication::discovery),
        )
        .route("/readyz/speaker", get(replication::readyz_speaker));
    // Custom Speech (Speech-to-text v3.2, and the v3.1 aliases).
    let router = custom_voice::routes(router, upload_limit);
    custom_speech::routes(router, upload_limit)
        // Admin.
        .route("/admin/v1/replication", get(replication::status))
        .route("/admin/v1/resources", get(admin::list).post(admin::create))
        .route(
            "/admin/v1/resources/{id}",
            get(admin::get).patch(admin::patch).delete(admin::delete),
        )
        .route(
            "/admin/v1/resources/{id}/regenerateKey",
            post(admin::regenerate),
        )
        // Operations.
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::handler))
        .route("/status", get(status::page))
        .route("/status.json", get(status::json))
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "a handler panicked".into(),
            ))
        }))
        .with_state(state)
}

/// Reads a whole body, refusing more than `limit` bytes with a 413 in Azure's shape.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // Decided by the error's type, never its message.
        let too_large = std::iter::successors(std::error::Error::source(&e), |s| s.source())
            .any(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge(format!("the {what} is larger than {limit} bytes"))
        } else {
            ApiError::bad_request("InvalidRequest", format!("could not read the {what}: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_the_limit_is_413_under_is_the_body() {
        let err = read_body(Body::from(vec![0u8; 101]), 100, "audio")
            .await
            .unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        let ok = read_body(Body::from(vec![7u8; 100]), 100, "audio")
            .await
            .unwrap();
        assert_eq!(ok.len(), 100);
    }
}
