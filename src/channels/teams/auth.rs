//! Inbound security for Bot Framework requests: every `POST /api/messages`
//! carries `Authorization: Bearer <JWT>` signed by the Bot Framework.
//!
//! Rules (Bot Framework "authenticate requests from the connector"): RS256
//! only (the header's `alg` is checked before anything else, so `none` and
//! HS256-with-the-public-key are refused); the key is found by `kid` in the
//! JWKS named by the OpenID metadata document, cached, and refreshed when a
//! `kid` is unknown (no more often than a configured interval); issuer
//! `https://api.botframework.com`; audience = the bot's app id; `exp` and
//! `nbf` with a few minutes of skew; the `serviceurl` claim must equal the
//! activity's `serviceUrl`. Any failure is one [`AuthError`] whose text is
//! for the operator's log; callers answer 401 with no detail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("no Authorization: Bearer header")]
    Missing,
    #[error("token header unreadable: {0}")]
    BadHeader(String),
    #[error("algorithm {0} refused (RS256 only)")]
    Algorithm(String),
    #[error("token has no key id (kid)")]
    NoKeyId,
    #[error("unknown signing key {0} (also after refreshing the key set)")]
    UnknownKey(String),
    #[error("signing keys unavailable: {0}")]
    Keys(String),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("serviceurl claim {claim:?} does not match the activity's serviceUrl {activity:?}")]
    ServiceUrl {
        claim: Option<String>,
        activity: String,
    },
}

/// What the authenticator needs to know.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub app_id: String,
    pub openid_metadata_url: String,
    pub issuer: String,
    pub skew: Duration,
    /// Minimum time between two key-set refreshes caused by unknown `kid`s.
    pub min_refresh: Duration,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    serviceurl: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OpenIdMetadata {
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Validates Bot Framework tokens; cheap to share behind an `Arc`.
pub struct Authenticator {
    settings: AuthSettings,
    http: reqwest::Client,
    /// An async mutex: a refresh awaits the network while holding it, so
    /// concurrent requests with the same new `kid` fetch the keys once.
    cache: Mutex<KeyCache>,
}

impl Authenticator {
    pub fn new(settings: AuthSettings, http: reqwest::Client) -> Authenticator {
        Authenticator {
            settings,
            http,
            cache: Mutex::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
        }
    }

    /// Checks the `Authorization` header of a request whose activity names
    /// `service_url`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        service_url: &str,
    ) -> Result<(), AuthError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header = decode_header(token).map_err(|e| AuthError::BadHeader(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::NoKeyId)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.app_id.as_str()]);
        validation.leeway = self.settings.skew.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claim = data.claims.serviceurl;
        let same = claim
            .as_deref()
            .is_some_and(|c| c.trim_end_matches('/') == service_url.trim_end_matches('/'));
        if !same {
            return Err(AuthError::ServiceUrl {
                claim,
                activity: service_url.to_string(),
            });
        }
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(key) = cache.keys.get(kid) {
            return Ok(key.clone());
        }
        let may_refresh = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.settings.min_refresh);
        if !may_refresh {
            return Err(AuthError::UnknownKey(kid.to_string()));
        }
        cache.keys = self.fetch_keys().await?;
        cache.fetched_at = Some(Instant::now());
        tracing::info!(keys = cache.keys.len(), "Teams: signing keys refreshed");
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_string()))
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, DecodingKey>, AuthError> {
        let metadata: OpenIdMetadata = self
            .http
            .get(&self.settings.openid_metadata_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Keys(format!("OpenID metadata: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Keys(format!("OpenID metadata: {e}")))?;
        let jwks: Jwks = self
            .http
            .get(&metadata.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Keys(format!("JWKS: {e}")))?
            .json()
            .await
            .map_err(|e| AuthError::Keys(format!("JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
                continue;
            };
            if jwk.kty != "RSA" {
                continue;
            }
            match DecodingKey::from_rsa_components(&n, &e) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(error) => {
                    tracing::warn!(%kid, %error, "Teams: unusable key in the JWKS skipped")
                }
            }
        }
        Ok(keys)
    }
}
