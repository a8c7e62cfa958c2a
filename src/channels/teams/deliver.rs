//! Outbox rows → Bot Framework activities; the generic sender
//! ([`crate::outbox::sender`]) does the rest (order, concurrency, retries
//! honouring `Retry-After`, marking rows sent or failed).
//!
//! - `Replies`: to the person's conversation, proactively from the stored
//!   conversation reference (reminders and agent messages work the same way).
//! - `Handoff`: an Adaptive Card with the summary, the recent messages and
//!   Claim/Close buttons in the agents' channel; the card's id is recorded
//!   as the ticket's agents' address (a retry after a crash posts no second
//!   card).
//! - `Relay`, `AgentNote`, `Transcript`: into that card's reply thread.
//! - `AgentsNotice`: back into the agents' thread it answers (a refusal).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::activity::{adaptive_card, reply_activity, ConversationReference, AGENT_ACTION_KEY};
use super::{TeamsContext, CHANNEL};
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

/// Delivers Teams rows through the connector.
pub struct TeamsDeliver {
    pub ctx: Arc<TeamsContext>,
}

fn bad_reference(e: serde_json::Error) -> DeliveryError {
    DeliveryError::Permanent(format!("bad stored reference: {e}"))
}

impl TeamsDeliver {
    fn agents_configured(&self) -> Result<(), DeliveryError> {
        let config = &self.ctx.config;
        if config.agents_conversation_id.is_empty() || config.agents_service_url.is_empty() {
            return Err(DeliveryError::Permanent(
                "no agents' channel: set teams.agents_conversation_id and teams.agents_service_url"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn person_reference(
        &self,
        conversation: &str,
    ) -> Result<ConversationReference, DeliveryError> {
        let reference = self
            .ctx
            .desk
            .person_reference(CHANNEL, conversation)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| DeliveryError::Permanent("no stored conversation reference".into()))?;
        serde_json::from_str(&reference).map_err(bad_reference)
    }

    async fn to_ticket_thread(&self, ticket: &str, text: &str) -> Result<(), DeliveryError> {
        self.agents_configured()?;
        let card = self
            .ctx
            .desk
            .ticket(ticket)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| DeliveryError::Permanent(format!("unknown ticket {ticket}")))?
            .agent_address
            .ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "ticket {ticket} has no card in the agents' channel"
                ))
            })?;
        let config = &self.ctx.config;
        let conversation = format!("{};messageid={card}", config.agents_conversation_id);
        let activity = json!({ "type": "message", "text": text, "textFormat": "plain" });
        self.ctx
            .connector
            .send(&config.agents_service_url, &conversation, None, &activity)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Deliver for TeamsDeliver {
    fn channel(&self) -> &str {
        CHANNEL
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        let ctx = &self.ctx;
        match &item.row {
            OutboxRow::Replies { replies } => {
                let reference = self.person_reference(&item.conversation_id).await?;
                for reply in replies {
                    let activity = reply_activity(&reference, reply);
                    ctx.connector
                        .send(
                            &reference.service_url,
                            &reference.conversation_id,
                            None,
                            &activity,
                        )
                        .await?;
                }
                Ok(())
            }
            OutboxRow::Handoff {
                ticket,
                summary,
                recent_title,
                recent,
                actions,
                ..
            } => {
                self.agents_configured()?;
                let existing = ctx
                    .desk
                    .ticket(ticket)
                    .await
                    .map_err(DeliveryError::retry)?
                    .and_then(|t| t.agent_address);
                if existing.is_some() {
                    return Ok(()); // the card was posted before a crash
                }
                let mut text = summary.clone();
                if !recent.is_empty() {
                    text.push_str(&format!("\n\n{recent_title}\n{}", recent.join("\n")));
                }
                let buttons = actions
                    .iter()
                    .map(|a| json!({ "type": "Action.Submit", "title": a.label, "data": { AGENT_ACTION_KEY: a.id, "ticket": ticket } }))
                    .collect();
                let activity =
                    json!({ "type": "message", "attachments": [adaptive_card(&text, buttons)] });
                let id = ctx
                    .connector
                    .send(
                        &ctx.config.agents_service_url,
                        &ctx.config.agents_conversation_id,
                        None,
                        &activity,
                    )
                    .await?
                    .ok_or_else(|| {
                        DeliveryError::Permanent(
                            "the connector did not return the card's id".into(),
                        )
                    })?;
                ctx.desk
                    .set_agent_address(ticket, &id)
                    .await
                    .map_err(DeliveryError::retry)
            }
            OutboxRow::Relay { ticket, text }
            | OutboxRow::AgentNote { ticket, text }
            | OutboxRow::Transcript { ticket, text } => self.to_ticket_thread(ticket, text).await,
            OutboxRow::AgentsNotice { address, text } => {
                let reference: ConversationReference =
                    serde_json::from_str(address).map_err(bad_reference)?;
                let activity = reply_activity(
                    &reference,
                    &crate::outbox::RenderedReply {
                        message_id: String::new(),
                        text: text.clone(),
                        choices: Vec::new(),
                    },
                );
                ctx.connector
                    .send(
                        &reference.service_url,
                        &reference.conversation_id,
                        None,
                        &activity,
                    )
                    .await
                    .map(|_| ())
            }
        }
    }
}
