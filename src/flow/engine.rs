//! The pure engine: `step(flow, state, input, now, settings) -> Step`.
//!
//! No I/O, no clock reads, no randomness: everything the bot decides is a
//! function of its arguments, so it is tested without a network, a database
//! or a platform. Replies are message ids plus arguments (rendering happens in
//! the desk, in the conversation's locale); effects (timers, handoff) are
//! carried out by the desk in the same transaction as the new state.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};

use super::compiled::CompiledFlow;
use super::condition::lookup;
use super::model::{Choice, MessageRef, Node, NodeKind, Verdict};
use crate::conversation::state::{Finding, Mode, State};
use crate::diagnose::lockout::{format_local_time, lockout_advice};
use crate::diagnose::validators::{validate, ValidatorContext};
use crate::text;

/// Timer kind of case A's "you may try again now" reminder.
pub const LOCKOUT_TIMER: &str = "lockout";

/// Tunables the engine reads (from the config file).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub time_zone: Tz,
    pub lockout_wait: Duration,
    pub session_expiry: Duration,
    /// Best score at or above which typed text is taken as meant…
    pub intent_threshold: f32,
    /// …if it also beats the best other destination by this much.
    pub intent_margin: f32,
    /// At or above this, typed text is also taken as meant when the best
    /// other destination scores at most `intent_dominance` times as much.
    pub intent_floor: f32,
    pub intent_dominance: f32,
    /// Below what decides but at or above this, the bot asks.
    pub clarify_threshold: f32,
    pub max_input_chars: usize,
    pub default_country: phonenumber::country::Id,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            time_zone: chrono_tz::Asia::Tokyo,
            lockout_wait: Duration::minutes(180),
            session_expiry: Duration::hours(24),
            intent_threshold: 0.45,
            intent_margin: 0.08,
            intent_floor: 0.2,
            intent_dominance: 0.5,
            clarify_threshold: 0.12,
            max_input_chars: 2000,
            default_country: phonenumber::country::Id::JP,
        }
    }
}

/// What the person (or a timer) did.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A new conversation: greet and ask.
    Start,
    /// A new conversation opened by a message (a first DM): greet, and go
    /// straight to what the text clearly means, if anything.
    Open(String),
    /// Typed text.
    Text(String),
    /// A button press, by choice id.
    Choice(String),
    /// A stored timer came due.
    Timer { kind: String, payload: Value },
    /// A support agent acted on the conversation's ticket.
    Agent(AgentAction),
}

/// A support agent, as the platform identifies and names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
}

/// What a support agent can do with a handed-off conversation. Who may act
/// is the channel's business (a Discord role, a Teams group); what the
/// action does is decided here, the same for every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Take the queued conversation; the person is told a person joined.
    Claim(AgentRef),
    /// A message from the agent to the person.
    Say { agent: AgentRef, text: String },
    /// Hand back to the bot, at `node` or at the flow's start.
    Release {
        agent: AgentRef,
        node: Option<String>,
    },
    /// Give the conversation to another agent.
    Transfer { agent: AgentRef, to: AgentRef },
    /// Finish: the person is asked the satisfaction question.
    Close { agent: AgentRef },
}

/// Message ids the engine says for agent actions: (id, variables). Person-
/// facing ones go to the person, `agent-*` ones to the agents' side.
pub const AGENT_MESSAGES: &[(&str, &[&str])] = &[
    ("handoff-claimed", &["agent"]),
    ("handoff-transferred", &["agent"]),
    ("handoff-released", &[]),
    ("agent-message", &["agent", "text"]),
    ("agent-note-claimed", &["agent"]),
    ("agent-note-released", &["agent", "node"]),
    ("agent-note-transferred", &["agent", "to"]),
    ("agent-note-closed", &["agent"]),
    ("agent-note-not-queued", &["status"]),
    ("agent-note-not-holder", &["holder"]),
    ("agent-note-unknown-node", &["node"]),
    ("agent-note-from-person", &["text"]),
];

/// A button offered with a reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceRef {
    pub id: String,
    /// Message id of the label.
    pub label: String,
}

/// One message to send: a Fluent message id, its arguments, and buttons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub message_id: String,
    pub args: BTreeMap<String, Value>,
    pub choices: Vec<ChoiceRef>,
}

/// Why a conversation was queued for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The person asked for a person.
    Requested,
    /// The flow reached its handoff node (checklist exhausted).
    Unresolved,
}

/// Something the desk must do besides sending replies.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    ScheduleTimer {
        kind: String,
        due_at: DateTime<Utc>,
        payload: Value,
    },
    CancelTimers {
        kind: String,
    },
    OpenHandoff {
        ticket: String,
        reason: HandoffReason,
    },
    CancelHandoff {
        ticket: String,
    },
    RelayToAgent {
        ticket: String,
        text: String,
    },
    /// A note for the agents' side of the ticket (rendered in the agents'
    /// locale).
    NotifyAgents {
        ticket: String,
        reply: Reply,
    },
    /// The ticket's status changed (`claimed`, `released`, `closed`).
    HandoffStatus {
        ticket: String,
        status: String,
    },
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: State,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

/// Advances `state` by one `input`. Pure.
pub fn step(
    flow: &CompiledFlow,
    state: State,
    input: Input,
    now: DateTime<Utc>,
    settings: &EngineSettings,
) -> Step {
    let mut run = Run {
        flow,
        settings,
        now,
        state,
        replies: Vec::new(),
        effects: Vec::new(),
    };
    match input {
        Input::Start => {
            run.state = State::fresh(&run.state.id, &flow.flow.flow.start, now);
            run.enter(flow.flow.flow.start.clone());
        }
        Input::Open(text) => {
            run.state = State::fresh(&run.state.id, &flow.flow.flow.start, now);
            run.enter(flow.flow.flow.start.clone());
            let cleaned = text::clean(&text);
            let cleaned = text::truncate_chars(&cleaned, settings.max_input_chars);
            if let Some(target) = run.confident_target(cleaned) {
                run.state.turn += 1;
                run.apply_target_id(&target);
            }
        }
        Input::Timer { kind, payload } => run.timer(&kind, &payload),
        Input::Text(raw) => {
            run.person_input();
            run.text(&raw);
        }
        Input::Choice(id) => {
            run.person_input();
            run.choice(&id);
        }
        Input::Agent(action) => run.agent(action),
    }
    Step {
        state: run.state,
        replies: run.replies,
        effects: run.effects,
    }
}

/// The question the conversation is waiting on, again (used on resume).
pub fn pending_prompt(flow: &CompiledFlow, state: &State) -> Vec<Reply> {
    let mut run = Run {
        flow,
        settings: &EngineSettings::default(),
        now: state.last_input_at,
        state: state.clone(),
        replies: Vec::new(),
        effects: Vec::new(),
    };
    match &state.mode {
        Mode::Bot => {
            if let Some(clarify) = state.clarify.clone() {
                run.ask_clarify(clarify);
            } else {
                run.reprompt();
            }
        }
        Mode::Queued { .. } => run.say_engine(&flow.flow.flow.messages.queued_ack, BTreeMap::new()),
        Mode::WithAgent { .. } | Mode::Closed => {}
    }
    run.replies
}

/// What the current node waits for: `choice`, `text`, a validator name, or
/// `none` (the `expects` field of the `chat --jsonl` contract).
pub fn expects(flow: &CompiledFlow, state: &State) -> String {
    match &state.mode {
        Mode::Bot => {
            if state.clarify.is_some() {
                return "choice".into();
            }
            match flow.flow.node(&state.node) {
                Some(node) if node.kind == NodeKind::Ask => "choice".into(),
                Some(node) if node.kind == NodeKind::Collect => {
                    node.validator.clone().unwrap_or_else(|| "text".into())
                }
                _ => "none".into(),
            }
        }
        Mode::Queued { .. } | Mode::WithAgent { .. } => "text".into(),
        Mode::Closed => "none".into(),
    }
}

/// The FAQ case of the current node (`A`..`F`), if any.
pub fn current_case(flow: &CompiledFlow, state: &State) -> Option<String> {
    flow.flow.node(&state.node).and_then(|n| n.case.clone())
}

/// How many nodes one input may pass through before the engine stops: a
/// guard against a loop of `say`/`branch` nodes that `check` missed.
const MAX_HOPS: usize = 64;

struct Run<'a> {
    flow: &'a CompiledFlow,
    settings: &'a EngineSettings,
    now: DateTime<Utc>,
    state: State,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
}

enum Target<'a> {
    Choice(&'a str, &'a Choice),
    Intent(&'a super::model::Intent),
}

impl<'a> Run<'a> {
    fn messages(&self) -> &'a super::model::EngineMessages {
        &self.flow.flow.flow.messages
    }

    fn current_node(&self) -> Option<&'a Node> {
        self.flow.flow.node(&self.state.node)
    }

    /// Bookkeeping for anything the person sent; also expires an idle session.
    fn person_input(&mut self) {
        let idle = self.now - self.state.last_input_at;
        self.state.turn += 1;
        let expired = idle > self.settings.session_expiry
            && self.state.mode == Mode::Bot
            && self.state.node != self.flow.flow.flow.start;
        self.state.last_input_at = self.now;
        if expired {
            self.say_engine(&self.messages().session_expired, BTreeMap::new());
            self.reset_and_enter_start();
        }
    }

    fn reset_and_enter_start(&mut self) {
        let turn = self.state.turn;
        let started = self.state.started_at;
        self.state = State::fresh(&self.state.id, &self.flow.flow.flow.start, self.now);
        self.state.turn = turn;
        self.state.started_at = started;
        self.effects.push(Effect::CancelTimers {
            kind: LOCKOUT_TIMER.into(),
        });
        self.enter(self.flow.flow.restart_node().to_string());
    }

    fn text(&mut self, raw: &str) {
        let cleaned = text::clean(raw);
        match self.state.mode.clone() {
            Mode::Bot => {}
            Mode::Queued { ticket } => {
                if self
                    .everywhere_intent(&cleaned)
                    .is_some_and(|i| i.goto == self.flow.flow.restart_node())
                {
                    self.effects.push(Effect::CancelHandoff { ticket });
                    self.restart();
                } else {
                    // Agents see what the person adds while waiting; before a
                    // claim every staff member can read it, so numbers are
                    // masked.
                    if !cleaned.is_empty() {
                        let limited = text::truncate_chars(&cleaned, self.settings.max_input_chars);
                        self.effects.push(Effect::RelayToAgent {
                            ticket,
                            text: text::mask_phone_numbers(limited),
                        });
                    }
                    self.say_engine(&self.messages().queued_ack, BTreeMap::new());
                }
                return;
            }
            Mode::WithAgent { ticket, .. } => {
                // Staff threads are read by every agent, not only the one
                // who claimed: numbers are masked there too (the summary
                // already says what is wrong with the registered number).
                let limited = text::truncate_chars(&cleaned, self.settings.max_input_chars);
                self.effects.push(Effect::RelayToAgent {
                    ticket,
                    text: text::mask_phone_numbers(limited),
                });
                return;
            }
            Mode::Closed => {
                self.say_engine(&self.messages().closed_reopen, BTreeMap::new());
                self.reset_and_enter_start();
                return;
            }
        }
        if self
            .replies
            .iter()
            .any(|r| r.message_id == self.messages().session_expired)
        {
            return;
        }
        if cleaned.is_empty() {
            self.say_engine(&self.messages().empty_input, BTreeMap::new());
            self.reprompt();
            return;
        }
        let length = cleaned.chars().count();
        if length > self.settings.max_input_chars {
            self.say_engine(
                &self.messages().too_long,
                BTreeMap::from([("max".to_string(), json!(self.settings.max_input_chars))]),
            );
            self.reprompt();
            return;
        }
        let numbered = self.state.clarify.is_some()
            || self.current_node().is_some_and(|n| n.kind == NodeKind::Ask);
        if let Some(index) = parse_choice_number(&cleaned).filter(|_| numbered) {
            let offered = self.offered_choice_ids();
            if let Some(id) = index.checked_sub(1).and_then(|i| offered.get(i)) {
                let id = id.clone();
                self.choice_in_bot_mode(&id);
                return;
            }
        }
        let Some(node) = self.current_node() else {
            self.enter(self.flow.flow.flow.start.clone());
            return;
        };
        if node.kind == NodeKind::Collect {
            let validator = node.validator.clone().unwrap_or_default();
            match validate(&validator, &cleaned, &self.validator_context()) {
                Ok(value) => {
                    self.state.clarify = None;
                    self.store_collected(node, value, &validator);
                    return;
                }
                Err(invalid) => {
                    // Text that is clearly something else still counts: a
                    // button of this node, another cause described in words,
                    // "talk to a person", "start over".
                    if let Some(id) = self.confident_target(&cleaned) {
                        let jumps = match self.target(&id) {
                            Some(Target::Choice(..)) => true,
                            Some(Target::Intent(intent)) => {
                                intent.everywhere || intent.case.is_some()
                            }
                            None => false,
                        };
                        if jumps {
                            self.apply_target_id(&id);
                            return;
                        }
                    }
                    self.say_engine(
                        invalid.message_id,
                        BTreeMap::from([("reason".to_string(), json!(invalid.reason))]),
                    );
                    self.reprompt();
                    return;
                }
            }
        }
        self.understand(&cleaned);
    }

    /// Ranks typed text against what it may mean at the current node and
    /// decides whether the best target is clearly meant.
    fn judge(&self, cleaned: &str) -> Option<Judgement> {
        let set = self.flow.candidates_at(&self.state.node)?;
        let ranking = self.flow.vocabulary.rank(set, cleaned);
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

    /// The target typed text clearly means at the current node, if any
    /// (the same rule as [`Run::understand`] without asking back).
    fn confident_target(&self, cleaned: &str) -> Option<String> {
        self.judge(cleaned).filter(|j| j.clear).map(|j| j.best_id)
    }

    /// Free text at an `ask` node (or a pending clarification).
    fn understand(&mut self, cleaned: &str) {
        let Some(Judgement {
            best_id,
            best_score,
            clear,
            ranking,
        }) = self.judge(cleaned)
        else {
            return;
        };
        if clear {
            self.apply_target_id(&best_id);
            return;
        }
        if best_score >= self.settings.clarify_threshold {
            let mut offered: Vec<String> = Vec::new();
            let mut gotos = Vec::new();
            for (id, score) in &ranking.scored {
                if *score < self.settings.clarify_threshold || offered.len() == 3 {
                    break;
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

    fn ask_clarify(&mut self, offered: Vec<String>) {
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

    fn choice(&mut self, id: &str) {
        match self.state.mode.clone() {
            Mode::Bot => {
                if self
                    .replies
                    .iter()
                    .any(|r| r.message_id == self.messages().session_expired)
                {
                    return;
                }
                self.choice_in_bot_mode(id)
            }
            Mode::Queued { ticket } => {
                if self
                    .flow
                    .flow
                    .intent(id)
                    .is_some_and(|i| i.goto == self.flow.flow.restart_node())
                {
                    self.effects.push(Effect::CancelHandoff { ticket });
                    self.restart();
                } else {
                    self.say_engine(&self.messages().queued_ack, BTreeMap::new());
                }
            }
            Mode::WithAgent { .. } => {}
            Mode::Closed => {
                self.say_engine(&self.messages().closed_reopen, BTreeMap::new());
                self.reset_and_enter_start();
            }
        }
    }

    fn choice_in_bot_mode(&mut self, id: &str) {
        if id == CLARIFY_NONE && self.state.clarify.is_some() {
            self.state.clarify = None;
            self.say_engine(&self.messages().clarify_none, BTreeMap::new());
            self.reprompt();
            return;
        }
        // What was shown last (a clarification's options) or any button of
        // the current node: both are answers to the current question.
        let offered = self.offered_choice_ids();
        let of_node = self
            .current_node()
            .is_some_and(|n| n.choices.iter().any(|c| c.id == id));
        if of_node || offered.iter().any(|o| o == id) {
            self.apply_target_id(id);
            return;
        }
        // A global intent offered as a button (e.g. "talk to a person").
        if let Some(intent) = self.flow.flow.intent(id).filter(|i| i.everywhere) {
            self.apply_intent(intent);
            return;
        }
        self.say_engine(&self.messages().stale_choice, BTreeMap::new());
        self.reprompt();
    }

    /// Choice ids the person can press right now, in display order.
    fn offered_choice_ids(&self) -> Vec<String> {
        if let Some(clarify) = &self.state.clarify {
            let mut ids = clarify.clone();
            ids.push(CLARIFY_NONE.into());
            return ids;
        }
        let mut ids: Vec<String> = self
            .current_node()
            .map(|n| n.choices.iter().map(|c| c.id.clone()).collect())
            .unwrap_or_default();
        if self.state.misunderstood >= 2 {
            if let Some(human) = self.human_intent() {
                ids.push(human.id.clone());
            }
        }
        ids
    }

    /// The intent that leads to the handoff node and applies everywhere.
    fn human_intent(&self) -> Option<&'a super::model::Intent> {
        self.flow
            .flow
            .intents
            .iter()
            .find(|i| i.everywhere && i.goto == self.flow.flow.flow.handoff)
    }

    fn target(&self, id: &str) -> Option<Target<'a>> {
        if let Some(node) = self.current_node() {
            if let Some(choice) = node.choices.iter().find(|c| c.id == id) {
                return Some(Target::Choice(
                    self.flow
                        .flow
                        .nodes
                        .get_key_value(&self.state.node)
                        .map(|(k, _)| k.as_str())
                        .unwrap_or(""),
                    choice,
                ));
            }
        }
        self.flow.flow.intent(id).map(Target::Intent)
    }

    fn goto_of(&self, target: &Target<'a>) -> String {
        match target {
            Target::Choice(_, c) => c.goto.clone(),
            Target::Intent(i) => i.goto.clone(),
        }
    }

    fn apply_target_id(&mut self, id: &str) {
        self.state.clarify = None;
        match self.target(id) {
            Some(Target::Choice(node_id, choice)) => self.apply_choice(node_id, choice),
            Some(Target::Intent(intent)) => self.apply_intent(intent),
            None => {
                self.say_engine(&self.messages().stale_choice, BTreeMap::new());
                self.reprompt();
            }
        }
    }

    fn apply_choice(&mut self, node_id: &str, choice: &'a Choice) {
        let Some(node) = self.flow.flow.node(node_id) else {
            return;
        };
        if let (Some(verdict), Some(case)) = (choice.finding, &node.case) {
            self.record(case, verdict, &choice.label);
        }
        for (slot, value) in &choice.set {
            self.state.slots.insert(
                slot.clone(),
                serde_json::to_value(value).unwrap_or(Value::Null),
            );
        }
        if node.kind == NodeKind::Collect {
            if let (Some(value), Some(validator)) = (&choice.value, &node.validator) {
                if let Ok(value) = validate(validator, value, &self.validator_context()) {
                    if let Some(slot) = &node.slot {
                        self.state.slots.insert(slot.clone(), value);
                    }
                }
            }
        }
        self.enter(choice.goto.clone());
    }

    fn apply_intent(&mut self, intent: &'a super::model::Intent) {
        self.state.clarify = None;
        if intent.goto == self.flow.flow.restart_node() {
            self.restart();
            return;
        }
        if let Some(case) = &intent.case {
            self.record(case, Verdict::Suspected, &intent.label);
        }
        if intent.goto == self.flow.flow.flow.handoff {
            self.state
                .slots
                .insert(HANDOFF_REASON_SLOT.into(), json!(HandoffReason::Requested));
        }
        self.enter(intent.goto.clone());
    }

    fn restart(&mut self) {
        if let Some(message) = self.flow.flow.flow.restart_message.clone() {
            self.say_engine(&message, BTreeMap::new());
        }
        let turn = self.state.turn;
        let started = self.state.started_at;
        self.state = State::fresh(&self.state.id, &self.flow.flow.flow.start, self.now);
        self.state.turn = turn;
        self.state.started_at = started;
        self.effects.push(Effect::CancelTimers {
            kind: LOCKOUT_TIMER.into(),
        });
        self.enter(self.flow.flow.restart_node().to_string());
    }

    fn store_collected(&mut self, node: &'a Node, value: Value, validator: &str) {
        if let Some(slot) = &node.slot {
            self.state.slots.insert(slot.clone(), value);
        }
        let _ = validator;
        match &node.next {
            Some(next) => self.enter(next.clone()),
            None => self.reprompt(),
        }
    }

    fn record(&mut self, case: &str, verdict: Verdict, answer: &str) {
        self.state.findings.push(Finding {
            case: case.to_string(),
            verdict,
            node: self.state.node.clone(),
            answer: answer.to_string(),
            at: self.now,
        });
    }

    /// Enters `node_id` and runs through `say`/`branch` nodes until a node
    /// waits for the person, hands off or ends.
    fn enter(&mut self, mut node_id: String) {
        for _ in 0..MAX_HOPS {
            let Some(node) = self.flow.flow.node(&node_id) else {
                // `check` refuses such flows; stay put rather than panic.
                self.reprompt();
                return;
            };
            self.state.node = node_id.clone();
            self.state.misunderstood = 0;
            self.state.clarify = None;
            for message in &node.say {
                self.say(message);
            }
            match node.kind {
                NodeKind::Say => {
                    if let Some(action) = &node.action {
                        self.run_action(action);
                    }
                    match &node.next {
                        Some(next) => node_id = next.clone(),
                        None => return,
                    }
                }
                NodeKind::Branch => {
                    let mut next = node.otherwise.clone();
                    for (index, rule) in node.rules.iter().enumerate() {
                        let holds = self
                            .flow
                            .condition(&node_id, index)
                            .is_some_and(|c| c.holds(&self.state.slots));
                        if holds {
                            if let (Some(verdict), Some(case)) = (rule.finding, &node.case) {
                                let answer = format!("rule:{}", rule.when);
                                self.record(case, verdict, &answer);
                            }
                            next = Some(rule.goto.clone());
                            break;
                        }
                    }
                    match next {
                        Some(next) => node_id = next,
                        None => return,
                    }
                }
                NodeKind::Ask | NodeKind::Collect => {
                    if node.say.is_empty() {
                        self.reprompt();
                    } else {
                        self.attach_choices(node);
                    }
                    return;
                }
                NodeKind::Handoff => {
                    let prefix: String = self.state.id.chars().take(8).collect();
                    let ticket = format!("{prefix}-{}", self.state.turn);
                    let reason = match self.state.slots.remove(HANDOFF_REASON_SLOT) {
                        Some(_) => HandoffReason::Requested,
                        None => HandoffReason::Unresolved,
                    };
                    self.state.mode = Mode::Queued {
                        ticket: ticket.clone(),
                    };
                    self.state
                        .slots
                        .insert(LAST_TICKET_SLOT.into(), json!(ticket));
                    self.effects.push(Effect::OpenHandoff { ticket, reason });
                    return;
                }
                NodeKind::End => {
                    self.state.mode = Mode::Closed;
                    self.effects.push(Effect::CancelTimers {
                        kind: LOCKOUT_TIMER.into(),
                    });
                    return;
                }
            }
        }
    }

    fn run_action(&mut self, action: &str) {
        if action != "lockout_advice" {
            return;
        }
        let last_attempt = lookup(&self.state.slots, &["last_attempt".into(), "at".into()])
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(self.now);
        let advice = lockout_advice(last_attempt, self.now, self.settings.lockout_wait);
        let retry_at_local = format_local_time(advice.retry_at, self.now, self.settings.time_zone);
        self.state.slots.insert(
            "lockout".into(),
            json!({
                "last_attempt_at": advice.last_attempt_at.to_rfc3339(),
                "retry_at": advice.retry_at.to_rfc3339(),
                "retry_at_local": retry_at_local,
                "wait_over": advice.wait_over,
            }),
        );
        self.effects.push(Effect::CancelTimers {
            kind: LOCKOUT_TIMER.into(),
        });
        if !advice.wait_over {
            self.effects.push(Effect::ScheduleTimer {
                kind: LOCKOUT_TIMER.into(),
                due_at: advice.retry_at,
                payload: json!({ "retry_at_local": retry_at_local }),
            });
        }
    }

    fn ticket(&self) -> Option<String> {
        match &self.state.mode {
            Mode::Queued { ticket } | Mode::WithAgent { ticket, .. } => Some(ticket.clone()),
            Mode::Bot | Mode::Closed => None,
        }
    }

    fn note(&mut self, ticket: &str, id: &str, args: &[(&str, Value)]) {
        self.effects.push(Effect::NotifyAgents {
            ticket: ticket.to_string(),
            reply: Reply {
                message_id: id.to_string(),
                args: args
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                choices: Vec::new(),
            },
        });
    }

    fn agent(&mut self, action: AgentAction) {
        let Some(ticket) = self.ticket() else {
            // The conversation is not handed off: tell the agent, change nothing.
            if let Some(last) = self
                .state
                .slots
                .get(LAST_TICKET_SLOT)
                .and_then(Value::as_str)
            {
                let last = last.to_string();
                let status = self.state.mode.status();
                self.note(&last, "agent-note-not-queued", &[("status", json!(status))]);
            }
            return;
        };
        let holder = match &self.state.mode {
            Mode::WithAgent {
                agent, agent_name, ..
            } => Some((agent.clone(), agent_name.clone())),
            _ => None,
        };
        // Only the holder speaks for a claimed conversation, releases,
        // transfers or closes it; a claim takes a queued one.
        let acting = match &action {
            AgentAction::Claim(agent)
            | AgentAction::Say { agent, .. }
            | AgentAction::Release { agent, .. }
            | AgentAction::Transfer { agent, .. }
            | AgentAction::Close { agent } => agent.clone(),
        };
        if let Some((holder_id, holder_name)) = &holder {
            let claim = matches!(action, AgentAction::Claim(_));
            if *holder_id != acting.id && !claim {
                self.note(
                    &ticket,
                    "agent-note-not-holder",
                    &[("holder", json!(holder_name))],
                );
                return;
            }
            if claim && *holder_id == acting.id {
                return; // claiming twice is harmless
            }
        } else if matches!(
            action,
            AgentAction::Say { .. } | AgentAction::Transfer { .. }
        ) {
            self.note(
                &ticket,
                "agent-note-not-queued",
                &[("status", json!("queued"))],
            );
            return;
        }
        match action {
            AgentAction::Claim(agent) => {
                self.state.mode = Mode::WithAgent {
                    ticket: ticket.clone(),
                    agent: agent.id.clone(),
                    agent_name: agent.name.clone(),
                };
                self.say_engine(
                    "handoff-claimed",
                    BTreeMap::from([("agent".into(), json!(agent.name))]),
                );
                self.note(
                    &ticket,
                    "agent-note-claimed",
                    &[("agent", json!(agent.name))],
                );
                self.effects.push(Effect::HandoffStatus {
                    ticket,
                    status: "claimed".into(),
                });
            }
            AgentAction::Say { agent, text } => {
                let text = text::truncate_chars(&text::clean(&text), self.settings.max_input_chars)
                    .to_string();
                if text.is_empty() {
                    return;
                }
                self.say_engine(
                    "agent-message",
                    BTreeMap::from([
                        ("agent".into(), json!(agent.name)),
                        ("text".into(), json!(text)),
                    ]),
                );
            }
            AgentAction::Release { agent, node } => {
                let target = node
                    .clone()
                    .unwrap_or_else(|| self.flow.flow.restart_node().to_string());
                let usable = self
                    .flow
                    .flow
                    .node(&target)
                    .is_some_and(|n| !matches!(n.kind, NodeKind::Handoff));
                if !usable {
                    self.note(
                        &ticket,
                        "agent-note-unknown-node",
                        &[("node", json!(target))],
                    );
                    return;
                }
                self.state.mode = Mode::Bot;
                self.state
                    .slots
                    .insert(LAST_TICKET_SLOT.into(), json!(ticket));
                self.say_engine("handoff-released", BTreeMap::new());
                self.note(
                    &ticket,
                    "agent-note-released",
                    &[("agent", json!(agent.name)), ("node", json!(target))],
                );
                self.effects.push(Effect::HandoffStatus {
                    ticket,
                    status: "released".into(),
                });
                self.enter(target);
            }
            AgentAction::Transfer { agent, to } => {
                self.state.mode = Mode::WithAgent {
                    ticket: ticket.clone(),
                    agent: to.id.clone(),
                    agent_name: to.name.clone(),
                };
                self.say_engine(
                    "handoff-transferred",
                    BTreeMap::from([("agent".into(), json!(to.name))]),
                );
                self.note(
                    &ticket,
                    "agent-note-transferred",
                    &[("agent", json!(agent.name)), ("to", json!(to.name))],
                );
            }
            AgentAction::Close { agent } => {
                self.state.mode = Mode::Bot;
                self.state
                    .slots
                    .insert(LAST_TICKET_SLOT.into(), json!(ticket));
                self.note(
                    &ticket,
                    "agent-note-closed",
                    &[("agent", json!(agent.name))],
                );
                self.effects.push(Effect::HandoffStatus {
                    ticket,
                    status: "closed".into(),
                });
                self.enter(self.flow.flow.flow.solved.clone());
            }
        }
    }

    fn timer(&mut self, kind: &str, payload: &Value) {
        if self.state.mode == Mode::Closed || kind != LOCKOUT_TIMER {
            return;
        }
        let retry_at = payload
            .get("retry_at_local")
            .cloned()
            .unwrap_or_else(|| json!(""));
        if let Some(Value::Object(lockout)) = self.state.slots.get_mut("lockout") {
            lockout.insert("wait_over".into(), Value::Bool(true));
            lockout.insert("reminded".into(), Value::Bool(true));
        }
        self.say_engine(
            &self.messages().timer_reminder,
            BTreeMap::from([("retry_at".to_string(), retry_at)]),
        );
    }

    fn everywhere_intent(&self, cleaned: &str) -> Option<&'a super::model::Intent> {
        let ranking = self.flow.vocabulary.rank(self.flow.everywhere(), cleaned);
        let (id, score) = ranking.best()?;
        if score >= self.settings.intent_threshold {
            self.flow.flow.intent(id)
        } else {
            None
        }
    }

    fn validator_context(&self) -> ValidatorContext {
        ValidatorContext {
            now: self.now,
            time_zone: self.settings.time_zone,
            default_country: self.settings.default_country,
        }
    }

    fn say(&mut self, message: &MessageRef) {
        let args = self.args_for(message);
        self.replies.push(Reply {
            message_id: message.id().to_string(),
            args,
            choices: Vec::new(),
        });
    }

    fn say_engine(&mut self, id: &str, args: BTreeMap<String, Value>) {
        self.replies.push(Reply {
            message_id: id.to_string(),
            args,
            choices: Vec::new(),
        });
    }

    fn args_for(&self, message: &MessageRef) -> BTreeMap<String, Value> {
        let mut args = BTreeMap::new();
        if let Some(map) = message.args() {
            for (name, path) in map {
                let path: Vec<String> = path.split('.').map(str::to_string).collect();
                let value = lookup(&self.state.slots, &path)
                    .cloned()
                    .unwrap_or_else(|| json!(""));
                args.insert(name.clone(), value);
            }
        }
        args
    }

    /// Says the current node's question again, with its buttons.
    fn reprompt(&mut self) {
        let Some(node) = self.current_node() else {
            return;
        };
        let prompt = node.prompt.clone().or_else(|| node.say.last().cloned());
        if let Some(prompt) = prompt {
            self.say(&prompt);
        }
        self.attach_choices(node);
    }

    fn attach_choices(&mut self, node: &Node) {
        let mut choices: Vec<ChoiceRef> = node
            .choices
            .iter()
            .map(|c| ChoiceRef {
                id: c.id.clone(),
                label: c.label.clone(),
            })
            .collect();
        if self.state.misunderstood >= 2 {
            if let Some(human) = self.human_intent() {
                if !choices.iter().any(|c| c.id == human.id) {
                    choices.push(ChoiceRef {
                        id: human.id.clone(),
                        label: human.label.clone(),
                    });
                }
            }
        }
        if let Some(last) = self.replies.last_mut() {
            last.choices = choices;
        } else if !choices.is_empty() {
            self.replies.push(Reply {
                message_id: self.messages().offer_human.clone(),
                args: BTreeMap::new(),
                choices,
            });
        }
    }
}

/// How typed text ranks at a node, and whether the best target is clearly
/// meant.
struct Judgement {
    best_id: String,
    best_score: f32,
    clear: bool,
    ranking: crate::diagnose::intent::Ranking,
}

/// Choice id of "none of these" under a clarifying question.
pub const CLARIFY_NONE: &str = "clarify-none";

/// Slot remembering the last ticket after it was released or closed, so a
/// late agent action can still be answered in the right thread.
const LAST_TICKET_SLOT: &str = "last_ticket";

/// Slot that marks a handoff the person asked for (removed when queued).
const HANDOFF_REASON_SLOT: &str = "handoff_reason";

/// `"2"`, `"２"`, `"2."`, `"(2)"` → 2: picking a numbered choice in the terminal.
fn parse_choice_number(cleaned: &str) -> Option<usize> {
    let trimmed =
        cleaned.trim_matches(|c: char| c == '.' || c == '(' || c == ')' || c == ' ' || c == '番');
    if trimmed.is_empty() || trimmed.len() > 2 || !trimmed.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    trimmed.parse().ok()
}
