//! The pure engine: `step(flow, state, input, now, settings) -> Step`.
//!
//! No I/O, no clock reads, no randomness: everything the bot decides is a
//! function of its arguments, so it is tested without a network, a database
//! or a platform. Replies are message ids plus arguments (rendering happens in
//! the desk, in the conversation's locale); effects (timers, handoff) are
//! carried out by the desk in the same transaction as the new state.

//!
//! - [`types`]: inputs, replies, effects, settings.
//! - [`understanding`]: what typed text means at a node.
//! - [`agent`]: the agent state machine of a handed-off conversation.
//! - this module: `step`, walking the flow's nodes, timers.

mod agent;
mod reading;
mod signals;
#[cfg(test)]
mod tests;
pub mod types;
mod understanding;

pub use types::*;
use understanding::parse_choice_number;
pub use understanding::CLARIFY_NONE;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::compiled::CompiledFlow;
use super::condition::lookup;
use super::model::{Choice, MessageRef, Node, NodeKind, Verdict};
use crate::diagnose::lockout::{format_local_time, lockout_advice};
use crate::diagnose::validators::{validate, ValidatorContext};
use crate::flow::state::{Finding, Mode, State};
use crate::text;

/// Advances `state` by one `input`. Pure.
pub fn step(
    flow: &CompiledFlow,
    state: State,
    input: Input,
    now: DateTime<Utc>,
    settings: &EngineSettings,
) -> Step {
    let mut run = Run {
        prefill: None,
        reading: Default::default(),
        went_back: false,
        flow,
        settings,
        now,
        state,
        replies: Vec::new(),
        effects: Vec::new(),
    };
    match input {
        Input::Resume => {
            run.replies = pending_prompt(flow, &run.state);
        }
        Input::Start => {
            run.state = State::fresh(&run.state.id, &flow.flow.flow.start, now);
            run.enter(flow.flow.flow.start.clone());
        }
        Input::Open(text) => {
            run.state = State::fresh(&run.state.id, &flow.flow.flow.start, now);
            run.enter(flow.flow.flow.start.clone());
            let cleaned = text::clean(&text);
            let cleaned = text::truncate_chars(&cleaned, settings.max_input_chars);
            if run.signin_errors(cleaned) || run.follow_signals(cleaned) {
                run.state.turn += 1;
            } else if let Some(target) = run.confident_target(cleaned) {
                run.state.turn += 1;
                run.prefill = Some(cleaned.to_string());
                run.apply_target_id(&target);
            }
        }
        Input::Timer { kind, payload } => run.timer(&kind, &payload),
        Input::Text(raw) => {
            let before = run.snapshot();
            run.person_input();
            run.text(&raw);
            run.remember(before);
        }
        Input::Choice(id) => {
            let before = run.snapshot();
            run.person_input();
            run.choice(&id);
            run.remember(before);
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
        prefill: None,
        reading: Default::default(),
        went_back: false,
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
    /// Free text that led here: questions on the way that it already
    /// answers (a count, a time, the number) are filled from it, not asked.
    prefill: Option<String>,
    /// What the last typed text says outright, read once per input
    /// ([`reading::Reading`]); keyed by the text.
    reading: reading::Memo,
    /// Set when this step went back one answer (nothing new to remember).
    went_back: bool,
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
        self.state = self.fresh_keeping();
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
                let restart = self.flow.flow.restart_node();
                let named = self
                    .read(&cleaned)
                    .commands
                    .iter()
                    .any(|&i| self.flow.flow.intents[i].goto == restart);
                if named
                    || self
                        .everywhere_intent(&cleaned)
                        .is_some_and(|i| i.goto == restart)
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
        if self.signin_errors(&cleaned) {
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
                    if self.follow_signals(&cleaned) {
                        return;
                    }
                    if let Some(id) = self.confident_target(&cleaned) {
                        let jumps = match self.target(&id) {
                            Some(Target::Choice(..)) => true,
                            // Not back into this very question ("+81 90 1234"
                            // resembles a number example but is too short).
                            Some(Target::Intent(intent)) => {
                                (intent.everywhere || intent.case.is_some())
                                    && intent.goto != self.state.node
                            }
                            None => false,
                        };
                        if jumps {
                            self.apply_target_id(&id);
                            return;
                        }
                    }
                    // The number as typed, with what is wrong with it (the
                    // `chat --jsonl` contract shows it in `slots.phone`).
                    if validator == "phone_number" {
                        if let Some(slot) = &node.slot {
                            let analysis = crate::diagnose::phone::analyse_phone(
                                &cleaned,
                                self.settings.default_country,
                            );
                            if let Ok(value) = serde_json::to_value(&analysis) {
                                self.state.slots.insert(slot.clone(), value);
                            }
                        }
                    }
                    // A value that cannot be used counts like a misunderstood
                    // answer: after two, a person is offered too.
                    self.state.misunderstood += 1;
                    self.say_engine(
                        invalid.message_id,
                        BTreeMap::from([("reason".to_string(), json!(invalid.reason))]),
                    );
                    if self.state.misunderstood >= 2 {
                        let offer = self.messages().offer_human.clone();
                        self.say_engine(&offer, BTreeMap::new());
                    }
                    self.reprompt();
                    return;
                }
            }
        }
        self.understand(&cleaned);
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
        if self.flow.flow.flow.back_intent.as_deref() == Some(intent.id.as_str()) {
            self.go_back();
            return;
        }
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
        self.state = self.fresh_keeping();
        self.effects.push(Effect::CancelTimers {
            kind: LOCKOUT_TIMER.into(),
        });
        self.enter(self.flow.flow.restart_node().to_string());
    }

    /// A fresh state for a new start of this conversation: the turn count,
    /// the start time and the flow's `keep` slots carry over.
    fn fresh_keeping(&self) -> State {
        let mut fresh = State::fresh(&self.state.id, &self.flow.flow.flow.start, self.now);
        fresh.turn = self.state.turn;
        fresh.started_at = self.state.started_at;
        for slot in &self.flow.flow.flow.keep {
            if let Some(value) = self.state.slots.get(slot) {
                fresh.slots.insert(slot.clone(), value.clone());
            }
        }
        fresh
    }

    /// Counts `slot` up by one (a node's `count`); a missing or
    /// non-numeric slot counts from 0.
    fn count_up(&mut self, slot: &str) {
        let count = self
            .state
            .slots
            .get(slot)
            .and_then(Value::as_u64)
            .unwrap_or(0);
        self.state
            .slots
            .insert(slot.to_string(), json!(count.saturating_add(1)));
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

    /// Records a finding, and marks the case as looked at (`checked.<case>`
    /// in the slots, for the flow's "what is left to check" branch).
    fn record(&mut self, case: &str, verdict: Verdict, answer: &str) {
        let checked = self
            .state
            .slots
            .entry(CHECKED_SLOT.to_string())
            .or_insert_with(|| json!({}));
        if let Value::Object(checked) = checked {
            checked.insert(case.to_string(), json!(verdict.as_str()));
        }
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
            for slot in &node.count {
                self.count_up(slot);
            }
            // A question the person already answered in their message is
            // not asked: its explanation is said, the value is stored.
            let prefilled = node.kind == NodeKind::Collect && self.fill_from_prefill(node);
            let says = if prefilled {
                &node.say[..node.say.len().saturating_sub(1)]
            } else {
                &node.say[..]
            };
            for message in says {
                self.say(message);
            }
            if prefilled {
                match &node.next {
                    Some(next) => {
                        node_id = next.clone();
                        continue;
                    }
                    None => return,
                }
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
                        Some(Value::String(reason)) if reason == "method_reset" => {
                            HandoffReason::MethodReset
                        }
                        Some(Value::String(reason)) if reason == "blocked" => {
                            HandoffReason::Blocked
                        }
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
        let header = &self.flow.flow.flow;
        let waiting =
            self.state.mode == Mode::Bot && header.reminder_from.contains(&self.state.node);
        if let (true, Some(goto)) = (waiting, header.reminder_goto.clone()) {
            self.enter(goto);
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

/// Slot remembering the last ticket after it was released or closed, so a
/// late agent action can still be answered in the right thread.
const LAST_TICKET_SLOT: &str = "last_ticket";

/// Slot of the cases looked at so far (`{"B": "ruled_out", …}`).
const CHECKED_SLOT: &str = "checked";

/// Slot that marks a handoff the person asked for (removed when queued).
const HANDOFF_REASON_SLOT: &str = "handoff_reason";

/// Answers kept for "back".
const MAX_HISTORY: usize = 12;

impl Run<'_> {
    /// Where the conversation is now, for "back".
    fn snapshot(&self) -> Option<crate::flow::state::Snapshot> {
        (self.state.mode == Mode::Bot).then(|| crate::flow::state::Snapshot {
            node: self.state.node.clone(),
            slots: self.state.slots.clone(),
            findings: self.state.findings.clone(),
        })
    }

    /// Keeps `before` when this answer moved the conversation on.
    fn remember(&mut self, before: Option<crate::flow::state::Snapshot>) {
        let Some(before) = before else { return };
        let moved = self.state.node != before.node;
        if self.went_back || !moved || self.state.mode != Mode::Bot {
            return;
        }
        // A restart starts a new history.
        if self.state.node == self.flow.flow.restart_node() && self.state.findings.is_empty() {
            return;
        }
        self.state.history.push(before);
        if self.state.history.len() > MAX_HISTORY {
            self.state.history.remove(0);
        }
    }

    /// Undoes the last answer: its node, slots and findings come back, the
    /// answers before it stay.
    fn go_back(&mut self) {
        self.went_back = true;
        let messages = &self.flow.flow.flow.messages;
        match self.state.history.pop() {
            Some(previous) => {
                self.state.node = previous.node;
                self.state.slots = previous.slots;
                self.state.findings = previous.findings;
                self.state.clarify = None;
                self.state.misunderstood = 0;
                if let Some(ack) = messages.back_ack.clone() {
                    self.say_engine(&ack, BTreeMap::new());
                }
            }
            None => {
                if let Some(nothing) = messages.back_nothing.clone() {
                    self.say_engine(&nothing, BTreeMap::new());
                }
            }
        }
        self.reprompt();
    }
}

impl<'a> Run<'a> {
    /// Fills a collect node from the text that led here, when its validator
    /// reads a value there (the phone number is looked for in the text).
    /// Each validator fills at most one node per step.
    fn fill_from_prefill(&mut self, node: &'a Node) -> bool {
        let (Some(text), Some(validator), Some(slot)) = (
            self.prefill.clone(),
            node.validator.as_deref(),
            node.slot.as_deref(),
        ) else {
            return false;
        };
        if self.state.slots.contains_key(slot) {
            return false;
        }
        let candidate = match validator {
            "phone_number" => match reading::find_phone(&text) {
                Some(number) => number,
                None => return false,
            },
            _ => text,
        };
        match validate(validator, &candidate, &self.validator_context()) {
            // Only what the text actually says: "わからない" somewhere in a
            // message is no answer to "how many times?".
            Ok(value) if value["kind"] == "unknown" || value["assumed"] == true => false,
            Ok(value) => {
                self.state.slots.insert(slot.to_string(), value);
                true
            }
            Err(_) => false,
        }
    }
}
