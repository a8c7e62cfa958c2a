//! The desk: the one place that ties engine, store and outbox together.
//!
//! For each input it takes the conversation's lock, **loads** the state,
//! **steps** the pure engine, looks up only what the step needs
//! ([`plan::Needs`]), **plans** the commit (pure, [`plan::plan`]: rendering,
//! transcript, typed outbox rows, timers, ticket) and **commits** it in one
//! transaction. An input key seen before is answered as a duplicate and not
//! processed again. Replies leave only through the outbox.
//!
//! Channels never touch the store: they call the desk with what happened
//! ([`Inbound`], agent actions) and ask it the few channel-neutral
//! questions they need (which conversation or ticket lives at an address,
//! where a person or a ticket is reached).

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::watch;

use crate::conversation::store::*;
use crate::flow::compiled::CompiledFlow;
use crate::flow::engine::{self, AgentAction, EngineSettings, Input};
use crate::flow::state::State;
use crate::handoff::hours::BusinessHours;
use crate::i18n::{registry, Catalog};
use crate::outbox::sender::OutboxQueue;
use crate::outbox::OutboxRow;
pub use crate::outbox::{RenderedChoice, RenderedReply};
use plan::{Needs, PlanContext, PlanInput, Renderer};

pub use plan::TRANSCRIPT_MAX_CHARS;

/// What one call on the desk produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub conversation_id: String,
    pub locale: String,
    pub state: State,
    /// The outbox rows this input wrote, with their ids, in order: the one
    /// record of what the bot said.
    pub rows: Vec<(i64, OutboxRow)>,
    /// The input was handled before; nothing was done.
    pub duplicate: bool,
    /// A handoff ticket opened by this input.
    pub handoff: Option<HandoffRecord>,
    pub expects: String,
    pub case: Option<String>,
}

impl Outcome {
    /// The replies to the person, from the rows.
    pub fn replies(&self) -> Vec<RenderedReply> {
        self.rows
            .iter()
            .filter_map(|(_, row)| match row {
                OutboxRow::Replies { replies } => Some(replies.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Notes for the agents' side, from the rows.
    pub fn agent_notes(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|(_, row)| match row {
                OutboxRow::AgentNote { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Ids of the rows written.
    pub fn row_ids(&self) -> Vec<i64> {
        self.rows.iter().map(|(id, _)| *id).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conversation \"{0}\" does not exist")]
    UnknownConversation(String),
    #[error("conversation \"{0}\" kept changing under concurrent writers; gave up after retries")]
    Contention(String),
    #[error("handoff ticket \"{0}\" does not exist")]
    UnknownTicket(String),
    #[error("stored state of conversation \"{0}\" cannot be read: {1}")]
    CorruptState(String, String),
}

/// What a person did on a channel, in channel-neutral terms.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// `discord`, `teams`, `console`…
    pub channel: String,
    /// Where the person is reached (a DM channel, a Teams conversation).
    pub address: String,
    /// The person's id on the channel.
    pub user_key: String,
    /// What the platform says the person's language is (`ja-JP`, `en`).
    pub locale_hint: String,
    pub input: Input,
    /// The platform's message id: the same key twice is one input.
    pub key: Option<String>,
    /// How to reach the address later, saved with this input.
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
}

/// A handoff ticket as channels see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketView {
    pub ticket: String,
    pub conversation_id: String,
    pub status: String,
    /// Where agents discuss it (a staff thread id, a card id), once known.
    pub agent_address: Option<String>,
}

struct DeskInner {
    flow: CompiledFlow,
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    settings: EngineSettings,
    agent_locale: String,
    /// Set once, possibly after the desk was cloned (hence a `OnceLock`).
    business_hours: std::sync::OnceLock<BusinessHours>,
    /// Bumped after every commit that wrote outbox rows or timers, so
    /// senders and the timer loop await work instead of polling (a watch
    /// channel never loses a wake-up, unlike a bare notification).
    committed: watch::Sender<u64>,
    /// Per sender: the conversations that got outbox rows since it last
    /// looked (filled before `committed` is bumped).
    changed: Mutex<Vec<crate::outbox::sender::Changed>>,
    /// One async lock per conversation: inputs of one conversation are
    /// stepped one at a time (in arrival order), different conversations in
    /// parallel. The map itself is behind a blocking mutex held only to look
    /// up, insert or prune an entry, never across an await; an entry is
    /// removed when its last user is done, so the map holds only
    /// conversations being worked on.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Cheap to clone: every channel task holds one.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<DeskInner>,
}

/// Holds a conversation's lock; prunes the lock map entry when dropped by
/// its last user.
struct ConversationGuard {
    desk: Desk,
    conversation: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The same conversation held against other processes sharing the
    /// store (PostgreSQL); `None` when the store could not take it (the
    /// version check still refuses a concurrent writer).
    hold: Option<ConversationHold>,
}

impl Drop for ConversationGuard {
    fn drop(&mut self) {
        self.hold.take();
        self.guard.take();
        let mut locks = self
            .desk
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Two holders: the map and this guard. Others clone under the map's
        // mutex, so the count cannot grow while it is held.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.conversation);
        }
    }
}

/// Attempts of one input against concurrent writers before giving up.
const COMMIT_ATTEMPTS: usize = 5;

impl Desk {
    pub fn new(
        flow: CompiledFlow,
        catalog: Arc<Catalog>,
        store: Arc<dyn Store>,
        settings: EngineSettings,
        agent_locale: String,
    ) -> Desk {
        Desk {
            inner: Arc::new(DeskInner {
                flow,
                catalog,
                store,
                settings,
                agent_locale,
                business_hours: std::sync::OnceLock::new(),
                committed: watch::channel(0).0,
                changed: Mutex::new(Vec::new()),
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Tells people queued outside these hours when the desk opens.
    pub fn with_business_hours(self, hours: BusinessHours) -> Desk {
        if self.inner.business_hours.set(hours).is_err() {
            tracing::warn!("business hours were already set; keeping the first ones");
        }
        self
    }

    /// Changes after each commit that wrote outbox rows or timers.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.inner.committed.subscribe()
    }

    /// How often to look for work other processes sharing the store left
    /// (their commits wake nobody here); `None` when only this process
    /// writes the store ([`Store::shared_poll_interval`]).
    pub fn shared_poll_interval(&self) -> Option<std::time::Duration> {
        self.inner.store.shared_poll_interval()
    }

    /// Tries to become the one holder of `role` among the processes
    /// sharing the store ([`Store::try_lead`]).
    /// Tells every instance sharing the store `payload` on `topic`
    /// ([`Store::announce`]).
    pub async fn announce(&self, topic: &str, payload: &str) -> Result<(), DeskError> {
        Ok(self.inner.store.announce(topic, payload).await?)
    }

    /// What instances sharing the store announce on `topic`
    /// ([`Store::listen`]); `None` when the store is this process's alone.
    pub async fn listen(
        &self,
        topic: &str,
    ) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Heard>>, DeskError> {
        Ok(self.inner.store.listen(topic).await?)
    }

    pub async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, DeskError> {
        Ok(self.inner.store.try_lead(role).await?)
    }

    /// The outbox as the one sender reads it.
    pub fn outbox_queue(&self) -> OutboxQueue {
        let changed = crate::outbox::sender::Changed::default();
        self.inner
            .changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(changed.clone());
        OutboxQueue::with_changes(self.inner.store.clone(), self.committed(), changed)
    }

    /// Tells every sender that `conversation` got outbox rows.
    fn note_changed(&self, conversation: &str) {
        note_changed(&self.inner, conversation);
    }

    /// The time zone times are shown in (Asia/Tokyo by default).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.inner.settings.time_zone
    }

    pub fn agent_locale(&self) -> &str {
        &self.inner.agent_locale
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn flow(&self) -> &CompiledFlow {
        &self.inner.flow
    }

    /// A registered message rendered in `locale` (adapters' own words:
    /// command descriptions, ephemeral answers).
    pub fn text(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let args: Vec<(&str, serde_json::Value)> = args
            .iter()
            .map(|(k, v)| (*k, serde_json::Value::String(v.to_string())))
            .collect();
        Renderer {
            catalog: &self.inner.catalog,
            locale,
        }
        .text(id, &args)
    }

    /// The short polite reply a person gets when their input could not be
    /// handled (the store failed): sent directly by the channel, since the
    /// outbox may be what failed.
    pub fn try_again_reply(&self, locale: &str) -> RenderedReply {
        RenderedReply {
            message_id: registry::DESK_TRY_AGAIN.into(),
            text: self.text(locale, registry::DESK_TRY_AGAIN, &[]),
            choices: Vec::new(),
        }
    }

    // ----- look-ups for channels -------------------------------------

    /// The locale of the conversation at `address`, else the negotiated one.
    pub async fn locale_at(&self, channel: &str, address: &str, hint: &str) -> String {
        match self.inner.store.find_by_address(channel, address).await {
            Ok(Some(record)) => record.locale,
            _ => self.inner.catalog.negotiate(hint),
        }
    }

    /// Whether a conversation lives at `address` on `channel`.
    pub async fn has_conversation_at(
        &self,
        channel: &str,
        address: &str,
    ) -> Result<bool, DeskError> {
        Ok(self
            .inner
            .store
            .find_by_address(channel, address)
            .await?
            .is_some())
    }

    /// The id of the conversation at `address` on `channel`, if any.
    pub async fn conversation_at(
        &self,
        channel: &str,
        address: &str,
    ) -> Result<Option<String>, DeskError> {
        Ok(self
            .inner
            .store
            .find_by_address(channel, address)
            .await?
            .map(|record| record.id))
    }

    /// The outbox rows of `conversation` after row id `after`, sent or
    /// not, with when they were written (the web chat replays from its
    /// cursor). Rows that cannot be read are skipped.
    pub async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>, OutboxRow)>, DeskError> {
        Ok(self
            .inner
            .store
            .rows_after(conversation, after, limit)
            .await?
            .into_iter()
            .filter_map(|m| {
                serde_json::from_value::<OutboxRow>(m.payload)
                    .ok()
                    .map(|row| (m.id, m.created_at, row))
            })
            .collect())
    }

    /// The stored transcript of `conversation` (the web chat shows what
    /// the person wrote when a page reloads).
    pub async fn transcript(&self, conversation: &str) -> Result<Vec<TranscriptEntry>, DeskError> {
        Ok(self.inner.store.transcript(conversation).await?)
    }

    /// The ticket discussed at an agents' address (a staff thread, a card).
    pub async fn ticket_at(&self, agent_address: &str) -> Result<Option<TicketView>, DeskError> {
        Ok(self
            .inner
            .store
            .find_handoff_by_address(agent_address)
            .await?
            .map(ticket_view))
    }

    pub async fn ticket(&self, ticket: &str) -> Result<Option<TicketView>, DeskError> {
        Ok(self.inner.store.handoff(ticket).await?.map(ticket_view))
    }

    /// Records where agents discuss `ticket` (after the channel opened it).
    pub async fn set_agent_address(&self, ticket: &str, address: &str) -> Result<(), DeskError> {
        Ok(self
            .inner
            .store
            .set_handoff_address(ticket, address)
            .await?)
    }

    /// The parts of outbox row `row` the platform already accepted, as
    /// recorded by [`Desk::record_sent_parts`] (a redelivery skips them).
    pub async fn sent_parts(&self, row: i64) -> Result<Vec<Option<String>>, DeskError> {
        Ok(self.inner.store.sent_parts(row).await?)
    }

    /// Records the parts of outbox row `row` the platform accepted so far.
    pub async fn record_sent_parts(
        &self,
        row: i64,
        parts: &[Option<String>],
    ) -> Result<(), DeskError> {
        Ok(self.inner.store.record_sent_parts(row, parts).await?)
    }

    /// Where the person of `conversation` is reached.
    pub async fn person_address(&self, conversation: &str) -> Result<Option<String>, DeskError> {
        Ok(self.inner.store.address_of(conversation).await?)
    }

    /// Where else the person of `conversation` is reached on its channel:
    /// the addresses of their other conversations, most recent first
    /// (Discord's fallback when a DM is refused: their private thread).
    pub async fn other_addresses_of_person(
        &self,
        conversation: &str,
    ) -> Result<Vec<String>, DeskError> {
        let Some(record) = self.inner.store.load(conversation).await? else {
            return Ok(Vec::new());
        };
        let mut addresses: Vec<String> = Vec::new();
        for other in self
            .inner
            .store
            .conversations_of_user(&record.channel, &record.user_key)
            .await?
        {
            if let Some(address) = other.address {
                if Some(&address) != record.address.as_ref() && !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
        Ok(addresses)
    }

    /// Where agents discuss the latest ticket of `conversation`, if any.
    pub async fn latest_agent_address(
        &self,
        conversation: &str,
    ) -> Result<Option<String>, DeskError> {
        Ok(self
            .inner
            .store
            .handoffs(conversation)
            .await?
            .into_iter()
            .rev()
            .find_map(|h| h.agent_address))
    }

    /// How to reach the person of `conversation` proactively (a stored
    /// Teams conversation reference).
    pub async fn person_reference(
        &self,
        channel: &str,
        conversation: &str,
    ) -> Result<Option<String>, DeskError> {
        let Some(address) = self.inner.store.address_of(conversation).await? else {
            return Ok(None);
        };
        Ok(self.inner.store.reference(channel, &address).await?)
    }

    /// Queues a note to the agents' channel that belongs to no ticket
    /// (e.g. a refusal), delivered by the channel's sender like any row.
    /// With `key` (the platform's id of what is answered), the note is
    /// written once: a redelivered event adds no second note.
    pub async fn notify_agents_channel(
        &self,
        channel: &str,
        address: &str,
        message_id: &str,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DeskError> {
        let row = OutboxRow::AgentsNotice {
            address: address.to_string(),
            text: self.text(&self.inner.agent_locale, message_id, &[]),
        };
        let conversation = format!("{channel}:agents");
        let written = match key {
            Some(key) => self
                .inner
                .store
                .enqueue_once(&conversation, channel, key, row.to_payload(), now)
                .await?
                .is_some(),
            None => {
                self.inner
                    .store
                    .enqueue(&conversation, channel, row.to_payload(), now)
                    .await?;
                true
            }
        };
        if written {
            self.note_changed(&conversation);
            self.inner.committed.send_modify(|n| *n = n.wrapping_add(1));
        } else {
            tracing::info!(channel, "duplicate note to the agents' channel ignored");
        }
        Ok(())
    }

    // ----- inputs ------------------------------------------------------

    /// A person wrote or pressed something at `inbound.address`: continues
    /// the conversation that lives there, or opens one (going straight to
    /// what a first message clearly means).
    pub async fn receive(&self, inbound: Inbound) -> Result<Outcome, DeskError> {
        let store = &self.inner.store;
        let found = store
            .conversation_at(&inbound.channel, &inbound.address)
            .await?;
        let reference = inbound.reference.map(|reference| ChannelReference {
            channel: inbound.channel.clone(),
            address: inbound.address.clone(),
            reference,
        });
        if let Some(id) = found {
            return self
                .handle_with(&id, inbound.input, inbound.key, reference, inbound.at)
                .await;
        }
        // Only one input opens a conversation at an address: two first
        // messages at once (a double send, Teams' "bot added" with the first
        // message, two instances) would otherwise open two. Hold the address
        // (here and, on PostgreSQL, across instances) and look again: the
        // second finds the first's conversation and is its next input.
        let opening = self
            .lock(&opening_key(&inbound.channel, &inbound.address))
            .await;
        if let Some(id) = store
            .conversation_at(&inbound.channel, &inbound.address)
            .await?
        {
            drop(opening);
            return self
                .handle_with(&id, inbound.input, inbound.key, reference, inbound.at)
                .await;
        }
        let first_text = match inbound.input {
            Input::Text(text) | Input::Open(text) => Some(text),
            _ => None,
        };
        self.open_at(
            &inbound.channel,
            &inbound.user_key,
            &inbound.locale_hint,
            first_text,
            Some(&inbound.address),
            inbound.key,
            reference,
            inbound.at,
        )
        .await
    }

    /// The person asked to start (Discord `/mfa` in a DM, Teams adding the
    /// bot): resumes the open conversation at `address` by asking its
    /// pending question again, or greets them in a new one. `resume_open`
    /// false only greets when nothing lives there yet (Teams re-adding).
    pub async fn start_or_resume(
        &self,
        channel: &str,
        address: &str,
        user_key: &str,
        locale_hint: &str,
        reference: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        // Held like a first message's open (see `receive`), and let go
        // before resuming (one hold at a time per task).
        let opening = self.lock(&opening_key(channel, address)).await;
        let existing = self.inner.store.find_by_address(channel, address).await?;
        match existing {
            Some(record) if self.decode(&record)?.mode.status() != "closed" => {
                drop(opening);
                self.resume(&record.id, now).await
            }
            _ => {
                let reference = reference.map(|reference| ChannelReference {
                    channel: channel.to_string(),
                    address: address.to_string(),
                    reference,
                });
                self.open_at(
                    channel,
                    user_key,
                    locale_hint,
                    None,
                    Some(address),
                    None,
                    reference,
                    now,
                )
                .await
            }
        }
    }

    /// Starts a new conversation and greets the person. `locale_hint` is
    /// what the platform reports (`ja-JP`, `en`…).
    pub async fn start(
        &self,
        channel: &str,
        user_key: &str,
        locale_hint: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        self.open_at(channel, user_key, locale_hint, None, None, None, None, now)
            .await
    }

    /// Starts a new conversation reached at `address` (a private thread
    /// opened for it), greeting the person.
    pub async fn start_at(
        &self,
        channel: &str,
        address: &str,
        user_key: &str,
        locale_hint: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        self.open_at(
            channel,
            user_key,
            locale_hint,
            None,
            Some(address),
            None,
            None,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_at(
        &self,
        channel: &str,
        user_key: &str,
        locale_hint: &str,
        first_text: Option<String>,
        address: Option<&str>,
        inbound_key: Option<String>,
        reference: Option<ChannelReference>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let locale = self.inner.catalog.negotiate(locale_hint);
        let state = State::fresh(&id, &self.inner.flow.flow.flow.start, now);
        let record = ConversationRecord {
            id: id.clone(),
            channel: channel.to_string(),
            user_key: user_key.to_string(),
            locale,
            state: serde_json::to_value(&state).unwrap_or_default(),
            version: 0,
            created_at: now,
            updated_at: now,
            address: address.map(str::to_string),
        };
        // A fresh id nobody else can know until it is committed: the local
        // lock only, no hold across instances (opening already holds the
        // address; a second hold connection each could exhaust the pool
        // when many people open at once).
        let _guard = self.lock_with(&id, false).await;
        let input = match first_text {
            Some(text) => Input::Open(text),
            None => Input::Start,
        };
        self.step_and_commit(
            record,
            state,
            None,
            Step {
                input,
                inbound_key,
                fired_timer: None,
                reference,
            },
            now,
        )
        .await
    }

    /// An agent acts on ticket `ticket` (claim, say, release, transfer,
    /// close). Who may act is the caller's decision.
    pub async fn agent(
        &self,
        ticket: &str,
        action: AgentAction,
        inbound_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let handoff = self
            .inner
            .store
            .handoff(ticket)
            .await?
            .ok_or_else(|| DeskError::UnknownTicket(ticket.to_string()))?;
        self.handle(
            &handoff.conversation_id,
            Input::Agent(action),
            inbound_key,
            now,
        )
        .await
    }

    /// Handles one input of the person. `inbound_key` is the platform's
    /// message id (or interaction id); the same key twice is a duplicate.
    pub async fn handle(
        &self,
        conversation: &str,
        input: Input,
        inbound_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        self.handle_with(conversation, input, inbound_key, None, now)
            .await
    }

    async fn handle_with(
        &self,
        conversation: &str,
        input: Input,
        inbound_key: Option<String>,
        reference: Option<ChannelReference>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let _guard = self.lock(conversation).await;
        self.load_step_commit(
            conversation,
            Step {
                input,
                inbound_key,
                fired_timer: None,
                reference,
            },
            now,
        )
        .await
    }

    /// Loads, steps and commits under the conversation's lock, again after
    /// a concurrent writer (another instance) changed it.
    async fn load_step_commit(
        &self,
        conversation: &str,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let record = self
                .inner
                .store
                .load(conversation)
                .await?
                .ok_or_else(|| DeskError::UnknownConversation(conversation.to_string()))?;
            let state = self.decode(&record)?;
            let version = record.version;
            match self
                .step_and_commit(record, state, Some(version), step.clone(), now)
                .await
            {
                Err(DeskError::Contention(_)) => continue,
                other => return other,
            }
        }
        Err(DeskError::Contention(conversation.to_string()))
    }

    /// Fires the due timers of one conversation (or of all when `None`),
    /// each in its own transaction. Returns one outcome per fired timer.
    pub async fn fire_due_timers(
        &self,
        conversation: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, DeskError> {
        let due = self.inner.store.due_timers(now, conversation).await?;
        let mut outcomes = Vec::new();
        for timer in due {
            let _guard = self.lock(&timer.conversation_id).await;
            let step = Step {
                input: Input::Timer {
                    kind: timer.kind.clone(),
                    payload: timer.payload.clone(),
                },
                inbound_key: Some(format!("timer:{}", timer.id)),
                fired_timer: Some(timer.id.clone()),
                reference: None,
            };
            match self
                .load_step_commit(&timer.conversation_id, step, now)
                .await
            {
                Ok(outcome) if !outcome.duplicate => outcomes.push(outcome),
                Ok(_) => {}
                Err(DeskError::UnknownConversation(_)) => {
                    tracing::warn!(timer = %timer.id, "timer of a missing conversation skipped")
                }
                Err(e) => {
                    tracing::error!(timer = %timer.id, conversation = %timer.conversation_id, error = %e, "timer could not be fired")
                }
            }
        }
        Ok(outcomes)
    }

    /// When the next timer is due (of one conversation, or of all).
    pub async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, DeskError> {
        Ok(self.inner.store.next_timer_due(conversation).await?)
    }

    /// Resumes a stored conversation: fires its due timers, then says the
    /// pending question again (through the outbox like every reply). The
    /// outcome carries the fired timers' rows too.
    pub async fn resume(
        &self,
        conversation: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let fired = self.fire_due_timers(Some(conversation), now).await?;
        let mut outcome = {
            let _guard = self.lock(conversation).await;
            self.load_step_commit(
                conversation,
                Step {
                    input: Input::Resume,
                    inbound_key: None,
                    fired_timer: None,
                    reference: None,
                },
                now,
            )
            .await?
        };
        let mut rows: Vec<(i64, OutboxRow)> = fired.into_iter().flat_map(|o| o.rows).collect();
        rows.append(&mut outcome.rows);
        outcome.rows = rows;
        if outcome.state.mode.status() == "queued" {
            outcome.handoff = self
                .inner
                .store
                .handoffs(conversation)
                .await?
                .into_iter()
                .last();
        }
        Ok(outcome)
    }

    /// Marks rows the caller delivered itself (the terminal prints them).
    pub async fn mark_delivered(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), DeskError> {
        Ok(self.inner.store.mark_sent(ids, now).await?)
    }

    async fn lock(&self, conversation: &str) -> ConversationGuard {
        self.lock_with(conversation, true).await
    }

    /// The conversation's lock in this process and, with `across`, its hold
    /// against other instances sharing the store.
    async fn lock_with(&self, conversation: &str, across: bool) -> ConversationGuard {
        let lock = {
            let mut locks = self
                .inner
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            locks
                .entry(conversation.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
                .clone()
        };
        let guard = lock.clone().lock_owned().await;
        let hold = if !across {
            None
        } else {
            match self.inner.store.hold_conversation(conversation).await {
                Ok(hold) => Some(hold),
                Err(e) => {
                    tracing::warn!(conversation, error = %e, "cannot hold the conversation against other instances; relying on the version check");
                    None
                }
            }
        };
        ConversationGuard {
            desk: self.clone(),
            conversation: conversation.to_string(),
            lock,
            guard: Some(guard),
            hold,
        }
    }

    /// Entries in the lock map (conversations being worked on right now).
    pub fn locks_held(&self) -> usize {
        self.inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    fn decode(&self, record: &ConversationRecord) -> Result<State, DeskError> {
        State::deserialize(&record.state)
            .map_err(|e| DeskError::CorruptState(record.id.clone(), e.to_string()))
    }

    async fn step_and_commit(
        &self,
        record: ConversationRecord,
        state: State,
        expected_version: Option<i64>,
        step: Step,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let inner = &self.inner;
        let engine_step = engine::step(
            &inner.flow,
            state.clone(),
            step.input.clone(),
            now,
            &inner.settings,
        );
        let needs = Needs::of(&engine_step.effects);
        let queue_length = if needs.queue_length {
            inner.store.queue_length().await?
        } else {
            0
        };
        let stored_transcript = if needs.transcript {
            inner.store.transcript(&record.id).await?
        } else {
            Vec::new()
        };
        let ctx = PlanContext {
            flow: &inner.flow,
            catalog: &inner.catalog,
            agent_locale: &inner.agent_locale,
            time_zone: inner.settings.time_zone,
            business_hours: inner.business_hours.get(),
            now,
            queue_length,
            stored_transcript: &stored_transcript,
        };
        let conversation_id = record.id.clone();
        let locale = record.locale.clone();
        let planned = plan::plan(
            PlanInput {
                record,
                state_before: &state,
                input: &step.input,
                step: engine_step,
                expected_version,
                inbound_key: step.inbound_key,
                fired_timer: step.fired_timer,
                reference: step.reference,
            },
            &ctx,
        );
        let wrote_work = !planned.commit.outbox.is_empty() || !planned.commit.new_timers.is_empty();
        match inner.store.commit(planned.commit).await? {
            CommitOutcome::Committed {
                version,
                outbox_ids,
            } => {
                if wrote_work {
                    note_changed(inner, &conversation_id);
                    inner.committed.send_modify(|n| *n = n.wrapping_add(1));
                }
                if let Some(handoff) = &planned.handoff {
                    tracing::info!(conversation = %conversation_id, ticket = %handoff.ticket, "conversation queued for an agent");
                }
                tracing::debug!(conversation = %conversation_id, node = %planned.state.node, version, "input committed");
                Ok(self.outcome(
                    conversation_id,
                    locale,
                    planned.state,
                    outbox_ids.into_iter().zip(planned.rows).collect(),
                    false,
                    planned.handoff,
                ))
            }
            CommitOutcome::Duplicate => {
                tracing::info!(conversation = %conversation_id, "duplicate input ignored");
                let current = match inner.store.load(&conversation_id).await? {
                    Some(record) => self.decode(&record)?,
                    None => state,
                };
                Ok(self.outcome(conversation_id, locale, current, Vec::new(), true, None))
            }
            CommitOutcome::Conflict => Err(DeskError::Contention(conversation_id)),
        }
    }

    fn outcome(
        &self,
        conversation_id: String,
        locale: String,
        state: State,
        rows: Vec<(i64, OutboxRow)>,
        duplicate: bool,
        handoff: Option<HandoffRecord>,
    ) -> Outcome {
        Outcome {
            conversation_id,
            locale,
            expects: engine::expects(&self.inner.flow, &state),
            case: engine::current_case(&self.inner.flow, &state),
            state,
            rows,
            duplicate,
            handoff,
        }
    }
}

/// The lock (and, on PostgreSQL, the hold across instances) taken to open
/// a conversation at an address; never a conversation id (those are
/// hexadecimal).
fn opening_key(channel: &str, address: &str) -> String {
    format!("opening:{channel}:{address}")
}

/// One input on its way through the desk.
#[derive(Debug, Clone)]
struct Step {
    input: Input,
    inbound_key: Option<String>,
    fired_timer: Option<String>,
    reference: Option<ChannelReference>,
}

fn ticket_view(record: HandoffRecord) -> TicketView {
    TicketView {
        ticket: record.ticket,
        conversation_id: record.conversation_id,
        status: record.status,
        agent_address: record.agent_address,
    }
}

/// Tells every sender of the desk that `conversation` got outbox rows.
fn note_changed(inner: &DeskInner, conversation: &str) {
    for changed in inner
        .changed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        changed.add(conversation);
    }
}
