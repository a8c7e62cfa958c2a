//! A person on the web chat, the agent in Teams (the fake Bot Framework)
//! or in Discord (the fake Discord, `desk.agents = "discord"`): the
//! handoff card or staff thread opens on the agents' side, the agent
//! claims, writes (the person sees the text and the agent's name), the
//! person's message reaches the agents with the number masked, and
//! release and close end it.

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

/// The next reply on the page whose text contains `needle` (earlier ones
/// are skipped).
async fn reply_containing(page: &mut web_client::WebClient, needle: &str) -> Value {
    loop {
        let reply = page.next_of("reply").await;
        if reply_text(&reply).contains(needle) {
            return reply;
        }
    }
}

/// The same with the agent in the Discord staff channel
/// (`desk.agents = "discord"`, the fake Discord): the handoff opens a
/// staff thread with the summary, `/claim` tells the person the agent's
/// name, the agent's text reaches the page as text, the person's number
/// reaches the thread masked, `/release` at a node hands back to the bot
/// there, and a second handoff is claimed and closed (satisfaction
/// question on the page, transcript in the thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_person_and_a_discord_agent() {
    use support::fake_discord::FakeDiscord;
    use support::service::text;
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        fake.agents_config(support::config()),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[("MADOGUCHI_DISCORD_TOKEN", "test-token")],
    )
    .await;
    fake.wait_ready().await;
    let mut page = open(&service.url, None, None).await.expect("open");
    page.hello(0).await;
    page.next_of("reply").await;
    page.send(json!({"type": "text", "text": "担当者と話したいです", "id": "p1"}))
        .await;
    let (thread, summary) = fake.new_staff_thread(&[]).await;
    assert!(
        !summary.body["content"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        summary.body
    );

    let claim = fake.agent_command(thread, "claim", json!([])).await;
    assert!(claim.accepted(), "{}", claim.body);
    reply_containing(&mut page, FakeDiscord::AGENT_NAME).await;

    fake.agent_says(thread, "<b>佐藤</b>です。番号を教えてください")
        .await;
    reply_containing(&mut page, "<b>佐藤</b>です。番号を教えてください").await;

    page.send(json!({"type": "text", "text": "090-1234-5678 です", "id": "p2"}))
        .await;
    let relayed = fake.posted_containing(thread, "****").await;
    let relayed = relayed.body["content"].as_str().unwrap_or_default();
    assert!(!relayed.contains("1234-5678"), "{relayed}");
    assert!(relayed.contains("です"), "{relayed}");

    // Back to the bot at a node: the page is asked that node's question.
    fake.agent_command(
        thread,
        "release",
        json!([{"name": "step", "type": 3, "value": "case-d-number"}]),
    )
    .await;
    reply_containing(&mut page, &text("case-d-ask-number", &[])).await;

    // A second handoff, claimed and closed.
    page.send(json!({"type": "text", "text": "やっぱり担当者と話したい", "id": "p3"}))
        .await;
    let (second, _) = fake.new_staff_thread(&[thread]).await;
    fake.agent_command(second, "claim", json!([])).await;
    reply_containing(&mut page, FakeDiscord::AGENT_NAME).await;
    fake.agent_command(second, "close", json!([])).await;
    let csat = reply_containing(&mut page, &text("csat-question", &[])).await;
    assert_eq!(
        web_client::choice_ids(&csat),
        ["csat-yes", "csat-no"],
        "{csat}"
    );
    fake.posted_containing(second, "【相談記録").await;
    page.close().await;
    service.stop().await;
}

/// `desk.agents` applies to every channel: a person in Discord (a DM) with
/// the agents in Teams. The handoff opens a card in the Teams agents'
/// channel (no staff thread in Discord), the claim and the agent's text
/// reach the DM, the person's number reaches the card's thread masked,
/// and close asks the satisfaction question in the DM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discord_person_and_a_teams_agent() {
    use support::fake_discord::{self as fake_discord, FakeDiscord};
    use support::service::text;
    const PERSON: u64 = 900_000_000_000_000_001;
    const DM: u64 = 910_000_000_000_000_001;
    let teams = FakeBotFramework::start().await;
    let discord = FakeDiscord::start().await;
    let mut config = discord.agents_config(support::teams_config(&teams));
    config.desk.agents = "teams".into();
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        config,
        &dir.path().join("both.db"),
        Arc::new(SystemClock),
        &[
            ("MADOGUCHI_TEAMS_APP_SECRET", "s3cret"),
            ("MADOGUCHI_DISCORD_TOKEN", "test-token"),
        ],
    )
    .await;
    discord.wait_ready().await;
    let dm = |content: &str| {
        let id = discord.next_id();
        let event =
            fake_discord::dm_message_create(id, DM, fake_discord::user(PERSON, "hanako"), content);
        let discord = discord.clone();
        async move { discord.dispatch("MESSAGE_CREATE", event).await }
    };
    dm("担当者と話したいです").await;
    discord
        .posted_containing(DM, &text("handoff-queued", &[]))
        .await;
    let card = teams
        .wait_for("handoff card", |p| {
            p.conversation == AGENTS_CONVERSATION && p.body["attachments"].is_array()
        })
        .await;
    let thread = format!("{AGENTS_CONVERSATION};messageid={}", card.id);

    let mut press = agent_activity(&teams, "claim-1", &thread);
    press["value"] = card.actions()[0]["data"].clone();
    assert_eq!(post(&service, &teams, &press).await, 200);
    discord.posted_containing(DM, "佐藤").await;

    let say = mentioned(
        agent_activity(&teams, "say-1", &thread),
        "先頭の0を外して登録し直してください",
    );
    assert_eq!(post(&service, &teams, &say).await, 200);
    discord.posted_containing(DM, "先頭の0を外して").await;

    dm("090-1234-5678 です").await;
    let relayed = {
        let thread = thread.clone();
        teams
            .wait_for("relay", move |p| {
                p.conversation == thread && p.text().contains("****")
            })
            .await
    };
    assert!(!relayed.text().contains("1234-5678"), "{}", relayed.text());

    let close = mentioned(agent_activity(&teams, "close-1", &thread), "close");
    assert_eq!(post(&service, &teams, &close).await, 200);
    discord
        .posted_containing(DM, &text("csat-question", &[]))
        .await;
    let threads = discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/threads"))
        .count();
    assert_eq!(threads, 0, "no staff thread in Discord");
    service.stop().await;
}
