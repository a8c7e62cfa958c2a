//! Outbound to the Bot Framework connector: the bot's access token
//! (cached until shortly before expiry, fetched once for many concurrent
//! replies) and `POST {serviceUrl}/v3/conversations/{id}/activities[/{replyToId}]`.
//!
//! The token comes from the authority of `teams.app_type`: a client
//! credentials grant at `login.microsoftonline.com/{botframework.com |
//! tenant}` with the app secret, or the instance metadata endpoint for a
//! managed identity. A token request that fails, for whatever reason, is an
//! outage of the whole channel, not a fault of the message:
//! [`DeliveryError::Outage`] (every conversation waits, rows stay pending),
//! reported once in the log and on `/healthz` with the settings to check,
//! until a token is obtained again.
//!
//! In emulator mode ([`Credential::Emulator`]) no token is fetched and posts
//! carry no `Authorization` header.
//!
//! One attempt per call: the generic outbox sender decides about retries
//! with the [`DeliveryError`] it gets. A 429 throttles the conversation
//! (it waits; the attempt does not count: late, never given up). Retried:
//! 412, 5xx (Teams: "In
//! addition to error code 429, error codes 412, 502, and 504 must also be
//! retried", <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit>),
//! after `Retry-After` plus a little jitter so that throttled conversations
//! do not all come back at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{AppType, Credential, TeamsHealth};
use crate::outbox::sender::jitter;
use crate::outbox::DeliveryError;

/// The largest activity madoguchi sends, in bytes of its JSON encoded as
/// UTF-16 (the connector's measure). Teams answers 413 `MessageSizeTooBig`
/// over its limit ("The bot message size limit includes the entire message
/// payload encoded as UTF-16", given as 40 KB, now 100 KB with 80 KB
/// recommended: <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/format-your-bot-messages>);
/// 28 KB stays well inside every figure the page has given, and inside the
/// ~28 KB Microsoft Graph accepts for a chat message, so what the bot posts
/// can also be read and exported through Graph. Longer texts are split.
pub const MAX_ACTIVITY_BYTES: usize = 28 * 1024;

/// The size Teams counts for `activity`: its JSON in UTF-16.
pub fn activity_size(activity: &Value) -> usize {
    activity.to_string().encode_utf16().count() * 2
}

#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    pub app_id: String,
    pub app_type: AppType,
    pub credential: Credential,
    pub token_url: String,
    pub scope: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; a number from Entra ID, a string from the metadata endpoint.
    #[serde(default)]
    expires_in: Option<Value>,
}

pub struct Connector {
    settings: ConnectorSettings,
    http: reqwest::Client,
    health: Arc<TeamsHealth>,
    /// The cached token. An async mutex: the first caller fetches while
    /// holding it and everyone else waits for that one fetch (bounded by
    /// the client's timeout). Only the outbox sender and best-effort sends
    /// ask for tokens; nothing answering an inbound request waits here.
    token: Mutex<Option<(String, Instant)>>,
}

/// Refresh this long before the token expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

impl Connector {
    pub fn new(
        settings: ConnectorSettings,
        http: reqwest::Client,
        health: Arc<TeamsHealth>,
    ) -> Connector {
        Connector {
            settings,
            http,
            health,
            token: Mutex::new(None),
        }
    }

    /// What to check when the token endpoint refuses the bot.
    fn settings_hint(&self) -> String {
        match &self.settings.credential {
            Credential::ManagedIdentity => "check teams.app_id (the managed identity's client id) and that the identity is assigned to this machine".to_string(),
            Credential::Emulator => "teams.emulator is on: no token is used".to_string(),
            Credential::Secret(_) => format!(
                "check teams.app_id, the secret in the environment variable named by teams.app_secret_env, and teams.app_type (now \"{}\") with teams.tenant_id: a single-tenant Azure Bot needs app_type = \"single_tenant\" and its tenant",
                self.settings.app_type.as_str()
            ),
        }
    }

    /// An outage of the token endpoint: logged once, shown on `/healthz`.
    fn outage(&self, problem: String, after: Option<Duration>) -> DeliveryError {
        if self.health.token_failed(&problem) {
            tracing::error!(%problem, "Teams: no token, nothing can be sent until this is fixed; messages stay queued");
        }
        DeliveryError::Outage {
            reason: problem,
            after,
        }
    }

    async fn request_token(&self) -> Result<reqwest::Response, reqwest::Error> {
        match &self.settings.credential {
            Credential::Secret(secret) => {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", self.settings.app_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", self.settings.scope.as_str()),
                ];
                self.http
                    .post(&self.settings.token_url)
                    .form(&form)
                    .send()
                    .await
            }
            // Emulator mode never asks for a token (see `token`).
            Credential::ManagedIdentity | Credential::Emulator => {
                let resource = self.settings.scope.trim_end_matches("/.default");
                self.http
                    .get(&self.settings.token_url)
                    .header("Metadata", "true")
                    .query(&[
                        ("api-version", "2018-02-01"),
                        ("resource", resource),
                        ("client_id", self.settings.app_id.as_str()),
                    ])
                    .send()
                    .await
            }
        }
    }

    /// The bearer token for the connector; `None` in emulator mode.
    async fn token(&self, force: bool) -> Result<Option<String>, DeliveryError> {
        if self.settings.credential == Credential::Emulator {
            return Ok(None);
        }
        let mut cached = self.token.lock().await;
        if let Some((token, valid_until)) = cached.as_ref() {
            if !force && Instant::now() < *valid_until {
                return Ok(Some(token.clone()));
            }
        }
        let url = &self.settings.token_url;
        let response = match self.request_token().await {
            Ok(response) => response,
            Err(e) => {
                return Err(self.outage(
                    format!("teams: token endpoint {url} unreachable ({e}); check teams.token_url / teams.app_type and outbound HTTPS"),
                    None,
                ))
            }
        };
        let status = response.status();
        if !status.is_success() {
            let after = retry_after(&response);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"].as_str().unwrap_or_default();
            let description = body["error_description"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default();
            return Err(self.outage(
                format!(
                    "teams: token endpoint {url} answered HTTP {status} {code} {description}; {}",
                    self.settings_hint()
                ),
                after,
            ));
        }
        let body: TokenResponse = match response.json().await {
            Ok(body) => body,
            Err(e) => {
                return Err(self.outage(
                    format!("teams: unreadable answer from token endpoint {url} ({e}); check teams.token_url"),
                    None,
                ))
            }
        };
        let seconds = body
            .expires_in
            .as_ref()
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(3600);
        let valid_until =
            Instant::now() + Duration::from_secs(seconds).saturating_sub(TOKEN_MARGIN);
        *cached = Some((body.access_token.clone(), valid_until));
        if self.health.token_ok() {
            tracing::info!("Teams: token obtained again; queued messages go out");
        }
        Ok(Some(body.access_token))
    }

    /// Posts one activity to a conversation (as a reply when `reply_to` is
    /// given). Returns the new activity's id when the connector tells it.
    pub async fn send(
        &self,
        service_url: &str,
        conversation_id: &str,
        reply_to: Option<&str>,
        activity: &Value,
    ) -> Result<Option<String>, DeliveryError> {
        let base = service_url.trim_end_matches('/');
        let conversation = urlencode(conversation_id);
        let url = match reply_to {
            Some(id) => format!(
                "{base}/v3/conversations/{conversation}/activities/{}",
                urlencode(id)
            ),
            None => format!("{base}/v3/conversations/{conversation}/activities"),
        };
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let mut request = self.http.post(&url);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response =
                request
                    .json(activity)
                    .send()
                    .await
                    .map_err(|e| DeliveryError::Retry {
                        reason: format!("connector: {e}"),
                        after: None,
                    })?;
            let status = response.status();
            if status.is_success() {
                let id = response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string));
                return Ok(id);
            }
            if status.as_u16() == 401 {
                if !refreshed && token.is_some() {
                    refreshed = true;
                    continue;
                }
                // A fresh token refused: the bot's identity is wrong.
                return Err(self.outage(
                    format!(
                        "teams: the connector refused a fresh token (HTTP 401); {}",
                        self.settings_hint()
                    ),
                    None,
                ));
            }
            let after = retry_after(&response).map(|after| after + jitter(after / 10));
            let code = response
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            let reason = format!("connector answered HTTP {status} {code}");
            return Err(match status.as_u16() {
                429 => DeliveryError::Throttled { reason, after },
                412 | 500..=599 => DeliveryError::Retry { reason, after },
                413 => DeliveryError::Permanent(format!(
                    "{reason}: an activity of {} bytes (UTF-16) is over the connector's size limit",
                    activity_size(activity)
                )),
                _ => DeliveryError::Permanent(reason),
            });
        }
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(300.0)))
}

/// Percent-encodes a path segment (conversation ids contain `:`, `;`, `@`).
fn urlencode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
