//! A fake Bot Framework on 127.0.0.1:0 for the Teams tests: the OpenID
//! metadata document and a JWKS made from RSA keys generated in the test, a
//! token endpoint (client-credentials grant) that counts its calls, and the
//! connector's `/v3/conversations/{id}/activities[/{replyToId}]`, which
//! records every activity the bot posts (with the bearer token it used) and
//! can answer 429 with `Retry-After` once. Tokens for inbound requests are
//! signed here, valid or broken on purpose.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use tokio::sync::watch;

pub const APP_ID: &str = "00000000-app0-4000-8000-000000000001";
pub const ISSUER: &str = "https://api.botframework.com";

/// A signing key with its id.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
    pub n: String,
    pub e: String,
}

impl SigningKey {
    pub fn generate(kid: &str) -> SigningKey {
        let mut rng = rand::thread_rng();
        let private = RsaPrivateKey::new(&mut rng, 2048).expect("rsa key");
        let public = RsaPublicKey::from(&private);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        SigningKey {
            kid: kid.to_string(),
            private_pem: private
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .expect("pem")
                .to_string(),
            public_pem: public
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .expect("pem"),
            n: b64.encode(public.n().to_bytes_be()),
            e: b64.encode(public.e().to_bytes_be()),
        }
    }
}

/// One activity the bot posted.
#[derive(Clone, Debug)]
pub struct Posted {
    pub conversation: String,
    pub reply_to: Option<String>,
    pub body: Value,
    pub authorization: String,
    pub status: u16,
}

impl Posted {
    pub fn text(&self) -> String {
        let mut text = self.body["text"].as_str().unwrap_or_default().to_string();
        for attachment in self.body["attachments"].as_array().into_iter().flatten() {
            for block in attachment["content"]["body"]
                .as_array()
                .into_iter()
                .flatten()
            {
                text.push_str(block["text"].as_str().unwrap_or_default());
            }
        }
        text
    }
}

struct Inner {
    base: String,
    keys: Mutex<Vec<SigningKey>>,
    token_calls: Mutex<u32>,
    posted: Mutex<Vec<Posted>>,
    posted_tx: watch::Sender<usize>,
    throttle_next: Mutex<Option<f64>>,
    ids: Mutex<u64>,
    /// Accepted posts per conversation (cheap to read under load).
    counts: Mutex<std::collections::HashMap<String, usize>>,
    /// Per conversation: message posts still to answer with 500.
    failing: Mutex<std::collections::HashMap<String, u32>>,
    /// Per conversation: message posts answered 429 with this Retry-After.
    throttled: Mutex<std::collections::HashMap<String, f64>>,
    /// Conversations whose message posts wait (a slow or stuck connector)
    /// until released.
    held: watch::Sender<std::collections::HashSet<String>>,
    /// Added to every connector answer (the distance to the Teams service).
    delay_ms: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct FakeBotFramework {
    inner: Arc<Inner>,
}

impl FakeBotFramework {
    pub async fn start() -> FakeBotFramework {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner {
            base,
            keys: Mutex::new(vec![SigningKey::generate("key-1")]),
            token_calls: Mutex::new(0),
            posted: Mutex::new(Vec::new()),
            posted_tx: watch::channel(0).0,
            throttle_next: Mutex::new(None),
            ids: Mutex::new(0),
            counts: Mutex::new(std::collections::HashMap::new()),
            failing: Mutex::new(std::collections::HashMap::new()),
            throttled: Mutex::new(std::collections::HashMap::new()),
            held: watch::channel(std::collections::HashSet::new()).0,
            delay_ms: std::sync::atomic::AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/openid", get(openid))
            .route("/keys", get(keys))
            .route("/token", post(token))
            .route(
                "/v3/conversations/{conversation}/activities",
                post(activity),
            )
            .route(
                "/v3/conversations/{conversation}/activities/{reply}",
                post(reply),
            )
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeBotFramework { inner }
    }

    /// The service URL activities claim to come from (this fake).
    pub fn service_url(&self) -> String {
        self.inner.base.clone()
    }

    pub fn openid_url(&self) -> String {
        format!("{}/openid", self.inner.base)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.inner.base)
    }

    pub fn key(&self) -> SigningKey {
        self.inner.keys.lock().expect("keys")[0].clone()
    }

    /// Publishes another key (key rotation).
    pub fn add_key(&self, key: SigningKey) {
        self.inner.keys.lock().expect("keys").push(key);
    }

    pub fn token_calls(&self) -> u32 {
        *self.inner.token_calls.lock().expect("calls")
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.inner.posted.lock().expect("posted").clone()
    }

    /// Accepted posts to `conversation` so far.
    pub fn count(&self, conversation: &str) -> usize {
        self.inner
            .counts
            .lock()
            .expect("counts")
            .get(conversation)
            .copied()
            .unwrap_or(0)
    }

    /// Awaits until `conversation` has at least `n` accepted posts.
    pub async fn wait_count(&self, conversation: &str, n: usize) {
        let mut rx = self.inner.posted_tx.subscribe();
        if super::wait::wait_until(&mut rx, || (self.count(conversation) >= n).then_some(()))
            .await
            .is_err()
        {
            panic!(
                "fake bot framework: {conversation} has {} of {n} posts",
                self.count(conversation)
            );
        }
    }

    /// The next `n` message posts to `conversation` get 500 (the
    /// connector's transient server error).
    pub fn fail_next(&self, conversation: &str, n: u32) {
        self.inner
            .failing
            .lock()
            .expect("failing")
            .insert(conversation.to_string(), n);
    }

    /// Every message post to `conversation` gets 429 with `Retry-After:
    /// seconds` (a throttled conversation), until `unthrottle`.
    pub fn throttle(&self, conversation: &str, seconds: f64) {
        self.inner
            .throttled
            .lock()
            .expect("throttled")
            .insert(conversation.to_string(), seconds);
    }

    /// Message posts to `conversation` wait without an answer (a slow
    /// connector) until [`FakeBotFramework::release`].
    pub fn hold(&self, conversation: &str) {
        self.inner.held.send_modify(|held| {
            held.insert(conversation.to_string());
        });
    }

    /// Every connector post is answered `ms` milliseconds late (benchmarks:
    /// a realistic distance to the Teams service).
    pub fn set_delay_ms(&self, ms: u64) {
        self.inner
            .delay_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn release(&self, conversation: &str) {
        self.inner.held.send_modify(|held| {
            held.remove(conversation);
        });
    }

    /// Posts to `conversation` with this status so far (any type).
    pub fn statuses(&self, conversation: &str) -> Vec<u16> {
        self.posted()
            .iter()
            .filter(|p| p.conversation == conversation && p.body["type"] == "message")
            .map(|p| p.status)
            .collect()
    }

    /// The next message activity post gets 429 with `Retry-After: seconds`.
    pub fn throttle_next(&self, seconds: f64) {
        *self.inner.throttle_next.lock().expect("throttle") = Some(seconds);
    }

    /// Awaits until `n` accepted posts match `pred`.
    pub async fn wait_for_count(
        &self,
        what: &str,
        n: usize,
        pred: impl Fn(&Posted) -> bool,
    ) -> Vec<Posted> {
        let mut rx = self.inner.posted_tx.subscribe();
        let found = super::wait::wait_until(&mut rx, || {
            let matching: Vec<Posted> = self
                .posted()
                .into_iter()
                .filter(|p| p.status == 200 && pred(p))
                .take(n)
                .collect();
            (matching.len() == n).then_some(matching)
        })
        .await;
        found.unwrap_or_else(|_| {
            let all: Vec<String> = self
                .posted()
                .iter()
                .map(|p| format!("{} {} {}", p.status, p.conversation, p.text()))
                .collect();
            panic!(
                "fake bot framework: timed out waiting for {n} x {what}; posted:\n{}",
                all.join("\n")
            )
        })
    }

    /// Awaits a post matching `pred` whatever the fake answered (429, 500).
    pub async fn wait_for_any_status(&self, what: &str, pred: impl Fn(&Posted) -> bool) -> Posted {
        let mut rx = self.inner.posted_tx.subscribe();
        super::wait::wait_until(&mut rx, || self.posted().into_iter().find(|p| pred(p)))
            .await
            .unwrap_or_else(|_| panic!("fake bot framework: timed out waiting for {what}"))
    }

    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Posted) -> bool) -> Posted {
        self.wait_for_count(what, 1, pred).await.remove(0)
    }

    /// A valid inbound token for `service_url`, signed with `key`, with
    /// `changes` applied to the claims.
    pub fn token(
        &self,
        key: &SigningKey,
        service_url: &str,
        changes: impl FnOnce(&mut Value),
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": ISSUER,
            "aud": APP_ID,
            "exp": now + 3600,
            "nbf": now - 60,
            "serviceurl": service_url,
        });
        changes(&mut claims);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).expect("encoding key");
        jsonwebtoken::encode(&header, &claims, &encoding).expect("sign")
    }

    /// A token with `alg: none` (no signature).
    pub fn unsigned_token(&self, service_url: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = chrono::Utc::now().timestamp();
        let header =
            b64.encode(json!({"alg": "none", "typ": "JWT", "kid": self.key().kid}).to_string());
        let claims = b64.encode(
            json!({"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "nbf": now - 60, "serviceurl": service_url})
                .to_string(),
        );
        format!("{header}.{claims}.")
    }

    /// A token signed HS256 with the public key's PEM as the shared secret
    /// (the classic algorithm-confusion attack).
    pub fn hs256_confusion_token(&self, service_url: &str) -> String {
        let key = self.key();
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": ISSUER, "aud": APP_ID, "exp": now + 3600, "nbf": now - 60, "serviceurl": service_url});
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(key.public_pem.as_bytes()),
        )
        .expect("sign")
    }
}

async fn openid(State(inner): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{}/keys", inner.base),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn keys(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let keys: Vec<Value> = inner
        .keys
        .lock()
        .expect("keys")
        .iter()
        .map(|k| json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e, "endorsements": ["msteams"]}))
        .collect();
    Json(json!({ "keys": keys }))
}

async fn token(State(inner): State<Arc<Inner>>, body: String) -> Response {
    let form: BTreeMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("%2F", "/").replace("%3A", ":").replace('+', " "),
            )
        })
        .collect();
    let mut calls = inner.token_calls.lock().expect("calls");
    *calls += 1;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_id").map(String::as_str) != Some(APP_ID)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": format!("bot-token-{}", *calls)})).into_response()
}

fn record(
    inner: &Inner,
    conversation: String,
    reply_to: Option<String>,
    headers: &HeaderMap,
    body: Value,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Only message activities are throttled (typing indicators are best
    // effort and never retried).
    let message = body["type"] == "message";
    let throttled = if message {
        inner
            .throttle_next
            .lock()
            .expect("throttle")
            .take()
            .or_else(|| {
                inner
                    .throttled
                    .lock()
                    .expect("throttled")
                    .get(&conversation)
                    .copied()
            })
    } else {
        None
    };
    let failing = message
        && throttled.is_none()
        && match inner
            .failing
            .lock()
            .expect("failing")
            .get_mut(&conversation)
        {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
    let status = if throttled.is_some() {
        429
    } else if failing {
        500
    } else {
        200
    };
    let id = {
        let mut ids = inner.ids.lock().expect("ids");
        *ids += 1;
        format!("activity-{}", *ids)
    };
    if status == 200 {
        *inner
            .counts
            .lock()
            .expect("counts")
            .entry(conversation.clone())
            .or_default() += 1;
    }
    inner.posted.lock().expect("posted").push(Posted {
        conversation,
        reply_to,
        body,
        authorization,
        status,
    });
    inner.posted_tx.send_modify(|n| *n += 1);
    if failing {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": "ServiceError", "message": "Internal error"}})),
        )
            .into_response();
    }
    match throttled {
        Some(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", format!("{seconds}"))],
            Json(json!({"error": {"code": "Throttled", "message": "Too many requests"}})),
        )
            .into_response(),
        None => Json(json!({ "id": id })).into_response(),
    }
}

async fn activity(
    State(inner): State<Arc<Inner>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    wait_while_held(&inner, &conversation, &body).await;
    record(&inner, conversation, None, &headers, body)
}

/// A held conversation's message posts wait until released.
async fn wait_while_held(inner: &Inner, conversation: &str, body: &Value) {
    let delay = inner.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if body["type"] != "message" {
        return;
    }
    let mut held = inner.held.subscribe();
    let _released = held.wait_for(|held| !held.contains(conversation)).await;
}

async fn reply(
    State(inner): State<Arc<Inner>>,
    Path((conversation, reply)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    wait_while_held(&inner, &conversation, &body).await;
    record(&inner, conversation, Some(reply), &headers, body)
}
