//! The HTTP side of `madoguchi serve` (axum): `GET /healthz` and the Bot
//! Framework endpoint `POST /api/messages`.
//!
//! `fn app(state) -> Router` lets tests call it on their own listener. The
//! endpoint refuses a body over `teams.max_body_bytes` (413) and anything
//! that is not an activity (400) before authentication and without touching
//! a conversation; a request whose token fails any Bot Framework rule gets
//! 401 with no detail (the operator's log says why). An accepted activity
//! is committed before the 200, so Teams never needs to retry it; replies go
//! out asynchronously through the outbox.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::channels::teams::activity::Activity;
use crate::channels::teams::{inbound, TeamsContext};

/// Shared by every request: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub teams: Option<Arc<TeamsContext>>,
}

pub fn app(state: AppState) -> Router {
    let limit = state
        .teams
        .as_ref()
        .map(|t| t.config.max_body_bytes)
        .unwrap_or(256 * 1024);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/messages", post(messages))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Errors shown to callers without internals.
enum AppError {
    NotConfigured,
    BadRequest,
    Unauthorized,
    Internal,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            AppError::NotConfigured => (StatusCode::NOT_FOUND, "not found"),
            AppError::BadRequest => (StatusCode::BAD_REQUEST, "not an activity"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        (status, text).into_response()
    }
}

async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let teams = state.teams.ok_or(AppError::NotConfigured)?;
    let activity: Activity = serde_json::from_slice(&body).map_err(|e| {
        tracing::warn!(error = %e, bytes = body.len(), "Teams: request body is not an activity");
        AppError::BadRequest
    })?;
    if activity.conversation.id.is_empty() || activity.service_url.is_empty() {
        tracing::warn!("Teams: activity without conversation id or serviceUrl");
        return Err(AppError::BadRequest);
    }
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    if let Err(reason) = teams
        .auth
        .verify(authorization, &activity.service_url)
        .await
    {
        tracing::warn!(%reason, "Teams: request refused (401)");
        return Err(AppError::Unauthorized);
    }
    let tenant = &teams.config.tenant_id;
    let foreign = activity
        .conversation
        .tenant_id
        .as_deref()
        .is_some_and(|t| t != tenant);
    if !tenant.is_empty() && foreign {
        tracing::warn!("Teams: activity from another tenant refused (401)");
        return Err(AppError::Unauthorized);
    }
    inbound::handle(&teams, activity).await.map_err(|e| {
        tracing::error!(error = %e, "Teams: activity not handled");
        AppError::Internal
    })?;
    Ok(StatusCode::OK)
}
