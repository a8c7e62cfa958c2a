//! Smoke test of the fake Discord (`tests/support/fake_discord.rs`): the real
//! serenity 0.12 client connects to it over loopback (REST through
//! `HttpBuilder::proxy` with the ratelimiter disabled, gateway over `ws://`),
//! receives a direct message, sends a message with a button, receives a
//! component and a guild slash-command interaction built by the fake's
//! payload builders (which proves they carry every field serenity requires),
//! answers them through the interaction callback and webhook routes, opens a
//! DM channel and a private thread, and sees a real 429: with the ratelimiter
//! disabled serenity does not retry, it returns
//! `Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse { status_code: 429, .. }))`
//! (with `error.code == -1`, because Discord's per-route 429 body has no
//! `code`), so a caller has to retry by itself.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use serenity::all::{
    ButtonKind, ChannelId, ChannelType, Client, ClientBuilder, Command, CommandDataOptionValue,
    ComponentInteractionDataKind, Context, CreateAllowedMentions, CreateButton, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, CreateMessage, CreateThread, EditInteractionResponse,
    EventHandler, GatewayIntents, Http, HttpBuilder, HttpError, Interaction, Message, Ready,
    RoleId, ShardManager, UserId,
};
use serenity::async_trait;
use support::fake_discord::{self as fake, FakeDiscord};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

enum Got {
    Ready(Box<Ready>),
    Message(Box<Message>),
    Interaction(Box<Interaction>),
}

struct Forward(mpsc::UnboundedSender<Got>);

#[async_trait]
impl EventHandler for Forward {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let _ = self.0.send(Got::Ready(Box::new(ready)));
    }
    async fn message(&self, _ctx: Context, msg: Message) {
        let _ = self.0.send(Got::Message(Box::new(msg)));
    }
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let _ = self.0.send(Got::Interaction(Box::new(interaction)));
    }
}

/// Receives events until `pick` accepts one (10 s limit).
async fn next<T>(
    rx: &mut mpsc::UnboundedReceiver<Got>,
    what: &str,
    pick: impl Fn(Got) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let got = rx.recv().await.expect("event handler channel open");
            if let Some(found) = pick(got) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("serenity did not deliver {what}"))
}

fn intents() -> GatewayIntents {
    GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
        | GatewayIntents::GUILDS
}

/// A running serenity client connected to the fake.
struct Running {
    http: Arc<Http>,
    shard_manager: Arc<ShardManager>,
    task: JoinHandle<serenity::Result<()>>,
    rx: mpsc::UnboundedReceiver<Got>,
}

/// Builds the real client against the fake and starts it (not yet awaiting
/// READY): REST through the fake, gateway URL from `GET /gateway`.
async fn start_client(fake: &FakeDiscord) -> Running {
    let http = HttpBuilder::new("fake-token")
        .proxy(fake.proxy_url())
        .ratelimiter_disabled(true)
        .build();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut client: Client = ClientBuilder::new_with_http(http, intents())
        .event_handler(Forward(tx))
        .await
        .expect("client builds");
    let http = client.http.clone();
    let shard_manager = client.shard_manager.clone();
    let task = tokio::spawn(async move { client.start().await });
    Running {
        http,
        shard_manager,
        task,
        rx,
    }
}

impl Running {
    async fn stop(self) {
        self.shard_manager.shutdown_all().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("client stops");
    }
}

#[tokio::test]
async fn real_serenity_client_talks_to_the_fake() {
    let fake = FakeDiscord::start().await;
    let mut client = start_client(&fake).await;
    let http = client.http.clone();
    let rx = &mut client.rx;

    fake.wait_ready().await;
    let ready = next(rx, "READY", |g| match g {
        Got::Ready(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(ready.user.id.get(), FakeDiscord::BOT_ID);
    assert_eq!(ready.application.id.get(), FakeDiscord::APP_ID);
    let identify = &fake.client_frames(2)[0]["d"];
    assert_eq!(identify["intents"], json!(intents().bits()));

    // A user's direct message reaches the handler with its content.
    let alice = fake.next_id();
    let dm_channel = fake.next_id();
    let dm_id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::dm_message_create(
            dm_id,
            dm_channel,
            fake::user(alice, "alice"),
            "電話が来ない",
        ),
    )
    .await;
    let dm = next(rx, "the DM", |g| match g {
        Got::Message(m) if m.id.get() == dm_id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(dm.content, "電話が来ない");
    assert_eq!(dm.author.id.get(), alice);
    assert!(dm.guild_id.is_none());

    // Opening a DM with that user gives the channel the DM came in.
    let opened = UserId::new(alice)
        .create_dm_channel(&http)
        .await
        .expect("create DM");
    assert_eq!(opened.id.get(), dm_channel);

    // Sending a message with a button: recorded body, echoed on the gateway.
    let channel = ChannelId::new(dm_channel);
    channel.broadcast_typing(&http).await.expect("typing");
    let sent = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("x")
                .button(CreateButton::new("c:yes").label("Yes"))
                .allowed_mentions(CreateAllowedMentions::new()),
        )
        .await
        .expect("send message");
    assert_eq!(sent.author.id.get(), FakeDiscord::BOT_ID);
    assert_eq!(sent.components.len(), 1);
    let post = fake
        .wait_for("POST message", |r| {
            r.is("POST", &format!("/channels/{dm_channel}/messages")) && r.accepted()
        })
        .await;
    assert_eq!(post.body["content"], "x");
    assert_eq!(post.body["components"][0]["type"], 1);
    assert_eq!(
        post.body["components"][0]["components"][0]["custom_id"],
        "c:yes"
    );
    assert_eq!(post.body["components"][0]["components"][0]["label"], "Yes");
    assert_eq!(post.body["components"][0]["components"][0]["style"], 1);
    assert_eq!(
        post.body["allowed_mentions"],
        json!({ "parse": [], "users": [], "roles": [] })
    );
    let echo = next(rx, "the echo of the bot's message", |g| match g {
        Got::Message(m) if m.id == sent.id => Some(m),
        _ => None,
    })
    .await;
    assert!(echo.author.bot, "Discord echoes the bot's own messages");

    // A button press on that message.
    let on_message = fake.message(sent.id.get()).expect("fake kept the message");
    let press_id = fake.next_id();
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::component_interaction(
            press_id,
            "press-token",
            dm_channel,
            None,
            fake::user(alice, "alice"),
            &[],
            "ja",
            on_message,
            "c:yes",
            None,
        ),
    )
    .await;
    let press = next(rx, "the component interaction", |g| match g {
        Got::Interaction(i) => i.message_component(),
        _ => None,
    })
    .await;
    assert_eq!(press.data.custom_id, "c:yes");
    assert!(matches!(
        press.data.kind,
        ComponentInteractionDataKind::Button
    ));
    assert_eq!(press.message.id, sent.id);
    assert_eq!(press.user.id.get(), alice);
    assert_eq!(press.locale, "ja");
    press
        .create_response(
            &http,
            CreateInteractionResponse::UpdateMessage(
                CreateInteractionResponseMessage::new()
                    .content("done")
                    .components(vec![]),
            ),
        )
        .await
        .expect("update message");
    let callback = fake
        .wait_for("component callback", |r| {
            r.is(
                "POST",
                &format!("/interactions/{press_id}/press-token/callback"),
            )
        })
        .await;
    assert_eq!(callback.status, 204);
    assert_eq!(callback.body["type"], 7);
    assert_eq!(callback.body["data"]["content"], "done");
    assert_eq!(fake.message(sent.id.get()).unwrap()["content"], "done");
    // Discord refuses a second acknowledgement.
    let again = press
        .create_response(&http, CreateInteractionResponse::Acknowledge)
        .await
        .expect_err("second acknowledgement");
    assert!(
        again.to_string().contains("already been acknowledged"),
        "{again}"
    );

    // A select menu choice is delivered with its values.
    let select_id = fake.next_id();
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::component_interaction(
            select_id,
            "select-token",
            dm_channel,
            None,
            fake::user(alice, "alice"),
            &[],
            "en-US",
            fake.message(sent.id.get()).unwrap(),
            "c:pick",
            Some(vec!["b".into()]),
        ),
    )
    .await;
    let select = next(rx, "the select interaction", |g| match g {
        Got::Interaction(i) => i.message_component(),
        _ => None,
    })
    .await;
    assert!(matches!(
        &select.data.kind,
        ComponentInteractionDataKind::StringSelect { values } if values == &["b".to_string()]
    ));

    // A slash command in a guild, by a member with a role.
    let commands = Command::set_global_commands(
        &http,
        vec![CreateCommand::new("desk")
            .description("Open the help desk")
            .add_option(CreateCommandOption::new(
                serenity::all::CommandOptionType::String,
                "topic",
                "Topic",
            ))],
    )
    .await
    .expect("register commands");
    let guild = fake.next_id();
    let guild_channel = fake.next_id();
    let role = fake.next_id();
    let bob = fake.next_id();
    let command_id = fake.next_id();
    fake.dispatch(
        "INTERACTION_CREATE",
        fake::command_interaction(
            command_id,
            "command-token",
            guild_channel,
            Some(guild),
            fake::user(bob, "bob"),
            &[role],
            "en-US",
            "desk",
            json!([{ "name": "topic", "type": 3, "value": "mfa" }]),
        ),
    )
    .await;
    let command = next(rx, "the command interaction", |g| match g {
        Got::Interaction(i) => i.command(),
        _ => None,
    })
    .await;
    assert_eq!(command.data.name, "desk");
    assert_eq!(
        command.data.id, commands[0].id,
        "the registered command's id"
    );
    assert_eq!(command.guild_id.map(|g| g.get()), Some(guild));
    assert_eq!(command.user.id.get(), bob);
    let member = command.member.as_ref().expect("member");
    assert_eq!(member.roles, vec![RoleId::new(role)]);
    assert_eq!(
        command.data.options[0].value,
        CommandDataOptionValue::String("mfa".into())
    );
    command
        .create_response(
            &http,
            CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            ),
        )
        .await
        .expect("defer");
    let edited = command
        .edit_response(
            &http,
            EditInteractionResponse::new().content("受け付けました"),
        )
        .await
        .expect("edit original");
    assert_eq!(edited.content, "受け付けました");
    let followup = command
        .create_followup(
            &http,
            CreateInteractionResponseFollowup::new()
                .content("follow-up")
                .button(CreateButton::new_link("https://example.com").label("Docs")),
        )
        .await
        .expect("follow-up");
    assert_ne!(followup.id, edited.id);
    assert!(matches!(
        &followup.components[0].components[0],
        serenity::all::ActionRowComponent::Button(b)
            if matches!(&b.data, ButtonKind::Link { url } if url == "https://example.com")
    ));

    // A guild message from bob, then a private thread for him.
    let guild_message = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::guild_message_create(
            guild_message,
            guild_channel,
            guild,
            fake::user(bob, "bob"),
            &[role],
            "help",
        ),
    )
    .await;
    let got = next(rx, "the guild message", |g| match g {
        Got::Message(m) if m.id.get() == guild_message => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.guild_id.map(|g| g.get()), Some(guild));
    assert_eq!(got.member.as_ref().unwrap().roles, vec![RoleId::new(role)]);
    let thread = ChannelId::new(guild_channel)
        .create_thread(
            &http,
            CreateThread::new("相談 bob").kind(ChannelType::PrivateThread),
        )
        .await
        .expect("thread");
    assert_eq!(thread.kind, ChannelType::PrivateThread);
    assert_eq!(thread.parent_id.map(|p| p.get()), Some(guild_channel));
    assert_eq!(thread.guild_id.get(), guild);
    thread
        .id
        .add_thread_member(&http, UserId::new(bob))
        .await
        .expect("add thread member");

    // A 429: serenity (ratelimiter disabled) returns it as an error.
    let messages = format!("/channels/{dm_channel}/messages");
    fake.rate_limit_next("POST", &messages, 0.25);
    let limited = channel
        .send_message(&http, CreateMessage::new().content("retry me"))
        .await
        .expect_err("429");
    match &limited {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            assert_eq!(response.status_code.as_u16(), 429);
        }
        other => panic!("unexpected error for a 429: {other:?}"),
    }
    eprintln!("serenity's error for a 429: {limited:?}");
    channel
        .send_message(&http, CreateMessage::new().content("retry me"))
        .await
        .expect("second attempt succeeds");
    let attempts = fake
        .wait_for_count("two sends of 'retry me'", 2, |r| {
            r.is("POST", &messages) && r.body["content"] == "retry me"
        })
        .await;
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );

    // An empty message is refused like Discord does.
    let empty = channel
        .send_message(&http, CreateMessage::new())
        .await
        .expect_err("empty message");
    assert!(
        empty.to_string().contains("Cannot send an empty message"),
        "{empty}"
    );

    // Discord's Invalid Form Body, which serenity parses with its path.
    // (serenity itself refuses content over 2000 characters before sending.)
    let duplicated = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("dup")
                .button(CreateButton::new("same").label("A"))
                .button(CreateButton::new("same").label("B")),
        )
        .await
        .expect_err("duplicated custom_id");
    match &duplicated {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            assert_eq!(response.error.code, 50035);
            assert_eq!(
                response.error.errors[0].path,
                "components.0.components.1.custom_id"
            );
            assert_eq!(
                response.error.errors[0].code,
                "COMPONENT_CUSTOM_ID_DUPLICATED"
            );
        }
        other => panic!("unexpected error: {other:?}"),
    }

    client.stop().await;

    let routes: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {} {}", r.status, r.method, r.path))
        .collect();
    eprintln!("routes serenity requested:\n{}", routes.join("\n"));
    let unknown: Vec<&String> = routes.iter().filter(|r| r.starts_with("404")).collect();
    assert!(unknown.is_empty(), "unknown routes: {unknown:?}");
}

#[tokio::test]
async fn dropped_gateway_resumes_and_a_restarted_client_identifies_again() {
    let fake = FakeDiscord::start().await;
    let alice = fake.next_id();
    let dm_channel = fake.next_id();

    let mut first = start_client(&fake).await;
    fake.wait_identified(1).await;

    // Discord drops the connection: serenity reconnects and resumes.
    fake.drop_gateway().await;
    fake.wait_ready().await;
    assert_eq!(fake.client_frames(6).len(), 1, "one RESUME");
    assert_eq!(fake.client_frames(2).len(), 1, "no second IDENTIFY");
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::dm_message_create(id, dm_channel, fake::user(alice, "alice"), "after resume"),
    )
    .await;
    let got = next(&mut first.rx, "a DM after the resume", |g| match g {
        Got::Message(m) if m.id.get() == id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.content, "after resume");
    first.stop().await;

    // A new client instance (bot restart) identifies afresh.
    let mut second = start_client(&fake).await;
    fake.wait_identified(2).await;
    assert_eq!(fake.client_frames(2).len(), 2, "second IDENTIFY");
    let id = fake.next_id();
    fake.dispatch(
        "MESSAGE_CREATE",
        fake::dm_message_create(id, dm_channel, fake::user(alice, "alice"), "after restart"),
    )
    .await;
    let got = next(&mut second.rx, "a DM after the restart", |g| match g {
        Got::Message(m) if m.id.get() == id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.content, "after restart");
    second.stop().await;
}
