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

/// The child of [`killed_during_group_commits_keeps_every_reported_input`]:
/// with `MADOGUCHI_CRASH_CHILD_DB` set, 16 conversations commit inputs as
/// fast as they can and print each outcome once the store reported it,
/// until the parent kills the process. Without the variable it does
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_commits_until_killed() {
    use madoguchi::conversation::store::{Commit, CommitOutcome, ConversationRecord};
    use std::io::Write;
    let Ok(db) = std::env::var("MADOGUCHI_CRASH_CHILD_DB") else {
        return;
    };
    let store = std::sync::Arc::new(
        SqliteStore::open(std::path::Path::new(&db))
            .await
            .expect("open"),
    );
    let workers: Vec<_> = (0..16)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("crash-{c}");
                let mut version = None;
                for turn in 0u64.. {
                    let now = chrono::Utc::now();
                    let record = ConversationRecord {
                        id: id.clone(),
                        channel: "console".into(),
                        user_key: "u".into(),
                        locale: "ja".into(),
                        state: json!({ "turn": turn }),
                        version: 0,
                        created_at: now,
                        updated_at: now,
                        address: None,
                    };
                    let mut commit = Commit::new(record, version);
                    commit.inbound_key = Some(format!("turn-{turn}"));
                    commit
                        .transcript
                        .push(madoguchi::conversation::store::TranscriptEntry {
                            at: now,
                            direction: Direction::Person,
                            author: None,
                            message_id: None,
                            text: format!("turn {turn}"),
                        });
                    commit
                        .outbox
                        .push(("console".into(), json!({ "turn": turn })));
                    match store.commit(commit).await.expect("commit") {
                        CommitOutcome::Committed {
                            version: v,
                            outbox_ids,
                        } => {
                            version = Some(v);
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "committed {id} {v} {}", outbox_ids[0]);
                            let _ = out.flush();
                        }
                        other => panic!("{id}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
}

/// SIGKILL in the middle of group commits (16 conversations writing at
/// once, so batches of several inputs are in flight): every input the
/// store reported as committed is in the file, and every conversation in
/// it is whole: as many transcript lines and outbox rows as its version.
#[tokio::test]
async fn killed_during_group_commits_keeps_every_reported_input() {
    use std::io::BufRead;
    const REPORTED: usize = 400;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "crash_child_commits_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MADOGUCHI_CRASH_CHILD_DB", &db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("stdout");
    let mut reported = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let Some(outcome) = line.strip_prefix("committed ") else {
            continue;
        };
        let fields: Vec<&str> = outcome.split(' ').collect();
        let version: i64 = fields[1].parse().expect("version");
        let row: i64 = fields[2].parse().expect("row id");
        reported.push((fields[0].to_string(), version, row));
        if reported.len() == REPORTED {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(
        reported.len(),
        REPORTED,
        "the child stopped reporting early"
    );

    let store = SqliteStore::open(&db).await.expect("reopen after the kill");
    for (id, version, row) in &reported {
        let loaded = store
            .load(id)
            .await
            .expect("load")
            .expect("reported, so kept");
        assert!(
            loaded.version >= *version,
            "{id}: {} < {version}",
            loaded.version
        );
        let rows = store.rows_after(id, 0, 100_000).await.expect("rows");
        assert!(rows.iter().any(|m| m.id == *row), "{id}: row {row} lost");
    }
    for c in 0..16 {
        let id = format!("crash-{c}");
        let Some(loaded) = store.load(&id).await.expect("load") else {
            continue;
        };
        let lines = store.transcript(&id).await.expect("transcript").len();
        let rows = store.rows_after(&id, 0, 100_000).await.expect("rows").len();
        assert_eq!(
            (lines as i64, rows as i64),
            (loaded.version, loaded.version),
            "{id}: an input was kept in part"
        );
    }
    store.close().await;
}
