//! How well a first free-text message is understood, on a held-out set
//! (`tests/understanding/heldout.toml`: written from the FAQ and from how
//! students write, never from the flow's examples). Prints per-cause
//! accuracy, clarify rate, wrong-route rate and a confusion table, and
//! asserts floors.

mod support;

use std::sync::Arc;

use madoguchi::conversation::memory::MemoryStore;

#[path = "understanding/report.rs"]
mod report;

use report::{evaluate, HeldOut};

fn held_out() -> HeldOut {
    phrases("heldout.toml")
}

/// `tests/understanding/<file>`.
fn phrases(file: &str) -> HeldOut {
    report::phrases(&support::repo(), file)
}

fn fresh_desk() -> madoguchi::desk::Desk {
    support::desk(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn first_messages_reach_the_right_cause() {
    let (direct, wrong, command_misreads) =
        evaluate(&fresh_desk(), "held-out set", &held_out()).await;
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
    let (direct, wrong, command_misreads) =
        evaluate(&fresh_desk(), "blind set", &phrases("blind.toml")).await;
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
// Measured on its first run (86.2 % direct, 5.2 % wrong), with a margin.
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
    for phrase in &set.phrase {
        let p = normalise(&phrase.text);
        for e in &examples {
            if p.contains(e.as_str()) || e.contains(p.as_str()) {
                collisions.push(format!("{:?} ~ {e:?}", phrase.text));
            }
        }
    }
    // The blind set was written without seeing the examples, as people
    // write: it may contain a short example ("届きません") but must not be
    // one, or part of one.
    for phrase in &phrases("blind.toml").phrase {
        let p = normalise(&phrase.text);
        for e in &examples {
            if e.contains(p.as_str()) {
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
