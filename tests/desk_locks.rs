//! The desk's per-conversation locks: inputs of one conversation are
//! stepped one at a time, and the lock map keeps only the conversations
//! being worked on (it used to grow by one entry per conversation forever).

mod support;

use std::sync::Arc;

use madoguchi::conversation::memory::MemoryStore;
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
