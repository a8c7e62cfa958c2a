//! The terminal channel: `madoguchi chat`.
//!
//! Two faces over the same desk. Interactive: replies as text, choices
//! numbered (`1)`) where the bot asks a question and lettered (`a)`) where it
//! waits for a value such as a count, so typing `5` there means five; a
//! reminder that comes due while the person is idle is printed at once.
//! `--jsonl`: the scripted contract in the README (one JSON line for the
//! greeting or resume, then exactly one JSON line per input line, printed
//! only after the state it shows is committed).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::clock::{Clock, ManualClock};
use crate::desk::{Desk, DeskError, Outcome};
use crate::flow::engine::Input;
use crate::i18n::registry;
use crate::outbox::OutboxRow;

/// Channel name stored with console conversations.
pub const CHANNEL: &str = "console";

pub struct ChatOptions {
    pub jsonl: bool,
    pub locale: String,
    pub conversation: Option<String>,
    /// Set when `--now` fixed the clock: `at` in input lines moves it.
    pub manual_clock: Option<Arc<ManualClock>>,
    /// Whether conversations are kept in a file (for the goodbye line).
    pub persistent: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
}

/// One parsed scripted input line.
#[derive(Debug, PartialEq)]
enum ScriptLine {
    Input {
        input: Input,
        id: Option<String>,
        at: Option<DateTime<Utc>>,
    },
    Invalid {
        code: &'static str,
        message_id: &'static str,
    },
}

fn parse_script_line(line: &str) -> ScriptLine {
    let invalid_json = ScriptLine::Invalid {
        code: "invalid_json",
        message_id: registry::JSONL_INVALID_JSON,
    };
    let invalid_input = ScriptLine::Invalid {
        code: "invalid_input",
        message_id: registry::JSONL_INVALID_INPUT,
    };
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return invalid_json;
    };
    let Some(object) = value.as_object() else {
        return invalid_input;
    };
    let id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return invalid_input,
    };
    let at = match object.get("at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => return invalid_input,
        },
        Some(_) => return invalid_input,
    };
    let input = match (object.get("text"), object.get("choice")) {
        (Some(Value::String(text)), None) => Input::Text(text.clone()),
        (None, Some(Value::String(choice))) => Input::Choice(choice.clone()),
        _ => return invalid_input,
    };
    ScriptLine::Input { input, id, at }
}

/// The JSON line for an outcome (the `chat --jsonl` contract).
pub fn outcome_json(outcome: &Outcome) -> Value {
    let mut line = json!({
        "conversation": outcome.conversation_id,
        "replies": outcome.replies(),
        "node": outcome.state.node,
        "expects": outcome.expects,
        "case": outcome.case,
        "status": outcome.state.mode.status(),
        "slots": outcome.state.slots,
    });
    if let Some(handoff) = &outcome.handoff {
        line["handoff"] = json!({ "ticket": handoff.ticket, "summary": handoff.summary });
    }
    if outcome.duplicate {
        line["duplicate"] = Value::Bool(true);
    }
    line
}

/// Runs a chat on standard input and output until EOF.
pub async fn run(desk: Desk, clock: Arc<dyn Clock>, options: ChatOptions) -> Result<(), ChatError> {
    let mut stdout = tokio::io::stdout();
    let stdin = BufReader::new(tokio::io::stdin());
    run_with(desk, clock, options, stdin, &mut stdout).await
}

/// [`run`] over any reader and writer (tests pass their own).
pub async fn run_with<R, W>(
    desk: Desk,
    clock: Arc<dyn Clock>,
    options: ChatOptions,
    reader: R,
    out: &mut W,
) -> Result<(), ChatError>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = match &options.conversation {
        Some(id) => desk.resume(id, clock.now()).await?,
        None => {
            desk.start(CHANNEL, "console", &options.locale, clock.now())
                .await?
        }
    };
    let conversation = first.conversation_id.clone();
    let mut view = View::new(&desk, options.jsonl, &first.locale);
    if !options.jsonl {
        view.hint(out).await?;
    }
    view.show(out, &first).await?;
    mark_delivered(&desk, &first, clock.now()).await;

    let mut lines = reader.lines();
    loop {
        let next_due = if options.jsonl {
            None
        } else {
            match desk.next_timer_due(Some(&conversation)).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next reminder time");
                    None
                }
            }
        };
        let line = match next_due {
            Some(due) => {
                let wait = (due - clock.now()).to_std().unwrap_or_default();
                tokio::select! {
                    line = lines.next_line() => line?,
                    _ = tokio::time::sleep(wait) => {
                        for fired in desk.fire_due_timers(Some(&conversation), clock.now()).await? {
                            view.show(out, &fired).await?;
                            mark_delivered(&desk, &fired, clock.now()).await;
                        }
                        continue;
                    }
                }
            }
            None => lines.next_line().await?,
        };
        let quit = !options.jsonl
            && line
                .as_deref()
                .is_some_and(|l| matches!(l.trim(), "/quit" | "/exit" | "/q"));
        let Some(line) = line.filter(|_| !quit) else {
            if !options.jsonl {
                view.bye(out, &conversation, options.persistent).await?;
            }
            return Ok(());
        };
        let (input, key) = if options.jsonl {
            match parse_script_line(&line) {
                ScriptLine::Input { input, id, at } => {
                    if let Some(at) = at {
                        match &options.manual_clock {
                            Some(manual) => manual.set(at),
                            None => {
                                view.error(out, "invalid_input", registry::JSONL_INVALID_INPUT)
                                    .await?;
                                continue;
                            }
                        }
                    }
                    (input, id.map(|id| format!("console:{id}")))
                }
                ScriptLine::Invalid { code, message_id } => {
                    tracing::warn!(conversation = %conversation, code, "scripted input line rejected");
                    view.error(out, code, message_id).await?;
                    continue;
                }
            }
        } else {
            (view.interactive_input(&line), None)
        };
        let now = clock.now();
        let fired = desk.fire_due_timers(Some(&conversation), now).await?;
        let mut outcome = desk.handle(&conversation, input, key, now).await?;
        for earlier in &fired {
            mark_delivered(&desk, earlier, now).await;
        }
        let mut rows: Vec<_> = fired.into_iter().flat_map(|o| o.rows).collect();
        rows.append(&mut outcome.rows);
        outcome.rows = rows;
        view.show(out, &outcome).await?;
        mark_delivered(&desk, &outcome, now).await;
    }
}

/// The console delivers by printing the outcome's rows; they are marked
/// sent after.
async fn mark_delivered(desk: &Desk, outcome: &Outcome, now: DateTime<Utc>) {
    let ids = outcome.row_ids();
    if ids.is_empty() {
        return;
    }
    if let Err(e) = desk.mark_delivered(&ids, now).await {
        tracing::warn!(conversation = %outcome.conversation_id, error = %e, "could not mark console messages as sent");
    }
}

/// How the terminal shows things.
struct View<'a> {
    desk: &'a Desk,
    jsonl: bool,
    locale: String,
    /// Choices of the last question, in display order, with their key.
    shown: Vec<(String, String)>,
}

impl<'a> View<'a> {
    fn new(desk: &'a Desk, jsonl: bool, locale: &str) -> View<'a> {
        View {
            desk,
            jsonl,
            locale: locale.to_string(),
            shown: Vec::new(),
        }
    }

    fn text(&self, message_id: &str) -> String {
        self.desk
            .catalog()
            .format(&self.locale, message_id, &Default::default())
    }

    async fn hint<W: AsyncWrite + Unpin>(&self, out: &mut W) -> std::io::Result<()> {
        let text = format!("({})\n\n", self.text(registry::CONSOLE_INPUT_HINT));
        out.write_all(text.as_bytes()).await?;
        out.flush().await
    }

    async fn bye<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        conversation: &str,
        persistent: bool,
    ) -> std::io::Result<()> {
        let text = if persistent {
            let args = std::collections::BTreeMap::from([(
                "conversation".to_string(),
                Value::String(conversation.to_string()),
            )]);
            self.desk
                .catalog()
                .format(&self.locale, registry::CONSOLE_BYE, &args)
        } else {
            self.text(registry::CONSOLE_BYE_UNSAVED)
        };
        out.write_all(format!("\n{text}\n").as_bytes()).await?;
        out.flush().await
    }

    async fn error<W: AsyncWrite + Unpin>(
        &self,
        out: &mut W,
        code: &str,
        message_id: &str,
    ) -> std::io::Result<()> {
        let line = json!({ "error": self.text(message_id), "code": code });
        out.write_all(format!("{line}\n").as_bytes()).await?;
        out.flush().await
    }

    async fn show<W: AsyncWrite + Unpin>(
        &mut self,
        out: &mut W,
        outcome: &Outcome,
    ) -> std::io::Result<()> {
        if self.jsonl {
            let line = outcome_json(outcome);
            out.write_all(format!("{line}\n").as_bytes()).await?;
            return out.flush().await;
        }
        let mut text = String::new();
        let lettered = outcome.expects != "choice";
        for reply in &outcome.replies() {
            text.push_str(&format!("{}\n", reply.text.trim_end()));
            if !reply.choices.is_empty() {
                self.shown.clear();
                for (index, choice) in reply.choices.iter().enumerate() {
                    let key = if lettered {
                        char::from(b'a' + (index as u8 % 26)).to_string()
                    } else {
                        (index + 1).to_string()
                    };
                    text.push_str(&format!("  {key}) {}\n", choice.label));
                    self.shown.push((key, choice.id.clone()));
                }
            }
            text.push('\n');
        }
        for (_, row) in &outcome.rows {
            if let OutboxRow::Handoff { summary, .. } = row {
                text.push_str(&format!(
                    "----- {} -----\n{}\n----------\n{}\n\n",
                    self.text(registry::CONSOLE_SUMMARY_TITLE),
                    summary,
                    self.text(registry::CONSOLE_STATUS_QUEUED)
                ));
            }
        }
        text.push_str("> ");
        out.write_all(text.as_bytes()).await?;
        out.flush().await
    }

    /// A typed line: a shown choice key becomes that choice, anything else
    /// is text (numbers at questions are also understood by the engine).
    fn interactive_input(&self, line: &str) -> Input {
        let key = crate::text::clean(line).to_lowercase();
        match self.shown.iter().find(|(k, _)| *k == key) {
            Some((_, id)) => Input::Choice(id.clone()),
            None => Input::Text(line.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_parse_or_say_why_not() {
        assert_eq!(
            parse_script_line(r#"{"text": "こんにちは"}"#),
            ScriptLine::Input {
                input: Input::Text("こんにちは".into()),
                id: None,
                at: None
            }
        );
        assert!(matches!(
            parse_script_line(r#"{"choice": "c-yes", "id": 7}"#),
            ScriptLine::Input {
                input: Input::Choice(_),
                id: Some(_),
                ..
            }
        ));
        for (line, code) in [
            ("{not json", "invalid_json"),
            ("", "invalid_json"),
            ("[1,2]", "invalid_input"),
            (r#"{"text": 5}"#, "invalid_input"),
            (r#"{"text": "a", "choice": "b"}"#, "invalid_input"),
            (r#"{}"#, "invalid_input"),
            (r#"{"text": "a", "at": "yesterday"}"#, "invalid_input"),
        ] {
            match parse_script_line(line) {
                ScriptLine::Invalid { code: got, .. } => assert_eq!(got, code, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }
}
