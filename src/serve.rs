//! `madoguchi serve`: runs every configured channel and the timer loop until
//! shutdown, on one desk and one store.
//!
//! Like mini-redis, the command only parses arguments and calls [`run`] with
//! a shutdown future, so tests start the real service with their own store,
//! clock and shutdown. Shutdown is graceful: channels stop taking events,
//! in-flight ones finish, the outbox is flushed, the gateway is closed.
//!
//! **Where agents work** is set once for the desk (`desk.agents`): each
//! platform has one deliverer (Teams, Discord), built here, and a
//! channel whose conversations' tickets live on another platform has its
//! sender's deliverer wrapped ([`WithAgents`]) so the ticket rows go to
//! that platform's deliverer: the person's side and the agents' side
//! share the one outbox and the one generic sender of the person's
//! channel.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use async_trait::async_trait;

use crate::channels::discord::{self, deliver::DiscordDeliver};
use crate::channels::teams::deliver::TeamsDeliver;
use crate::clock::Clock;
use crate::config::{AgentsSide, Config};
use crate::desk::Desk;
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow};

/// Which channels run, and why the others do not: said once at start-up.
pub fn channel_plan(
    config: &Config,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<(String, Result<(), String>)> {
    vec![
        ("discord".to_string(), config.discord.token(env).map(|_| ())),
        (
            "teams".to_string(),
            config.teams.credential(env).map(|_| ()),
        ),
        (
            "web".to_string(),
            if config.web.enabled {
                Ok(())
            } else {
                Err("web.enabled is false".to_string())
            },
        ),
    ]
}

/// Runs the service until `shutdown` completes.
pub async fn run(
    config: Config,
    desk: Desk,
    clock: Arc<dyn Clock>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with_listener(config, desk, clock, env, None, shutdown).await
}

/// [`run`], with the HTTP listener given by the caller (tests bind
/// `127.0.0.1:0`); `None` binds `teams.listen`.
pub async fn run_with_listener(
    config: Config,
    desk: Desk,
    clock: Arc<dyn Clock>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    http_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stop, stopping) = watch::channel(false);
    // A channel that stops by itself (Discord refused the token or the
    // intents) ends `serve` with its error, so the exit is non-zero.
    let (fatal_tx, mut fatal) = tokio::sync::mpsc::unbounded_channel::<anyhow::Error>();
    let mut tasks = Vec::new();
    for (channel, plan) in channel_plan(&config, env) {
        match plan {
            Ok(()) => tracing::info!(channel, "channel on"),
            Err(why) => tracing::warn!(channel, reason = %why, "channel off"),
        }
    }
    tasks.push(tokio::spawn(timer_loop(
        desk.clone(),
        clock.clone(),
        stopping.clone(),
    )));
    let teams = match config.teams.credential(env) {
        Ok(credential) => Some(Arc::new(crate::channels::teams::TeamsContext::new(
            desk.clone(),
            clock.clone(),
            config.teams.clone(),
            credential,
        ))),
        Err(_) => None,
    };
    let discord_token = config.discord.token(env).ok();
    // One deliverer per platform, shared by every sender that needs it:
    // its own channel's, and the others' when agents work there.
    let agents = AgentsSides {
        teams: teams
            .clone()
            .map(|context| Arc::new(TeamsDeliver::new(context)) as Arc<dyn Deliver>),
        discord: discord_token.as_ref().map(|token| {
            Arc::new(DiscordDeliver::new(
                desk.clone(),
                config.discord.clone(),
                token,
            )) as Arc<dyn Deliver>
        }),
    };
    if let Some(token) = discord_token {
        if config.discord.staff_channel_id == 0 || config.discord.agent_role_id == 0 {
            tracing::warn!("Discord: discord.staff_channel_id or discord.agent_role_id is not set; handoffs cannot reach agents");
        }
        let deliver = agents.route(&config, discord::CHANNEL, agents.discord.clone())?;
        let desk = desk.clone();
        let clock = clock.clone();
        let discord_config = config.discord.clone();
        let stopping = stopping.clone();
        let fatal_tx = fatal_tx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) =
                discord::run(desk, clock, discord_config, token, deliver, stopping).await
            {
                let _ = fatal_tx.send(e.into());
            }
        }));
    }
    // The HTTP server runs whenever `serve` runs: `/healthz` always,
    // `/api/messages` when Teams is on, `/chat` when the web chat is.
    let web = if config.web.enabled {
        Some(Arc::new(crate::channels::web::WebContext::new(
            desk.clone(),
            clock.clone(),
            config.web.clone(),
            env,
        )?))
    } else {
        None
    };
    // Several instances on one PostgreSQL: a reply another instance
    // delivered reaches the sockets open here at once.
    if let Some(web) = &web {
        match desk.listen(crate::channels::web::WEB_TOPIC).await {
            Ok(Some(heard)) => {
                tasks.push(tokio::spawn(relay_announcements(
                    web.clone(),
                    heard,
                    stopping.clone(),
                )));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "web: cannot listen to the other instances; pages open here show their replies from there when they reconnect")
            }
        }
    }
    // With Teams on, everything is served on `teams.listen` (the Azure
    // Bot's endpoint); otherwise the web chat's `web.listen` (loopback by
    // default), so `serve` with no config serves the chat on
    // http://127.0.0.1:3978/chat only to this machine.
    let (address, key) = if teams.is_some() || web.is_none() {
        (config.teams.listen.clone(), "teams.listen")
    } else {
        (config.web.listen.clone(), "web.listen")
    };
    // Emulator mode takes activities without authentication: loopback only,
    // checked before binding when the address says, and on the bound socket.
    let emulator = teams.as_ref().is_some_and(|t| t.config.emulator);
    let requested = address.parse::<std::net::SocketAddr>();
    if let (true, true, Ok(requested)) = (emulator, http_listener.is_none(), requested) {
        crate::channels::teams::emulator_listener_check(requested).map_err(anyhow::Error::msg)?;
    }
    let listener = match http_listener {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| anyhow::anyhow!("{key} {address}: cannot listen: {e}"))?,
    };
    let local = listener.local_addr()?;
    if emulator {
        crate::channels::teams::emulator_listener_check(local).map_err(anyhow::Error::msg)?;
        tracing::warn!(address = %local, "Teams: EMULATOR MODE (teams.emulator = true): inbound activities are NOT authenticated, replies carry NO token, Teams rate limits are NOT applied; for local tests and benchmarks only, never in production");
    }
    tracing::info!(address = %local, teams = teams.is_some(), web = web.is_some(), "HTTP listening (/healthz, /api/messages, /chat)");
    if web.is_some() {
        tracing::info!("web chat: http://{local}/chat (embed: /chat/widget.js)");
    }
    if let Some(context) = &teams {
        teams_start_up_checks(&context.config);
    }
    // The HTTP server drains in-flight requests first; only then is the
    // Teams sender told to flush and stop, so their replies go out too.
    let (stop_sender, sender_stopping) = watch::channel(false);
    let sender = match &teams {
        Some(context) => Some(tokio::spawn(crate::outbox::run_sender(
            desk.outbox_queue(),
            agents.route(
                &config,
                crate::channels::teams::CHANNEL,
                agents.teams.clone(),
            )?,
            context.config.sender_settings(),
            clock.clone(),
            sender_stopping,
        ))),
        None => None,
    };
    let web_sender = match &web {
        Some(context) => Some(tokio::spawn(crate::outbox::run_sender(
            desk.outbox_queue(),
            agents.route(
                &config,
                crate::channels::web::CHANNEL,
                Some(Arc::new(crate::channels::web::deliver::WebDeliver {
                    ctx: context.clone(),
                })),
            )?,
            crate::outbox::SenderSettings::default(),
            clock.clone(),
            stop_sender.subscribe(),
        ))),
        None => None,
    };
    let app = crate::server::app(crate::server::AppState { teams, web })
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Every request head within `web.handshake_timeout_seconds` (slow or
    // idle connections are closed; WebSockets are not).
    let listener = crate::channels::web::head_timeout::listener(
        listener,
        std::time::Duration::from_secs(config.web.handshake_timeout_seconds.max(1)),
    );
    let mut stop_http = stopping.clone();
    tasks.push(tokio::spawn(async move {
        let graceful = async move {
            let _ = stop_http.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped with an error");
        }
        let _ = stop_sender.send(true);
        if let Some(sender) = sender {
            let _ = sender.await;
        }
        if let Some(sender) = web_sender {
            let _ = sender.await;
        }
    }));
    drop(fatal_tx);
    let failed = tokio::select! {
        _ = shutdown => None,
        Some(error) = fatal.recv() => Some(error),
    };
    if let Some(error) = &failed {
        tracing::error!(error = %error, "a channel stopped; shutting down");
    }
    tracing::info!("shutting down: finishing in-flight work and flushing the outbox");
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("stopped");
    failed.map_or(Ok(()), Err)
}

/// Tells the sockets open here about sessions other instances delivered
/// rows to (or all of them, when announcements may have been missed),
/// until `serve` stops.
async fn relay_announcements(
    web: Arc<crate::channels::web::WebContext>,
    mut heard: tokio::sync::mpsc::UnboundedReceiver<crate::conversation::store::Heard>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    use crate::conversation::store::Heard;
    loop {
        tokio::select! {
            next = heard.recv() => match next {
                Some(Heard::Said(session)) => web.hub.catch_up(&session),
                Some(Heard::MayHaveMissed) => web.hub.catch_up_all(),
                None => return,
            },
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// The agents' sides that are on: each platform's one deliverer.
struct AgentsSides {
    teams: Option<Arc<dyn Deliver>>,
    discord: Option<Arc<dyn Deliver>>,
}

impl AgentsSides {
    /// The deliverer of `channel`'s sender: `own` for the person's rows,
    /// and the agents' side of `desk.agents` for the tickets' rows when
    /// that is another channel. Said once at start-up.
    fn route(
        &self,
        config: &Config,
        channel: &str,
        own: Option<Arc<dyn Deliver>>,
    ) -> anyhow::Result<Arc<dyn Deliver>> {
        let side = config.agents_for(channel, |side| match side {
            AgentsSide::Teams => self.teams.is_some(),
            AgentsSide::Discord => self.discord.is_some(),
        })?;
        let agents = match side {
            Some(AgentsSide::Teams) => self.teams.clone(),
            Some(AgentsSide::Discord) => self.discord.clone(),
            None => None,
        };
        match (side, &agents) {
            (Some(side), Some(_)) => {
                tracing::info!(
                    channel,
                    agents = side.as_str(),
                    "handoffs go to agents there"
                )
            }
            (Some(side), None) => tracing::warn!(
                channel,
                agents = side.as_str(),
                "handoffs cannot reach agents: that channel is off (its token or secret is not set)"
            ),
            (None, _) => tracing::warn!(
                channel,
                "handoffs cannot reach agents: neither Teams nor Discord is on (see desk.agents)"
            ),
        }
        if !config.web.agents.trim().is_empty() && channel == crate::channels::web::CHANNEL {
            tracing::warn!(
                "web.agents is deprecated: set desk.agents instead (it applies to every channel)"
            );
        }
        let own = own.ok_or_else(|| anyhow::anyhow!("{channel}: no deliverer"))?;
        if side.is_some_and(|side| side.as_str() == channel) {
            return Ok(own);
        }
        Ok(Arc::new(WithAgents { own, agents, side }))
    }
}

/// A channel's rows with its tickets' rows on another channel's agents'
/// side: `Replies` to the person and `AgentsNotice` (an answer in the
/// channel's own agents' thread) by the channel itself; `Handoff`,
/// `Relay`, `AgentNote` and `Transcript` by the agents' deliverer, which
/// works from the ticket alone. The one generic sender runs it like any
/// deliverer, so order, retries and marking are the same on both sides.
struct WithAgents {
    own: Arc<dyn Deliver>,
    agents: Option<Arc<dyn Deliver>>,
    side: Option<AgentsSide>,
}

#[async_trait]
impl Deliver for WithAgents {
    fn channel(&self) -> &str {
        self.own.channel()
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        self.deliver_with_receipt(item).await.map(|_| ())
    }

    async fn deliver_with_receipt(
        &self,
        item: &OutboxItem,
    ) -> Result<Option<String>, DeliveryError> {
        match (&item.row, &self.agents) {
            (OutboxRow::Replies { .. } | OutboxRow::AgentsNotice { .. }, _) => {
                self.own.deliver_with_receipt(item).await
            }
            (_, Some(agents)) => agents.deliver_with_receipt(item).await,
            (row, None) => Err(DeliveryError::Permanent(format!(
                "{}: no agents' side ({} row not delivered): {}",
                self.own.channel(),
                row.kind(),
                match self.side {
                    Some(side) => format!(
                        "desk.agents is \"{}\" but that channel is off",
                        side.as_str()
                    ),
                    None => "set desk.agents to \"teams\" or \"discord\" with that channel on"
                        .to_string(),
                }
            ))),
        }
    }
}

/// What can be checked about Teams before the first message, said once at
/// start-up (the rest is found on use and shown on `/healthz`).
fn teams_start_up_checks(config: &crate::channels::teams::TeamsConfig) {
    tracing::info!(
        app_type = config.app_type.as_str(),
        token_url = %config.token_endpoint(),
        mentions_required = !config.rsc_channel_messages,
        "Teams: on"
    );
    let agents = config.agents_conversation_id.trim();
    if agents.is_empty() || config.agents_service_url.trim().is_empty() {
        tracing::warn!("Teams: teams.agents_conversation_id or teams.agents_service_url is not set; handoffs cannot reach agents");
    } else if agents.contains(";messageid=") {
        tracing::warn!("Teams: teams.agents_conversation_id names a reply thread (it contains ;messageid=); set the channel's own id (19:…@thread.tacv2)");
    } else {
        // The Bot Framework gives bots no way to ask whether a channel is
        // private, and bots cannot post in private channels: said here,
        // checked at the first handoff card (then on /healthz).
        tracing::info!(channel = %agents, "Teams: handoff cards go to this channel; it must be a standard channel of a team where the app is installed (not a private channel)");
    }
    if config.agents.is_empty() {
        tracing::warn!("Teams: teams.agents is empty; nobody may claim a handoff");
    }
}

/// Fires due timers (case A's reminders) at their time; on start it fires
/// everything that came due while the service was down. On a store other
/// processes share it also looks every [`Desk::shared_poll_interval`]: a
/// timer another instance set (and did not fire, because it died) wakes
/// nobody here otherwise.
pub async fn timer_loop(desk: Desk, clock: Arc<dyn Clock>, mut stopping: watch::Receiver<bool>) {
    let mut committed = desk.committed();
    let poll = desk.shared_poll_interval();
    loop {
        if *stopping.borrow() {
            return;
        }
        match desk.fire_due_timers(None, clock.now()).await {
            Ok(fired) if !fired.is_empty() => tracing::info!(count = fired.len(), "timers fired"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "timers could not be fired"),
        }
        let next = match desk.next_timer_due(None).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the next timer; looking again in a minute");
                Some(clock.now() + chrono::Duration::minutes(1))
            }
        };
        let mut wait = next
            .map(|due| (due - clock.now()).to_std().unwrap_or_default())
            .unwrap_or(std::time::Duration::from_secs(3600));
        if let Some(poll) = poll {
            wait = wait.min(poll);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = committed.changed() => {}
            _ = stopping.changed() => {}
        }
    }
}
