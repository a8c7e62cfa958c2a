//! Helpers shared by the integration tests: the repository's own content, a
//! desk over any store, and a driver for the real `madoguchi chat --jsonl`
//! process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use madoguchi::config::Config;
use madoguchi::conversation::store::Store;
use madoguchi::desk::Desk;
use serde_json::Value;

/// A time on 2026-11-25 (a Wednesday) in Japan, as UTC.
pub fn jst(hour: u32, minute: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(2026, 11, 25, hour, minute, 0)
        .single()
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's config defaults with absolute content folders.
pub fn config() -> Config {
    let mut config = Config::default();
    config.general.flows_dir = repo().join("flows");
    config.general.locales_dir = repo().join("locales");
    config
}

/// The agents' channel of the Teams tests, and the one configured agent.
pub const TEAMS_AGENTS_CONVERSATION: &str = "19:agents@thread.tacv2";
pub const TEAMS_AGENT_AAD: &str = "aad-agent-1";

/// The repository's config with Teams on against the fake Bot Framework:
/// its OpenID metadata and token endpoint, the agents' channel and one
/// agent, quick retries.
pub fn teams_config(fake: &fake_botframework::FakeBotFramework) -> Config {
    let mut config = config();
    config.teams.app_id = fake_botframework::APP_ID.into();
    config.teams.tenant_id = "tenant-1".into();
    config.teams.openid_metadata_url = fake.openid_url();
    config.teams.token_url = fake.token_url();
    config.teams.jwks_min_refresh_seconds = 0;
    config.teams.agents_conversation_id = TEAMS_AGENTS_CONVERSATION.into();
    config.teams.agents_service_url = fake.service_url();
    config.teams.agents = vec![TEAMS_AGENT_AAD.into()];
    config.teams.retry_base_ms = 20;
    config.teams.max_attempts = 3;
    config
}

pub fn desk(store: Arc<dyn Store>) -> Desk {
    let config = config();
    let content = madoguchi::content::load(&config).expect("repository content is valid");
    Desk::new(
        content.flow,
        content.catalog,
        store,
        config.engine_settings().expect("settings"),
        "ja".into(),
    )
}

/// A running `madoguchi chat --jsonl`.
pub struct Chat {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Chat {
    pub fn spawn(args: &[&str]) -> Chat {
        let mut child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("chat")
            .arg("--jsonl")
            .args(args)
            .current_dir(repo())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start madoguchi chat");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Chat {
            child,
            stdin,
            stdout,
        }
    }

    /// Reads the next output line as JSON (panics at EOF).
    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read line");
        assert!(n > 0, "madoguchi chat ended early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends one raw line and returns the answer line.
    pub fn send_raw(&mut self, line: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
        self.read()
    }

    pub fn send(&mut self, input: &Value) -> Value {
        self.send_raw(&input.to_string())
    }

    pub fn text(&mut self, text: &str) -> Value {
        self.send(&serde_json::json!({ "text": text }))
    }

    pub fn choice(&mut self, id: &str) -> Value {
        self.send(&serde_json::json!({ "choice": id }))
    }

    /// Closes stdin and waits for a clean exit; returns any extra output.
    pub fn finish(mut self) -> String {
        drop(self.stdin.take());
        let mut rest = String::new();
        use std::io::Read;
        self.stdout.read_to_string(&mut rest).expect("read rest");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "madoguchi chat exited with {status}");
        rest
    }
}

/// Message ids of a line's replies.
pub fn message_ids(line: &Value) -> Vec<String> {
    line["replies"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["message_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// All reply texts of a line joined.
pub fn reply_text(line: &Value) -> String {
    line["replies"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Looks up a dotted path in a JSON value.
pub fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |v, key| &v[key])
}

/// `failed_reason` of every outbox row of `conversation`, in order, read
/// straight from the SQLite file (`None`: sent or pending).
pub async fn outbox_reasons(db: &Path, conversation: &str) -> Vec<Option<String>> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the SQLite file");
    let reasons = sqlx::query_scalar(
        "SELECT failed_reason FROM outbox WHERE conversation_id = ? ORDER BY id",
    )
    .bind(conversation)
    .fetch_all(&pool)
    .await
    .expect("outbox rows");
    pool.close().await;
    reasons
}

/// What a sender test expects of one conversation after its first reply
/// failed `attempts` times and a later one went out: the platform saw the
/// failures then only successes, the first row is marked failed with the
/// platform's status in its reason, and the later row is sent.
pub async fn assert_first_given_up_then_sent(
    statuses: &[u16],
    attempts: usize,
    db: &Path,
    store: &dyn Store,
    channel: &str,
    address: &str,
) {
    assert!(
        statuses.len() > attempts && statuses[..attempts].iter().all(|s| *s == 500),
        "{statuses:?}"
    );
    assert!(
        statuses[attempts..].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    let conversation = store
        .find_by_address(channel, address)
        .await
        .expect("find")
        .expect("conversation");
    let reasons = outbox_reasons(db, &conversation.id).await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let given_up = reasons[0].as_deref().expect("first row failed");
    assert!(given_up.contains("500"), "{given_up}");
    assert_eq!(reasons[1], None, "the later row was sent");
}

pub fn temp_db(dir: &Path) -> String {
    dir.join("madoguchi.db").display().to_string()
}
pub mod fake_botframework;
pub mod fake_discord;
pub mod postgres;
pub mod service;
pub mod wait;
