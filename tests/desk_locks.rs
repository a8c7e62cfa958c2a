//! The desk's per-conversation locks: inputs of one conversation are
//! stepped one at a time, and the lock map keeps only the conversations
//! being worked on (it used to grow by one entry per conversation forever);
//! two first messages at one address open one conversation.

#[path = "support/gated_store.rs"]
mod gated_store;
#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;

use std::sync::Arc;

use madoguchi::conversation::memory::MemoryStore;
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::{Direction, Store};
use madoguchi::desk::Inbound;
use madoguchi::flow::engine::Input;
use support::jst;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_map_is_pruned_when_inputs_finish() {
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let mut tasks = Vec::new();
    for n in 0..40 {
        let desk = desk.clone();
        tasks.push(tokio::spawn(async move {
            let id = desk
                .start("console", &format!("user-{n}"), "ja", jst(10, 0))
                .await
                .expect("start")
                .conversation_id;
            // Two inputs of the same conversation at once: one after the other.
            let a = desk.handle(
                &id,
                Input::Text("MNPで乗り換えました".into()),
                None,
                jst(10, 1),
            );
            let b = desk.handle(&id, Input::Text("はい".into()), None, jst(10, 1));
            let (a, b) = tokio::join!(a, b);
            let (a, b) = (a.expect("a"), b.expect("b"));
            assert_eq!(
                b.state.turn.abs_diff(a.state.turn),
                1,
                "stepped one at a time"
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(desk.locks_held(), 0);
}

fn first_message(text: &str, key: &str) -> Inbound {
    Inbound {
        channel: "discord".into(),
        address: "dm-1".into(),
        user_key: "person-1".into(),
        locale_hint: "ja".into(),
        input: Input::Text(text.into()),
        key: Some(key.into()),
        reference: None,
        at: jst(10, 0),
    }
}

/// A person sends two messages at once before any conversation exists
/// (a double tap, a message with Teams' "bot added"): both inputs find no
/// conversation at the address before either opens one (the store makes
/// the two lookups meet). One conversation is opened, with both messages.
async fn two_first_messages_open_one_conversation(store: Arc<dyn Store>) {
    let desk = support::desk(gated_store::gated(store.clone(), &gated_store::gate(2)));
    let (a, b) = tokio::join!(
        desk.receive(first_message("電話が来ません", "m-1")),
        desk.receive(first_message("SMSも届かない", "m-2")),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.conversation_id, b.conversation_id, "one conversation");
    let person = store
        .transcript(&a.conversation_id)
        .await
        .expect("transcript")
        .into_iter()
        .filter(|line| line.direction == Direction::Person)
        .count();
    assert_eq!(person, 2);
    assert_eq!(desk.locks_held(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_messages_open_one_conversation_in_memory() {
    two_first_messages_open_one_conversation(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_messages_open_one_conversation_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("first.db"))
        .await
        .expect("open");
    two_first_messages_open_one_conversation(Arc::new(store)).await;
}
