//! The desk: the one place that ties engine, store, handoff and rendering.
//!
//! For each input it takes the conversation's lock, loads the state, steps
//! the pure engine, renders the replies in the conversation's locale, and
//! commits state, transcript, outbox rows, timers and handoff ticket in one
//! transaction. An input key seen before is answered as a duplicate and not
//! processed again. Channels (terminal, Discord, Teams) only translate their
//! events into calls on a [`Desk`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::conversation::state::State;
use crate::conversation::store::*;
use crate::flow::compiled::CompiledFlow;
use crate::flow::engine::{self, AgentAction, EngineSettings, Input, Reply};
use crate::handoff::hours::BusinessHours;
use crate::handoff::summary;
use crate::i18n::Catalog;
use crate::text;

/// Longest person text kept in the transcript (characters); longer input is
/// cut there and marked, so a pasted 100 KB log cannot bloat the database.
pub const TRANSCRIPT_MAX_CHARS: usize = 20_000;

/// A reply rendered in the conversation's locale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedReply {
    pub message_id: String,
    pub text: String,
    pub choices: Vec<RenderedChoice>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedChoice {
    pub id: String,
    pub label: String,
}

/// What one call on the desk produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub conversation_id: String,
    pub locale: String,
    pub state: State,
    pub replies: Vec<RenderedReply>,
    /// The input was handled before; nothing was done.
    pub duplicate: bool,
    /// A handoff ticket opened by this input.
    pub handoff: Option<HandoffRecord>,
    /// Outbox rows written for this outcome (the channel marks them sent).
    pub outbox_ids: Vec<i64>,
    pub expects: String,
    pub case: Option<String>,
    /// Notes for the agents' side (rendered in the agents' locale).
    pub agent_notes: Vec<String>,
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
    /// One async lock per conversation: inputs of one conversation are
    /// stepped one at a time (in arrival order), different conversations in
    /// parallel. The map itself is behind a blocking mutex held only to look
    /// up or insert an entry, never across an await.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Cheap to clone: every channel task holds one.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<DeskInner>,
}

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

    /// The time zone times are shown in (Asia/Tokyo by default).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.inner.settings.time_zone
    }

    pub fn agent_locale(&self) -> &str {
        &self.inner.agent_locale
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

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn flow(&self) -> &CompiledFlow {
        &self.inner.flow
    }

    fn lock_for(&self, conversation: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks
            .entry(conversation.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
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
        self.open(channel, user_key, locale_hint, None, None, None, now)
            .await
    }

    /// Starts a new conversation opened by a first message (or a command):
    /// greets, goes straight to what `first_text` clearly means, and records
    /// where the person is reached (`address`) and the message's id
    /// (`inbound_key`, so a re-delivery of that message is a duplicate) in
    /// the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        &self,
        channel: &str,
        user_key: &str,
        locale_hint: &str,
        first_text: Option<String>,
        address: Option<&str>,
        inbound_key: Option<String>,
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
            state,
            version: 0,
            created_at: now,
            updated_at: now,
            address: None,
        };
        let lock = self.lock_for(&id);
        let _guard = lock.lock().await;
        let input = match first_text {
            Some(text) => Input::Open(text),
            None => Input::Start,
        };
        let mut record = record;
        record.address = address.map(str::to_string);
        self.step_and_commit(record, None, input, inbound_key, now)
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
        let lock = self.lock_for(conversation);
        let _guard = lock.lock().await;
        for _ in 0..5 {
            let record = self
                .inner
                .store
                .load(conversation)
                .await?
                .ok_or_else(|| DeskError::UnknownConversation(conversation.to_string()))?;
            let version = record.version;
            match self
                .step_and_commit(
                    record,
                    Some(version),
                    input.clone(),
                    inbound_key.clone(),
                    now,
                )
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
            let lock = self.lock_for(&timer.conversation_id);
            let _guard = lock.lock().await;
            let Some(record) = self.inner.store.load(&timer.conversation_id).await? else {
                tracing::warn!(timer = %timer.id, "timer of a missing conversation skipped");
                continue;
            };
            let version = record.version;
            let input = Input::Timer {
                kind: timer.kind.clone(),
                payload: timer.payload.clone(),
            };
            let key = format!("timer:{}", timer.id);
            match self
                .step_and_commit_with(
                    record,
                    Some(version),
                    input,
                    Some(key),
                    now,
                    Some(timer.id.clone()),
                )
                .await
            {
                Ok(outcome) if !outcome.duplicate => outcomes.push(outcome),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(timer = %timer.id, error = %e, "timer could not be fired")
                }
            }
        }
        Ok(outcomes)
    }

    /// Resumes a stored conversation: fires its due timers, then says the
    /// pending question again. Nothing about the state changes.
    pub async fn resume(
        &self,
        conversation: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        let fired = self.fire_due_timers(Some(conversation), now).await?;
        let record = self
            .inner
            .store
            .load(conversation)
            .await?
            .ok_or_else(|| DeskError::UnknownConversation(conversation.to_string()))?;
        let mut replies: Vec<RenderedReply> = fired.into_iter().flat_map(|o| o.replies).collect();
        let prompt = engine::pending_prompt(&self.inner.flow, &record.state);
        replies.extend(prompt.iter().map(|r| self.render(&record.locale, r)));
        let handoff = self.latest_open_handoff(&record).await?;
        Ok(self.outcome(&record, replies, false, handoff, Vec::new()))
    }

    async fn latest_open_handoff(
        &self,
        record: &ConversationRecord,
    ) -> Result<Option<HandoffRecord>, DeskError> {
        if record.state.mode.status() != "queued" {
            return Ok(None);
        }
        Ok(self
            .inner
            .store
            .handoffs(&record.id)
            .await?
            .into_iter()
            .last())
    }

    async fn step_and_commit(
        &self,
        record: ConversationRecord,
        expected_version: Option<i64>,
        input: Input,
        inbound_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, DeskError> {
        self.step_and_commit_with(record, expected_version, input, inbound_key, now, None)
            .await
    }

    async fn step_and_commit_with(
        &self,
        mut record: ConversationRecord,
        expected_version: Option<i64>,
        input: Input,
        inbound_key: Option<String>,
        now: DateTime<Utc>,
        fired_timer: Option<String>,
    ) -> Result<Outcome, DeskError> {
        let inner = &self.inner;
        let person_line = person_transcript_line(
            &inner.flow,
            &record.state,
            &input,
            now,
            &inner.catalog,
            &record.locale,
        );
        let step = engine::step(
            &inner.flow,
            record.state.clone(),
            input,
            now,
            &inner.settings,
        );
        let mut replies: Vec<RenderedReply> = step
            .replies
            .iter()
            .map(|r| self.render(&record.locale, r))
            .collect();
        record.state = step.state;
        record.updated_at = now;
        let channel = record.channel.clone();
        let mut commit = Commit::new(record.clone(), expected_version);
        commit.inbound_key = inbound_key;
        commit.fired_timer = fired_timer;
        commit.transcript.extend(person_line);
        let mut handoff = None;
        let mut agent_notes = Vec::new();
        let mut agent_rows = Vec::new();
        for effect in &step.effects {
            match effect {
                engine::Effect::ScheduleTimer {
                    kind,
                    due_at,
                    payload,
                } => {
                    commit.new_timers.push(TimerRow {
                        id: format!("{}-{}-{}", record.id, kind, record.state.turn),
                        conversation_id: record.id.clone(),
                        kind: kind.clone(),
                        due_at: *due_at,
                        payload: payload.clone(),
                    });
                }
                engine::Effect::CancelTimers { kind } => {
                    commit.cancel_timer_kinds.push(kind.clone())
                }
                engine::Effect::OpenHandoff { ticket, reason } => {
                    let lines = summary::build(&record.state, ticket, *reason);
                    let text = self.render_summary(&lines);
                    let opened = HandoffRecord {
                        ticket: ticket.clone(),
                        conversation_id: record.id.clone(),
                        reason: serde_json::to_value(reason)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        summary: text,
                        status: "queued".into(),
                        created_at: now,
                        agent_address: None,
                    };
                    // Tell the person where they stand and, outside business
                    // hours, when the desk opens.
                    let position = inner.store.queue_length().await? + 1;
                    let mut extra = vec![Reply {
                        message_id: "handoff-queue-position".into(),
                        args: BTreeMap::from([("position".to_string(), json!(position))]),
                        choices: Vec::new(),
                    }];
                    if let Some(opens) =
                        inner.business_hours.get().and_then(|h| h.next_opening(now))
                    {
                        let opens = crate::diagnose::lockout::format_local_time(
                            opens,
                            now,
                            inner.settings.time_zone,
                        );
                        extra.push(Reply {
                            message_id: "handoff-after-hours".into(),
                            args: BTreeMap::from([("opens_at".to_string(), json!(opens))]),
                            choices: Vec::new(),
                        });
                    }
                    replies.extend(extra.iter().map(|r| self.render(&record.locale, r)));
                    let recent = recent_transcript(
                        &inner.store.transcript(&record.id).await?,
                        &commit.transcript,
                        20,
                    );
                    agent_rows.push(json!({
                        "kind": "handoff",
                        "ticket": ticket,
                        "summary": opened.summary,
                        "recent": recent,
                    }));
                    commit.open_handoff = Some(opened.clone());
                    handoff = Some(opened);
                    tracing::info!(conversation = %record.id, ticket = %ticket, "conversation queued for an agent");
                }
                engine::Effect::CancelHandoff { ticket } => {
                    commit.handoff_status = Some((ticket.clone(), "cancelled".into()));
                }
                engine::Effect::HandoffStatus { ticket, status } => {
                    commit.handoff_status = Some((ticket.clone(), status.clone()));
                    if status == "closed" {
                        agent_rows.push(json!({ "kind": "transcript", "ticket": ticket }));
                    }
                }
                engine::Effect::RelayToAgent { ticket, text } => {
                    let args = BTreeMap::from([("text".to_string(), json!(text))]);
                    let rendered =
                        inner
                            .catalog
                            .format(&inner.agent_locale, "agent-note-from-person", &args);
                    agent_rows.push(json!({ "kind": "relay", "ticket": ticket, "text": rendered }));
                }
                engine::Effect::NotifyAgents { ticket, reply } => {
                    let rendered = self.render(&inner.agent_locale, reply).text;
                    commit.transcript.push(TranscriptEntry {
                        at: now,
                        direction: Direction::System,
                        author: None,
                        message_id: Some(reply.message_id.clone()),
                        text: rendered.clone(),
                    });
                    agent_rows
                        .push(json!({ "kind": "agent_note", "ticket": ticket, "text": rendered }));
                    agent_notes.push(rendered);
                }
            }
        }
        for reply in &replies {
            commit.transcript.push(TranscriptEntry {
                at: now,
                direction: Direction::Bot,
                author: None,
                message_id: Some(reply.message_id.clone()),
                text: reply.text.clone(),
            });
        }
        if !replies.is_empty() {
            commit.outbox.push((
                channel.clone(),
                json!({ "kind": "replies", "replies": replies }),
            ));
        }
        for row in agent_rows {
            commit.outbox.push((channel.clone(), row));
        }
        let wrote_work = !commit.outbox.is_empty() || !commit.new_timers.is_empty();
        match inner.store.commit(commit).await? {
            CommitOutcome::Committed {
                version,
                outbox_ids,
            } => {
                record.version = version;
                if wrote_work {
                    inner.committed.send_modify(|n| *n = n.wrapping_add(1));
                }
                tracing::debug!(conversation = %record.id, node = %record.state.node, version, "input committed");
                let mut outcome = self.outcome(&record, replies, false, handoff, outbox_ids);
                outcome.agent_notes = agent_notes;
                Ok(outcome)
            }
            CommitOutcome::Duplicate => {
                tracing::info!(conversation = %record.id, "duplicate input ignored");
                let current = inner.store.load(&record.id).await?.unwrap_or(record);
                Ok(self.outcome(&current, Vec::new(), true, None, Vec::new()))
            }
            CommitOutcome::Conflict => Err(DeskError::Contention(record.id)),
        }
    }

    fn outcome(
        &self,
        record: &ConversationRecord,
        replies: Vec<RenderedReply>,
        duplicate: bool,
        handoff: Option<HandoffRecord>,
        outbox_ids: Vec<i64>,
    ) -> Outcome {
        Outcome {
            conversation_id: record.id.clone(),
            locale: record.locale.clone(),
            expects: engine::expects(&self.inner.flow, &record.state),
            case: engine::current_case(&self.inner.flow, &record.state),
            state: record.state.clone(),
            replies,
            duplicate,
            handoff,
            outbox_ids,
            agent_notes: Vec::new(),
        }
    }

    /// Renders one engine reply in `locale`.
    pub fn render(&self, locale: &str, reply: &Reply) -> RenderedReply {
        let catalog = &self.inner.catalog;
        RenderedReply {
            message_id: reply.message_id.clone(),
            text: catalog.format(locale, &reply.message_id, &reply.args),
            choices: reply
                .choices
                .iter()
                .map(|c| RenderedChoice {
                    id: c.id.clone(),
                    label: catalog.format(locale, &c.label, &BTreeMap::new()),
                })
                .collect(),
        }
    }

    fn render_summary(&self, lines: &[summary::SummaryLine]) -> String {
        let catalog = &self.inner.catalog;
        let locale = &self.inner.agent_locale;
        lines
            .iter()
            .map(|line| {
                let mut args = line.reply.args.clone();
                for (name, message_id) in &line.label_args {
                    args.insert(
                        name.clone(),
                        Value::String(catalog.format(locale, message_id, &BTreeMap::new())),
                    );
                }
                catalog.format(locale, &line.reply.message_id, &args)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The transcript line for what the person sent (none for timers/start).
fn person_transcript_line(
    flow: &CompiledFlow,
    state: &State,
    input: &Input,
    now: DateTime<Utc>,
    catalog: &Catalog,
    locale: &str,
) -> Option<TranscriptEntry> {
    let text = match input {
        Input::Text(raw) => {
            let cleaned = text::clean(raw);
            let length = cleaned.chars().count();
            if length > TRANSCRIPT_MAX_CHARS {
                format!(
                    "{}… [{} characters in all]",
                    text::truncate_chars(&cleaned, TRANSCRIPT_MAX_CHARS),
                    length
                )
            } else {
                cleaned
            }
        }
        Input::Choice(id) => {
            let label = flow
                .flow
                .node(&state.node)
                .and_then(|n| n.choices.iter().find(|c| &c.id == id))
                .map(|c| catalog.format(locale, &c.label, &BTreeMap::new()))
                .unwrap_or_default();
            format!("[{id}] {label}")
        }
        Input::Agent(AgentAction::Say { agent, text }) => {
            return Some(TranscriptEntry {
                at: now,
                direction: Direction::Agent,
                author: Some(agent.name.clone()),
                message_id: None,
                text: text::truncate_chars(&text::clean(text), TRANSCRIPT_MAX_CHARS).to_string(),
            });
        }
        Input::Open(text) => format!(
            "[open] {}",
            text::truncate_chars(&text::clean(text), TRANSCRIPT_MAX_CHARS)
        ),
        Input::Start | Input::Timer { .. } | Input::Agent(_) => return None,
    };
    Some(TranscriptEntry {
        at: now,
        direction: Direction::Person,
        author: None,
        message_id: None,
        text,
    })
}

/// The last `n` transcript lines (stored plus about to be stored) as
/// "who: text" lines for the agents' first look, phone numbers masked (every
/// staff member can read the thread before anyone claims it).
fn recent_transcript(
    stored: &[TranscriptEntry],
    pending: &[TranscriptEntry],
    n: usize,
) -> Vec<String> {
    let all: Vec<&TranscriptEntry> = stored.iter().chain(pending.iter()).collect();
    all[all.len().saturating_sub(n)..]
        .iter()
        .map(|line| {
            let who = match line.direction {
                Direction::Person => "👤",
                Direction::Bot => "🤖",
                Direction::Agent => "🧑‍💼",
                Direction::System => "ℹ️",
            };
            let shown = text::mask_phone_numbers(text::truncate_chars(&line.text, 300));
            format!("{who} {shown}")
        })
        .collect()
}
