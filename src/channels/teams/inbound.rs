//! Authenticated activities → desk calls. Nothing here decides what the bot
//! says; replies reach Teams through the outbox and [`super::deliver`].
//! Nothing slow runs while Teams waits for the answer (the Bot Connector
//! retries an activity not answered within about 15 s): inputs are
//! committed and answered; sends (replies, notes, typing indicators, the
//! polite "try again") go out afterwards.
//!
//! By activity type:
//!
//! - `conversationUpdate` adding the bot (Teams) or the person (the Bot
//!   Framework Emulator) to a **personal** chat: greeting (once). In group
//!   chats and channels the bot says nothing on being added.
//! - `message` with text, or with `value.madoguchi_choice` (an
//!   `Action.Submit` press, empty text): an input of the conversation, keyed
//!   by the activity id so a retried delivery is processed once. The
//!   conversation reference is saved inside that input's commit, with the
//!   activity's id: replies answer it (`replyToId`, as the Bot Framework
//!   SDKs apply a reference's `activityId`). A typing indicator goes out
//!   first unless `teams.typing_indicators` is off.
//! - Everything else (`installationUpdate`, `messageReaction`,
//!   `conversationUpdate` elsewhere, `invoke`, …) is ignored (debug log).
//!
//! Mentions: in channels and group chats Teams delivers only messages that
//! @mention the bot unless the app has RSC
//! (<https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/channel-messages-with-rsc>).
//! Without `teams.rsc_channel_messages`, a message there counts only if it
//! mentions the bot (or is a card press); an unmentioned one that still
//! arrives (the app was installed with RSC anyway) is staff or group chat
//! not meant for the bot, and is ignored.
//!
//! In the agents' channel only messages are agent actions: configured
//! agents claim (card button or `@madoguchi claim`), talk to the person,
//! `release [node]`, `transfer <aad-object-id> [name]`, `close` (parsed by
//! the shared [`crate::handoff::commands`]); others are refused politely,
//! once per activity (the note is keyed by the activity id), and only when
//! they addressed the bot.

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

/// Whether a message is meant for the bot: a card press, anything in a
/// personal chat, a message that @mentions the bot, or (with RSC) any
/// message.
fn addressed(ctx: &TeamsContext, activity: &Activity) -> bool {
    activity.value.is_some()
        || activity.scope() == "personal"
        || activity.mentions_bot()
        || ctx.config.rsc_channel_messages
}

pub async fn handle(ctx: &Arc<TeamsContext>, activity: Activity) -> Result<(), InboundError> {
    let agents = &ctx.config.agents_conversation_id;
    let in_agents_channel =
        !agents.is_empty() && super::pacing::thread_of(&activity.conversation.id) == agents;
    if activity.kind == "message" && !addressed(ctx, &activity) {
        tracing::debug!(
            scope = activity.scope(),
            "Teams: message without a mention ignored (not meant for the bot)"
        );
        return Ok(());
    }
    if in_agents_channel {
        return match activity.kind.as_str() {
            "message" => agent_activity(ctx, activity).await,
            other => {
                tracing::debug!(
                    kind = other,
                    "Teams: activity in the agents' channel ignored"
                );
                Ok(())
            }
        };
    }
    let reference = ConversationReference::from_activity(&activity);
    let reference_json = stored_reference(&reference, activity.id.as_deref());
    let address = activity.conversation.id.clone();
    let locale_hint = activity.locale.clone().unwrap_or_default();
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    let now = ctx.clock.now();
    match activity.kind.as_str() {
        "conversationUpdate" if opens_personal_chat(&activity) => {
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
            if ctx.config.typing_indicators {
                typing(ctx, &reference);
            }
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
                apologise(ctx, &reference, &locale_hint);
                return Err(e.into());
            }
        }
        other => tracing::debug!(
            kind = other,
            scope = activity.scope(),
            "Teams: activity ignored"
        ),
    }
    Ok(())
}

/// Whether a `conversationUpdate` opens a personal chat: it adds the bot
/// (how Teams says the app was installed) or someone other than the bot
/// (how the Bot Framework Emulator and SDK samples start one).
fn opens_personal_chat(activity: &Activity) -> bool {
    activity.scope() == "personal"
        && activity.kind == "conversationUpdate"
        && !activity.members_added.is_empty()
}

/// The conversation reference as stored with an input: the reference plus
/// the id of the activity it came with (`reply_to_id`), which
/// [`super::deliver`] names as `replyToId` on the replies.
pub fn stored_reference(
    reference: &ConversationReference,
    activity_id: Option<&str>,
) -> Option<String> {
    let mut value = serde_json::to_value(reference).ok()?;
    if let (Some(id), Value::Object(map)) = (activity_id, &mut value) {
        map.insert(REPLY_TO_KEY.into(), Value::String(id.to_string()));
    }
    Some(value.to_string())
}

/// Key of the answered activity's id in a stored reference.
pub const REPLY_TO_KEY: &str = "reply_to_id";

/// When a person's input could not be handled, they still get a short
/// polite answer, sent directly (the outbox may be what failed) and after
/// the request is answered.
fn apologise(ctx: &Arc<TeamsContext>, reference: &ConversationReference, locale_hint: &str) {
    let ctx = ctx.clone();
    let reference = reference.clone();
    let locale_hint = locale_hint.to_string();
    tokio::spawn(async move {
        let locale = ctx
            .desk
            .locale_at(CHANNEL, &reference.conversation_id, &locale_hint)
            .await;
        let activity = reply_activity(&reference, &ctx.desk.try_again_reply(&locale));
        let sent = ctx
            .pacer
            .run(
                &reference.conversation_id,
                ctx.connector.send(
                    &reference.service_url,
                    &reference.conversation_id,
                    None,
                    &activity,
                ),
            )
            .await;
        if let Err(e) = sent {
            tracing::error!(error = %e, "Teams: could not tell the person to try again");
        }
    });
}

/// Sends a typing indicator without waiting for it (best effort: skipped
/// when the conversation's thread is busy or at its rate limit, so it never
/// races or delays a reply).
fn typing(ctx: &Arc<TeamsContext>, reference: &ConversationReference) {
    let ctx = ctx.clone();
    let reference = reference.clone();
    tokio::spawn(async move {
        let activity = typing_activity(&reference);
        let sent = ctx
            .pacer
            .run_if_free(
                &reference.conversation_id,
                ctx.connector.send(
                    &reference.service_url,
                    &reference.conversation_id,
                    None,
                    &activity,
                ),
            )
            .await;
        match sent {
            Some(Err(e)) => tracing::debug!(error = %e, "Teams: typing indicator not sent"),
            None => tracing::debug!("Teams: typing indicator skipped (thread busy)"),
            Some(Ok(_)) => {}
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
    let key = activity
        .id
        .as_ref()
        .map(|id| format!("teams:activity:{id}"));
    // With RSC every channel message arrives: staff chat that did not
    // address the bot gets no refusal.
    let explicit = activity.value.is_some() || activity.mentions_bot();
    if !explicit && (ticket.is_none() || !allowed) {
        tracing::debug!("Teams: unaddressed message in the agents' channel ignored");
        return Ok(());
    }
    let Some(ticket) = ticket else {
        return notice(
            ctx,
            &reference,
            key.as_deref(),
            registry::TEAMS_NOT_A_TICKET,
        )
        .await;
    };
    if !allowed {
        tracing::info!("Teams: agent action refused: sender is not a configured agent");
        return notice(ctx, &reference, key.as_deref(), registry::TEAMS_AGENT_ONLY).await;
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
            Err(error) => return notice(ctx, &reference, key.as_deref(), error.message_id()).await,
        },
        None => AgentAction::Say { agent, text },
    };
    ctx.desk.agent(&ticket.ticket, action, key, now).await?;
    Ok(())
}

/// A short note back to the agents' thread (refusals), through the outbox,
/// written once per activity (`key`): a redelivered activity adds none.
async fn notice(
    ctx: &TeamsContext,
    reference: &ConversationReference,
    key: Option<&str>,
    message_id: &str,
) -> Result<(), InboundError> {
    let address = serde_json::to_string(reference).unwrap_or_default();
    ctx.desk
        .notify_agents_channel(CHANNEL, &address, message_id, key, ctx.clock.now())
        .await?;
    Ok(())
}
