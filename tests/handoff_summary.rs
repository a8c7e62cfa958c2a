//! The agent's summary: causes ruled in/out with the answers that decided,
//! the phone analysis with the number masked, lockout times, and why the
//! conversation was handed over; stored with the ticket, in Japanese even
//! when the person spoke English.

mod support;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::conversation::store::Store;
use madoguchi::flow::engine::Input;

#[tokio::test]
async fn exhausted_checklist_queues_with_a_masked_summary() {
    let store = Arc::new(MemoryStore::new());
    let desk = support::desk(store.clone());
    let now = chrono_tz::Asia::Tokyo
        .with_ymd_and_hms(2026, 11, 25, 14, 0, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc);
    let id = desk
        .start("console", "u", "en", now)
        .await
        .expect("start")
        .conversation_id;
    let mut last = None;
    for input in [
        Input::Choice("start-locked".into()),
        Input::Choice("a-count-many".into()),
        Input::Choice("a-when-30m".into()),
        Input::Choice("a-wait-check-others".into()),
        Input::Choice("b-not-applicable".into()),
        Input::Choice("c-no".into()),
        Input::Text("+81 090-1234-5678".into()),
        Input::Choice("d-can-sign-in".into()),
        Input::Choice("d-form-fails".into()),
        Input::Choice("e-no".into()),
        Input::Choice("f-mobile".into()),
    ] {
        last = Some(desk.handle(&id, input, None, now).await.expect("step"));
    }
    let outcome = last.expect("steps ran");
    assert_eq!(outcome.state.mode.status(), "queued");
    let handoff = outcome.handoff.expect("handoff opened");
    let summary = &handoff.summary;
    assert_eq!(handoff.reason, "unresolved");
    for expected in ["+81 90-****-5678", "13:30", "16:30", "該当なし", "解決せず"] {
        assert!(
            summary.contains(expected),
            "summary lacks {expected:?}:\n{summary}"
        );
    }
    assert!(
        !summary.contains("12345678") && !summary.contains("1234-5678"),
        "number not masked:\n{summary}"
    );
    // Rendered in Japanese for agents although the person chose English.
    assert!(summary
        .chars()
        .any(|c| ('\u{3040}'..='\u{30FF}').contains(&c)));
    // The recent messages shown to all staff before a claim: numbers masked.
    let rows = store
        .pending_outbox("console", &id, 100)
        .await
        .expect("outbox");
    let handoff_row = rows
        .iter()
        .find(|r| r.payload["kind"] == "handoff")
        .expect("handoff row");
    let recent = handoff_row.payload["recent"].to_string();
    assert!(recent.contains("+81 0**-****-5678"), "{recent}");
    assert!(!recent.contains("1234"), "{recent}");
    let stored = store.handoffs(&id).await.expect("handoffs");
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0].summary, summary);
    assert_eq!(stored[0].status, "queued");
}

#[tokio::test]
async fn asking_for_a_person_is_recorded_as_the_reason() {
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
        .single()
        .expect("time");
    let id = desk
        .start("console", "u", "ja", now)
        .await
        .expect("start")
        .conversation_id;
    desk.handle(&id, Input::Text("MNPで乗り換えました".into()), None, now)
        .await
        .expect("step");
    let outcome = desk
        .handle(&id, Input::Text("担当者と話したいです".into()), None, now)
        .await
        .expect("step");
    let handoff = outcome.handoff.expect("handoff");
    assert_eq!(handoff.reason, "requested");
    assert!(handoff.summary.contains("ご本人"), "{}", handoff.summary);
    assert!(handoff.summary.contains("MNP"), "{}", handoff.summary);
}
