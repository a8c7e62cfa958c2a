//! The summary a support agent reads before answering: which FAQ causes were
//! ruled in or out and by which answer, the phone analysis with the number
//! masked, the lockout times, and why the conversation was handed over.
//!
//! Built as message ids plus arguments (pure, like the engine) and rendered in
//! the agents' locale by the desk, so agents read it in Japanese whatever
//! language the person used.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::flow::engine::{HandoffReason, Reply};
use crate::flow::state::State;
use crate::i18n::registry;

/// One line of the summary: a message id, arguments, and arguments that are
/// themselves message ids to render first (answer labels).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryLine {
    pub reply: Reply,
    /// Argument name -> message id whose rendering is the argument's value.
    pub label_args: BTreeMap<String, String>,
}

fn line(message_id: &str, args: BTreeMap<String, Value>) -> SummaryLine {
    SummaryLine {
        reply: Reply {
            message_id: message_id.to_string(),
            args,
            choices: Vec::new(),
        },
        label_args: BTreeMap::new(),
    }
}

/// Builds the summary of `state` for ticket `ticket`.
pub fn build(state: &State, ticket: &str, reason: HandoffReason) -> Vec<SummaryLine> {
    let mut lines = vec![line(
        registry::SUMMARY_HEADER,
        BTreeMap::from([
            ("ticket".to_string(), json!(ticket)),
            ("reason".to_string(), json!(reason)),
        ]),
    )];
    // A reset request says so first, with the number to register (masked:
    // every staff member reads the summary).
    if reason == HandoffReason::MethodReset {
        let masked = state
            .slots
            .get("phone")
            .and_then(|p| p.get("masked"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        lines.insert(
            0,
            line(
                registry::SUMMARY_METHOD_RESET,
                BTreeMap::from([("masked".to_string(), json!(masked))]),
            ),
        );
    }
    if let Some(codes) = state.slots.get("signin_errors").and_then(Value::as_array) {
        let codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
        if !codes.is_empty() {
            lines.push(line(
                registry::SUMMARY_SIGNIN_ERRORS,
                BTreeMap::from([("codes".to_string(), json!(codes.join(", ")))]),
            ));
        }
    }
    if state.findings.is_empty() {
        lines.push(line(registry::SUMMARY_NO_FINDINGS, BTreeMap::new()));
    }
    for finding in &state.findings {
        let mut summary_line = line(
            registry::SUMMARY_FINDING,
            BTreeMap::from([
                ("case".to_string(), json!(finding.case)),
                ("verdict".to_string(), json!(finding.verdict.as_str())),
            ]),
        );
        let label = if finding.answer.starts_with("rule:") {
            registry::SUMMARY_ANSWER_AUTO.to_string()
        } else {
            finding.answer.clone()
        };
        summary_line.label_args.insert("answer".into(), label);
        lines.push(summary_line);
    }
    if let Some(phone) = state.slots.get("phone") {
        let masked = phone.get("masked").and_then(Value::as_str).unwrap_or("-");
        let line_type = phone
            .get("line_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        lines.push(line(
            registry::SUMMARY_PHONE,
            BTreeMap::from([
                ("masked".to_string(), json!(masked)),
                ("line_type".to_string(), json!(line_type)),
            ]),
        ));
        let problems: Vec<&str> = phone
            .get("problems")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for problem in problems {
            lines.push(line(
                registry::SUMMARY_PHONE_PROBLEM,
                BTreeMap::from([("problem".to_string(), json!(problem))]),
            ));
        }
    }
    if let Some(attempts) = state.slots.get("attempts") {
        let described = match (
            attempts.get("kind").and_then(Value::as_str),
            attempts.get("count"),
        ) {
            (Some("exactly"), Some(n)) => n.to_string(),
            (Some("at_least"), Some(n)) => format!("{n}+"),
            (Some("at_most"), Some(n)) => format!("≤{n}"),
            (Some(kind), _) => kind.to_string(),
            _ => "-".to_string(),
        };
        // What the person said, as they said it (button or typed).
        let described = match attempts.get("input").and_then(Value::as_str) {
            Some(said) if !said.is_empty() => format!("{described}（{said}）"),
            _ => described,
        };
        lines.push(line(
            registry::SUMMARY_ATTEMPTS,
            BTreeMap::from([("attempts".to_string(), json!(described))]),
        ));
    }
    if let Some(lockout) = state.slots.get("lockout") {
        let last = state
            .slots
            .get("last_attempt")
            .and_then(|l| l.get("local"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        let retry = lockout
            .get("retry_at_local")
            .and_then(Value::as_str)
            .unwrap_or("-");
        lines.push(line(
            registry::SUMMARY_LOCKOUT,
            BTreeMap::from([
                ("last_attempt".to_string(), json!(last)),
                ("retry_at".to_string(), json!(retry)),
            ]),
        ));
    }
    lines
}
