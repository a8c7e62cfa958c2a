//! Free-text understanding generalises: phrasings that are not examples in
//! the flow reach the right cause from the first message (or, for text that
//! means nothing to the desk, the bot stays and asks).

mod support;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::flow::engine::Input;
use serde::Deserialize;

#[derive(Deserialize)]
struct Phrasings {
    phrase: Vec<Phrase>,
}

#[derive(Deserialize)]
struct Phrase {
    text: String,
    node: String,
}

#[tokio::test]
async fn unseen_phrasings_reach_the_right_node() {
    let path = support::repo().join("tests/intent_phrasings.toml");
    let phrasings: Phrasings =
        toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse");
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
        .single()
        .expect("time");
    let mut misses = Vec::new();
    let mut direct = 0;
    for phrase in &phrasings.phrase {
        let started = desk.start("test", "u", "ja", now).await.expect("start");
        let outcome = desk
            .handle(
                &started.conversation_id,
                Input::Text(phrase.text.clone()),
                None,
                now,
            )
            .await
            .expect("handle");
        // Within a cause, a question the message already answered is
        // skipped (a count typed in the first message): the cause counts.
        let case_of = |node: &str| desk.flow().flow.node(node).and_then(|n| n.case.clone());
        let same_case = case_of(&phrase.node).is_some()
            && case_of(&outcome.state.node) == case_of(&phrase.node);
        if outcome.state.node == phrase.node || same_case {
            direct += 1;
            continue;
        }
        // Asking back is acceptable when the right answer is among the
        // offered options (the bot is unsure and says so instead of guessing).
        let offered_right = outcome.state.clarify.iter().flatten().any(|id| {
            let flow = &desk.flow().flow;
            flow.intent(id).map(|i| i.goto.as_str()).or_else(|| {
                flow.node(&outcome.state.node)
                    .and_then(|n| n.choices.iter().find(|c| &c.id == id))
                    .map(|c| c.goto.as_str())
            }) == Some(phrase.node.as_str())
        });
        if !offered_right {
            misses.push(format!(
                "{:?} -> {} (clarify: {:?}), expected {}",
                phrase.text, outcome.state.node, outcome.state.clarify, phrase.node
            ));
        }
    }
    let total = phrasings.phrase.len();
    println!("{direct} of {total} phrasings understood without asking back");
    assert!(
        misses.is_empty(),
        "{} of {total} missed:\n{}",
        misses.len(),
        misses.join("\n")
    );
    // Since the phrasings were made truly held out (none contains an
    // example any more), 37–38 of 47 went straight to the right cause;
    // with signals read first (issue 10), 45 of 47. The bar sits just
    // under that so a regression fails.
    assert!(
        direct * 100 >= total * 93,
        "only {direct} of {total} phrasings were understood without asking back"
    );
}

/// The phrasings are held out: none contains, or is contained in, an
/// example the first message is compared with (the intents' and the start
/// node's), normalised as the matcher does, so passing the test above says
/// the matcher generalises.
#[test]
fn phrasings_are_not_examples_of_the_flow() {
    let path = support::repo().join("tests/intent_phrasings.toml");
    let phrasings: Phrasings =
        toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse");
    let desk = support::desk(Arc::new(MemoryStore::new()));
    let flow = &desk.flow().flow;
    let normalise = |s: &str| madoguchi::text::clean(s).to_lowercase();
    let mut examples: Vec<String> = flow
        .intents
        .iter()
        .flat_map(|i| i.examples.iter())
        .chain(
            flow.nodes
                .get(&flow.flow.start)
                .into_iter()
                .flat_map(|n| n.choices.iter())
                .flat_map(|c| c.examples.iter()),
        )
        .map(|e| normalise(e))
        .filter(|e| !e.is_empty())
        .collect();
    examples.sort();
    examples.dedup();
    let overlapping: Vec<String> = phrasings
        .phrase
        .iter()
        .flat_map(|p| {
            let phrase = normalise(&p.text);
            examples
                .iter()
                .filter(move |e| phrase.contains(e.as_str()) || e.contains(phrase.as_str()))
                .map(move |e| format!("{:?} ~ example {e:?}", p.text))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        overlapping.is_empty(),
        "phrasings that are not held out:\n{}",
        overlapping.join("\n")
    );
}
