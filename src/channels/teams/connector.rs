//! Outbound to the Bot Framework connector: the bot's access token
//! (OAuth2 client-credentials grant, cached until shortly before expiry,
//! fetched once for many concurrent replies) and `POST
//! {serviceUrl}/v3/conversations/{id}/activities[/{replyToId}]`.
//!
//! One attempt per call: the generic outbox sender decides about retries with the
//! [`DeliveryError`] it gets (429/5xx temporary, honouring `Retry-After`).

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::outbox::DeliveryError;

#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    pub app_id: String,
    pub app_secret: String,
    pub token_url: String,
    pub scope: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub struct Connector {
    settings: ConnectorSettings,
    http: reqwest::Client,
    /// The cached token. An async mutex: the first caller fetches while
    /// holding it and everyone else waits for that one fetch.
    token: Mutex<Option<(String, Instant)>>,
}

/// Refresh this long before the token expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

impl Connector {
    pub fn new(settings: ConnectorSettings, http: reqwest::Client) -> Connector {
        Connector {
            settings,
            http,
            token: Mutex::new(None),
        }
    }

    async fn token(&self, force: bool) -> Result<String, DeliveryError> {
        let mut cached = self.token.lock().await;
        if let Some((token, valid_until)) = cached.as_ref() {
            if !force && Instant::now() < *valid_until {
                return Ok(token.clone());
            }
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.app_id.as_str()),
            ("client_secret", self.settings.app_secret.as_str()),
            ("scope", self.settings.scope.as_str()),
        ];
        let response = self
            .http
            .post(&self.settings.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| DeliveryError::Retry {
                reason: format!("token endpoint: {e}"),
                after: None,
            })?;
        let status = response.status();
        if !status.is_success() {
            let error = format!(
                "token endpoint answered HTTP {status} (check teams.app_id and the app secret)"
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                DeliveryError::Retry {
                    reason: error,
                    after: retry_after(&response),
                }
            } else {
                DeliveryError::Permanent(error)
            });
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| DeliveryError::Permanent(format!("token response: {e}")))?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
        let valid_until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        *cached = Some((body.access_token.clone(), valid_until));
        Ok(body.access_token)
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
            let response = self
                .http
                .post(&url)
                .bearer_auth(&token)
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
            if status.as_u16() == 401 && !refreshed {
                refreshed = true;
                continue;
            }
            let reason = format!("connector answered HTTP {status}");
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                DeliveryError::Retry {
                    reason,
                    after: retry_after(&response),
                }
            } else {
                DeliveryError::Permanent(reason)
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
