//! How well a first free-text message is understood, on a held-out set
//! (`tests/understanding/heldout.toml`: written from the FAQ and from how
//! students write, never from the flow's examples). Prints per-cause
//! accuracy, clarify rate, wrong-route rate and a confusion table, and
//! asserts floors.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::desk::Desk;
use madoguchi::flow::engine::Input;
use serde::Deserialize;

#[derive(Deserialize)]
struct HeldOut {
    phrase: Vec<Phrase>,
}

#[derive(Deserialize)]
struct Phrase {
    text: String,
    expect: String,
    kind: String,
}

fn held_out() -> HeldOut {
    phrases("heldout.toml")
}

/// `tests/understanding/<file>`.
fn phrases(file: &str) -> HeldOut {
    let path = support::repo().join("tests/understanding").join(file);
    toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse")
}

/// What the bot did with a first message, in the set's terms.
async fn outcome(desk: &Desk, text: &str) -> String {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
        .single()
        .expect("time");
    let started = desk.start("test", "u", "ja", now).await.expect("start");
    let step = desk
        .handle(
            &started.conversation_id,
            Input::Text(text.into()),
            None,
            now,
        )
        .await
        .expect("handle");
    if step.state.clarify.is_some() {
        return "clarify".into();
    }
    let restarted = step.replies().iter().any(|r| r.message_id == "restart-ack");
    if restarted {
        return "restart".into();
    }
    if step.state.slots.contains_key("phone") {
        return "phone".into();
    }
    if step.state.mode.status() == "queued" {
        return "handoff".into();
    }
    // Within a cause, a question the message already answered is skipped
    // (a count typed in the first message): the cause is what counts.
    match desk
        .flow()
        .flow
        .node(&step.state.node)
        .and_then(|n| n.case.clone())
    {
        Some(case) => format!("case {case}"),
        None => step.state.node.clone(),
    }
}

/// The set's `expect` in the same terms as [`outcome`].
fn expected_outcome(desk: &Desk, phrase: &Phrase) -> String {
    if phrase.expect == "start" && phrase.kind == "command" {
        return "restart".into();
    }
    match desk
        .flow()
        .flow
        .node(&phrase.expect)
        .and_then(|n| n.case.clone())
    {
        Some(case) => format!("case {case}"),
        None => phrase.expect.clone(),
    }
}

#[derive(Default)]
struct Tally {
    total: usize,
    right: usize,
    clarify: usize,
    wrong: usize,
}

/// Direct and wrong-route rates (per cent) of one set, with the descriptions
/// read as commands; prints the full report.
async fn evaluate(name: &str, set: &HeldOut) -> (f64, f64, Vec<String>) {
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let mut per_expect: BTreeMap<String, Tally> = BTreeMap::new();
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut command_misreads = Vec::new();
    let mut wrong_lines = Vec::new();
    let mut clarify_lines = Vec::new();
    for phrase in &set.phrase {
        let got = outcome(&desk, &phrase.text).await;
        // A restart request answered by restarting is right.
        let expected = expected_outcome(&desk, phrase);
        let tally = per_expect.entry(phrase.expect.clone()).or_default();
        tally.total += 1;
        *confusion
            .entry((expected.clone(), got.clone()))
            .or_default() += 1;
        if got == expected {
            tally.right += 1;
        } else if got == "clarify" || (expected == "clarify" && got == "start") {
            tally.clarify += 1;
            clarify_lines.push(format!(
                "  {:?} [{}] -> {got}, expected {expected}",
                phrase.text, phrase.kind
            ));
        } else {
            tally.wrong += 1;
            wrong_lines.push(format!(
                "  {:?} [{}] -> {got}, expected {expected}",
                phrase.text, phrase.kind
            ));
        }
        let trap = matches!(phrase.kind.as_str(), "past" | "negation" | "command-word");
        let commanded = matches!(got.as_str(), "restart" | "handoff" | "csat");
        if trap && commanded && got != expected {
            command_misreads.push(format!("{:?} -> {got}", phrase.text));
        }
    }
    let total: usize = per_expect.values().map(|t| t.total).sum();
    let right: usize = per_expect.values().map(|t| t.right).sum();
    let wrong: usize = per_expect.values().map(|t| t.wrong).sum();
    let clarify: usize = per_expect.values().map(|t| t.clarify).sum();
    println!("understanding of first messages: {name} ({total} phrases)");
    println!(
        "  {:<14} {:>5} {:>8} {:>8} {:>8}",
        "expected", "n", "right", "clarify", "wrong"
    );
    for (expect, t) in &per_expect {
        let pct = |n: usize| 100.0 * n as f64 / t.total as f64;
        println!(
            "  {expect:<14} {:>5} {:>7.1}% {:>7.1}% {:>7.1}%",
            t.total,
            pct(t.right),
            pct(t.clarify),
            pct(t.wrong)
        );
    }
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    println!(
        "  {:<14} {total:>5} {:>7.1}% {:>7.1}% {:>7.1}%",
        "all",
        pct(right),
        pct(clarify),
        pct(wrong)
    );
    println!("confusion (expected -> got: n):");
    for ((expected, got), n) in &confusion {
        if expected != got {
            println!("  {expected} -> {got}: {n}");
        }
    }
    println!("wrong routes:\n{}", wrong_lines.join("\n"));
    println!("asked back:\n{}", clarify_lines.join("\n"));
    (pct(right), pct(wrong), command_misreads)
}

#[tokio::test]
async fn first_messages_reach_the_right_cause() {
    let (direct, wrong, command_misreads) = evaluate("held-out set", &held_out()).await;
    assert!(
        command_misreads.is_empty(),
        "descriptions read as commands:\n{}",
        command_misreads.join("\n")
    );
    assert!(
        direct >= FLOOR_DIRECT,
        "direct {direct:.1} % < {FLOOR_DIRECT} %"
    );
    assert!(
        wrong <= CEILING_WRONG,
        "wrong {wrong:.1} % > {CEILING_WRONG} %"
    );
}

/// A second set written blind (from the FAQ only, by someone who had not
/// seen the flow, its examples or the first set) after the rules were
/// tuned on the first: it measures how well they generalise. Its floors are
/// its first measurement; it is never tuned against.
#[tokio::test]
async fn blind_first_messages_reach_the_right_cause() {
    let (direct, wrong, command_misreads) = evaluate("blind set", &phrases("blind.toml")).await;
    assert!(
        command_misreads.is_empty(),
        "descriptions read as commands:\n{}",
        command_misreads.join("\n")
    );
    assert!(
        direct >= BLIND_FLOOR_DIRECT,
        "direct {direct:.1} % < {BLIND_FLOOR_DIRECT} %"
    );
    assert!(
        wrong <= BLIND_CEILING_WRONG,
        "wrong {wrong:.1} % > {BLIND_CEILING_WRONG} %"
    );
}

// The goal: ≥ 95 % direct, ≤ 1 % wrong.
const FLOOR_DIRECT: f64 = 95.0;
const CEILING_WRONG: f64 = 1.0;
// Measured on its first run (86.7 % direct, 5.0 % wrong), with a margin.
const BLIND_FLOOR_DIRECT: f64 = 85.0;
const BLIND_CEILING_WRONG: f64 = 6.0;

/// The set is held out: no phrase equals, contains or is contained in an
/// example of the flow (NFKC, lower case; examples shorter than 2 chars
/// ignored).
#[test]
fn held_out_phrases_are_not_examples() {
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let flow = &desk.flow().flow;
    let normalise = |s: &str| madoguchi::text::clean(s).to_lowercase();
    let examples: Vec<String> = flow
        .intents
        .iter()
        .flat_map(|i| i.examples.iter())
        .chain(
            flow.nodes
                .values()
                .flat_map(|n| n.choices.iter())
                .flat_map(|c| c.examples.iter()),
        )
        .map(|e| normalise(e))
        .filter(|e| e.chars().count() >= 2)
        .collect();
    let mut collisions = Vec::new();
    let set = held_out();
    let blind = phrases("blind.toml");
    for phrase in set.phrase.iter().chain(&blind.phrase) {
        let p = normalise(&phrase.text);
        for e in &examples {
            if p.contains(e.as_str()) || e.contains(p.as_str()) {
                collisions.push(format!("{:?} ~ {e:?}", phrase.text));
            }
        }
    }
    assert!(
        collisions.is_empty(),
        "not held out:\n{}",
        collisions.join("\n")
    );
    assert!(set.phrase.len() >= 200, "only {} phrases", set.phrase.len());
}
