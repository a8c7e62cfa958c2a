//! The Discord outbox sender: delivers the desk's outbox rows for the
//! `discord` channel, in order, and marks them sent.
//!
//! Row kinds: `replies` (to the person's DM channel or private thread),
//! `handoff` (opens a thread in the staff channel and posts the summary and
//! recent transcript), `relay` and `agent_note` (to the staff thread),
//! `transcript` (the whole transcript to the staff thread when closed).
//!
//! One task sends everything, in outbox order, so messages of a conversation
//! keep their order. A failed send is retried with exponential backoff
//! (429 and 5xx and network errors); in production serenity's own rate
//! limiter already waits out 429s using `retry_after`. A row that keeps
//! failing is marked failed and logged, so one bad row never blocks the rest.
//! A crash before a row is marked sent means it is sent again on restart
//! (at-least-once towards Discord; the row is never lost).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use serenity::all::{ChannelId, ChannelType, CreateMessage, CreateThread, Http};
use tokio::sync::watch;

use super::render::{plain, reply_messages, split_text, MAX_CONTENT_CHARS};
use super::{DiscordConfig, CHANNEL};
use crate::clock::Clock;
use crate::conversation::store::OutboxMessage;
use crate::desk::{Desk, RenderedChoice};

/// Why a row could not be delivered.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// Worth retrying (rate limit, server error, network).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Retrying will not help (missing permission, unknown channel, bad row).
    #[error("permanent: {0}")]
    Permanent(String),
}

fn classify(error: serenity::Error) -> SendError {
    if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) = &error
    {
        let status = response.status_code.as_u16();
        if status == 429 || status >= 500 {
            return SendError::Temporary(format!("HTTP {status} from Discord"));
        }
        return SendError::Permanent(format!(
            "HTTP {status} from Discord: {} (code {})",
            response.error.message, response.error.code
        ));
    }
    if let serenity::Error::Http(serenity::http::HttpError::Request(e)) = &error {
        return SendError::Temporary(format!("network: {e}"));
    }
    SendError::Permanent(error.to_string())
}

pub async fn run(
    desk: Desk,
    clock: Arc<dyn Clock>,
    http: Arc<Http>,
    config: Arc<DiscordConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut committed = desk.committed();
    loop {
        let stopping = *shutdown.borrow();
        match desk.store().pending_outbox(CHANNEL, 50).await {
            Ok(rows) if !rows.is_empty() => {
                for row in rows {
                    deliver_with_retry(&desk, &*clock, &http, &config, &row).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "Discord sender: cannot read the outbox"),
        }
        if stopping {
            tracing::info!("Discord sender: outbox flushed, stopping");
            return;
        }
        tokio::select! {
            _ = committed.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn deliver_with_retry(
    desk: &Desk,
    clock: &dyn Clock,
    http: &Http,
    config: &DiscordConfig,
    row: &OutboxMessage,
) {
    let kind = row.payload["kind"].as_str().unwrap_or("?").to_string();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match deliver(desk, http, config, row).await {
            Ok(()) => {
                if let Err(e) = desk.store().mark_sent(&[row.id], clock.now()).await {
                    tracing::error!(error = %e, row = row.id, "Discord sender: sent but could not mark the row");
                }
                return;
            }
            Err(SendError::Temporary(reason)) if attempt < config.max_attempts => {
                let delay = config.retry_base() * 2u32.saturating_pow(attempt - 1).min(64);
                tracing::warn!(row = row.id, kind, attempt, %reason, delay_ms = delay.as_millis() as u64, "Discord sender: will retry");
                tokio::time::sleep(delay.min(Duration::from_secs(60))).await;
            }
            Err(error) => {
                tracing::error!(row = row.id, kind, conversation = %row.conversation_id, %error, "Discord sender: giving up on a message");
                let _ = desk
                    .store()
                    .mark_failed(row.id, &error.to_string(), clock.now())
                    .await;
                return;
            }
        }
    }
}

async fn send(http: &Http, channel: ChannelId, message: CreateMessage) -> Result<(), SendError> {
    channel
        .send_message(http, message)
        .await
        .map(|_| ())
        .map_err(classify)
}

async fn send_text(http: &Http, channel: ChannelId, text: &str) -> Result<(), SendError> {
    for piece in split_text(text, MAX_CONTENT_CHARS) {
        send(http, channel, plain(piece)).await?;
    }
    Ok(())
}

fn channel_from(address: &str) -> Result<ChannelId, SendError> {
    address
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .map(ChannelId::new)
        .ok_or_else(|| SendError::Permanent(format!("bad channel address \"{address}\"")))
}

async fn staff_thread(desk: &Desk, ticket: &str) -> Result<ChannelId, SendError> {
    let handoff = desk
        .store()
        .handoff(ticket)
        .await
        .map_err(|e| SendError::Temporary(e.to_string()))?
        .ok_or_else(|| SendError::Permanent(format!("unknown ticket {ticket}")))?;
    let address = handoff
        .agent_address
        .ok_or_else(|| SendError::Permanent(format!("ticket {ticket} has no staff thread")))?;
    channel_from(&address)
}

async fn deliver(
    desk: &Desk,
    http: &Http,
    config: &DiscordConfig,
    row: &OutboxMessage,
) -> Result<(), SendError> {
    let payload = &row.payload;
    let ticket = payload["ticket"].as_str().unwrap_or_default();
    match payload["kind"].as_str() {
        Some("replies") => {
            let address = desk
                .store()
                .address_of(&row.conversation_id)
                .await
                .map_err(|e| SendError::Temporary(e.to_string()))?
                .ok_or_else(|| {
                    SendError::Permanent("conversation has no Discord address".into())
                })?;
            let channel = channel_from(&address)?;
            for reply in payload["replies"].as_array().into_iter().flatten() {
                let text = reply["text"].as_str().unwrap_or_default();
                let choices: Vec<RenderedChoice> = reply["choices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        Some(RenderedChoice {
                            id: c["id"].as_str()?.to_string(),
                            label: c["label"].as_str()?.to_string(),
                        })
                    })
                    .collect();
                for message in reply_messages(text, &choices) {
                    send(http, channel, message).await?;
                }
            }
            Ok(())
        }
        Some("handoff") => {
            if config.staff_channel_id == 0 {
                return Err(SendError::Permanent(
                    "no staff channel: set discord.staff_channel_id".into(),
                ));
            }
            let agent_locale = desk.agent_locale().to_string();
            let args = std::collections::BTreeMap::from([(
                "ticket".to_string(),
                Value::String(ticket.to_string()),
            )]);
            let name = desk
                .catalog()
                .format(&agent_locale, "discord-staff-thread-name", &args);
            // Reuse the thread if an earlier attempt created it.
            let existing = desk
                .store()
                .handoff(ticket)
                .await
                .map_err(|e| SendError::Temporary(e.to_string()))?
                .and_then(|h| h.agent_address);
            let thread = match existing {
                Some(address) => channel_from(&address)?,
                None => {
                    let thread = ChannelId::new(config.staff_channel_id)
                        .create_thread(
                            http,
                            CreateThread::new(name).kind(ChannelType::PublicThread),
                        )
                        .await
                        .map_err(classify)?;
                    desk.store()
                        .set_handoff_address(ticket, &thread.id.get().to_string())
                        .await
                        .map_err(|e| SendError::Temporary(e.to_string()))?;
                    thread.id
                }
            };
            send_text(
                http,
                thread,
                payload["summary"].as_str().unwrap_or_default(),
            )
            .await?;
            let recent: Vec<&str> = payload["recent"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !recent.is_empty() {
                let title = desk.catalog().format(
                    &agent_locale,
                    "handoff-recent-title",
                    &Default::default(),
                );
                send_text(http, thread, &format!("{title}\n{}", recent.join("\n"))).await?;
            }
            Ok(())
        }
        Some("relay") | Some("agent_note") => {
            let thread = staff_thread(desk, ticket).await?;
            send_text(http, thread, payload["text"].as_str().unwrap_or_default()).await
        }
        Some("transcript") => {
            let thread = staff_thread(desk, ticket).await?;
            let lines = desk
                .store()
                .transcript(&row.conversation_id)
                .await
                .map_err(|e| SendError::Temporary(e.to_string()))?;
            let agent_locale = desk.agent_locale().to_string();
            let args = std::collections::BTreeMap::from([(
                "ticket".to_string(),
                Value::String(ticket.to_string()),
            )]);
            let title = desk
                .catalog()
                .format(&agent_locale, "handoff-transcript-title", &args);
            let text = crate::handoff::transcript::for_agents(&title, &lines, desk.time_zone());
            send_text(http, thread, &text).await
        }
        other => Err(SendError::Permanent(format!(
            "unknown outbox row kind {other:?}"
        ))),
    }
}
