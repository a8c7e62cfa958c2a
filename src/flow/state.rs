//! The durable state of one conversation, as the engine sees it.
//!
//! It is plain data that serialises to JSON: the current node, the mode
//! (talking with the bot, queued for a person, with an agent, closed), the
//! slots collected so far (phone analysis, attempts, lockout times, CSAT), and
//! the findings about each FAQ case that the agent's summary is built from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::model::Verdict;

/// Who is answering the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// The flow engine answers.
    Bot,
    /// Waiting for a support agent to claim the ticket.
    Queued { ticket: String },
    /// An agent holds the conversation; the bot only relays.
    WithAgent {
        ticket: String,
        /// The agent's platform id.
        agent: String,
        /// The name the person sees.
        #[serde(default)]
        agent_name: String,
    },
    /// Finished; a new message starts over.
    Closed,
}

impl Mode {
    /// The `status` field of the `chat --jsonl` contract.
    pub fn status(&self) -> &'static str {
        match self {
            Mode::Bot => "bot",
            Mode::Queued { .. } => "queued",
            Mode::WithAgent { .. } => "agent",
            Mode::Closed => "closed",
        }
    }
}

/// What one answer said about one FAQ case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `A`..`F`.
    pub case: String,
    pub verdict: Verdict,
    /// The node the answer was given at.
    pub node: String,
    /// Message id of the answer's label (a choice or intent label), or the
    /// validator's name when a typed value decided.
    pub answer: String,
    pub at: DateTime<Utc>,
}

/// The node, slots and findings before an answer ("back" restores them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub node: String,
    #[serde(default)]
    pub slots: BTreeMap<String, Value>,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

/// The conversation state the engine steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The conversation id (also the prefix of handoff tickets).
    #[serde(default)]
    pub id: String,
    pub node: String,
    pub mode: Mode,
    #[serde(default)]
    pub slots: BTreeMap<String, Value>,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Intent ids offered by a pending "did you mean…" question.
    #[serde(default)]
    pub clarify: Option<Vec<String>>,
    /// Consecutive inputs the bot did not understand at this node.
    #[serde(default)]
    pub misunderstood: u32,
    /// Where the conversation was before each answer that moved it, most
    /// recent last: "back" returns to the last one.
    #[serde(default)]
    pub history: Vec<Snapshot>,
    /// Number of inputs stepped (also makes ticket ids unique).
    #[serde(default)]
    pub turn: u64,
    pub started_at: DateTime<Utc>,
    pub last_input_at: DateTime<Utc>,
}

impl State {
    /// A fresh state for conversation `id` at the start node (see [`State::new`]).
    pub fn fresh(id: &str, start: &str, now: DateTime<Utc>) -> State {
        let mut state = State::new(start, now);
        state.id = id.to_string();
        state
    }

    /// A state before the greeting; [`crate::flow::engine::step`] with
    /// `Input::Start` enters the flow's start node.
    pub fn new(start: &str, now: DateTime<Utc>) -> State {
        State {
            id: String::new(),
            node: start.to_string(),
            mode: Mode::Bot,
            slots: BTreeMap::new(),
            findings: Vec::new(),
            clarify: None,
            misunderstood: 0,
            history: Vec::new(),
            turn: 0,
            started_at: now,
            last_input_at: now,
        }
    }
}
