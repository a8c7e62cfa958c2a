//! A flow made ready to run: conditions parsed and free-text candidates
//! vectorised once at start-up, so each step only looks things up.

use std::collections::HashMap;

use super::condition::{self, Condition};
use super::lexicon::{Lexicon, Mark};
use super::model::{Flow, NodeKind};
use crate::diagnose::intent::{CandidateSet, Vocabulary};

/// A flow plus everything precomputed from it.
#[derive(Debug)]
pub struct CompiledFlow {
    pub flow: Flow,
    pub vocabulary: Vocabulary,
    /// The flow's word lists, compiled for one scan per clause.
    pub lexicon: Lexicon,
    /// Per node: what typed text may mean there.
    candidates: HashMap<String, CandidateSet>,
    /// Intents that apply everywhere, for queued conversations.
    everywhere: CandidateSet,
    /// Per (node, rule index): the parsed condition.
    conditions: HashMap<(String, usize), Condition>,
}

impl CompiledFlow {
    /// Compiles `flow`. `label_texts` returns the rendered texts of a label
    /// message in every locale: a person may type a button's words.
    /// Fails with one line per malformed condition.
    pub fn new(flow: Flow, label_texts: &dyn Fn(&str) -> Vec<String>) -> Result<Self, Vec<String>> {
        let lexicon = lexicon_of(&flow);
        let mut errors = Vec::new();
        let mut conditions = HashMap::new();
        for (node_id, node) in &flow.nodes {
            for (index, rule) in node.rules.iter().enumerate() {
                match condition::parse(&rule.when) {
                    Ok(c) => {
                        conditions.insert((node_id.clone(), index), c);
                    }
                    Err(e) => errors.push(format!(
                        "{}: node \"{node_id}\" rule {}: {e}",
                        flow.source.display(),
                        index + 1
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // Texts per target: examples plus the label in every locale.
        let mut texts: HashMap<String, Vec<String>> = HashMap::new();
        for intent in &flow.intents {
            let mut all = intent.examples.clone();
            all.extend(label_texts(&intent.label));
            texts.insert(intent.id.clone(), all);
        }
        for node in flow.nodes.values() {
            for choice in &node.choices {
                let mut all = choice.examples.clone();
                all.extend(label_texts(&choice.label));
                texts.insert(choice.id.clone(), all);
            }
        }
        let vocabulary = Vocabulary::new(
            texts.values().flatten().map(String::as_str),
            &flow.matcher.negations,
            &flow.matcher.fillers,
        );
        let targets_for = |ids: Vec<String>| -> Vec<(String, Vec<&str>)> {
            ids.into_iter()
                .map(|id| {
                    let examples = texts
                        .get(&id)
                        .map(|t| t.iter().map(String::as_str).collect())
                        .unwrap_or_default();
                    (id, examples)
                })
                .collect()
        };

        let everywhere_ids: Vec<String> = flow
            .intents
            .iter()
            .filter(|i| i.everywhere)
            .map(|i| i.id.clone())
            .collect();
        let mut candidates = HashMap::new();
        for (node_id, node) in &flow.nodes {
            let mut ids: Vec<String> = node.choices.iter().map(|c| c.id.clone()).collect();
            let jumps = node
                .case_jumps
                .unwrap_or(matches!(node.kind, NodeKind::Ask | NodeKind::Collect));
            for intent in &flow.intents {
                if intent.everywhere || jumps {
                    ids.push(intent.id.clone());
                }
            }
            candidates.insert(node_id.clone(), vocabulary.candidates(targets_for(ids)));
        }
        let everywhere = vocabulary.candidates(targets_for(everywhere_ids));
        Ok(CompiledFlow {
            flow,
            vocabulary,
            lexicon,
            candidates,
            everywhere,
            conditions,
        })
    }

    pub fn candidates_at(&self, node: &str) -> Option<&CandidateSet> {
        self.candidates.get(node)
    }

    pub fn everywhere(&self) -> &CandidateSet {
        &self.everywhere
    }

    pub fn condition(&self, node: &str, index: usize) -> Option<&Condition> {
        self.conditions.get(&(node.to_string(), index))
    }
}

/// Every word list of the flow, with what each word stands for.
fn lexicon_of(flow: &Flow) -> Lexicon {
    let matcher = &flow.matcher;
    let mut words: Vec<(&str, Mark)> = Vec::new();
    let lists = [
        (&matcher.negations, Mark::Negation),
        (&matcher.past_markers, Mark::Past),
        (&matcher.request_markers, Mark::Request),
        (&matcher.symptoms, Mark::Symptom),
        (&matcher.limiters, Mark::Limiter),
    ];
    for (list, mark) in lists {
        words.extend(list.iter().map(|w| (w.as_str(), mark)));
    }
    for (i, concept) in flow.concepts.iter().enumerate() {
        words.extend(concept.words.iter().map(|w| (w.as_str(), Mark::Concept(i))));
    }
    for (i, intent) in flow.intents.iter().enumerate() {
        words.extend(intent.words.iter().map(|w| (w.as_str(), Mark::Command(i))));
        words.extend(
            intent
                .blockers
                .iter()
                .map(|w| (w.as_str(), Mark::Blocker(i))),
        );
    }
    Lexicon::new(words, &matcher.clause_breaks)
}
