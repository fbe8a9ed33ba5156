//! `POST /sts/v1.0/issueToken`: a 10-minute bearer token for a resource key.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::auth::{unix_now, KeyCaller};
use crate::AppState;

pub(crate) async fn issue_token(
    caller: KeyCaller,
    State(state): State<AppState>,
) -> impl IntoResponse {
    let token = state.signer().issue(caller.resource.id, unix_now());
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token)
}
