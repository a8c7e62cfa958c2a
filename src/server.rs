//! The HTTP side of `madoguchi serve` (axum): `GET /healthz`, the Bot
//! Framework endpoint `POST /api/messages` and the web chat (`/chat`,
//! `/chat/widget.js`, `/chat/ws`; [`crate::channels::web`]).
//!
//! `/healthz` answers 200 `ok` while the service can do its work, and 503
//! with one line per problem (each naming the setting to check) while
//! Teams cannot: its token endpoint refuses the bot, or the agents'
//! channel refuses the handoff cards.
//!
//! `fn app(state) -> Router` lets tests call it on their own listener. The
//! endpoint refuses a body over `teams.max_body_bytes` (413) and anything
//! that is not an activity (400) before authentication and without touching
//! a conversation; a request whose token fails any Bot Framework rule gets
//! 401 with no detail (the operator's log says why). So does an activity of
//! another tenant, or of no known tenant, when `teams.tenant_id` is set
//! (the tenant is read from `channelData.tenant.id`, present in every
//! scope, and `conversation.tenantId`; both must be ours when both are
//! there). An accepted activity is committed before the
//! 200, so Teams never needs to retry it; replies go out asynchronously
//! through the outbox.

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
    /// The web chat (`/chat`…), when `[web] enabled`.
    pub web: Option<Arc<crate::channels::web::WebContext>>,
}

pub fn app(state: AppState) -> Router {
    let limit = state
        .teams
        .as_ref()
        .map(|t| t.config.max_body_bytes)
        .unwrap_or(256 * 1024);
    let web = state.web.clone();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/messages", post(messages))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    match web {
        Some(web) => router.merge(crate::channels::web::router(web)),
        None => router,
    }
}

/// 200 `ok`, or 503 with the problems (operator-facing, no secrets).
async fn healthz(State(state): State<AppState>) -> Response {
    let problems = state
        .teams
        .as_ref()
        .map(|teams| teams.health.problems())
        .unwrap_or_default();
    if problems.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n")).into_response()
    }
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
        .verify(authorization, &activity.service_url, &activity.channel_id)
        .await
    {
        tracing::warn!(%reason, "Teams: request refused (401)");
        return Err(AppError::Unauthorized);
    }
    let tenant = teams.config.tenant_id.trim();
    if !tenant.is_empty() {
        // Every tenant the activity names must be ours, and it must name one.
        let tenants = activity.tenants();
        if tenants.is_empty() {
            tracing::warn!(
                "Teams: activity naming no tenant refused (401) while teams.tenant_id is set"
            );
            return Err(AppError::Unauthorized);
        }
        if let Some(other) = tenants.iter().find(|t| t.as_str() != tenant) {
            tracing::warn!(tenant = %other, "Teams: activity from another tenant refused (401); teams.tenant_id limits the bot to its own tenant");
            return Err(AppError::Unauthorized);
        }
    }
    inbound::handle(&teams, activity).await.map_err(|e| {
        tracing::error!(error = %e, "Teams: activity not handled");
        AppError::Internal
    })?;
    Ok(StatusCode::OK)
}
