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
//!
//! The connector reuses one token for many requests, and checking its RSA
//! signature is most of the cost of a request. So a token that passed is
//! remembered, keyed by its SHA-256, until its `exp` (at most
//! [`MAX_VERDICTS`] of them; expired ones are dropped first): the same
//! token again skips the signature and the issuer, audience and time
//! checks, which depend on the token alone. The checks that depend on the
//! activity (its `serviceUrl`, its `channelId` against the key's
//! endorsements, read from the current key set) run on every request.
//! Refused tokens are not remembered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// Bound on each of the two fetches of a key refresh.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Most tokens remembered as verified at once.
pub const MAX_VERDICTS: usize = 4096;

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
    /// Seconds since the epoch (checked by `jsonwebtoken`; a token without
    /// it is refused).
    #[serde(default)]
    exp: Option<u64>,
}

/// What a verified token says, whatever the activity: the key that signed
/// it, its `serviceurl` claim, and until when it may be used.
#[derive(Debug, Clone)]
struct Verdict {
    kid: String,
    serviceurl: Option<String>,
    expires: u64,
}

/// Verified tokens by the SHA-256 of the token.
#[derive(Default)]
struct VerdictCache {
    verdicts: HashMap<[u8; 32], Verdict>,
}

impl VerdictCache {
    /// The verdict on `token` if it is still valid at `now`.
    fn get(&mut self, token: &[u8; 32], now: u64) -> Option<Verdict> {
        match self.verdicts.get(token) {
            Some(verdict) if now < verdict.expires => Some(verdict.clone()),
            Some(_) => {
                self.verdicts.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers `verdict`, making room by dropping expired verdicts, then
    /// the one expiring first.
    fn insert(&mut self, token: [u8; 32], verdict: Verdict, now: u64) {
        if self.verdicts.len() >= MAX_VERDICTS {
            self.verdicts.retain(|_, v| now < v.expires);
        }
        if self.verdicts.len() >= MAX_VERDICTS {
            let first = self
                .verdicts
                .iter()
                .min_by_key(|(_, v)| v.expires)
                .map(|(token, _)| *token);
            if let Some(first) = first {
                self.verdicts.remove(&first);
            }
        }
        self.verdicts.insert(token, verdict);
    }
}

/// Seconds since the epoch.
fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
    /// Held only to look up or insert a verdict.
    verdicts: Mutex<VerdictCache>,
    /// Signatures checked so far (the rest were served by `verdicts`).
    signatures_checked: AtomicU64,
    /// The clock `verdicts` expire by, in seconds since the epoch.
    now: fn() -> u64,
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
                verdicts: Mutex::new(VerdictCache::default()),
                signatures_checked: AtomicU64::new(0),
                now: system_now,
            }),
        }
    }

    /// How many token signatures were checked so far; a token seen before
    /// and still valid is not checked again.
    pub fn signatures_checked(&self) -> u64 {
        self.inner.signatures_checked.load(Ordering::Relaxed)
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
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = (self.inner.now)();
        let remembered = self.lock_verdicts().get(&digest, now);
        let verdict = match remembered {
            Some(verdict) => verdict,
            None => {
                let verdict = self.verify_token(token).await?;
                self.lock_verdicts().insert(digest, verdict.clone(), now);
                verdict
            }
        };
        let Verdict {
            kid, serviceurl, ..
        } = verdict;
        let same = serviceurl
            .as_deref()
            .is_some_and(|c| c.trim_end_matches('/') == service_url.trim_end_matches('/'));
        if !same {
            return Err(AuthError::ServiceUrl {
                claim: serviceurl,
                activity: service_url.to_string(),
            });
        }
        // The key's endorsements as the current key set has them (a key
        // gone from it refuses the token).
        let key = self.key(&kid).await?;
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

    /// Checks what depends on the token alone: header, signature, issuer,
    /// audience, `exp` and `nbf`.
    async fn verify_token(&self, token: &str) -> Result<Verdict, AuthError> {
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
        self.inner
            .signatures_checked
            .fetch_add(1, Ordering::Relaxed);
        let data = decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(Verdict {
            kid,
            serviceurl: data.claims.serviceurl,
            // Never remembered past `exp` (the leeway is for clocks that
            // disagree, not for reuse).
            expires: data.claims.exp.unwrap_or(0),
        })
    }

    fn lock_verdicts(&self) -> std::sync::MutexGuard<'_, VerdictCache> {
        self.inner
            .verdicts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

#[cfg(test)]
mod tests {
    //! The verdict cache, with a key put straight into the key cache (no
    //! JWKS fetch) and a clock of the test's own.

    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;

    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;

    use super::*;

    const APP_ID: &str = "app-1";
    const ISSUER: &str = "https://api.botframework.com";
    const SERVICE_URL: &str = "https://smba.example/amer/";
    const KID: &str = "key-1";

    /// One RSA key for every test (making one takes a while).
    fn rsa_key() -> &'static rsa::RsaPrivateKey {
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key"))
    }

    /// The test clock of `an_expired_token_is_not_served_from_the_cache`.
    static CLOCK: AtomicU64 = AtomicU64::new(0);

    fn test_clock() -> u64 {
        CLOCK.load(Ordering::SeqCst)
    }

    fn authenticator(now: fn() -> u64) -> Authenticator {
        let mut auth = Authenticator::new(
            AuthSettings {
                app_id: APP_ID.into(),
                openid_metadata_url: "http://127.0.0.1:1/unused".into(),
                issuer: ISSUER.into(),
                skew: Duration::from_secs(300),
                min_refresh: Duration::from_secs(3600),
            },
            reqwest::Client::new(),
        );
        Arc::get_mut(&mut auth.inner).expect("not shared yet").now = now;
        let public = rsa_key().to_public_key();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = DecodingKey::from_rsa_components(
            &b64.encode(public.n().to_bytes_be()),
            &b64.encode(public.e().to_bytes_be()),
        )
        .expect("decoding key");
        let mut cache = auth.cache();
        cache.keys.insert(
            KID.into(),
            Key {
                key,
                endorsements: vec!["msteams".into()],
            },
        );
        cache.fetched_at = Some(Instant::now());
        drop(cache);
        auth
    }

    /// `Bearer <token>` signed by the test key, valid for an hour, with
    /// `claims` changed by `change`.
    fn bearer(change: impl FnOnce(&mut serde_json::Value)) -> String {
        let now = system_now();
        let mut claims = json!({
            "iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "nbf": now - 60,
            "serviceurl": SERVICE_URL,
        });
        change(&mut claims);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.into());
        let pem = rsa_key()
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("pem");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key");
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&header, &claims, &key).expect("sign")
        )
    }

    #[tokio::test]
    async fn a_token_seen_before_is_not_verified_again() {
        let auth = authenticator(system_now);
        let token = bearer(|_| {});
        for _ in 0..3 {
            auth.verify(Some(&token), SERVICE_URL, "msteams")
                .await
                .expect("valid");
        }
        assert_eq!(auth.signatures_checked(), 1);
        // Another token is verified on its own.
        let other = bearer(|claims| claims["jti"] = json!("other"));
        auth.verify(Some(&other), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        assert_eq!(auth.signatures_checked(), 2);
    }

    #[tokio::test]
    async fn a_remembered_token_still_gets_the_checks_of_each_activity() {
        let auth = authenticator(system_now);
        let token = bearer(|_| {});
        auth.verify(Some(&token), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        // The service URL named by the activity must still be the claim's.
        let other_service = auth
            .verify(Some(&token), "https://attacker.example/", "msteams")
            .await;
        assert!(
            matches!(other_service, Err(AuthError::ServiceUrl { .. })),
            "{other_service:?}"
        );
        // The channel named by the activity must still be endorsed.
        for channel in ["webchat", ""] {
            let refused = auth.verify(Some(&token), SERVICE_URL, channel).await;
            assert!(
                matches!(refused, Err(AuthError::NotEndorsed { .. })),
                "{channel:?}: {refused:?}"
            );
        }
        // A key gone from the key set refuses the token it signed.
        auth.cache().keys.clear();
        let gone = auth.verify(Some(&token), SERVICE_URL, "msteams").await;
        assert!(matches!(gone, Err(AuthError::UnknownKey(_))), "{gone:?}");
        assert_eq!(auth.signatures_checked(), 1, "all from the cache");
    }

    #[tokio::test]
    async fn an_expired_token_is_not_served_from_the_cache() {
        let auth = authenticator(test_clock);
        let token = bearer(|_| {});
        CLOCK.store(system_now(), Ordering::SeqCst);
        auth.verify(Some(&token), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        auth.verify(Some(&token), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        assert_eq!(auth.signatures_checked(), 1);
        // Past the token's exp by the cache's clock: checked again (and
        // by jsonwebtoken's clock, still valid).
        CLOCK.store(system_now() + 3600, Ordering::SeqCst);
        auth.verify(Some(&token), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        assert_eq!(auth.signatures_checked(), 2);
    }

    #[tokio::test]
    async fn a_refused_token_is_not_remembered() {
        let auth = authenticator(system_now);
        let token = bearer(|claims| claims["aud"] = json!("someone-else"));
        for checked in 1..=2 {
            let refused = auth.verify(Some(&token), SERVICE_URL, "msteams").await;
            assert!(matches!(refused, Err(AuthError::Invalid(_))), "{refused:?}");
            assert_eq!(auth.signatures_checked(), checked);
        }
        // A tampered token (the claims of a valid one, changed) is refused
        // even though the valid one is remembered.
        let valid = bearer(|_| {});
        auth.verify(Some(&valid), SERVICE_URL, "msteams")
            .await
            .expect("valid");
        let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("json");
        claims["serviceurl"] = json!("https://attacker.example/");
        parts[1] = b64.encode(claims.to_string());
        let tampered = parts.join(".");
        let refused = auth
            .verify(Some(&tampered), "https://attacker.example/", "msteams")
            .await;
        assert!(matches!(refused, Err(AuthError::Invalid(_))), "{refused:?}");
    }

    #[test]
    fn the_verdict_cache_stays_bounded_and_drops_expired_verdicts_first() {
        let mut cache = VerdictCache::default();
        let verdict = |expires| Verdict {
            kid: KID.into(),
            serviceurl: None,
            expires,
        };
        let token = |n: usize| {
            let digest: [u8; 32] = Sha256::digest(n.to_le_bytes()).into();
            digest
        };
        // One expired at 50, the rest valid until 1000 + n.
        cache.insert(token(0), verdict(50), 10);
        for n in 1..MAX_VERDICTS {
            cache.insert(token(n), verdict(1000 + n as u64), 10);
        }
        assert_eq!(cache.verdicts.len(), MAX_VERDICTS);
        cache.insert(token(MAX_VERDICTS), verdict(5000), 100);
        assert_eq!(cache.verdicts.len(), MAX_VERDICTS);
        assert!(cache.get(&token(0), 100).is_none(), "the expired one went");
        assert!(cache.get(&token(1), 100).is_some());
        // Full of valid verdicts: the one expiring first makes room.
        cache.insert(token(MAX_VERDICTS + 1), verdict(6000), 100);
        assert_eq!(cache.verdicts.len(), MAX_VERDICTS);
        assert!(cache.get(&token(1), 100).is_none());
        assert!(cache.get(&token(2), 100).is_some());
        // Expired by the clock: not served, and dropped.
        assert!(cache.get(&token(2), 1002).is_none());
        assert!(!cache.verdicts.contains_key(&token(2)));
    }
}
