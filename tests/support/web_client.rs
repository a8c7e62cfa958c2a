//! A WebSocket client for the web chat tests (tokio-tungstenite): opens
//! `/chat/ws` with a chosen `Origin` and session cookie, says hello with a
//! cursor, and reads the protocol's JSON messages.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::support::wait::TIMEOUT;

pub type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One open chat socket.
pub struct WebClient {
    pub stream: Stream,
    /// `name=value` of the session cookie the server set, if it set one.
    pub set_cookie: Option<String>,
}

/// Why a socket could not be opened: the HTTP status of the refusal.
#[derive(Debug)]
pub struct Refused(pub u16);

/// Opens `/chat/ws` of the service at `base` (`http://127.0.0.1:PORT`).
/// `origin`: `None` sends the service's own origin.
pub async fn open(
    base: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> Result<WebClient, Refused> {
    let url = format!("{}/chat/ws", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    let origin = origin.unwrap_or(base).to_string();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(&origin).expect("origin"));
    request.headers_mut().insert(
        "accept-language",
        HeaderValue::from_static("ja-JP,ja;q=0.9"),
    );
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", HeaderValue::from_str(cookie).expect("cookie"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, response)) => Ok(WebClient {
            stream,
            set_cookie: response
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(str::to_string),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(Refused(response.status().as_u16()))
        }
        Err(e) => panic!("cannot open the socket: {e}"),
    }
}

impl WebClient {
    pub async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn hello(&mut self, cursor: i64) -> Value {
        self.send(json!({"type": "hello", "cursor": cursor})).await;
        let session = self.next().await;
        assert_eq!(session["type"], "session", "{session}");
        session
    }

    /// The next JSON message (fails the test after the bound).
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return serde_json::from_str::<Value>(text.as_str()).expect("JSON")
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => panic!("socket ended: {other:?}"),
                }
            }
        })
        .await
        .expect("a message within the bound")
    }

    /// The next message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Every message until the answer to a ping (the server answers in
    /// order, so everything sent before the ping has arrived).
    pub async fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut seen = Vec::new();
        loop {
            let message = self.next().await;
            if message["type"] == "pong" {
                return seen;
            }
            seen.push(message);
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// The texts of a reply message, joined.
pub fn reply_text(reply: &Value) -> String {
    reply["replies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The choice ids of a reply message.
pub fn choice_ids(reply: &Value) -> Vec<String> {
    reply["replies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect()
}
