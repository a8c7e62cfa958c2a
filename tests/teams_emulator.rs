//! Emulator mode (`teams.emulator`) and typing indicators off
//! (`teams.typing_indicators = false`), end to end: `madoguchi::serve` on
//! 127.0.0.1:0 against the fake Bot Framework, as the like-for-like
//! benchmark runs it (benches/peer). Emulator mode takes activities without
//! a token and posts replies without one, only on a loopback listener;
//! with it off, an unauthenticated activity is still refused.

mod support;

use std::sync::Arc;

use madoguchi::clock::ManualClock;
use madoguchi::conversation::memory::MemoryStore;
use serde_json::{json, Value};
use support::fake_botframework::{FakeBotFramework, Posted, APP_ID};
use support::service::{text, Service};

const CONVERSATION: &str = "a:1emulator-chat";

fn activity(fake: &FakeBotFramework, id: &str, kind: &str) -> Value {
    json!({
        "type": kind,
        "id": id,
        "timestamp": "2026-11-25T01:00:00Z",
        "serviceUrl": fake.service_url(),
        "channelId": "msteams",
        "from": {"id": "29:person", "name": "花子"},
        "conversation": {"id": CONVERSATION, "conversationType": "personal"},
        "recipient": {"id": format!("28:{APP_ID}"), "name": "madoguchi"},
        "locale": "ja-JP",
    })
}

/// The person joins the chat, as the Bot Framework Emulator (and the
/// benchmark harness) says it: `membersAdded` names the person.
fn person_added(fake: &FakeBotFramework, id: &str) -> Value {
    let mut added = activity(fake, id, "conversationUpdate");
    added["membersAdded"] = json!([{"id": "29:person"}]);
    added
}

fn message(fake: &FakeBotFramework, id: &str, text: &str) -> Value {
    let mut message = activity(fake, id, "message");
    message["text"] = json!(text);
    message
}

/// Posts without any `Authorization` header.
async fn post_unauthenticated(service: &Service, activity: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/messages", service.url))
        .json(activity)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

fn emulator_config() -> madoguchi::config::Config {
    let mut config = support::config();
    config.teams.emulator = true;
    config
}

async fn start(config: madoguchi::config::Config, dir: &tempfile::TempDir) -> Service {
    Service::start(
        config,
        &dir.path().join("emulator.db"),
        Arc::new(ManualClock::new(support::jst(10, 0))),
        &[],
    )
    .await
}

fn messages_to_person(fake: &FakeBotFramework) -> Vec<Posted> {
    fake.posted()
        .into_iter()
        .filter(|p| p.conversation == CONVERSATION && p.body["type"] == "message")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_it_answers_unauthenticated_activities_and_replies_without_a_token() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(emulator_config(), &dir).await;

    assert_eq!(
        post_unauthenticated(&service, &person_added(&fake, "e-1")).await,
        200
    );
    let greeting = text("greeting", &[]);
    let first = fake
        .wait_for("greeting", |p| {
            p.conversation == CONVERSATION && p.text().starts_with(&greeting)
        })
        .await;
    assert_eq!(first.reply_to.as_deref(), Some("e-1"), "answers the update");
    assert_eq!(first.body["replyToId"], "e-1");

    assert_eq!(
        post_unauthenticated(&service, &message(&fake, "e-2", "最初から")).await,
        200
    );
    fake.wait_for("the answer to e-2", |p| {
        p.reply_to.as_deref() == Some("e-2")
    })
    .await;

    let posted = fake.posted();
    assert!(posted.len() >= 2, "{posted:?}");
    for p in &posted {
        assert_eq!(p.authorization, "", "no token on {:?}", p.body);
    }
    assert_eq!(fake.token_calls(), 0, "no token is ever asked for");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_an_address_others_can_reach_serve_refuses_and_names_the_key() {
    let mut config = emulator_config();
    config.teams.listen = "0.0.0.0:0".into();
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let clock = Arc::new(ManualClock::new(support::jst(10, 0)));
    let no_env = |_: &str| None;
    let result = madoguchi::serve::run_with_listener(
        config,
        desk,
        clock,
        &no_env,
        None,
        std::future::pending::<()>(),
    )
    .await;
    let error = result.expect_err("refused").to_string();
    assert!(
        error.contains("teams.emulator") && error.contains("teams.listen"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_emulator_mode_off_an_unauthenticated_activity_is_refused() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Service::start(
        support::teams_config(&fake),
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(support::jst(10, 0))),
        &[("MADOGUCHI_TEAMS_APP_SECRET", "s3cret")],
    )
    .await;
    for activity in [
        person_added(&fake, "e-1"),
        message(&fake, "e-2", "こんにちは"),
    ] {
        assert_eq!(post_unauthenticated(&service, &activity).await, 401);
    }
    assert!(
        !service
            .desk
            .has_conversation_at("teams", CONVERSATION)
            .await
            .expect("look-up"),
        "nothing was taken"
    );
    service.stop().await;
    assert!(fake.posted().is_empty(), "{:?}", fake.posted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_typing_indicators_off_each_activity_gets_exactly_its_reply() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = emulator_config();
    config.teams.typing_indicators = false;
    let service = start(config, &dir).await;
    post_unauthenticated(&service, &person_added(&fake, "t-0")).await;
    fake.wait_for("greeting", |p| p.reply_to.as_deref() == Some("t-0"))
        .await;
    for (i, said) in ["最初から", "最初から", "最初から"].iter().enumerate() {
        let id = format!("t-{}", i + 1);
        assert_eq!(
            post_unauthenticated(&service, &message(&fake, &id, said)).await,
            200
        );
        fake.wait_for("the answer", |p| p.reply_to.as_deref() == Some(id.as_str()))
            .await;
    }
    // Stopping flushes the outbox: everything the bot would send is there.
    service.stop().await;
    let posted = fake.posted();
    assert!(
        posted.iter().all(|p| p.body["type"] == "message"),
        "only messages, no typing indicator: {:?}",
        posted.iter().map(|p| &p.body["type"]).collect::<Vec<_>>()
    );
    assert_eq!(posted.len(), messages_to_person(&fake).len());
}
