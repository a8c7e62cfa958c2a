//! What goes into and comes out of the engine: inputs (what the person, a
//! timer or an agent did), replies (message ids and arguments, rendered
//! later in the conversation's locale), effects (what the desk must do in
//! the same transaction), and the tunables the engine reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

use crate::flow::state::State;

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
    /// The person came back (reloaded, `/mfa` again): ask the pending
    /// question again; nothing changes.
    Resume,
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
    /// The person cannot sign in to fix their registered methods: only the
    /// desk can reset them.
    MethodReset,
    /// Sign-in is blocked by a policy (e.g. Conditional Access): a person
    /// must look at it.
    Blocked,
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
