//! Authenticated activities → desk calls. Nothing here decides what the bot
//! says; replies reach Teams through the outbox and [`super::sender`].
//!
//! - `conversationUpdate` adding the bot to a personal chat: greeting.
//! - `message` with text, or with `value.madoguchi_choice` (an
//!   `Action.Submit` press, empty text): an input of the conversation, keyed
//!   by the activity id so a retried delivery is processed once.
//! - In the agents' channel (the handoff card's reply thread): configured
//!   agents claim (card button or `claim`), talk to the person, `release
//!   [node]`, `transfer <aad-object-id> [name]`, `close`; others are refused.

use std::sync::Arc;

use serde_json::Value;

use super::activity::{
    reply_activity, typing_activity, Activity, ConversationReference, AGENT_ACTION_KEY,
};
use super::{TeamsContext, CHANNEL};
use crate::desk::{DeskError, RenderedReply};
use crate::flow::engine::{AgentAction, AgentRef, Input};

/// Messages the Teams adapter says itself: (id, variables).
pub const TEAMS_MESSAGES: &[(&str, &[&str])] = &[
    ("teams-agent-only", &[]),
    ("teams-claim-button", &[]),
    ("teams-close-button", &[]),
    ("teams-not-a-ticket", &[]),
];

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error(transparent)]
    Store(#[from] crate::conversation::store::StoreError),
}

pub async fn handle(ctx: &Arc<TeamsContext>, activity: Activity) -> Result<(), InboundError> {
    let agents = &ctx.config.agents_conversation_id;
    if !agents.is_empty() && activity.conversation.id.starts_with(agents.as_str()) {
        return agent_activity(ctx, activity).await;
    }
    let reference = ConversationReference::from_activity(&activity);
    let address = activity.conversation.id.clone();
    let store = ctx.desk.store();
    store
        .set_reference(
            CHANNEL,
            &address,
            &serde_json::to_string(&reference).unwrap_or_default(),
        )
        .await?;
    let locale = ctx
        .desk
        .catalog()
        .negotiate(activity.locale.as_deref().unwrap_or(""));
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    let now = ctx.clock.now();
    let existing = store.find_by_address(CHANNEL, &address).await?;
    match activity.kind.as_str() {
        "conversationUpdate" if activity.adds_bot() => {
            if existing.is_none() {
                ctx.desk
                    .open(
                        CHANNEL,
                        &activity.from.id,
                        &locale,
                        None,
                        Some(&address),
                        key,
                        now,
                    )
                    .await?;
                tracing::info!(channel = "teams", "conversation opened: bot added");
            }
        }
        "message" => {
            typing(ctx, &reference);
            let input = match activity.choice() {
                Some(choice) => Input::Choice(choice),
                None => Input::Text(activity.clean_text()),
            };
            match existing {
                Some((conversation, _)) => {
                    ctx.desk.handle(&conversation.id, input, key, now).await?;
                }
                None => {
                    let first_text = match input {
                        Input::Text(text) => Some(text),
                        _ => None,
                    };
                    ctx.desk
                        .open(
                            CHANNEL,
                            &activity.from.id,
                            &locale,
                            first_text,
                            Some(&address),
                            key,
                            now,
                        )
                        .await?;
                }
            }
        }
        other => tracing::debug!(kind = other, "Teams: activity ignored"),
    }
    Ok(())
}

/// Sends a typing indicator without waiting for it (best effort).
fn typing(ctx: &Arc<TeamsContext>, reference: &ConversationReference) {
    let ctx = ctx.clone();
    let reference = reference.clone();
    tokio::spawn(async move {
        let activity = typing_activity(&reference);
        if let Err(e) = ctx
            .connector
            .send(
                &reference.service_url,
                &reference.conversation_id,
                None,
                &activity,
            )
            .await
        {
            tracing::debug!(error = %e, "Teams: typing indicator not sent");
        }
    });
}

async fn agent_activity(ctx: &TeamsContext, activity: Activity) -> Result<(), InboundError> {
    let store = ctx.desk.store();
    let now = ctx.clock.now();
    let root = activity
        .conversation
        .id
        .split(";messageid=")
        .nth(1)
        .map(str::to_string)
        .or_else(|| activity.reply_to_id.clone());
    let value_ticket = activity
        .value
        .as_ref()
        .and_then(|v| v.get("ticket"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let handoff = match (value_ticket, root) {
        (Some(ticket), _) => store.handoff(&ticket).await?,
        (None, Some(root)) => store.find_handoff_by_address(&root).await?,
        _ => None,
    };
    let allowed = activity
        .from
        .aad_object_id
        .as_ref()
        .is_some_and(|id| ctx.config.agents.iter().any(|a| a == id));
    let reference = ConversationReference::from_activity(&activity);
    let Some(handoff) = handoff else {
        say_to_agents(ctx, &reference, "teams-not-a-ticket").await;
        return Ok(());
    };
    if !allowed {
        tracing::info!("Teams: agent action refused: sender is not a configured agent");
        say_to_agents(ctx, &reference, "teams-agent-only").await;
        return Ok(());
    }
    let agent = AgentRef {
        id: activity.from.aad_object_id.clone().unwrap_or_default(),
        name: activity
            .from
            .name
            .clone()
            .unwrap_or_else(|| activity.from.id.clone()),
    };
    let button = activity
        .value
        .as_ref()
        .and_then(|v| v.get(AGENT_ACTION_KEY))
        .and_then(Value::as_str)
        .map(str::to_string);
    let text = activity.clean_text();
    let command = button.unwrap_or_else(|| text.clone());
    let mut words = command.split_whitespace();
    let action = match words
        .next()
        .map(|w| w.trim_start_matches('/').to_ascii_lowercase())
    {
        Some(w) if w == "claim" => AgentAction::Claim(agent),
        Some(w) if w == "close" => AgentAction::Close { agent },
        Some(w) if w == "release" => AgentAction::Release {
            agent,
            node: words.next().map(str::to_string),
        },
        Some(w) if w == "transfer" => match words.next() {
            Some(id) => AgentAction::Transfer {
                agent,
                to: {
                    let name: String = words
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(80)
                        .collect();
                    AgentRef {
                        id: id.to_string(),
                        name: if name.trim().is_empty() {
                            id.to_string()
                        } else {
                            name
                        },
                    }
                },
            },
            None => AgentAction::Say { agent, text },
        },
        _ => AgentAction::Say { agent, text },
    };
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    ctx.desk.agent(&handoff.ticket, action, key, now).await?;
    Ok(())
}

/// A short note back to the agents' thread (refusals), sent at once.
async fn say_to_agents(ctx: &TeamsContext, reference: &ConversationReference, message_id: &str) {
    let text = ctx
        .desk
        .catalog()
        .format(ctx.desk.agent_locale(), message_id, &Default::default());
    let reply = RenderedReply {
        message_id: message_id.to_string(),
        text,
        choices: Vec::new(),
    };
    let activity = reply_activity(reference, &reply);
    if let Err(e) = ctx
        .connector
        .send(
            &reference.service_url,
            &reference.conversation_id,
            None,
            &activity,
        )
        .await
    {
        tracing::warn!(error = %e, "Teams: could not send a note to the agents' channel");
    }
}
