//! The Discord channel (serenity): people get help in DMs and in private
//! threads opened by `/mfa`, with buttons; agents take conversations over in
//! threads of a staff channel with `/claim`, `/release`, `/transfer`,
//! `/close`.
//!
//! The adapter is thin: [`handler`] turns gateway events into desk calls,
//! [`deliver`] turns the desk's outbox rows into Discord messages for the
//! one generic sender, and [`render`] builds those messages. Flow logic and handoff decisions live in
//! the core; this module only decides *who* may act (the agent role) and
//! *where* things go (DM channel, private thread, staff thread).
//!
//! The staff channel can be the agents' side of every channel
//! (`desk.agents = "discord"`): a web or Teams conversation's handoff
//! opens a staff thread here, and what agents do in it goes to the desk
//! by ticket, whichever channel the person is on.

pub mod deliver;
pub mod handler;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serenity::all::{GatewayIntents, HttpBuilder};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::desk::Desk;

/// Channel name stored with Discord conversations and outbox rows.
pub const CHANNEL: &str = "discord";

/// The `[discord]` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// Name of the environment variable that holds the bot token. Discord is
    /// on when that variable is set and not empty.
    pub token_env: String,
    /// Channel where a thread is opened for each handed-off conversation.
    pub staff_channel_id: u64,
    /// Members with this role may claim, release, transfer and close.
    pub agent_role_id: u64,
    /// Register slash commands in this server only (instant); 0 = globally.
    pub guild_id: u64,
    /// Test only: send REST and gateway traffic to this base URL (for
    /// example `http://127.0.0.1:PORT`, a local fake Discord). Empty in
    /// production, where serenity's own rate limiter is used.
    pub api_proxy: String,
    /// First retry delay of a failed send, doubled per attempt.
    pub retry_base_ms: u64,
    /// Attempts before a message is given up (and logged).
    pub max_attempts: u32,
    /// Messages being sent at once, across conversations.
    pub max_in_flight: usize,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            token_env: "MADOGUCHI_DISCORD_TOKEN".into(),
            staff_channel_id: 0,
            agent_role_id: 0,
            guild_id: 0,
            api_proxy: String::new(),
            retry_base_ms: 500,
            max_attempts: 8,
            max_in_flight: 16,
        }
    }
}

impl DiscordConfig {
    /// The token, if the configured variable is set; otherwise why not.
    pub fn token(&self, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<String, String> {
        match env(&self.token_env) {
            Some(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
            _ => Err(format!(
                "Discord is off: environment variable {} is not set",
                self.token_env
            )),
        }
    }

    /// How the outbox sender retries Discord sends.
    pub fn sender_settings(&self) -> crate::outbox::SenderSettings {
        crate::outbox::SenderSettings::from_config(
            self.retry_base_ms,
            self.max_attempts,
            self.max_in_flight,
            Duration::from_secs(60),
        )
    }
}

/// The gateway intents the bot needs: direct messages (people write to the
/// bot), guild messages (private threads and staff threads), message content
/// (privileged: the bot must read what people type), guilds (thread events).
pub fn intents() -> GatewayIntents {
    GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::GUILDS
}

/// Why the Discord channel stopped by itself. Each says what the operator
/// must fix; `serve` ends with it (non-zero exit) so a supervisor notices,
/// instead of running on with the bot offline.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// Gateway close 4004, or HTTP 401
    /// (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes).
    #[error("Discord refused the bot token (gateway close 4004 / HTTP 401): put the bot's current token (Developer Portal → your application → Bot → Reset Token) in the environment variable {token_env}")]
    InvalidToken { token_env: String },
    /// Gateway close 4014: a privileged intent is not enabled.
    #[error("Discord closed the gateway with 4014 (disallowed intents): switch on the Message Content Intent in the Developer Portal (your application → Bot → Privileged Gateway Intents); a bot in 100 or more servers also needs Discord's approval for it")]
    DisallowedIntents,
    /// Gateway close 4013.
    #[error("Discord closed the gateway with 4013 (invalid intents): this build asks for gateway intents Discord does not know; report it as a bug")]
    InvalidIntents,
    #[error("Discord gateway stopped: {0}")]
    Gateway(String),
}

impl DiscordError {
    /// What a serenity error from starting or running the client means.
    fn from_serenity(error: serenity::Error, config: &DiscordConfig) -> DiscordError {
        use serenity::gateway::GatewayError;
        match &error {
            serenity::Error::Gateway(GatewayError::InvalidAuthentication) => {
                DiscordError::InvalidToken {
                    token_env: config.token_env.clone(),
                }
            }
            serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response))
                if response.status_code.as_u16() == 401 =>
            {
                DiscordError::InvalidToken {
                    token_env: config.token_env.clone(),
                }
            }
            serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => {
                DiscordError::DisallowedIntents
            }
            serenity::Error::Gateway(GatewayError::InvalidGatewayIntents) => {
                DiscordError::InvalidIntents
            }
            _ => DiscordError::Gateway(error.to_string()),
        }
    }
}

/// serenity's REST client for `token` (through `discord.api_proxy` when
/// set). The gateway client and the outbox's [`deliver::DiscordDeliver`]
/// each have one: serenity's `Client` takes its own by value, and the
/// deliverer is built by `serve` before the gateway starts, because other
/// channels' handoffs may go to the Discord staff channel too
/// (`desk.agents = "discord"`). The two rarely use the same routes (the
/// gateway side answers interactions and opens private threads; the
/// outbox side posts messages and staff threads), and serenity's limiter
/// waits out any 429 it meets either way.
pub fn http(config: &DiscordConfig, token: &str) -> serenity::http::Http {
    let mut http = HttpBuilder::new(token);
    if !config.api_proxy.is_empty() {
        // serenity rewrites https://discord.com to the proxy only with its
        // rate limiter off; the sender's own retry then handles 429s.
        http = http
            .proxy(config.api_proxy.clone())
            .ratelimiter_disabled(true);
    }
    http.build()
}

/// The role ([`crate::conversation::store::Store::try_lead`]) of the one
/// instance holding the gateway connection.
pub const GATEWAY_ROLE: &str = "discord-gateway";

/// How often an instance that does not hold the gateway asks again: about
/// how long the gateway is away after its holder died.
const LEADER_RETRY: Duration = Duration::from_secs(2);

/// Runs the Discord channel until `shutdown` turns true: the outbox sender
/// of Discord conversations' rows (`deliver`: the Discord deliverer, with
/// the agents' side of `desk.agents` when that is another channel), on
/// every instance, and the gateway client on the one instance holding
/// [`GATEWAY_ROLE`] (several instances on PostgreSQL: the others ask every
/// [`LEADER_RETRY`] and take over when the holder dies; a store only this
/// process uses always grants it). Returns after the client is shut down
/// and the outbox has been flushed; returns the error early when the
/// gateway stops by itself (a close the bot cannot recover from, such as
/// 4014 or 4004).
pub async fn run(
    desk: Desk,
    clock: Arc<dyn Clock>,
    config: DiscordConfig,
    token: String,
    deliver: Arc<dyn crate::outbox::Deliver>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let config = Arc::new(config);
    let in_flight = Arc::new(tokio::sync::RwLock::new(()));
    // The sender stops only after the gateway is closed and in-flight
    // events are finished, so their replies are flushed too.
    let (stop_sender, sender_stopping) = watch::channel(false);
    let sender = tokio::spawn(crate::outbox::run_sender(
        desk.outbox_queue(),
        deliver,
        config.sender_settings(),
        clock.clone(),
        sender_stopping,
    ));
    let gateway = Gateway {
        desk,
        clock,
        config,
        token,
        in_flight: in_flight.clone(),
    };
    let result = gateway.run_while_leader(&mut shutdown).await;
    let _all_finished = in_flight.write().await;
    let _ = stop_sender.send(true);
    let _ = sender.await;
    result
}

/// What the gateway client is built from, each time this instance leads.
struct Gateway {
    desk: Desk,
    clock: Arc<dyn Clock>,
    config: Arc<DiscordConfig>,
    token: String,
    in_flight: Arc<tokio::sync::RwLock<()>>,
}

/// Why a term holding the gateway ended.
enum Term {
    Shutdown,
    Lost,
    Fatal(DiscordError),
}

impl Gateway {
    /// Waits for the role, holds the gateway while the role is this
    /// instance's, and asks again when it is lost.
    async fn run_while_leader(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), DiscordError> {
        loop {
            let Some(leadership) = self.wait_for_role(shutdown).await else {
                return Ok(());
            };
            match self.lead(leadership, shutdown).await? {
                Term::Shutdown => return Ok(()),
                Term::Lost => continue,
                Term::Fatal(e) => return Err(e),
            }
        }
    }

    /// The role, once this instance has it; `None` when told to stop first.
    async fn wait_for_role(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<crate::conversation::store::Leadership> {
        let mut waited = false;
        loop {
            if *shutdown.borrow() {
                return None;
            }
            match self.desk.try_lead(GATEWAY_ROLE).await {
                Ok(Some(leadership)) => {
                    if waited {
                        tracing::info!("Discord: this instance now holds the gateway");
                    }
                    return Some(leadership);
                }
                Ok(None) if !waited => {
                    tracing::info!("Discord: another instance holds the gateway; this one sends over HTTP and takes the gateway over if that instance stops");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Discord: cannot ask the database which instance holds the gateway; asking again")
                }
            }
            waited = true;
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return None,
                _ = tokio::time::sleep(LEADER_RETRY) => {}
            }
        }
    }

    /// Holds the gateway until shutdown, a fatal close, or the role lost.
    async fn lead(
        &self,
        mut leadership: crate::conversation::store::Leadership,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Term, DiscordError> {
        let handler = handler::Handler::new(
            self.desk.clone(),
            self.clock.clone(),
            self.config.clone(),
            self.in_flight.clone(),
        );
        let mut client = serenity::client::ClientBuilder::new_with_http(
            http(&self.config, &self.token),
            intents(),
        )
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::from_serenity(e, &self.config))?;
        let shard_manager = client.shard_manager.clone();
        let mut gateway = tokio::spawn(async move { client.start().await });
        let term = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => Term::Shutdown,
            _ = leadership.lost() => Term::Lost,
            ended = &mut gateway => Term::Fatal(match ended {
                Ok(Err(e)) => DiscordError::from_serenity(e, &self.config),
                Ok(Ok(())) => DiscordError::Gateway("the client returned without being asked to stop".into()),
                Err(e) => DiscordError::Gateway(e.to_string()),
            }),
        };
        match &term {
            Term::Shutdown => tracing::info!("Discord: shutting down the gateway"),
            Term::Lost => tracing::warn!(
                "Discord: the gateway role may have gone to another instance (its database connection failed); closing the gateway and asking again"
            ),
            Term::Fatal(e) => {
                tracing::error!(error = %e, "Discord: the gateway stopped; shutting the channel down")
            }
        }
        if matches!(term, Term::Fatal(_)) {
            // The shard runner is gone already: a clean shutdown would wait
            // out serenity's timeout for it. Stop the rest in the background.
            tokio::spawn(async move { shard_manager.shutdown_all().await });
        } else {
            shard_manager.shutdown_all().await;
            let _ = gateway.await;
        }
        // Given up only once the gateway is closed.
        drop(leadership);
        Ok(term)
    }
}
