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
use support::{TEAMS_AGENTS_CONVERSATION as AGENTS_CONVERSATION, TEAMS_AGENT_AAD as AGENT_AAD};

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
    let mut config = support::teams_config(fake);
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

/// What [`post`] answers when Teams would not have delivered the activity
/// to the bot at all (an unmentioned channel message without RSC).
const NOT_DELIVERED: u16 = 0;

/// Sends `activity` as Teams would: only if Teams delivers it to the bot
/// ([`FakeBotFramework::delivers`]), with a valid token. Returns the
/// endpoint's status, or [`NOT_DELIVERED`].
async fn post(service: &Service, fake: &FakeBotFramework, activity: &Value) -> u16 {
    if !fake.delivers(activity) {
        return NOT_DELIVERED;
    }
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    post_raw(service, Some(&token), activity.to_string().into_bytes()).await
}

/// `text` typed after an @mention of the bot, as Teams sends it: the
/// `<at>` tag in the text and a `mention` entity naming the bot.
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

/// The `Action.Submit` data of the button for choice `id` on `card`.
fn choice_data(card: &Posted, id: &str) -> Value {
    card.actions()
        .into_iter()
        .map(|a| a["data"].clone())
        .find(|data| data["madoguchi_choice"] == id)
        .unwrap_or_else(|| panic!("no button for {id}: {:?}", card.actions()))
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
    // Seven choices: more than the three suggested actions Teams shows, so
    // an Adaptive Card with seven buttons.
    let actions = question.actions();
    assert_eq!(actions.len(), 7);
    assert_eq!(actions[0]["type"], "Action.Submit");
    assert!(question.authorization.starts_with("Bearer bot-token-"));

    // Pressing a button sends its choice id back as `value`.
    let mut press = person_message(&fake, "act-2", "");
    press["value"] = choice_data(&question, "start-check-number");
    assert_eq!(post(&service, &fake, &press).await, 200);
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
    let thread = format!("{AGENTS_CONVERSATION};messageid={}", card.id);

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
    let said = mentioned(
        activity(&fake, "act-8", "message", &thread, "channel", agent.clone()),
        "先頭の0を外してください",
    );
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
    let release = mentioned(
        activity(
            &fake,
            "act-10",
            "message",
            &thread,
            "channel",
            agent.clone(),
        ),
        "release case-e-check",
    );
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
    let first = mentioned(
        activity(&fake, "g-1", "message", group, "groupChat", person()),
        "こんにちは",
    );
    assert_eq!(post(&service, &fake, &first).await, 200);
    let expected = text("start-question", &[]);
    let card = fake
        .wait_for("card", move |p| {
            p.conversation == group && p.text() == expected
        })
        .await;
    let actions = card.actions();
    assert_eq!(actions[0]["type"], "Action.Submit");
    assert!(card.body.get("suggestedActions").is_none());
    // A button press: value with the choice id, empty text.
    let mut press = activity(&fake, "g-2", "message", group, "groupChat", person());
    press["text"] = json!("");
    press["value"] = choice_data(&card, "start-check-number");
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
    let body = person_message(&fake, "sec-1", "こんにちは")
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
    let mut foreign = person_message(&fake, "sec-2", "こんにちは");
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
    wait_person_text(&fake, "start-question").await;
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
    let first = person_message(&fake, "dup-1", "こんにちは");
    assert_eq!(post(&service, &fake, &first).await, 200);
    // The same activity again (Teams retried it).
    assert_eq!(post(&service, &fake, &first).await, 200);
    let card = wait_person_text(&fake, "start-question").await;
    // A sentinel proves the duplicate was handled before it.
    let mut press = person_message(&fake, "dup-2", "");
    press["value"] = choice_data(&card, "start-check-number");
    assert_eq!(post(&service, &fake, &press).await, 200);
    wait_person_text(&fake, "case-d-ask-number").await;
    let store = service.stop().await;
    let question = text("start-question", &[]);
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

// ---------------------------------------------------------------------
// Issue 13: Teams as it really behaves.

/// `serve` with Teams on the fake, the config changed by `change`.
async fn start_with(
    fake: &FakeBotFramework,
    db: &Path,
    change: impl FnOnce(&mut madoguchi::config::Config),
) -> Service {
    let mut config = teams_config(fake);
    change(&mut config);
    Service::start(
        config,
        db,
        Arc::new(ManualClock::new(jst(10, 0))),
        &[("MADOGUCHI_TEAMS_APP_SECRET", "s3cret")],
    )
    .await
}

fn agent() -> Value {
    json!({"id": "29:agent", "name": "佐藤", "aadObjectId": AGENT_AAD})
}

fn stranger() -> Value {
    json!({"id": "29:x", "name": "X", "aadObjectId": "aad-stranger"})
}

/// The person of `chat` asks for a person; returns the handoff card and
/// the id of its reply thread in the agents' channel.
async fn queue(service: &Service, fake: &FakeBotFramework, chat: &str) -> (Posted, String) {
    let ask = message_in(fake, chat, &format!("{chat}-ask"), "担当者と話したいです");
    assert_eq!(post(service, fake, &ask).await, 200);
    let card = fake
        .wait_for("handoff card", |p| {
            p.conversation == AGENTS_CONVERSATION && p.body["attachments"].is_array()
        })
        .await;
    let thread = format!("{AGENTS_CONVERSATION};messageid={}", card.id);
    (card, thread)
}

/// The configured agent claims the ticket of `card` with its button.
async fn claim(
    service: &Service,
    fake: &FakeBotFramework,
    card: &Posted,
    thread: &str,
    chat: &str,
) {
    let mut press = activity(
        fake,
        &format!("{chat}-claim"),
        "message",
        thread,
        "channel",
        agent(),
    );
    press["value"] = card.actions()[0]["data"].clone();
    assert_eq!(post(service, fake, &press).await, 200);
    let chat = chat.to_string();
    fake.wait_for("claimed", move |p| {
        p.conversation == chat && p.text().contains("佐藤")
    })
    .await;
}

/// GET /healthz: (status, body).
async fn health(service: &Service) -> (u16, String) {
    let response = reqwest::get(format!("{}/healthz", service.url))
        .await
        .expect("healthz");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Rule 1: without RSC, Teams delivers channel messages only when they
/// @mention the bot; agents' commands work with the mention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_mention_the_bot_in_the_card_thread() {
    const CHAT: &str = "a:1mention-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let (card, thread) = queue(&service, &fake, CHAT).await;
    claim(&service, &fake, &card, &thread, CHAT).await;
    let mut plain = activity(&fake, "m-1", "message", &thread, "channel", agent());
    plain["text"] = json!("release");
    assert_eq!(
        post(&service, &fake, &plain).await,
        NOT_DELIVERED,
        "Teams does not deliver an unmentioned channel message"
    );
    let release = mentioned(
        activity(&fake, "m-2", "message", &thread, "channel", agent()),
        "release",
    );
    assert_eq!(post(&service, &fake, &release).await, 200);
    let released = text("handoff-released", &[]);
    fake.wait_for("released", move |p| {
        p.conversation == CHAT && p.text() == released
    })
    .await;
    service.stop().await;
}

/// Rule 1: with mentions required (the default), a staff message without a
/// mention that still reaches the bot (the app was installed with RSC)
/// stays internal: it is not relayed to the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_rsc_setting_unmentioned_staff_chat_stays_internal() {
    const CHAT: &str = "a:1internal-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let (card, thread) = queue(&service, &fake, CHAT).await;
    claim(&service, &fake, &card, &thread, CHAT).await;
    fake.set_rsc(true);
    let mut internal = activity(&fake, "i-1", "message", &thread, "channel", agent());
    internal["text"] = json!("内部メモ：番号を確認中");
    assert_eq!(post(&service, &fake, &internal).await, 200);
    let said = mentioned(
        activity(&fake, "i-2", "message", &thread, "channel", agent()),
        "先頭の0を外してください",
    );
    assert_eq!(post(&service, &fake, &said).await, 200);
    fake.wait_for("the mentioned message", |p| {
        p.conversation == CHAT && p.text().contains("先頭の0を外してください")
    })
    .await;
    assert!(
        !fake
            .posted()
            .iter()
            .any(|p| p.conversation == CHAT && p.text().contains("内部メモ")),
        "internal staff chat reached the person"
    );
    service.stop().await;
}

/// Rule 1: with `teams.rsc_channel_messages` (and the RSC permissions
/// granted), agents type commands without a mention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rsc_agents_type_commands_without_a_mention() {
    const CHAT: &str = "a:1rsc-chat";
    let fake = FakeBotFramework::start().await;
    fake.set_rsc(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let service = start_with(&fake, &dir.path().join("teams.db"), |c| {
        c.teams.rsc_channel_messages = true;
    })
    .await;
    let (card, thread) = queue(&service, &fake, CHAT).await;
    claim(&service, &fake, &card, &thread, CHAT).await;
    let mut release = activity(&fake, "r-1", "message", &thread, "channel", agent());
    release["text"] = json!("release");
    assert_eq!(post(&service, &fake, &release).await, 200);
    let released = text("handoff-released", &[]);
    fake.wait_for("released", move |p| {
        p.conversation == CHAT && p.text() == released
    })
    .await;
    service.stop().await;
}

/// Rule 2: a token endpoint that refuses the credentials is an outage:
/// replies stay pending (none marked failed), `/healthz` says what to fix,
/// and everything goes out once the token endpoint recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_outage_keeps_replies_pending_and_healthz_names_the_settings() {
    const CHAT: &str = "a:1outage-chat";
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    assert_eq!(health(&service).await, (200, "ok".to_string()));
    fake.fail_token(401, "invalid_client");
    hello(&service, &fake, CHAT, "o-1").await;
    // More failed token requests than teams.max_attempts (3).
    fake.wait_token_calls(4).await;
    let (status, body) = health(&service).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("teams.app_type") && body.contains("teams.tenant_id"),
        "{body}"
    );
    fake.recover_token();
    wait_question(&fake, CHAT).await;
    assert_eq!(health(&service).await, (200, "ok".to_string()));
    let store = service.stop().await;
    let conversation = store
        .find_by_address("teams", CHAT)
        .await
        .expect("find")
        .expect("conversation");
    let reasons = support::outbox_reasons(&db, &conversation.id).await;
    assert!(!reasons.is_empty());
    assert!(reasons.iter().all(Option::is_none), "{reasons:?}");
}

/// Rule 3: in the agents' channel only messages are commands; other
/// activities are ignored. Only a personal chat is greeted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_not_commands_and_only_personal_chats_are_greeted() {
    const GROUP: &str = "19:greet-group@thread.v2";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let bot = json!([{"id": format!("28:{APP_ID}")}]);
    let mut added = activity(
        &fake,
        "e-1",
        "conversationUpdate",
        AGENTS_CONVERSATION,
        "channel",
        agent(),
    );
    added["membersAdded"] = bot.clone();
    let mut installed = activity(
        &fake,
        "e-2",
        "installationUpdate",
        AGENTS_CONVERSATION,
        "channel",
        agent(),
    );
    installed["action"] = json!("add");
    let mut reaction = activity(
        &fake,
        "e-3",
        "messageReaction",
        &format!("{AGENTS_CONVERSATION};messageid=activity-9"),
        "channel",
        agent(),
    );
    reaction["reactionsAdded"] = json!([{"type": "like"}]);
    let mut group = activity(
        &fake,
        "e-4",
        "conversationUpdate",
        GROUP,
        "groupChat",
        person(),
    );
    group["membersAdded"] = bot;
    for event in [&added, &installed, &reaction, &group] {
        assert_eq!(post(&service, &fake, event).await, 200);
    }
    assert!(
        !service
            .desk
            .has_conversation_at("teams", GROUP)
            .await
            .expect("look-up"),
        "a group chat is not greeted"
    );
    // A sentinel: a real (refused) command; its note comes after any note
    // the events would have caused.
    let sentinel = mentioned(
        activity(
            &fake,
            "e-5",
            "message",
            AGENTS_CONVERSATION,
            "channel",
            stranger(),
        ),
        "claim",
    );
    assert_eq!(post(&service, &fake, &sentinel).await, 200);
    let not_a_ticket = text("teams-not-a-ticket", &[]);
    fake.wait_for("the sentinel's note", move |p| p.text() == not_a_ticket)
        .await;
    let notes = fake
        .posted()
        .iter()
        .filter(|p| p.conversation.starts_with(AGENTS_CONVERSATION))
        .count();
    assert_eq!(notes, 1, "only the sentinel was answered");
    service.stop().await;
}

/// Rule 4: bots cannot post in private channels. A handoff card the
/// agents' channel refuses is reported to the operator, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_agents_channel_is_reported_to_the_operator() {
    const CHAT: &str = "a:1private-chat";
    let fake = FakeBotFramework::start().await;
    fake.make_private(AGENTS_CONVERSATION);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    let ask = message_in(&fake, CHAT, "p-1", "担当者と話したいです");
    assert_eq!(post(&service, &fake, &ask).await, 200);
    // A later row of the same conversation: the card's row was handled first.
    let wait = message_in(&fake, CHAT, "p-2", "まだですか");
    assert_eq!(post(&service, &fake, &wait).await, 200);
    let ack = text("queued-ack", &[]);
    fake.wait_for("the queued acknowledgement", move |p| {
        p.conversation == CHAT && p.text() == ack
    })
    .await;
    let (status, body) = health(&service).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("teams.agents_conversation_id"), "{body}");
    let store = service.stop().await;
    let conversation = store
        .find_by_address("teams", CHAT)
        .await
        .expect("find")
        .expect("conversation");
    let reasons = support::outbox_reasons(&db, &conversation.id).await;
    assert!(
        reasons
            .iter()
            .flatten()
            .any(|r| r.contains("teams.agents_conversation_id")),
        "{reasons:?}"
    );
}

/// Rule 5: a burst into the agents' channel (one thread for Teams, however
/// many reply threads) is paced under the per-thread limit: no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_into_the_agents_channel_is_paced_under_the_thread_limit() {
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let n = 10;
    for i in 0..n {
        let thread = format!("{AGENTS_CONVERSATION};messageid=root-{i}");
        let refused = mentioned(
            activity(
                &fake,
                &format!("b-{i}"),
                "message",
                &thread,
                "channel",
                stranger(),
            ),
            "claim",
        );
        assert_eq!(post(&service, &fake, &refused).await, 200);
    }
    let not_a_ticket = text("teams-not-a-ticket", &[]);
    fake.wait_for_count("every note", n, move |p| p.text() == not_a_ticket)
        .await;
    let statuses = fake.thread_statuses(AGENTS_CONVERSATION);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    service.stop().await;
}

/// Rule 5: when the second activity of a row fails, the retry sends only
/// what was not accepted: the person sees the greeting once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_row_does_not_resend_the_activities_already_accepted() {
    const CHAT: &str = "a:1progress-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    fake.script(CHAT, &[200, 500]);
    hello(&service, &fake, CHAT, "g-1").await;
    wait_question(&fake, CHAT).await;
    let greeting = text("greeting", &[]);
    let greetings = fake
        .posted()
        .iter()
        .filter(|p| p.conversation == CHAT && p.text() == greeting)
        .count();
    assert_eq!(greetings, 1, "the greeting was sent again");
    service.stop().await;
}

/// Rule 5 across a crash: the activities Teams accepted are recorded on
/// the row, so a deliverer with nothing in memory (a restarted process,
/// another instance) sends only the rest: the first part is not posted
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_redelivered_after_a_crash_skips_the_activities_already_accepted() {
    use madoguchi::channels::teams::{deliver::TeamsDeliver, TeamsContext};
    use madoguchi::outbox::{Deliver, OutboxItem, OutboxRow, RenderedReply};
    const CHAT: &str = "a:1crash-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    hello(&service, &fake, CHAT, "c-1").await;
    wait_question(&fake, CHAT).await;
    let store = service.stop().await;
    let conversation = store
        .find_by_address("teams", CHAT)
        .await
        .expect("find")
        .expect("conversation")
        .id;
    let reply = |text: &str| RenderedReply {
        message_id: "m".into(),
        text: text.into(),
        choices: Vec::new(),
    };
    let row = OutboxRow::Replies {
        replies: vec![reply("一つ目の部分"), reply("二つ目の部分")],
    };
    let id = store
        .enqueue(&conversation, "teams", row.to_payload(), chrono::Utc::now())
        .await
        .expect("enqueue");
    let item = OutboxItem {
        id,
        conversation_id: conversation,
        row,
    };
    let config = teams_config(&fake).teams;
    let env = |name: &str| (name == "MADOGUCHI_TEAMS_APP_SECRET").then(|| "s3cret".to_string());
    let credential = config.credential(&env).expect("credential");
    let desk = support::desk(store.clone());
    let process = || {
        TeamsDeliver::new(Arc::new(TeamsContext::new(
            desk.clone(),
            Arc::new(ManualClock::new(jst(10, 0))),
            config.clone(),
            credential.clone(),
        )))
    };
    // The first part is accepted, the second refused; then the process dies.
    fake.script(CHAT, &[200, 500]);
    assert!(process().deliver(&item).await.is_err());
    let receipt = process()
        .deliver_with_receipt(&item)
        .await
        .expect("the rest is delivered");
    let accepted = |text: &'static str| {
        fake.posted()
            .iter()
            .filter(|p| p.conversation == CHAT && p.status == 200 && p.text() == text)
            .count()
    };
    assert_eq!(
        accepted("一つ目の部分"),
        1,
        "the first part was posted twice"
    );
    assert_eq!(accepted("二つ目の部分"), 1);
    let ids: Vec<Option<String>> =
        serde_json::from_str(&receipt.expect("a receipt")).expect("a JSON list");
    assert_eq!(ids.len(), 2, "{ids:?}");
}

/// Rule 5: 412 (another operation on the conversation, e.g. the typing
/// indicator) is retried, and the typing indicator does not race replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_412_is_retried_and_typing_does_not_race_the_reply() {
    const SCRIPTED: &str = "a:1precondition-chat";
    const SLOW: &str = "a:1typing-chat";
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    fake.script(SCRIPTED, &[412]);
    hello(&service, &fake, SCRIPTED, "s-1").await;
    wait_question(&fake, SCRIPTED).await;
    fake.set_delay_ms(150);
    hello(&service, &fake, SLOW, "s-2").await;
    wait_question(&fake, SLOW).await;
    assert!(
        !fake.thread_statuses(SLOW).contains(&412),
        "{:?}",
        fake.thread_statuses(SLOW)
    );
    let store = service.stop().await;
    for chat in [SCRIPTED, SLOW] {
        let conversation = store
            .find_by_address("teams", chat)
            .await
            .expect("find")
            .expect("conversation");
        let reasons = support::outbox_reasons(&db, &conversation.id).await;
        assert!(reasons.iter().all(Option::is_none), "{chat}: {reasons:?}");
    }
}

/// Rule 6: Adaptive Card TextBlocks are Markdown: what a person typed is
/// escaped (no live link in a card shown to staff) and lines stay lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_text_in_cards_is_escaped_and_lines_are_kept() {
    const CHAT: &str = "a:1markdown-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let typed = "[click](http://evil) *至急* _です_";
    assert_eq!(
        post(&service, &fake, &message_in(&fake, CHAT, "md-1", typed)).await,
        200
    );
    let (card, _thread) = queue(&service, &fake, CHAT).await;
    assert!(card.links().is_empty(), "live links: {:?}", card.links());
    let shown = card.text();
    assert!(shown.contains(typed), "{shown}");
    let conversation = service
        .store()
        .find_by_address("teams", CHAT)
        .await
        .expect("find")
        .expect("conversation");
    let summary = service
        .store()
        .handoffs(&conversation.id)
        .await
        .expect("handoffs")
        .remove(0)
        .summary;
    assert!(summary.lines().count() > 1, "{summary}");
    assert!(
        shown.starts_with(&summary),
        "the summary's lines ran together:\n{shown}\n---\n{summary}"
    );
    service.stop().await;
}

/// Rule 7: a message over the connector's size limit is split, not lost:
/// a long message relayed to agents and the transcript at close arrive in
/// parts, each under the limit, nothing refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_relays_and_transcripts_are_split_under_the_size_limit() {
    const CHAT: &str = "a:1long-chat";
    let fake = FakeBotFramework::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("teams.db");
    let service = start_with(&fake, &db, |c| {
        c.general.max_input_chars = 30_000;
        c.teams.max_body_bytes = 1024 * 1024;
    })
    .await;
    let (card, thread) = queue(&service, &fake, CHAT).await;
    claim(&service, &fake, &card, &thread, CHAT).await;
    // 26,400 characters: 70,400 bytes in UTF-16 (the connector's measure).
    let long = "あいう👍🏽え".repeat(4_400);
    assert_eq!(
        post(&service, &fake, &message_in(&fake, CHAT, "l-1", &long)).await,
        200
    );
    let mut close = activity(&fake, "l-2", "message", &thread, "channel", agent());
    close["value"] = card.actions()[1]["data"].clone();
    assert_eq!(post(&service, &fake, &close).await, 200);
    // Stopping flushes the outbox: every part has been posted.
    let store = service.stop().await;
    let parts: Vec<Posted> = fake
        .posted()
        .into_iter()
        .filter(|p| p.conversation == thread && p.text().contains("あいう"))
        .collect();
    assert!(
        parts.iter().all(|p| p.status == 200),
        "{:?}",
        parts.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(parts.len() >= 4, "{} parts", parts.len());
    for part in &parts {
        let size = part.body.to_string().encode_utf16().count() * 2;
        assert!(size <= 28 * 1024, "a part of {size} bytes");
        assert!(!part.text().starts_with('\u{1F3FD}'), "split inside 👍🏽");
    }
    let total: usize = parts
        .iter()
        .map(|p| p.text().matches("あいう👍🏽え").count())
        .sum();
    // The relay whole, the transcript's line as stored (at most 20,000
    // characters); a repetition cut between two parts is not counted.
    let expected = 4_400 + madoguchi::desk::TRANSCRIPT_MAX_CHARS / 6;
    assert!(
        total >= expected - parts.len(),
        "{total} of {expected} repetitions arrived"
    );
    let conversation = store
        .find_by_address("teams", CHAT)
        .await
        .expect("find")
        .expect("conversation");
    let reasons = support::outbox_reasons(&db, &conversation.id).await;
    assert!(reasons.iter().all(Option::is_none), "{reasons:?}");
}

/// Rule 8: the tenant is read from `channelData.tenant.id` (present in all
/// contexts); with a tenant configured, an activity naming another tenant
/// there, or no tenant at all, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_is_read_from_channel_data_and_required() {
    const CHAT: &str = "a:1tenant-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let mut foreign = message_in(&fake, CHAT, "t-1", "こんにちは");
    foreign["conversation"]
        .as_object_mut()
        .expect("conversation")
        .remove("tenantId");
    foreign["channelData"]["tenant"]["id"] = json!("tenant-other");
    assert_eq!(post(&service, &fake, &foreign).await, 401, "another tenant");
    let mut unknown = foreign.clone();
    unknown["id"] = json!("t-2");
    unknown
        .as_object_mut()
        .expect("activity")
        .remove("channelData");
    assert_eq!(post(&service, &fake, &unknown).await, 401, "no tenant");
    assert!(!service
        .desk
        .has_conversation_at("teams", CHAT)
        .await
        .expect("look-up"));
    let mut ours = foreign.clone();
    ours["id"] = json!("t-3");
    ours["channelData"]["tenant"]["id"] = json!("tenant-1");
    assert_eq!(post(&service, &fake, &ours).await, 200, "our tenant");
    wait_question(&fake, CHAT).await;
    service.stop().await;
}

/// Rule 9: Teams redelivers an activity it got no timely answer to; a
/// refusal note is written once per activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_refused_activity_gets_one_note() {
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let first_thread = format!("{AGENTS_CONVERSATION};messageid=root-a");
    let second_thread = format!("{AGENTS_CONVERSATION};messageid=root-b");
    let refused = mentioned(
        activity(
            &fake,
            "n-1",
            "message",
            &first_thread,
            "channel",
            stranger(),
        ),
        "claim",
    );
    assert_eq!(post(&service, &fake, &refused).await, 200);
    assert_eq!(post(&service, &fake, &refused).await, 200, "redelivered");
    let other = mentioned(
        activity(
            &fake,
            "n-2",
            "message",
            &second_thread,
            "channel",
            stranger(),
        ),
        "claim",
    );
    assert_eq!(post(&service, &fake, &other).await, 200);
    let second = second_thread.clone();
    fake.wait_for("the later note", move |p| p.conversation == second)
        .await;
    let notes = fake
        .posted()
        .iter()
        .filter(|p| p.conversation == first_thread)
        .count();
    assert_eq!(notes, 1, "one note for one activity");
    service.stop().await;
}

/// Rule 9: refreshing the signing keys (an unknown `kid`) never holds up
/// requests signed with a known key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refresh_does_not_hold_up_requests_with_known_keys() {
    const CHAT: &str = "a:1keys-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    hello(&service, &fake, CHAT, "k-1").await;
    let fetches = fake.key_fetches();
    fake.hold_keys();
    let unknown = fake.token(
        &SigningKey::generate("key-unknown"),
        &fake.service_url(),
        |_| {},
    );
    let body = message_in(&fake, CHAT, "k-2", "こんにちは").to_string();
    let url = service.url.clone();
    let refreshing = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/api/messages"))
            .header("content-type", "application/json")
            .bearer_auth(unknown)
            .body(body)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    });
    fake.wait_key_fetches(fetches + 1).await;
    let known = message_in(&fake, CHAT, "k-3", "MNPで乗り換えました");
    let status = tokio::time::timeout(support::wait::TIMEOUT, post(&service, &fake, &known))
        .await
        .expect("a request with a known key waited for the key refresh");
    assert_eq!(status, 200);
    fake.release_keys();
    assert_eq!(refreshing.await.expect("task"), 401);
    service.stop().await;
}

/// Rule 10: Teams shows three suggested actions at most; the greeting's
/// seven choices come as a card, and the last one (a person) works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_choices_are_a_card_and_the_last_one_is_reachable() {
    const CHAT: &str = "a:1seven-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    hello(&service, &fake, CHAT, "c-1").await;
    let question = text("start-question", &[]);
    let card = fake
        .wait_for("the start question", move |p| {
            p.conversation == CHAT && p.text() == question
        })
        .await;
    let actions = card.actions();
    assert_eq!(actions.len(), 7);
    assert_eq!(actions[6]["title"], text("choice-start-human", &[]));
    let mut press = message_in(&fake, CHAT, "c-2", "");
    press["value"] = actions[6]["data"].clone();
    assert_eq!(post(&service, &fake, &press).await, 200);
    fake.wait_for("the handoff card", |p| {
        p.conversation == AGENTS_CONVERSATION
    })
    .await;
    service.stop().await;
}

/// Rule 10: the signing key must be endorsed for the activity's channel: a
/// token signed with a key endorsed only for another channel is a forgery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_endorsed_for_another_channel_is_refused() {
    const CHAT: &str = "a:1endorsed-chat";
    let fake = FakeBotFramework::start().await;
    let (_dir, service) = fresh(&fake).await;
    let webchat = SigningKey::generate_endorsed("key-webchat", &["webchat"]);
    fake.add_key(webchat.clone());
    let forged = fake.token(&webchat, &fake.service_url(), |_| {});
    let body = message_in(&fake, CHAT, "f-1", "こんにちは")
        .to_string()
        .into_bytes();
    assert_eq!(post_raw(&service, Some(&forged), body.clone()).await, 401);
    let mut other_channel = message_in(&fake, CHAT, "f-2", "こんにちは");
    other_channel["channelId"] = json!("webchat");
    let teams_key = fake.token(&fake.key(), &fake.service_url(), |_| {});
    assert_eq!(
        post_raw(
            &service,
            Some(&teams_key),
            other_channel.to_string().into_bytes()
        )
        .await,
        401
    );
    assert!(fake.posted().is_empty());
    assert_eq!(post_raw(&service, Some(&teams_key), body).await, 200);
    wait_question(&fake, CHAT).await;
    service.stop().await;
}

/// Rule 1: the shipped manifest and the default config agree: no RSC
/// permissions, so mentions are required (the fake reads the manifest).
#[test]
fn the_shipped_manifest_matches_the_default_mention_rule() {
    assert_eq!(
        support::fake_botframework::manifest_grants_rsc(),
        madoguchi::channels::teams::TeamsConfig::default().rsc_channel_messages
    );
}
