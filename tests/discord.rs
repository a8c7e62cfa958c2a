//! End to end through the real serenity client against a fake Discord on
//! 127.0.0.1:0 (gateway websocket and REST with Discord's JSON shapes, see
//! `tests/support/fake_discord.rs`): `madoguchi::serve::run` with a SQLite
//! file, exactly as `madoguchi serve` runs it.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use madoguchi::clock::{Clock, ManualClock};
use madoguchi::conversation::store::{Direction, Store};
use serde_json::{json, Value};
use support::fake_discord::{self as fake, FakeDiscord, Recorded};
use support::service::{text, Service};

const PERSON: u64 = 900_000_000_000_000_001;
const OTHER_STAFF: u64 = 900_000_000_000_000_002;
const AGENT: u64 = 900_000_000_000_000_003;
const DM: u64 = 910_000_000_000_000_001;
const GUILD_TEXT: u64 = 920_000_000_000_000_001;
const STAFF_CHANNEL: u64 = 920_000_000_000_000_009;
const AGENT_ROLE: u64 = 930_000_000_000_000_001;

use support::jst;

/// `serve` with Discord on the fake (and its HTTP endpoint on port 0).
async fn start(fake: &FakeDiscord, db: &Path, clock: Arc<ManualClock>) -> Service {
    let mut config = support::config();
    config.discord.api_proxy = fake.proxy_url();
    config.discord.staff_channel_id = STAFF_CHANNEL;
    config.discord.agent_role_id = AGENT_ROLE;
    config.discord.retry_base_ms = 20;
    config.discord.max_attempts = 3;
    let service = Service::start(
        config,
        db,
        clock,
        &[("MADOGUCHI_DISCORD_TOKEN", "test-token")],
    )
    .await;
    fake.wait_ready().await;
    service
}

fn posted_to(channel: u64) -> impl Fn(&Recorded) -> bool {
    move |r: &Recorded| r.is("POST", &format!("/channels/{channel}/messages")) && r.accepted()
}

fn content(r: &Recorded) -> &str {
    r.body["content"].as_str().unwrap_or_default()
}

/// Awaits the bot's message in `channel` whose text is exactly message `id`.
async fn wait_message(fake: &FakeDiscord, channel: u64, id: &str) -> Recorded {
    let expected = text(id, &[]);
    let posted = posted_to(channel);
    fake.wait_for(id, move |r| posted(r) && content(r) == expected)
        .await
}

/// Awaits the bot's message in `channel` that contains `needle`.
async fn wait_containing(fake: &FakeDiscord, channel: u64, what: &str, needle: &str) -> Recorded {
    let needle = needle.to_string();
    let posted = posted_to(channel);
    fake.wait_for(what, move |r| posted(r) && content(r).contains(&needle))
        .await
}

/// The full message object the bot posted last in `channel` with `content`
/// (from the MESSAGE_CREATE echo Discord sends back), for a button press.
fn bot_message(fake: &FakeDiscord, channel: u64, text: &str) -> Value {
    fake.gateway_log()
        .into_iter()
        .rev()
        .filter(|f| !f.from_client && f.payload["t"] == "MESSAGE_CREATE")
        .map(|f| f.payload["d"].clone())
        .find(|d| {
            d["channel_id"].as_str() == Some(channel.to_string().as_str())
                && d["author"]["id"].as_str() == Some(FakeDiscord::BOT_ID.to_string().as_str())
                && d["content"] == text
        })
        .unwrap_or_else(|| panic!("no bot message {text:?} in channel {channel}"))
}

fn custom_ids(r: &Recorded) -> Vec<String> {
    r.body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .collect()
}

async fn press(
    fake: &FakeDiscord,
    channel: u64,
    on_text: &str,
    custom_id: &str,
    values: Option<Vec<String>>,
) -> Recorded {
    let message = bot_message(fake, channel, on_text);
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::component_interaction(
            id,
            &token,
            channel,
            None,
            fake::user(PERSON, "hanako"),
            &[],
            "ja",
            message,
            custom_id,
            values,
        ),
    )
    .await;
    fake.wait_for("component callback", move |r| {
        r.is("POST", &format!("/interactions/{id}/{token}/callback"))
    })
    .await
}

async fn dm(fake: &FakeDiscord, content: &str) -> u64 {
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::dm_message_create(id, DM, fake::user(PERSON, "hanako"), content),
    )
    .await;
    id
}

async fn command(
    fake: &FakeDiscord,
    channel: u64,
    user: u64,
    roles: &[u64],
    name: &str,
    options: Value,
) -> Recorded {
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::command_interaction(
            id,
            &token,
            channel,
            Some(FakeDiscord::GUILD_ID),
            fake::user(user, &format!("user{}", user % 1000)),
            roles,
            "ja",
            name,
            options,
        ),
    )
    .await;
    fake.wait_for("command callback", move |r| {
        r.is("POST", &format!("/interactions/{id}/{token}/callback"))
    })
    .await
}

/// `allowed_mentions` is empty on every message the bot sent.
fn assert_no_live_mentions(fake: &FakeDiscord) {
    for r in fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
    {
        let mentions = &r.body["allowed_mentions"];
        assert!(
            mentions["parse"].is_array(),
            "allowed_mentions missing: {} {}",
            r.path,
            r.body
        );
        for field in ["parse", "roles", "users"] {
            let empty =
                mentions[field].is_null() || mentions[field].as_array().is_some_and(Vec::is_empty);
            assert!(empty, "live mentions allowed: {} {}", r.path, r.body);
        }
    }
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("discord.db");
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_conversation_by_buttons_and_by_typing_a_full_width_number() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let clock = Arc::new(ManualClock::new(jst(10, 0)));
    let service = start(&fake, &db, clock).await;

    dm(&fake, "こんにちは").await;
    fake.wait_for("typing", |r| {
        r.is("POST", &format!("/channels/{DM}/typing"))
    })
    .await;
    wait_message(&fake, DM, "greeting").await;
    let question = wait_message(&fake, DM, "start-question").await;
    // Seven situations: a select menu, not seven buttons.
    assert_eq!(question.body["components"][0]["components"][0]["type"], 3);
    assert_eq!(
        question.body["components"][0]["components"][0]["options"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );

    let callback = press(
        &fake,
        DM,
        &text("start-question", &[]),
        "mg-select",
        Some(vec!["start-no-call".into()]),
    )
    .await;
    assert_eq!(
        callback.body["type"], 7,
        "update message: {}",
        callback.body
    );
    for component in callback.body["data"]["components"][0]["components"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(component["disabled"], true, "{component}");
    }
    let ask_count = wait_message(&fake, DM, "case-a-ask-count").await;
    assert_eq!(
        custom_ids(&ask_count),
        ["mg:a-count-few", "mg:a-count-many", "mg:a-count-unknown"]
    );

    let callback = press(
        &fake,
        DM,
        &text("case-a-ask-count", &[]),
        "mg:a-count-few",
        None,
    )
    .await;
    let disabled: Vec<bool> = callback.body["data"]["components"][0]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["disabled"] == true)
        .collect();
    assert_eq!(disabled, [true, true, true]);
    let b_question = wait_message(&fake, DM, "case-b-question").await;
    assert!(custom_ids(&b_question).contains(&"mg:b-changed-works".to_string()));

    // Free text at B goes to D; a full-width number with ー is understood.
    dm(&fake, "電話番号の入力方法が正しいか確認したいです").await;
    wait_message(&fake, DM, "case-d-ask-number").await;
    dm(&fake, "０９０ー１２３４ー５６７８").await;
    let analysis = wait_message(&fake, DM, "case-d-registered-question").await;
    let explained = fake
        .requests()
        .into_iter()
        .filter(|r| {
            posted_to(DM)(r)
                && content(r).contains("+81 9012345678")
                && content(r).contains("090ー1234ー5678")
        })
        .count();
    assert_eq!(
        explained, 1,
        "the analysis shows what was typed and the form to enter"
    );
    assert_eq!(
        custom_ids(&analysis),
        ["mg:d-registered-like-input", "mg:d-registered-correctly"]
    );

    assert_no_live_mentions(&fake);
    let store = service.stop().await;
    let conversation = store
        .find_by_address("discord", &DM.to_string())
        .await
        .expect("find")
        .expect("conversation");
    assert_eq!(conversation.state["node"], "case-d-missing-country-code");
    assert_eq!(
        conversation.state["slots"]["phone"]["e164"],
        "+819012345678"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_in_a_server_opens_a_private_thread() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    let callback = command(&fake, GUILD_TEXT, PERSON, &[], "mfa", json!([])).await;
    let thread_create = fake
        .wait_for("thread", |r| {
            r.is("POST", &format!("/channels/{GUILD_TEXT}/threads")) && r.accepted()
        })
        .await;
    assert_eq!(
        thread_create.body["type"], 12,
        "private thread: {}",
        thread_create.body
    );
    let member = fake
        .wait_for("thread member", |r| {
            r.method == "PUT" && r.path.ends_with(&format!("/thread-members/{PERSON}"))
        })
        .await;
    let thread: u64 = member
        .path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("thread id");
    assert_eq!(
        callback.body["data"]["flags"], 64,
        "ephemeral: {}",
        callback.body
    );
    assert!(callback.body["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .contains(&format!("<#{thread}>")));
    wait_message(&fake, thread, "greeting").await;
    assert!(
        !fake.requests().iter().any(|r| posted_to(GUILD_TEXT)(r)),
        "nothing posted in the public channel"
    );
    // Another person whose Discord is in French gets English (Japanese is
    // the fallback only when a locale has no English).
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::command_interaction(
            id,
            &token,
            GUILD_TEXT,
            Some(FakeDiscord::GUILD_ID),
            fake::user(OTHER_STAFF, "marie"),
            &[],
            "fr",
            "mfa",
            json!([]),
        ),
    )
    .await;
    let english = fake
        .wait_for("English greeting", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && content(r).contains("MFA")
                && !content(r)
                    .chars()
                    .any(|c| ('\u{3040}'..='\u{30FF}').contains(&c))
        })
        .await;
    assert!(english.accepted());
    assert_no_live_mentions(&fake);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_to_an_agent_and_back_in_a_staff_thread() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;

    dm(&fake, "登録した番号を確認したい").await;
    wait_message(&fake, DM, "case-d-ask-number").await;
    dm(&fake, "+81 090-1234-5678").await;
    wait_message(&fake, DM, "case-d-fix-question").await;
    dm(&fake, "担当者と話したいです").await;
    wait_message(&fake, DM, "handoff-queued").await;
    wait_containing(&fake, DM, "queue position", "1").await;

    let staff_thread = fake
        .wait_for("staff thread", |r| {
            r.is("POST", &format!("/channels/{STAFF_CHANNEL}/threads")) && r.accepted()
        })
        .await;
    assert_eq!(staff_thread.body["type"], 11);
    // The thread id is where the summary goes.
    let summary = fake
        .wait_for("summary", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && content(r).contains("+81 90-****-5678")
        })
        .await;
    let thread: u64 = summary
        .path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("thread");
    assert!(
        !content(&summary).contains("1234"),
        "masked: {}",
        content(&summary)
    );

    // Not an agent: refused politely, nothing happens.
    let refused = command(&fake, thread, OTHER_STAFF, &[], "claim", json!([])).await;
    assert_eq!(refused.body["data"]["flags"], 64);
    assert_eq!(
        refused.body["data"]["content"],
        text("discord-agent-only", &[])
    );

    // The agent claims: the person is told.
    command(&fake, thread, AGENT, &[AGENT_ROLE], "claim", json!([])).await;
    let agent_name = format!("user{}", AGENT % 1000);
    wait_containing(&fake, DM, "claimed", &agent_name).await;

    // Agent → person, with the agent's name.
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::guild_message_create(
            id,
            thread,
            FakeDiscord::GUILD_ID,
            fake::user(AGENT, &agent_name),
            &[AGENT_ROLE],
            "先頭の0を外して登録し直してください",
        ),
    )
    .await;
    let relayed = wait_containing(&fake, DM, "agent message", "先頭の0を外して").await;
    assert!(content(&relayed).contains(&agent_name));

    // Person → thread; the bot does not answer on its own; @everyone stays inert.
    dm(&fake, "やってみます @everyone").await;
    let to_thread = wait_containing(&fake, thread, "person relay", "やってみます").await;
    assert!(content(&to_thread).contains("@everyone"));

    // Release at a node: the bot asks that node's question again.
    command(
        &fake,
        thread,
        AGENT,
        &[AGENT_ROLE],
        "release",
        json!([{"name": "step", "type": 3, "value": "case-d-number"}]),
    )
    .await;
    wait_message(&fake, DM, "handoff-released").await;
    let asked = fake
        .wait_for_count("case D asked again", 2, |r| {
            posted_to(DM)(r) && content(r) == text("case-d-ask-number", &[])
        })
        .await;
    assert_eq!(asked.len(), 2);

    // Again to a person, claim, close: CSAT asked, transcript posted.
    dm(&fake, "やっぱり担当者と話したい").await;
    let second_thread = fake
        .wait_for_count("second staff thread", 2, |r| {
            r.is("POST", &format!("/channels/{STAFF_CHANNEL}/threads")) && r.accepted()
        })
        .await;
    assert_eq!(second_thread.len(), 2);
    let summaries = fake
        .wait_for_count("second summary", 2, |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && content(r).contains("+81 90-****-5678")
        })
        .await;
    let thread2: u64 = summaries[1]
        .path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("thread");
    command(&fake, thread2, AGENT, &[AGENT_ROLE], "claim", json!([])).await;
    command(&fake, thread2, AGENT, &[AGENT_ROLE], "close", json!([])).await;
    let csat = wait_message(&fake, DM, "csat-question").await;
    assert_eq!(custom_ids(&csat), ["mg:csat-yes", "mg:csat-no"]);
    wait_containing(&fake, thread2, "transcript", "【相談記録").await;

    assert_no_live_mentions(&fake);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_deliveries_step_once() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;

    let first = fake.next_id();
    let message = fake::dm_message_create(
        first,
        DM,
        fake::user(PERSON, "hanako"),
        "MNPで携帯会社を変えました",
    );
    fake.dispatch("MESSAGE_CREATE", message.clone()).await;
    wait_message(&fake, DM, "case-c-question").await;
    // The same MESSAGE_CREATE again (a gateway resume), then the same button
    // press twice (same interaction id).
    fake.dispatch("MESSAGE_CREATE", message).await;
    let on = bot_message(&fake, DM, &text("case-c-question", &[]));
    let id = fake.next_id();
    let token = format!("tok-{id}");
    let press = fake::component_interaction(
        id,
        &token,
        DM,
        None,
        fake::user(PERSON, "hanako"),
        &[],
        "ja",
        on,
        "mg:c-no",
        None,
    );
    fake.dispatch("INTERACTION_CREATE", press.clone()).await;
    fake.dispatch("INTERACTION_CREATE", press).await;
    wait_message(&fake, DM, "case-d-ask-number").await;
    // A sentinel after the duplicates: its answer proves they were handled.
    dm(&fake, "０９０１２３４５６７８").await;
    wait_message(&fake, DM, "case-d-registered-question").await;

    let store = service.stop().await;
    let count = |id: &str| {
        let expected = text(id, &[]);
        fake.requests()
            .iter()
            .filter(|r| posted_to(DM)(r) && content(r) == expected)
            .count()
    };
    assert_eq!(
        count("case-c-question"),
        1,
        "one reply to the duplicated message"
    );
    assert_eq!(
        count("case-d-ask-number"),
        1,
        "one step for the double press"
    );
    let callbacks = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&format!("/{id}/{token}/callback")))
        .count();
    assert_eq!(callbacks, 1);
    let conversation = store
        .find_by_address("discord", &DM.to_string())
        .await
        .expect("find")
        .expect("conversation");
    let people = store
        .transcript(&conversation.id)
        .await
        .expect("transcript")
        .into_iter()
        .filter(|l| l.direction == Direction::Person)
        .count();
    assert_eq!(people, 3, "open + one press + sentinel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_send_is_delivered_once_after_the_wait() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    fake.rate_limit_next("POST", &format!("/channels/{DM}/messages"), 0.05);
    dm(&fake, "こんにちは").await;
    wait_message(&fake, DM, "start-question").await;
    let greeting = text("greeting", &[]);
    let attempts: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.is("POST", &format!("/channels/{DM}/messages")) && content(r) == greeting)
        .map(|r| r.status)
        .collect();
    assert_eq!(attempts, [429, 200], "rejected once, then delivered once");
    service.stop().await;
}

/// Through the one generic sender with Discord's `Deliver`: a reply that
/// keeps failing is marked failed with the reason after `max_attempts`, and
/// the conversation's later replies still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_keeps_failing_is_marked_failed_and_later_ones_go_out() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    let messages = format!("/channels/{DM}/messages");
    fake.fail_next("POST", &messages, 3);
    dm(&fake, "こんにちは").await;
    let posted = posted_to(DM);
    // Only after the first reply was given up can a later one be sent.
    fake.wait_for("the first reply failing", |r| {
        r.is("POST", &messages) && r.status == 500
    })
    .await;
    dm(&fake, "MNPで乗り換えました").await;
    fake.wait_for("a later reply delivered", move |r| posted(r))
        .await;
    let store = service.stop().await;
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.is("POST", &messages))
        .map(|r| r.status)
        .collect();
    support::assert_first_given_up_then_sent(
        &statuses,
        3,
        &db,
        &*store,
        "discord",
        &DM.to_string(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_continues_and_delivers_a_reminder_due_during_downtime() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let clock = Arc::new(ManualClock::new(jst(10, 0)));
    let service = start(&fake, &db, clock.clone()).await;
    dm(&fake, "何度も試していたらロックされました").await;
    wait_message(&fake, DM, "case-a-ask-count").await;
    press(
        &fake,
        DM,
        &text("case-a-ask-count", &[]),
        "mg:a-count-many",
        None,
    )
    .await;
    wait_message(&fake, DM, "case-a-ask-when").await;
    press(
        &fake,
        DM,
        &text("case-a-ask-when", &[]),
        "mg:a-when-now",
        None,
    )
    .await;
    wait_containing(&fake, DM, "retry time", "13:00").await;
    wait_message(&fake, DM, "case-a-after-wait-question").await;
    service.stop().await;

    // Down for four hours; a new process on the same database.
    clock.set(jst(14, 0));
    let service = start(&fake, &db, clock.clone()).await;
    let reminder = text("reminder-lockout-over", &[("retry_at", "13:00")]);
    let reminder_posted = fake
        .wait_for("reminder", move |r| {
            posted_to(DM)(r) && content(r) == reminder
        })
        .await;
    assert!(content(&reminder_posted).contains("13:00"));
    // The conversation continues where it was.
    let question = text("case-a-after-wait-question", &[]);
    press(&fake, DM, &question, "mg:a-wait-worked", None).await;
    wait_message(&fake, DM, "csat-question").await;
    assert_no_live_mentions(&fake);
    let store = service.stop().await;
    assert_eq!(store.next_timer_due(None).await.expect("timers"), None);
    let _ = clock.now();
}
