//! The transactional outbox: what the bot says, as typed rows.
//!
//! The desk writes [`OutboxRow`]s in the same transaction as the state they
//! come from; [`sender`] delivers them through a channel's [`Deliver`]
//! implementation and marks them sent (or failed, with the reason). Rows are
//! rendered once, by the desk: a channel only translates a row into its
//! platform's messages, and never reads the store.
//!
//! The store keeps a row as the JSON of this enum (`kind` names the
//! variant), so the store knows nothing of flows or platforms.

pub mod sender;

use serde::{Deserialize, Serialize};

pub use sender::{run as run_sender, Deliver, DeliveryError, SenderSettings};

/// A reply rendered in the conversation's locale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedReply {
    pub message_id: String,
    pub text: String,
    #[serde(default)]
    pub choices: Vec<RenderedChoice>,
}

/// A button under a reply: the choice id the engine understands and its
/// rendered label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedChoice {
    pub id: String,
    pub label: String,
}

/// One outgoing row. Texts are rendered; agent-facing ones in the agents'
/// locale, with phone numbers masked (every staff member can read them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxRow {
    /// Messages to the person (from the bot, or an agent through the bot).
    Replies { replies: Vec<RenderedReply> },
    /// A conversation was queued: open the ticket's place on the agents'
    /// side (a staff thread, a card) and post the summary there.
    Handoff {
        ticket: String,
        /// Name for a staff thread.
        #[serde(default)]
        thread_name: String,
        summary: String,
        /// Title of the recent messages block, and its lines.
        #[serde(default)]
        recent_title: String,
        #[serde(default)]
        recent: Vec<String>,
        /// What agents can press on the ticket (claim, close).
        #[serde(default)]
        actions: Vec<RenderedChoice>,
    },
    /// What the person wrote, for the ticket's agents.
    Relay { ticket: String, text: String },
    /// A note for the ticket's agents (claimed, released, refused…).
    AgentNote { ticket: String, text: String },
    /// The whole transcript, when the ticket is closed.
    Transcript {
        ticket: String,
        #[serde(default)]
        text: String,
    },
    /// A note to the agents' channel that belongs to no ticket (a refusal
    /// of an agent command outside a ticket); `address` is the channel's
    /// own opaque address of where to answer.
    AgentsNotice { address: String, text: String },
}

impl OutboxRow {
    /// The variant's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            OutboxRow::Replies { .. } => "replies",
            OutboxRow::Handoff { .. } => "handoff",
            OutboxRow::Relay { .. } => "relay",
            OutboxRow::AgentNote { .. } => "agent_note",
            OutboxRow::Transcript { .. } => "transcript",
            OutboxRow::AgentsNotice { .. } => "agents_notice",
        }
    }

    /// The handoff ticket the row is about, if any.
    pub fn ticket(&self) -> Option<&str> {
        match self {
            OutboxRow::Handoff { ticket, .. }
            | OutboxRow::Relay { ticket, .. }
            | OutboxRow::AgentNote { ticket, .. }
            | OutboxRow::Transcript { ticket, .. } => Some(ticket),
            OutboxRow::Replies { .. } | OutboxRow::AgentsNotice { .. } => None,
        }
    }

    /// The row as the store keeps it.
    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A row the sender hands to a channel: the row, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub conversation_id: String,
    pub row: OutboxRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_the_stored_shape() {
        let row = OutboxRow::Relay {
            ticket: "t-1".into(),
            text: "hello".into(),
        };
        let payload = row.to_payload();
        assert_eq!(payload["kind"], "relay");
        assert_eq!(payload["ticket"], "t-1");
        let back: OutboxRow = serde_json::from_value(payload).expect("round trip");
        assert_eq!(back, row);
        // A row written before `text` existed still reads.
        let old: OutboxRow =
            serde_json::from_value(serde_json::json!({"kind": "transcript", "ticket": "t"}))
                .expect("old transcript row");
        assert_eq!(old.ticket(), Some("t"));
        assert!(serde_json::from_value::<OutboxRow>(serde_json::json!({"kind": "nope"})).is_err());
    }
}
