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
//! - [`pacing`]: every post to a Teams thread waits for its turn under the
//!   per-thread rate limit, one operation at a time per thread.
//! - [`TeamsHealth`]: what `/healthz` reports (a token outage, an agents'
//!   channel that refuses the bot), each with the setting to fix.
//! - Emulator mode (`teams.emulator`): no JWT check of inbound requests, no
//!   outbound token and no Teams rate-limit pacing, as the Bot Framework
//!   Emulator and an SDK bot with an empty app id work; for local tests and
//!   the like-for-like benchmark only. `serve` refuses it unless the
//!   listener is on a loopback address ([`emulator_listener_check`]).
//!
//! The HTTP endpoint itself (`POST /api/messages`) is in [`crate::server`].

pub mod activity;
pub mod auth;
pub mod connector;
pub mod deliver;
pub mod inbound;
pub mod pacing;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::desk::Desk;

/// Channel name stored with Teams conversations and outbox rows.
pub const CHANNEL: &str = "teams";

/// How the bot's app registration gets its outbound token, as the Bot
/// Framework SDKs' `MicrosoftAppType`: new Azure Bots are single-tenant.
/// <https://learn.microsoft.com/en-us/azure/bot-service/bot-service-quickstart-registration>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// A multi-tenant app registration: tokens from the `botframework.com`
    /// tenant (the historical default).
    #[default]
    MultiTenant,
    /// A single-tenant app registration: tokens from `teams.tenant_id`'s
    /// own authority, `login.microsoftonline.com/{tenant}`.
    SingleTenant,
    /// A user-assigned managed identity (the service runs in Azure): tokens
    /// from the instance metadata endpoint, no secret.
    UserAssignedMsi,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::MultiTenant => "multi_tenant",
            AppType::SingleTenant => "single_tenant",
            AppType::UserAssignedMsi => "user_assigned_msi",
        }
    }
}

/// The token endpoint of the `botframework.com` tenant (multi-tenant bots).
pub const MULTI_TENANT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token";
/// Azure's instance metadata endpoint for managed identities.
pub const MANAGED_IDENTITY_TOKEN_URL: &str =
    "http://169.254.169.254/metadata/identity/oauth2/token";

/// The `[teams]` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsConfig {
    /// The bot's Microsoft App ID (the JWT audience). Teams is on when this
    /// is set and the secret's environment variable is set (no secret for
    /// a managed identity).
    pub app_id: String,
    /// `multi_tenant`, `single_tenant` or `user_assigned_msi`.
    pub app_type: AppType,
    /// The Azure AD tenant the bot serves: when set, activities of another
    /// tenant, or of no known tenant, are refused (401). A single-tenant
    /// bot also gets its token from this tenant.
    pub tenant_id: String,
    /// Name of the environment variable holding the app secret.
    pub app_secret_env: String,
    /// Address `serve` listens on for `/api/messages` and `/healthz`.
    pub listen: String,
    pub openid_metadata_url: String,
    /// Explicit token endpoint; empty: derived from `app_type` (and
    /// `tenant_id`), see [`TeamsConfig::token_endpoint`].
    pub token_url: String,
    pub token_scope: String,
    pub issuer: String,
    pub clock_skew_seconds: u64,
    /// Minimum seconds between two signing-key refreshes on unknown `kid`s.
    pub jwks_min_refresh_seconds: u64,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Whether the app was installed with the RSC permissions
    /// `ChannelMessage.Read.Group` / `ChatMessage.Read.Chat`, so Teams
    /// delivers channel and group-chat messages that do not @mention the
    /// bot. `false` (the default, and what `teams/manifest.json` ships):
    /// only messages that @mention the bot (and card presses) are taken;
    /// agents write `@madoguchi release`, and unmentioned staff chat in a
    /// card's thread stays internal even if it reaches the bot.
    pub rsc_channel_messages: bool,
    /// The agents' channel: its conversation id and service URL.
    pub agents_conversation_id: String,
    pub agents_service_url: String,
    /// AAD object ids of people allowed to act as agents.
    pub agents: Vec<String>,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    /// Connector calls in flight at once, across conversations.
    pub max_in_flight: usize,
    /// Emulator mode, for local testing and benchmarks only: inbound
    /// requests are not authenticated, outbound posts carry no token, and
    /// posts are not paced to Teams' rate limits (the Bot Framework
    /// Emulator's and an SDK bot's behaviour with an empty app id).
    /// `serve` refuses to start with it unless `teams.listen` is a loopback
    /// address, and warns at start.
    pub emulator: bool,
    /// Whether a typing indicator is sent while a message is handled
    /// (best effort). Off: exactly one activity per reply.
    pub typing_indicators: bool,
}

impl Default for TeamsConfig {
    fn default() -> Self {
        TeamsConfig {
            app_id: String::new(),
            app_type: AppType::MultiTenant,
            tenant_id: String::new(),
            app_secret_env: "MADOGUCHI_TEAMS_APP_SECRET".into(),
            listen: "0.0.0.0:3978".into(),
            openid_metadata_url:
                "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            token_url: String::new(),
            token_scope: "https://api.botframework.com/.default".into(),
            issuer: "https://api.botframework.com".into(),
            clock_skew_seconds: 300,
            jwks_min_refresh_seconds: 60,
            max_body_bytes: 256 * 1024,
            rsc_channel_messages: false,
            agents_conversation_id: String::new(),
            agents_service_url: String::new(),
            agents: Vec::new(),
            retry_base_ms: 500,
            max_attempts: 8,
            max_in_flight: 32,
            emulator: false,
            typing_indicators: true,
        }
    }
}

/// How the bot proves who it is to the token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// The app registration's client secret (client-credentials grant).
    Secret(String),
    /// The managed identity of the machine (no secret).
    ManagedIdentity,
    /// Emulator mode: no token at all, nothing signed or checked.
    Emulator,
}

impl TeamsConfig {
    /// The credential when Teams is configured; otherwise why Teams is off
    /// (naming the setting to fix).
    pub fn credential(
        &self,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Credential, String> {
        if self.emulator {
            return Ok(Credential::Emulator);
        }
        if self.app_id.trim().is_empty() {
            return Err("Teams is off: teams.app_id is not set".into());
        }
        if self.app_type == AppType::SingleTenant && self.tenant_id.trim().is_empty() {
            return Err("Teams is off: teams.app_type = \"single_tenant\" needs teams.tenant_id (the directory (tenant) id of the bot's app registration)".into());
        }
        if self.app_type == AppType::UserAssignedMsi {
            return Ok(Credential::ManagedIdentity);
        }
        match env(&self.app_secret_env) {
            Some(secret) if !secret.trim().is_empty() => {
                Ok(Credential::Secret(secret.trim().to_string()))
            }
            _ => Err(format!(
                "Teams is off: environment variable {} is not set",
                self.app_secret_env
            )),
        }
    }

    /// Where the outbound token comes from: `token_url` when set, else the
    /// authority of `app_type`, as the Bot Framework SDKs derive it
    /// (single tenant: `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`).
    pub fn token_endpoint(&self) -> String {
        if !self.token_url.trim().is_empty() {
            return self.token_url.trim().to_string();
        }
        match self.app_type {
            AppType::MultiTenant => MULTI_TENANT_TOKEN_URL.to_string(),
            AppType::SingleTenant => format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant_id.trim()
            ),
            AppType::UserAssignedMsi => MANAGED_IDENTITY_TOKEN_URL.to_string(),
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

/// Refuses emulator mode on a listener that other machines can reach: only
/// a loopback address may take unauthenticated activities.
pub fn emulator_listener_check(local: std::net::SocketAddr) -> Result<(), String> {
    if local.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "teams.emulator = true accepts activities without authentication, so serve refuses to listen on {local}: set teams.listen to a loopback address (127.0.0.1:3978) or turn teams.emulator off"
        ))
    }
}

/// How inbound requests are authenticated: the Bot Framework's JWT, or not
/// at all in emulator mode.
pub enum InboundAuth {
    Checked(auth::Authenticator),
    /// Emulator mode: every request is taken.
    Emulator,
}

impl InboundAuth {
    /// Checks a request's `Authorization` header (see
    /// [`auth::Authenticator::verify`]); always passes in emulator mode.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        service_url: &str,
        channel_id: &str,
    ) -> Result<(), auth::AuthError> {
        match self {
            InboundAuth::Checked(authenticator) => {
                authenticator
                    .verify(authorization, service_url, channel_id)
                    .await
            }
            InboundAuth::Emulator => Ok(()),
        }
    }
}

/// What `/healthz` reports about Teams: problems the service cannot fix
/// by retrying, each saying which setting to look at. Set where the
/// problem is seen, cleared by the next success.
#[derive(Debug, Default)]
pub struct TeamsHealth {
    /// The token endpoint fails (the bot cannot send anything).
    token: std::sync::Mutex<Option<String>>,
    /// The agents' channel refuses the bot's posts.
    agents_channel: std::sync::Mutex<Option<String>>,
}

impl TeamsHealth {
    fn slot(slot: &std::sync::Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
        slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a token problem; true when it is new (log it once).
    pub fn token_failed(&self, problem: &str) -> bool {
        Self::slot(&self.token)
            .replace(problem.to_string())
            .is_none()
    }

    /// The token endpoint answered; true when it was failing before.
    pub fn token_ok(&self) -> bool {
        Self::slot(&self.token).take().is_some()
    }

    pub fn agents_channel_failed(&self, problem: &str) {
        *Self::slot(&self.agents_channel) = Some(problem.to_string());
    }

    pub fn agents_channel_ok(&self) {
        Self::slot(&self.agents_channel).take();
    }

    /// Current problems, one line each (empty: healthy).
    pub fn problems(&self) -> Vec<String> {
        [&self.token, &self.agents_channel]
            .into_iter()
            .filter_map(|slot| Self::slot(slot).clone())
            .collect()
    }
}

/// Everything the Teams endpoint and sender share.
pub struct TeamsContext {
    pub desk: Desk,
    pub clock: Arc<dyn Clock>,
    pub config: TeamsConfig,
    pub auth: InboundAuth,
    pub connector: connector::Connector,
    /// One pacer for every post, so replies, notes and typing indicators
    /// to one thread share its rate limit.
    pub pacer: pacing::Pacer,
    pub health: Arc<TeamsHealth>,
}

impl TeamsContext {
    pub fn new(
        desk: Desk,
        clock: Arc<dyn Clock>,
        config: TeamsConfig,
        credential: Credential,
    ) -> TeamsContext {
        // Each connector call is bounded well inside the Bot Connector's
        // ~15 s request timeout, so nothing awaited while answering a
        // request can outlast it.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let health = Arc::new(TeamsHealth::default());
        let auth = if credential == Credential::Emulator {
            InboundAuth::Emulator
        } else {
            InboundAuth::Checked(auth::Authenticator::new(
                auth::AuthSettings {
                    app_id: config.app_id.clone(),
                    openid_metadata_url: config.openid_metadata_url.clone(),
                    issuer: config.issuer.clone(),
                    skew: Duration::from_secs(config.clock_skew_seconds),
                    min_refresh: Duration::from_secs(config.jwks_min_refresh_seconds),
                },
                http.clone(),
            ))
        };
        // Teams' per-thread rate limits are the Teams service's; the
        // emulator and a local connector have none.
        let pacer = if credential == Credential::Emulator {
            pacing::Pacer::unlimited()
        } else {
            pacing::Pacer::new()
        };
        let connector = connector::Connector::new(
            connector::ConnectorSettings {
                app_id: config.app_id.clone(),
                app_type: config.app_type,
                credential,
                token_url: config.token_endpoint(),
                scope: config.token_scope.clone(),
            },
            http,
            health.clone(),
        );
        TeamsContext {
            desk,
            clock,
            config,
            auth,
            connector,
            pacer,
            health,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(app_type: AppType, tenant: &str) -> TeamsConfig {
        TeamsConfig {
            app_id: "app".into(),
            app_type,
            tenant_id: tenant.into(),
            ..TeamsConfig::default()
        }
    }

    #[test]
    fn the_token_authority_follows_the_app_type() {
        assert_eq!(
            config(AppType::MultiTenant, "").token_endpoint(),
            MULTI_TENANT_TOKEN_URL
        );
        assert_eq!(
            config(AppType::SingleTenant, "contoso-tenant").token_endpoint(),
            "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token"
        );
        assert_eq!(
            config(AppType::UserAssignedMsi, "t").token_endpoint(),
            MANAGED_IDENTITY_TOKEN_URL
        );
        let mut explicit = config(AppType::SingleTenant, "t");
        explicit.token_url = "http://127.0.0.1:1/token".into();
        assert_eq!(explicit.token_endpoint(), "http://127.0.0.1:1/token");
    }

    #[test]
    fn a_single_tenant_bot_needs_its_tenant_and_a_managed_identity_no_secret() {
        let env = |name: &str| (name == "MADOGUCHI_TEAMS_APP_SECRET").then(|| "s".to_string());
        let error = config(AppType::SingleTenant, "")
            .credential(&env)
            .expect_err("no tenant");
        assert!(error.contains("teams.tenant_id"), "{error}");
        assert_eq!(
            config(AppType::SingleTenant, "t").credential(&env),
            Ok(Credential::Secret("s".into()))
        );
        let none = |_: &str| None;
        assert_eq!(
            config(AppType::UserAssignedMsi, "").credential(&none),
            Ok(Credential::ManagedIdentity)
        );
    }

    #[test]
    fn emulator_mode_needs_no_app_id_or_secret_and_only_a_loopback_listener() {
        let emulator: TeamsConfig = toml::from_str("emulator = true").expect("toml");
        assert_eq!(emulator.credential(&|_| None), Ok(Credential::Emulator));
        assert!(TeamsConfig::default().credential(&|_| None).is_err());
        assert!(emulator_listener_check("127.0.0.1:3978".parse().expect("addr")).is_ok());
        assert!(emulator_listener_check("[::1]:3978".parse().expect("addr")).is_ok());
        let error =
            emulator_listener_check("0.0.0.0:3978".parse().expect("addr")).expect_err("refused");
        assert!(
            error.contains("teams.emulator") && error.contains("teams.listen"),
            "{error}"
        );
        assert!(TeamsConfig::default().typing_indicators);
        let quiet: TeamsConfig = toml::from_str("typing_indicators = false").expect("toml");
        assert!(!quiet.typing_indicators);
    }

    #[test]
    fn app_types_read_from_toml() {
        let config: TeamsConfig =
            toml::from_str("app_type = \"single_tenant\"\ntenant_id = \"t\"").expect("toml");
        assert_eq!(config.app_type, AppType::SingleTenant);
        assert!(toml::from_str::<TeamsConfig>("app_type = \"single\"").is_err());
    }
}
