//! The understanding report shared by `tests/understanding.rs` (which
//! asserts floors) and `benches/core.rs` (which prints it): what the bot
//! does with each first message of a set, per expected outcome accuracy,
//! clarify and wrong-route rates, a confusion table and the misses.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use madoguchi::desk::Desk;
use madoguchi::flow::engine::Input;
use serde::Deserialize;

/// `tests/understanding/<file>` under the repository `root`.
pub fn phrases(root: &std::path::Path, file: &str) -> HeldOut {
    let path = root.join("tests/understanding").join(file);
    toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse")
}

#[derive(Deserialize)]
pub struct HeldOut {
    pub phrase: Vec<Phrase>,
}

#[derive(Deserialize)]
pub struct Phrase {
    pub text: String,
    pub expect: String,
    pub kind: String,
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
pub async fn evaluate(desk: &Desk, name: &str, set: &HeldOut) -> (f64, f64, Vec<String>) {
    let mut per_expect: BTreeMap<String, Tally> = BTreeMap::new();
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut command_misreads = Vec::new();
    let mut wrong_lines = Vec::new();
    let mut clarify_lines = Vec::new();
    for phrase in &set.phrase {
        let got = outcome(desk, &phrase.text).await;
        // A restart request answered by restarting is right.
        let expected = expected_outcome(desk, phrase);
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
