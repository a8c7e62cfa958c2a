//! The Teams outbox sender: delivers the desk's outbox rows for the `teams`
//! channel through the connector, in order, and marks them sent.
//!
//! `replies` go to the person's conversation (proactively, from the stored
//! conversation reference: reminders and agent messages work the same way);
//! `handoff` posts an Adaptive Card with the summary and a Claim button into
//! the agents' channel and remembers the card's id; `relay`, `agent_note`
//! and `transcript` go into that card's reply thread. 429 and 5xx are
//! retried, waiting at least the connector's `Retry-After`; a row is never
//! sent twice once the connector accepted it (it is marked sent right away).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::activity::{adaptive_card, reply_activity, ConversationReference, AGENT_ACTION_KEY};
use super::connector::SendError;
use super::{TeamsContext, CHANNEL};
use crate::conversation::store::OutboxMessage;
use crate::desk::{RenderedChoice, RenderedReply};

pub async fn run(ctx: Arc<TeamsContext>, mut shutdown: watch::Receiver<bool>) {
    let mut committed = ctx.desk.committed();
    loop {
        let stopping = *shutdown.borrow();
        match ctx.desk.store().pending_outbox(CHANNEL, 50).await {
            Ok(rows) if !rows.is_empty() => {
                for row in rows {
                    deliver_with_retry(&ctx, &row).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "Teams sender: cannot read the outbox"),
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = committed.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn deliver_with_retry(ctx: &TeamsContext, row: &OutboxMessage) {
    let kind = row.payload["kind"].as_str().unwrap_or("?").to_string();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match deliver(ctx, row).await {
            Ok(()) => {
                if let Err(e) = ctx.desk.store().mark_sent(&[row.id], ctx.clock.now()).await {
                    tracing::error!(error = %e, row = row.id, "Teams sender: sent but could not mark the row");
                }
                return;
            }
            Err(SendError::Temporary {
                reason,
                retry_after,
            }) if attempt < ctx.config.max_attempts => {
                let backoff = ctx.config.retry_base() * 2u32.saturating_pow(attempt - 1).min(64);
                // The connector's Retry-After when given, else exponential backoff.
                let delay = retry_after.unwrap_or(backoff);
                tracing::warn!(row = row.id, kind, attempt, %reason, delay_ms = delay.as_millis() as u64, "Teams sender: will retry");
                tokio::time::sleep(delay.min(Duration::from_secs(300))).await;
            }
            Err(error) => {
                tracing::error!(row = row.id, kind, conversation = %row.conversation_id, %error, "Teams sender: giving up on a message");
                let _ = ctx
                    .desk
                    .store()
                    .mark_failed(row.id, &error.to_string(), ctx.clock.now())
                    .await;
                return;
            }
        }
    }
}

fn temporary(e: impl std::fmt::Display) -> SendError {
    SendError::Temporary {
        reason: e.to_string(),
        retry_after: None,
    }
}

async fn person_reference(
    ctx: &TeamsContext,
    conversation: &str,
) -> Result<ConversationReference, SendError> {
    let store = ctx.desk.store();
    let address = store
        .address_of(conversation)
        .await
        .map_err(temporary)?
        .ok_or_else(|| SendError::Permanent("conversation has no Teams address".into()))?;
    let reference = store
        .reference(CHANNEL, &address)
        .await
        .map_err(temporary)?
        .ok_or_else(|| SendError::Permanent("no stored conversation reference".into()))?;
    serde_json::from_str(&reference)
        .map_err(|e| SendError::Permanent(format!("bad stored reference: {e}")))
}

fn agents_configured(ctx: &TeamsContext) -> Result<(), SendError> {
    if ctx.config.agents_conversation_id.is_empty() || ctx.config.agents_service_url.is_empty() {
        return Err(SendError::Permanent(
            "no agents' channel: set teams.agents_conversation_id and teams.agents_service_url"
                .into(),
        ));
    }
    Ok(())
}

async fn to_ticket_thread(ctx: &TeamsContext, ticket: &str, text: &str) -> Result<(), SendError> {
    agents_configured(ctx)?;
    let handoff = ctx
        .desk
        .store()
        .handoff(ticket)
        .await
        .map_err(temporary)?
        .ok_or_else(|| SendError::Permanent(format!("unknown ticket {ticket}")))?;
    let card = handoff.agent_address.ok_or_else(|| {
        SendError::Permanent(format!(
            "ticket {ticket} has no card in the agents' channel"
        ))
    })?;
    let conversation = format!("{};messageid={card}", ctx.config.agents_conversation_id);
    let activity = json!({ "type": "message", "text": text, "textFormat": "plain" });
    ctx.connector
        .send(
            &ctx.config.agents_service_url,
            &conversation,
            None,
            &activity,
        )
        .await
        .map(|_| ())
}

async fn deliver(ctx: &TeamsContext, row: &OutboxMessage) -> Result<(), SendError> {
    let payload = &row.payload;
    let ticket = payload["ticket"].as_str().unwrap_or_default();
    let agent_locale = ctx.desk.agent_locale().to_string();
    match payload["kind"].as_str() {
        Some("replies") => {
            let reference = person_reference(ctx, &row.conversation_id).await?;
            for reply in payload["replies"].as_array().into_iter().flatten() {
                let rendered = RenderedReply {
                    message_id: reply["message_id"].as_str().unwrap_or_default().to_string(),
                    text: reply["text"].as_str().unwrap_or_default().to_string(),
                    choices: reply["choices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| {
                            Some(RenderedChoice {
                                id: c["id"].as_str()?.to_string(),
                                label: c["label"].as_str()?.to_string(),
                            })
                        })
                        .collect(),
                };
                let activity = reply_activity(&reference, &rendered);
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
        Some("handoff") => {
            agents_configured(ctx)?;
            let existing = ctx
                .desk
                .store()
                .handoff(ticket)
                .await
                .map_err(temporary)?
                .and_then(|h| h.agent_address);
            if existing.is_some() {
                return Ok(()); // the card was posted before a crash
            }
            let mut text = payload["summary"].as_str().unwrap_or_default().to_string();
            let recent: Vec<&str> = payload["recent"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !recent.is_empty() {
                let title = ctx.desk.catalog().format(
                    &agent_locale,
                    "handoff-recent-title",
                    &Default::default(),
                );
                text.push_str(&format!("\n\n{title}\n{}", recent.join("\n")));
            }
            let claim =
                ctx.desk
                    .catalog()
                    .format(&agent_locale, "teams-claim-button", &Default::default());
            let close =
                ctx.desk
                    .catalog()
                    .format(&agent_locale, "teams-close-button", &Default::default());
            let actions = vec![
                json!({ "type": "Action.Submit", "title": claim, "data": { AGENT_ACTION_KEY: "claim", "ticket": ticket } }),
                json!({ "type": "Action.Submit", "title": close, "data": { AGENT_ACTION_KEY: "close", "ticket": ticket } }),
            ];
            let activity =
                json!({ "type": "message", "attachments": [adaptive_card(&text, actions)] });
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
                    SendError::Permanent("the connector did not return the card's id".into())
                })?;
            ctx.desk
                .store()
                .set_handoff_address(ticket, &id)
                .await
                .map_err(temporary)?;
            Ok(())
        }
        Some("relay") | Some("agent_note") => {
            to_ticket_thread(ctx, ticket, payload["text"].as_str().unwrap_or_default()).await
        }
        Some("transcript") => {
            let lines = ctx
                .desk
                .store()
                .transcript(&row.conversation_id)
                .await
                .map_err(temporary)?;
            let args = std::collections::BTreeMap::from([(
                "ticket".to_string(),
                Value::String(ticket.to_string()),
            )]);
            let title = ctx
                .desk
                .catalog()
                .format(&agent_locale, "handoff-transcript-title", &args);
            let text = crate::handoff::transcript::for_agents(&title, &lines, ctx.desk.time_zone());
            to_ticket_thread(ctx, ticket, &text).await
        }
        other => Err(SendError::Permanent(format!(
            "unknown outbox row kind {other:?}"
        ))),
    }
}
