//! The storage trait every backend implements, and the records it stores.
//!
//! One call, [`Store::commit`], writes everything one input produced (new
//! state, transcript lines, outbox rows, timers, handoff ticket) in one
//! transaction, after checking that the input was not handled before and
//! that nobody else changed the conversation in between (optimistic version).
//! The trait is async and object-safe so the desk holds an
//! `Arc<dyn Store>` chosen at run time: memory for unit tests, SQLite by
//! default, PostgreSQL (`postgres://…`) for a shared database.
//!
//! The store knows nothing of flows: the engine's state is kept as the JSON
//! the desk gives it, and outbox rows as the JSON of the typed rows the desk
//! writes ([`crate::outbox::OutboxRow`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRecord {
    pub id: String,
    /// `console`, `discord`, `teams`.
    pub channel: String,
    /// The person's id on that channel.
    pub user_key: String,
    pub locale: String,
    /// The engine's state, serialised ([`crate::flow::state::State`]).
    pub state: Value,
    /// Incremented by every commit; a commit names the version it read.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the person is reached on the channel (set on creation).
    pub address: Option<String>,
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Person,
    Bot,
    Agent,
    System,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Person => "person",
            Direction::Bot => "bot",
            Direction::Agent => "agent",
            Direction::System => "system",
        }
    }

    pub fn parse(text: &str) -> Direction {
        match text {
            "person" => Direction::Person,
            "bot" => Direction::Bot,
            "agent" => Direction::Agent,
            _ => Direction::System,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub at: DateTime<Utc>,
    pub direction: Direction,
    /// Agent name for agent lines.
    pub author: Option<String>,
    /// The Fluent message id for bot lines.
    pub message_id: Option<String>,
    pub text: String,
}

/// A stored outgoing message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub id: i64,
    pub conversation_id: String,
    pub channel: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
}

/// A durable timer (case A's reminder).
#[derive(Debug, Clone, PartialEq)]
pub struct TimerRow {
    pub id: String,
    pub conversation_id: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub payload: Value,
}

/// A handoff ticket with the summary prepared for agents.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffRecord {
    pub ticket: String,
    pub conversation_id: String,
    pub reason: String,
    pub summary: String,
    /// `queued`, `claimed`, `released`, `cancelled`, `closed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// Where agents discuss the ticket (a staff thread), once known.
    pub agent_address: Option<String>,
}

/// Everything one input produced, written atomically.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The conversation with its new state (its `version` is ignored).
    pub conversation: ConversationRecord,
    /// The version the state was read at; `None` creates the conversation.
    pub expected_version: Option<i64>,
    /// Platform message id / timer id; a key seen before makes the commit a
    /// [`CommitOutcome::Duplicate`] and writes nothing.
    pub inbound_key: Option<String>,
    pub transcript: Vec<TranscriptEntry>,
    /// (channel, payload) of outgoing messages, in order.
    pub outbox: Vec<(String, Value)>,
    /// Timer kinds of this conversation to cancel (before adding new ones).
    pub cancel_timer_kinds: Vec<String>,
    pub new_timers: Vec<TimerRow>,
    /// A timer this input consumed.
    pub fired_timer: Option<String>,
    /// How to reach the person's address later (a Teams conversation
    /// reference), saved with the input that brought it.
    pub reference: Option<ChannelReference>,
    pub open_handoff: Option<HandoffRecord>,
    /// (ticket, new status) of a handoff to update.
    pub handoff_status: Option<(String, String)>,
}

impl Commit {
    pub fn new(conversation: ConversationRecord, expected_version: Option<i64>) -> Commit {
        Commit {
            conversation,
            expected_version,
            inbound_key: None,
            transcript: Vec::new(),
            outbox: Vec::new(),
            cancel_timer_kinds: Vec::new(),
            new_timers: Vec::new(),
            fired_timer: None,
            reference: None,
            open_handoff: None,
            handoff_status: None,
        }
    }
}

/// What a listener hears ([`Store::listen`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Said(String),
    /// The connection was lost and made again: announcements may be gone.
    MayHaveMissed,
}

/// How a channel reaches an address proactively (opaque to the store).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelReference {
    pub channel: String,
    pub address: String,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// Written; the new version and the ids of the outbox rows.
    Committed { version: i64, outbox_ids: Vec<i64> },
    /// The inbound key was handled before: nothing written.
    Duplicate,
    /// The conversation changed since it was read: nothing written; reload
    /// and step again.
    Conflict,
}

/// A store failure. The database's own error is kept as the source, so the
/// operator's log shows the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}")]
    Database {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A database error while doing `context` ("loading a conversation").
    pub fn database(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Database {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A conversation held for one input against every process sharing the
/// store ([`Store::hold_conversation`]); released when dropped. Opaque:
/// PostgreSQL keeps a transaction holding an advisory lock in it, a store
/// only this process writes keeps nothing.
#[must_use = "the conversation is held only while the hold lives"]
pub struct ConversationHold {
    _held: Option<Box<dyn Send>>,
}

impl ConversationHold {
    /// Holds nothing (one process: the desk's own lock is enough).
    pub fn none() -> ConversationHold {
        ConversationHold { _held: None }
    }

    /// Holds whatever `held` keeps locked until it is dropped.
    pub fn new(held: impl Send + 'static) -> ConversationHold {
        ConversationHold {
            _held: Some(Box::new(held)),
        }
    }
}

impl std::fmt::Debug for ConversationHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self._held.is_some() {
            "ConversationHold(held)"
        } else {
            "ConversationHold(none)"
        })
    }
}

/// This process's turn as the one holder of a role among every process
/// sharing the store ([`Store::try_lead`]; the Discord gateway); given up
/// when dropped, and by itself when the process dies. Opaque: PostgreSQL
/// keeps the connection holding a session advisory lock in it, a store
/// only this process uses keeps nothing.
#[must_use = "the role is held only while the leadership lives"]
pub struct Leadership {
    /// Turns true (or closes) when the role may have gone to another
    /// process (the connection holding it failed); `None`: never.
    lost: Option<tokio::sync::watch::Receiver<bool>>,
    _held: Option<Box<dyn Send + Sync>>,
}

impl Leadership {
    /// Held for good (one process: nobody else could lead).
    pub fn always() -> Leadership {
        Leadership {
            lost: None,
            _held: None,
        }
    }

    /// Held while `held` lives, until `lost` turns true or its sender is
    /// dropped.
    pub fn new(
        held: impl Send + Sync + 'static,
        lost: tokio::sync::watch::Receiver<bool>,
    ) -> Leadership {
        Leadership {
            lost: Some(lost),
            _held: Some(Box::new(held)),
        }
    }

    /// Returns when the role may no longer be this process's (its holder
    /// must stop acting as leader); never for [`Leadership::always`].
    pub async fn lost(&mut self) {
        match &mut self.lost {
            Some(lost) => {
                let _ = lost.wait_for(|lost| *lost).await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self._held.is_some() {
            "Leadership(held)"
        } else {
            "Leadership(always)"
        })
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>>;

    /// The most recently updated conversation of a person on a channel.
    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>>;

    /// Every conversation of a person on a channel, most recently updated
    /// first (where else a person can be reached).
    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>>;

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome>;

    /// Timers due at `now`, not fired or cancelled, oldest first; only of
    /// one conversation when `conversation` is given.
    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>>;

    /// When the next pending timer is due.
    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>>;

    /// Conversations with unsent outbox rows on `channel`, the one waiting
    /// longest first.
    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>>;

    /// Unsent outbox rows of one conversation on `channel`, in id order.
    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;

    /// Adds one outbox row outside any input (a note to the agents' channel
    /// that belongs to no conversation yet); returns its id.
    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64>;

    /// [`Store::enqueue`] once per `key` of `conversation` (the inbound
    /// keys of commits, so a key seen by either is seen): `None` when the
    /// key was seen before and nothing was written. Both stores implement
    /// it atomically; the default (for test wrappers that do not need it)
    /// refuses rather than pretend.
    async fn enqueue_once(
        &self,
        _conversation: &str,
        _channel: &str,
        _key: &str,
        _payload: Value,
        _at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        Err(StoreError::Unavailable(
            "this store cannot write a note once per key (enqueue_once)".into(),
        ))
    }

    async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> StoreResult<()>;

    /// Every outbox row of `conversation` with an id above `after`, sent
    /// or not, in id order, at most `limit` (the web chat replays what a
    /// page has not shown yet from its cursor, the last row id it showed).
    /// The default (for stores that do not serve the web chat yet) refuses
    /// rather than pretend.
    async fn rows_after(
        &self,
        _conversation: &str,
        _after: i64,
        _limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        Err(StoreError::Unavailable(
            "this store cannot replay outbox rows (rows_after)".into(),
        ))
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>>;

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>>;

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>>;

    /// How many tickets are waiting to be claimed.
    async fn queue_length(&self) -> StoreResult<i64>;

    /// 1 for the oldest ticket still queued; counts queued tickets created
    /// no later than `ticket`.
    async fn queue_position(&self, ticket: &str) -> StoreResult<i64>;

    /// The conversation reached at `address` on `channel`, most recent first.
    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>>;

    /// Where the person of `conversation` is reached.
    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>>;

    /// The id of the conversation [`Store::find_by_address`] finds; a
    /// store that knows it without reading the record says so.
    async fn conversation_at(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        Ok(self
            .find_by_address(channel, address)
            .await?
            .map(|record| record.id))
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()>;

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>>;

    /// How to reach `address` on `channel` (saved by a commit).
    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>>;

    /// Why an outbox row was given up, if it was.
    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>>;

    /// Gives up on an outbox row (marks it done, with the reason).
    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()>;

    // ----- several processes on one store (issue 12) -------------------
    //
    // The defaults keep the behaviour of a store only this process writes
    // (memory, SQLite): the desk's own lock serialises a conversation, and
    // the sender's one worker per conversation is the outbox claim.

    /// Holds `conversation` for one input against every other process
    /// sharing the store, waiting in arrival order for a holder to finish
    /// (the desk takes it after its own per-conversation lock). A holder
    /// that dies releases it. Default: holds nothing.
    async fn hold_conversation(&self, _conversation: &str) -> StoreResult<ConversationHold> {
        Ok(ConversationHold::none())
    }

    /// How often a sender (and anything else waiting for work) should look
    /// for work that other processes left, since their commits wake nobody
    /// here. `None`: only this process writes the store.
    fn shared_poll_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Conversations with unsent rows on `channel` that `holder` may claim
    /// at `now` (none of their unsent rows is leased by another holder
    /// whose lease still runs), the one waiting longest first. Default:
    /// [`Store::pending_conversations`].
    async fn claimable_conversations(
        &self,
        channel: &str,
        _holder: &str,
        _now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        self.pending_conversations(channel, limit).await
    }

    /// Claims the first `limit` unsent rows of `conversation` on `channel`
    /// for `holder` until `lease_until`, in id order; empty when another
    /// holder's lease on any of its unsent rows still runs at `now` (rows
    /// of one conversation go out in order, so one holder at a time). A
    /// holder that dies stops renewing; its rows are claimable again when
    /// the lease ends. Default: [`Store::pending_outbox`].
    async fn claim_outbox(
        &self,
        channel: &str,
        conversation: &str,
        _holder: &str,
        _now: DateTime<Utc>,
        _lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.pending_outbox(channel, conversation, limit).await
    }

    /// Extends `holder`'s lease on the unsent rows of `conversation`.
    async fn renew_outbox_lease(
        &self,
        _channel: &str,
        _conversation: &str,
        _holder: &str,
        _lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// Ends `holder`'s lease on the unsent rows of `conversation` (a
    /// sender that stops working on them), so another may claim them now.
    async fn release_outbox_lease(
        &self,
        _channel: &str,
        _conversation: &str,
        _holder: &str,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// [`Store::mark_sent`] for one row, recording the platform's id(s) of
    /// what was posted when the channel gave them. Default: the id is not
    /// kept.
    async fn mark_sent_with_receipt(
        &self,
        id: i64,
        _platform_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.mark_sent(&[id], at).await
    }

    /// The platform's id(s) recorded for a sent row, if any.
    async fn platform_id(&self, _id: i64) -> StoreResult<Option<String>> {
        Ok(None)
    }

    /// Records which parts of unsent row `id` the platform accepted so far
    /// (a row a channel splits into several messages): their ids in order,
    /// `None` where the platform gave none. Kept as a JSON list in the
    /// row's platform id until the row is marked sent, so a redelivery
    /// after a crash, on any process, skips them
    /// ([`Store::sent_parts`]). Ignored once the row is sent. Default: not
    /// kept (the channel's own memory only).
    async fn record_sent_parts(&self, _id: i64, _parts: &[Option<String>]) -> StoreResult<()> {
        Ok(())
    }

    /// Tells every process sharing the store (this one too) `payload` on
    /// `topic` (PostgreSQL `NOTIFY`): for what must reach an instance at
    /// once, such as a web page's socket open on another instance. Default:
    /// nobody else to tell.
    async fn announce(&self, _topic: &str, _payload: &str) -> StoreResult<()> {
        Ok(())
    }

    /// What is announced on `topic` from now on, by any process sharing the
    /// store: `Heard::Said(payload)`, or `Heard::MayHaveMissed` after the
    /// listening connection was lost and made again (announcements in
    /// between are gone: catch up on everything). `None`: only this process
    /// uses the store, so nothing is ever announced.
    async fn listen(
        &self,
        _topic: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Heard>>> {
        Ok(None)
    }

    /// Tries to become the one holder of `role` (`discord-gateway`) among
    /// every process sharing the store: `None` while another holds it (ask
    /// again later), else this process's [`Leadership`] until it is dropped
    /// or lost; a holder that dies gives it up. Default: always granted
    /// (only this process uses the store).
    async fn try_lead(&self, _role: &str) -> StoreResult<Option<Leadership>> {
        Ok(Some(Leadership::always()))
    }

    /// The parts of unsent row `id` recorded by
    /// [`Store::record_sent_parts`]; empty when none were.
    async fn sent_parts(&self, _id: i64) -> StoreResult<Vec<Option<String>>> {
        Ok(Vec::new())
    }
}

/// The JSON list [`Store::record_sent_parts`] keeps.
pub fn sent_parts_to_text(parts: &[Option<String>]) -> String {
    serde_json::to_string(parts).unwrap_or_else(|_| "[]".into())
}

/// [`Store::sent_parts`] from the stored text: empty unless it is a JSON
/// list (a row's platform id of another form records no parts).
pub fn sent_parts_from_text(text: Option<&str>) -> Vec<Option<String>> {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}
