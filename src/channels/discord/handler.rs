//! Gateway events → desk calls. Nothing here decides what the bot says.
//!
//! - A DM, or a message in a person's private thread: text input of that
//!   conversation (a first DM opens one).
//! - `/mfa`: in a server, opens a private thread (so a phone number is never
//!   typed in a public channel) and starts the conversation there; in a DM,
//!   starts or resumes it.
//! - A button or select menu: a choice; the pressed message's buttons are
//!   disabled at once (the interaction response), the step goes to the desk
//!   keyed by the interaction id, so a double delivery is one step.
//!
//! **Discord's 3 seconds**: an interaction must get its first response
//! within 3 s or its token dies and the person sees "The application did
//! not respond"
//! (<https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction>).
//! So the first thing done for every interaction, before any database read
//! or other Discord call, is that response: a slash command is deferred
//! (type 5, ephemeral) and its answer edited in afterwards; a button press
//! is answered by disabling the pressed buttons (type 7, itself a first
//! response). Every failure after that still gets a short ephemeral answer
//! from the locales.
//! - In a staff thread: messages and `/claim` `/release` `/transfer`
//!   `/close` from members with the agent role go to the desk as agent
//!   actions; everyone else is refused politely.
//!
//! Replies are never sent from here: the desk writes them to the outbox and
//! the sender delivers them ([`super::deliver`]), so a crash in between
//! loses nothing. The one exception is the "please try again" answer when
//! the desk itself failed, since then the outbox may be what failed.
//! Interaction responses (ephemeral notes, disabled buttons) are Discord's
//! answer to the interaction itself, not messages of the conversation.

use std::collections::{BTreeMap, HashSet, VecDeque};

use std::sync::{Arc, Mutex};

use serenity::all::{
    ActionRowComponent, AutoArchiveDuration, ChannelId, ChannelType, Command,
    CommandDataOptionValue, CommandInteraction, CommandOptionType, ComponentInteraction,
    ComponentInteractionDataKind, Context, CreateActionRow, CreateAllowedMentions, CreateButton,
    CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateThread,
    EditInteractionResponse, EventHandler, GuildId, InstallationContext, Interaction,
    InteractionContext, Message, Permissions, Ready, RoleId, User,
};

use super::render::choice_from_component;
use super::{DiscordConfig, CHANNEL};
use crate::clock::Clock;
use crate::desk::{Desk, DeskError, Inbound};
use crate::flow::engine::{AgentAction, AgentRef, Input};
use crate::handoff::commands;
use crate::i18n::registry;

/// How many interaction ids are remembered to drop gateway re-deliveries of
/// `/mfa` (other inputs are deduplicated durably by the desk).
const SEEN_INTERACTIONS: usize = 1024;

pub struct Handler {
    desk: Desk,
    clock: Arc<dyn Clock>,
    config: Arc<DiscordConfig>,
    /// Recently seen interaction ids, oldest first. A blocking mutex: held
    /// only to check and insert, never across an await.
    seen: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    /// Each event holds a read guard while it is handled; shutdown takes the
    /// write lock to wait until every in-flight event is finished.
    in_flight: Arc<tokio::sync::RwLock<()>>,
}

#[derive(Debug, thiserror::Error)]
enum HandlerError {
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error("Discord API: {0}")]
    Discord(#[from] serenity::Error),
}

impl Handler {
    pub fn new(
        desk: Desk,
        clock: Arc<dyn Clock>,
        config: Arc<DiscordConfig>,
        in_flight: Arc<tokio::sync::RwLock<()>>,
    ) -> Handler {
        Handler {
            desk,
            clock,
            config,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            in_flight,
        }
    }

    /// True the first time an interaction id is seen.
    fn first_time(&self, id: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.0.insert(id) {
            return false;
        }
        seen.1.push_back(id);
        if seen.1.len() > SEEN_INTERACTIONS {
            if let Some(old) = seen.1.pop_front() {
                seen.0.remove(&old);
            }
        }
        true
    }

    /// Discord's user locale → a conversation locale: Japanese for `ja`,
    /// English for any other locale when English exists, else the default.
    fn locale_for(&self, discord_locale: &str) -> String {
        let catalog = self.desk.catalog();
        let negotiated = catalog.negotiate(discord_locale);
        let is_default = negotiated == catalog.default_locale();
        let asked_default = discord_locale
            .to_ascii_lowercase()
            .starts_with(&catalog.default_locale());
        if is_default && !asked_default && !discord_locale.is_empty() && catalog.has_locale("en") {
            "en".to_string()
        } else {
            negotiated
        }
    }

    fn is_agent(&self, roles: &[RoleId]) -> bool {
        self.config.agent_role_id != 0 && roles.iter().any(|r| r.get() == self.config.agent_role_id)
    }

    async fn on_message(&self, ctx: &Context, msg: &Message) -> Result<(), HandlerError> {
        let channel = msg.channel_id.get().to_string();
        let key = Some(format!("discord:message:{}", msg.id.get()));
        let now = self.clock.now();
        if msg.guild_id.is_some() {
            if let Some(ticket) = self.desk.ticket_at(&channel).await? {
                let roles = msg
                    .member
                    .as_ref()
                    .map(|m| m.roles.clone())
                    .unwrap_or_default();
                if !self.is_agent(&roles) {
                    // Staff without the agent role talk among themselves.
                    return Ok(());
                }
                let agent = agent_ref(
                    &msg.author,
                    msg.member.as_ref().and_then(|m| m.nick.clone()),
                );
                let action = AgentAction::Say {
                    agent,
                    text: msg.content.clone(),
                };
                self.desk.agent(&ticket.ticket, action, key, now).await?;
                return Ok(());
            }
            // In a server, only a person's private thread is a conversation.
            if !self.desk.has_conversation_at(CHANNEL, &channel).await? {
                return Ok(());
            }
        }
        typing(ctx, msg.channel_id).await;
        self.desk
            .receive(Inbound {
                channel: CHANNEL.into(),
                address: channel,
                user_key: msg.author.id.get().to_string(),
                locale_hint: self.desk.catalog().default_locale(),
                input: Input::Text(msg.content.clone()),
                key,
                reference: None,
                at: now,
            })
            .await?;
        Ok(())
    }

    /// `/mfa`, after the deferral: the ephemeral answer to edit in.
    async fn on_mfa(
        &self,
        ctx: &Context,
        command: &CommandInteraction,
        locale: &str,
    ) -> Result<String, HandlerError> {
        let user = command.user.id.get().to_string();
        let now = self.clock.now();
        if command.guild_id.is_some() {
            // Private threads exist only under text channels: not inside a
            // thread, a forum or an announcement channel
            // (https://discord.com/developers/docs/resources/channel#start-thread-without-message).
            let kind = command.channel.as_ref().map(|c| c.kind);
            if kind.is_some_and(|k| k != ChannelType::Text) {
                return Ok(self.desk.text(locale, registry::DISCORD_MFA_NOT_HERE, &[]));
            }
            let can_create = command
                .app_permissions
                .is_none_or(|p| p.contains(Permissions::CREATE_PRIVATE_THREADS));
            if !can_create {
                tracing::warn!(channel_id = %command.channel_id, "Discord: /mfa refused: the bot lacks Create Private Threads in this channel (give it that permission, and Send Messages in Threads)");
                return Ok(self
                    .desk
                    .text(locale, registry::DISCORD_MFA_NO_PERMISSION, &[]));
            }
            let name = self.desk.text(locale, registry::DISCORD_THREAD_NAME, &[]);
            let created = command
                .channel_id
                .create_thread(
                    &ctx.http,
                    CreateThread::new(name)
                        .kind(ChannelType::PrivateThread)
                        .invitable(false)
                        .auto_archive_duration(AutoArchiveDuration::OneWeek),
                )
                .await;
            let thread = match created {
                Ok(thread) => thread,
                Err(e) => {
                    let refusal = match discord_error(&e) {
                        Some((403, 50013)) => registry::DISCORD_MFA_NO_PERMISSION,
                        Some((400, _)) => registry::DISCORD_MFA_NOT_HERE,
                        _ => return Err(e.into()),
                    };
                    tracing::warn!(error = %e, channel_id = %command.channel_id, "Discord: /mfa could not open a private thread here");
                    return Ok(self.desk.text(locale, refusal, &[]));
                }
            };
            thread
                .id
                .add_thread_member(&ctx.http, command.user.id)
                .await?;
            let address = thread.id.get().to_string();
            self.desk
                .start_at(CHANNEL, &address, &user, locale, now)
                .await?;
            let mention = format!("<#{}>", thread.id.get());
            return Ok(self.desk.text(
                locale,
                registry::DISCORD_THREAD_OPENED,
                &[("thread", &mention)],
            ));
        }
        // In a DM: the open conversation asks its pending question again
        // (through the outbox, like every reply, split like every reply),
        // or a new one starts.
        let channel = command.channel_id.get().to_string();
        self.desk
            .start_or_resume(CHANNEL, &channel, &user, locale, None, now)
            .await?;
        Ok(self.desk.text(locale, registry::DISCORD_MFA_STARTED, &[]))
    }

    /// An agent command, after the deferral: the ephemeral answer.
    async fn on_agent_command(
        &self,
        command: &CommandInteraction,
        agent_locale: &str,
    ) -> Result<String, HandlerError> {
        let channel = command.channel_id.get().to_string();
        let Some(ticket) = self.desk.ticket_at(&channel).await? else {
            return Ok(self
                .desk
                .text(agent_locale, registry::DISCORD_NOT_A_TICKET_THREAD, &[]));
        };
        let roles = command
            .member
            .as_ref()
            .map(|m| m.roles.clone())
            .unwrap_or_default();
        if !self.is_agent(&roles) {
            tracing::info!(command = %command.data.name, "agent command refused: member lacks the agent role");
            return Ok(self
                .desk
                .text(agent_locale, registry::DISCORD_AGENT_ONLY, &[]));
        }
        let agent = agent_ref(
            &command.user,
            command.member.as_ref().and_then(|m| m.nick.clone()),
        );
        // The options as the words a typed command would have.
        let rest = match command.data.name.as_str() {
            "release" => string_option(command, "step").unwrap_or_default(),
            "transfer" => user_option(command, "agent")
                .map(|to| format!("{} {}", to.id, to.name))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let parsed = commands::from_parts(&command.data.name, &rest)
            .ok_or(commands::CommandError::MissingTarget)
            .and_then(|c| c.into_action(agent));
        let action = match parsed {
            Ok(action) => action,
            Err(error) => return Ok(self.desk.text(agent_locale, error.message_id(), &[])),
        };
        let key = Some(format!("discord:interaction:{}", command.id.get()));
        self.desk
            .agent(&ticket.ticket, action, key, self.clock.now())
            .await?;
        Ok(self
            .desk
            .text(agent_locale, registry::DISCORD_AGENT_ACK, &[]))
    }

    async fn on_component(
        &self,
        ctx: &Context,
        component: &ComponentInteraction,
    ) -> Result<(), HandlerError> {
        // The first response, before anything else (3 s): the pressed
        // message keeps its text and loses its working buttons.
        component
            .create_response(
                &ctx.http,
                CreateInteractionResponse::UpdateMessage(
                    CreateInteractionResponseMessage::new()
                        .components(disabled_components(&component.message.components)),
                ),
            )
            .await?;
        let values = match &component.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values.clone(),
            _ => Vec::new(),
        };
        let channel = component.channel_id.get().to_string();
        let known = self.desk.has_conversation_at(CHANNEL, &channel).await?;
        let choice = choice_from_component(&component.data.custom_id, &values);
        let Some(choice) = choice.filter(|_| known) else {
            let locale = self.locale_for(&component.locale);
            let text = self
                .desk
                .text(&locale, registry::DISCORD_UNKNOWN_CONVERSATION, &[]);
            component
                .create_followup(
                    &ctx.http,
                    CreateInteractionResponseFollowup::new()
                        .content(text)
                        .ephemeral(true)
                        .allowed_mentions(CreateAllowedMentions::new()),
                )
                .await?;
            return Ok(());
        };
        typing(ctx, component.channel_id).await;
        self.desk
            .receive(Inbound {
                channel: CHANNEL.into(),
                address: channel,
                user_key: component.user.id.get().to_string(),
                locale_hint: component.locale.clone(),
                input: Input::Choice(choice),
                key: Some(format!("discord:interaction:{}", component.id.get())),
                reference: None,
                at: self.clock.now(),
            })
            .await?;
        Ok(())
    }

    /// A slash command: deferred at once (ephemeral), then handled, then
    /// the deferred answer is edited to say how it went; a failure gets
    /// the polite try-again text rather than silence.
    async fn on_command(&self, ctx: &Context, command: &CommandInteraction) {
        if let Err(e) = command
            .create_response(
                &ctx.http,
                CreateInteractionResponse::Defer(
                    CreateInteractionResponseMessage::new().ephemeral(true),
                ),
            )
            .await
        {
            tracing::error!(error = %e, command = %command.data.name, "Discord: could not acknowledge a command (the person sees \"The application did not respond\")");
            return;
        }
        let name = command.data.name.as_str();
        let locale = match name {
            "claim" | "release" | "transfer" | "close" => self.desk.agent_locale().to_string(),
            _ => self.locale_for(&command.locale),
        };
        let answer = match name {
            "mfa" => self.on_mfa(ctx, command, &locale).await,
            "claim" | "release" | "transfer" | "close" => {
                self.on_agent_command(command, &locale).await
            }
            other => {
                tracing::warn!(
                    command = other,
                    "Discord: unknown command (registered by another version?)"
                );
                Ok(self
                    .desk
                    .text(&locale, registry::DISCORD_UNKNOWN_COMMAND, &[]))
            }
        };
        let text = answer.unwrap_or_else(|e| {
            tracing::error!(error = %e, command = name, "Discord: command not handled");
            self.desk.try_again_reply(&locale).text
        });
        if let Err(e) = command
            .edit_response(
                &ctx.http,
                EditInteractionResponse::new()
                    .content(text)
                    .allowed_mentions(CreateAllowedMentions::new()),
            )
            .await
        {
            tracing::error!(error = %e, command = name, "Discord: could not edit the deferred answer");
        }
    }

    /// When a person's input could not be handled, they still get a short
    /// polite answer, sent directly (the outbox may be what failed).
    async fn apologise(&self, ctx: &Context, channel: ChannelId) {
        let address = channel.get().to_string();
        let locale = self
            .desk
            .locale_at(CHANNEL, &address, &self.desk.catalog().default_locale())
            .await;
        let reply = self.desk.try_again_reply(&locale);
        if let Err(e) = channel
            .send_message(&ctx.http, super::render::plain(reply.text))
            .await
        {
            tracing::error!(error = %e, "Discord: could not tell the person to try again");
        }
    }

    async fn register_commands(&self, ctx: &Context) -> Result<(), serenity::Error> {
        let catalog = self.desk.catalog();
        let describe = |command: CreateCommand, id: &str| -> CreateCommand {
            let mut command = command.description(catalog.format("en", id, &BTreeMap::new()));
            for locale in catalog.locale_ids() {
                // Discord's locale for Japanese is "ja"; English is "en-US"/"en-GB".
                let discord_locale = if locale == "en" {
                    "en-US".to_string()
                } else {
                    locale.clone()
                };
                command = command.description_localized(
                    discord_locale,
                    catalog.format(&locale, id, &BTreeMap::new()),
                );
            }
            command
        };
        let option = |kind, name: &str, id: &str, required: bool| {
            let mut option =
                CreateCommandOption::new(kind, name, catalog.format("en", id, &BTreeMap::new()))
                    .required(required);
            for locale in catalog.locale_ids().into_iter().filter(|l| l != "en") {
                option = option.description_localized(
                    locale.clone(),
                    catalog.format(&locale, id, &BTreeMap::new()),
                );
            }
            option
        };
        let commands = vec![
            describe(
                CreateCommand::new("mfa").name_localized("ja", "mfa"),
                registry::DISCORD_COMMAND_MFA,
            ),
            describe(CreateCommand::new("claim"), registry::DISCORD_COMMAND_CLAIM)
                .dm_permission(false),
            describe(
                CreateCommand::new("release"),
                registry::DISCORD_COMMAND_RELEASE,
            )
            .dm_permission(false)
            .add_option(option(
                CommandOptionType::String,
                "step",
                registry::DISCORD_COMMAND_RELEASE_STEP,
                false,
            )),
            describe(
                CreateCommand::new("transfer"),
                registry::DISCORD_COMMAND_TRANSFER,
            )
            .dm_permission(false)
            .add_option(option(
                CommandOptionType::User,
                "agent",
                registry::DISCORD_COMMAND_TRANSFER_AGENT,
                true,
            )),
            describe(CreateCommand::new("close"), registry::DISCORD_COMMAND_CLOSE)
                .dm_permission(false),
        ];
        if self.config.guild_id != 0 {
            // Guild commands exist only in that server, never in DMs
            // (https://discord.com/developers/docs/interactions/application-commands#registering-a-command):
            // `/mfa` is registered globally as well, for DMs only
            // (context BOT_DM, https://discord.com/developers/docs/interactions/application-commands#interaction-contexts),
            // so it is not listed twice in the server. This replaces any
            // global commands an earlier version registered.
            GuildId::new(self.config.guild_id)
                .set_commands(&ctx.http, commands)
                .await?;
            let dm_mfa = describe(
                CreateCommand::new("mfa").name_localized("ja", "mfa"),
                registry::DISCORD_COMMAND_MFA,
            )
            .integration_types(vec![InstallationContext::Guild])
            .contexts(vec![InteractionContext::BotDm]);
            Command::set_global_commands(&ctx.http, vec![dm_mfa]).await?;
        } else {
            Command::set_global_commands(&ctx.http, commands).await?;
        }
        Ok(())
    }
}

/// Shows "typing…" while the desk works (best effort).
async fn typing(ctx: &Context, channel: ChannelId) {
    if let Err(e) = channel.broadcast_typing(&ctx.http).await {
        tracing::debug!(error = %e, "Discord: typing indicator not sent");
    }
}

/// The HTTP status and Discord error code of a failed REST call.
fn discord_error(error: &serenity::Error) -> Option<(u16, isize)> {
    match error {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) => {
            Some((response.status_code.as_u16(), response.error.code))
        }
        _ => None,
    }
}

/// How an agent is shown to the person: server nickname, else display
/// name, else user name.
fn agent_ref(user: &User, nick: Option<String>) -> AgentRef {
    AgentRef {
        id: user.id.get().to_string(),
        name: nick
            .or_else(|| user.global_name.clone())
            .unwrap_or_else(|| user.name.clone()),
    }
}

fn string_option(command: &CommandInteraction, name: &str) -> Option<String> {
    command
        .data
        .options
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
}

fn user_option(command: &CommandInteraction, name: &str) -> Option<AgentRef> {
    let option = command.data.options.iter().find(|o| o.name == name)?;
    let CommandDataOptionValue::User(user_id) = &option.value else {
        return None;
    };
    let member: Option<&serenity::all::PartialMember> = command.data.resolved.members.get(user_id);
    match command.data.resolved.users.get(user_id) {
        Some(user) => Some(agent_ref(user, member.and_then(|m| m.nick.clone()))),
        None => Some(AgentRef {
            id: user_id.get().to_string(),
            name: user_id.get().to_string(),
        }),
    }
}

/// The same rows with every button and menu disabled.
fn disabled_components(rows: &[serenity::all::ActionRow]) -> Vec<CreateActionRow> {
    rows.iter()
        .map(|row| {
            let buttons: Vec<CreateButton> = row
                .components
                .iter()
                .filter_map(|c| match c {
                    ActionRowComponent::Button(button) => {
                        Some(CreateButton::from(button.clone()).disabled(true))
                    }
                    _ => None,
                })
                .collect();
            if buttons.is_empty() {
                // A select menu: replace it by one disabled placeholder button.
                CreateActionRow::Buttons(vec![CreateButton::new("mg-done")
                    .label("✓")
                    .disabled(true)])
            } else {
                CreateActionRow::Buttons(buttons)
            }
        })
        .collect()
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(bot = %ready.user.name, "Discord gateway ready");
        if let Err(e) = self.register_commands(&ctx).await {
            tracing::error!(error = %e, "Discord: could not register slash commands (check the bot's applications.commands scope)");
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        // Bots, including this one (Discord echoes our own messages back).
        if msg.author.bot || msg.webhook_id.is_some() {
            return;
        }
        let _in_flight = self.in_flight.read().await;
        if let Err(e) = self.on_message(&ctx, &msg).await {
            tracing::error!(error = %e, channel_id = %msg.channel_id, "Discord: message not handled");
            self.apologise(&ctx, msg.channel_id).await;
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let _in_flight = self.in_flight.read().await;
        let id = interaction.id().get();
        let result = match &interaction {
            Interaction::Command(command) => {
                if !self.first_time(id) {
                    tracing::info!("Discord: duplicate command interaction ignored");
                    return;
                }
                self.on_command(&ctx, command).await;
                Ok(())
            }
            Interaction::Component(component) => {
                if !self.first_time(id) {
                    tracing::info!("Discord: duplicate component interaction ignored");
                    return;
                }
                self.on_component(&ctx, component).await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Discord: interaction not handled");
            if let Interaction::Component(component) = &interaction {
                self.apologise(&ctx, component.channel_id).await;
            }
        }
    }
}
