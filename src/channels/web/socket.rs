//! `GET /chat/ws`: one page's WebSocket.
//!
//! Protocol (JSON text frames). The page sends `{"type":"hello",
//! "cursor":N}` first (N: the last outbox row id it showed, 0 for none),
//! then `{"type":"text","text":"…","id":"…"}`, `{"type":"choice",
//! "id":"…","key":"…"}` (`id`/`key`: the page's own id of the message, so a
//! message re-sent after a reconnect is handled once) and `{"type":"ping"}`.
//! The server sends `{"type":"session","resume":TOKEN,"lang":"ja"}` after
//! the hello, `{"type":"mine","text":"…"}` for what the person wrote
//! (only when replaying from cursor 0, before the replies it belongs to),
//! `{"type":"reply","id":ROW,"replies":[{"text":"…","choices":[{"id","label"}]}]}`
//! for each outbox row, ids strictly increasing, `{"type":"typing"}` while
//! the bot works, `{"type":"state","status":"bot|queued|agent|closed"}`
//! after each input and `{"type":"notice","text":"…"}` (slow down, try
//! again).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{accept_language, WebConfig, WebContext, CHANNEL};
use crate::conversation::store::Direction;
use crate::desk::Inbound;
use crate::flow::engine::Input;
use crate::i18n::registry;
use crate::outbox::OutboxRow;

/// Rows read per replay query.
const REPLAY_BATCH: i64 = 200;

/// Whether a request's `Origin` may use the chat: none (not a browser),
/// the chat's own origin (same host), or one of `web.allowed_origins`.
pub fn origin_allowed(config: &WebConfig, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        if origin.eq_ignore_ascii_case(&format!("http://{host}"))
            || origin.eq_ignore_ascii_case(&format!("https://{host}"))
        {
            return true;
        }
    }
    config
        .allowed_origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The client's address: the peer, or behind a trusted proxy the last
/// `X-Forwarded-For` entry (the one the proxy added).
fn client_ip(config: &WebConfig, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if config.trust_forwarded_for {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        {
            return ip;
        }
    }
    peer.ip()
}

pub async fn upgrade(
    State(ctx): State<Arc<WebContext>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&ctx.config, &headers) {
        tracing::warn!(
            origin = ?headers.get(header::ORIGIN),
            "web: WebSocket from a foreign origin refused (403); add the page's origin to web.allowed_origins if it is yours"
        );
        return StatusCode::FORBIDDEN.into_response();
    }
    let ip = client_ip(&ctx.config, peer, &headers);
    if !ctx.allow_connect(ip) {
        tracing::warn!(%ip, limit = ctx.config.max_connects_per_minute, "web: too many handshakes from one address (web.max_connects_per_minute); refused (429)");
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    if !ctx.open_socket(ip) {
        tracing::warn!(%ip, limit = ctx.config.max_sockets_per_ip, "web: too many sockets from one address (web.max_sockets_per_ip); refused (429)");
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let (session, jar) = ctx.session(&headers);
    let hint = accept_language(&headers);
    let response = ws
        .max_message_size(ctx.config.max_message_bytes)
        .max_frame_size(ctx.config.max_message_bytes)
        .on_failed_upgrade({
            let ctx = ctx.clone();
            move |_| ctx.close_socket(ip)
        })
        .on_upgrade({
            let ctx = ctx.clone();
            move |socket| async move {
                Connection {
                    ctx: ctx.clone(),
                    socket,
                    session,
                    hint,
                    locale: String::new(),
                    last: 0,
                }
                .run()
                .await;
                ctx.close_socket(ip);
            }
        });
    (jar, response).into_response()
}

struct Connection {
    ctx: Arc<WebContext>,
    socket: WebSocket,
    session: String,
    hint: String,
    locale: String,
    /// The highest row id this socket sent.
    last: i64,
}

enum Next {
    Message(Value),
    /// Not JSON, or not an object.
    Garbage,
    Closed,
}

impl Connection {
    async fn send(&mut self, message: &Value) -> bool {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .is_ok()
    }

    async fn next(&mut self) -> Next {
        loop {
            match self.socket.recv().await {
                Some(Ok(Message::Text(text))) => {
                    return match serde_json::from_str::<Value>(text.as_str()) {
                        Ok(value) if value.is_object() => Next::Message(value),
                        _ => Next::Garbage,
                    }
                }
                Some(Ok(Message::Binary(_))) => return Next::Garbage,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Next::Closed,
            }
        }
    }

    async fn run(mut self) {
        let handshake = Duration::from_secs(self.ctx.config.handshake_timeout_seconds.max(1));
        let cursor = match tokio::time::timeout(handshake, self.next()).await {
            Ok(Next::Message(hello)) if hello["type"] == "hello" => {
                hello["cursor"].as_i64().unwrap_or(0).max(0)
            }
            _ => return,
        };
        let ctx = self.ctx.clone();
        let (socket_id, mut pushes) = ctx.hub.join(&self.session);
        self.serve(cursor, &mut pushes).await;
        ctx.hub.leave(&self.session, socket_id);
    }

    async fn serve(
        &mut self,
        cursor: i64,
        pushes: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    ) {
        let ctx = self.ctx.clone();
        self.locale = ctx.desk.locale_at(CHANNEL, &self.session, &self.hint).await;
        let session = json!({
            "type": "session",
            "resume": ctx.resume_token(&self.session),
            "lang": self.locale,
        });
        if !self.send(&session).await {
            return;
        }
        self.last = cursor;
        let mut opening = Some(ctx.opening.lock().await);
        let found = ctx.desk.conversation_at(CHANNEL, &self.session).await;
        if !matches!(found, Ok(None)) {
            opening = None;
        }
        match found {
            Ok(Some(conversation)) => {
                if !self.replay(&conversation, cursor, cursor == 0).await {
                    return;
                }
            }
            Ok(None) => {
                // A new person: the greeting goes out through the outbox
                // and reaches this socket as a push.
                let now = ctx.clock.now();
                let started = ctx
                    .desk
                    .start_or_resume(CHANNEL, &self.session, &self.session, &self.hint, None, now)
                    .await;
                drop(opening.take());
                match started {
                    Ok(outcome) => {
                        self.locale = outcome.locale.clone();
                        let state = json!({"type": "state", "status": outcome.state.mode.status()});
                        if !self.send(&state).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "web: cannot start a conversation");
                        let _ = self.try_again().await;
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "web: cannot look up the session's conversation");
                let _ = self.try_again().await;
                return;
            }
        }
        let idle = Duration::from_secs(ctx.config.idle_timeout_seconds.max(1));
        let mut deadline = tokio::time::Instant::now() + idle;
        loop {
            tokio::select! {
                push = pushes.recv() => {
                    let Some(push) = push else { return };
                    if push["type"] == super::CATCH_UP {
                        if !self.catch_up().await {
                            return;
                        }
                        continue;
                    }
                    let id = push["id"].as_i64().unwrap_or(0);
                    if id > self.last {
                        self.last = id;
                        if !self.send(&push).await {
                            return;
                        }
                    }
                }
                next = self.next() => {
                    deadline = tokio::time::Instant::now() + idle;
                    match next {
                        Next::Message(message) => {
                            if !self.handle(message).await {
                                return;
                            }
                        }
                        Next::Garbage => {}
                        Next::Closed => return,
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = self.socket.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }

    /// Another instance delivered rows of this session (or may have):
    /// sends the rows after the last one this socket sent.
    async fn catch_up(&mut self) -> bool {
        match self.ctx.desk.conversation_at(CHANNEL, &self.session).await {
            Ok(Some(conversation)) => {
                let last = self.last;
                self.replay(&conversation, last, false).await
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!(error = %e, "web: cannot look up the session's conversation to catch up");
                true
            }
        }
    }

    /// Sends every row after `cursor` (and, with `mine`, what the person
    /// wrote, between the replies).
    async fn replay(&mut self, conversation: &str, cursor: i64, mine: bool) -> bool {
        let ctx = self.ctx.clone();
        let mut mine: Vec<(chrono::DateTime<chrono::Utc>, String)> = if mine {
            match ctx.desk.transcript(conversation).await {
                Ok(lines) => lines
                    .into_iter()
                    .filter(|l| l.direction == Direction::Person)
                    .map(|l| (l.at, shown_person_text(&l.text)))
                    .collect(),
                Err(e) => {
                    tracing::error!(error = %e, "web: cannot read the transcript to replay");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        mine.reverse();
        let mut after = cursor;
        loop {
            let rows = match ctx.desk.rows_after(conversation, after, REPLAY_BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "web: cannot read the messages to replay");
                    return self.try_again().await;
                }
            };
            let full = rows.len() as i64 == REPLAY_BATCH;
            for (id, at, row) in rows {
                after = id;
                let OutboxRow::Replies { replies } = row else {
                    continue;
                };
                while mine.last().is_some_and(|(when, _)| *when <= at) {
                    let (_, text) = mine.pop().unwrap_or_default();
                    if !self.send(&json!({"type": "mine", "text": text})).await {
                        return false;
                    }
                }
                if id > self.last {
                    self.last = id;
                    if !self.send(&reply_message(id, &replies)).await {
                        return false;
                    }
                }
            }
            if !full {
                break;
            }
        }
        while let Some((_, text)) = mine.pop() {
            if !self.send(&json!({"type": "mine", "text": text})).await {
                return false;
            }
        }
        true
    }

    async fn try_again(&mut self) -> bool {
        let reply = self.ctx.desk.try_again_reply(&self.locale);
        self.send(&json!({"type": "notice", "text": reply.text}))
            .await
    }

    /// One message of the page; false when the socket is gone.
    async fn handle(&mut self, message: Value) -> bool {
        let ctx = self.ctx.clone();
        let session = self.session.clone();
        let key = |k: &str| {
            message[k]
                .as_str()
                .filter(|k| !k.is_empty() && k.len() <= 64)
                .map(|k| format!("web:{session}:{k}"))
        };
        let (input, inbound_key) = match message["type"].as_str() {
            Some("ping") => return self.send(&json!({"type": "pong"})).await,
            Some("text") => {
                let text = message["text"].as_str().unwrap_or_default();
                if text.trim().is_empty() {
                    return true;
                }
                (Input::Text(text.to_string()), key("id"))
            }
            Some("choice") => match message["id"].as_str() {
                Some(id) if !id.is_empty() => (Input::Choice(id.to_string()), key("key")),
                _ => return true,
            },
            _ => return true,
        };
        if !ctx.allow_message(&self.session) {
            let text = ctx.desk.text(&self.locale, registry::WEB_SLOW_DOWN, &[]);
            return self.send(&json!({"type": "notice", "text": text})).await;
        }
        if !self.send(&json!({"type": "typing"})).await {
            return false;
        }
        let inbound = Inbound {
            channel: CHANNEL.into(),
            address: self.session.clone(),
            user_key: self.session.clone(),
            locale_hint: self.hint.clone(),
            input,
            key: inbound_key,
            reference: None,
            at: ctx.clock.now(),
        };
        match ctx.desk.receive(inbound).await {
            Ok(outcome) => {
                self.locale = outcome.locale.clone();
                self.send(&json!({"type": "state", "status": outcome.state.mode.status()}))
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "web: a message could not be handled");
                self.try_again().await
            }
        }
    }
}

/// A transcript line of the person as the page shows it: without the
/// `[open] ` mark of a first message or the `[choice-id] ` of a press.
fn shown_person_text(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("[open] ") {
        return rest.to_string();
    }
    if let Some((id, label)) = text.strip_prefix('[').and_then(|t| t.split_once("] ")) {
        if !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return label.to_string();
        }
    }
    text.to_string()
}

/// A `Replies` row as the page gets it.
pub fn reply_message(id: i64, replies: &[crate::outbox::RenderedReply]) -> Value {
    json!({
        "type": "reply",
        "id": id,
        "replies": replies.iter().map(|r| json!({
            "text": r.text,
            "choices": r.choices.iter().map(|c| json!({"id": c.id, "label": c.label})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
