//! The agent side of a handed-off conversation: claim, say, release,
//! transfer, close. Only the holder of a claimed conversation acts on it;
//! every refusal is a note to the agents' side, never a change of state.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::types::{AgentAction, Effect, Reply};
use super::{Run, LAST_TICKET_SLOT};
use crate::flow::model::NodeKind;
use crate::flow::state::Mode;
use crate::i18n::registry;
use crate::text;

impl<'a> Run<'a> {
    pub(super) fn ticket(&self) -> Option<String> {
        match &self.state.mode {
            Mode::Queued { ticket } | Mode::WithAgent { ticket, .. } => Some(ticket.clone()),
            Mode::Bot | Mode::Closed => None,
        }
    }

    pub(super) fn note(&mut self, ticket: &str, id: &str, args: &[(&str, Value)]) {
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

    pub(super) fn agent(&mut self, action: AgentAction) {
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
                self.note(
                    &last,
                    registry::AGENT_NOTE_NOT_QUEUED,
                    &[("status", json!(status))],
                );
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
        // transfers or closes it; a claim takes a queued one. A second
        // agent's claim is refused with the holder's name (they transfer).
        let acting = match &action {
            AgentAction::Claim(agent)
            | AgentAction::Say { agent, .. }
            | AgentAction::Release { agent, .. }
            | AgentAction::Transfer { agent, .. }
            | AgentAction::Close { agent } => agent.clone(),
        };
        if let Some((holder_id, holder_name)) = &holder {
            let claim = matches!(action, AgentAction::Claim(_));
            if *holder_id != acting.id {
                self.note(
                    &ticket,
                    registry::AGENT_NOTE_NOT_HOLDER,
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
                registry::AGENT_NOTE_NOT_QUEUED,
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
                    registry::HANDOFF_CLAIMED,
                    BTreeMap::from([("agent".into(), json!(agent.name))]),
                );
                self.note(
                    &ticket,
                    registry::AGENT_NOTE_CLAIMED,
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
                    registry::AGENT_MESSAGE,
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
                        registry::AGENT_NOTE_UNKNOWN_NODE,
                        &[("node", json!(target))],
                    );
                    return;
                }
                self.state.mode = Mode::Bot;
                self.state
                    .slots
                    .insert(LAST_TICKET_SLOT.into(), json!(ticket));
                self.say_engine(registry::HANDOFF_RELEASED, BTreeMap::new());
                self.note(
                    &ticket,
                    registry::AGENT_NOTE_RELEASED,
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
                    registry::HANDOFF_TRANSFERRED,
                    BTreeMap::from([("agent".into(), json!(to.name))]),
                );
                self.note(
                    &ticket,
                    registry::AGENT_NOTE_TRANSFERRED,
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
                    registry::AGENT_NOTE_CLOSED,
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
}
