//! A fake Bot Framework on 127.0.0.1:0 for the Teams tests: the OpenID
//! metadata document and a JWKS made from RSA keys generated in the test
//! (each key with its `endorsements`), a token endpoint (client-credentials
//! grant) that counts its calls and can fail on purpose, and the connector's
//! `/v3/conversations/{id}/activities[/{replyToId}]`, which records every
//! activity the bot posts (with the bearer token it used). Tokens for
//! inbound requests are signed here, valid or broken on purpose.
//!
//! The fake refuses what Teams refuses (each rule cites its Microsoft page):
//!
//! - **Delivery**: in channels and group chats Teams delivers a message to
//!   the bot only when it @mentions the bot (a card press, a message with
//!   `value`, always arrives), unless the app's manifest grants RSC
//!   (`ChannelMessage.Read.Group` / `ChatMessage.Read.Chat`). By default the
//!   fake reads the repository's `teams/manifest.json`; [`FakeBotFramework::
//!   set_rsc`] simulates an app installed with RSC. Tests post through
//!   [`FakeBotFramework::delivers`].
//! - **Rate limit per thread** (7 / 1 s, 8 / 2 s, 60 / 30 s, 1800 / h; a
//!   channel with all its reply threads is one thread): 429.
//! - **Concurrent operations** on one thread: 412.
//! - **Size**: an activity over 40 KB (UTF-16): 413 `MessageSizeTooBig`.
//! - **Suggested actions**: more than three: 400 (Teams would silently
//!   show only the first three; refusing makes the loss visible in tests).
//! - **Private channels**: bots cannot post there: 403.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Largest activity the connector takes, in bytes of its UTF-16 encoding.
/// "The bot message size limit is 40 KB … If the bot message size limit
/// exceeds 40 KB, bot receives a 413 status code (RequestEntityTooLarge),
/// which contains the error code MessageSizeTooBig. The bot message size
/// limit includes the entire message payload encoded as UTF-16."
/// <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/format-your-bot-messages>
/// (the page now says 100 KB, 80 KB recommended; the fake keeps the
/// stricter figure the page gave before).
pub const MAX_ACTIVITY_UTF16_BYTES: usize = 40 * 1024;

/// Per bot per thread: (window, messages allowed in it).
/// <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit>
/// ("Per bot per thread limit": 7 / 1 s, 8 / 2 s, 60 / 30 s, 1800 / 3600 s).
pub const THREAD_LIMITS: [(Duration, usize); 4] = [
    (Duration::from_secs(1), 7),
    (Duration::from_secs(2), 8),
    (Duration::from_secs(30), 60),
    (Duration::from_secs(3600), 1800),
];

/// A signing key with its id and the channels it may sign activities for.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
    pub n: String,
    pub e: String,
    /// The JWKS `endorsements` of the key: the `channelId`s it vouches for.
    pub endorsements: Vec<String>,
}

impl SigningKey {
    /// A key endorsed for Microsoft Teams (`msteams`).
    pub fn generate(kid: &str) -> SigningKey {
        SigningKey::generate_endorsed(kid, &["msteams"])
    }

    /// A key endorsed only for `endorsements` (e.g. another channel).
    pub fn generate_endorsed(kid: &str, endorsements: &[&str]) -> SigningKey {
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
            endorsements: endorsements.iter().map(|e| e.to_string()).collect(),
        }
    }
}

/// One activity the bot posted.
#[derive(Clone, Debug)]
pub struct Posted {
    /// The id the connector gave the activity.
    pub id: String,
    pub conversation: String,
    pub reply_to: Option<String>,
    pub body: Value,
    pub authorization: String,
    pub status: u16,
}

impl Posted {
    /// What a person sees: the text of a plain message as is; for an
    /// Adaptive Card, its TextBlocks rendered as Teams renders Markdown
    /// (see [`render_markdown`]), one block per line.
    pub fn text(&self) -> String {
        let mut text = self.body["text"].as_str().unwrap_or_default().to_string();
        let mut blocks = Vec::new();
        for attachment in self.body["attachments"].as_array().into_iter().flatten() {
            for block in attachment["content"]["body"]
                .as_array()
                .into_iter()
                .flatten()
            {
                blocks.push(render_markdown(block["text"].as_str().unwrap_or_default()).0);
            }
        }
        text.push_str(&blocks.join("\n"));
        text
    }

    /// Live links in the card's TextBlocks (what Markdown turned into links).
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        for attachment in self.body["attachments"].as_array().into_iter().flatten() {
            for block in attachment["content"]["body"]
                .as_array()
                .into_iter()
                .flatten()
            {
                links.extend(render_markdown(block["text"].as_str().unwrap_or_default()).1);
            }
        }
        links
    }

    /// The buttons of a card (`Action.Submit`), or the suggested actions.
    pub fn actions(&self) -> Vec<Value> {
        let card = self.body["attachments"][0]["content"]["actions"]
            .as_array()
            .cloned();
        card.or_else(|| self.body["suggestedActions"]["actions"].as_array().cloned())
            .unwrap_or_default()
    }
}

/// The part of Adaptive Card Markdown that matters for tests, as Teams
/// renders a TextBlock: paragraphs are separated by a blank line (`\n\n`);
/// a single `\n` inside a paragraph collapses into a space; `[text](url)`
/// becomes a live link showing `text`; a backslash escapes the next
/// character. Returns the shown text (paragraphs joined by `\n`) and the
/// links. <https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format>
/// ("If you need a line break elsewhere in the TextBlock, use \n\n.")
pub fn render_markdown(text: &str) -> (String, Vec<String>) {
    let mut links = Vec::new();
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|paragraph| {
            let chars: Vec<char> = paragraph.replace('\n', " ").chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                        out.push(chars[i + 1]);
                        i += 2;
                    }
                    '[' => match link_at(&chars, i) {
                        Some((label, url, end)) => {
                            out.push_str(&label);
                            links.push(url);
                            i = end;
                        }
                        None => {
                            out.push('[');
                            i += 1;
                        }
                    },
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            out
        })
        .collect();
    (paragraphs.join("\n"), links)
}

/// `[label](url)` starting at `start` (unescaped brackets only).
fn link_at(chars: &[char], start: usize) -> Option<(String, String, usize)> {
    let mut i = start + 1;
    let mut label = String::new();
    while i < chars.len() && chars[i] != ']' {
        if chars[i] == '\\' || chars[i] == '[' {
            return None;
        }
        label.push(chars[i]);
        i += 1;
    }
    if chars.get(i + 1) != Some(&'(') {
        return None;
    }
    i += 2;
    let mut url = String::new();
    while i < chars.len() && chars[i] != ')' {
        if chars[i] == '\\' {
            return None;
        }
        url.push(chars[i]);
        i += 1;
    }
    (i < chars.len()).then_some((label, url, i + 1))
}

/// The thread an activity goes to: a channel's reply threads
/// (`19:…;messageid=…`) all belong to the channel.
pub fn thread_of(conversation: &str) -> &str {
    conversation
        .split(";messageid=")
        .next()
        .unwrap_or(conversation)
}

/// Whether the repository's `teams/manifest.json` grants the RSC
/// permissions that let a bot receive messages without an @mention.
pub fn manifest_grants_rsc() -> bool {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/teams/manifest.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("manifest"))
        .expect("manifest is JSON");
    manifest["authorization"]["permissions"]["resourceSpecific"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            matches!(
                p["name"].as_str(),
                Some("ChannelMessage.Read.Group" | "ChatMessage.Read.Chat")
            )
        })
}

/// How the token endpoint answers while failing.
#[derive(Clone, Debug)]
pub struct TokenFailure {
    pub status: u16,
    pub error: String,
}

struct Inner {
    base: String,
    keys: Mutex<Vec<SigningKey>>,
    token_calls: Mutex<u32>,
    token_failure: Mutex<Option<TokenFailure>>,
    key_fetches: Mutex<u32>,
    /// While true, `/keys` waits (a slow key endpoint).
    keys_held: watch::Sender<bool>,
    posted: Mutex<Vec<Posted>>,
    /// Bumped on every post and every token or key request.
    posted_tx: watch::Sender<usize>,
    throttle_next: Mutex<Option<f64>>,
    ids: Mutex<u64>,
    /// Accepted message posts per conversation (cheap to read under load).
    counts: Mutex<HashMap<String, usize>>,
    /// Per conversation: message posts still to answer with 500.
    failing: Mutex<HashMap<String, u32>>,
    /// Per conversation: the next message posts answer these statuses in
    /// order (200: handled normally).
    scripts: Mutex<HashMap<String, VecDeque<u16>>>,
    /// Per conversation: message posts answered 429 with this Retry-After.
    throttled: Mutex<HashMap<String, f64>>,
    /// Conversations whose message posts wait (a slow or stuck connector)
    /// until released.
    held: watch::Sender<HashSet<String>>,
    /// Added to every connector answer (the distance to the Teams service).
    delay_ms: std::sync::atomic::AtomicU64,
    /// Whether the installed app has RSC (messages without @mention).
    rsc: std::sync::atomic::AtomicBool,
    /// Arrival times of accepted posts, per thread (rate limit).
    arrivals: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Operations in flight per thread (concurrency → 412).
    in_flight: Mutex<HashMap<String, usize>>,
    /// Threads that are private channels.
    private: Mutex<HashSet<String>>,
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
            token_failure: Mutex::new(None),
            key_fetches: Mutex::new(0),
            keys_held: watch::channel(false).0,
            posted: Mutex::new(Vec::new()),
            posted_tx: watch::channel(0).0,
            throttle_next: Mutex::new(None),
            ids: Mutex::new(0),
            counts: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
            scripts: Mutex::new(HashMap::new()),
            throttled: Mutex::new(HashMap::new()),
            held: watch::channel(HashSet::new()).0,
            delay_ms: std::sync::atomic::AtomicU64::new(0),
            rsc: std::sync::atomic::AtomicBool::new(manifest_grants_rsc()),
            arrivals: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            private: Mutex::new(HashSet::new()),
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

    /// Every token request fails with `status` and the OAuth `error` code
    /// until [`FakeBotFramework::recover_token`].
    pub fn fail_token(&self, status: u16, error: &str) {
        *self.inner.token_failure.lock().expect("token failure") = Some(TokenFailure {
            status,
            error: error.to_string(),
        });
    }

    pub fn recover_token(&self) {
        *self.inner.token_failure.lock().expect("token failure") = None;
    }

    /// Awaits until the token endpoint was called at least `n` times.
    pub async fn wait_token_calls(&self, n: u32) {
        let mut rx = self.inner.posted_tx.subscribe();
        if super::wait::wait_until(&mut rx, || (self.token_calls() >= n).then_some(()))
            .await
            .is_err()
        {
            panic!(
                "fake bot framework: {} of {n} token requests",
                self.token_calls()
            );
        }
    }

    /// `/keys` requests wait until [`FakeBotFramework::release_keys`].
    pub fn hold_keys(&self) {
        self.inner.keys_held.send_replace(true);
    }

    pub fn release_keys(&self) {
        self.inner.keys_held.send_replace(false);
    }

    pub fn key_fetches(&self) -> u32 {
        *self.inner.key_fetches.lock().expect("fetches")
    }

    /// Awaits until the JWKS was requested at least `n` times.
    pub async fn wait_key_fetches(&self, n: u32) {
        let mut rx = self.inner.posted_tx.subscribe();
        if super::wait::wait_until(&mut rx, || (self.key_fetches() >= n).then_some(()))
            .await
            .is_err()
        {
            panic!(
                "fake bot framework: {} of {n} key set requests",
                self.key_fetches()
            );
        }
    }

    /// Simulates the app installed with (or without) the RSC permissions.
    pub fn set_rsc(&self, granted: bool) {
        self.inner
            .rsc
            .store(granted, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether Teams would deliver `activity` to the bot at all.
    ///
    /// "Bots in a group or channel only receive messages when they're
    /// mentioned @botname." <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/channel-and-group-conversations>
    /// unless RSC is granted: "With RSC, conversation owners can consent for
    /// a bot to receive all user messages in standard channels and chats
    /// without being @mentioned." <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/channel-messages-with-rsc>
    /// A card's `Action.Submit` press (a message with `value`) always
    /// reaches the bot that sent the card.
    pub fn delivers(&self, activity: &Value) -> bool {
        if activity["type"] != "message" || activity.get("value").is_some() {
            return true;
        }
        let scope = activity["conversation"]["conversationType"]
            .as_str()
            .unwrap_or("personal");
        if scope == "personal" || self.inner.rsc.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let bot = activity["recipient"]["id"].as_str().unwrap_or_default();
        activity["entities"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["type"] == "mention" && e["mentioned"]["id"] == bot)
    }

    /// `thread` is a private channel: bots cannot post there.
    pub fn make_private(&self, thread: &str) {
        self.inner
            .private
            .lock()
            .expect("private")
            .insert(thread.to_string());
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.inner.posted.lock().expect("posted").clone()
    }

    /// Accepted message posts to `conversation` so far (typing indicators
    /// are not counted).
    pub fn count(&self, conversation: &str) -> usize {
        self.inner
            .counts
            .lock()
            .expect("counts")
            .get(conversation)
            .copied()
            .unwrap_or(0)
    }

    /// Awaits until `conversation` has at least `n` accepted message posts.
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

    /// The next message posts to `conversation` are answered with
    /// `statuses`, in order (200 means: handled normally).
    pub fn script(&self, conversation: &str, statuses: &[u16]) {
        self.inner
            .scripts
            .lock()
            .expect("scripts")
            .insert(conversation.to_string(), statuses.iter().copied().collect());
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

    /// Statuses of the message posts to `conversation` so far.
    pub fn statuses(&self, conversation: &str) -> Vec<u16> {
        self.posted()
            .iter()
            .filter(|p| p.conversation == conversation && p.body["type"] == "message")
            .map(|p| p.status)
            .collect()
    }

    /// Statuses of every post (any type) into `thread` and its replies.
    pub fn thread_statuses(&self, thread: &str) -> Vec<u16> {
        self.posted()
            .iter()
            .filter(|p| thread_of(&p.conversation) == thread)
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

/// The key set with each key's `endorsements` ("The endorsements property
/// within each key contains one or more endorsement strings which you can
/// use to verify that the channel ID specified in the channelId property
/// within the Activity object of the incoming request is authentic."
/// <https://learn.microsoft.com/en-us/azure/bot-service/rest-api/bot-framework-rest-connector-authentication>).
async fn keys(State(inner): State<Arc<Inner>>) -> Json<Value> {
    *inner.key_fetches.lock().expect("fetches") += 1;
    inner.posted_tx.send_modify(|n| *n += 1);
    let mut held = inner.keys_held.subscribe();
    let _released = held.wait_for(|held| !*held).await;
    let keys: Vec<Value> = inner
        .keys
        .lock()
        .expect("keys")
        .iter()
        .map(|k| json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e, "endorsements": k.endorsements}))
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
    let calls = {
        let mut calls = inner.token_calls.lock().expect("calls");
        *calls += 1;
        *calls
    };
    inner.posted_tx.send_modify(|n| *n += 1);
    if let Some(failure) = inner.token_failure.lock().expect("failure").clone() {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST);
        return (
            status,
            Json(json!({"error": failure.error, "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_id").map(String::as_str) != Some(APP_ID)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": format!("bot-token-{calls}")})).into_response()
}

/// Size of `body` as the connector counts it: its JSON in UTF-16.
fn utf16_bytes(body: &Value) -> usize {
    body.to_string().encode_utf16().count() * 2
}

/// A connector error answer.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Why the connector refuses `body` before looking at anything else.
fn refusal(inner: &Inner, thread: &str, body: &Value) -> Option<(StatusCode, &'static str)> {
    if inner.private.lock().expect("private").contains(thread) {
        // "Posting a message or Adaptive Card to a private channel isn't
        // supported." <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/channel-and-group-conversations>
        return Some((StatusCode::FORBIDDEN, "BotNotInConversationRoster"));
    }
    if utf16_bytes(body) > MAX_ACTIVITY_UTF16_BYTES {
        return Some((StatusCode::PAYLOAD_TOO_LARGE, "MessageSizeTooBig"));
    }
    let suggested = body["suggestedActions"]["actions"]
        .as_array()
        .map_or(0, Vec::len);
    if suggested > 3 {
        // "The bot can parse up to three actions. Even if you include more
        // than three actions, Teams displays only the first three."
        // <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/suggested-actions>
        return Some((StatusCode::BAD_REQUEST, "BadArgument"));
    }
    None
}

/// Whether one more post into `thread` at `now` stays within every window
/// of [`THREAD_LIMITS`] (counting accepted posts).
fn within_rate_limit(inner: &Inner, thread: &str, now: Instant) -> bool {
    let mut arrivals = inner.arrivals.lock().expect("arrivals");
    let list = arrivals.entry(thread.to_string()).or_default();
    while list
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
    {
        list.pop_front();
    }
    THREAD_LIMITS.iter().all(|(window, limit)| {
        list.iter()
            .filter(|t| now.duration_since(**t) < *window)
            .count()
            < *limit
    })
}

async fn handle(
    inner: Arc<Inner>,
    conversation: String,
    reply_to: Option<String>,
    headers: HeaderMap,
    body: Value,
) -> Response {
    let arrived = Instant::now();
    let thread = thread_of(&conversation).to_string();
    // "In addition to error code 429, error codes 412, 502, and 504 must
    // also be retried" <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit>:
    // the connector answers 412 to an operation on a conversation that
    // another operation is still changing.
    let concurrent = {
        let mut in_flight = inner.in_flight.lock().expect("in flight");
        let n = in_flight.entry(thread.clone()).or_default();
        *n += 1;
        *n > 1
    };
    let response = if concurrent {
        record(&inner, conversation, reply_to, &headers, body, 412);
        error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "Another operation on this conversation is in progress",
        )
    } else {
        wait_while_held(&inner, &conversation, &body).await;
        respond(
            &inner,
            &thread,
            arrived,
            conversation,
            reply_to,
            &headers,
            body,
        )
    };
    if let Some(n) = inner.in_flight.lock().expect("in flight").get_mut(&thread) {
        *n = n.saturating_sub(1);
    }
    response
}

fn respond(
    inner: &Inner,
    thread: &str,
    arrived: Instant,
    conversation: String,
    reply_to: Option<String>,
    headers: &HeaderMap,
    body: Value,
) -> Response {
    if let Some((status, code)) = refusal(inner, thread, &body) {
        record(
            inner,
            conversation,
            reply_to,
            headers,
            body,
            status.as_u16(),
        );
        return error(status, code, "refused by the connector");
    }
    if !within_rate_limit(inner, thread, arrived) {
        record(inner, conversation, reply_to, headers, body, 429);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"error": {"code": "Throttled", "message": "Too many requests"}})),
        )
            .into_response();
    }
    // Only message activities are throttled or scripted on purpose (typing
    // indicators are best effort and never retried).
    let message = body["type"] == "message";
    let scripted = if message {
        inner
            .scripts
            .lock()
            .expect("scripts")
            .get_mut(&conversation)
            .and_then(VecDeque::pop_front)
            .filter(|s| *s != 200)
    } else {
        None
    };
    let throttled = if message && scripted.is_none() {
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
        && scripted.is_none()
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
    if let Some(status) = scripted {
        record(inner, conversation, reply_to, headers, body, status);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, "Scripted", "scripted failure");
    }
    if let Some(seconds) = throttled {
        record(inner, conversation, reply_to, headers, body, 429);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", format!("{seconds}"))],
            Json(json!({"error": {"code": "Throttled", "message": "Too many requests"}})),
        )
            .into_response();
    }
    if failing {
        record(inner, conversation, reply_to, headers, body, 500);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceError",
            "Internal error",
        );
    }
    inner
        .arrivals
        .lock()
        .expect("arrivals")
        .entry(thread.to_string())
        .or_default()
        .push_back(arrived);
    if message {
        *inner
            .counts
            .lock()
            .expect("counts")
            .entry(conversation.clone())
            .or_default() += 1;
    }
    let id = record(inner, conversation, reply_to, headers, body, 200);
    Json(json!({ "id": id })).into_response()
}

/// Records a post with the status it got; returns its activity id.
fn record(
    inner: &Inner,
    conversation: String,
    reply_to: Option<String>,
    headers: &HeaderMap,
    body: Value,
    status: u16,
) -> String {
    let authorization = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let id = {
        let mut ids = inner.ids.lock().expect("ids");
        *ids += 1;
        format!("activity-{}", *ids)
    };
    inner.posted.lock().expect("posted").push(Posted {
        id: id.clone(),
        conversation,
        reply_to,
        body,
        authorization,
        status,
    });
    inner.posted_tx.send_modify(|n| *n += 1);
    id
}

async fn activity(
    State(inner): State<Arc<Inner>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    handle(inner, conversation, None, headers, body).await
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
    handle(inner, conversation, Some(reply), headers, body).await
}
