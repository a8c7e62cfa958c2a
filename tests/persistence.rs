//! Durable state through the real process: `madoguchi chat --jsonl --db F`
//! is killed with SIGKILL between two inputs and resumed with
//! `--conversation ID`; nothing is lost or repeated.

mod support;

use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::{Direction, Store};
use serde_json::json;
use support::Chat;

#[tokio::test]
async fn killed_between_inputs_resumes_at_the_same_node_with_the_same_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::temp_db(dir.path());

    let mut chat = Chat::spawn(&["--db", &db]);
    let greeting = chat.read();
    let id = greeting["conversation"].as_str().expect("id").to_string();
    chat.choice("start-check-number");
    let answered = chat.text("＋８１　０９０ー１２３４ー５６７８");
    assert_eq!(answered["node"], "case-d-can-sign-in");
    // SIGKILL right after the answer line: no chance to flush or clean up.
    chat.child.kill().expect("kill");
    chat.child.wait().expect("reap");

    let mut resumed = Chat::spawn(&["--db", &db, "--conversation", &id]);
    let line = resumed.read();
    assert_eq!(line["conversation"], id.as_str());
    assert_eq!(line["node"], answered["node"]);
    assert_eq!(line["slots"], answered["slots"], "slots survive the kill");
    assert_eq!(line["status"], "bot");
    assert_eq!(line["expects"], "choice");
    // The pending question is asked again, with its buttons.
    let choices: Vec<&str> = line["replies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["choices"].as_array().into_iter().flatten())
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        choices,
        ["d-can-sign-in", "d-cannot-sign-in", "d-sign-in-unsure"]
    );

    // The conversation goes on from there.
    let next = resumed.choice("d-can-sign-in");
    assert_eq!(next["node"], "case-d-fix-form");
    resumed.finish();

    // Nothing lost or repeated: one transcript line per person input.
    let store = SqliteStore::open(std::path::Path::new(&db))
        .await
        .expect("open");
    let transcript = store.transcript(&id).await.expect("transcript");
    let person: Vec<&str> = transcript
        .iter()
        .filter(|l| l.direction == Direction::Person)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(person.len(), 3, "{person:?}");
    assert!(person[0].starts_with("[start-check-number]"));
    assert_eq!(person[1], "+81 090ー1234ー5678");
    assert!(person[2].starts_with("[d-can-sign-in]"));
}

#[tokio::test]
async fn a_message_id_seen_before_is_not_processed_twice_even_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::temp_db(dir.path());
    let mut chat = Chat::spawn(&["--db", &db]);
    let id = chat.read()["conversation"]
        .as_str()
        .expect("id")
        .to_string();
    let first = chat.send(&json!({"choice": "start-no-call", "id": "m-1"}));
    assert_eq!(first["node"], "case-a-count");
    chat.child.kill().expect("kill");
    chat.child.wait().expect("reap");

    let mut resumed = Chat::spawn(&["--db", &db, "--conversation", &id]);
    resumed.read();
    // The same delivery again (a platform retry): no second step, no reply.
    let again = resumed.send(&json!({"choice": "start-no-call", "id": "m-1"}));
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["replies"], json!([]));
    assert_eq!(again["node"], "case-a-count");
    resumed.finish();
}

#[test]
fn resuming_an_unknown_conversation_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::temp_db(dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["chat", "--jsonl", "--db", &db, "--conversation", "nope"])
        .current_dir(support::repo())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("conversation \"nope\" does not exist"),
        "{stderr}"
    );
}
