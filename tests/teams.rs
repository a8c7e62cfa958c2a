//! End to end over the Bot Framework protocol: `madoguchi::serve` with its
//! HTTP endpoint on 127.0.0.1:0, a fake Bot Framework (OpenID metadata, a
//! JWKS from an RSA key generated here, the token endpoint, the connector
//! recording every activity), a SQLite file and a manual clock.

mod support;

use std::path::Path;
use std::sync::Arc;

use madoguchi::clock::ManualClock;
use madoguchi::conversation::store::Store;
use serde_json::{json, Value};
use support::fake_botframework::{FakeBotFramework, Posted, SigningKey, APP_ID};
use support::service::{text, Service};

const PERSON_CONVERSATION: &str = "a:1person-chat";
const AGENTS_CONVERSATION: &str = "19:agents@thread.tacv2";
const AGENT_AAD: &str = "aad-agent-1";

use support::jst;

/// `serve` with Teams on the fake Bot Framework.
async fn start(fake: &FakeBotFramework, db: &Path, clock: Arc<ManualClock>) -> Service {
    Service::start(
        teams_config(fake),
        db,
        clock,
        &[("MADOGUCHI_TEAMS_APP_SECRET", "s3cret")],
    )
    .await
}

fn teams_config(fake: &FakeBotFramework) -> madoguchi::config::Config {
    let mut config = support::config();
    config.teams.app_id = APP_ID.into();
    config.teams.tenant_id = "tenant-1".into();
    config.teams.openid_metadata_url = fake.openid_url();
    config.teams.token_url = fake.token_url();
    config.teams.jwks_min_refresh_seconds = 0;
    config.teams.agents_conversation_id = AGENTS_CONVERSATION.into();
    config.teams.agents_service_url = fake.service_url();
    config.teams.agents = vec![AGENT_AAD.into()];
    config.teams.retry_base_ms = 20;
    config.teams.max_attempts = 3;
    config.teams.max_body_bytes = 64 * 1024;
    config
}

/// Posts to the service's Bot Framework endpoint.
async fn post_raw(service: &Service, token: Option<&str>, body: Vec<u8>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/messages", service.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("post").status().as_u16()
}

/// Posts `activity` with a valid token.
async fn post(service: &Service, fake: &FakeBotFramework, activity: &Value) -> u16 {
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    post_raw(service, Some(&token), activity.to_string().into_bytes()).await
}

fn activity(
    fake: &FakeBotFramework,
    id: &str,
    kind: &str,
    conversation: &str,
    conversation_type: &str,
    from: Value,
) -> Value {
    json!({
        "type": kind,
        "id": id,
        "timestamp": "2026-11-25T01:00:00Z",
        "serviceUrl": fake.service_url(),
        "channelId": "msteams",
        "from": from,
        "conversation": {"id": conversation, "conversationType": conversation_type, "tenantId": "tenant-1"},
        "recipient": {"id": format!("28:{APP_ID}"), "name": "madoguchi"},
        "locale": "ja-JP",
        "channelData": {"tenant": {"id": "tenant-1"}},
    })
}

fn person() -> Value {
    json!({"id": "29:person", "name": "花子", "aadObjectId": "aad-person"})
}

fn person_message(fake: &FakeBotFramework, id: &str, text: &str) -> Value {
    let mut a = activity(
        fake,
        id,
        "message",
        PERSON_CONVERSATION,
        "personal",
        person(),
    );
    a["text"] = json!(text);
    a
}

fn to_person(p: &Posted) -> bool {
    p.conversation == PERSON_CONVERSATION
}

async fn wait_person_text(fake: &FakeBotFramework, id: &str) -> Posted {
    let expected = text(id, &[]);
    fake.wait_for(id, move |p| to_person(p) && p.text() == expected)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_conversation_with_handoff_in_the_agents_channel() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        &fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;

    // The bot is added to a personal chat: greeting with suggested actions.
    let mut added = activity(
        &fake,
        "act-1",
        "conversationUpdate",
        PERSON_CONVERSATION,
        "personal",
        person(),
    );
    added["membersAdded"] = json!([{"id": format!("28:{APP_ID}")}]);
    assert_eq!(post(&service, &fake, &added).await, 200);
    wait_person_text(&fake, "greeting").await;
    let question = wait_person_text(&fake, "start-question").await;
    let actions = question.body["suggestedActions"]["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(actions.len(), 7);
    assert_eq!(actions[0]["type"], "imBack");
    assert!(question.authorization.starts_with("Bearer bot-token-"));

    // Pressing a suggested action sends its label back as text.
    let label = actions[2]["value"].as_str().expect("label").to_string();
    assert_eq!(
        post(&service, &fake, &person_message(&fake, "act-2", &label)).await,
        200
    );
    wait_person_text(&fake, "case-c-question").await;
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "act-3", "いいえ、乗り換えていません")
        )
        .await,
        200
    );
    wait_person_text(&fake, "case-d-ask-number").await;
    // A full-width number with ー.
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "act-4", "０９０ー１２３４ー５６７８")
        )
        .await,
        200
    );
    fake.wait_for("analysis", |p| {
        to_person(p) && p.text().contains("+81 9012345678") && p.text().contains("090ー1234ー5678")
    })
    .await;

    // To a person: a card with the summary and a Claim button in the agents' channel.
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "act-5", "担当者と話したいです")
        )
        .await,
        200
    );
    wait_person_text(&fake, "handoff-queued").await;
    let card = fake
        .wait_for("handoff card", |p| p.conversation == AGENTS_CONVERSATION)
        .await;
    let content = &card.body["attachments"][0]["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert!(card.text().contains("+81 90-****-5678"), "{}", card.text());
    assert!(!card.text().contains("1234"));
    let claim = content["actions"][0]["data"].clone();
    assert_eq!(claim["madoguchi_agent"], "claim");
    let card_id = {
        let index = fake
            .posted()
            .iter()
            .position(|p| p.conversation == AGENTS_CONVERSATION)
            .expect("card");
        format!("activity-{}", index + 1)
    };
    let thread = format!("{AGENTS_CONVERSATION};messageid={card_id}");

    // Someone who is not a configured agent presses Claim: refused.
    let mut stranger_press = activity(
        &fake,
        "act-6",
        "message",
        &thread,
        "channel",
        json!({"id": "29:x", "name": "X", "aadObjectId": "aad-stranger"}),
    );
    stranger_press["value"] = claim.clone();
    assert_eq!(post(&service, &fake, &stranger_press).await, 200);
    let refusal = text("teams-agent-only", &[]);
    fake.wait_for("refusal", move |p| {
        p.conversation.starts_with(AGENTS_CONVERSATION) && p.text() == refusal
    })
    .await;

    // The agent claims from the card.
    let agent = json!({"id": "29:agent", "name": "佐藤", "aadObjectId": AGENT_AAD});
    let mut press = activity(&fake, "act-7", "message", &thread, "channel", agent.clone());
    press["value"] = claim;
    assert_eq!(post(&service, &fake, &press).await, 200);
    fake.wait_for("claimed", |p| to_person(p) && p.text().contains("佐藤"))
        .await;

    // Agent → person; person → the card's thread.
    let mut said = activity(&fake, "act-8", "message", &thread, "channel", agent.clone());
    said["text"] = json!("<at>madoguchi</at> 先頭の0を外してください");
    assert_eq!(post(&service, &fake, &said).await, 200);
    fake.wait_for("agent message", |p| {
        to_person(p) && p.text().contains("先頭の0を外してください") && p.text().contains("佐藤")
    })
    .await;
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "act-9", "やってみます")
        )
        .await,
        200
    );
    let thread_copy = thread.clone();
    fake.wait_for("relay", move |p| {
        p.conversation == thread_copy && p.text().contains("やってみます")
    })
    .await;

    // Release at a node: the bot asks that node's question.
    let mut release = activity(
        &fake,
        "act-10",
        "message",
        &thread,
        "channel",
        agent.clone(),
    );
    release["text"] = json!("release case-e-check");
    assert_eq!(post(&service, &fake, &release).await, 200);
    wait_person_text(&fake, "handoff-released").await;
    wait_person_text(&fake, "case-e-question").await;

    // Again to a person, claim, close: the satisfaction question.
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "act-11", "やっぱり担当者と話したい")
        )
        .await,
        200
    );
    let cards = fake
        .wait_for_count("second card", 2, |p| {
            p.conversation == AGENTS_CONVERSATION && p.body["attachments"].is_array()
        })
        .await;
    let second = cards[1].body["attachments"][0]["content"]["actions"].clone();
    let mut claim2 = activity(
        &fake,
        "act-12",
        "message",
        AGENTS_CONVERSATION,
        "channel",
        agent.clone(),
    );
    claim2["value"] = second[0]["data"].clone();
    assert_eq!(post(&service, &fake, &claim2).await, 200);
    let mut close = activity(
        &fake,
        "act-13",
        "message",
        AGENTS_CONVERSATION,
        "channel",
        agent,
    );
    close["value"] = second[1]["data"].clone();
    assert_eq!(post(&service, &fake, &close).await, 200);
    let csat = wait_person_text(&fake, "csat-question").await;
    assert_eq!(
        csat.body["suggestedActions"]["actions"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let store = service.stop().await;
    let conversation = store
        .find_by_address("teams", PERSON_CONVERSATION)
        .await
        .expect("find")
        .expect("conv");
    assert_eq!(conversation.state["node"], "csat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_in_group_chats_and_choices_by_value() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        &fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;
    // The locale comes from the activity: en-US gets English.
    let mut english = activity(
        &fake,
        "e-1",
        "conversationUpdate",
        "a:english-chat",
        "personal",
        person(),
    );
    english["locale"] = json!("en-US");
    english["membersAdded"] = json!([{"id": format!("28:{APP_ID}")}]);
    assert_eq!(post(&service, &fake, &english).await, 200);
    fake.wait_for("English greeting", |p| {
        p.conversation == "a:english-chat"
            && p.text().contains("MFA")
            && !p
                .text()
                .chars()
                .any(|c| ('\u{3040}'..='\u{30FF}').contains(&c))
    })
    .await;
    let group = "19:group@thread.v2";
    let mut first = activity(&fake, "g-1", "message", group, "groupChat", person());
    first["text"] = json!("<at>madoguchi</at> MNPで携帯会社を変えました");
    assert_eq!(post(&service, &fake, &first).await, 200);
    let expected = text("case-c-question", &[]);
    let card = fake
        .wait_for("card", move |p| {
            p.conversation == group && p.text() == expected
        })
        .await;
    let actions = card.body["attachments"][0]["content"]["actions"].clone();
    assert_eq!(actions[0]["type"], "Action.Submit");
    assert!(card.body.get("suggestedActions").is_none());
    // A button press: value with the choice id, empty text.
    let mut press = activity(&fake, "g-2", "message", group, "groupChat", person());
    press["text"] = json!("");
    press["value"] = actions[1]["data"].clone();
    assert_eq!(post(&service, &fake, &press).await, 200);
    let expected = text("case-d-ask-number", &[]);
    fake.wait_for("next question", move |p| {
        p.conversation == group && p.text() == expected
    })
    .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broken_token_is_refused_and_touches_nothing() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        &fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;
    let url = fake.service_url();
    let body = person_message(&fake, "sec-1", "MNPで携帯会社を変えました")
        .to_string()
        .into_bytes();
    let key = fake.key();
    let other = SigningKey::generate(&key.kid); // same kid, wrong key
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("bad signature", Some(fake.token(&other, &url, |_| {}))),
        (
            "wrong issuer",
            Some(fake.token(&key, &url, |c| c["iss"] = json!("https://evil.example"))),
        ),
        (
            "wrong audience",
            Some(fake.token(&key, &url, |c| c["aud"] = json!("another-bot"))),
        ),
        (
            "expired",
            Some(fake.token(&key, &url, |c| c["exp"] = json!(now - 3600))),
        ),
        (
            "not yet valid",
            Some(fake.token(&key, &url, |c| c["nbf"] = json!(now + 3600))),
        ),
        ("alg none", Some(fake.unsigned_token(&url))),
        (
            "HS256 with the public key",
            Some(fake.hs256_confusion_token(&url)),
        ),
        (
            "unknown kid",
            Some(fake.token(&SigningKey::generate("key-unknown"), &url, |_| {})),
        ),
        (
            "serviceUrl mismatch",
            Some(fake.token(&key, "https://smba.example/other", |_| {})),
        ),
        ("garbage", Some("not.a.jwt".to_string())),
    ];
    // A valid token, but the activity names another tenant.
    let mut foreign = person_message(&fake, "sec-2", "MNPで携帯会社を変えました");
    foreign["conversation"]["tenantId"] = json!("tenant-other");
    let valid = fake.token(&key, &url, |_| {});
    assert_eq!(
        post_raw(&service, Some(&valid), foreign.to_string().into_bytes()).await,
        401,
        "other tenant"
    );
    for (name, token) in &cases {
        let status = post_raw(&service, token.as_deref(), body.clone()).await;
        assert_eq!(status, 401, "{name}");
    }
    assert!(
        fake.posted().is_empty(),
        "nothing sent for refused requests"
    );
    assert!(service
        .store()
        .find_by_address("teams", PERSON_CONVERSATION)
        .await
        .expect("find")
        .is_none());

    // Key rotation: a token signed with a newly published key is accepted
    // after the key set is refreshed.
    let rotated = SigningKey::generate("key-2");
    fake.add_key(rotated.clone());
    let token = fake.token(&rotated, &url, |_| {});
    assert_eq!(post_raw(&service, Some(&token), body.clone()).await, 200);
    wait_person_text(&fake, "case-c-question").await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_bodies_are_refused_before_anything() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        &fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    let mut huge = person_message(&fake, "big-1", "x");
    huge["text"] = json!("あ".repeat(100_000));
    assert_eq!(
        post_raw(&service, Some(&token), huge.to_string().into_bytes()).await,
        413
    );
    assert_eq!(
        post_raw(&service, Some(&token), b"{not json".to_vec()).await,
        400
    );
    assert_eq!(
        post_raw(&service, Some(&token), b"[1,2,3]".to_vec()).await,
        400
    );
    assert_eq!(
        post_raw(
            &service,
            Some(&token),
            br#"{"type":"message","text":"hi"}"#.to_vec()
        )
        .await,
        400
    );
    assert!(fake.posted().is_empty());
    assert!(service
        .store()
        .find_by_address("teams", PERSON_CONVERSATION)
        .await
        .expect("find")
        .is_none());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_throttling_and_one_token_for_many_replies() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        &fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;
    fake.throttle_next(0.05);
    let first = person_message(&fake, "dup-1", "MNPで携帯会社を変えました");
    assert_eq!(post(&service, &fake, &first).await, 200);
    // The same activity again (Teams retried it).
    assert_eq!(post(&service, &fake, &first).await, 200);
    wait_person_text(&fake, "case-c-question").await;
    // A sentinel proves the duplicate was handled before it.
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "dup-2", "いいえ、乗り換えていません")
        )
        .await,
        200
    );
    wait_person_text(&fake, "case-d-ask-number").await;
    let store = service.stop().await;
    let question = text("case-c-question", &[]);
    let statuses: Vec<u16> = fake
        .posted()
        .iter()
        .filter(|p| to_person(p) && p.text() == question)
        .map(|p| p.status)
        .collect();
    assert_eq!(statuses, [200], "one reply to the duplicated activity");
    let throttled: Vec<Posted> = fake
        .posted()
        .into_iter()
        .filter(|p| p.status == 429)
        .collect();
    assert_eq!(throttled.len(), 1);
    let throttled_text = throttled[0].text();
    let delivered = fake
        .posted()
        .iter()
        .filter(|p| {
            p.status == 200
                && p.text() == throttled_text
                && p.conversation == throttled[0].conversation
        })
        .count();
    assert_eq!(
        delivered, 1,
        "the throttled activity was delivered exactly once"
    );
    assert_eq!(fake.token_calls(), 1, "one token for all replies");
    let conversation = store
        .find_by_address("teams", PERSON_CONVERSATION)
        .await
        .expect("find")
        .expect("conv");
    assert_eq!(conversation.state["node"], "case-d-number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_then_a_reminder_due_during_downtime_is_sent_proactively() {
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let clock = Arc::new(ManualClock::new(jst(10, 0)));
    let service = start(&fake, &db, clock.clone()).await;
    for (id, text_in) in [
        ("r-1", "何度も試していたらロックされました"),
        ("r-2", "6回"),
        ("r-3", "たった今"),
    ] {
        assert_eq!(
            post(&service, &fake, &person_message(&fake, id, text_in)).await,
            200
        );
    }
    fake.wait_for("retry time", |p| to_person(p) && p.text().contains("13:00"))
        .await;
    service.stop().await;

    clock.set(jst(14, 0));
    let service = start(&fake, &db, clock.clone()).await;
    let reminder = text("reminder-lockout-over", &[("retry_at", "13:00")]);
    fake.wait_for("proactive reminder", move |p| {
        to_person(p) && p.text() == reminder
    })
    .await;
    // The conversation continues where it was.
    assert_eq!(
        post(
            &service,
            &fake,
            &person_message(&fake, "r-4", "認証できました")
        )
        .await,
        200
    );
    wait_person_text(&fake, "csat-question").await;
    service.stop().await;
}

/// A message from the person in their own personal chat `conversation`.
fn message_in(fake: &FakeBotFramework, conversation: &str, id: &str, text: &str) -> Value {
    let mut a = activity(fake, id, "message", conversation, "personal", person());
    a["text"] = json!(text);
    a
}

/// The person in `conversation` says hello; the endpoint accepts it.
async fn hello(service: &Service, fake: &FakeBotFramework, conversation: &str, id: &str) {
    let activity = message_in(fake, conversation, id, "こんにちは");
    assert_eq!(post(service, fake, &activity).await, 200);
}

/// Awaits the start question in `conversation`.
async fn wait_question(fake: &FakeBotFramework, conversation: &'static str) {
    let question = text("start-question", &[]);
    fake.wait_for("the start question", move |p| {
        delivered_to(conversation)(p) && p.text() == question
    })
    .await;
}

/// A fresh service on a fresh database.
async fn fresh(fake: &FakeBotFramework) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start(
        fake,
        &dir.path().join("teams.db"),
        Arc::new(ManualClock::new(jst(10, 0))),
    )
    .await;
    (dir, service)
}

fn delivered_to(conversation: &'static str) -> impl Fn(&Posted) -> bool {
    move |p: &Posted| p.conversation == conversation && p.body["type"] == "message"
}

/// Through the one generic sender with Teams' `Deliver`: a reply that keeps
/// failing is marked failed with the reason after `max_attempts`, and the
/// conversation's later replies still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_keeps_failing_is_marked_failed_and_later_ones_go_out() {
    const CHAT: &str = "a:1failing-chat";
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    fake.fail_next(CHAT, 3);
    hello(&service, &fake, CHAT, "f-1").await;
    assert_eq!(
        post(
            &service,
            &fake,
            &message_in(&fake, CHAT, "f-2", "MNPで乗り換えました")
        )
        .await,
        200
    );
    fake.wait_for("a later reply delivered", delivered_to(CHAT))
        .await;
    let store = service.stop().await;
    let statuses = fake.statuses(CHAT);
    support::assert_first_given_up_then_sent(&statuses, 3, &db, &*store, "teams", CHAT).await;
}

/// One conversation whose connector calls hang does not hold back another
/// conversation's replies; they arrive while the slow one still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_conversation_does_not_delay_the_others() {
    const SLOW: &str = "a:1slow-chat";
    const FAST: &str = "a:1fast-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    fake.hold(SLOW);
    hello(&service, &fake, SLOW, "s-1").await;
    hello(&service, &fake, FAST, "q-1").await;
    wait_question(&fake, FAST).await;
    assert!(
        fake.statuses(SLOW).is_empty(),
        "the slow conversation's reply is still waiting"
    );
    fake.release(SLOW);
    fake.wait_for("the slow conversation's greeting", delivered_to(SLOW))
        .await;
    service.stop().await;
}

/// A 429 with a long Retry-After on one conversation makes only that
/// conversation wait: another conversation's replies go out meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_conversation_waits_alone() {
    const THROTTLED: &str = "a:1throttled-chat";
    const OTHER: &str = "a:1other-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    fake.throttle(THROTTLED, 3600.0);
    hello(&service, &fake, THROTTLED, "t-1").await;
    fake.wait_for_any_status("the 429", |p| {
        p.conversation == THROTTLED && p.status == 429
    })
    .await;
    hello(&service, &fake, OTHER, "o-1").await;
    wait_question(&fake, OTHER).await;
    assert!(
        fake.statuses(THROTTLED).iter().all(|s| *s == 429),
        "the throttled conversation is still waiting out its Retry-After"
    );
    // Not stopped gracefully: a graceful stop would flush, waiting out the
    // Retry-After; the runtime ends the service with the test.
    drop(service);
}

/// When the desk cannot handle an input (here the database refuses the
/// commit: a table is gone), the person still gets the short polite
/// "please try again" answer, sent directly, and Teams gets a 500 so it may
/// retry the activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_still_gets_the_person_a_polite_answer() {
    const CHAT: &str = "a:1broken-db-chat";
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("second connection");
    sqlx::query("DROP TABLE inbound_seen")
        .execute(&pool)
        .await
        .expect("break the database");
    pool.close().await;
    let status = post(
        &service,
        &fake,
        &message_in(&fake, CHAT, "b-1", "こんにちは"),
    )
    .await;
    assert_eq!(status, 500);
    let sorry = text("desk-try-again", &[]);
    fake.wait_for("the polite answer", move |p| {
        p.conversation == CHAT && p.text() == sorry
    })
    .await;
    drop(service);
}
