//! Free-text understanding at a node: ranks what the person typed against
//! the node's buttons and the flow's intents, decides when one target is
//! clearly meant, and otherwise asks one clarifying question with the likely
//! options (or says it did not understand).

use std::collections::BTreeMap;

use super::reading::Signal;
use super::types::{ChoiceRef, Reply};
use super::{Run, Target};

impl<'a> Run<'a> {
    /// Ranks typed text against what it may mean at the current node and
    /// decides whether the best target is clearly meant.
    pub(super) fn judge(&self, cleaned: &str) -> Option<Judgement> {
        let set = self.flow.candidates_at(&self.state.node)?;
        let mut ranking = self.flow.vocabulary.rank(set, cleaned);
        // Commands fire only when the text asks for them; a cause the
        // person denied ("非通知拒否はしていない") is not guessed either.
        let reading = self.read(cleaned);
        let denied = reading.denied_gotos(self.flow);
        ranking.scored.retain(|(id, _)| {
            !reading.blocked.contains(id)
                && !self
                    .flow
                    .flow
                    .intent(id)
                    .is_some_and(|i| i.case.is_some() && denied.contains(&i.goto.as_str()))
        });
        let (best_id, best_score) = ranking.best()?;
        let best_goto = self.target(best_id).map(|t| self.goto_of(&t));
        // The runner-up is the best target leading somewhere else: a button
        // and an intent that lead to the same node do not compete.
        let runner_up = ranking
            .scored
            .iter()
            .skip(1)
            .find(|(id, _)| self.target(id).map(|t| self.goto_of(&t)) != best_goto)
            .map(|(_, s)| *s)
            .unwrap_or(0.0);
        let clear_margin = best_score >= self.settings.intent_threshold
            && best_score - runner_up >= self.settings.intent_margin;
        // A lower score still decides when nothing else comes close: long
        // messages score lower, but the one cause they mention stands out.
        let dominant = best_score >= self.settings.intent_floor
            && runner_up <= best_score * self.settings.intent_dominance;
        Some(Judgement {
            best_id: best_id.to_string(),
            best_score,
            clear: clear_margin || dominant,
            ranking,
        })
    }

    /// Acts on what the text says outright: a command asked for by name
    /// ("担当者と話したい"), else the place its signals lead, unless that
    /// is where the conversation already is (the node's own question
    /// answers it); when signals name two causes equally, asks which.
    /// What the text also says (a count, a time, the number) fills the
    /// questions on the way. Returns false when nothing was acted on.
    pub(super) fn follow_signals(&mut self, cleaned: &str) -> bool {
        let reading = self.read(cleaned);
        if let Some(&command) = reading.commands.first() {
            let id = self.flow.flow.intents[command].id.clone();
            self.prefill = Some(cleaned.to_string());
            self.apply_target_id(&id);
            return true;
        }
        let here = self.current_node().and_then(|n| n.case.clone());
        let case_of = |goto: &str| self.flow.flow.node(goto).and_then(|n| n.case.clone());
        let goto = match reading.signal(self.flow) {
            Signal::Nothing => return false,
            Signal::Tie(gotos) => {
                let stays = gotos
                    .iter()
                    .any(|g| g == &self.state.node || (here.is_some() && case_of(g) == here));
                if stays {
                    return false;
                }
                let offered: Vec<String> = gotos
                    .iter()
                    .filter_map(|g| {
                        self.flow
                            .flow
                            .intents
                            .iter()
                            .find(|i| i.case.is_some() && &i.goto == g)
                            .map(|i| i.id.clone())
                    })
                    .take(3)
                    .collect();
                if offered.len() < 2 {
                    return false;
                }
                self.state.clarify = Some(offered.clone());
                self.ask_clarify(offered);
                return true;
            }
            Signal::Go(goto) => goto,
        };
        let there = case_of(&goto);
        if goto == self.state.node || (here.is_some() && here == there) {
            return false;
        }
        self.state.clarify = None;
        self.prefill = Some(cleaned.to_string());
        // For the agents' summary: what the text pointed at, labelled like
        // the intent of that cause.
        if let Some(case) = &there {
            if let Some(intent) = self
                .flow
                .flow
                .intents
                .iter()
                .find(|i| i.case.as_ref() == Some(case))
            {
                self.record(case, crate::flow::model::Verdict::Suspected, &intent.label);
            }
        }
        self.enter(goto);
        true
    }

    /// The target typed text clearly means at the current node, if any
    /// (the same rule as [`Run::understand`] without asking back).
    pub(super) fn confident_target(&self, cleaned: &str) -> Option<String> {
        self.judge(cleaned).filter(|j| j.clear).map(|j| j.best_id)
    }

    /// Free text at an `ask` node (or a pending clarification).
    pub(super) fn understand(&mut self, cleaned: &str) {
        let judgement = self.judge(cleaned);
        // A command the text clearly asks for comes first; then what the
        // text says outright (a number, carrier or landline words…).
        let command = judgement
            .as_ref()
            .filter(|j| j.clear)
            .is_some_and(|j| self.flow.flow.intent(&j.best_id).is_some_and(|i| i.command));
        // Commands named outright ("メニューに戻りたい") beat a command
        // that only resembles an example ("前の質問に戻りたい").
        let named = !self.read(cleaned).commands.is_empty();
        if (!command || named) && self.follow_signals(cleaned) {
            return;
        }
        let Some(Judgement {
            best_id,
            best_score,
            clear,
            ranking,
        }) = judgement
        else {
            return;
        };
        if clear {
            self.prefill = Some(cleaned.to_string());
            self.apply_target_id(&best_id);
            return;
        }
        // Something was said outright (a cause named or ruled out, a
        // count): ask with the likely options rather than "I could not
        // read that".
        let reading = self.read(cleaned);
        let signalled =
            !reading.concepts.is_empty() || !reading.denied.is_empty() || reading.attempts;
        if best_score >= self.settings.clarify_threshold || (signalled && best_score > 0.0) {
            let mut offered: Vec<String> = Vec::new();
            let mut gotos = Vec::new();
            for (id, score) in &ranking.scored {
                let weak = *score < self.settings.clarify_threshold;
                if (weak && !signalled && !offered.is_empty())
                    || *score <= 0.0
                    || offered.len() == 3
                {
                    break;
                }
                // Below the threshold only causes are offered, never a
                // command the text merely resembles.
                let cause = self.flow.flow.intent(id).is_some_and(|i| i.case.is_some());
                if weak && !cause {
                    continue;
                }
                let goto = self.target(id).map(|t| self.goto_of(&t));
                if gotos.contains(&goto) {
                    continue;
                }
                gotos.push(goto);
                offered.push(id.clone());
            }
            if offered.len() == 1 && best_score >= self.settings.intent_threshold {
                let id = offered.remove(0);
                self.apply_target_id(&id);
                return;
            }
            self.state.clarify = Some(offered.clone());
            self.ask_clarify(offered);
            return;
        }
        self.state.misunderstood += 1;
        self.say_engine(&self.messages().not_understood, BTreeMap::new());
        self.reprompt();
    }

    pub(super) fn ask_clarify(&mut self, offered: Vec<String>) {
        let mut choices: Vec<ChoiceRef> = offered
            .iter()
            .filter_map(|id| {
                self.target(id).map(|t| ChoiceRef {
                    id: id.clone(),
                    label: match t {
                        Target::Choice(_, c) => c.label.clone(),
                        Target::Intent(i) => i.label.clone(),
                    },
                })
            })
            .collect();
        choices.push(ChoiceRef {
            id: CLARIFY_NONE.into(),
            label: self.messages().clarify_none.clone(),
        });
        self.replies.push(Reply {
            message_id: self.messages().clarify.clone(),
            args: BTreeMap::new(),
            choices,
        });
    }

    pub(super) fn everywhere_intent(
        &self,
        cleaned: &str,
    ) -> Option<&'a crate::flow::model::Intent> {
        let mut ranking = self.flow.vocabulary.rank(self.flow.everywhere(), cleaned);
        let reading = self.read(cleaned);
        ranking
            .scored
            .retain(|(id, _)| !reading.blocked.contains(id));
        let (id, score) = ranking.best()?;
        if score >= self.settings.intent_threshold {
            self.flow.flow.intent(id)
        } else {
            None
        }
    }
}

/// How typed text ranks at a node, and whether the best target is clearly
/// meant.
pub(super) struct Judgement {
    best_id: String,
    best_score: f32,
    clear: bool,
    ranking: crate::diagnose::intent::Ranking,
}

/// Choice id of "none of these" under a clarifying question.
pub const CLARIFY_NONE: &str = "clarify-none";

/// `"2"`, `"２"`, `"2."`, `"(2)"` → 2: picking a numbered choice in the terminal.
pub(super) fn parse_choice_number(cleaned: &str) -> Option<usize> {
    let trimmed =
        cleaned.trim_matches(|c: char| c == '.' || c == '(' || c == ')' || c == ' ' || c == '番');
    if trimmed.is_empty() || trimmed.len() > 2 || !trimmed.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    trimmed.parse().ok()
}
