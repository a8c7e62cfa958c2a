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
//! The staff-thread rows work from the ticket alone, so `serve` hands this
//! deliverer the agent-side rows of web and Teams conversations too when
//! `desk.agents = "discord"`.
//!
//! Staff threads are created with the longest auto-archive duration (7
//! days), so a ticket queued on Friday is still listed on Monday; Discord
//! reopens an archived thread when the bot posts in it.
//!
//! A DM the person does not accept (403, code 50007: their privacy
//! settings refuse DMs from server members) is not lost silently: the
//! replies go to the person's private thread if they have one (text only:
//! buttons there would answer that thread's own conversation), else the
//! staff thread of their latest ticket is told, and the row is marked
//! failed with the reason.
//!
//! A row that becomes several messages (a long reply split, a reply with
//! its question, a summary and the recent lines) records, after each
//! message Discord accepted, their ids on the row
//! ([`crate::conversation::store::Store::record_sent_parts`]); a retry,
//! or a redelivery after a crash on any instance, sends only the rest.
//!
//! Failures are classified for the sender: a 429 throttles this
//! conversation (it waits; the attempt does not count, so a throttled
//! message is late, never given up); 5xx and network errors are temporary
//! (retried with backoff, in this conversation only); other 4xx are
//! permanent. In production serenity's own rate limiter sits below
//! this: it keeps Discord's per-route buckets, waits out a 429's
//! `retry_after` inside the call (holding back only the worker of that
//! conversation) and, on a global 429, holds every request of the bot, so
//! a global limit pauses all conversations. serenity does not hand the
//! 429 body to its caller, so with the limiter off (a test proxy) a 429
//! is retried after the sender's own backoff.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{
    AutoArchiveDuration, ChannelId, ChannelType, CreateMessage, CreateThread, Http,
};

use super::render::{plain, reply_messages, split_text, MAX_CONTENT_CHARS};
use super::{DiscordConfig, CHANNEL};
use crate::desk::{Desk, RenderedReply};
use crate::i18n::registry;
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

/// Discord's "Cannot send messages to this user"
/// (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes).
const CANNOT_DM: isize = 50007;

fn refuses_dms(error: &serenity::Error) -> bool {
    matches!(
        error,
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response))
            if response.status_code.as_u16() == 403 && response.error.code == CANNOT_DM
    )
}

/// Delivers Discord rows over serenity's HTTP client: a Discord person's
/// replies, and the staff-thread rows of any ticket (also of web and
/// Teams conversations when agents work in Discord).
pub struct DiscordDeliver {
    pub desk: Desk,
    pub http: Arc<Http>,
    pub config: Arc<DiscordConfig>,
}

impl DiscordDeliver {
    /// A deliverer with its own REST client for `token` ([`super::http`]).
    pub fn new(desk: Desk, config: DiscordConfig, token: &str) -> DiscordDeliver {
        DiscordDeliver {
            desk,
            http: Arc::new(super::http(&config, token)),
            config: Arc::new(config),
        }
    }
}

/// How a failed Discord call is retried.
pub fn classify(error: serenity::Error) -> DeliveryError {
    if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) = &error
    {
        let status = response.status_code.as_u16();
        if status == 429 {
            // Slowed down, not failing: late, never given up.
            return DeliveryError::Throttled {
                reason: format!("HTTP {status} from Discord"),
                after: None,
            };
        }
        if status >= 500 {
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

    /// Sends `messages` to `channel` in order for row `row`, skipping those
    /// recorded as accepted by an earlier attempt and recording each one
    /// accepted (the last is recorded by marking the row sent). The inner
    /// error is Discord's refusal of a message, for the caller to classify.
    async fn send_parts(
        &self,
        row: i64,
        channel: ChannelId,
        messages: Vec<CreateMessage>,
    ) -> Result<Result<(), serenity::Error>, DeliveryError> {
        let total = messages.len();
        let mut sent = if total > 1 {
            self.desk
                .sent_parts(row)
                .await
                .map_err(DeliveryError::retry)?
        } else {
            Vec::new()
        };
        for message in messages.into_iter().skip(sent.len()) {
            match channel.send_message(&self.http, message).await {
                Ok(posted) => {
                    sent.push(Some(posted.id.get().to_string()));
                    if sent.len() < total {
                        if let Err(e) = self.desk.record_sent_parts(row, &sent).await {
                            tracing::warn!(row, error = %e, "Discord: could not record the messages sent (after a crash they would be sent again)");
                        }
                    }
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(()))
    }

    /// `texts` split to Discord's size, as parts of row `row`.
    async fn send_texts(
        &self,
        row: i64,
        channel: ChannelId,
        texts: &[&str],
    ) -> Result<(), DeliveryError> {
        let messages = texts
            .iter()
            .flat_map(|text| split_text(text, MAX_CONTENT_CHARS))
            .map(plain)
            .collect();
        self.send_parts(row, channel, messages)
            .await?
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

    /// The person refused the DM (50007): their private thread instead, or
    /// a note to the staff thread and the row failed with the reason.
    async fn dm_refused(
        &self,
        item: &OutboxItem,
        address: &str,
        replies: &[RenderedReply],
    ) -> Result<(), DeliveryError> {
        let conversation = &item.conversation_id;
        let reason = "Discord refused the DM (403, code 50007: the person does not accept direct messages from the bot)";
        let elsewhere = self
            .desk
            .other_addresses_of_person(conversation)
            .await
            .map_err(DeliveryError::retry)?;
        if let Some(thread) = elsewhere.first() {
            let thread = channel_from(thread)?;
            let default = self.desk.catalog().default_locale();
            let locale = self.desk.locale_at(CHANNEL, address, &default).await;
            let intro = self
                .desk
                .text(&locale, registry::DISCORD_DM_FALLBACK_INTRO, &[]);
            self.send_text(thread, &intro).await?;
            for reply in replies {
                self.send_text(thread, &reply.text).await?;
            }
            tracing::warn!(row = item.id, %conversation, thread = %thread, "{reason}; delivered in the person's private thread instead");
            return Ok(());
        }
        let staff = self
            .desk
            .latest_agent_address(conversation)
            .await
            .map_err(DeliveryError::retry)?;
        if let Some(staff) = staff {
            let note = self.desk.text(
                self.desk.agent_locale(),
                registry::DISCORD_DM_UNDELIVERABLE_NOTE,
                &[],
            );
            self.send_text(channel_from(&staff)?, &note).await?;
            return Err(DeliveryError::Permanent(format!(
                "{reason}; no private thread to fall back to; the staff thread was told"
            )));
        }
        Err(DeliveryError::Permanent(format!(
            "{reason}; no private thread or staff thread to fall back to"
        )))
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
                let messages = replies
                    .iter()
                    .flat_map(|reply| reply_messages(&reply.text, &reply.choices))
                    .collect();
                match self.send_parts(item.id, channel, messages).await? {
                    Ok(()) => Ok(()),
                    Err(e) if refuses_dms(&e) => self.dm_refused(item, &address, replies).await,
                    Err(e) => Err(classify(e)),
                }
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
                                    .kind(ChannelType::PublicThread)
                                    .auto_archive_duration(AutoArchiveDuration::OneWeek),
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
                let recent_text = format!("{recent_title}\n{}", recent.join("\n"));
                let mut texts = vec![summary.as_str()];
                if !recent.is_empty() {
                    texts.push(&recent_text);
                }
                self.send_texts(item.id, thread, &texts).await
            }
            OutboxRow::Relay { ticket, text }
            | OutboxRow::AgentNote { ticket, text }
            | OutboxRow::Transcript { ticket, text } => {
                let thread = self.staff_thread(ticket).await?;
                self.send_texts(item.id, thread, &[text]).await
            }
            OutboxRow::AgentsNotice { address, text } => {
                self.send_texts(item.id, channel_from(address)?, &[text])
                    .await
            }
        }
    }
}
