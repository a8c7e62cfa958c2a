//! The web chat end to end: the real `serve` on 127.0.0.1:0 with a SQLite
//! file, a WebSocket client (tokio-tungstenite) in place of the page. The
//! page's own behaviour (rendering, IME, reload) is in `web_browser.rs`.

mod support;
#[path = "support/web_client.rs"]
mod web_client;

use std::path::Path;
use std::sync::Arc;

use madoguchi::clock::SystemClock;
use madoguchi::conversation::store::{Direction, Store};
use serde_json::json;
use support::service::Service;
use web_client::{choice_ids, open, reply_text, Refused};

async fn start(db: &Path) -> Service {
    let mut config = support::config();
    config.web.allowed_origins = vec!["https://help.example.ac.jp".into()];
    config.web.frame_ancestors = vec!["https://faq.example.ac.jp".into()];
    Service::start(
        config,
        db,
        Arc::new(SystemClock),
        &[(
            "MADOGUCHI_WEB_COOKIE_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        )],
    )
    .await
}

/// The conversation of the session whose resume token is `token`.
async fn conversation_of(service: &Service, token: &str) -> String {
    use base64::Engine;
    let session = token.split('.').next().expect("token");
    let session = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(session)
        .expect("base64");
    let session = String::from_utf8(session).expect("utf-8");
    service
        .desk
        .conversation_at("web", &session)
        .await
        .expect("look-up")
        .expect("a conversation")
}

#[tokio::test]
async fn greeting_a_choice_and_a_full_width_number_reach_case_d() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let mut page = open(&service.url, None, None).await.expect("open");
    assert!(
        page.set_cookie.is_some(),
        "the handshake sets the session cookie"
    );
    let session = page.hello(0).await;
    assert_eq!(session["lang"], "ja");
    let greeting = page.next_of("reply").await;
    assert!(
        choice_ids(&greeting).contains(&"start-locked".to_string()),
        "{greeting}"
    );
    page.send(json!({"type": "choice", "id": "start-locked", "key": "k1"}))
        .await;
    page.next_of("typing").await;
    let asked = page.next_of("reply").await;
    assert!(asked["id"].as_i64() > greeting["id"].as_i64());
    assert!(!reply_text(&asked).is_empty());
    page.send(json!({"type": "text", "text": "最初から", "id": "t0"}))
        .await;
    page.next_of("reply").await;
    page.send(json!({"type": "text", "text": "電話番号の入力方法が合っているか確認したいです", "id": "t1"}))
        .await;
    page.next_of("reply").await;
    page.send(json!({"type": "text", "text": "０９０ー１２３４ー５６７８", "id": "t2"}))
        .await;
    let answer = page.next_of("reply").await;
    assert!(reply_text(&answer).contains("+81 9012345678"), "{answer}");
    let conversation = conversation_of(&service, session["resume"].as_str().expect("token")).await;
    let record = service
        .store()
        .load(&conversation)
        .await
        .expect("load")
        .expect("record");
    assert_eq!(record.channel, "web");
    assert_eq!(record.state["node"], "case-d-missing-country-code");
    page.close().await;
    service.stop().await;
}

#[tokio::test]
async fn a_reconnect_with_a_cursor_replays_missed_replies_once() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let mut page = open(&service.url, None, None).await.expect("open");
    let cookie = page.set_cookie.clone().expect("cookie");
    let session = page.hello(0).await;
    let greeting = page.next_of("reply").await;
    let cursor = greeting["id"].as_i64().expect("id");
    let conversation = conversation_of(&service, session["resume"].as_str().expect("token")).await;
    // The socket drops while the bot replies.
    let mut committed = service.desk.committed();
    page.send(json!({"type": "choice", "id": "start-locked", "key": "k1"}))
        .await;
    page.close().await;
    let missed = tokio::time::timeout(support::wait::TIMEOUT, async {
        loop {
            let rows = service
                .desk
                .rows_after(&conversation, cursor, 100)
                .await
                .expect("rows");
            if !rows.is_empty() {
                return rows;
            }
            committed.changed().await.expect("the desk is there");
        }
    })
    .await
    .expect("the reply was committed");
    let missed: Vec<i64> = missed.iter().map(|(id, _, _)| *id).collect();
    // Back with the cursor: the missed replies, each once, nothing older.
    let mut page = open(&service.url, None, Some(&cookie))
        .await
        .expect("reopen");
    page.hello(cursor).await;
    let replayed: Vec<i64> = page
        .drain()
        .await
        .into_iter()
        .filter(|m| m["type"] == "reply")
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(replayed, missed);
    // A new page (cursor 0) gets everything, with what the person did.
    page.close().await;
    let mut page = open(&service.url, None, Some(&cookie))
        .await
        .expect("reopen");
    page.hello(0).await;
    let all = page.drain().await;
    let ids: Vec<i64> = all
        .iter()
        .filter(|m| m["type"] == "reply")
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    let mut expected = vec![cursor];
    expected.extend(&missed);
    assert_eq!(ids, expected);
    let kinds: Vec<&str> = all.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "mine").count(), 1, "{all:?}");
    page.close().await;
    service.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    match open(&service.url, Some("https://evil.example"), None).await {
        Err(Refused(status)) => assert_eq!(status, 403),
        Ok(_) => panic!("a foreign origin opened a socket"),
    }
    // A configured origin (the help desk's FAQ page) may.
    let mut page = open(&service.url, Some("https://help.example.ac.jp"), None)
        .await
        .expect("allowed origin");
    page.hello(0).await;
    page.close().await;
    service.stop().await;
}

#[tokio::test]
async fn markup_typed_is_kept_as_text() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let mut page = open(&service.url, None, None).await.expect("open");
    let cookie = page.set_cookie.clone().expect("cookie");
    let session = page.hello(0).await;
    page.next_of("reply").await;
    let markup = "<script>alert(1)</script>";
    page.send(json!({"type": "text", "text": markup, "id": "x"}))
        .await;
    page.next_of("reply").await;
    page.close().await;
    let conversation = conversation_of(&service, session["resume"].as_str().expect("token")).await;
    let transcript = service
        .desk
        .transcript(&conversation)
        .await
        .expect("transcript");
    assert!(transcript
        .iter()
        .any(|l| l.direction == Direction::Person && l.text == markup));
    let mut page = open(&service.url, None, Some(&cookie))
        .await
        .expect("reopen");
    page.hello(0).await;
    let mine: Vec<String> = page
        .drain()
        .await
        .into_iter()
        .filter(|m| m["type"] == "mine")
        .filter_map(|m| m["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(mine, [markup]);
    page.close().await;
    service.stop().await;
}

#[tokio::test]
async fn the_session_cookie_and_the_resume_link_restore_the_conversation() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let mut page = open(&service.url, None, None).await.expect("open");
    let cookie = page.set_cookie.clone().expect("cookie");
    let session = page.hello(0).await;
    let token = session["resume"].as_str().expect("token").to_string();
    let greeting = page.next_of("reply").await;
    page.close().await;
    // The same cookie: the same conversation, no second greeting.
    let mut again = open(&service.url, None, Some(&cookie))
        .await
        .expect("reopen");
    assert_eq!(again.set_cookie, None, "the session is kept");
    again.hello(0).await;
    let replies: Vec<_> = again
        .drain()
        .await
        .into_iter()
        .filter(|m| m["type"] == "reply")
        .collect();
    assert_eq!(replies, std::slice::from_ref(&greeting));
    again.close().await;
    // No cookie: a new conversation.
    let mut other = open(&service.url, None, None).await.expect("other");
    other.hello(0).await;
    assert_ne!(other.next_of("reply").await["id"], greeting["id"]);
    other.close().await;
    // The resume link on another device: the token becomes its session.
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{}/chat/resume", service.url))
        .body(format!("{token}x"))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 403);
    let resumed = client
        .post(format!("{}/chat/resume", service.url))
        .body(token.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(resumed.status().as_u16(), 204);
    let device = resumed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let mut second = open(&service.url, None, Some(&device))
        .await
        .expect("second");
    second.hello(0).await;
    let replies: Vec<_> = second
        .drain()
        .await
        .into_iter()
        .filter(|m| m["type"] == "reply")
        .collect();
    assert_eq!(replies, [greeting]);
    second.close().await;
    service.stop().await;
}

#[tokio::test]
async fn the_page_and_the_widget_are_served_with_a_strict_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/chat", service.url))
        .header("accept-language", "en-US,en;q=0.8")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP")
        .to_string();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        csp.contains("frame-ancestors 'self' https://faq.example.ac.jp"),
        "{csp}"
    );
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("<script type=\"application/json\" id=\"texts\">"));
    assert!(!html.contains("<script>"), "no inline script");
    for (path, kind) in [
        ("/chat/widget.js", "javascript"),
        ("/chat/chat.js", "javascript"),
        ("/chat/chat.css", "css"),
    ] {
        let asset = client
            .get(format!("{}{path}", service.url))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        let content_type = asset
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(content_type.contains(kind), "{path}: {content_type}");
    }
    service.stop().await;
}

#[tokio::test]
async fn the_reminder_of_case_a_reaches_the_open_page() {
    let dir = tempfile::tempdir().expect("dir");
    let service = start(&dir.path().join("web.db")).await;
    let mut page = open(&service.url, None, None).await.expect("open");
    page.hello(0).await;
    page.next_of("reply").await;
    for (choice, key) in [
        ("start-locked", "c1"),
        ("a-count-many", "c2"),
        ("a-when-30m", "c3"),
    ] {
        page.send(json!({"type": "choice", "id": choice, "key": key}))
            .await;
        page.next_of("reply").await;
    }
    // The timer loop's work, three hours and more later.
    let later = chrono::Utc::now() + chrono::Duration::hours(4);
    let fired = service
        .desk
        .fire_due_timers(None, later)
        .await
        .expect("timers");
    assert_eq!(fired.len(), 1, "the reminder was scheduled");
    let reminder = page.next_of("reply").await;
    let expected = fired[0].rows[0].0;
    assert_eq!(reminder["id"], expected);
    assert!(!reply_text(&reminder).is_empty());
    page.close().await;
    service.stop().await;
}

#[tokio::test]
async fn sockets_per_address_are_limited() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = support::config();
    config.web.max_sockets_per_ip = 2;
    let service = Service::start(
        config,
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let first = open(&service.url, None, None).await.expect("first");
    let second = open(&service.url, None, None).await.expect("second");
    match open(&service.url, None, None).await {
        Err(Refused(status)) => assert_eq!(status, 429),
        Ok(_) => panic!("a third socket from one address was accepted"),
    }
    first.close().await;
    second.close().await;
    service.stop().await;
}

/// The store look-up the replay rests on, for both stores: every row of
/// one conversation after the cursor, sent or not, in id order.
#[tokio::test]
async fn rows_after_reads_one_conversation_after_the_cursor() {
    let dir = tempfile::tempdir().expect("dir");
    let sqlite: Arc<dyn Store> = Arc::new(
        madoguchi::conversation::sqlite::SqliteStore::open(&dir.path().join("rows.db"))
            .await
            .expect("sqlite"),
    );
    let memory: Arc<dyn Store> = Arc::new(madoguchi::conversation::memory::MemoryStore::new());
    let at = chrono::Utc::now();
    for store in [sqlite, memory] {
        let row = |n: i64| json!({"kind": "replies", "replies": [{"message_id": "m", "text": n.to_string()}]});
        let a1 = store.enqueue("A", "web", row(1), at).await.expect("a1");
        let b1 = store.enqueue("B", "web", row(2), at).await.expect("b1");
        let a2 = store.enqueue("A", "web", row(3), at).await.expect("a2");
        let a3 = store.enqueue("A", "web", row(4), at).await.expect("a3");
        store.mark_sent(&[a1, a2], at).await.expect("sent");
        let ids = |rows: Vec<madoguchi::conversation::store::OutboxMessage>| {
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store.rows_after("A", 0, 10).await.expect("all")),
            [a1, a2, a3]
        );
        assert_eq!(
            ids(store.rows_after("A", a1, 10).await.expect("after")),
            [a2, a3]
        );
        assert_eq!(
            ids(store.rows_after("A", a1, 1).await.expect("limit")),
            [a2]
        );
        assert_eq!(ids(store.rows_after("B", 0, 10).await.expect("B")), [b1]);
        assert!(store
            .rows_after("A", a3, 10)
            .await
            .expect("none")
            .is_empty());
    }
}

/// A client that does not finish a request head within
/// `web.handshake_timeout_seconds` is disconnected (no slowloris); an
/// open chat socket, silent for just as long, is not.
#[tokio::test]
async fn a_slow_request_head_is_cut_off_but_an_open_socket_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("dir");
    let mut config = support::config();
    config.web.handshake_timeout_seconds = 1;
    let service = Service::start(
        config,
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let mut page = open(&service.url, None, None).await.expect("open");
    page.hello(0).await;
    page.next_of("reply").await;

    let address = service.url.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("half a head");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(support::wait::TIMEOUT, slow.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection within the bound");
    assert!(
        read.is_err() || answer.is_empty(),
        "closed without an answer: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "closed after the timeout, not before: {:?}",
        started.elapsed()
    );

    // The chat socket, silent all that time, still answers.
    page.send(json!({"type": "ping"})).await;
    page.next_of("pong").await;
    page.close().await;
    service.stop().await;
}
