//! Outbox rows → Discord messages; the generic sender
//! ([`crate::outbox::sender`]) does the rest (order, concurrency, retries,
//! marking rows sent or failed).
//!
//! - `Replies`: to the person's DM channel or private thread.
//! - `Handoff`: opens a public thread in the staff channel (once: a retry
//!   reuses the thread recorded with the ticket) and posts the summary and
//!   the recent messages.
//! - `Relay`, `AgentNote`, `Transcript`: into that staff thread.
//!
//! Failures are classified for the sender: 429, 5xx and network errors are
//! temporary (retried with backoff, in this conversation only); other 4xx
//! are permanent. In production serenity's own rate limiter sits below
//! this: it keeps Discord's per-route buckets, waits out a 429's
//! `retry_after` inside the call (holding back only the worker of that
//! conversation) and, on a global 429, holds every request of the bot, so
//! a global limit pauses all conversations. serenity does not hand the
//! 429 body to its caller, so with the limiter off (a test proxy) a 429
//! is retried after the sender's own backoff.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{ChannelId, ChannelType, CreateMessage, CreateThread, Http};

use super::render::{plain, reply_messages, split_text, MAX_CONTENT_CHARS};
use super::{DiscordConfig, CHANNEL};
use crate::desk::Desk;
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

/// Delivers Discord rows over serenity's HTTP client.
pub struct DiscordDeliver {
    pub desk: Desk,
    pub http: Arc<Http>,
    pub config: Arc<DiscordConfig>,
}

/// How a failed Discord call is retried.
pub fn classify(error: serenity::Error) -> DeliveryError {
    if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) = &error
    {
        let status = response.status_code.as_u16();
        if status == 429 || status >= 500 {
            return DeliveryError::retry(format!("HTTP {status} from Discord"));
        }
        return DeliveryError::Permanent(format!(
            "HTTP {status} from Discord: {} (code {})",
            response.error.message, response.error.code
        ));
    }
    if let serenity::Error::Http(serenity::http::HttpError::Request(e)) = &error {
        return DeliveryError::retry(format!("network: {e}"));
    }
    DeliveryError::Permanent(error.to_string())
}

fn channel_from(address: &str) -> Result<ChannelId, DeliveryError> {
    address
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .map(ChannelId::new)
        .ok_or_else(|| DeliveryError::Permanent(format!("bad channel address \"{address}\"")))
}

impl DiscordDeliver {
    async fn send(&self, channel: ChannelId, message: CreateMessage) -> Result<(), DeliveryError> {
        channel
            .send_message(&self.http, message)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn send_text(&self, channel: ChannelId, text: &str) -> Result<(), DeliveryError> {
        for piece in split_text(text, MAX_CONTENT_CHARS) {
            self.send(channel, plain(piece)).await?;
        }
        Ok(())
    }

    async fn staff_thread(&self, ticket: &str) -> Result<ChannelId, DeliveryError> {
        let view = self
            .desk
            .ticket(ticket)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| DeliveryError::Permanent(format!("unknown ticket {ticket}")))?;
        let address = view.agent_address.ok_or_else(|| {
            DeliveryError::Permanent(format!("ticket {ticket} has no staff thread"))
        })?;
        channel_from(&address)
    }
}

#[async_trait]
impl Deliver for DiscordDeliver {
    fn channel(&self) -> &str {
        CHANNEL
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        match &item.row {
            OutboxRow::Replies { replies } => {
                let address = self
                    .desk
                    .person_address(&item.conversation_id)
                    .await
                    .map_err(DeliveryError::retry)?
                    .ok_or_else(|| {
                        DeliveryError::Permanent("conversation has no Discord address".into())
                    })?;
                let channel = channel_from(&address)?;
                for reply in replies {
                    for message in reply_messages(&reply.text, &reply.choices) {
                        self.send(channel, message).await?;
                    }
                }
                Ok(())
            }
            OutboxRow::Handoff {
                ticket,
                thread_name,
                summary,
                recent_title,
                recent,
                ..
            } => {
                if self.config.staff_channel_id == 0 {
                    return Err(DeliveryError::Permanent(
                        "no staff channel: set discord.staff_channel_id".into(),
                    ));
                }
                // Reuse the thread if an earlier attempt created it.
                let existing = self
                    .desk
                    .ticket(ticket)
                    .await
                    .map_err(DeliveryError::retry)?
                    .and_then(|t| t.agent_address);
                let thread = match existing {
                    Some(address) => channel_from(&address)?,
                    None => {
                        let thread = ChannelId::new(self.config.staff_channel_id)
                            .create_thread(
                                &self.http,
                                CreateThread::new(thread_name.clone())
                                    .kind(ChannelType::PublicThread),
                            )
                            .await
                            .map_err(classify)?;
                        self.desk
                            .set_agent_address(ticket, &thread.id.get().to_string())
                            .await
                            .map_err(DeliveryError::retry)?;
                        thread.id
                    }
                };
                self.send_text(thread, summary).await?;
                if !recent.is_empty() {
                    self.send_text(thread, &format!("{recent_title}\n{}", recent.join("\n")))
                        .await?;
                }
                Ok(())
            }
            OutboxRow::Relay { ticket, text }
            | OutboxRow::AgentNote { ticket, text }
            | OutboxRow::Transcript { ticket, text } => {
                let thread = self.staff_thread(ticket).await?;
                self.send_text(thread, text).await
            }
            OutboxRow::AgentsNotice { address, text } => {
                self.send_text(channel_from(address)?, text).await
            }
        }
    }
}
