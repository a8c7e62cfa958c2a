//! Inbound security for Bot Framework requests: every `POST /api/messages`
//! carries `Authorization: Bearer <JWT>` signed by the Bot Framework.
//!
//! Rules (Bot Framework "authenticate requests from the connector",
//! <https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication>):
//! RS256 only (the header's `alg` is checked before anything else, so
//! `none` and HS256-with-the-public-key are refused); the key is found by
//! `kid` in the JWKS named by the OpenID metadata document, cached, and
//! refreshed when a `kid` is unknown (no more often than a configured
//! interval); issuer `https://api.botframework.com`; audience = the bot's
//! app id; `exp` and `nbf` with a few minutes of skew; the `serviceurl`
//! claim must equal the activity's `serviceUrl`; and the key's
//! `endorsements` must contain the activity's `channelId` ("The
//! endorsements property within each key contains one or more endorsement
//! strings which you can use to verify that the channel ID specified in the
//! channelId property within the Activity object of the incoming request is
//! authentic."). Any failure is one [`AuthError`] whose text is for the
//! operator's log; callers answer 401 with no detail.
//!
//! Answering within the Bot Connector's timeout: the key cache is behind a
//! blocking mutex held only to read or swap it, never across a fetch. A
//! refresh runs as its own task (each fetch bounded by [`FETCH_TIMEOUT`]);
//! requests with the same unknown `kid` await its end, requests with known
//! keys never wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::watch;

/// Bound on each of the two fetches of a key refresh.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

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
    #[error(
        "signing key {kid} is not endorsed for channel {channel:?} (endorsed for {endorsed:?})"
    )]
    NotEndorsed {
        kid: String,
        channel: String,
        endorsed: Vec<String>,
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
    #[serde(default)]
    endorsements: Vec<String>,
}

/// A key of the JWKS and the channels it may sign activities for.
#[derive(Clone)]
struct Key {
    key: DecodingKey,
    endorsements: Vec<String>,
}

struct KeyCache {
    keys: HashMap<String, Key>,
    fetched_at: Option<Instant>,
    /// The refresh under way: turns true when it is done.
    refreshing: Option<watch::Receiver<bool>>,
    /// Why the last refresh failed, if it did.
    last_error: Option<String>,
}

struct Inner {
    settings: AuthSettings,
    http: reqwest::Client,
    /// Held only to read or swap the cache, never across an await.
    cache: Mutex<KeyCache>,
}

/// Validates Bot Framework tokens; cheap to share.
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl Authenticator {
    pub fn new(settings: AuthSettings, http: reqwest::Client) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                settings,
                http,
                cache: Mutex::new(KeyCache {
                    keys: HashMap::new(),
                    fetched_at: None,
                    refreshing: None,
                    last_error: None,
                }),
            }),
        }
    }

    /// Checks the `Authorization` header of a request whose activity names
    /// `service_url` and `channel_id`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        service_url: &str,
        channel_id: &str,
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
        let settings = &self.inner.settings;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.app_id.as_str()]);
        validation.leeway = settings.skew.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Claims>(token, &key.key, &validation)
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
        // An activity naming no channel is endorsed by nobody: madoguchi
        // serves Teams only.
        if channel_id.is_empty() || !key.endorsements.iter().any(|e| e == channel_id) {
            return Err(AuthError::NotEndorsed {
                kid,
                channel: channel_id.to_string(),
                endorsed: key.endorsements,
            });
        }
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn key(&self, kid: &str) -> Result<Key, AuthError> {
        let mut done = {
            let mut cache = self.cache();
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            // A refresh whose task is gone (it cannot finish) is no refresh.
            let running = cache
                .refreshing
                .clone()
                .filter(|rx| rx.has_changed().is_ok() && !*rx.borrow());
            match running {
                Some(rx) => rx,
                None => {
                    let may_refresh = cache
                        .fetched_at
                        .is_none_or(|at| at.elapsed() >= self.inner.settings.min_refresh);
                    if !may_refresh {
                        return Err(AuthError::UnknownKey(kid.to_string()));
                    }
                    let (tx, rx) = watch::channel(false);
                    cache.refreshing = Some(rx.clone());
                    tokio::spawn(refresh(self.inner.clone(), tx));
                    rx
                }
            }
        };
        // Ends when the refresh is done (or its task is gone).
        let _finished = done.wait_for(|done| *done).await;
        let cache = self.cache();
        match (cache.keys.get(kid), &cache.last_error) {
            (Some(key), _) => Ok(key.clone()),
            (None, Some(error)) => Err(AuthError::Keys(error.clone())),
            (None, None) => Err(AuthError::UnknownKey(kid.to_string())),
        }
    }
}

/// Fetches the key set (no lock held) and swaps it into the cache.
async fn refresh(inner: Arc<Inner>, done: watch::Sender<bool>) {
    let fetched = fetch_keys(&inner).await;
    {
        let mut cache = inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.fetched_at = Some(Instant::now());
        cache.refreshing = None;
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "Teams: signing keys refreshed");
                cache.keys = keys;
                cache.last_error = None;
            }
            Err(error) => {
                tracing::error!(%error, url = %inner.settings.openid_metadata_url, "Teams: signing keys could not be refreshed (check teams.openid_metadata_url and outbound HTTPS)");
                cache.last_error = Some(error.to_string());
            }
        }
    }
    let _ = done.send(true);
}

async fn fetch_keys(inner: &Inner) -> Result<HashMap<String, Key>, AuthError> {
    let metadata: OpenIdMetadata = inner
        .http
        .get(&inner.settings.openid_metadata_url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| AuthError::Keys(format!("OpenID metadata: {e}")))?
        .json()
        .await
        .map_err(|e| AuthError::Keys(format!("OpenID metadata: {e}")))?;
    let jwks: Jwks = inner
        .http
        .get(&metadata.jwks_uri)
        .timeout(FETCH_TIMEOUT)
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
                keys.insert(
                    kid,
                    Key {
                        key,
                        endorsements: jwk.endorsements,
                    },
                );
            }
            Err(error) => {
                tracing::warn!(%kid, %error, "Teams: unusable key in the JWKS skipped")
            }
        }
    }
    Ok(keys)
}
