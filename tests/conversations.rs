//! Scripted dialogues as data: every file in `tests/conversations/` is a
//! conversation with the real `madoguchi chat --jsonl` process, turn by turn,
//! with the node, case, status, expected input kind, key slots and words in
//! the replies that each answer line must show.
//!
//! File format (TOML):
//!
//! ```toml
//! lang = "en"                              # optional, default ja
//! now = "2026-11-25T14:00:00+09:00"        # optional fixed clock
//! [greeting]                               # expectations for the first line
//! node = "start"
//! [[turn]]
//! text = "..."       # or: choice = "..."  (optional: at = "<RFC 3339>")
//! node = "case-b-check"
//! case = "B"         # "none" for null
//! status = "bot"
//! expects = "choice"
//! replies = ["message-id", ...]            # ids that must appear
//! contains = ["16:30"]                     # substrings of the reply texts
//! slots = { "phone.e164" = "+819012345678" }  # "__absent__": slot not set
//! summary = ["+81 90-****-5678"]           # substrings of the handoff summary
//! summary_first = "リセット依頼"             # substring of its first line
//! summary_lacks = ["09012345678"]          # must not appear in the summary
//! ```

mod support;

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    lang: Option<String>,
    now: Option<String>,
    greeting: Option<Expect>,
    #[serde(default)]
    turn: Vec<Turn>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    node: Option<String>,
    case: Option<String>,
    status: Option<String>,
    expects: Option<String>,
    #[serde(default)]
    replies: Vec<String>,
    #[serde(default)]
    contains: Vec<String>,
    #[serde(default)]
    slots: BTreeMap<String, toml::Value>,
    handoff: Option<bool>,
    #[serde(default)]
    summary: Vec<String>,
    summary_first: Option<String>,
    #[serde(default)]
    summary_lacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    text: Option<String>,
    choice: Option<String>,
    at: Option<String>,
    #[serde(flatten)]
    expect: Expect,
}

fn check(expect: &Expect, line: &Value, label: &str, failures: &mut Vec<String>) {
    let mut fail = |what: String| failures.push(format!("{label}: {what}\n    line: {line}"));
    let field = |name: &str| line[name].as_str().map(str::to_string);
    if let Some(node) = &expect.node {
        if field("node").as_deref() != Some(node) {
            fail(format!("node {:?}, expected {node}", field("node")));
        }
    }
    if let Some(case) = &expect.case {
        let got = field("case").unwrap_or_else(|| "none".into());
        if &got != case {
            fail(format!("case {got}, expected {case}"));
        }
    }
    if let Some(status) = &expect.status {
        if field("status").as_deref() != Some(status) {
            fail(format!("status {:?}, expected {status}", field("status")));
        }
    }
    if let Some(expects) = &expect.expects {
        if field("expects").as_deref() != Some(expects) {
            fail(format!(
                "expects {:?}, expected {expects}",
                field("expects")
            ));
        }
    }
    let ids = support::message_ids(line);
    for id in &expect.replies {
        if !ids.contains(id) {
            fail(format!("reply {id} missing (got {ids:?})"));
        }
    }
    let text = support::reply_text(line);
    for needle in &expect.contains {
        if !text.contains(needle.as_str()) {
            fail(format!("replies do not contain {needle:?}"));
        }
    }
    for (path, expected) in &expect.slots {
        let expected: Value = serde_json::to_value(expected).unwrap_or(Value::Null);
        let got = support::at(&line["slots"], path);
        let matches = match (&expected, got) {
            (Value::String(s), got) if s == "__absent__" => got.is_null(),
            // A string expected in an array slot means "contains".
            (Value::String(s), Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(s)),
            _ => got == &expected,
        };
        if !matches {
            fail(format!("slot {path} = {got}, expected {expected}"));
        }
    }
    if let Some(handoff) = expect.handoff {
        if line.get("handoff").is_some() != handoff {
            fail(format!(
                "handoff present = {}, expected {handoff}",
                !handoff
            ));
        }
    }
    let summary = line["handoff"]["summary"].as_str().unwrap_or_default();
    for needle in &expect.summary {
        if !summary.contains(needle.as_str()) {
            fail(format!("summary does not contain {needle:?}"));
        }
    }
    for needle in &expect.summary_lacks {
        if summary.contains(needle.as_str()) {
            fail(format!("summary contains {needle:?}"));
        }
    }
    if let Some(first) = &expect.summary_first {
        if !summary
            .lines()
            .next()
            .unwrap_or_default()
            .contains(first.as_str())
        {
            fail(format!("summary's first line does not contain {first:?}"));
        }
    }
    for reply in line["replies"].as_array().into_iter().flatten() {
        let text = reply["text"].as_str().unwrap_or_default();
        if text.contains('\u{2068}') || text.contains('\u{2069}') || text.trim().is_empty() {
            fail(format!(
                "reply {} has isolation marks or is empty",
                reply["message_id"]
            ));
        }
    }
}

#[test]
fn scripted_conversations() {
    let dir = support::repo().join("tests/conversations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conversations")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the scripted dialogues, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let script: Script = toml::from_str(&std::fs::read_to_string(file).expect("read"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut args: Vec<&str> = Vec::new();
        if let Some(lang) = &script.lang {
            args.extend(["--lang", lang]);
        }
        if let Some(now) = &script.now {
            args.extend(["--now", now]);
        }
        let mut chat = support::Chat::spawn(&args);
        let greeting = chat.read();
        let conversation = greeting["conversation"].clone();
        check(
            &script.greeting.unwrap_or_default(),
            &greeting,
            &format!("{name} greeting"),
            &mut failures,
        );
        for (index, turn) in script.turn.iter().enumerate() {
            let mut input = match (&turn.text, &turn.choice) {
                (Some(text), None) => json!({ "text": text }),
                (None, Some(choice)) => json!({ "choice": choice }),
                _ => panic!(
                    "{name} turn {}: give exactly one of text or choice",
                    index + 1
                ),
            };
            if let Some(at) = &turn.at {
                input["at"] = json!(at);
            }
            let line = chat.send(&input);
            if line["conversation"] != conversation {
                failures.push(format!(
                    "{name} turn {}: conversation id changed",
                    index + 1
                ));
            }
            check(
                &turn.expect,
                &line,
                &format!("{name} turn {}", index + 1),
                &mut failures,
            );
        }
        chat.finish();
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
