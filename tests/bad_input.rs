//! Bad input through `madoguchi chat --jsonl` gets a clear answer and loses
//! nothing: the conversation goes on at the same node afterwards.

mod support;

use serde_json::json;
use support::{message_ids, Chat};

#[test]
fn bad_lines_get_polite_answers_and_the_conversation_goes_on() {
    let mut chat = Chat::spawn(&[]);
    let greeting = chat.read();
    let id = greeting["conversation"].clone();
    let at_b = {
        chat.choice("start-no-call");
        chat.choice("a-count-few")
    };
    assert_eq!(at_b["node"], "case-b-check");

    // Not JSON at all: an error line, nothing else happens.
    let line = chat.send_raw("{this is not json");
    assert_eq!(line["code"], "invalid_json");
    assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()));
    // JSON of the wrong shape.
    let line = chat.send_raw(r#"{"txt": "typo"}"#);
    assert_eq!(line["code"], "invalid_input");
    let line = chat.send_raw("");
    assert_eq!(line["code"], "invalid_json");

    // Empty and blank text: asked again, node unchanged.
    for text in ["", "   ", "\u{3000}\u{200B}"] {
        let line = chat.text(text);
        assert_eq!(line["node"], "case-b-check", "{text:?}");
        assert_eq!(message_ids(&line)[0], "input-empty", "{text:?}");
    }

    // 100 KB of text: a polite "too long", node unchanged.
    let huge = "あ".repeat(100 * 1024);
    let line = chat.text(&huge);
    assert_eq!(line["node"], "case-b-check");
    assert_eq!(message_ids(&line)[0], "input-too-long");
    assert!(support::reply_text(&line).contains("2000"));

    // Control characters and emoji are not a problem.
    let line = chat.text("\u{0007}\u{001B}[31m😭📱 設定を変えたけど\u{0000}まだ届かない");
    assert_eq!(line["conversation"], id);
    assert_eq!(line["node"], "case-c-check", "{line}");
    let line = chat.text("🙏🙏🙏");
    assert_eq!(line["node"], "case-c-check");
    assert!(message_ids(&line).contains(&"input-not-understood".to_string()));

    // An unknown choice id and a choice from an earlier node: stale, no step.
    for choice in ["no-such-choice", "b-changed-works", "start-locked"] {
        let line = chat.choice(choice);
        assert_eq!(line["node"], "case-c-check", "{choice}");
        assert_eq!(message_ids(&line)[0], "choice-stale", "{choice}");
    }

    // The same button pressed twice (same delivery id): one step only.
    let first = chat.send(&json!({"choice": "c-no", "id": "press-1"}));
    assert_eq!(first["node"], "case-d-number");
    let second = chat.send(&json!({"choice": "c-no", "id": "press-1"}));
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["node"], "case-d-number");
    // Pressed twice as two deliveries: the second press is stale.
    let second = chat.choice("c-no");
    assert_eq!(second["node"], "case-d-number");
    assert_eq!(message_ids(&second)[0], "choice-stale");

    // Still fine afterwards.
    let line = chat.text("090-1234-5678");
    assert_eq!(line["node"], "case-d-missing-country-code");
    assert_eq!(chat.finish(), "", "EOF ends cleanly with no extra output");
}

#[test]
fn unknown_language_falls_back_to_japanese() {
    let mut chat = Chat::spawn(&["--lang", "fr"]);
    let greeting = chat.read();
    let text = support::reply_text(&greeting);
    assert!(
        text.chars().any(|c| ('\u{3040}'..='\u{30FF}').contains(&c)),
        "{text}"
    );
    chat.finish();
}
