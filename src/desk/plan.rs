//! Turning one engine step into one commit: a pure function.
//!
//! [`plan`] gets everything it needs as arguments (the conversation, the
//! step, the queue length, the stored transcript when a handoff opens or
//! closes, business hours) and returns the [`Commit`] to write plus the
//! rendered rows. It renders every text once: replies in the person's
//! locale, agent notes, summary and transcript in the agents' locale with
//! numbers masked. [`Needs::of`] tells the desk which look-ups a step
//! needs, so an ordinary input costs no extra query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::conversation::store::{
    ChannelReference, Commit, ConversationRecord, Direction, HandoffRecord, TimerRow,
    TranscriptEntry,
};
use crate::flow::compiled::CompiledFlow;
use crate::flow::engine::{AgentAction, Effect, Input, Reply, Step};
use crate::flow::state::State;
use crate::handoff::hours::BusinessHours;
use crate::handoff::summary;
use crate::i18n::{registry, Catalog};
use crate::outbox::{OutboxRow, RenderedChoice, RenderedReply};
use crate::text;

/// Longest person text kept in the transcript (characters); longer input is
/// cut there and marked, so a pasted 100 KB log cannot bloat the database.
pub const TRANSCRIPT_MAX_CHARS: usize = 20_000;

/// Transcript lines shown to agents when a ticket opens.
pub const RECENT_LINES: usize = 20;

/// What the desk must look up before planning a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// How many tickets wait (to tell the person their place).
    pub queue_length: bool,
    /// The stored transcript (recent lines for agents, or all of it at close).
    pub transcript: bool,
}

impl Needs {
    pub fn of(effects: &[Effect]) -> Needs {
        let mut needs = Needs::default();
        for effect in effects {
            match effect {
                Effect::OpenHandoff { .. } => {
                    needs.queue_length = true;
                    needs.transcript = true;
                }
                Effect::HandoffStatus { status, .. } if status == "closed" => {
                    needs.transcript = true;
                }
                _ => {}
            }
        }
        needs
    }
}

/// Everything besides the step that planning reads.
pub struct PlanContext<'a> {
    pub flow: &'a CompiledFlow,
    pub catalog: &'a Catalog,
    pub agent_locale: &'a str,
    pub time_zone: Tz,
    pub business_hours: Option<&'a BusinessHours>,
    pub now: DateTime<Utc>,
    /// Tickets queued before this step (when [`Needs::queue_length`]).
    pub queue_length: i64,
    /// The stored transcript (when [`Needs::transcript`]; else empty).
    pub stored_transcript: &'a [TranscriptEntry],
}

/// What one input produced before it reached the engine.
pub struct PlanInput<'a> {
    /// The conversation as loaded (its state is the state before the step).
    pub record: ConversationRecord,
    pub state_before: &'a State,
    pub input: &'a Input,
    pub step: Step,
    pub expected_version: Option<i64>,
    pub inbound_key: Option<String>,
    pub fired_timer: Option<String>,
    pub reference: Option<ChannelReference>,
}

/// The commit to write, and what it says.
#[derive(Debug, Clone)]
pub struct Plan {
    pub commit: Commit,
    /// The state after the step.
    pub state: State,
    /// The rows of `commit.outbox`, typed, in order.
    pub rows: Vec<OutboxRow>,
    /// A ticket this input opens.
    pub handoff: Option<HandoffRecord>,
}

/// Renders messages of one locale.
pub struct Renderer<'a> {
    pub catalog: &'a Catalog,
    pub locale: &'a str,
}

impl Renderer<'_> {
    pub fn reply(&self, reply: &Reply) -> RenderedReply {
        RenderedReply {
            message_id: reply.message_id.clone(),
            text: self
                .catalog
                .format(self.locale, &reply.message_id, &reply.args),
            choices: reply
                .choices
                .iter()
                .map(|c| RenderedChoice {
                    id: c.id.clone(),
                    label: self.text(&c.label, &[]),
                })
                .collect(),
        }
    }

    pub fn text(&self, id: &str, args: &[(&str, Value)]) -> String {
        let args: BTreeMap<String, Value> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        self.catalog.format(self.locale, id, &args)
    }

    /// The agents' summary, one line per summary line.
    pub fn summary(&self, lines: &[summary::SummaryLine]) -> String {
        lines
            .iter()
            .map(|line| {
                let mut args = line.reply.args.clone();
                for (name, message_id) in &line.label_args {
                    args.insert(name.clone(), Value::String(self.text(message_id, &[])));
                }
                self.catalog
                    .format(self.locale, &line.reply.message_id, &args)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Plans the commit of one step. Pure.
pub fn plan(input: PlanInput<'_>, ctx: &PlanContext<'_>) -> Plan {
    let PlanInput {
        mut record,
        state_before,
        input,
        step,
        expected_version,
        inbound_key,
        fired_timer,
        reference,
    } = input;
    let person = Renderer {
        catalog: ctx.catalog,
        locale: &record.locale,
    };
    let agents = Renderer {
        catalog: ctx.catalog,
        locale: ctx.agent_locale,
    };
    let person_line = person_transcript_line(ctx.flow, state_before, input, ctx.now, &person);
    let mut replies: Vec<RenderedReply> = step.replies.iter().map(|r| person.reply(r)).collect();
    let state = step.state;
    record.state = serde_json::to_value(&state).unwrap_or(Value::Null);
    record.updated_at = ctx.now;
    let mut commit = Commit::new(record.clone(), expected_version);
    commit.inbound_key = inbound_key;
    commit.fired_timer = fired_timer;
    commit.reference = reference;
    commit.transcript.extend(person_line);
    let mut handoff = None;
    let mut agent_rows = Vec::new();
    for effect in &step.effects {
        match effect {
            Effect::ScheduleTimer {
                kind,
                due_at,
                payload,
            } => commit.new_timers.push(TimerRow {
                id: format!("{}-{}-{}", record.id, kind, state.turn),
                conversation_id: record.id.clone(),
                kind: kind.clone(),
                due_at: *due_at,
                payload: payload.clone(),
            }),
            Effect::CancelTimers { kind } => commit.cancel_timer_kinds.push(kind.clone()),
            Effect::OpenHandoff { ticket, reason } => {
                let opened = HandoffRecord {
                    ticket: ticket.clone(),
                    conversation_id: record.id.clone(),
                    reason: serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    summary: agents.summary(&summary::build(&state, ticket, *reason)),
                    status: "queued".into(),
                    created_at: ctx.now,
                    agent_address: None,
                };
                // Tell the person where they stand and, outside business
                // hours, when the desk opens.
                replies.push(person.reply(&Reply {
                    message_id: registry::HANDOFF_QUEUE_POSITION.into(),
                    args: BTreeMap::from([("position".into(), json!(ctx.queue_length + 1))]),
                    choices: Vec::new(),
                }));
                if let Some(opens) = ctx.business_hours.and_then(|h| h.next_opening(ctx.now)) {
                    let opens =
                        crate::diagnose::lockout::format_local_time(opens, ctx.now, ctx.time_zone);
                    replies.push(person.reply(&Reply {
                        message_id: registry::HANDOFF_AFTER_HOURS.into(),
                        args: BTreeMap::from([("opens_at".into(), json!(opens))]),
                        choices: Vec::new(),
                    }));
                }
                agent_rows.push(OutboxRow::Handoff {
                    ticket: ticket.clone(),
                    thread_name: agents
                        .text(registry::HANDOFF_THREAD_NAME, &[("ticket", json!(ticket))]),
                    summary: opened.summary.clone(),
                    recent_title: agents.text(registry::HANDOFF_RECENT_TITLE, &[]),
                    recent: recent_transcript(
                        ctx.stored_transcript,
                        &commit.transcript,
                        RECENT_LINES,
                    ),
                    actions: vec![
                        RenderedChoice {
                            id: "claim".into(),
                            label: agents.text(registry::HANDOFF_CLAIM_BUTTON, &[]),
                        },
                        RenderedChoice {
                            id: "close".into(),
                            label: agents.text(registry::HANDOFF_CLOSE_BUTTON, &[]),
                        },
                    ],
                });
                commit.open_handoff = Some(opened.clone());
                handoff = Some(opened);
            }
            Effect::CancelHandoff { ticket } => {
                commit.handoff_status = Some((ticket.clone(), "cancelled".into()));
            }
            Effect::HandoffStatus { ticket, status } => {
                commit.handoff_status = Some((ticket.clone(), status.clone()));
            }
            Effect::RelayToAgent { ticket, text } => agent_rows.push(OutboxRow::Relay {
                ticket: ticket.clone(),
                text: agents.text(registry::AGENT_NOTE_FROM_PERSON, &[("text", json!(text))]),
            }),
            Effect::NotifyAgents { ticket, reply } => {
                let rendered = agents.reply(reply).text;
                commit.transcript.push(TranscriptEntry {
                    at: ctx.now,
                    direction: Direction::System,
                    author: None,
                    message_id: Some(reply.message_id.clone()),
                    text: rendered.clone(),
                });
                agent_rows.push(OutboxRow::AgentNote {
                    ticket: ticket.clone(),
                    text: rendered,
                });
            }
        }
    }
    for reply in &replies {
        commit.transcript.push(TranscriptEntry {
            at: ctx.now,
            direction: Direction::Bot,
            author: None,
            message_id: Some(reply.message_id.clone()),
            text: reply.text.clone(),
        });
    }
    // The transcript posted at close includes this input's own lines.
    for effect in &step.effects {
        if let Effect::HandoffStatus { ticket, status } = effect {
            if status == "closed" {
                let lines: Vec<TranscriptEntry> = ctx
                    .stored_transcript
                    .iter()
                    .chain(commit.transcript.iter())
                    .cloned()
                    .collect();
                let title = agents.text(
                    registry::HANDOFF_TRANSCRIPT_TITLE,
                    &[("ticket", json!(ticket))],
                );
                agent_rows.push(OutboxRow::Transcript {
                    ticket: ticket.clone(),
                    text: crate::handoff::transcript::for_agents(&title, &lines, ctx.time_zone),
                });
            }
        }
    }
    let mut rows = Vec::new();
    if !replies.is_empty() {
        rows.push(OutboxRow::Replies { replies });
    }
    rows.extend(agent_rows);
    commit.outbox = rows
        .iter()
        .map(|row| (record.channel.clone(), row.to_payload()))
        .collect();
    Plan {
        commit,
        state,
        rows,
        handoff,
    }
}

/// The transcript line for what the person (or an agent) sent; none for
/// timers and the greeting.
fn person_transcript_line(
    flow: &CompiledFlow,
    state: &State,
    input: &Input,
    now: DateTime<Utc>,
    person: &Renderer<'_>,
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
                .map(|c| person.text(&c.label, &[]))
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
        Input::Start | Input::Resume | Input::Timer { .. } | Input::Agent(_) => return None,
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
