//! The channel-neutral handoff: queue position and business hours told to
//! the person, claim, relay both ways, release at a node, transfer, close
//! with the satisfaction question, and agents who may not act refused. Run
//! through the desk with a memory store: every channel gets the same.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::conversation::store::{Direction, Store};
use madoguchi::desk::{Desk, Outcome};
use madoguchi::flow::engine::{AgentAction, AgentRef, Input};
use madoguchi::flow::state::Mode;
use serde_json::Value;

use support::jst;

fn agent(id: &str, name: &str) -> AgentRef {
    AgentRef {
        id: id.into(),
        name: name.into(),
    }
}

fn ids(outcome: &Outcome) -> Vec<String> {
    outcome
        .replies()
        .into_iter()
        .map(|r| r.message_id)
        .collect()
}

fn desk_with_hours(store: Arc<MemoryStore>) -> Desk {
    let config = support::config();
    support::desk(store).with_business_hours(config.business_hours().expect("hours"))
}

/// Starts a conversation and asks for a person; returns (conversation, ticket).
async fn queued(desk: &Desk, now: DateTime<Utc>) -> (String, String, Outcome) {
    let id = desk
        .start("test", "person", "ja", now)
        .await
        .expect("start")
        .conversation_id;
    let outcome = desk
        .handle(&id, Input::Text("担当者と話したいです".into()), None, now)
        .await
        .expect("handoff");
    let ticket = outcome.handoff.as_ref().expect("ticket").ticket.clone();
    (id, ticket, outcome)
}

/// Every pending row of the `test` channel, conversation by conversation.
async fn pending(store: &MemoryStore) -> Vec<madoguchi::conversation::store::OutboxMessage> {
    let mut rows = Vec::new();
    for conversation in store
        .pending_conversations("test", 100)
        .await
        .expect("conversations")
    {
        rows.extend(
            store
                .pending_outbox("test", &conversation, 100)
                .await
                .expect("outbox"),
        );
    }
    rows
}

async fn outbox_kinds(store: &MemoryStore) -> Vec<String> {
    pending(store)
        .await
        .iter()
        .filter_map(|m| m.payload["kind"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn queued_person_is_told_position_and_opening_time() {
    let store = Arc::new(MemoryStore::new());
    let desk = desk_with_hours(store.clone());
    // 20:00 on a Wednesday: closed until Thursday 09:00.
    let (_, _, first) = queued(&desk, jst(20, 0)).await;
    assert!(ids(&first).contains(&"handoff-queue-position".to_string()));
    let position = first
        .replies()
        .into_iter()
        .find(|r| r.message_id == "handoff-queue-position")
        .expect("position");
    assert_eq!(
        position.text,
        support::service::text("handoff-queue-position", &[("position", "1")])
    );
    let hours = first
        .replies()
        .into_iter()
        .find(|r| r.message_id == "handoff-after-hours")
        .expect("after hours");
    assert!(hours.text.contains("11/26 09:00"), "{}", hours.text);

    let (_, _, second) = queued(&desk, jst(20, 5)).await;
    let position = second
        .replies()
        .into_iter()
        .find(|r| r.message_id == "handoff-queue-position")
        .expect("position");
    assert_eq!(
        position.text,
        support::service::text("handoff-queue-position", &[("position", "2")])
    );

    // During business hours: no opening time.
    let (_, _, open) = queued(&desk, jst(10, 0)).await;
    assert!(!ids(&open).contains(&"handoff-after-hours".to_string()));
    assert!(outbox_kinds(&store).await.contains(&"handoff".to_string()));
}

#[tokio::test]
async fn claim_relay_transfer_release_and_close() {
    let store = Arc::new(MemoryStore::new());
    let desk = desk_with_hours(store.clone());
    let now = jst(10, 0);
    let (id, ticket, _) = queued(&desk, now).await;
    let sato = agent("u-sato", "佐藤");
    let suzuki = agent("u-suzuki", "鈴木");

    // While queued, what the person adds is acknowledged and shown to agents.
    let waiting = desk
        .handle(&id, Input::Text("090で登録しています".into()), None, now)
        .await
        .expect("wait");
    assert_eq!(ids(&waiting), ["queued-ack"]);
    let rows = pending(&store).await;
    assert!(rows.iter().any(|r| r.payload["kind"] == "relay"
        && r.payload["text"]
            .as_str()
            .unwrap_or_default()
            .contains("090で登録しています")));

    // Speaking before claiming is refused with a note; nothing reaches the person.
    let early = desk
        .agent(
            &ticket,
            AgentAction::Say {
                agent: sato.clone(),
                text: "hello".into(),
            },
            None,
            now,
        )
        .await
        .expect("say");
    assert!(early.replies().is_empty());
    assert_eq!(early.agent_notes().len(), 1);

    let claimed = desk
        .agent(&ticket, AgentAction::Claim(sato.clone()), None, now)
        .await
        .expect("claim");
    assert_eq!(claimed.state.mode.status(), "agent");
    assert_eq!(ids(&claimed), ["handoff-claimed"]);
    assert!(claimed.replies()[0].text.contains("佐藤"));
    assert_eq!(
        store.handoff(&ticket).await.expect("h").map(|h| h.status),
        Some("claimed".into())
    );

    // Agent → person, with the agent's name.
    let said = desk
        .agent(
            &ticket,
            AgentAction::Say {
                agent: sato.clone(),
                text: "番号を確認します".into(),
            },
            None,
            now,
        )
        .await
        .expect("say");
    assert_eq!(ids(&said), ["agent-message"]);
    assert!(
        said.replies()[0].text.contains("佐藤")
            && said.replies()[0].text.contains("番号を確認します")
    );

    // Person → agent: no bot answer, a relay row for the agents' side.
    let person = desk
        .handle(
            &id,
            Input::Text("お願いします @everyone 080-1111-2222".into()),
            None,
            now,
        )
        .await
        .expect("person");
    assert!(
        person.replies().is_empty(),
        "the bot does not answer on its own"
    );
    let rows = pending(&store).await;
    let relay = rows
        .iter()
        .rev()
        .find(|r| r.payload["kind"] == "relay")
        .expect("relay row");
    let relayed = relay.payload["text"].as_str().unwrap_or_default();
    assert!(relayed.contains("お願いします"), "{relayed}");
    assert!(
        relayed.contains("080-****-2222"),
        "numbers masked in staff threads: {relayed}"
    );

    // Another agent cannot act on a claimed conversation.
    let refused = desk
        .agent(
            &ticket,
            AgentAction::Close {
                agent: suzuki.clone(),
            },
            None,
            now,
        )
        .await
        .expect("close attempt");
    assert_eq!(refused.state.mode.status(), "agent");
    assert!(
        refused.agent_notes()[0].contains("佐藤"),
        "{:?}",
        refused.agent_notes()
    );

    // Transfer to 鈴木; then 鈴木 may act.
    let moved = desk
        .agent(
            &ticket,
            AgentAction::Transfer {
                agent: sato.clone(),
                to: suzuki.clone(),
            },
            None,
            now,
        )
        .await
        .expect("transfer");
    assert!(matches!(&moved.state.mode, Mode::WithAgent { agent, .. } if agent == "u-suzuki"));
    assert_eq!(ids(&moved), ["handoff-transferred"]);

    // Release at an unknown node: refused, nothing changes.
    let bad = desk
        .agent(
            &ticket,
            AgentAction::Release {
                agent: suzuki.clone(),
                node: Some("no-such".into()),
            },
            None,
            now,
        )
        .await
        .expect("release");
    assert_eq!(bad.state.mode.status(), "agent");
    assert!(bad.agent_notes()[0].contains("no-such"));

    // Release at a named node: the bot asks that node's question.
    let released = desk
        .agent(
            &ticket,
            AgentAction::Release {
                agent: suzuki.clone(),
                node: Some("case-d-number".into()),
            },
            None,
            now,
        )
        .await
        .expect("release");
    assert_eq!(released.state.mode, Mode::Bot);
    assert_eq!(released.state.node, "case-d-number");
    assert_eq!(ids(&released)[0], "handoff-released");
    assert_eq!(released.expects, "phone_number");
    assert_eq!(
        store.handoff(&ticket).await.expect("h").map(|h| h.status),
        Some("released".into())
    );

    // Transcript: the agent's line is stored with the agent's name.
    let transcript = store.transcript(&id).await.expect("transcript");
    assert!(transcript
        .iter()
        .any(|l| l.direction == Direction::Agent && l.author.as_deref() == Some("佐藤")));
}

#[tokio::test]
async fn close_asks_the_satisfaction_question_and_posts_the_transcript() {
    let store = Arc::new(MemoryStore::new());
    let desk = desk_with_hours(store.clone());
    let now = jst(10, 0);
    let (id, ticket, _) = queued(&desk, now).await;
    let sato = agent("u-sato", "佐藤");
    desk.agent(&ticket, AgentAction::Claim(sato.clone()), None, now)
        .await
        .expect("claim");
    let closed = desk
        .agent(&ticket, AgentAction::Close { agent: sato }, None, now)
        .await
        .expect("close");
    assert_eq!(closed.state.node, "csat");
    assert!(ids(&closed).contains(&"csat-question".to_string()));
    assert!(outbox_kinds(&store)
        .await
        .contains(&"transcript".to_string()));
    let answered = desk
        .handle(&id, Input::Choice("csat-yes".into()), None, now)
        .await
        .expect("csat");
    assert_eq!(answered.state.mode, Mode::Closed);
    assert_eq!(answered.state.slots["csat_helpful"], Value::Bool(true));
    // A late claim on the closed ticket: a note, nothing else.
    let late = desk
        .agent(&ticket, AgentAction::Claim(agent("u-x", "X")), None, now)
        .await
        .expect("late");
    assert_eq!(late.state.mode, Mode::Closed);
    assert!(late.replies().is_empty());
    assert_eq!(late.agent_notes().len(), 1);
}

#[tokio::test]
async fn an_unknown_ticket_is_a_clear_error() {
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let error = desk
        .agent(
            "nope",
            AgentAction::Claim(agent("a", "A")),
            None,
            jst(10, 0),
        )
        .await
        .expect_err("error")
        .to_string();
    assert!(error.contains("nope"), "{error}");
}
