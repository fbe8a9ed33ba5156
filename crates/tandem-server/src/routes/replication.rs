//! Inter-region and discovery routes: the pull of the speaker change log (peer-signed), the
//! public discovery document, speaker readiness, and the admin view of replication.

use std::time::Duration;

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_store::SpeakerOp;

use crate::auth::Admin;
use crate::replication::{PullResponse, SpeakerState, WireChange};
use crate::{ApiError, AppState};

/// Longest a pull may wait for new changes.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most changes per pull.
const MAX_LIMIT: u32 = 1024;
/// Enrollment audio per answer, at most (one change always goes, whatever its size).
const MAX_AUDIO_BYTES: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
pub(crate) struct PullQuery {
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
    #[serde(default)]
    wait_ms: u64,
}

/// How often a long poll re-reads the log, for commits made by the region's other nodes (which
/// do not wake this node's watch).
const RECHECK: Duration = Duration::from_millis(250);

/// `GET /internal/v1/replication/speaker?after=N&limit=M&wait_ms=W`: this region's origin log
/// after `N`, for its pair. Signed with the peer secret. With nothing new, waits up to `W` ms
/// for a local commit (long poll), so a change reaches the pair within one round trip; a commit
/// by another node of the region within [`RECHECK`].
pub(crate) async fn pull(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<PullQuery>,
) -> Result<Json<PullResponse>, ApiError> {
    let pq = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let caller = state.replication().verify_peer(&headers, "GET", pq, b"")?;
    let limit = q.limit.unwrap_or(256).clamp(1, MAX_LIMIT);
    let wait = Duration::from_millis(q.wait_ms).min(MAX_WAIT);
    let meta = &state.store().meta;
    let mut local = state.replication().watch_local();
    let mut shutdown = state.replication().watch_shutdown();
    let deadline = tokio::time::Instant::now() + wait;
    let changes = loop {
        // Mark the current version seen before reading, so a commit in between still wakes us.
        local.borrow_and_update();
        let changes = meta.speaker_changes(q.after, limit).await?;
        if !changes.is_empty() || *shutdown.borrow() {
            break changes;
        }
        // A commit on this node wakes the poll at once; one made by another node of the
        // region (same database) is seen at the next re-read.
        let recheck = RECHECK.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        tokio::select! {
            // In this order: at the deadline, the poll ends rather than re-reading.
            biased;
            r = local.changed() => if r.is_err() { break changes },
            _ = tokio::time::sleep_until(deadline) => break changes,
            _ = tokio::time::sleep(recheck) => {}
            _ = shutdown.changed() => break changes,
        }
    };
    let mut out = Vec::with_capacity(changes.len());
    let mut audio_bytes = 0usize;
    for change in changes {
        let audio = match &change.op {
            SpeakerOp::Enroll { enrollment } => {
                state.store().blobs.get(&enrollment.audio_key).await?
            }
            _ => None,
        };
        let size = audio.as_ref().map_or(0, |a| a.len());
        if !out.is_empty() && audio_bytes + size > MAX_AUDIO_BYTES {
            break;
        }
        audio_bytes += size;
        out.push(WireChange {
            change,
            audio: audio.map(|a| base64::engine::general_purpose::STANDARD.encode(a)),
        });
    }
    let head = meta.speaker_head().await?;
    tracing::debug!(peer = %caller, after = q.after, sent = out.len(), head, "replication pull");
    Ok(Json(PullResponse {
        region: state.region().clone(),
        store_id: meta.store_id().await?,
        head,
        changes: out,
        resources: meta.export_resources(state.region()).await?,
    }))
}

/// `GET /.well-known/tandem`: the region, its pair and the speaker service's state. Public:
/// clients read it to learn where speaker traffic goes when this region is down.
pub(crate) async fn discovery(
    State(state): State<AppState>,
) -> Json<crate::replication::Discovery> {
    Json(state.replication().discovery())
}

/// `GET /readyz/speaker`: 200 when this region serves speaker traffic (engines loaded, storage
/// up, not catching up with its pair); 503 otherwise. Clients fail speaker traffic back on it.
pub(crate) async fn readyz_speaker(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let speaker = state.replication().state();
    let engines = state.engines().is_some();
    let storage = state.store().meta.ping().await.is_ok();
    let ready = engines && storage && speaker != SpeakerState::CatchingUp;
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "region": state.region(),
        "speaker": speaker,
        "checks": {
            "engines": if engines { "ok" } else { "loading" },
            "metadata": if storage { "ok" } else { "unavailable" },
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `GET /admin/v1/replication`: the follower's state, and a digest of all speaker data (equal
/// in both regions of a pair once they have converged).
pub(crate) async fn status(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let meta = &state.store().meta;
    let mut out = state.replication().status_json();
    out["storeId"] = json!(meta.store_id().await?);
    out["head"] = json!(meta.speaker_head().await?);
    out["digest"] = serde_json::to_value(meta.speaker_digest().await?)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(out))
}
