//! The Microsoft Teams channel over the Bot Framework protocol.
//!
//! - [`auth`]: JWT checks on every inbound request (RS256, JWKS by `kid`,
//!   issuer, audience, lifetime, `serviceurl`).
//! - [`activity`]: the activity shapes in and out (suggested actions in
//!   personal chats, Adaptive Cards elsewhere).
//! - [`inbound`]: activities → desk calls (answered as soon as committed;
//!   replies go out asynchronously through the outbox).
//! - [`connector`] and [`deliver`]: outbound activities with a cached
//!   client-credentials token; the generic outbox sender retries them,
//!   honouring `Retry-After`.
//! - Agents: a queued conversation posts an Adaptive Card with the summary
//!   and a Claim button into the configured agents' channel; the
//!   conversation with agents continues in that card's reply thread.
//!
//! The HTTP endpoint itself (`POST /api/messages`) is in [`crate::server`].

pub mod activity;
pub mod auth;
pub mod connector;
pub mod deliver;
pub mod inbound;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::desk::Desk;

/// Channel name stored with Teams conversations and outbox rows.
pub const CHANNEL: &str = "teams";

/// The `[teams]` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsConfig {
    /// The bot's Microsoft App ID (the JWT audience). Teams is on when this
    /// is set and the secret's environment variable is set.
    pub app_id: String,
    /// The Azure AD tenant the bot serves: when set, activities whose
    /// conversation names another tenant are refused (401).
    pub tenant_id: String,
    /// Name of the environment variable holding the app secret.
    pub app_secret_env: String,
    /// Address `serve` listens on for `/api/messages` and `/healthz`.
    pub listen: String,
    pub openid_metadata_url: String,
    pub token_url: String,
    pub token_scope: String,
    pub issuer: String,
    pub clock_skew_seconds: u64,
    /// Minimum seconds between two signing-key refreshes on unknown `kid`s.
    pub jwks_min_refresh_seconds: u64,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// The agents' channel: its conversation id and service URL.
    pub agents_conversation_id: String,
    pub agents_service_url: String,
    /// AAD object ids of people allowed to act as agents.
    pub agents: Vec<String>,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    /// Connector calls in flight at once, across conversations.
    pub max_in_flight: usize,
}

impl Default for TeamsConfig {
    fn default() -> Self {
        TeamsConfig {
            app_id: String::new(),
            tenant_id: String::new(),
            app_secret_env: "MADOGUCHI_TEAMS_APP_SECRET".into(),
            listen: "0.0.0.0:3978".into(),
            openid_metadata_url:
                "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            token_url: "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
                .into(),
            token_scope: "https://api.botframework.com/.default".into(),
            issuer: "https://api.botframework.com".into(),
            clock_skew_seconds: 300,
            jwks_min_refresh_seconds: 60,
            max_body_bytes: 256 * 1024,
            agents_conversation_id: String::new(),
            agents_service_url: String::new(),
            agents: Vec::new(),
            retry_base_ms: 500,
            max_attempts: 8,
            max_in_flight: 32,
        }
    }
}

impl TeamsConfig {
    /// The app secret when Teams is configured; otherwise why Teams is off.
    pub fn secret(&self, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<String, String> {
        if self.app_id.trim().is_empty() {
            return Err("Teams is off: teams.app_id is not set".into());
        }
        match env(&self.app_secret_env) {
            Some(secret) if !secret.trim().is_empty() => Ok(secret.trim().to_string()),
            _ => Err(format!(
                "Teams is off: environment variable {} is not set",
                self.app_secret_env
            )),
        }
    }

    /// How the outbox sender retries connector calls.
    pub fn sender_settings(&self) -> crate::outbox::SenderSettings {
        crate::outbox::SenderSettings::from_config(
            self.retry_base_ms,
            self.max_attempts,
            self.max_in_flight,
            Duration::from_secs(300),
        )
    }
}

/// Everything the Teams endpoint and sender share.
pub struct TeamsContext {
    pub desk: Desk,
    pub clock: Arc<dyn Clock>,
    pub config: TeamsConfig,
    pub auth: auth::Authenticator,
    pub connector: connector::Connector,
}

impl TeamsContext {
    pub fn new(
        desk: Desk,
        clock: Arc<dyn Clock>,
        config: TeamsConfig,
        secret: String,
    ) -> TeamsContext {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        let auth = auth::Authenticator::new(
            auth::AuthSettings {
                app_id: config.app_id.clone(),
                openid_metadata_url: config.openid_metadata_url.clone(),
                issuer: config.issuer.clone(),
                skew: Duration::from_secs(config.clock_skew_seconds),
                min_refresh: Duration::from_secs(config.jwks_min_refresh_seconds),
            },
            http.clone(),
        );
        let connector = connector::Connector::new(
            connector::ConnectorSettings {
                app_id: config.app_id.clone(),
                app_secret: secret,
                token_url: config.token_url.clone(),
                scope: config.token_scope.clone(),
            },
            http,
        );
        TeamsContext {
            desk,
            clock,
            config,
            auth,
            connector,
        }
    }
}
