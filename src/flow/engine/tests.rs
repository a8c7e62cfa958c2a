//! Unit tests of the pure engine against the repository's own flow
//! (`flows/mfa-phone.toml`) and locales: fixed timestamps, no I/O besides
//! loading the content once.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::content::testing::{config, content};
use crate::flow::model::Verdict;
use crate::flow::state::{Finding, Mode, State};
use crate::i18n::registry;

const CONVERSATION: &str = "conv-0001-engine";
/// The first 8 characters of [`CONVERSATION`] (the ticket prefix).
const TICKET_PREFIX: &str = "conv-000";

fn flow() -> &'static CompiledFlow {
    &content().flow
}

fn settings() -> EngineSettings {
    config().engine_settings().expect("default engine settings")
}

/// 2026-11-25 10:00 JST (a Wednesday).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
        .single()
        .expect("fixed time")
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn run(state: State, input: Input, now: DateTime<Utc>) -> Step {
    step(flow(), state, input, now, &settings())
}

/// A conversation greeted at `t0` and waiting at the start node.
fn started() -> State {
    let fresh = State::fresh(CONVERSATION, &flow().flow.flow.start, t0());
    run(fresh, Input::Start, t0()).state
}

/// The state after `inputs`, one a minute from `t0`, starting from
/// [`started`].
fn walk(inputs: &[Input]) -> State {
    inputs
        .iter()
        .enumerate()
        .fold(started(), |state, (i, input)| {
            run(state, input.clone(), at(i as i64 + 1)).state
        })
}

fn choice(id: &str) -> Input {
    Input::Choice(id.to_string())
}

fn text(text: &str) -> Input {
    Input::Text(text.to_string())
}

fn ids(step: &Step) -> Vec<&str> {
    step.replies.iter().map(|r| r.message_id.as_str()).collect()
}

fn choice_ids(reply: &Reply) -> Vec<&str> {
    reply.choices.iter().map(|c| c.id.as_str()).collect()
}

fn last_choices(step: &Step) -> Vec<&str> {
    step.replies.last().map(choice_ids).unwrap_or_default()
}

/// The choice ids of a node of the flow, in order.
fn node_choices(node: &str) -> Vec<&'static str> {
    flow()
        .flow
        .node(node)
        .unwrap_or_else(|| panic!("node {node} in the flow"))
        .choices
        .iter()
        .map(|c| c.id.as_str())
        .collect()
}

fn sato() -> AgentRef {
    AgentRef {
        id: "agent-sato".into(),
        name: "佐藤".into(),
    }
}

fn suzuki() -> AgentRef {
    AgentRef {
        id: "agent-suzuki".into(),
        name: "鈴木".into(),
    }
}

/// Queued for an agent after pressing "talk to a person" at the start
/// (turn 1); returns the state and its ticket.
fn queued() -> (State, String) {
    let state = walk(&[choice("start-human")]);
    let ticket = format!("{TICKET_PREFIX}-1");
    assert_eq!(
        state.mode,
        Mode::Queued {
            ticket: ticket.clone()
        }
    );
    (state, ticket)
}

/// Claimed by 佐藤.
fn claimed() -> (State, String) {
    let (state, ticket) = queued();
    let step = run(state, Input::Agent(AgentAction::Claim(sato())), at(5));
    (step.state, ticket)
}

fn note(ticket: &str, id: &str, args: &[(&str, Value)]) -> Effect {
    Effect::NotifyAgents {
        ticket: ticket.to_string(),
        reply: Reply {
            message_id: id.to_string(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            choices: Vec::new(),
        },
    }
}

fn status(ticket: &str, status: &str) -> Effect {
    Effect::HandoffStatus {
        ticket: ticket.to_string(),
        status: status.to_string(),
    }
}

#[test]
fn start_greets_and_waits_at_the_start_node_with_its_choices() {
    let fresh = State::fresh(CONVERSATION, "start", t0());
    let step = run(fresh, Input::Start, t0());
    assert_eq!(ids(&step), ["greeting", "start-question"]);
    assert!(
        step.replies[0].choices.is_empty(),
        "buttons go on the last reply"
    );
    assert_eq!(last_choices(&step), node_choices("start"));
    assert!(last_choices(&step).contains(&"start-human"));
    assert_eq!(step.state.node, "start");
    assert_eq!(step.state.mode, Mode::Bot);
    assert_eq!(step.state.id, CONVERSATION);
    assert_eq!(step.state.turn, 0);
    assert!(step.effects.is_empty(), "{:?}", step.effects);
    assert_eq!(super::expects(flow(), &step.state), "choice");
}

#[test]
fn a_start_choice_moves_to_its_target_node() {
    let before = started();
    let step = run(before, choice("start-check-number"), at(1));
    assert_eq!(step.state.node, "case-d-number");
    assert_eq!(ids(&step), ["case-d-explain", "case-d-ask-number"]);
    assert_eq!(last_choices(&step), ["d-skip"]);
    assert_eq!(step.state.turn, 1);
    assert_eq!(step.state.last_input_at, at(1));
    assert!(step.state.findings.is_empty(), "the start node has no case");
    assert_eq!(super::expects(flow(), &step.state), "phone_number");
    assert_eq!(
        super::current_case(flow(), &step.state).as_deref(),
        Some("D")
    );
}

#[test]
fn choices_record_findings_and_set_slots() {
    // "Changed carrier" at the start is the answer to "MNP?": not asked again.
    let state = walk(&[choice("start-changed-carrier")]);
    assert_eq!(state.node, "case-c-fix");
    // Typed, it asks (and "yes" records the finding).
    let state = walk(&[choice("start-no-call"), choice("a-count-few")]);
    assert_eq!(state.node, "case-b-check");
    let state = run(state, choice("b-not-applicable"), at(1)).state;
    assert_eq!(state.node, "case-c-check");
    let state = State {
        findings: Vec::new(),
        ..state
    };

    let step = run(state, choice("c-yes"), at(2));
    assert_eq!(step.state.node, "case-c-fix");
    assert_eq!(
        step.state.findings,
        [Finding {
            case: "C".into(),
            verdict: Verdict::RuledIn,
            node: "case-c-check".into(),
            answer: "choice-c-yes".into(),
            at: at(2),
        }]
    );

    let step = run(step.state, choice("c-fix-authenticator"), at(3));
    assert_eq!(step.state.node, "csat");
    assert_eq!(step.state.findings.len(), 2);
    assert_eq!(step.state.findings[1].verdict, Verdict::Fixed);
    assert_eq!(ids(&step), ["solved-glad", "csat-question"]);

    let step = run(step.state, choice("csat-yes"), at(4));
    assert_eq!(step.state.node, "end-thanks");
    assert_eq!(step.state.mode, Mode::Closed);
    assert_eq!(step.state.slots.get("csat_helpful"), Some(&json!(true)));
    assert_eq!(ids(&step), ["closing-thanks"]);
    assert_eq!(
        step.effects,
        [Effect::CancelTimers {
            kind: LOCKOUT_TIMER.into()
        }]
    );
}

#[test]
fn a_stale_choice_is_answered_and_does_not_move() {
    let before = started();
    let step = run(before.clone(), choice("c-yes"), at(1));
    assert_eq!(ids(&step), ["choice-stale", "start-question"]);
    assert_eq!(
        step.replies[0].message_id,
        flow().flow.flow.messages.stale_choice
    );
    assert_eq!(last_choices(&step), node_choices("start"));
    assert!(step.effects.is_empty());
    // Only the bookkeeping of an input changed.
    let mut expected = before;
    expected.turn += 1;
    expected.last_input_at = at(1);
    assert_eq!(step.state, expected);
}

#[test]
fn a_numbered_answer_picks_the_offered_choice() {
    let before = started();
    let second = node_choices("start")[1];
    let pressed = run(before.clone(), choice(second), at(1));
    assert_eq!(pressed.state.node, "case-a-count");
    for typed in ["2", "２", "(2)", "2."] {
        let step = run(before.clone(), text(typed), at(1));
        assert_eq!(step, pressed, "typed {typed:?}");
    }
    // A number beyond the offered choices is not a choice.
    let step = run(before, text("8"), at(1));
    assert_eq!(step.state.node, "start");
}

#[test]
fn empty_text_is_answered_with_a_reprompt() {
    let before = started();
    for typed in ["", "   ", "\u{200B}\n"] {
        let step = run(before.clone(), text(typed), at(1));
        assert_eq!(ids(&step), ["input-empty", "start-question"], "{typed:?}");
        assert_eq!(last_choices(&step), node_choices("start"));
        assert_eq!(step.state.node, "start");
        assert_eq!(step.state.misunderstood, 0);
    }
}

#[test]
fn over_long_text_is_answered_with_a_reprompt() {
    let max = settings().max_input_chars;
    let long = "あ".repeat(max + 1);

    let step = run(started(), text(&long), at(1));
    assert_eq!(ids(&step), ["input-too-long", "start-question"]);
    assert_eq!(step.replies[0].args.get("max"), Some(&json!(max)));
    assert_eq!(step.state.node, "start");

    // At a collect node too, without trying the validator.
    let state = walk(&[choice("start-check-number")]);
    let step = run(state, text(&long), at(2));
    assert_eq!(ids(&step), ["input-too-long", "case-d-ask-number"]);
    assert_eq!(last_choices(&step), ["d-skip"]);
    assert_eq!(step.state.node, "case-d-number");
    assert!(!step.state.slots.contains_key("phone"));

    // Exactly the limit is not too long.
    let step = run(started(), text(&"あ".repeat(max)), at(1));
    assert!(!ids(&step).contains(&"input-too-long"), "{:?}", ids(&step));
}

#[test]
fn a_typed_phone_number_is_analysed_into_the_phone_slot() {
    let state = walk(&[choice("start-check-number")]);
    let step = run(state.clone(), text("+81 090-1234-5678"), at(2));
    let phone = step.state.slots.get("phone").expect("phone slot");
    assert_eq!(phone["e164"], json!("+819012345678"));
    assert_eq!(phone["input"], json!("+81 090-1234-5678"));
    assert_eq!(phone["problems"], json!(["leading_zero"]));
    assert_eq!(phone["line_type"], json!("mobile"));
    // The branch sends a trunk-zero mistake to its explanation, then asks
    // whether the person can still sign in to fix it.
    assert_eq!(step.state.node, "case-d-can-sign-in");
    assert_eq!(
        ids(&step),
        [
            "case-d-leading-zero",
            "security-info-needs-sign-in",
            "security-info-can-sign-in-question"
        ]
    );
    assert_eq!(
        step.replies[0].args.get("display"),
        Some(&phone["display"].clone())
    );
    assert_eq!(
        step.state
            .findings
            .last()
            .map(|f| (f.case.as_str(), f.verdict)),
        Some(("D", Verdict::RuledIn))
    );

    // A well-formed number has no problem and goes elsewhere.
    let step = run(state.clone(), text("+81 90-1234-5678"), at(2));
    assert_eq!(step.state.slots["phone"]["problems"], json!([]));
    assert_eq!(step.state.node, "case-d-looks-right");

    // Something that is no number is refused at the same node, and the slot
    // shows what was typed and why it is refused.
    let step = run(state, text("12"), at(2));
    assert_eq!(step.replies[0].message_id, "invalid-phone-number");
    assert_eq!(ids(&step).last(), Some(&"case-d-ask-number"));
    assert_eq!(step.state.node, "case-d-number");
    assert_eq!(step.state.slots["phone"]["input"], json!("12"));
    assert!(!step.state.slots["phone"]["problems"]
        .as_array()
        .expect("problems")
        .is_empty());
}

#[test]
fn reaching_the_handoff_node_queues_with_a_ticket() {
    let before = started();
    let step = run(before, choice("start-human"), at(1));
    let ticket = format!("{TICKET_PREFIX}-1");
    assert_eq!(
        step.state.mode,
        Mode::Queued {
            ticket: ticket.clone()
        }
    );
    assert_eq!(step.state.node, flow().flow.flow.handoff);
    assert_eq!(ids(&step), ["handoff-queued"]);
    assert_eq!(
        step.effects,
        [Effect::OpenHandoff {
            ticket: ticket.clone(),
            reason: HandoffReason::Requested,
        }]
    );
    assert_eq!(step.state.slots.get(LAST_TICKET_SLOT), Some(&json!(ticket)));
    assert!(
        !step.state.slots.contains_key(HANDOFF_REASON_SLOT),
        "the reason marker is consumed"
    );
    assert_eq!(super::expects(flow(), &step.state), "text");
}

#[test]
fn an_exhausted_checklist_queues_as_unresolved() {
    // Every cause looked at (B–E ruled out), then F: "it's a mobile".
    let mut state = walk(&[choice("start-landline")]);
    assert_eq!(
        state.node, "case-f-slot",
        "a landline is not asked about again"
    );
    state.node = "case-f-check".into();
    state.slots.insert(
        CHECKED_SLOT.into(),
        json!({"B": "ruled_out", "C": "ruled_out", "D": "ruled_out", "E": "ruled_out"}),
    );
    let step = run(state, choice("f-mobile"), at(2));
    let ticket = format!("{TICKET_PREFIX}-2");
    assert_eq!(
        step.effects,
        [Effect::OpenHandoff {
            ticket: ticket.clone(),
            reason: HandoffReason::Unresolved,
        }]
    );
    assert_eq!(step.state.mode, Mode::Queued { ticket });
    assert_eq!(
        step.state
            .findings
            .last()
            .map(|f| (f.case.as_str(), f.verdict)),
        Some(("F", Verdict::RuledOut))
    );
}

#[test]
fn text_while_queued_is_relayed_masked_and_acknowledged() {
    let (state, ticket) = queued();
    let step = run(state.clone(), text("携帯は 090-1234-5678 です"), at(3));
    assert_eq!(step.state.mode, state.mode);
    assert_eq!(ids(&step), ["queued-ack"]);
    match step.effects.as_slice() {
        [Effect::RelayToAgent { ticket: t, text }] => {
            assert_eq!(t, &ticket);
            assert!(text.contains("090-****-5678"), "{text}");
            assert!(!text.contains("1234"), "{text}");
        }
        other => panic!("expected one relay, got {other:?}"),
    }
}

#[test]
fn an_agent_claims_a_queued_conversation() {
    let (state, ticket) = queued();
    let step = run(
        state.clone(),
        Input::Agent(AgentAction::Claim(sato())),
        at(5),
    );
    assert_eq!(
        step.state.mode,
        Mode::WithAgent {
            ticket: ticket.clone(),
            agent: "agent-sato".into(),
            agent_name: "佐藤".into(),
        }
    );
    assert_eq!(ids(&step), [registry::HANDOFF_CLAIMED]);
    assert_eq!(step.replies[0].args.get("agent"), Some(&json!("佐藤")));
    assert_eq!(
        step.effects,
        [
            note(
                &ticket,
                registry::AGENT_NOTE_CLAIMED,
                &[("agent", json!("佐藤"))]
            ),
            status(&ticket, "claimed"),
        ]
    );
    assert_eq!(step.state.turn, state.turn, "agent actions are not turns");

    // Claiming twice is harmless.
    let again = run(
        step.state.clone(),
        Input::Agent(AgentAction::Claim(sato())),
        at(6),
    );
    assert_eq!(again.state, step.state);
    assert!(again.replies.is_empty() && again.effects.is_empty());
}

#[test]
fn only_the_holder_acts_on_a_claimed_conversation() {
    let (state, ticket) = claimed();
    let refused_note = note(
        &ticket,
        registry::AGENT_NOTE_NOT_HOLDER,
        &[("holder", json!("佐藤"))],
    );
    for action in [
        // A second agent's claim does not take the conversation over.
        AgentAction::Claim(suzuki()),
        AgentAction::Say {
            agent: suzuki(),
            text: "こんにちは".into(),
        },
        AgentAction::Close { agent: suzuki() },
        AgentAction::Release {
            agent: suzuki(),
            node: None,
        },
        AgentAction::Transfer {
            agent: suzuki(),
            to: suzuki(),
        },
    ] {
        let step = run(state.clone(), Input::Agent(action.clone()), at(6));
        assert_eq!(step.state, state, "{action:?}");
        assert!(step.replies.is_empty(), "{action:?}");
        assert_eq!(
            step.effects,
            std::slice::from_ref(&refused_note),
            "{action:?}"
        );
    }

    // The holder speaks to the person.
    let step = run(
        state.clone(),
        Input::Agent(AgentAction::Say {
            agent: sato(),
            text: " 確認します ".into(),
        }),
        at(6),
    );
    assert_eq!(step.state, state);
    assert_eq!(ids(&step), [registry::AGENT_MESSAGE]);
    assert_eq!(step.replies[0].args.get("text"), Some(&json!("確認します")));
    assert!(step.effects.is_empty());
}

#[test]
fn speaking_before_a_claim_is_refused() {
    let (state, ticket) = queued();
    let step = run(
        state.clone(),
        Input::Agent(AgentAction::Say {
            agent: sato(),
            text: "hello".into(),
        }),
        at(4),
    );
    assert_eq!(step.state, state);
    assert!(step.replies.is_empty());
    assert_eq!(
        step.effects,
        [note(
            &ticket,
            registry::AGENT_NOTE_NOT_QUEUED,
            &[("status", json!("queued"))]
        )]
    );
}

#[test]
fn a_release_returns_to_the_bot_at_the_named_node() {
    let (state, ticket) = claimed();
    let step = run(
        state,
        Input::Agent(AgentAction::Release {
            agent: sato(),
            node: Some("case-e-check".into()),
        }),
        at(7),
    );
    assert_eq!(step.state.mode, Mode::Bot);
    assert_eq!(step.state.node, "case-e-check");
    assert_eq!(ids(&step), [registry::HANDOFF_RELEASED, "case-e-question"]);
    assert_eq!(last_choices(&step), node_choices("case-e-check"));
    assert_eq!(
        step.effects,
        [
            note(
                &ticket,
                registry::AGENT_NOTE_RELEASED,
                &[("agent", json!("佐藤")), ("node", json!("case-e-check"))]
            ),
            status(&ticket, "released"),
        ]
    );
    assert_eq!(step.state.slots.get(LAST_TICKET_SLOT), Some(&json!(ticket)));
}

#[test]
fn a_release_to_an_unusable_node_is_refused() {
    let (state, ticket) = claimed();
    for node in ["no-such-node", "handoff"] {
        let step = run(
            state.clone(),
            Input::Agent(AgentAction::Release {
                agent: sato(),
                node: Some(node.into()),
            }),
            at(7),
        );
        assert_eq!(step.state, state, "{node}");
        assert!(step.replies.is_empty());
        assert_eq!(
            step.effects,
            [note(
                &ticket,
                registry::AGENT_NOTE_UNKNOWN_NODE,
                &[("node", json!(node))]
            )]
        );
    }
}

#[test]
fn a_close_ends_the_ticket_and_asks_for_satisfaction() {
    let (state, ticket) = claimed();
    let step = run(
        state,
        Input::Agent(AgentAction::Close { agent: sato() }),
        at(8),
    );
    assert_eq!(
        step.effects,
        [
            note(
                &ticket,
                registry::AGENT_NOTE_CLOSED,
                &[("agent", json!("佐藤"))]
            ),
            status(&ticket, "closed"),
        ]
    );
    assert_eq!(step.state.mode, Mode::Bot);
    assert_eq!(step.state.node, flow().flow.flow.solved);
    assert_eq!(ids(&step), ["solved-glad", "csat-question"]);
    assert_eq!(last_choices(&step), node_choices("csat"));

    // A late action on the closed ticket is only a note.
    let late = run(
        step.state.clone(),
        Input::Agent(AgentAction::Claim(suzuki())),
        at(9),
    );
    assert_eq!(late.state, step.state);
    assert!(late.replies.is_empty());
    assert_eq!(
        late.effects,
        [note(
            &ticket,
            registry::AGENT_NOTE_NOT_QUEUED,
            &[("status", json!("bot"))]
        )]
    );
}

#[test]
fn resume_repeats_the_pending_prompt_and_changes_nothing() {
    let state = walk(&[choice("start-check-number")]);
    let step = run(state.clone(), Input::Resume, at(30));
    assert_eq!(step.state, state);
    assert_eq!(ids(&step), ["case-d-ask-number"]);
    assert_eq!(last_choices(&step), ["d-skip"]);
    assert!(step.effects.is_empty());
    assert_eq!(step.replies, pending_prompt(flow(), &state));

    let (state, _) = queued();
    let step = run(state.clone(), Input::Resume, at(30));
    assert_eq!(step.state, state);
    assert_eq!(ids(&step), ["queued-ack"]);

    let (state, _) = claimed();
    let step = run(state.clone(), Input::Resume, at(30));
    assert_eq!(step.state, state);
    assert!(step.replies.is_empty());
}

/// Case A up to the wait: 5+ attempts, the last one 30 minutes ago.
fn waiting_after_lockout() -> Step {
    let state = walk(&[choice("start-locked"), choice("a-count-many")]);
    assert_eq!(state.node, "case-a-when");
    run(state, choice("a-when-30m"), at(3))
}

#[test]
fn case_a_schedules_the_lockout_reminder() {
    let step = waiting_after_lockout();
    assert_eq!(step.state.node, "case-a-wait");
    let due = at(3) - Duration::minutes(30) + settings().lockout_wait;
    let scheduled: Vec<_> = step
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleTimer { kind, due_at, .. } => Some((kind.as_str(), *due_at)),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, [(LOCKOUT_TIMER, due)]);
    assert_eq!(step.state.slots["lockout"]["wait_over"], json!(false));
}

#[test]
fn the_lockout_timer_reminds_unless_closed() {
    let waiting = waiting_after_lockout();
    let payload = waiting
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::ScheduleTimer { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .expect("a scheduled reminder");
    let timer = Input::Timer {
        kind: LOCKOUT_TIMER.into(),
        payload: payload.clone(),
    };

    // Still waiting at case A: the reminder asks how the retry went.
    let step = run(waiting.state.clone(), timer.clone(), at(160));
    assert_eq!(
        ids(&step)[0],
        flow().flow.flow.messages.timer_reminder.as_str()
    );
    assert_eq!(
        ids(&step),
        ["reminder-lockout-over", "case-a-after-wait-question"]
    );
    assert_eq!(step.state.node, "case-a-reminded");
    assert_eq!(
        step.replies[0].args.get("retry_at"),
        payload.get("retry_at_local")
    );
    assert_eq!(step.state.slots["lockout"]["wait_over"], json!(true));
    assert_eq!(step.state.slots["lockout"]["reminded"], json!(true));
    assert!(step.effects.is_empty());

    // Elsewhere (checking other causes meanwhile) it is only said.
    let elsewhere = run(waiting.state.clone(), choice("a-wait-check-others"), at(20)).state;
    assert_eq!(elsewhere.node, "case-b-check");
    let step = run(elsewhere.clone(), timer.clone(), at(160));
    assert_eq!(ids(&step), ["reminder-lockout-over"]);
    assert_eq!(step.state.node, "case-b-check");

    // Closed: nothing is said, nothing changes.
    let mut closed = waiting.state.clone();
    closed.mode = Mode::Closed;
    let step = run(closed.clone(), timer, at(160));
    assert!(step.replies.is_empty());
    assert!(step.effects.is_empty());
    assert_eq!(step.state, closed);

    // A timer of another kind is ignored.
    let step = run(
        waiting.state.clone(),
        Input::Timer {
            kind: "other".into(),
            payload,
        },
        at(160),
    );
    assert!(step.replies.is_empty());
    assert_eq!(step.state, waiting.state);
}

#[test]
fn an_idle_session_expires_back_to_the_start() {
    let state = walk(&[choice("start-check-number")]);
    let late = at(1) + settings().session_expiry + Duration::minutes(1);
    let step = run(state, text("+81 90-1234-5678"), late);
    assert_eq!(
        ids(&step),
        ["session-expired", "greeting", "start-question"]
    );
    assert_eq!(step.state.node, "start");
    assert!(
        !step.state.slots.contains_key("phone"),
        "the expired input is not used"
    );
    assert!(step.effects.contains(&Effect::CancelTimers {
        kind: LOCKOUT_TIMER.into()
    }));
    assert_eq!(step.state.turn, 2, "the turn count survives");
    assert_eq!(step.state.started_at, t0());
}

#[test]
fn stepping_is_deterministic() {
    let (queued_state, _) = queued();
    let (claimed_state, _) = claimed();
    let cases = [
        (State::fresh(CONVERSATION, "start", t0()), Input::Start),
        (
            State::fresh(CONVERSATION, "start", t0()),
            Input::Open("MNPで携帯会社を変えたばかりです".into()),
        ),
        (started(), text("先月キャリアを変えた")),
        (started(), text("なんとなく")),
        (started(), choice("start-locked")),
        (walk(&[choice("start-check-number")]), text("090 1234 5678")),
        (waiting_after_lockout().state, choice("a-wait-later")),
        (queued_state, text("まだですか 09012345678")),
        (
            claimed_state,
            Input::Agent(AgentAction::Close { agent: sato() }),
        ),
    ];
    for (state, input) in cases {
        let first = run(state.clone(), input.clone(), at(10));
        let second = run(state, input.clone(), at(10));
        assert_eq!(first, second, "{input:?}");
    }
}

// ---- Slots set by choices, counted by nodes, kept over a new start, read
// ---- as message arguments (the benchmark peer's dialog, benches/peer).

/// A small flow: a yes/no question whose choices set `answer`, a result
/// node that counts `rounds` (kept over a new start) and says both.
const COUNTING_FLOW: &str = r#"
[flow]
id = "counting"
start = "question"
handoff = "handoff"
solved = "done"
keep = ["rounds"]

[flow.messages]
empty_input = "m"
too_long = "m"
not_understood = "m"
stale_choice = "m"
clarify = "m"
clarify_none = "m"
session_expired = "m"
queued_ack = "m"
closed_reopen = "reopen"
timer_reminder = "m"
offer_human = "m"

[nodes.question]
kind = "ask"
say = ["question"]
choices = [
  { id = "yes", label = "yes", goto = "result", set = { answer = "yes" } },
  { id = "no", label = "no", goto = "result", set = { answer = "no" } },
]

[nodes.result]
kind = "ask"
count = ["rounds"]
say = [{ id = "result", args = { n = "rounds", answer = "answer" } }]
choices = [
  { id = "again", label = "again", goto = "question" },
  { id = "stop", label = "stop", goto = "done" },
]

[nodes.done]
kind = "end"

[nodes.handoff]
kind = "handoff"
"#;

fn counting_flow() -> CompiledFlow {
    let flow = crate::flow::model::Flow::from_toml(
        COUNTING_FLOW,
        std::path::Path::new("flows/counting.toml"),
    )
    .expect("parses");
    assert_eq!(crate::flow::check::check_flow(&flow), Vec::<String>::new());
    CompiledFlow::new(flow, &|_| Vec::new()).expect("compiles")
}

#[test]
fn a_node_counts_its_slot_up_each_time_it_is_entered_and_says_it() {
    let flow = counting_flow();
    let mut state = State::fresh(CONVERSATION, "question", t0());
    state = step(&flow, state, Input::Start, t0(), &settings()).state;
    for (round, answer) in [(1, "yes"), (2, "no"), (3, "yes")] {
        let answered = step(&flow, state, choice(answer), at(round), &settings());
        assert_eq!(answered.state.node, "result");
        assert_eq!(answered.replies.len(), 1, "{:?}", answered.replies);
        let reply = &answered.replies[0];
        assert_eq!(reply.message_id, "result");
        assert_eq!(reply.args["n"], json!(round));
        assert_eq!(reply.args["answer"], json!(answer));
        state = step(
            &flow,
            answered.state,
            choice("again"),
            at(round),
            &settings(),
        )
        .state;
        assert_eq!(state.node, "question");
    }
}

#[test]
fn kept_slots_outlive_a_new_start_and_the_others_do_not() {
    let flow = counting_flow();
    let mut state = State::fresh(CONVERSATION, "question", t0());
    state = step(&flow, state, Input::Start, t0(), &settings()).state;
    state = step(&flow, state, choice("yes"), at(1), &settings()).state;
    state = step(&flow, state, choice("stop"), at(2), &settings()).state;
    assert_eq!(state.mode, Mode::Closed);
    // A message after the close starts over: `rounds` is kept, `answer`
    // is not.
    let reopened = step(&flow, state, text("もう一度"), at(3), &settings());
    assert_eq!(ids(&reopened), ["reopen", "question"]);
    assert_eq!(reopened.state.slots.get("rounds"), Some(&json!(1)));
    assert_eq!(reopened.state.slots.get("answer"), None);
    let again = step(&flow, reopened.state, choice("no"), at(4), &settings());
    assert_eq!(again.replies[0].args["n"], json!(2));
}

/// The benchmark peer's dialog (benches/peer) as the harness drives it:
/// typed 「診断」 and はい/いいえ, one reply per input, the summary with
/// the answers in order and the round counted per conversation.
#[test]
fn the_benchmark_peer_flow_answers_each_input_once_with_the_peer_summary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    let mut config = config();
    config.general.flows_dir = root.join("flows");
    config.general.locales_dir = root.join("locales");
    config.general.flow = "peer".into();
    let content = match crate::content::load(&config) {
        Ok(content) => content,
        Err(problems) => panic!("benches/peer does not load: {problems:#?}"),
    };
    let flow = &content.flow;
    let render = |step: &Step| -> Vec<String> {
        step.replies
            .iter()
            .map(|r| content.catalog.format("ja", &r.message_id, &r.args))
            .collect()
    };
    let mut state = State::fresh(CONVERSATION, &flow.flow.flow.start, t0());
    let greeted = step(flow, state, Input::Start, t0(), &settings());
    assert_eq!(greeted.replies.len(), 1);
    state = greeted.state;
    let mut minute = 0;
    for (round, answers) in [
        ["はい", "いいえ", "はい", "いいえ", "はい", "いいえ"],
        ["いいえ", "いいえ", "はい", "はい", "いいえ", "はい"],
    ]
    .iter()
    .enumerate()
    {
        minute += 1;
        let asked = step(flow, state, text("診断"), at(minute), &settings());
        assert_eq!(render(&asked), ["Q1. 5分間に5回以上試しましたか？"]);
        state = asked.state;
        for (i, answer) in answers.iter().enumerate() {
            minute += 1;
            let answered = step(flow, state, text(answer), at(minute), &settings());
            let said = render(&answered);
            assert_eq!(said.len(), 1, "{said:?}");
            if i < 5 {
                assert!(said[0].starts_with(&format!("Q{}. ", i + 2)), "{said:?}");
            } else {
                assert_eq!(
                    said[0],
                    format!("診断結果({}回目): {}", round + 1, answers.join(","))
                );
            }
            state = answered.state;
        }
    }
}

#[test]
fn a_queued_person_restarts_by_naming_it_and_a_description_is_relayed() {
    // "リスタート" shares nothing with the restart examples; the word
    // alone asks for it.
    let (state, ticket) = queued();
    let step = run(state.clone(), Input::Text("リスタート".into()), at(2));
    assert_eq!(step.state.mode, Mode::Bot);
    assert!(step.effects.contains(&Effect::CancelHandoff {
        ticket: ticket.clone()
    }));
    // Describing a restart already done is passed on to the agents.
    let step = run(
        state,
        Input::Text("さっき最初からやり直しました".into()),
        at(2),
    );
    assert_eq!(step.state.mode, Mode::Queued { ticket });
}
