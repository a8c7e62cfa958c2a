//! End to end through the real serenity client against a fake Discord on
//! 127.0.0.1:0 (gateway websocket and REST with Discord's JSON shapes, see
//! `tests/support/fake_discord.rs`): `madoguchi::serve::run` with a SQLite
//! file, exactly as `madoguchi serve` runs it.
//!
//! Discord's own rules are enforced by the fake (3-second interaction
//! deadline in the fake's manual time, where private threads can be made,
//! archive durations, DMs refused with 50007, close 4014/4004, guild-only
//! commands absent from DMs); the tests below show the bot keeps them.

#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use async_trait::async_trait;
use hooked_store::{Hook, HookedStore};
use madoguchi::clock::{Clock, ManualClock};
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::*;
use serde_json::{json, Value};
use support::fake_discord::{self as fake, FakeDiscord, Recorded};
use support::service::{text, Service};
use tokio::sync::{oneshot, watch};

const PERSON: u64 = 900_000_000_000_000_001;
const OTHER_STAFF: u64 = 900_000_000_000_000_002;
const AGENT: u64 = 900_000_000_000_000_003;
const DM: u64 = 910_000_000_000_000_001;
const GUILD_TEXT: u64 = 920_000_000_000_000_001;
const STAFF_CHANNEL: u64 = 920_000_000_000_000_009;
const AGENT_ROLE: u64 = 930_000_000_000_000_001;

use support::jst;

fn discord_config(fake: &FakeDiscord) -> madoguchi::config::Config {
    let mut config = support::config();
    config.discord.api_proxy = fake.proxy_url();
    config.discord.staff_channel_id = STAFF_CHANNEL;
    config.discord.agent_role_id = AGENT_ROLE;
    config.discord.retry_base_ms = 20;
    config.discord.max_attempts = 3;
    config
}

const TOKEN_ENV: &[(&str, &str)] = &[("MADOGUCHI_DISCORD_TOKEN", "test-token")];

/// `serve` with Discord on the fake (and its HTTP endpoint on port 0).
async fn start(fake: &FakeDiscord, db: &Path, clock: Arc<ManualClock>) -> Service {
    let service = Service::start(discord_config(fake), db, clock, TOKEN_ENV).await;
    fake.wait_ready().await;
    service
}

/// [`start`] on a store whose next call of one kind a test can hold (a
/// slow database, without sleeping).
async fn start_slow(
    fake: &FakeDiscord,
    db: &Path,
    clock: Arc<ManualClock>,
) -> (Service, Arc<SlowStore>) {
    let sqlite = Arc::new(SqliteStore::open(db).await.expect("sqlite"));
    let slow = Arc::new(SlowStore {
        inner: sqlite.clone(),
        hook: Slow {
            gate: std::sync::Mutex::new(None),
        },
    });
    let service =
        Service::start_with_store(discord_config(fake), sqlite, slow.clone(), clock, TOKEN_ENV)
            .await;
    fake.wait_ready().await;
    (service, slow)
}

/// An armed store call: its method, "reached", and the release.
type Armed = (&'static str, watch::Sender<bool>, oneshot::Receiver<()>);

/// The SQLite store, except that the next call of an armed kind waits
/// until the test releases it.
type SlowStore = HookedStore<Slow>;

/// The hook: holds the next call of the armed method.
struct Slow {
    gate: std::sync::Mutex<Option<Armed>>,
}

/// A held store call: `reached` once it waits, `release` to let it go.
struct Gate {
    reached: watch::Receiver<bool>,
    release: oneshot::Sender<()>,
}

impl Gate {
    async fn reached(&mut self) {
        tokio::time::timeout(support::wait::TIMEOUT, self.reached.wait_for(|r| *r))
            .await
            .expect("the held store call was reached")
            .expect("gate");
    }
}

impl Slow {
    /// The next call of `method` (`conversation_at`,
    /// `find_handoff_by_address`) waits for the returned gate.
    fn hold_next(&self, method: &'static str) -> Gate {
        let (reached_tx, reached) = watch::channel(false);
        let (release, release_rx) = oneshot::channel();
        *self.gate.lock().expect("gate") = Some((method, reached_tx, release_rx));
        Gate { reached, release }
    }

    async fn pass(&self, method: &'static str) {
        let held = {
            let mut gate = self.gate.lock().expect("gate");
            match gate.as_ref() {
                Some((m, _, _)) if *m == method => gate.take(),
                _ => None,
            }
        };
        if let Some((_, reached, release)) = held {
            reached.send_replace(true);
            let _ = release.await;
        }
    }
}

#[async_trait]
impl Hook for Slow {
    async fn before(&self, method: &'static str) {
        self.pass(method).await;
    }
}

/// The ephemeral answer of a deferred command: the edit of `@original`
/// through the interaction's webhook (the callback was type 5).
async fn answer(fake: &FakeDiscord, callback: &Recorded) -> String {
    assert!(
        callback.accepted(),
        "first response refused: {} {}",
        callback.status,
        callback.body
    );
    assert_eq!(callback.body["type"], 5, "deferred: {}", callback.body);
    assert_eq!(
        callback.body["data"]["flags"], 64,
        "ephemeral: {}",
        callback.body
    );
    let token = callback.path.split('/').nth(3).expect("token").to_string();
    let edit = fake
        .wait_for("the deferred answer", move |r| {
            r.is(
                "PATCH",
                &format!(
                    "/webhooks/{}/{token}/messages/@original",
                    FakeDiscord::APP_ID
                ),
            )
        })
        .await;
    assert!(
        edit.accepted(),
        "edit refused: {} {}",
        edit.status,
        edit.body
    );
    content(&edit).to_string()
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
/// (from the MESSAGE_CREATE echo Discord sends back, or the fake's copy
/// when it was posted before the bot's session was ready and so never
/// echoed — a reminder sent while the bot restarts), for a button press.
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
        .or_else(|| fake.stored_bot_message(channel, text))
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
    assert_eq!(thread_create.body["auto_archive_duration"], 10080);
    let said = answer(&fake, &callback).await;
    assert!(said.contains(&format!("<#{thread}>")), "{said}");
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
    wait_message(&fake, DM, "security-info-can-sign-in-question").await;
    dm(&fake, "担当者と話したいです").await;
    wait_message(&fake, DM, "handoff-queued").await;
    let first_in_line = text("handoff-queue-position", &[("position", "1")]);
    fake.wait_for("queue position 1", move |r| {
        posted_to(DM)(r) && content(r) == first_in_line
    })
    .await;

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
    assert_eq!(
        answer(&fake, &refused).await,
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
    wait_message(&fake, DM, "case-c-after-question").await;
    // The same MESSAGE_CREATE again (a gateway resume), then the same button
    // press twice (same interaction id).
    fake.dispatch("MESSAGE_CREATE", message).await;
    let on = bot_message(&fake, DM, &text("case-c-after-question", &[]));
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
        "mg:c-fix-continue",
        None,
    );
    fake.dispatch("INTERACTION_CREATE", press.clone()).await;
    fake.dispatch("INTERACTION_CREATE", press).await;
    wait_message(&fake, DM, "case-b-question").await;
    // A sentinel after the duplicates: its answer proves they were handled.
    dm(&fake, "拒否の設定はしていません").await;
    wait_message(&fake, DM, "case-d-ask-number").await;

    let store = service.stop().await;
    let count = |id: &str| {
        let expected = text(id, &[]);
        fake.requests()
            .iter()
            .filter(|r| posted_to(DM)(r) && content(r) == expected)
            .count()
    };
    assert_eq!(
        count("case-c-after-question"),
        1,
        "one reply to the duplicated message"
    );
    assert_eq!(count("case-b-question"), 1, "one step for the double press");
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
    // No count in the message, so the count is asked.
    dm(&fake, "ロックされたみたいです").await;
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
    wait_message(&fake, DM, "case-a-wait-question").await;
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
    press(&fake, DM, &question, "mg:a-reminded-worked", None).await;
    wait_message(&fake, DM, "csat-question").await;
    assert_no_live_mentions(&fake);
    let store = service.stop().await;
    assert_eq!(store.next_timer_due(None).await.expect("timers"), None);
    let _ = clock.now();
}

/// Dispatches a slash command without waiting; returns (id, token).
async fn send_command(
    fake: &FakeDiscord,
    channel: u64,
    guild: Option<u64>,
    user: u64,
    roles: &[u64],
    name: &str,
) -> (u64, String) {
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::command_interaction(
            id,
            &token,
            channel,
            guild,
            fake::user(user, &format!("user{}", user % 1000)),
            roles,
            "ja",
            name,
            json!([]),
        ),
    )
    .await;
    (id, token)
}

async fn callback(fake: &FakeDiscord, id: u64, token: &str) -> Recorded {
    let path = format!("/interactions/{id}/{token}/callback");
    fake.wait_for("interaction callback", move |r| r.is("POST", &path))
        .await
}

fn thread_of(r: &Recorded) -> u64 {
    r.path
        .split('/')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("channel id in the path")
}

/// Rule 1 (https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction):
/// `/mfa` while creating the private thread takes longer than 3 s (the
/// route is held while the fake's clock moves on): the first response went
/// out before, so the interaction lives and the answer is edited in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_answers_within_three_seconds_when_opening_the_thread_is_slow() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    let mut slow = fake.hold_next("POST", &format!("/channels/{GUILD_TEXT}/threads"));
    let (id, token) = send_command(
        &fake,
        GUILD_TEXT,
        Some(FakeDiscord::GUILD_ID),
        PERSON,
        &[],
        "mfa",
    )
    .await;
    slow.reached().await;
    fake.advance(Duration::from_secs(4));
    slow.release();
    let first = callback(&fake, id, &token).await;
    let said = answer(&fake, &first).await;
    let member = fake
        .wait_for("thread member", |r| {
            r.method == "PUT" && r.path.ends_with(&format!("/thread-members/{PERSON}"))
        })
        .await;
    assert!(
        said.contains(&format!("<#{}>", thread_of(&member))),
        "{said}"
    );
    let threads = fake
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", &format!("/channels/{GUILD_TEXT}/threads")))
        .count();
    assert_eq!(threads, 1, "one thread, no retry");
    service.stop().await;
}

/// Rule 1 for a button: the database answers after 3 s; the pressed
/// buttons were disabled (the first response) before it was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_answered_before_a_slow_database_is_read() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let (service, store) = start_slow(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    dm(&fake, "こんにちは").await;
    wait_message(&fake, DM, "start-question").await;
    let on = bot_message(&fake, DM, &text("start-question", &[]));
    let mut slow = store.hook.hold_next("conversation_at");
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::component_interaction(
            id,
            &token,
            DM,
            None,
            fake::user(PERSON, "hanako"),
            &[],
            "ja",
            on,
            "mg-select",
            Some(vec!["start-no-call".into()]),
        ),
    )
    .await;
    slow.reached().await;
    fake.advance(Duration::from_secs(4));
    let _ = slow.release.send(());
    let first = callback(&fake, id, &token).await;
    assert!(first.accepted(), "{} {}", first.status, first.body);
    assert_eq!(first.body["type"], 7);
    wait_message(&fake, DM, "case-a-ask-count").await;
    service.stop().await;
}

/// Rules 1 and 4 (https://discord.com/developers/docs/resources/channel#start-thread-without-message):
/// staff threads are made to stay listed for 7 days; `/claim` in a thread
/// Discord archived meanwhile, with a slow database, is acknowledged in
/// time and its note reopens the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_threads_last_a_week_and_claim_answers_in_time_in_an_archived_one() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let (service, store) = start_slow(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    dm(&fake, "担当者と話したいです").await;
    wait_message(&fake, DM, "handoff-queued").await;
    let created = fake
        .wait_for("staff thread", |r| {
            r.is("POST", &format!("/channels/{STAFF_CHANNEL}/threads")) && r.accepted()
        })
        .await;
    assert_eq!(
        created.body["auto_archive_duration"], 10080,
        "{}",
        created.body
    );
    let summary = fake
        .wait_for("summary", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && r.accepted()
                && !r.path.contains(&DM.to_string())
        })
        .await;
    let thread = thread_of(&summary);
    let metadata = fake.channel(thread).expect("thread")["thread_metadata"].clone();
    assert_eq!(metadata["auto_archive_duration"], 10080);

    fake.archive_thread(thread);
    let mut slow = store.hook.hold_next("find_handoff_by_address");
    let (id, token) = send_command(
        &fake,
        thread,
        Some(FakeDiscord::GUILD_ID),
        AGENT,
        &[AGENT_ROLE],
        "claim",
    )
    .await;
    slow.reached().await;
    fake.advance(Duration::from_secs(4));
    let _ = slow.release.send(());
    let first = callback(&fake, id, &token).await;
    assert_eq!(answer(&fake, &first).await, text("discord-agent-ack", &[]));
    wait_containing(&fake, DM, "claimed", &format!("user{}", AGENT % 1000)).await;
    let note = text(
        "agent-note-claimed",
        &[("agent", &format!("user{}", AGENT % 1000))],
    );
    wait_containing(&fake, thread, "claim note", &note).await;
    let metadata = fake.channel(thread).expect("thread")["thread_metadata"].clone();
    assert_eq!(metadata["archived"], false, "the note reopened the thread");
    service.stop().await;
}

/// Rule 2: every way `/mfa` cannot open a private thread, an unknown
/// command and a button of no conversation get a short ephemeral answer;
/// the unknown-conversation text does not send people to `/mfa` in their
/// thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_gets_a_short_ephemeral_answer() {
    const ANNOUNCEMENTS: u64 = 920_000_000_000_000_101;
    const FORUM: u64 = 920_000_000_000_000_102;
    const A_THREAD: u64 = 920_000_000_000_000_103;
    const LOCKED_DOWN: u64 = 920_000_000_000_000_104;
    let fake = FakeDiscord::start().await;
    fake.add_channel(ANNOUNCEMENTS, fake::GUILD_ANNOUNCEMENT, None);
    fake.add_channel(FORUM, fake::GUILD_FORUM, None);
    fake.add_channel(A_THREAD, fake::PUBLIC_THREAD, Some(GUILD_TEXT));
    fake.add_channel(LOCKED_DOWN, fake::GUILD_TEXT, None);
    fake.deny_bot_permissions(LOCKED_DOWN, fake::PERM_CREATE_PRIVATE_THREADS);
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;

    for (channel, expected) in [
        (ANNOUNCEMENTS, "discord-mfa-not-here"),
        (FORUM, "discord-mfa-not-here"),
        (A_THREAD, "discord-mfa-not-here"),
        (LOCKED_DOWN, "discord-mfa-no-permission"),
    ] {
        let first = command(&fake, channel, PERSON, &[], "mfa", json!([])).await;
        assert_eq!(
            answer(&fake, &first).await,
            text(expected, &[]),
            "in {channel}"
        );
    }
    let first = command(&fake, GUILD_TEXT, PERSON, &[], "helpme", json!([])).await;
    assert_eq!(
        answer(&fake, &first).await,
        text("discord-unknown-command", &[])
    );
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/threads") && r.accepted()),
        "no thread was opened"
    );

    // A button on an old message in a DM where no conversation lives.
    const OLD_DM: u64 = 910_000_000_000_000_077;
    let old = fake.next_id();
    let mut message = fake::message(old, OLD_DM, fake::bot_user(), "古い質問");
    message["components"] = json!([{ "type": 1, "components": [
        { "type": 2, "style": 1, "label": "はい", "custom_id": "mg:c-no" }
    ]}]);
    let id = fake.next_id();
    let token = format!("tok-{id}");
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::component_interaction(
            id,
            &token,
            OLD_DM,
            None,
            fake::user(PERSON, "hanako"),
            &[],
            "ja",
            message,
            "mg:c-no",
            None,
        ),
    )
    .await;
    let first = callback(&fake, id, &token).await;
    assert!(first.accepted(), "{}", first.body);
    let followup = fake
        .wait_for("ephemeral follow-up", |r| {
            r.is(
                "POST",
                &format!("/webhooks/{}/{token}", FakeDiscord::APP_ID),
            )
        })
        .await;
    assert!(followup.accepted());
    assert_eq!(followup.body["flags"], 64);
    let note = content(&followup);
    assert_eq!(note, text("discord-unknown-conversation", &[]));
    assert!(!note.contains("/mfa"), "{note}");
    service.stop().await;
}

/// The fake refuses private threads where Discord does
/// (https://discord.com/developers/docs/resources/channel#start-thread-without-message),
/// whatever the bot checks first: serenity's own calls get the errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_private_threads_where_discord_does() {
    use serenity::all::{AutoArchiveDuration, ChannelId, ChannelType, CreateThread, HttpBuilder};
    const ANNOUNCEMENTS: u64 = 920_000_000_000_000_201;
    const A_THREAD: u64 = 920_000_000_000_000_202;
    const LOCKED_DOWN: u64 = 920_000_000_000_000_203;
    let fake = FakeDiscord::start().await;
    fake.add_channel(ANNOUNCEMENTS, fake::GUILD_ANNOUNCEMENT, None);
    fake.add_channel(A_THREAD, fake::PRIVATE_THREAD, Some(GUILD_TEXT));
    fake.add_channel(LOCKED_DOWN, fake::GUILD_TEXT, None);
    fake.deny_bot_permissions(LOCKED_DOWN, fake::PERM_CREATE_PRIVATE_THREADS);
    let http = HttpBuilder::new("test-token")
        .proxy(fake.proxy_url())
        .ratelimiter_disabled(true)
        .build();
    let private = || {
        CreateThread::new("t")
            .kind(ChannelType::PrivateThread)
            .auto_archive_duration(AutoArchiveDuration::OneWeek)
    };
    let status = |r: Result<serenity::all::GuildChannel, serenity::Error>| match r {
        Ok(_) => (200, 0),
        Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code)
        }
        Err(e) => panic!("{e}"),
    };
    for (channel, expected) in [
        (ANNOUNCEMENTS, (400, 50024)),
        (A_THREAD, (400, 50024)),
        (LOCKED_DOWN, (403, 50013)),
        (GUILD_TEXT, (200, 0)),
    ] {
        let got = status(
            ChannelId::new(channel)
                .create_thread(&http, private())
                .await,
        );
        assert_eq!(got, expected, "private thread in {channel}");
    }
    let odd = CreateThread::new("t")
        .kind(ChannelType::PublicThread)
        .auto_archive_duration(AutoArchiveDuration::Unknown(5000));
    assert_eq!(
        status(ChannelId::new(GUILD_TEXT).create_thread(&http, odd).await).0,
        400
    );
}

/// Rule 3 (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes):
/// close 4014 (Message Content not enabled) and a refused token end
/// `serve` with an error naming what to fix, instead of idling offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_the_bot_cannot_recover_from_ends_serve_with_an_error() {
    async fn serve_result(fake: &FakeDiscord) -> anyhow::Result<()> {
        let store = Arc::new(madoguchi::conversation::memory::MemoryStore::new());
        let desk = support::desk(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let env =
            |name: &str| (name == "MADOGUCHI_DISCORD_TOKEN").then(|| "test-token".to_string());
        let run = madoguchi::serve::run_with_listener(
            discord_config(fake),
            desk,
            Arc::new(ManualClock::new(jst(10, 0))),
            &env,
            Some(listener),
            std::future::pending::<()>(),
        );
        tokio::time::timeout(support::wait::TIMEOUT, run)
            .await
            .expect("serve ended by itself")
    }

    let fake = FakeDiscord::start().await;
    fake.disable_privileged_intent(FakeDiscord::MESSAGE_CONTENT_INTENT);
    let error = serve_result(&fake)
        .await
        .expect_err("serve fails")
        .to_string();
    assert!(
        error.contains("4014") && error.contains("Message Content"),
        "{error}"
    );

    let fake = FakeDiscord::start().await;
    fake.revoke_token("test-token");
    let error = serve_result(&fake)
        .await
        .expect_err("serve fails")
        .to_string();
    assert!(error.contains("MADOGUCHI_DISCORD_TOKEN"), "{error}");
}

/// Rule 5 (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes, 50007):
/// case A's reminder to a person who no longer accepts DMs goes to their
/// private thread instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_the_person_refuses_by_dm_goes_to_their_private_thread() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let clock = Arc::new(ManualClock::new(jst(10, 0)));
    let service = start(&fake, &db, clock.clone()).await;
    command(&fake, GUILD_TEXT, PERSON, &[], "mfa", json!([])).await;
    let member = fake
        .wait_for("thread member", |r| {
            r.method == "PUT" && r.path.ends_with(&format!("/thread-members/{PERSON}"))
        })
        .await;
    let thread = thread_of(&member);
    wait_message(&fake, thread, "greeting").await;
    // No count in the message, so the count is asked.
    dm(&fake, "ロックされたみたいです").await;
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
    service.stop().await;

    fake.block_dms(PERSON);
    clock.set(jst(14, 0));
    let service = start(&fake, &db, clock.clone()).await;
    let reminder = text("reminder-lockout-over", &[("retry_at", "13:00")]);
    let refused = fake
        .wait_for("the refused DM", |r| {
            r.is("POST", &format!("/channels/{DM}/messages")) && r.status == 403
        })
        .await;
    assert!(content(&refused).contains("13:00"), "{}", content(&refused));
    wait_message(&fake, thread, "discord-dm-fallback-intro").await;
    let expected = reminder.clone();
    fake.wait_for("reminder in the thread", move |r| {
        posted_to(thread)(r) && content(r) == expected
    })
    .await;
    let store = service.stop().await;
    let conversation = store
        .find_by_address("discord", &DM.to_string())
        .await
        .expect("find")
        .expect("conversation");
    let reasons = support::outbox_reasons(&db, &conversation.id).await;
    assert!(
        reasons.iter().all(Option::is_none),
        "delivered: {reasons:?}"
    );
}

/// Rule 5 without a private thread: the staff thread is told, and the row
/// is marked failed with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dm_without_a_thread_tells_the_staff_thread_and_is_marked_failed() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    dm(&fake, "担当者と話したいです").await;
    wait_message(&fake, DM, "handoff-queued").await;
    let summary = fake
        .wait_for("summary", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && r.accepted()
                && !r.path.contains(&DM.to_string())
        })
        .await;
    let thread = thread_of(&summary);
    command(&fake, thread, AGENT, &[AGENT_ROLE], "claim", json!([])).await;
    let agent_name = format!("user{}", AGENT % 1000);
    wait_containing(&fake, DM, "claimed", &agent_name).await;
    fake.block_dms(PERSON);
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::guild_message_create(
            id,
            thread,
            FakeDiscord::GUILD_ID,
            fake::user(AGENT, &agent_name),
            &[AGENT_ROLE],
            "お電話番号を確認させてください",
        ),
    )
    .await;
    wait_message(&fake, thread, "discord-dm-undeliverable-note").await;
    let store = service.stop().await;
    let conversation = store
        .find_by_address("discord", &DM.to_string())
        .await
        .expect("find")
        .expect("conversation");
    let reasons = support::outbox_reasons(&db, &conversation.id).await;
    let failed: Vec<&String> = reasons.iter().flatten().collect();
    assert_eq!(failed.len(), 1, "{reasons:?}");
    assert!(
        failed[0].contains("50007") && failed[0].contains("staff thread"),
        "{}",
        failed[0]
    );
}

/// Rule 6: a long message to a person is split at sentence ends, every
/// piece under Discord's limit (the fake refuses longer ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_agent_message_reaches_the_person_split_at_sentence_ends() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let service = start(&fake, &db, Arc::new(ManualClock::new(jst(10, 0)))).await;
    dm(&fake, "担当者と話したいです").await;
    wait_message(&fake, DM, "handoff-queued").await;
    let summary = fake
        .wait_for("summary", |r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && r.accepted()
                && !r.path.contains(&DM.to_string())
        })
        .await;
    let thread = thread_of(&summary);
    command(&fake, thread, AGENT, &[AGENT_ROLE], "claim", json!([])).await;
    let agent_name = format!("user{}", AGENT % 1000);
    wait_containing(&fake, DM, "claimed", &agent_name).await;
    // Ten sentences of 199 characters: under the 2,000 an agent may type,
    // over Discord's limit once the agent's name is put in front.
    let sentence = format!("{}。", "確認".repeat(99));
    let long = sentence.repeat(10);
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::guild_message_create(
            id,
            thread,
            FakeDiscord::GUILD_ID,
            fake::user(AGENT, &agent_name),
            &[AGENT_ROLE],
            &long,
        ),
    )
    .await;
    let pieces = fake
        .wait_for_count("the split message", 2, |r| {
            posted_to(DM)(r) && content(r).contains("確認確認")
        })
        .await;
    for piece in &pieces {
        assert!(content(piece).chars().count() <= 2000);
        assert!(content(piece).ends_with('。'), "{}", content(piece));
    }
    service.stop().await;
}

/// Rule 7 (https://discord.com/developers/docs/interactions/application-commands#interaction-contexts):
/// with `guild_id` set, the commands are registered in that server and
/// `/mfa` globally for DMs only, so `/mfa` works in a DM too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_guild_id_mfa_is_also_registered_for_dms() {
    let fake = FakeDiscord::start().await;
    let (_dir, db) = temp();
    let mut config = discord_config(&fake);
    config.discord.guild_id = FakeDiscord::GUILD_ID;
    let service = Service::start(
        config,
        &db,
        Arc::new(ManualClock::new(jst(10, 0))),
        TOKEN_ENV,
    )
    .await;
    fake.wait_ready().await;
    let app = FakeDiscord::APP_ID;
    let guild = fake
        .wait_for("guild commands", move |r| {
            r.is(
                "PUT",
                &format!(
                    "/applications/{app}/guilds/{}/commands",
                    FakeDiscord::GUILD_ID
                ),
            )
        })
        .await;
    let names: Vec<&str> = guild
        .body
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["mfa", "claim", "release", "transfer", "close"]);
    let global = fake
        .wait_for("global commands", move |r| {
            r.is("PUT", &format!("/applications/{app}/commands"))
        })
        .await;
    assert!(global.accepted());
    let global = global.body.as_array().expect("list");
    assert_eq!(global.len(), 1, "{global:?}");
    assert_eq!(global[0]["name"], "mfa");
    assert_eq!(global[0]["contexts"], json!([1]), "DMs only");

    // In a DM: starts the conversation there.
    let (id, token) = send_command(&fake, DM, None, PERSON, &[], "mfa").await;
    let first = callback(&fake, id, &token).await;
    assert_eq!(
        answer(&fake, &first).await,
        text("discord-mfa-started", &[])
    );
    wait_message(&fake, DM, "greeting").await;
    service.stop().await;
}
