//! A person on the web chat, the agent in Teams (the fake Bot Framework):
//! the handoff card reaches the agents' channel, the agent claims, writes
//! (the person sees the text and the agent's name), the person's message
//! reaches the card's thread with the number masked, and close ends it.

mod support;
#[path = "support/web_client.rs"]
mod web_client;

use std::sync::Arc;

use madoguchi::clock::SystemClock;
use serde_json::{json, Value};
use support::fake_botframework::{FakeBotFramework, APP_ID};
use support::service::Service;
use web_client::{open, reply_text};

use support::{TEAMS_AGENTS_CONVERSATION as AGENTS_CONVERSATION, TEAMS_AGENT_AAD as AGENT_AAD};

fn config(fake: &FakeBotFramework) -> madoguchi::config::Config {
    let mut config = support::teams_config(fake);
    config.web.agents = "teams".into();
    config
}

/// An activity of the agent in `thread`, as Teams delivers it.
fn agent_activity(fake: &FakeBotFramework, id: &str, thread: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "timestamp": "2026-11-25T01:00:00Z",
        "serviceUrl": fake.service_url(),
        "channelId": "msteams",
        "from": {"id": "29:agent", "name": "佐藤", "aadObjectId": AGENT_AAD},
        "conversation": {"id": thread, "conversationType": "channel", "tenantId": "tenant-1"},
        "recipient": {"id": format!("28:{APP_ID}"), "name": "madoguchi"},
        "locale": "ja-JP",
        "channelData": {"tenant": {"id": "tenant-1"}},
    })
}

/// `text` after an @mention of the bot (Teams delivers only those).
fn mentioned(mut activity: Value, text: &str) -> Value {
    let bot = activity["recipient"].clone();
    activity["text"] = json!(format!("<at>madoguchi</at> {text}"));
    activity["entities"] = json!([{
        "type": "mention",
        "mentioned": {"id": bot["id"], "name": "madoguchi"},
        "text": "<at>madoguchi</at>",
    }]);
    activity
}

async fn post(service: &Service, fake: &FakeBotFramework, activity: &Value) -> u16 {
    assert!(
        fake.delivers(activity),
        "Teams would not deliver {activity}"
    );
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    reqwest::Client::new()
        .post(format!("{}/api/messages", service.url))
        .bearer_auth(token)
        .json(activity)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_person_and_a_teams_agent() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        config(&fake),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[("MADOGUCHI_TEAMS_APP_SECRET", "s3cret")],
    )
    .await;
    let mut page = open(&service.url, None, None).await.expect("open");
    page.hello(0).await;
    page.next_of("reply").await;
    page.send(json!({"type": "text", "text": "担当者と話したいです", "id": "p1"}))
        .await;
    page.next_of("reply").await;
    let card = fake
        .wait_for("handoff card", |p| {
            p.conversation == AGENTS_CONVERSATION && p.body["attachments"].is_array()
        })
        .await;
    let thread = format!("{AGENTS_CONVERSATION};messageid={}", card.id);

    // Claim with the card's button: the person is told, with the name.
    let mut press = agent_activity(&fake, "claim-1", &thread);
    press["value"] = card.actions()[0]["data"].clone();
    assert_eq!(post(&service, &fake, &press).await, 200);
    let claimed = page.next_of("reply").await;
    assert!(reply_text(&claimed).contains("佐藤"), "{claimed}");

    // The agent writes: the person sees it as text.
    let say = mentioned(
        agent_activity(&fake, "say-1", &thread),
        "<b>佐藤</b>です。番号を教えてください",
    );
    assert_eq!(post(&service, &fake, &say).await, 200);
    let said = page.next_of("reply").await;
    assert!(
        reply_text(&said).contains("<b>佐藤</b>です。番号を教えてください"),
        "{said}"
    );

    // The person answers: it reaches the thread, the number masked.
    page.send(json!({"type": "text", "text": "090-1234-5678 です", "id": "p2"}))
        .await;
    let relayed = {
        let thread = thread.clone();
        fake.wait_for("relay", move |p| {
            p.conversation == thread && p.text().contains("****")
        })
        .await
    };
    assert!(!relayed.text().contains("1234-5678"), "{}", relayed.text());

    // Close: the person gets the closing question.
    let close = mentioned(agent_activity(&fake, "close-1", &thread), "close");
    assert_eq!(post(&service, &fake, &close).await, 200);
    let closing = page.next_of("reply").await;
    assert!(!reply_text(&closing).is_empty());
    page.close().await;
    service.stop().await;
}
