//! Case A's lockout arithmetic and the durable reminder, with an injected
//! clock: the reminder is a stored timer that survives a restart of the whole
//! service (a new store and desk on the same SQLite file), fires once, and is
//! told at once when the conversation is resumed after its time.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::Duration;
use madoguchi::clock::{Clock, ManualClock};
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::Store;
use madoguchi::desk::Desk;
use madoguchi::flow::engine::Input;

use support::jst;

async fn open(db: &Path) -> (Desk, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(db).await.expect("open sqlite"));
    (support::desk(store.clone()), store)
}

fn ids(outcome: &madoguchi::desk::Outcome) -> Vec<String> {
    outcome
        .replies()
        .iter()
        .map(|r| r.message_id.clone())
        .collect()
}

#[tokio::test]
async fn reminder_survives_a_restart_and_fires_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reminder.db");
    let clock = ManualClock::new(jst(14, 0));

    let (desk, store) = open(&db).await;
    let started = desk
        .start("console", "u1", "ja", clock.now())
        .await
        .expect("start");
    let id = started.conversation_id.clone();
    for choice in ["start-locked", "a-count-many"] {
        desk.handle(&id, Input::Choice(choice.into()), None, clock.now())
            .await
            .expect("step");
    }
    // Last attempt "10分前" at 14:00 JST → 13:50; wait 180 min → 16:50.
    let advice = desk
        .handle(&id, Input::Text("１０分前".into()), None, clock.now())
        .await
        .expect("step");
    assert_eq!(advice.state.node, "case-a-wait");
    assert_eq!(advice.state.slots["lockout"]["retry_at_local"], "16:50");
    assert!(
        advice.replies()[0].text.contains("16:50"),
        "{}",
        advice.replies()[0].text
    );
    assert_eq!(
        store.next_timer_due(Some(&id)).await.expect("due"),
        Some(jst(16, 50))
    );

    // Not due yet: nothing fires.
    clock.set(jst(16, 49));
    assert!(desk
        .fire_due_timers(None, clock.now())
        .await
        .expect("fire")
        .is_empty());

    // The service stops; time passes while it is down.
    store.close().await;
    drop(desk);
    clock.advance(Duration::hours(2));

    // A new process on the same file: the reminder is there and fires once.
    let (desk, store) = open(&db).await;
    let resumed = desk.resume(&id, clock.now()).await.expect("resume");
    assert_eq!(ids(&resumed)[0], "reminder-lockout-over");
    assert!(resumed.replies()[0].text.contains("16:50"));
    assert_eq!(
        resumed.state.node, "case-a-reminded",
        "the reminder asks how the retry went"
    );
    assert_eq!(resumed.state.slots["lockout"]["wait_over"], true);
    assert!(desk
        .fire_due_timers(None, clock.now())
        .await
        .expect("fire")
        .is_empty());
    assert_eq!(store.next_timer_due(Some(&id)).await.expect("due"), None);
    let again = desk.resume(&id, clock.now()).await.expect("resume");
    assert!(
        !ids(&again).contains(&"reminder-lockout-over".to_string()),
        "fires once"
    );
}

#[tokio::test]
async fn service_loop_delivers_due_reminders_of_all_conversations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (desk, _store) = open(&dir.path().join("all.db")).await;
    let clock = ManualClock::new(jst(9, 0));
    let mut conversations = Vec::new();
    for user in ["a", "b"] {
        let id = desk
            .start("console", user, "en", clock.now())
            .await
            .expect("start")
            .conversation_id;
        for choice in ["start-locked", "a-count-many", "a-when-now"] {
            desk.handle(&id, Input::Choice(choice.into()), None, clock.now())
                .await
                .expect("step");
        }
        conversations.push(id);
        clock.advance(Duration::minutes(30));
    }
    clock.set(jst(12, 10));
    let fired = desk.fire_due_timers(None, clock.now()).await.expect("fire");
    assert_eq!(fired.len(), 1, "only the 9:00 conversation is due (12:00)");
    assert_eq!(fired[0].conversation_id, conversations[0]);
    assert!(
        fired[0].replies()[0].text.contains("12:00"),
        "{}",
        fired[0].replies()[0].text
    );
    assert_eq!(fired[0].locale, "en");
}

#[tokio::test]
async fn starting_over_cancels_the_reminder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (desk, store) = open(&dir.path().join("cancel.db")).await;
    let clock = ManualClock::new(jst(9, 0));
    let id = desk
        .start("console", "u", "ja", clock.now())
        .await
        .expect("start")
        .conversation_id;
    for choice in ["start-locked", "a-count-many", "a-when-now"] {
        desk.handle(&id, Input::Choice(choice.into()), None, clock.now())
            .await
            .expect("step");
    }
    assert!(store
        .next_timer_due(Some(&id))
        .await
        .expect("due")
        .is_some());
    desk.handle(
        &id,
        Input::Text("最初からやり直したい".into()),
        None,
        clock.now(),
    )
    .await
    .expect("restart");
    assert_eq!(store.next_timer_due(Some(&id)).await.expect("due"), None);
}

#[tokio::test]
async fn an_idle_conversation_expires_and_starts_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (desk, _store) = open(&dir.path().join("expiry.db")).await;
    let clock = ManualClock::new(jst(9, 0));
    let id = desk
        .start("console", "u", "ja", clock.now())
        .await
        .expect("start")
        .conversation_id;
    desk.handle(
        &id,
        Input::Choice("start-changed-carrier".into()),
        None,
        clock.now(),
    )
    .await
    .expect("step");
    clock.advance(Duration::hours(25));
    let outcome = desk
        .handle(&id, Input::Choice("c-yes".into()), None, clock.now())
        .await
        .expect("step");
    assert_eq!(ids(&outcome)[0], "session-expired");
    assert_eq!(outcome.state.node, "start");
}
