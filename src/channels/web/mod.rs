//! The web chat (issue 9): a page at `/chat`, an embeddable
//! `/chat/widget.js`, and a WebSocket at `/chat/ws`, served by `serve` on
//! the same HTTP listener as `/healthz` and `/api/messages`.
//!
//! Like every channel it only translates: a socket's `text` and `choice`
//! become [`crate::desk::Inbound`]s at the person's address (their
//! anonymous session id), and replies leave through the outbox
//! ([`deliver::WebDeliver`]).
//!
//! **Delivery and replay.** A `Replies` row is "delivered" when it is
//! pushed to every socket open for the person, or at once when none is
//! open: the row stays in the store either way, and a page replays every
//! row after its cursor (the last outbox row id it showed) when it
//! (re)connects. So a reply written while the person is away, or while a
//! socket drops mid-send, is shown when they return, and a socket never
//! sends a row twice (it sends ids in increasing order only; the page
//! dedupes by id too).
//!
//! **Session.** The session id is kept in a signed, HttpOnly,
//! SameSite=Lax cookie (`Secure` unless the page was asked for on
//! localhost). The key comes from the environment variable named by
//! `web.cookie_key_env`; without it a random key is made at start and
//! sessions end on restart (a warning says so). A **resume link**
//! (`/chat#resume=TOKEN`) carries the session id signed with the same key;
//! the page posts it to `/chat/resume`, which sets the cookie, so a second
//! device continues the same conversation.
//!
//! **Security.** The WebSocket handshake is refused (403) for an `Origin`
//! that is neither the page's own nor in `web.allowed_origins`; pages carry
//! a Content-Security-Policy without `unsafe-inline` (the page's words come
//! as a JSON data block, which is not executed) and `frame-ancestors` from
//! `web.frame_ancestors`; open sockets per client address and messages per
//! session and minute are limited; an idle socket is closed; a request
//! head must arrive in time on the whole listener ([`head_timeout`]);
//! everything anybody writes is shown with `textContent`, never as HTML.
//!
//! **Agents.** A web conversation's handoff rows (card or staff thread,
//! relays, notes, transcript) go to the agents' side of `desk.agents`
//! (Teams or Discord); `serve` routes them ([`deliver`]).

pub mod deliver;
pub mod head_timeout;
pub mod socket;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::desk::Desk;
use crate::i18n::registry;

/// The channel name of web conversations and their outbox rows.
pub const CHANNEL: &str = "web";

/// The session cookie's name.
pub const COOKIE: &str = "madoguchi_session";

const PAGE_HTML: &str = include_str!("assets/chat.html");
const APP_JS: &str = include_str!("assets/chat.js");
const APP_CSS: &str = include_str!("assets/chat.css");
const WIDGET_JS: &str = include_str!("assets/widget.js");

/// The `[web]` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the web chat (`/chat`, `/chat/widget.js`, `/chat/ws`).
    pub enabled: bool,
    /// Where the HTTP listener binds when Teams is off (with Teams on,
    /// everything is served on `teams.listen`).
    pub listen: String,
    /// Origins (`https://help.example.ac.jp`) whose pages may open the
    /// chat's WebSocket besides the chat's own origin.
    pub allowed_origins: Vec<String>,
    /// Origins whose pages may embed the chat in an iframe (the widget),
    /// besides the chat's own origin (`frame-ancestors`).
    pub frame_ancestors: Vec<String>,
    /// Environment variable holding the cookie and resume-link key (at
    /// least 32 characters).
    pub cookie_key_env: String,
    /// Largest WebSocket message taken from a page, in bytes.
    pub max_message_bytes: usize,
    /// A socket with no message from its page for this long is closed
    /// (the page reconnects when it is used again).
    pub idle_timeout_seconds: u64,
    /// Open sockets per client address.
    pub max_sockets_per_ip: usize,
    /// Messages a session may send per minute; more are refused politely.
    pub max_messages_per_minute: u32,
    /// WebSocket handshakes per client address and minute; more get 429.
    pub max_connects_per_minute: u32,
    /// Seconds a client may take to send a request's head on the HTTP
    /// listener ([`head_timeout`]), a request may take (408 after), and a
    /// page to send its `hello` after its socket opened.
    pub handshake_timeout_seconds: u64,
    /// Take the client address from `X-Forwarded-For` (set only behind a
    /// reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Deprecated: use `desk.agents`, which applies to every channel.
    /// Still read for web conversations only (`"teams"` or `"discord"`);
    /// it may not contradict `desk.agents`.
    pub agents: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: "127.0.0.1:3978".into(),
            allowed_origins: Vec::new(),
            frame_ancestors: Vec::new(),
            cookie_key_env: "MADOGUCHI_WEB_COOKIE_KEY".into(),
            max_message_bytes: 8 * 1024,
            idle_timeout_seconds: 600,
            max_sockets_per_ip: 20,
            max_messages_per_minute: 30,
            max_connects_per_minute: 60,
            handshake_timeout_seconds: 10,
            trust_forwarded_for: false,
            agents: String::new(),
        }
    }
}

/// The topic instances announce web sessions on: a session whose row was
/// delivered (by whichever instance), so an instance where that session has
/// a socket open sends it at once ([`Hub::catch_up`]).
pub const WEB_TOPIC: &str = "madoguchi_web";

/// A push that is not sent to the page: "read what you have not sent".
pub const CATCH_UP: &str = "catch_up";

/// What a socket is sent: one JSON message of the protocol.
pub type Push = Value;

/// The open sockets of each session: (socket id, its queue).
type Sockets = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Push>)>>;

/// Sockets open per session (the person's address), for pushing rows.
#[derive(Default)]
pub struct Hub {
    next: std::sync::atomic::AtomicU64,
    sockets: Mutex<Sockets>,
}

impl Hub {
    fn sockets(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a socket of `session`; returns its id and its queue.
    pub fn join(&self, session: &str) -> (u64, mpsc::UnboundedReceiver<Push>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.sockets()
            .entry(session.to_string())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    pub fn leave(&self, session: &str, id: u64) {
        let mut sockets = self.sockets();
        if let Some(list) = sockets.get_mut(session) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                sockets.remove(session);
            }
        }
    }

    /// Pushes `message` to every open socket of `session`; how many took it.
    pub fn push(&self, session: &str, message: &Push) -> usize {
        let mut sockets = self.sockets();
        let Some(list) = sockets.get_mut(session) else {
            return 0;
        };
        list.retain(|(_, tx)| tx.send(message.clone()).is_ok());
        list.len()
    }

    /// Tells `session`'s open sockets to send what they have not sent yet
    /// (rows another instance delivered).
    pub fn catch_up(&self, session: &str) {
        self.push(session, &json!({ "type": CATCH_UP }));
    }

    /// [`Hub::catch_up`] for every open socket.
    pub fn catch_up_all(&self) {
        let mut sockets = self.sockets();
        for list in sockets.values_mut() {
            list.retain(|(_, tx)| tx.send(json!({ "type": CATCH_UP })).is_ok());
        }
        sockets.retain(|_, list| !list.is_empty());
    }

    /// Sockets open now (all sessions).
    pub fn open(&self) -> usize {
        self.sockets().values().map(Vec::len).sum()
    }
}

/// Everything the web chat's handlers share.
pub struct WebContext {
    pub desk: Desk,
    pub clock: Arc<dyn Clock>,
    pub config: WebConfig,
    key: Key,
    pub hub: Hub,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Held while a session without a conversation opens one, so two tabs
    /// of a new session opening at once start one conversation, not two.
    pub(crate) opening: tokio::sync::Mutex<()>,
    /// Messages per session (governor, keyed).
    messages: governor::DefaultKeyedRateLimiter<String>,
    /// Handshakes per client address (governor, keyed).
    connects: governor::DefaultKeyedRateLimiter<IpAddr>,
}

/// A per-minute quota; the config was checked to be positive.
fn per_minute(count: u32) -> governor::Quota {
    governor::Quota::per_minute(
        std::num::NonZeroU32::new(count.max(1)).unwrap_or(std::num::NonZeroU32::MIN),
    )
}

impl WebContext {
    /// Reads the key from the environment (or makes one, with a warning).
    pub fn new(
        desk: Desk,
        clock: Arc<dyn Clock>,
        config: WebConfig,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> anyhow::Result<WebContext> {
        let key = match env(&config.cookie_key_env) {
            Some(secret) if secret.chars().count() >= 32 => {
                use sha2::Digest;
                Key::from(sha2::Sha512::digest(secret.as_bytes()).as_slice())
            }
            Some(_) => anyhow::bail!(
                "web: the environment variable {} (web.cookie_key_env) must hold at least 32 characters (for example the output of `openssl rand -base64 48`)",
                config.cookie_key_env
            ),
            None => {
                tracing::warn!(
                    variable = %config.cookie_key_env,
                    "web: no cookie key in the environment; made a random one, so web chat sessions and resume links end when serve restarts (set the variable named by web.cookie_key_env to keep them)"
                );
                Key::generate()
            }
        };
        for (name, value, min) in [
            (
                "web.max_message_bytes",
                config.max_message_bytes as u64,
                256,
            ),
            ("web.idle_timeout_seconds", config.idle_timeout_seconds, 1),
            (
                "web.max_sockets_per_ip",
                config.max_sockets_per_ip as u64,
                1,
            ),
            (
                "web.max_messages_per_minute",
                config.max_messages_per_minute.into(),
                1,
            ),
            (
                "web.max_connects_per_minute",
                config.max_connects_per_minute.into(),
                1,
            ),
            (
                "web.handshake_timeout_seconds",
                config.handshake_timeout_seconds,
                1,
            ),
        ] {
            if value < min {
                anyhow::bail!("{name} must be at least {min} (is {value})");
            }
        }
        Ok(WebContext {
            desk,
            clock,
            key,
            hub: Hub::default(),
            per_ip: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            messages: governor::RateLimiter::keyed(per_minute(config.max_messages_per_minute)),
            connects: governor::RateLimiter::keyed(per_minute(config.max_connects_per_minute)),
            config,
        })
    }

    /// A resume token for `session`: the session id and its HMAC-SHA256
    /// under the cookie key, base64url, joined by a dot.
    pub fn resume_token(&self, session: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}",
            b64.encode(session.as_bytes()),
            b64.encode(self.mac(session))
        )
    }

    /// The session a resume token names, when its signature holds.
    pub fn session_of_token(&self, token: &str) -> Option<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (session, tag) = token.trim().split_once('.')?;
        let session = String::from_utf8(b64.decode(session).ok()?).ok()?;
        let tag = b64.decode(tag).ok()?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.key.signing()).ok()?;
        mac.update(b"resume:");
        mac.update(session.as_bytes());
        mac.verify_slice(&tag).ok()?;
        valid_session(&session).then_some(session)
    }

    fn mac(&self, session: &str) -> Vec<u8> {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.key.signing())
            .expect("HMAC takes any key length");
        mac.update(b"resume:");
        mac.update(session.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Counts a socket of `ip`; false when it has too many open.
    fn open_socket(&self, ip: IpAddr) -> bool {
        let mut per_ip = self
            .per_ip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = per_ip.entry(ip).or_default();
        if *open >= self.config.max_sockets_per_ip {
            return false;
        }
        *open += 1;
        true
    }

    fn close_socket(&self, ip: IpAddr) {
        let mut per_ip = self
            .per_ip
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = per_ip.get_mut(&ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Counts one message of `session`; false when over the minute's limit.
    fn allow_message(&self, session: &str) -> bool {
        if self.messages.len() > 10_000 {
            self.messages.retain_recent();
        }
        self.messages.check_key(&session.to_string()).is_ok()
    }

    /// Counts one handshake of `ip`; false when over the minute's limit.
    fn allow_connect(&self, ip: IpAddr) -> bool {
        if self.connects.len() > 10_000 {
            self.connects.retain_recent();
        }
        self.connects.check_key(&ip).is_ok()
    }

    /// The session of a request's cookie, or a new one (with the cookie
    /// to set).
    fn session(&self, headers: &HeaderMap) -> (String, SignedCookieJar) {
        let jar = SignedCookieJar::from_headers(headers, self.key.clone());
        match jar.get(COOKIE).map(|c| c.value().to_string()) {
            Some(session) if valid_session(&session) => (session, jar),
            _ => {
                let session = uuid::Uuid::new_v4().simple().to_string();
                let jar = jar.add(session_cookie(&session, headers));
                (session, jar)
            }
        }
    }
}

/// Session ids are 32 lower-case hex digits.
fn valid_session(session: &str) -> bool {
    session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the request names a loopback host (the cookie may then lack
/// `Secure`, since such pages are served over plain HTTP).
fn is_localhost(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.ends_with(".localhost")
}

fn session_cookie(session: &str, headers: &HeaderMap) -> Cookie<'static> {
    // Kept 30 days (Max-Age parsed, so no time crate is needed here).
    let mut cookie = Cookie::parse(format!("{COOKIE}={session}; Max-Age=2592000"))
        .unwrap_or_else(|_| Cookie::new(COOKIE, session.to_string()));
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/chat");
    cookie.set_secure(!is_localhost(headers));
    cookie
}

/// The web chat's routes; merged into the service's router.
pub fn router(ctx: Arc<WebContext>) -> Router {
    Router::new()
        .route("/chat", get(page))
        .route("/chat/", get(page))
        .route(
            "/chat/chat.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/chat/chat.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/chat/widget.js",
            get(|| asset(WIDGET_JS, "text/javascript; charset=utf-8")),
        )
        .route("/chat/resume", post(resume))
        .route("/chat/ws", get(socket::upgrade))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            security_headers,
        ))
        // Every request (a WebSocket's until its upgrade) answers in time.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(ctx.config.handshake_timeout_seconds.max(1)),
        ))
        .with_state(ctx)
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The Content-Security-Policy of every web chat response.
pub fn content_security_policy(config: &WebConfig) -> String {
    let mut ancestors = vec!["'self'".to_string()];
    ancestors.extend(
        config
            .frame_ancestors
            .iter()
            .filter(|o| !o.trim().is_empty() && !o.contains([';', ',', '\'', ' ']))
            .cloned(),
    );
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        ancestors.join(" ")
    )
}

async fn security_headers(
    State(ctx): State<Arc<WebContext>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&ctx.config)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The first language of an `Accept-Language` header (`ja` when none).
fn accept_language(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|tag| !tag.is_empty() && tag != "*")
        .unwrap_or_default()
}

/// The words the page shows, by message id, in `locale`.
fn page_texts(desk: &Desk, locale: &str) -> serde_json::Map<String, Value> {
    registry::ALL
        .iter()
        .filter(|m| m.id.starts_with("web-"))
        .map(|m| {
            (
                m.id.to_string(),
                Value::String(desk.text(locale, m.id, &[])),
            )
        })
        .collect()
}

/// JSON safe inside a `<script type="application/json">` block.
fn json_for_html(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /chat`: the page, in the conversation's language (else the
/// negotiated one), with the session cookie.
async fn page(State(ctx): State<Arc<WebContext>>, headers: HeaderMap) -> Response {
    let (session, jar) = ctx.session(&headers);
    let locale = ctx
        .desk
        .locale_at(CHANNEL, &session, &accept_language(&headers))
        .await;
    let texts = Value::Object(page_texts(&ctx.desk, &locale));
    let title = texts["web-title"].as_str().unwrap_or_default().to_string();
    let html = PAGE_HTML
        .replace("{{lang}}", &escape_attribute(&locale))
        .replace("{{title}}", &escape_attribute(&title))
        .replace("{{texts}}", &json_for_html(&texts));
    (
        jar,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// `POST /chat/resume` with a resume token as the body: the session
/// becomes the token's (204), or 403 for a token that does not hold.
async fn resume(State(ctx): State<Arc<WebContext>>, headers: HeaderMap, body: String) -> Response {
    if !socket::origin_allowed(&ctx.config, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match ctx.session_of_token(&body) {
        Some(session) => {
            let jar = SignedCookieJar::from_headers(&headers, ctx.key.clone())
                .add(session_cookie(&session, &headers));
            (jar, StatusCode::NO_CONTENT).into_response()
        }
        None => StatusCode::FORBIDDEN.into_response(),
    }
}
