//! A fake Discord for end-to-end tests: an axum server on loopback that the
//! real serenity 0.12 client talks to, speaking Discord's gateway protocol
//! (HELLO, IDENTIFY/READY, heartbeats, RESUME/RESUMED, op 0 dispatches) on
//! `/gateway` and the REST API v10 JSON shapes under `/api/v10`. It keeps a
//! small model of the world (channels, DM channels per user, messages,
//! interactions and their acknowledgement, application commands), answers
//! like Discord does for the routes the bot uses (including Discord's error
//! codes for empty or oversized messages, invalid components, double
//! interaction acknowledgements and unknown messages), echoes the bot's own
//! messages back over the gateway as Discord does, applies the gateway intents
//! the client identified with, and records every REST request and gateway
//! frame so tests can assert on exactly what the bot sent.
//!
//! Point serenity at it with
//! `HttpBuilder::new(token).proxy(fake.proxy_url()).ratelimiter_disabled(true)`
//! (serenity only rewrites `https://discord.com` to the proxy when its
//! ratelimiter is disabled); the gateway URL then comes from `GET /gateway`.
//!
//! Discord's platform rules the fake enforces (each cites its page where it
//! is enforced): the 3-second deadline for the first interaction response
//! and the 15-minute interaction token, where private threads can be
//! created and with which permission, the allowed auto-archive durations,
//! archived threads reopening on a new message (not when locked), DMs to a
//! person who does not accept them (50007), privileged intents that are not
//! enabled in the Developer Portal (close 4014), a revoked token (401 and
//! close 4004), and guild-only commands not existing in DMs.
//!
//! **Time is the fake's own and moves only when a test says so**
//! ([`FakeDiscord::advance`]): an interaction is stamped with the fake's
//! time when it is dispatched, and its callback is refused with 10062 when
//! it arrives more than 3 s of *fake* time later. A test makes the bot
//! "slow" deterministically by holding a route ([`FakeDiscord::hold_next`]),
//! moving the clock while it is held, then releasing it; nothing sleeps.
//!
//! Documented simplifications: any channel id the fake has never seen is
//! taken to be a text channel in [`FakeDiscord::GUILD_ID`]; RESUME with the
//! current session id is answered with RESUMED (events the fake echoed while
//! no client was connected are not replayed), any other RESUME with op 9
//! (invalid session, not resumable) so serenity identifies again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

/// How long the `wait_*` helpers wait before failing the test.
use super::wait::TIMEOUT;
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// `attachment_size_limit` of interactions (25 MiB, the default tier).
const ATTACHMENT_SIZE_LIMIT: u64 = 26_214_400;
/// VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY |
/// CREATE_PUBLIC_THREADS | CREATE_PRIVATE_THREADS | SEND_MESSAGES_IN_THREADS.
const BOT_PERMISSIONS: &str = "377957207040";
const MEMBER_PERMISSIONS: &str = "377957207040";
const JOINED_AT: &str = "2024-04-01T00:00:00.000000+00:00";

// Gateway intent bits (https://discord.com/developers/docs/events/gateway#gateway-intents).
const INTENT_GUILDS: u64 = 1 << 0;
const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
const INTENT_DIRECT_MESSAGES: u64 = 1 << 12;
const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;
const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
const INTENT_GUILD_PRESENCES: u64 = 1 << 8;
/// The privileged intents: each must be switched on in the Developer Portal
/// (https://discord.com/developers/docs/events/gateway#privileged-intents).
const PRIVILEGED_INTENTS: u64 =
    INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT;

/// Permission bits (https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags).
pub const PERM_CREATE_PUBLIC_THREADS: u64 = 1 << 35;
pub const PERM_CREATE_PRIVATE_THREADS: u64 = 1 << 36;

/// Channel types (https://discord.com/developers/docs/resources/channel#channel-object-channel-types).
pub const GUILD_TEXT: u64 = 0;
pub const GUILD_ANNOUNCEMENT: u64 = 5;
pub const PUBLIC_THREAD: u64 = 11;
pub const PRIVATE_THREAD: u64 = 12;
pub const GUILD_FORUM: u64 = 15;

/// The first response to an interaction must come within 3 s; the token
/// then stays valid for follow-ups and edits for 15 minutes
/// (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction).
const INTERACTION_DEADLINE_MS: u64 = 3_000;
const INTERACTION_TOKEN_MS: u64 = 15 * 60 * 1000;

/// One REST request the fake received, with the status it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path relative to `/api/v10`, e.g. `/channels/123/messages`.
    pub path: String,
    /// Raw query string without `?` (`wait=true`), empty when absent.
    pub query: String,
    /// The JSON body (`Null` when empty; for multipart requests the
    /// `payload_json` part plus `"_files": <count>`).
    pub body: Value,
    /// The HTTP status the fake answered with (429 for `rate_limit_next`).
    pub status: u16,
}

impl Recorded {
    /// Whether the fake answered with a 2xx status.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `method` equals (case-insensitively) and the path ends with `suffix`.
    pub fn is(&self, method: &str, suffix: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path.ends_with(suffix)
    }
}

/// One gateway frame, as sent by the fake (`from_client == false`) or
/// received from the client.
#[derive(Clone, Debug)]
pub struct GatewayFrame {
    pub from_client: bool,
    /// Which websocket connection (1, 2, ... in connection order).
    pub connection: u64,
    pub payload: Value,
}

/// Handle to a running fake Discord (cheap to clone).
#[derive(Clone)]
pub struct FakeDiscord {
    inner: Arc<Inner>,
}

struct Inner {
    port: u16,
    ids: AtomicU64,
    requests: Mutex<Vec<Recorded>>,
    requests_tx: watch::Sender<usize>,
    rate_limits: Mutex<Vec<(String, String, f64)>>,
    /// (method, path suffix, how many more) answered with 500.
    failures: Mutex<Vec<(String, String, u32)>>,
    gateway: Mutex<Gateway>,
    ready_tx: watch::Sender<ReadyState>,
    world: Mutex<World>,
    /// The fake's own clock in milliseconds; moves only by `advance`.
    now_ms: AtomicU64,
    /// Requests to hold until the test releases them.
    holds: Mutex<Vec<HoldEntry>>,
    /// Privileged intents switched on in the "Developer Portal".
    portal_intents: AtomicU64,
    /// Tokens Discord no longer accepts (reset in the portal).
    revoked_tokens: Mutex<Vec<String>>,
}

struct HoldEntry {
    method: String,
    suffix: String,
    reached: watch::Sender<bool>,
    release: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// A request the fake holds (see [`FakeDiscord::hold_next`]).
pub struct Hold {
    what: String,
    reached: watch::Receiver<bool>,
    release: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hold {
    /// Resolves once the held request has arrived (and is waiting).
    pub async fn reached(&mut self) {
        let waited = tokio::time::timeout(TIMEOUT, self.reached.wait_for(|r| *r)).await;
        if !matches!(waited, Ok(Ok(_))) {
            panic!(
                "fake discord: the held request {} never arrived within {TIMEOUT:?}",
                self.what
            );
        }
    }

    /// Lets the held request through.
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

#[derive(Clone, Copy, Default)]
struct ReadyState {
    /// The connection whose session is identified or resumed, if any.
    conn: Option<u64>,
    /// How many READYs the fake has sent.
    identified: u64,
}

#[derive(Default)]
struct Gateway {
    current: Option<Conn>,
    connections: u64,
    session_id: Option<String>,
    sessions: u64,
    seq: u64,
    intents: u64,
    log: Vec<GatewayFrame>,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    ready: bool,
}

enum Out {
    Frame(Value),
    Close(u16, &'static str),
}

#[derive(Default)]
struct World {
    /// People whose privacy settings refuse DMs from the bot.
    dm_blocked: Vec<u64>,
    /// Permissions the bot lacks, per channel.
    denied_permissions: HashMap<u64, u64>,
    channels: HashMap<u64, Value>,
    dm_by_recipient: HashMap<u64, u64>,
    users: HashMap<u64, Value>,
    messages: HashMap<u64, Value>,
    interactions: HashMap<u64, Interaction>,
    commands: Vec<Value>,
}

struct Interaction {
    token: String,
    payload: Value,
    acknowledged: bool,
    /// The fake's time when it was dispatched.
    created_ms: u64,
    /// The message `@original` refers to.
    original: Option<u64>,
}

/// What a route answers, plus gateway events it causes.
struct Reply {
    status: u16,
    body: Option<Value>,
    events: Vec<(&'static str, Value)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            events: Vec::new(),
        }
    }
    fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }
    fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            events: Vec::new(),
        }
    }
    fn error(status: u16, code: u64, message: &str) -> Reply {
        Reply::json(status, json!({ "message": message, "code": code }))
    }
    fn with(mut self, event: &'static str, data: Value) -> Reply {
        self.events.push((event, data));
        self
    }
}

impl FakeDiscord {
    /// The bot's user id (in READY, `GET /users/@me`, authored messages).
    pub const BOT_ID: u64 = 1_200_000_000_000_000_001;
    /// The application id (deliberately different from `BOT_ID`, as for
    /// older applications, so the two cannot be confused unnoticed).
    pub const APP_ID: u64 = 1_200_000_000_000_000_002;
    /// The guild assumed for channels the fake has not seen.
    pub const GUILD_ID: u64 = 1_200_000_000_000_000_003;
    pub const BOT_NAME: &'static str = "madoguchi";

    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake discord");
        let port = listener.local_addr().expect("local addr").port();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let inner = Arc::new(Inner {
            port,
            ids: AtomicU64::new((now_ms - DISCORD_EPOCH_MS) << 22),
            requests: Mutex::new(Vec::new()),
            requests_tx: watch::channel(0).0,
            rate_limits: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            gateway: Mutex::new(Gateway::default()),
            ready_tx: watch::channel(ReadyState::default()).0,
            world: Mutex::new(World::default()),
            now_ms: AtomicU64::new(0),
            holds: Mutex::new(Vec::new()),
            portal_intents: AtomicU64::new(PRIVILEGED_INTENTS),
            revoked_tokens: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/gateway", get(gateway_upgrade))
            .fallback(rest)
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake discord serve");
        });
        FakeDiscord { inner }
    }

    /// `http://127.0.0.1:PORT`, for `HttpBuilder::proxy`.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// The websocket URL `GET /gateway` hands out.
    pub fn gateway_url(&self) -> String {
        self.inner.gateway_url()
    }

    /// A fresh snowflake (timestamp-based, strictly increasing).
    pub fn next_id(&self) -> u64 {
        self.inner.next_id()
    }

    /// Resolves once a client has identified (or resumed) and been sent READY
    /// (or RESUMED) on the current connection. Panics after 10 s.
    pub async fn wait_ready(&self) {
        self.wait_ready_after(0).await;
    }

    /// Like `wait_ready`, but also requires that the fake has sent at least
    /// `identified` READYs in total (e.g. 2 for a restarted client, which
    /// must not be mistaken for the previous one's session).
    pub async fn wait_identified(&self, identified: u64) {
        self.wait_ready_after(identified).await;
    }

    async fn wait_ready_after(&self, identified: u64) {
        let mut rx = self.inner.ready_tx.subscribe();
        let waited = tokio::time::timeout(
            TIMEOUT,
            rx.wait_for(|r| r.conn.is_some() && r.identified >= identified),
        )
        .await;
        if waited.is_err() {
            panic!(
                "fake discord: no client identified (READY #{identified}) within {TIMEOUT:?}; gateway frames: {:#?}\nrequests:\n{}",
                self.gateway_log(),
                describe(&self.requests())
            );
        }
    }

    /// Sends op 0 `event` with the next sequence number to the connected,
    /// identified client (waiting for one, like `wait_ready`). The fake also
    /// learns from the payload: channels, users, messages and interactions
    /// (which later callbacks and follow-ups refer to). For INTERACTION_CREATE
    /// of a slash command whose name was registered, `data.id` is set to the
    /// registered command's id, as Discord would. Events the client's intents
    /// exclude are not delivered (noted on stderr), as on Discord; guild
    /// messages lose their content without MESSAGE_CONTENT.
    pub async fn dispatch(&self, event: &str, mut data: Value) {
        if !self.inner.learn(event, &mut data) {
            return;
        }
        self.wait_ready().await;
        self.inner.send_dispatch(event, data);
    }

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.requests).clone()
    }

    /// Every gateway frame so far (both directions).
    pub fn gateway_log(&self) -> Vec<GatewayFrame> {
        lock(&self.inner.gateway).log.clone()
    }

    /// Gateway payloads the client sent with opcode `op` (2 = IDENTIFY,
    /// 6 = RESUME, 1 = heartbeat, 3 = presence update).
    pub fn client_frames(&self, op: u64) -> Vec<Value> {
        self.gateway_log()
            .into_iter()
            .filter(|f| f.from_client && f.payload["op"] == op)
            .map(|f| f.payload)
            .collect()
    }

    /// The fake's current copy of a message (as `GET` would return it).
    pub fn message(&self, id: u64) -> Option<Value> {
        lock(&self.inner.world).messages.get(&id).cloned()
    }

    /// The fake's copy of the last message the bot posted in `channel` with
    /// exactly `content`, in its gateway form (what a client that missed
    /// the echo — posted before its session was ready — would fetch).
    pub fn stored_bot_message(&self, channel: u64, content: &str) -> Option<Value> {
        let mut world = lock(&self.inner.world);
        let found = world
            .messages
            .values()
            .filter(|m| {
                m["channel_id"] == id_str(channel)
                    && m["author"]["id"] == id_str(FakeDiscord::BOT_ID)
                    && m["content"] == content
            })
            .max_by_key(|m| snowflake(&m["id"]).unwrap_or(0))
            .cloned()?;
        Some(gateway_message(&mut world, &found))
    }

    /// The fake's current copy of a channel.
    pub fn channel(&self, id: u64) -> Option<Value> {
        lock(&self.inner.world).channels.get(&id).cloned()
    }

    /// Awaits the first request (already recorded or future) matching `pred`.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        self.wait_for_count(what, 1, pred)
            .await
            .into_iter()
            .next()
            .expect("one request")
    }

    /// Awaits until `n` requests match `pred`; returns the first `n`.
    pub async fn wait_for_count(
        &self,
        what: &str,
        n: usize,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Vec<Recorded> {
        let mut rx = self.inner.requests_tx.subscribe();
        let found = super::wait::wait_until(&mut rx, || {
            let matching: Vec<Recorded> = lock(&self.inner.requests)
                .iter()
                .filter(|r| pred(r))
                .take(n)
                .cloned()
                .collect();
            (matching.len() == n).then_some(matching)
        })
        .await;
        match found {
            Ok(found) => found,
            Err(_) => panic!(
                "fake discord: timed out after {TIMEOUT:?} waiting for {n} x {what}; recorded requests:\n{}",
                describe(&self.requests())
            ),
        }
    }

    /// The next request with this method whose path ends with `path_suffix`
    /// gets a real 429 (per-route, not global) instead of being handled. It
    /// is recorded with `status == 429`.
    pub fn rate_limit_next(&self, method: &str, path_suffix: &str, retry_after_secs: f64) {
        lock(&self.inner.rate_limits).push((
            method.to_ascii_uppercase(),
            path_suffix.to_string(),
            retry_after_secs,
        ));
    }

    /// The next `n` requests with this method whose path ends with
    /// `path_suffix` get Discord's 500 (a transient server error).
    pub fn fail_next(&self, method: &str, path_suffix: &str, n: u32) {
        lock(&self.inner.failures).push((method.to_ascii_uppercase(), path_suffix.to_string(), n));
    }

    /// Moves the fake's clock (it never moves by itself): interactions
    /// dispatched before are now `by` older.
    pub fn advance(&self, by: std::time::Duration) {
        self.inner
            .now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next request with this method whose path ends with
    /// `path_suffix` waits, before it is handled, until the returned
    /// [`Hold`] is released: a slow route, without sleeping.
    pub fn hold_next(&self, method: &str, path_suffix: &str) -> Hold {
        let (reached_tx, reached) = watch::channel(false);
        let (release, release_rx) = tokio::sync::oneshot::channel();
        lock(&self.inner.holds).push(HoldEntry {
            method: method.to_ascii_uppercase(),
            suffix: path_suffix.to_string(),
            reached: reached_tx,
            release: Some(release_rx),
        });
        Hold {
            what: format!("{method} …{path_suffix}"),
            reached,
            release: Some(release),
        }
    }

    /// Makes `id` a guild channel of `kind` (text, announcement, forum, or
    /// a thread under `parent`).
    pub fn add_channel(&self, id: u64, kind: u64, parent: Option<u64>) {
        let mut channel = text_channel(id, FakeDiscord::GUILD_ID);
        channel["type"] = json!(kind);
        if let Some(parent) = parent {
            channel["parent_id"] = id_str(parent);
            let now = now_timestamp();
            channel["thread_metadata"] = json!({
                "archived": false,
                "auto_archive_duration": 4320,
                "archive_timestamp": now,
                "locked": false,
                "create_timestamp": now,
            });
        }
        lock(&self.inner.world).channels.insert(id, channel);
    }

    /// The bot lacks `permissions` in `channel` (a server admin's setting).
    pub fn deny_bot_permissions(&self, channel: u64, permissions: u64) {
        *lock(&self.inner.world)
            .denied_permissions
            .entry(channel)
            .or_default() |= permissions;
    }

    /// Archives a thread, as Discord does after `auto_archive_duration`
    /// minutes without activity.
    pub fn archive_thread(&self, id: u64) {
        let mut world = lock(&self.inner.world);
        if let Some(thread) = world.channels.get_mut(&id) {
            thread["thread_metadata"]["archived"] = json!(true);
        }
    }

    /// The person's privacy settings refuse DMs from the bot.
    pub fn block_dms(&self, user: u64) {
        lock(&self.inner.world).dm_blocked.push(user);
    }

    /// Switches a privileged intent off in the "Developer Portal".
    pub fn disable_privileged_intent(&self, intent: u64) {
        self.inner
            .portal_intents
            .fetch_and(!intent, Ordering::SeqCst);
    }

    /// The Message Content intent bit, for [`Self::disable_privileged_intent`].
    pub const MESSAGE_CONTENT_INTENT: u64 = INTENT_MESSAGE_CONTENT;

    /// Discord stops accepting `token` (it was reset in the portal).
    pub fn revoke_token(&self, token: &str) {
        lock(&self.inner.revoked_tokens).push(token.to_string());
    }

    /// Closes the current websocket with close code 4000 ("unknown error",
    /// reconnect allowed), as Discord does when it drops a session. A running
    /// serenity client reconnects and RESUMEs; a new client identifies.
    /// `wait_ready` waits for that next session.
    pub async fn drop_gateway(&self) {
        let conn = lock(&self.inner.gateway).current.take();
        self.inner.ready_tx.send_modify(|r| r.conn = None);
        if let Some(conn) = conn {
            let _ = conn
                .tx
                .send(Out::Close(4000, "fake discord dropped the session"));
        }
    }
}

/// An agent of the guild, for tests where the person is elsewhere (the
/// web chat) and the agent works in the Discord staff channel.
impl FakeDiscord {
    /// The staff channel of those tests, and the agent role.
    pub const STAFF_CHANNEL: u64 = 1_200_000_000_000_000_009;
    pub const AGENT_ROLE: u64 = 1_200_000_000_000_000_010;
    pub const AGENT: u64 = 1_200_000_000_000_000_011;
    pub const AGENT_NAME: &'static str = "佐藤";

    /// `config` with Discord on against this fake as the desk's agents'
    /// side: staff channel, agent role, quick retries. The service needs
    /// `MADOGUCHI_DISCORD_TOKEN` in its environment.
    pub fn agents_config(
        &self,
        mut config: madoguchi::config::Config,
    ) -> madoguchi::config::Config {
        config.discord.api_proxy = self.proxy_url();
        config.discord.staff_channel_id = Self::STAFF_CHANNEL;
        config.discord.agent_role_id = Self::AGENT_ROLE;
        config.discord.retry_base_ms = 20;
        config.discord.max_attempts = 3;
        config.desk.agents = "discord".into();
        config
    }

    /// A staff thread the bot opened (other than `known` ones), once
    /// something (the summary) is posted there: its id and that message.
    pub async fn new_staff_thread(&self, known: &[u64]) -> (u64, Recorded) {
        let parent = Self::STAFF_CHANNEL.to_string();
        let summary = self
            .wait_for("a summary in a new staff thread", |r| {
                r.method == "POST"
                    && r.path.ends_with("/messages")
                    && r.accepted()
                    && thread_of(r).is_some_and(|thread| {
                        !known.contains(&thread)
                            && self.channel(thread).is_some_and(|c| {
                                c["type"] == PUBLIC_THREAD && c["parent_id"] == parent.as_str()
                            })
                    })
            })
            .await;
        (thread_of(&summary).expect("a channel id"), summary)
    }

    /// The agent (with the agent role) runs slash command `name` in
    /// `channel`; returns the bot's first response to it.
    pub async fn agent_command(&self, channel: u64, name: &str, options: Value) -> Recorded {
        let id = self.next_id();
        let token = format!("tok-{id}");
        self.dispatch(
            "INTERACTION_CREATE",
            command_interaction(
                id,
                &token,
                channel,
                Some(Self::GUILD_ID),
                user(Self::AGENT, Self::AGENT_NAME),
                &[Self::AGENT_ROLE],
                "ja",
                name,
                options,
            ),
        )
        .await;
        self.wait_for("command callback", move |r| {
            r.is("POST", &format!("/interactions/{id}/{token}/callback"))
        })
        .await
    }

    /// The agent writes `content` in `channel`.
    pub async fn agent_says(&self, channel: u64, content: &str) {
        let id = self.next_id();
        self.dispatch(
            "MESSAGE_CREATE",
            guild_message_create(
                id,
                channel,
                Self::GUILD_ID,
                user(Self::AGENT, Self::AGENT_NAME),
                &[Self::AGENT_ROLE],
                content,
            ),
        )
        .await;
    }

    /// The bot's accepted message in `channel` whose content contains
    /// `needle`.
    pub async fn posted_containing(&self, channel: u64, needle: &str) -> Recorded {
        let needle = needle.to_string();
        self.wait_for(&format!("a message with {needle:?}"), move |r| {
            r.is("POST", &format!("/channels/{channel}/messages"))
                && r.accepted()
                && r.body["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(&needle))
        })
        .await
    }
}

/// The channel a `POST /channels/{id}/messages` went to.
pub fn thread_of(r: &Recorded) -> Option<u64> {
    r.path.split('/').nth(2).and_then(|id| id.parse().ok())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn describe(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| {
            let query = if r.query.is_empty() {
                String::new()
            } else {
                format!("?{}", r.query)
            };
            format!("  {} {} {}{} {}", r.status, r.method, r.path, query, r.body)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Payload builders (Discord's real shapes, with every field serenity requires)

fn now_timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn id_str(id: u64) -> Value {
    Value::String(id.to_string())
}

fn id_strs(ids: &[u64]) -> Value {
    Value::Array(ids.iter().map(|&id| id_str(id)).collect())
}

/// A Discord user object (a human; new-style username, discriminator "0").
pub fn user(id: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "bot": false,
        "public_flags": 0,
        "flags": 0,
        "banner": null,
        "accent_color": null,
        "avatar_decoration_data": null,
    })
}

/// The bot's own user object.
pub fn bot_user() -> Value {
    json!({
        "id": FakeDiscord::BOT_ID.to_string(),
        "username": FakeDiscord::BOT_NAME,
        "discriminator": "4321",
        "global_name": null,
        "avatar": null,
        "bot": true,
        "public_flags": 0,
        "flags": 0,
        "verified": true,
        "mfa_enabled": false,
        "email": null,
        "locale": "en-US",
        "banner": null,
        "accent_color": null,
        "avatar_decoration_data": null,
    })
}

fn member_without_user(roles: &[u64]) -> Value {
    json!({
        "roles": id_strs(roles),
        "nick": null,
        "avatar": null,
        "banner": null,
        "joined_at": JOINED_AT,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "unusual_dm_activity_until": null,
    })
}

/// A guild member object (as in interactions: with `user` and `permissions`).
pub fn member(user: Value, roles: &[u64]) -> Value {
    let mut m = member_without_user(roles);
    m["user"] = user;
    m["permissions"] = json!(MEMBER_PERMISSIONS);
    m
}

/// A message object as REST returns it (no `guild_id`, no `member`).
pub fn message(message_id: u64, channel_id: u64, author: Value, content: &str) -> Value {
    json!({
        "id": message_id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": content,
        "timestamp": now_timestamp(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": [],
    })
}

/// MESSAGE_CREATE data of a direct message (no `guild_id`).
pub fn dm_message_create(message_id: u64, channel_id: u64, author: Value, content: &str) -> Value {
    message(message_id, channel_id, author, content)
}

/// MESSAGE_CREATE data of a guild message, with the author's partial member.
pub fn guild_message_create(
    message_id: u64,
    channel_id: u64,
    guild_id: u64,
    author: Value,
    member_roles: &[u64],
    content: &str,
) -> Value {
    let mut m = message(message_id, channel_id, author, content);
    m["guild_id"] = id_str(guild_id);
    m["member"] = member_without_user(member_roles);
    m
}

#[allow(clippy::too_many_arguments)]
fn interaction_envelope(
    kind: u8,
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
    user: Value,
    member_roles: &[u64],
    locale: &str,
) -> Value {
    let mut v = json!({
        "id": id.to_string(),
        "application_id": FakeDiscord::APP_ID.to_string(),
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": channel_id.to_string(),
        "app_permissions": BOT_PERMISSIONS,
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    });
    match guild_id {
        Some(guild_id) => {
            v["guild_id"] = id_str(guild_id);
            v["guild_locale"] = json!("en-US");
            v["guild"] = json!({ "id": guild_id.to_string(), "locale": "en-US", "features": [] });
            v["member"] = member(user, member_roles);
            v["context"] = json!(0);
            v["authorizing_integration_owners"] = json!({ "0": guild_id.to_string() });
            v["channel"] = json!({
                "id": channel_id.to_string(),
                "type": 0,
                "guild_id": guild_id.to_string(),
                "name": format!("channel-{channel_id}"),
                "parent_id": null,
                "permissions": MEMBER_PERMISSIONS,
                "flags": 0,
                "nsfw": false,
                "position": 0,
                "rate_limit_per_user": 0,
                "topic": null,
                "last_message_id": null,
            });
        }
        None => {
            v["user"] = user.clone();
            v["context"] = json!(1);
            // Guild-installed app used in the bot's DM: guild id "0".
            v["authorizing_integration_owners"] = json!({ "0": "0" });
            v["channel"] = json!({
                "id": channel_id.to_string(),
                "type": 1,
                "flags": 0,
                "last_message_id": null,
                "recipients": [user],
            });
        }
    }
    v
}

/// INTERACTION_CREATE data of a message component (button, or string select
/// when `values` is given) on `message` (the full message object).
#[allow(clippy::too_many_arguments)]
pub fn component_interaction(
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
    user: Value,
    member_roles: &[u64],
    locale: &str,
    message: Value,
    custom_id: &str,
    values: Option<Vec<String>>,
) -> Value {
    let mut v = interaction_envelope(
        3,
        id,
        token,
        channel_id,
        guild_id,
        user,
        member_roles,
        locale,
    );
    let mut data = json!({ "custom_id": custom_id, "component_type": 2 });
    if let Some(values) = values {
        data["component_type"] = json!(3);
        data["values"] = json!(values);
    }
    v["data"] = data;
    v["message"] = message;
    v
}

/// INTERACTION_CREATE data of a slash (chat input) command; `options` is an
/// array of `{name, type, value}`.
#[allow(clippy::too_many_arguments)]
pub fn command_interaction(
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: Option<u64>,
    user: Value,
    member_roles: &[u64],
    locale: &str,
    name: &str,
    options: Value,
) -> Value {
    let mut v = interaction_envelope(
        2,
        id,
        token,
        channel_id,
        guild_id,
        user,
        member_roles,
        locale,
    );
    let mut data = json!({
        "id": placeholder_command_id(name).to_string(),
        "name": name,
        "type": 1,
        "options": options,
    });
    if let Some(guild_id) = guild_id {
        data["guild_id"] = id_str(guild_id);
    }
    v["data"] = data;
    v
}

/// A stable snowflake-looking id for a command that was never registered.
fn placeholder_command_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (1u64 << 60) | (hash >> 8)
}

// ---------------------------------------------------------------------------
// Validation with Discord's error shapes

/// Discord's "Invalid Form Body" (50035) with one error at a dotted `path`.
fn invalid_form_body(path: &str, code: &str, message: &str) -> Reply {
    let mut errors = json!({ "_errors": [{ "code": code, "message": message }] });
    for key in path.rsplit('.') {
        errors = json!({ key: errors });
    }
    Reply::json(
        400,
        json!({ "message": "Invalid Form Body", "code": 50035, "errors": errors }),
    )
}

fn char_len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn validate_components(components: &Value) -> Result<(), Reply> {
    let Some(rows) = components.as_array() else {
        return Ok(());
    };
    if rows.len() > 5 {
        return Err(invalid_form_body(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut custom_ids = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        if row["type"] != 1 {
            return Err(invalid_form_body(
                &format!("components.{r}.type"),
                "UNION_TYPE_CHOICES",
                "Value of field \"type\" must be one of (1,).",
            ));
        }
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if items.is_empty() || items.len() > 5 {
            return Err(invalid_form_body(
                &format!("components.{r}.components"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            ));
        }
        let selects = items.iter().filter(|c| c["type"] != 2).count();
        if selects > 0 && items.len() > 1 {
            return Err(invalid_form_body(
                &format!("components.{r}.components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            ));
        }
        for (c, item) in items.iter().enumerate() {
            let at = format!("components.{r}.components.{c}");
            let is_link = item["type"] == 2 && item["style"] == 5;
            if is_link {
                if item["url"].is_null() {
                    return Err(invalid_form_body(
                        &format!("{at}.url"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
            } else {
                let id = &item["custom_id"];
                if id.is_null() {
                    return Err(invalid_form_body(
                        &format!("{at}.custom_id"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
                if char_len(id) > 100 {
                    return Err(invalid_form_body(
                        &format!("{at}.custom_id"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ));
                }
                if custom_ids.contains(id) {
                    return Err(invalid_form_body(
                        &format!("{at}.custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                }
                custom_ids.push(id.clone());
            }
            if item["type"] == 2 && char_len(&item["label"]) > 80 {
                return Err(invalid_form_body(
                    &format!("{at}.label"),
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 80 or fewer in length.",
                ));
            }
            if item["type"] == 3 {
                let n = item["options"].as_array().map_or(0, Vec::len);
                if n == 0 || n > 25 {
                    return Err(invalid_form_body(
                        &format!("{at}.options"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 25 in length.",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_embeds(embeds: &Value) -> Result<(), Reply> {
    let Some(embeds) = embeds.as_array() else {
        return Ok(());
    };
    if embeds.len() > 10 {
        return Err(invalid_form_body(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    for (i, e) in embeds.iter().enumerate() {
        if char_len(&e["title"]) > 256 {
            return Err(invalid_form_body(
                &format!("embeds.{i}.title"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 256 or fewer in length.",
            ));
        }
        if char_len(&e["description"]) > 4096 {
            return Err(invalid_form_body(
                &format!("embeds.{i}.description"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 4096 or fewer in length.",
            ));
        }
        if e["fields"].as_array().map_or(0, Vec::len) > 25 {
            return Err(invalid_form_body(
                &format!("embeds.{i}.fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
    }
    Ok(())
}

/// Validates a message create/edit body. `create` also rejects empty messages.
fn validate_message_body(body: &Value, create: bool) -> Result<(), Reply> {
    if char_len(&body["content"]) > 2000 {
        return Err(invalid_form_body(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        ));
    }
    validate_components(&body["components"])?;
    validate_embeds(&body["embeds"])?;
    if create {
        let non_empty = |k: &str| match &body[k] {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        };
        let files = body["_files"].as_u64().unwrap_or(0) > 0;
        if !files
            && !["content", "embeds", "components", "sticker_ids", "poll"]
                .iter()
                .any(|k| non_empty(k))
        {
            return Err(Reply::error(400, 50006, "Cannot send an empty message"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// State

impl Inner {
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }

    fn record(&self, r: Recorded) {
        let n = {
            let mut requests = lock(&self.requests);
            requests.push(r);
            requests.len()
        };
        self.requests_tx.send_replace(n);
    }

    fn take_failure(&self, method: &str, path: &str) -> bool {
        let mut failures = lock(&self.failures);
        let Some(entry) = failures
            .iter_mut()
            .find(|(m, suffix, left)| m == method && path.ends_with(suffix.as_str()) && *left > 0)
        else {
            return false;
        };
        entry.2 -= 1;
        true
    }

    fn take_rate_limit(&self, method: &str, path: &str) -> Option<f64> {
        let mut limits = lock(&self.rate_limits);
        let i = limits
            .iter()
            .position(|(m, suffix, _)| m == method && path.ends_with(suffix.as_str()))?;
        Some(limits.remove(i).2)
    }

    /// Learns channels, users, messages and interactions from a dispatch.
    /// Returns false for an interaction Discord would never send: a slash
    /// command in a DM that is not registered globally for DMs (a guild
    /// command does not exist outside its guild, and a global one with
    /// `contexts` without 1 (BOT_DM) is not offered in DMs:
    /// https://discord.com/developers/docs/interactions/application-commands#interaction-contexts).
    fn learn(&self, event: &str, data: &mut Value) -> bool {
        let mut world = lock(&self.world);
        match event {
            "MESSAGE_CREATE" => {
                world.learn_message(data);
            }
            "INTERACTION_CREATE" => {
                if data["type"] == 2 {
                    let name = data["data"]["name"].clone();
                    let guild = data["guild_id"].clone();
                    let in_dm = guild.is_null();
                    let offered_here = |c: &Value| {
                        let context = if in_dm { 1 } else { 0 };
                        match c["contexts"].as_array() {
                            Some(contexts) => contexts.iter().any(|x| x == context),
                            None => !in_dm || c["dm_permission"] != false,
                        }
                    };
                    let registered = world.commands.iter().find(|c| {
                        c["name"] == name
                            && ((c["guild_id"].is_null() && offered_here(c))
                                || (!in_dm && c["guild_id"] == guild))
                    });
                    match registered {
                        Some(cmd) => data["data"]["id"] = cmd["id"].clone(),
                        None if in_dm => {
                            eprintln!("fake discord: /{name} does not exist in DMs (not registered globally for the BOT_DM context); not delivered");
                            return false;
                        }
                        None => {}
                    }
                }
                let user = if data["member"].is_object() {
                    data["member"]["user"].clone()
                } else {
                    data["user"].clone()
                };
                let channel_id = snowflake(&data["channel_id"]);
                if let (Some(uid), Some(cid)) = (snowflake(&user["id"]), channel_id) {
                    world.users.insert(uid, user.clone());
                    match snowflake(&data["guild_id"]) {
                        Some(gid) => {
                            world.ensure_guild_channel(cid, gid);
                            // The interaction's partial channel and the
                            // bot's permissions there, as Discord sends them.
                            let known = world.channels[&cid].clone();
                            for key in ["type", "parent_id", "thread_metadata"] {
                                if !known[key].is_null() {
                                    data["channel"][key] = known[key].clone();
                                }
                            }
                            let denied = world.denied_permissions.get(&cid).copied().unwrap_or(0);
                            let perms = BOT_PERMISSIONS.parse::<u64>().unwrap_or(0) & !denied;
                            data["app_permissions"] = json!(perms.to_string());
                        }
                        None => world.ensure_dm_channel(cid, &user),
                    }
                }
                if data["message"].is_object() {
                    let mut m = data["message"].clone();
                    world.learn_message(&mut m);
                }
                if let Some(id) = snowflake(&data["id"]) {
                    world.interactions.insert(
                        id,
                        Interaction {
                            token: data["token"].as_str().unwrap_or_default().to_string(),
                            payload: data.clone(),
                            acknowledged: false,
                            created_ms: self.now_ms.load(Ordering::SeqCst),
                            original: None,
                        },
                    );
                }
            }
            _ => {}
        }
        true
    }

    /// Sends a dispatch to the current identified connection, honouring its
    /// intents. Returns whether it was sent.
    fn send_dispatch(&self, event: &str, mut data: Value) -> bool {
        let mut gw = lock(&self.gateway);
        let intents = gw.intents;
        let guild = !data["guild_id"].is_null();
        let needed = match event {
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" if guild => {
                INTENT_GUILD_MESSAGES
            }
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" => INTENT_DIRECT_MESSAGES,
            "THREAD_CREATE" | "THREAD_UPDATE" | "CHANNEL_CREATE" => INTENT_GUILDS,
            _ => 0,
        };
        let Some(conn) = gw.current.as_ref().filter(|c| c.ready) else {
            return false;
        };
        if intents & needed != needed {
            eprintln!("fake discord: not delivering {event}: the client's intents ({intents:#x}) lack {needed:#x}");
            return false;
        }
        if guild
            && matches!(event, "MESSAGE_CREATE" | "MESSAGE_UPDATE")
            && intents & INTENT_MESSAGE_CONTENT == 0
            && data["author"]["id"] != id_str(FakeDiscord::BOT_ID)
            && !data["mentions"]
                .as_array()
                .is_some_and(|m| m.iter().any(|u| u["id"] == id_str(FakeDiscord::BOT_ID)))
        {
            for (k, empty) in [
                ("content", json!("")),
                ("embeds", json!([])),
                ("attachments", json!([])),
                ("components", json!([])),
            ] {
                data[k] = empty;
            }
        }
        let conn_id = conn.id;
        let tx = conn.tx.clone();
        gw.seq += 1;
        let frame = json!({ "op": 0, "t": event, "s": gw.seq, "d": data });
        gw.log.push(GatewayFrame {
            from_client: false,
            connection: conn_id,
            payload: frame.clone(),
        });
        tx.send(Out::Frame(frame)).is_ok()
    }

    fn send_frame(&self, conn: u64, tx: &mpsc::UnboundedSender<Out>, frame: Value) {
        lock(&self.gateway).log.push(GatewayFrame {
            from_client: false,
            connection: conn,
            payload: frame.clone(),
        });
        let _ = tx.send(Out::Frame(frame));
    }
}

fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl World {
    fn learn_message(&mut self, data: &mut Value) {
        let Some(cid) = snowflake(&data["channel_id"]) else {
            return;
        };
        let author = data["author"].clone();
        if let Some(uid) = snowflake(&author["id"]) {
            self.users.entry(uid).or_insert_with(|| author.clone());
        }
        match snowflake(&data["guild_id"]) {
            Some(gid) => self.ensure_guild_channel(cid, gid),
            None => self.ensure_dm_channel(cid, &author),
        }
        if let Some(mid) = snowflake(&data["id"]) {
            let mut stored = data.clone();
            if let Some(obj) = stored.as_object_mut() {
                obj.remove("guild_id");
                obj.remove("member");
            }
            self.messages.entry(mid).or_insert(stored);
        }
    }

    fn ensure_guild_channel(&mut self, cid: u64, gid: u64) {
        self.channels
            .entry(cid)
            .or_insert_with(|| text_channel(cid, gid));
    }

    fn ensure_dm_channel(&mut self, cid: u64, recipient: &Value) {
        if recipient["id"] == id_str(FakeDiscord::BOT_ID) && self.channels.contains_key(&cid) {
            return;
        }
        if let Some(uid) = snowflake(&recipient["id"]) {
            if uid != FakeDiscord::BOT_ID {
                self.dm_by_recipient.entry(uid).or_insert(cid);
                self.channels
                    .entry(cid)
                    .or_insert_with(|| dm_channel(cid, recipient.clone()));
            }
        }
    }

    /// A known channel, or (documented simplification) a text channel in
    /// the default guild.
    fn channel(&mut self, cid: u64) -> Value {
        self.channels
            .entry(cid)
            .or_insert_with(|| text_channel(cid, FakeDiscord::GUILD_ID))
            .clone()
    }

    fn guild_of(&mut self, cid: u64) -> Option<u64> {
        snowflake(&self.channel(cid)["guild_id"])
    }
}

fn text_channel(cid: u64, gid: u64) -> Value {
    json!({
        "id": cid.to_string(),
        "type": 0,
        "guild_id": gid.to_string(),
        "name": format!("channel-{cid}"),
        "position": 0,
        "permission_overwrites": [],
        "parent_id": null,
        "topic": null,
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

fn dm_channel(cid: u64, recipient: Value) -> Value {
    json!({
        "id": cid.to_string(),
        "type": 1,
        "last_message_id": null,
        "flags": 0,
        "recipients": [recipient],
    })
}

fn application() -> Value {
    json!({
        "id": FakeDiscord::APP_ID.to_string(),
        "name": FakeDiscord::BOT_NAME,
        "icon": null,
        "description": "",
        "summary": "",
        "type": null,
        "bot": bot_user(),
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "owner": user(1_200_000_000_000_000_009, "owner"),
        "team": null,
        "flags": 0,
        "rpc_origins": [],
        "hook": true,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "approximate_guild_count": 1,
        "integration_types_config": { "0": {} },
    })
}

// ---------------------------------------------------------------------------
// REST

async fn rest(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.as_str().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let body = parse_body(&headers, &body);
    let Some(path) = uri.path().strip_prefix("/api/v10").map(str::to_string) else {
        eprintln!("fake discord: request outside /api/v10: {method} {uri}");
        let reply = Reply::error(404, 0, "Unknown route (fake)");
        inner.record(Recorded {
            method,
            path: uri.path().to_string(),
            query,
            body,
            status: 404,
        });
        return respond(reply, false);
    };

    // A reset token is refused on every route that needs authentication
    // (https://discord.com/developers/docs/reference#authentication); `GET
    // /gateway` needs none
    // (https://discord.com/developers/docs/events/gateway#get-gateway), so
    // a client still connects and is closed with 4004.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bot "))
        .unwrap_or_default()
        .to_string();
    let open_route = method == "GET" && path == "/gateway";
    if !open_route && !token.is_empty() && lock(&inner.revoked_tokens).contains(&token) {
        inner.record(Recorded {
            method,
            path,
            query,
            body,
            status: 401,
        });
        return respond(Reply::error(401, 0, "401: Unauthorized"), false);
    }

    let hold = {
        let mut holds = lock(&inner.holds);
        holds
            .iter()
            .position(|h| h.method == method && path.ends_with(h.suffix.as_str()))
            .map(|i| holds.remove(i))
    };
    if let Some(mut hold) = hold {
        hold.reached.send_replace(true);
        if let Some(release) = hold.release.take() {
            let _ = release.await;
        }
    }

    if let Some(retry_after) = inner.take_rate_limit(&method, &path) {
        inner.record(Recorded {
            method,
            path,
            query,
            body,
            status: 429,
        });
        return rate_limited(retry_after);
    }

    if inner.take_failure(&method, &path) {
        inner.record(Recorded {
            method,
            path,
            query,
            body,
            status: 500,
        });
        return respond(Reply::error(500, 0, "500: Internal Server Error"), false);
    }

    let mut reply = route(&inner, &method, &path, &body);
    if reply.status == 404 && reply.body.as_ref().is_some_and(|b| b["code"] == 0) {
        eprintln!("fake discord: unknown route {method} /api/v10{path}?{query} {body}");
    }
    let events = std::mem::take(&mut reply.events);
    let status = reply.status;
    for (event, data) in events {
        inner.send_dispatch(event, data);
    }
    inner.record(Recorded {
        method,
        path,
        query,
        body,
        status,
    });
    respond(reply, true)
}

fn respond(reply: Reply, ratelimit_headers: bool) -> Response {
    let status = StatusCode::from_u16(reply.status).expect("status");
    let mut response = match reply.body {
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    if ratelimit_headers {
        let h = response.headers_mut();
        for (k, v) in [
            ("x-ratelimit-limit", "5".to_string()),
            ("x-ratelimit-remaining", "4".to_string()),
            ("x-ratelimit-reset-after", "1.000".to_string()),
            ("x-ratelimit-reset", format!("{:.3}", epoch_secs() + 1.0)),
            ("x-ratelimit-bucket", "fake0bucket".to_string()),
        ] {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(&v).expect("header"),
            );
        }
    }
    response
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// Discord's 429 for a per-route limit (body without `code`, as documented
/// for ordinary route limits).
fn rate_limited(retry_after: f64) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": false,
    });
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    let h = response.headers_mut();
    for (k, v) in [
        ("retry-after", format!("{}", retry_after.ceil() as u64)),
        ("x-ratelimit-limit", "5".to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
        (
            "x-ratelimit-reset",
            format!("{:.3}", epoch_secs() + retry_after),
        ),
        ("x-ratelimit-bucket", "fake0bucket".to_string()),
        ("x-ratelimit-scope", "user".to_string()),
    ] {
        h.insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).expect("header"),
        );
    }
    response
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    let text = String::from_utf8_lossy(body);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("multipart/") {
        let payload = text
            .split("name=\"payload_json\"")
            .nth(1)
            .and_then(|rest| rest.split_once("\r\n\r\n"))
            .and_then(|(_, rest)| rest.split("\r\n--").next())
            .and_then(|json| serde_json::from_str::<Value>(json).ok());
        let mut value = payload.unwrap_or_else(|| json!({}));
        value["_files"] = json!(text.matches("filename=").count());
        return value;
    }
    serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
}

fn route(inner: &Inner, method: &str, path: &str, body: &Value) -> Reply {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<u64>().ok();
    let unknown = || Reply::error(404, 0, "Unknown route (fake)");
    let mut world = lock(&inner.world);
    let world = &mut *world;
    match (method, segs.as_slice()) {
        ("GET", ["gateway"]) => Reply::ok(json!({ "url": inner.gateway_url() })),
        ("GET", ["gateway", "bot"]) => Reply::ok(json!({
            "url": inner.gateway_url(),
            "shards": 1,
            "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1
            },
        })),
        ("GET", ["users", "@me"]) => Reply::ok(bot_user()),
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            Reply::ok(application())
        }
        ("POST", ["users", "@me", "channels"]) => {
            let Some(uid) = snowflake(&body["recipient_id"]) else {
                return invalid_form_body(
                    "recipient_id",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                );
            };
            let cid = match world.dm_by_recipient.get(&uid) {
                Some(&cid) => cid,
                None => {
                    let cid = inner.next_id();
                    let recipient = world
                        .users
                        .get(&uid)
                        .cloned()
                        .unwrap_or_else(|| user(uid, &format!("user-{uid}")));
                    world.dm_by_recipient.insert(uid, cid);
                    world.channels.insert(cid, dm_channel(cid, recipient));
                    cid
                }
            };
            Reply::ok(world.channel(cid))
        }
        ("GET", ["channels", cid]) => match id(cid) {
            Some(cid) => Reply::ok(world.channel(cid)),
            None => unknown(),
        },
        ("POST", ["channels", cid, "typing"]) if id(cid).is_some() => Reply::no_content(),
        ("POST", ["channels", cid, "messages"]) => match id(cid) {
            Some(cid) => create_message(inner, world, cid, body),
            None => unknown(),
        },
        ("GET", ["channels", cid, "messages", mid]) => match (id(cid), id(mid)) {
            (Some(cid), Some(mid)) => match world.messages.get(&mid) {
                Some(m) if snowflake(&m["channel_id"]) == Some(cid) => Reply::ok(m.clone()),
                _ => Reply::error(404, 10008, "Unknown Message"),
            },
            _ => unknown(),
        },
        ("PATCH", ["channels", cid, "messages", mid]) => match (id(cid), id(mid)) {
            (Some(cid), Some(mid)) => edit_message(world, cid, mid, body, true),
            _ => unknown(),
        },
        ("DELETE", ["channels", cid, "messages", mid]) => match (id(cid), id(mid)) {
            (Some(cid), Some(mid)) => delete_message(world, cid, mid),
            _ => unknown(),
        },
        ("POST", ["channels", cid, "threads"]) => match id(cid) {
            Some(cid) => create_thread(inner, world, cid, None, body),
            None => unknown(),
        },
        ("POST", ["channels", cid, "messages", mid, "threads"]) => match (id(cid), id(mid)) {
            (Some(cid), Some(mid)) => create_thread(inner, world, cid, Some(mid), body),
            _ => unknown(),
        },
        ("PUT", ["channels", tid, "thread-members", uid]) => match (id(tid), id(uid)) {
            (Some(tid), Some(_)) => match world.channels.get(&tid) {
                None => Reply::error(404, 10003, "Unknown Channel"),
                Some(c) if c["type"] == 11 || c["type"] == 12 => {
                    if let Some(n) = c["member_count"].as_u64() {
                        let c = world.channels.get_mut(&tid).expect("thread");
                        c["member_count"] = json!(n + 1);
                    }
                    Reply::no_content()
                }
                Some(_) => Reply::error(400, 50024, "Cannot execute action on this channel type"),
            },
            _ => unknown(),
        },
        ("POST", ["interactions", iid, token, "callback"]) => match id(iid) {
            Some(iid) => interaction_callback(inner, world, iid, token, body),
            None => unknown(),
        },
        (_, ["webhooks", app, token, rest @ ..]) => {
            if id(app) != Some(FakeDiscord::APP_ID) {
                return Reply::error(404, 10015, "Unknown Webhook");
            }
            webhook(inner, world, method, token, rest, body)
        }
        (_, ["applications", app, rest @ ..]) if rest.first() != Some(&"@me") => {
            let Some(app) = id(app) else {
                return unknown();
            };
            if app != FakeDiscord::APP_ID {
                return Reply::error(403, 50001, "Missing Access");
            }
            commands(inner, world, method, rest, body).unwrap_or_else(unknown)
        }
        _ => unknown(),
    }
}

/// The MESSAGE_CREATE/UPDATE gateway form of a stored message.
fn gateway_message(world: &mut World, m: &Value) -> Value {
    let mut data = m.clone();
    if let Some(cid) = snowflake(&m["channel_id"]) {
        if let Some(gid) = world.guild_of(cid) {
            data["guild_id"] = id_str(gid);
            if m["webhook_id"].is_null() {
                data["member"] = member_without_user(&[]);
            }
        }
    }
    data
}

/// Applies the message fields of a create/edit body to `m`.
fn apply_message_body(m: &mut Value, body: &Value) {
    for key in ["content", "components", "tts", "attachments"] {
        if !body[key].is_null() {
            m[key] = body[key].clone();
        }
    }
    if let Some(embeds) = body["embeds"].as_array() {
        m["embeds"] = Value::Array(
            embeds
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if e["type"].is_null() {
                        e["type"] = json!("rich");
                    }
                    e
                })
                .collect(),
        );
    }
    if let Some(flags) = body["flags"].as_u64() {
        // Only SUPPRESS_EMBEDS (4), EPHEMERAL (64), SUPPRESS_NOTIFICATIONS (4096)
        // can be set by the sender.
        let keep = m["flags"].as_u64().unwrap_or(0) & !(4 | 64 | 4096);
        m["flags"] = json!(keep | (flags & (4 | 64 | 4096)));
    }
}

fn new_message(inner: &Inner, world: &mut World, cid: u64, body: &Value) -> Value {
    let mut m = message(inner.next_id(), cid, bot_user(), "");
    apply_message_body(&mut m, body);
    if !body["nonce"].is_null() {
        m["nonce"] = body["nonce"].clone();
    }
    if let Some(mid) = snowflake(&body["message_reference"]["message_id"]) {
        let referenced = world.messages.get(&mid).cloned();
        let mut reference = json!({
            "type": 0,
            "message_id": mid.to_string(),
            "channel_id": cid.to_string(),
        });
        if let Some(gid) = world.guild_of(cid) {
            reference["guild_id"] = id_str(gid);
        }
        m["type"] = json!(19);
        m["message_reference"] = reference;
        m["referenced_message"] = referenced.unwrap_or(Value::Null);
    }
    m
}

fn create_message(inner: &Inner, world: &mut World, cid: u64, body: &Value) -> Reply {
    if let Err(e) = validate_message_body(body, true) {
        return e;
    }
    let channel = world.channel(cid);
    // A person whose privacy settings refuse DMs from the bot: 403 with
    // code 50007 "Cannot send messages to this user"
    // (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes).
    if channel["type"] == 1 {
        let recipient = snowflake(&channel["recipients"][0]["id"]);
        if recipient.is_some_and(|uid| world.dm_blocked.contains(&uid)) {
            return Reply::error(403, 50007, "Cannot send messages to this user");
        }
    }
    // Sending a message unarchives an archived thread, unless it is locked
    // (https://discord.com/developers/docs/topics/threads#active-and-archived-threads).
    let mut unarchived = None;
    if channel["thread_metadata"]["archived"] == true {
        if channel["thread_metadata"]["locked"] == true {
            return Reply::error(
                400,
                50083,
                "Operation cannot be performed on an archived thread",
            );
        }
        if let Some(thread) = world.channels.get_mut(&cid) {
            thread["thread_metadata"]["archived"] = json!(false);
            thread["thread_metadata"]["archive_timestamp"] = json!(now_timestamp());
            unarchived = Some(thread.clone());
        }
    }
    let m = new_message(inner, world, cid, body);
    let mid = snowflake(&m["id"]).expect("id");
    world.messages.insert(mid, m.clone());
    if let Some(c) = world.channels.get_mut(&cid) {
        c["last_message_id"] = id_str(mid);
        if let Some(n) = c["message_count"].as_u64() {
            c["message_count"] = json!(n + 1);
            c["total_message_sent"] = json!(n + 1);
        }
    }
    let echo = gateway_message(world, &m);
    let reply = Reply::ok(m);
    let reply = match unarchived {
        Some(thread) => reply.with("THREAD_UPDATE", thread),
        None => reply,
    };
    reply.with("MESSAGE_CREATE", echo)
}

fn edit_message(world: &mut World, cid: u64, mid: u64, body: &Value, check_author: bool) -> Reply {
    if let Err(e) = validate_message_body(body, false) {
        return e;
    }
    let Some(m) = world.messages.get_mut(&mid) else {
        return Reply::error(404, 10008, "Unknown Message");
    };
    if snowflake(&m["channel_id"]) != Some(cid) {
        return Reply::error(404, 10008, "Unknown Message");
    }
    if check_author && m["author"]["id"] != id_str(FakeDiscord::BOT_ID) {
        return Reply::error(403, 50005, "Cannot edit a message authored by another user");
    }
    apply_message_body(m, body);
    // A deferred response stops "thinking" once edited.
    if let Some(flags) = m["flags"].as_u64() {
        m["flags"] = json!(flags & !128);
    }
    m["edited_timestamp"] = json!(now_timestamp());
    let m = m.clone();
    let ephemeral = m["flags"].as_u64().unwrap_or(0) & 64 != 0;
    let reply = Reply::ok(m.clone());
    if ephemeral {
        reply
    } else {
        let update = gateway_message(world, &m);
        reply.with("MESSAGE_UPDATE", update)
    }
}

fn delete_message(world: &mut World, cid: u64, mid: u64) -> Reply {
    match world.messages.get(&mid) {
        Some(m) if snowflake(&m["channel_id"]) == Some(cid) => {
            world.messages.remove(&mid);
            let mut data = json!({ "id": mid.to_string(), "channel_id": cid.to_string() });
            if let Some(gid) = world.guild_of(cid) {
                data["guild_id"] = id_str(gid);
            }
            Reply::no_content().with("MESSAGE_DELETE", data)
        }
        _ => Reply::error(404, 10008, "Unknown Message"),
    }
}

fn create_thread(
    inner: &Inner,
    world: &mut World,
    parent: u64,
    from_message: Option<u64>,
    body: &Value,
) -> Reply {
    let name_len = char_len(&body["name"]);
    if name_len == 0 || name_len > 100 {
        return invalid_form_body(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        );
    }
    // Where threads may be started, and which
    // (https://discord.com/developers/docs/resources/channel#start-thread-without-message,
    // https://discord.com/developers/docs/resources/channel#channel-object-channel-types):
    // not inside a thread; a forum or media channel only takes a post
    // with its first `message`; private threads exist only in text
    // channels (an announcement channel has announcement threads); a
    // private thread needs CREATE_PRIVATE_THREADS, a public one
    // CREATE_PUBLIC_THREADS, else 403 50013
    // (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes).
    let parent_channel = world.channel(parent);
    let parent_type = parent_channel["type"].as_u64().unwrap_or(0);
    let wants_private = from_message.is_none() && body["type"] == PRIVATE_THREAD;
    if parent_type == GUILD_FORUM || parent_type == 16 {
        if body["message"].is_null() {
            return invalid_form_body("message", "BASE_TYPE_REQUIRED", "This field is required");
        }
    } else if parent_type != GUILD_TEXT && parent_type != GUILD_ANNOUNCEMENT {
        return Reply::error(400, 50024, "Cannot execute action on this channel type");
    }
    if wants_private && parent_type != GUILD_TEXT {
        return Reply::error(400, 50024, "Cannot execute action on this channel type");
    }
    let denied = world.denied_permissions.get(&parent).copied().unwrap_or(0);
    let needed = if wants_private {
        PERM_CREATE_PRIVATE_THREADS
    } else {
        PERM_CREATE_PUBLIC_THREADS
    };
    if denied & needed != 0 {
        return Reply::error(403, 50013, "Missing Permissions");
    }
    // auto_archive_duration is one of 60, 1440, 4320, 10080 minutes
    // (https://discord.com/developers/docs/resources/channel#start-thread-without-message-json-params).
    if let Some(minutes) = body.get("auto_archive_duration").filter(|v| !v.is_null()) {
        if ![60, 1440, 4320, 10080].iter().any(|m| minutes == m) {
            return invalid_form_body(
                "auto_archive_duration",
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            );
        }
    }
    let gid = snowflake(&parent_channel["guild_id"]).expect("guild channel");
    let (tid, kind) = match from_message {
        Some(mid) => {
            match world.messages.get(&mid) {
                Some(m) if snowflake(&m["channel_id"]) == Some(parent) => {}
                _ => return Reply::error(404, 10008, "Unknown Message"),
            }
            if world.channels.contains_key(&mid) {
                return Reply::error(
                    400,
                    160004,
                    "A thread has already been created for this message",
                );
            }
            // A thread started from a message has the message's id.
            (mid, 11)
        }
        None => (inner.next_id(), if body["type"] == 12 { 12 } else { 11 }),
    };
    let now = now_timestamp();
    let mut metadata = json!({
        "archived": false,
        "auto_archive_duration": body["auto_archive_duration"].as_u64().unwrap_or(4320),
        "archive_timestamp": now,
        "locked": false,
        "create_timestamp": now,
    });
    if kind == 12 {
        metadata["invitable"] = json!(body["invitable"].as_bool().unwrap_or(true));
    }
    let thread = json!({
        "id": tid.to_string(),
        "type": kind,
        "guild_id": gid.to_string(),
        "parent_id": parent.to_string(),
        "owner_id": FakeDiscord::BOT_ID.to_string(),
        "name": body["name"],
        "last_message_id": null,
        "rate_limit_per_user": body["rate_limit_per_user"].as_u64().unwrap_or(0),
        "flags": 0,
        "member_count": 1,
        "message_count": 0,
        "total_message_sent": 0,
        "thread_metadata": metadata,
        "member": {
            "id": tid.to_string(),
            "user_id": FakeDiscord::BOT_ID.to_string(),
            "join_timestamp": now,
            "flags": 1,
        },
    });
    world.channels.insert(tid, thread.clone());
    if let Some(mid) = from_message {
        if let Some(m) = world.messages.get_mut(&mid) {
            m["thread"] = thread.clone();
            m["flags"] = json!(m["flags"].as_u64().unwrap_or(0) | 32);
        }
    }
    let mut event = thread.clone();
    event["newly_created"] = json!(true);
    Reply::json(201, thread).with("THREAD_CREATE", event)
}

fn interaction_callback(
    inner: &Inner,
    world: &mut World,
    iid: u64,
    token: &str,
    body: &Value,
) -> Reply {
    let Some(interaction) = world.interactions.get(&iid) else {
        return Reply::error(404, 10062, "Unknown interaction");
    };
    if interaction.token != token {
        return Reply::error(401, 50027, "Invalid Webhook Token");
    }
    // No first response within 3 s: the interaction is gone and the person
    // sees "The application did not respond"
    // (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction).
    let age = inner.now_ms.load(Ordering::SeqCst) - interaction.created_ms;
    if !interaction.acknowledged && age > INTERACTION_DEADLINE_MS {
        return Reply::error(404, 10062, "Unknown interaction");
    }
    if interaction.acknowledged {
        return Reply::error(400, 40060, "Interaction has already been acknowledged.");
    }
    let payload = interaction.payload.clone();
    let is_component = payload["type"] == 3 || payload["type"] == 5;
    let cid = snowflake(&payload["channel_id"]).expect("channel id");
    let kind = body["type"].as_u64().unwrap_or(0);
    let data = &body["data"];
    let component_message = snowflake(&payload["message"]["id"]);
    let mut reply = Reply::no_content();
    let original = match kind {
        4 | 5 => {
            if kind == 4 {
                if let Err(e) = validate_message_body(data, true) {
                    return e;
                }
            }
            let mut m = new_message(inner, world, cid, data);
            let mid = snowflake(&m["id"]).expect("id");
            m["webhook_id"] = id_str(FakeDiscord::APP_ID);
            m["application_id"] = id_str(FakeDiscord::APP_ID);
            m["type"] = json!(if is_component { 0 } else { 20 });
            let user = if payload["member"].is_object() {
                payload["member"]["user"].clone()
            } else {
                payload["user"].clone()
            };
            let mut metadata = json!({
                "id": iid.to_string(),
                "type": payload["type"],
                "user": user,
                "authorizing_integration_owners": payload["authorizing_integration_owners"],
            });
            if let Some(interacted) = component_message {
                metadata["interacted_message_id"] = id_str(interacted);
            } else {
                metadata["name"] = payload["data"]["name"].clone();
            }
            m["interaction_metadata"] = metadata;
            if kind == 5 {
                // "Bot is thinking..." (LOADING), possibly ephemeral.
                let ephemeral = data["flags"].as_u64().unwrap_or(0) & 64;
                m["flags"] = json!(128 | ephemeral);
            }
            world.messages.insert(mid, m.clone());
            if m["flags"].as_u64().unwrap_or(0) & 64 == 0 {
                let echo = gateway_message(world, &m);
                reply = reply.with("MESSAGE_CREATE", echo);
            }
            Some(mid)
        }
        6 | 7 => {
            let Some(mid) = component_message.filter(|_| is_component) else {
                return invalid_form_body(
                    "type",
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    "Interaction response type is invalid for this interaction",
                );
            };
            if kind == 7 {
                let edited = edit_message(world, cid, mid, data, false);
                if edited.status != 200 {
                    return edited;
                }
                reply.events = edited.events;
            }
            Some(mid)
        }
        1 | 8 | 9 | 10 | 12 => None,
        _ => {
            return invalid_form_body(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.",
            )
        }
    };
    let interaction = world.interactions.get_mut(&iid).expect("interaction");
    interaction.acknowledged = true;
    interaction.original = original;
    reply
}

fn webhook(
    inner: &Inner,
    world: &mut World,
    method: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
) -> Reply {
    let Some((_, interaction)) = world.interactions.iter().find(|(_, i)| i.token == token) else {
        return Reply::error(404, 10015, "Unknown Webhook");
    };
    let original = interaction.original;
    let acknowledged = interaction.acknowledged;
    // The token works for 15 minutes after the interaction
    // (https://discord.com/developers/docs/interactions/receiving-and-responding#followup-messages).
    if inner.now_ms.load(Ordering::SeqCst) - interaction.created_ms > INTERACTION_TOKEN_MS {
        return Reply::error(401, 50027, "Invalid Webhook Token");
    }
    let cid = snowflake(&interaction.payload["channel_id"]).expect("channel id");
    match (method, rest) {
        ("POST", []) => {
            if !acknowledged {
                return Reply::error(404, 10015, "Unknown Webhook");
            }
            if let Err(e) = validate_message_body(body, true) {
                return e;
            }
            // The first follow-up after a deferred response replaces the
            // "thinking" message.
            if let Some(mid) = original {
                if world
                    .messages
                    .get(&mid)
                    .is_some_and(|m| m["flags"].as_u64().unwrap_or(0) & 128 != 0)
                {
                    return edit_message(world, cid, mid, body, false);
                }
            }
            let mut m = new_message(inner, world, cid, body);
            let mid = snowflake(&m["id"]).expect("id");
            m["webhook_id"] = id_str(FakeDiscord::APP_ID);
            m["application_id"] = id_str(FakeDiscord::APP_ID);
            world.messages.insert(mid, m.clone());
            let mut reply = Reply::ok(m.clone());
            if m["flags"].as_u64().unwrap_or(0) & 64 == 0 {
                let echo = gateway_message(world, &m);
                reply = reply.with("MESSAGE_CREATE", echo);
            }
            reply
        }
        (_, ["messages", which]) => {
            let mid = if *which == "@original" {
                original
            } else {
                which.parse::<u64>().ok()
            };
            let Some(mid) = mid.filter(|mid| world.messages.contains_key(mid)) else {
                return Reply::error(404, 10008, "Unknown Message");
            };
            match method {
                "GET" => Reply::ok(world.messages[&mid].clone()),
                "PATCH" => edit_message(world, cid, mid, body, false),
                "DELETE" => delete_message(world, cid, mid),
                _ => Reply::error(405, 0, "405: Method Not Allowed"),
            }
        }
        _ => Reply::error(404, 0, "Unknown route (fake)"),
    }
}

/// Validates and completes one application command from a request body.
fn command_from(
    inner: &Inner,
    world: &World,
    guild: Option<u64>,
    body: &Value,
) -> Result<Value, Reply> {
    let kind = body["type"].as_u64().unwrap_or(1);
    let name = body["name"].as_str().unwrap_or_default();
    let valid_name = (1..=32).contains(&name.chars().count())
        && (kind != 1
            || name.chars().all(|c| {
                c == '-' || c == '_' || c.is_numeric() || (c.is_alphabetic() && !c.is_uppercase())
            }));
    if !valid_name {
        return Err(invalid_form_body(
            "name",
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        ));
    }
    let description = body["description"].as_str().unwrap_or_default();
    if kind == 1 && !(1..=100).contains(&description.chars().count()) {
        return Err(invalid_form_body(
            "description",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        ));
    }
    let guild_value = guild.map_or(Value::Null, id_str);
    let existing = world
        .commands
        .iter()
        .find(|c| c["name"] == name && c["guild_id"] == guild_value && c["type"] == kind);
    let id = existing.map_or_else(|| id_str(inner.next_id()), |c| c["id"].clone());
    let mut command: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("id", id),
        ("application_id", id_str(FakeDiscord::APP_ID)),
        ("version", id_str(inner.next_id())),
        ("type", json!(kind)),
        ("guild_id", guild_value),
        ("description", json!(description)),
    ] {
        command.insert(k.to_string(), v);
    }
    for (k, v) in [
        ("options", json!([])),
        ("default_member_permissions", Value::Null),
        ("nsfw", json!(false)),
        ("integration_types", json!([0])),
        ("contexts", Value::Null),
    ] {
        command.entry(k.to_string()).or_insert(v);
    }
    if guild.is_some() {
        command.remove("integration_types");
        command.remove("contexts");
    }
    Ok(Value::Object(command))
}

fn commands(
    inner: &Inner,
    world: &mut World,
    method: &str,
    rest: &[&str],
    body: &Value,
) -> Option<Reply> {
    let (guild, rest) = match rest {
        ["guilds", g, rest @ ..] => (Some(g.parse::<u64>().ok()?), rest),
        _ => (None, rest),
    };
    if rest.first() != Some(&"commands") {
        return None;
    }
    let guild_value = guild.map_or(Value::Null, id_str);
    let scoped = |world: &World| -> Vec<Value> {
        world
            .commands
            .iter()
            .filter(|c| c["guild_id"] == guild_value)
            .cloned()
            .collect()
    };
    Some(match (method, &rest[1..]) {
        ("GET", []) => Reply::ok(Value::Array(scoped(world))),
        ("PUT", []) => {
            let Some(list) = body.as_array() else {
                return Some(invalid_form_body(
                    "_",
                    "MODEL_TYPE_CONVERT",
                    "Expected an array",
                ));
            };
            if list.len() > 100 {
                return Some(invalid_form_body(
                    "_",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 100 or fewer in length.",
                ));
            }
            let mut created = Vec::new();
            for (i, c) in list.iter().enumerate() {
                match command_from(inner, world, guild, c) {
                    Ok(c) => created.push(c),
                    Err(mut e) => {
                        if let Some(b) = e.body.as_mut() {
                            b["errors"] = json!({ i.to_string(): b["errors"].take() });
                        }
                        return Some(e);
                    }
                }
            }
            world.commands.retain(|c| c["guild_id"] != guild_value);
            world.commands.extend(created.iter().cloned());
            Reply::ok(Value::Array(created))
        }
        ("POST", []) => match command_from(inner, world, guild, body) {
            Ok(c) => {
                let existed = world.commands.iter().any(|e| e["id"] == c["id"]);
                world.commands.retain(|e| e["id"] != c["id"]);
                world.commands.push(c.clone());
                Reply::json(if existed { 200 } else { 201 }, c)
            }
            Err(e) => e,
        },
        ("GET", [cmd]) => match world.commands.iter().find(|c| c["id"] == json!(cmd)) {
            Some(c) => Reply::ok(c.clone()),
            None => Reply::error(404, 10063, "Unknown application command"),
        },
        ("DELETE", [cmd]) => {
            let before = world.commands.len();
            world.commands.retain(|c| c["id"] != json!(cmd));
            if world.commands.len() == before {
                Reply::error(404, 10063, "Unknown application command")
            } else {
                Reply::no_content()
            }
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Gateway

async fn gateway_upgrade(State(inner): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| gateway_session(inner, socket))
}

async fn gateway_session(inner: Arc<Inner>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let conn_id = {
        let mut gw = lock(&inner.gateway);
        gw.connections += 1;
        let id = gw.connections;
        gw.current = Some(Conn {
            id,
            tx: tx.clone(),
            ready: false,
        });
        id
    };
    inner.ready_tx.send_modify(|r| r.conn = None);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let sent = match out {
                Out::Frame(v) => sink.send(WsMessage::Text(v.to_string().into())).await,
                Out::Close(code, reason) => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    inner.send_frame(
        conn_id,
        &tx,
        json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": 45000 } }),
    );

    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            WsMessage::Text(t) => t.to_string(),
            WsMessage::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            WsMessage::Close(_) => break,
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            eprintln!("fake discord: undecodable gateway frame: {text}");
            let _ = tx.send(Out::Close(4002, "Error while decoding payload."));
            break;
        };
        lock(&inner.gateway).log.push(GatewayFrame {
            from_client: true,
            connection: conn_id,
            payload: frame.clone(),
        });
        match frame["op"].as_u64() {
            Some(1) => inner.send_frame(
                conn_id,
                &tx,
                json!({ "op": 11, "s": null, "t": null, "d": null }),
            ),
            Some(2) => identify(&inner, conn_id, &tx, &frame["d"]),
            Some(6) => resume(&inner, conn_id, &tx, &frame["d"]),
            Some(3 | 4 | 8) => {}
            _ => {
                let _ = tx.send(Out::Close(4001, "Unknown opcode."));
                break;
            }
        }
    }
    {
        let mut gw = lock(&inner.gateway);
        if gw.current.as_ref().is_some_and(|c| c.id == conn_id) {
            gw.current = None;
            drop(gw);
            inner.ready_tx.send_if_modified(|r| {
                if r.conn == Some(conn_id) {
                    r.conn = None;
                    true
                } else {
                    false
                }
            });
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn make_current_ready(gw: &mut Gateway, conn_id: u64, tx: &mpsc::UnboundedSender<Out>) {
    gw.current = Some(Conn {
        id: conn_id,
        tx: tx.clone(),
        ready: true,
    });
}

fn identify(inner: &Inner, conn_id: u64, tx: &mpsc::UnboundedSender<Out>, d: &Value) {
    let ready = {
        let mut gw = lock(&inner.gateway);
        // Gateway close codes
        // (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes):
        // 4004 for a token Discord does not accept, 4014 for a privileged
        // intent the application has not enabled (or been approved for).
        let token = d["token"].as_str().unwrap_or_default();
        let token = token.strip_prefix("Bot ").unwrap_or(token);
        if token.is_empty() || lock(&inner.revoked_tokens).iter().any(|t| t == token) {
            drop(gw);
            let _ = tx.send(Out::Close(4004, "Authentication failed."));
            return;
        }
        let requested = d["intents"].as_u64().unwrap_or(0);
        let enabled = inner.portal_intents.load(Ordering::SeqCst);
        if requested & PRIVILEGED_INTENTS & !enabled != 0 {
            drop(gw);
            let _ = tx.send(Out::Close(4014, "Disallowed intent(s)."));
            return;
        }
        gw.sessions += 1;
        let session_id = format!("fake-session-{}", gw.sessions);
        gw.session_id = Some(session_id.clone());
        gw.intents = d["intents"].as_u64().unwrap_or(0);
        gw.seq = 1;
        make_current_ready(&mut gw, conn_id, tx);
        let mut data = json!({
            "v": 10,
            "user": bot_user(),
            "guilds": [],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": inner.gateway_url(),
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "application": { "id": FakeDiscord::APP_ID.to_string(), "flags": 0 },
        });
        if d["shard"].is_array() {
            data["shard"] = d["shard"].clone();
        }
        json!({ "op": 0, "t": "READY", "s": 1, "d": data })
    };
    inner.send_frame(conn_id, tx, ready);
    inner.ready_tx.send_modify(|r| {
        r.conn = Some(conn_id);
        r.identified += 1;
    });
}

fn resume(inner: &Inner, conn_id: u64, tx: &mpsc::UnboundedSender<Out>, d: &Value) {
    let frame = {
        let mut gw = lock(&inner.gateway);
        let matches =
            gw.session_id.is_some() && d["session_id"].as_str() == gw.session_id.as_deref();
        if matches {
            gw.seq += 1;
            make_current_ready(&mut gw, conn_id, tx);
            Some(json!({ "op": 0, "t": "RESUMED", "s": gw.seq, "d": {} }))
        } else {
            None
        }
    };
    match frame {
        Some(resumed) => {
            inner.send_frame(conn_id, tx, resumed);
            inner.ready_tx.send_modify(|r| r.conn = Some(conn_id));
        }
        None => inner.send_frame(
            conn_id,
            tx,
            json!({ "op": 9, "s": null, "t": null, "d": false }),
        ),
    }
}
