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
    let locale = record.locale.clone();
    let person = Renderer {
        catalog: ctx.catalog,
        locale: &locale,
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
    let id = record.id.clone();
    let channel = record.channel.clone();
    let mut commit = Commit::new(record, expected_version);
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
                id: format!("{}-{}-{}", id, kind, state.turn),
                conversation_id: id.clone(),
                kind: kind.clone(),
                due_at: *due_at,
                payload: payload.clone(),
            }),
            Effect::CancelTimers { kind } => commit.cancel_timer_kinds.push(kind.clone()),
            Effect::OpenHandoff { ticket, reason } => {
                let opened = HandoffRecord {
                    ticket: ticket.clone(),
                    conversation_id: id.clone(),
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
        .map(|row| (channel.clone(), row.to_payload()))
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
            // Masked before cutting, so a number cut in half is never shown.
            let masked = text::mask_phone_numbers(&line.text);
            let shown = text::truncate_chars(&masked, 300).to_string();
            format!("{who} {shown}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::content::testing::{config, content};
    use crate::flow::engine::{self, AgentRef};
    use crate::flow::state::Mode;

    const CONVERSATION: &str = "conv-0002-plan";

    fn flow() -> &'static CompiledFlow {
        &content().flow
    }

    fn catalog() -> &'static Catalog {
        &content().catalog
    }

    fn jst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("fixed time")
            .with_timezone(&Utc)
    }

    /// 2026-11-25 10:00 JST, a Wednesday, inside business hours.
    fn t0() -> DateTime<Utc> {
        jst(2026, 11, 25, 10, 0)
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(minutes)
    }

    fn engine_step(state: &State, input: &Input, now: DateTime<Utc>) -> Step {
        let settings = config().engine_settings().expect("engine settings");
        engine::step(flow(), state.clone(), input.clone(), now, &settings)
    }

    /// Greeted and waiting at the start node.
    fn started() -> State {
        let fresh = State::fresh(CONVERSATION, &flow().flow.flow.start, t0());
        engine_step(&fresh, &Input::Start, t0()).state
    }

    fn after(state: State, inputs: &[Input]) -> State {
        inputs
            .iter()
            .fold(state, |state, input| engine_step(&state, input, t0()).state)
    }

    fn sato() -> AgentRef {
        AgentRef {
            id: "agent-sato".into(),
            name: "佐藤".into(),
        }
    }

    fn record(state: &State) -> ConversationRecord {
        ConversationRecord {
            id: CONVERSATION.into(),
            channel: "console".into(),
            user_key: "person-1".into(),
            locale: "ja".into(),
            state: serde_json::to_value(state).expect("state serialises"),
            version: 3,
            created_at: t0(),
            updated_at: t0(),
            address: None,
        }
    }

    fn line(direction: Direction, text: &str) -> TranscriptEntry {
        TranscriptEntry {
            at: t0() - Duration::minutes(5),
            direction,
            author: None,
            message_id: None,
            text: text.into(),
        }
    }

    /// What the desk passes besides the step; tests change what they need.
    struct Context<'a> {
        now: DateTime<Utc>,
        queue_length: i64,
        stored: &'a [TranscriptEntry],
        hours: Option<&'a BusinessHours>,
    }

    impl Default for Context<'_> {
        fn default() -> Self {
            Context {
                now: at(1),
                queue_length: 0,
                stored: &[],
                hours: None,
            }
        }
    }

    /// Steps `input` on `state` and plans the commit, as the desk does.
    fn plan_input(state: &State, input: Input, context: Context<'_>) -> (Step, Plan) {
        let step = engine_step(state, &input, context.now);
        let ctx = PlanContext {
            flow: flow(),
            catalog: catalog(),
            agent_locale: "ja",
            time_zone: chrono_tz::Asia::Tokyo,
            business_hours: context.hours,
            now: context.now,
            queue_length: context.queue_length,
            stored_transcript: context.stored,
        };
        let planned = plan(
            PlanInput {
                record: record(state),
                state_before: state,
                input: &input,
                step: step.clone(),
                expected_version: Some(3),
                inbound_key: Some("message-42".into()),
                fired_timer: None,
                reference: None,
            },
            &ctx,
        );
        (step, planned)
    }

    fn replies(plan: &Plan) -> &[RenderedReply] {
        plan.rows
            .iter()
            .find_map(|row| match row {
                OutboxRow::Replies { replies } => Some(replies.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    fn reply_ids(plan: &Plan) -> Vec<&str> {
        replies(plan)
            .iter()
            .map(|r| r.message_id.as_str())
            .collect()
    }

    fn render(id: &str) -> String {
        catalog().format("ja", id, &BTreeMap::new())
    }

    fn claimed() -> (State, String) {
        let state = after(
            started(),
            &[
                Input::Choice("start-human".into()),
                Input::Agent(AgentAction::Claim(sato())),
            ],
        );
        match &state.mode {
            Mode::WithAgent { ticket, .. } => {
                let ticket = ticket.clone();
                (state, ticket)
            }
            other => panic!("expected a claimed conversation, got {other:?}"),
        }
    }

    #[test]
    fn needs_follow_the_effects() {
        let state = started();
        let ordinary = engine_step(&state, &Input::Choice("start-check-number".into()), at(1));
        assert_eq!(Needs::of(&ordinary.effects), Needs::default());

        let opening = engine_step(&state, &Input::Choice("start-human".into()), at(1));
        assert!(matches!(
            opening.effects.as_slice(),
            [Effect::OpenHandoff { .. }]
        ));
        assert_eq!(
            Needs::of(&opening.effects),
            Needs {
                queue_length: true,
                transcript: true,
            }
        );

        let (claimed, _) = claimed();
        let closing = engine_step(
            &claimed,
            &Input::Agent(AgentAction::Close { agent: sato() }),
            at(1),
        );
        assert_eq!(
            Needs::of(&closing.effects),
            Needs {
                queue_length: false,
                transcript: true,
            }
        );
        // Other status changes need nothing.
        let released = engine_step(
            &claimed,
            &Input::Agent(AgentAction::Release {
                agent: sato(),
                node: None,
            }),
            at(1),
        );
        assert!(released
            .effects
            .iter()
            .any(|e| matches!(e, Effect::HandoffStatus { status, .. } if status == "released")));
        assert_eq!(Needs::of(&released.effects), Needs::default());
    }

    #[test]
    fn an_ordinary_step_renders_replies_and_commits_the_new_state() {
        let state = started();
        let (step, planned) = plan_input(
            &state,
            Input::Choice("start-check-number".into()),
            Context::default(),
        );

        assert_eq!(planned.rows.len(), 1, "{:?}", planned.rows);
        let OutboxRow::Replies { replies } = &planned.rows[0] else {
            panic!("expected a replies row, got {:?}", planned.rows[0]);
        };
        let ids: Vec<&str> = replies.iter().map(|r| r.message_id.as_str()).collect();
        assert_eq!(ids, ["case-d-explain", "case-d-ask-number"]);
        for reply in replies {
            assert!(!reply.text.trim().is_empty(), "{reply:?}");
            assert_ne!(reply.text, reply.message_id, "rendered: {reply:?}");
        }
        let buttons = &replies[1].choices;
        assert_eq!(buttons.len(), 1);
        assert_eq!(buttons[0].id, "d-skip");
        assert_eq!(buttons[0].label, render("choice-d-skip"));
        assert_ne!(buttons[0].label, "choice-d-skip");

        // The person's line first, then the bot's, rendered.
        let transcript = &planned.commit.transcript;
        assert_eq!(transcript.len(), 3, "{transcript:?}");
        assert_eq!(transcript[0].direction, Direction::Person);
        assert_eq!(
            transcript[0].text,
            format!(
                "[start-check-number] {}",
                render("choice-start-check-number")
            )
        );
        for (entry, reply) in transcript[1..].iter().zip(replies) {
            assert_eq!(entry.direction, Direction::Bot);
            assert_eq!(entry.message_id.as_deref(), Some(reply.message_id.as_str()));
            assert_eq!(entry.text, reply.text);
            assert_eq!(entry.at, at(1));
        }

        // The outbox holds exactly the typed rows.
        assert_eq!(planned.commit.outbox.len(), planned.rows.len());
        for ((channel, payload), row) in planned.commit.outbox.iter().zip(&planned.rows) {
            assert_eq!(channel, "console");
            assert_eq!(payload, &row.to_payload());
        }

        // The new state, serialised, in the record.
        assert_eq!(planned.state, step.state);
        assert_eq!(planned.state.node, "case-d-number");
        assert_eq!(
            planned.commit.conversation.state,
            serde_json::to_value(&step.state).expect("state serialises")
        );
        assert_eq!(planned.commit.conversation.updated_at, at(1));
        assert_eq!(planned.commit.expected_version, Some(3));
        assert_eq!(planned.commit.inbound_key.as_deref(), Some("message-42"));
        assert!(planned.commit.open_handoff.is_none());
        assert!(planned.commit.handoff_status.is_none());
        assert!(planned.handoff.is_none());
        assert!(planned.commit.new_timers.is_empty());
    }

    #[test]
    fn typed_text_is_the_persons_transcript_line() {
        let state = after(started(), &[Input::Choice("start-check-number".into())]);
        let (_, planned) = plan_input(
            &state,
            Input::Text("  ＋81 90-1234-5678 ".into()),
            Context::default(),
        );
        let transcript = &planned.commit.transcript;
        assert_eq!(transcript[0].direction, Direction::Person);
        assert_eq!(
            transcript[0].text, "+81 90-1234-5678",
            "cleaned (NFKC, trimmed)"
        );
        assert!(transcript[1..]
            .iter()
            .all(|e| e.direction == Direction::Bot));
        assert_eq!(transcript.len(), 1 + replies(&planned).len());
    }

    #[test]
    fn a_lockout_step_schedules_and_cancels_timers() {
        let state = after(
            started(),
            &[
                Input::Choice("start-locked".into()),
                Input::Choice("a-count-many".into()),
            ],
        );
        let (step, planned) = plan_input(
            &state,
            Input::Choice("a-when-30m".into()),
            Context::default(),
        );
        let due = step
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::ScheduleTimer { due_at, .. } => Some(*due_at),
                _ => None,
            })
            .expect("a scheduled reminder");
        assert_eq!(planned.commit.cancel_timer_kinds, ["lockout"]);
        assert_eq!(planned.commit.new_timers.len(), 1);
        let timer = &planned.commit.new_timers[0];
        assert_eq!(timer.kind, "lockout");
        assert_eq!(timer.conversation_id, CONVERSATION);
        assert_eq!(timer.due_at, due);
        assert_eq!(
            timer.id,
            format!("{CONVERSATION}-lockout-{}", step.state.turn)
        );
    }

    #[test]
    fn opening_a_handoff_tells_the_place_and_posts_a_masked_ticket() {
        let state = started();
        let stored = [
            line(Direction::Person, "登録した番号は 09012345678 です"),
            line(Direction::Bot, "ありがとうございます"),
        ];
        let (step, planned) = plan_input(
            &state,
            Input::Choice("start-human".into()),
            Context {
                queue_length: 2,
                stored: &stored,
                ..Context::default()
            },
        );
        let ticket = match &step.state.mode {
            Mode::Queued { ticket } => ticket.clone(),
            other => panic!("expected queued, got {other:?}"),
        };

        assert_eq!(
            reply_ids(&planned),
            ["handoff-queued", registry::HANDOFF_QUEUE_POSITION]
        );
        let position = &replies(&planned)[1].text;
        assert!(
            position.contains('3'),
            "two waiting, this is third: {position}"
        );

        assert_eq!(planned.rows.len(), 2, "{:?}", planned.rows);
        let OutboxRow::Handoff {
            ticket: row_ticket,
            thread_name,
            summary,
            recent_title,
            recent,
            actions,
        } = &planned.rows[1]
        else {
            panic!("expected a handoff row, got {:?}", planned.rows[1]);
        };
        assert_eq!(row_ticket, &ticket);
        assert!(thread_name.contains(&ticket), "{thread_name}");
        assert!(!summary.trim().is_empty());
        assert_eq!(recent_title, &render(registry::HANDOFF_RECENT_TITLE));
        let actions: Vec<&str> = actions.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(actions, ["claim", "close"]);
        // Stored lines, then this input's person line (the bot's lines of
        // this step are not in it: they are added to the transcript later).
        assert_eq!(recent.len(), stored.len() + 1, "{recent:?}");
        let shown = recent.join("\n");
        assert!(shown.contains("****"), "{shown}");
        assert!(!shown.contains("1234"), "numbers masked: {shown}");
        assert!(recent[2].contains("[start-human]"), "{recent:?}");

        let opened = planned.commit.open_handoff.as_ref().expect("open_handoff");
        assert_eq!(opened.ticket, ticket);
        assert_eq!(opened.status, "queued");
        assert_eq!(opened.conversation_id, CONVERSATION);
        assert_eq!(opened.reason, "requested");
        assert_eq!(&opened.summary, summary);
        assert_eq!(opened.created_at, at(1));
        assert_eq!(planned.handoff.as_ref(), Some(opened));
        assert_eq!(planned.commit.outbox.len(), planned.rows.len());
    }

    fn desk_hours() -> BusinessHours {
        config().business_hours().expect("default business hours")
    }

    #[test]
    fn after_hours_a_handoff_says_when_the_desk_opens() {
        let hours = desk_hours();
        // Wednesday 20:00: the desk opens on Thursday at 09:00.
        let evening = jst(2026, 11, 25, 20, 0);
        let opens = hours.next_opening(evening).expect("closed in the evening");
        assert_eq!(opens, jst(2026, 11, 26, 9, 0));
        let (_, planned) = plan_input(
            &started(),
            Input::Choice("start-human".into()),
            Context {
                now: evening,
                hours: Some(&hours),
                ..Context::default()
            },
        );
        assert_eq!(
            reply_ids(&planned),
            [
                "handoff-queued",
                registry::HANDOFF_QUEUE_POSITION,
                registry::HANDOFF_AFTER_HOURS
            ]
        );
        let text = &replies(&planned)[2].text;
        let expected =
            crate::diagnose::lockout::format_local_time(opens, evening, chrono_tz::Asia::Tokyo);
        assert!(text.contains(&expected), "{expected} in {text}");

        // Without business hours, nothing is said about them.
        let (_, planned) = plan_input(
            &started(),
            Input::Choice("start-human".into()),
            Context {
                now: evening,
                hours: None,
                ..Context::default()
            },
        );
        assert!(!reply_ids(&planned).contains(&registry::HANDOFF_AFTER_HOURS));

        // Nor while the desk is open.
        let (_, planned) = plan_input(
            &started(),
            Input::Choice("start-human".into()),
            Context {
                hours: Some(&hours),
                ..Context::default()
            },
        );
        assert!(hours.is_open(at(1)));
        assert!(!reply_ids(&planned).contains(&registry::HANDOFF_AFTER_HOURS));
    }

    #[test]
    fn a_close_posts_the_whole_transcript() {
        let (state, ticket) = claimed();
        let stored = [
            line(Direction::Person, "認証の電話が来ません"),
            line(Direction::Bot, "担当者におつなぎします"),
            line(Direction::Person, "番号は 09012345678 です"),
        ];
        let (step, planned) = plan_input(
            &state,
            Input::Agent(AgentAction::Close { agent: sato() }),
            Context {
                stored: &stored,
                ..Context::default()
            },
        );
        assert!(step.effects.contains(&Effect::HandoffStatus {
            ticket: ticket.clone(),
            status: "closed".into(),
        }));
        assert_eq!(
            planned.commit.handoff_status,
            Some((ticket.clone(), "closed".into()))
        );
        assert!(planned.commit.open_handoff.is_none());

        let kinds: Vec<&str> = planned.rows.iter().map(OutboxRow::kind).collect();
        assert_eq!(kinds, ["replies", "agent_note", "transcript"]);
        let Some(OutboxRow::Transcript {
            ticket: row_ticket,
            text,
        }) = planned.rows.last()
        else {
            panic!("expected a transcript row");
        };
        assert_eq!(row_ticket, &ticket);
        assert!(text.starts_with(&catalog().format(
            "ja",
            registry::HANDOFF_TRANSCRIPT_TITLE,
            &BTreeMap::from([("ticket".to_string(), json!(ticket))]),
        )));
        // The stored lines…
        assert!(text.contains("認証の電話が来ません"), "{text}");
        assert!(text.contains("担当者におつなぎします"), "{text}");
        assert!(text.contains("090****5678"), "{text}");
        assert!(!text.contains("1234"), "{text}");
        // …and this input's own: the closing note and the bot's question.
        let closed_note = catalog().format(
            "ja",
            registry::AGENT_NOTE_CLOSED,
            &BTreeMap::from([("agent".to_string(), json!("佐藤"))]),
        );
        assert!(text.contains(&closed_note), "{closed_note} in {text}");
        for reply in replies(&planned) {
            let first_line = reply.text.lines().next().unwrap_or_default();
            assert!(text.contains(first_line), "{first_line} in {text}");
        }
        assert_eq!(reply_ids(&planned), ["solved-glad", "csat-question"]);
        // Stored lines come first, in order.
        let first = text.find("認証の電話が来ません").expect("stored line");
        let note = text.find(&closed_note).expect("closing note");
        assert!(first < note);
    }
}
