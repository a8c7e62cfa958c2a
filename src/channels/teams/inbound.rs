//! Authenticated activities → desk calls. Nothing here decides what the bot
//! says; replies reach Teams through the outbox and [`super::deliver`].
//!
//! - `conversationUpdate` adding the bot to a personal chat: greeting (once).
//! - `message` with text, or with `value.madoguchi_choice` (an
//!   `Action.Submit` press, empty text): an input of the conversation, keyed
//!   by the activity id so a retried delivery is processed once. The
//!   conversation reference is saved inside that input's commit.
//! - In the agents' channel (the handoff card's reply thread): configured
//!   agents claim (card button or `claim`), talk to the person, `release
//!   [node]`, `transfer <aad-object-id> [name]`, `close` (parsed by the
//!   shared [`crate::handoff::commands`]); others are refused.

use std::sync::Arc;

use serde_json::Value;

use super::activity::{
    reply_activity, typing_activity, Activity, ConversationReference, AGENT_ACTION_KEY,
};
use super::{TeamsContext, CHANNEL};
use crate::desk::{DeskError, Inbound};
use crate::flow::engine::{AgentAction, AgentRef, Input};
use crate::handoff::commands;
use crate::i18n::registry;

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Desk(#[from] DeskError),
}

pub async fn handle(ctx: &Arc<TeamsContext>, activity: Activity) -> Result<(), InboundError> {
    let agents = &ctx.config.agents_conversation_id;
    if !agents.is_empty() && activity.conversation.id.starts_with(agents.as_str()) {
        return agent_activity(ctx, activity).await;
    }
    let reference = ConversationReference::from_activity(&activity);
    let reference_json = serde_json::to_string(&reference).ok();
    let address = activity.conversation.id.clone();
    let locale_hint = activity.locale.clone().unwrap_or_default();
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    let now = ctx.clock.now();
    match activity.kind.as_str() {
        "conversationUpdate" if activity.adds_bot() => {
            if !ctx.desk.has_conversation_at(CHANNEL, &address).await? {
                ctx.desk
                    .start_or_resume(
                        CHANNEL,
                        &address,
                        &activity.from.id,
                        &locale_hint,
                        reference_json,
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
            let handled = ctx
                .desk
                .receive(Inbound {
                    channel: CHANNEL.into(),
                    address,
                    user_key: activity.from.id.clone(),
                    locale_hint: locale_hint.clone(),
                    input,
                    key,
                    reference: reference_json,
                    at: now,
                })
                .await;
            if let Err(e) = handled {
                apologise(ctx, &reference, &locale_hint).await;
                return Err(e.into());
            }
        }
        other => tracing::debug!(kind = other, "Teams: activity ignored"),
    }
    Ok(())
}

/// When a person's input could not be handled, they still get a short
/// polite answer, sent directly (the outbox may be what failed).
async fn apologise(ctx: &TeamsContext, reference: &ConversationReference, locale_hint: &str) {
    let locale = ctx
        .desk
        .locale_at(CHANNEL, &reference.conversation_id, locale_hint)
        .await;
    let activity = reply_activity(reference, &ctx.desk.try_again_reply(&locale));
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
        tracing::error!(error = %e, "Teams: could not tell the person to try again");
    }
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
    let ticket = match (value_ticket, root) {
        (Some(ticket), _) => ctx.desk.ticket(&ticket).await?,
        (None, Some(root)) => ctx.desk.ticket_at(&root).await?,
        _ => None,
    };
    let allowed = activity
        .from
        .aad_object_id
        .as_ref()
        .is_some_and(|id| ctx.config.agents.iter().any(|a| a == id));
    let reference = ConversationReference::from_activity(&activity);
    let Some(ticket) = ticket else {
        return notice(ctx, &reference, registry::TEAMS_NOT_A_TICKET).await;
    };
    if !allowed {
        tracing::info!("Teams: agent action refused: sender is not a configured agent");
        return notice(ctx, &reference, registry::TEAMS_AGENT_ONLY).await;
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
    let command = commands::parse(button.as_deref().unwrap_or(&text));
    let action = match command {
        Some(command) => match command.into_action(agent) {
            Ok(action) => action,
            Err(error) => return notice(ctx, &reference, error.message_id()).await,
        },
        None => AgentAction::Say { agent, text },
    };
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    ctx.desk.agent(&ticket.ticket, action, key, now).await?;
    Ok(())
}

/// A short note back to the agents' thread (refusals), through the outbox.
async fn notice(
    ctx: &TeamsContext,
    reference: &ConversationReference,
    message_id: &str,
) -> Result<(), InboundError> {
    let address = serde_json::to_string(reference).unwrap_or_default();
    ctx.desk
        .notify_agents_channel(CHANNEL, &address, message_id, ctx.clock.now())
        .await?;
    Ok(())
}
