//! Liveness, readiness and the fallback.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "live", "region": state.region().to_string()}))
}

/// `GET /readyz`: engines loaded and storage reachable; 503 otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let meta = state.store().meta.ping().await;
    let blobs = state.store().blobs.ping().await;
    let engines = state.engines().is_some();
    let ready = meta.is_ok() && blobs.is_ok() && engines;
    let show = |r: &Result<(), tandem_store::StoreError>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "region": state.region().to_string(),
        "checks": {
            "metadata": show(&meta),
            "blobs": show(&blobs),
            "engines": if engines { "ok" } else { "loading" },
        },
        "queues": {
            "stt": state.stt_pool().queue_depth(),
            "tts": state.tts_pool().queue_depth(),
        }
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound(
        "no such route; see the Azure Speech REST reference for the paths Tandem serves".into(),
    )
}
