//! Agent commands, parsed once for every channel: `claim`, `release
//! [step]`, `transfer <agent id> [name]`, `close`, with or without a leading
//! `/`, any case. Discord's slash commands give the name and the options;
//! Teams agents type the words or press a card button; both end here.
//!
//! Anything that is not a command is a message to the person.

use crate::flow::engine::{AgentAction, AgentRef};
use crate::i18n::registry;

/// A parsed agent command, before we know who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    Claim,
    Release { node: Option<String> },
    Transfer { to: Option<AgentRef> },
    Close,
}

/// Why a command cannot be carried out; [`CommandError::message_id`] is
/// what the agent is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("transfer names no agent")]
    MissingTarget,
}

impl CommandError {
    pub fn message_id(&self) -> &'static str {
        match self {
            CommandError::MissingTarget => registry::AGENT_COMMAND_NEEDS_TARGET,
        }
    }
}

/// Longest agent name kept from a typed `transfer`.
const MAX_NAME_CHARS: usize = 80;

/// A typed line: a command, or `None` when it is a message to the person.
pub fn parse(text: &str) -> Option<AgentCommand> {
    let text = text.trim();
    let (name, rest) = match text.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest),
        None => (text, ""),
    };
    from_parts(name, rest)
}

/// A command by name (`claim`, `/release`…) and the rest of its words.
pub fn from_parts(name: &str, rest: &str) -> Option<AgentCommand> {
    let name = name.trim().trim_start_matches('/').to_ascii_lowercase();
    let mut words = rest.split_whitespace();
    match name.as_str() {
        "claim" => Some(AgentCommand::Claim),
        "close" => Some(AgentCommand::Close),
        "release" => Some(AgentCommand::Release {
            node: words.next().map(str::to_string),
        }),
        "transfer" => {
            let to = words.next().map(|id| {
                let name: String = words
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(MAX_NAME_CHARS)
                    .collect();
                AgentRef {
                    id: id.to_string(),
                    name: if name.trim().is_empty() {
                        id.to_string()
                    } else {
                        name
                    },
                }
            });
            Some(AgentCommand::Transfer { to })
        }
        _ => None,
    }
}

impl AgentCommand {
    /// The action `agent` takes with this command.
    pub fn into_action(self, agent: AgentRef) -> Result<AgentAction, CommandError> {
        Ok(match self {
            AgentCommand::Claim => AgentAction::Claim(agent),
            AgentCommand::Close => AgentAction::Close { agent },
            AgentCommand::Release { node } => AgentAction::Release { agent, node },
            AgentCommand::Transfer { to: Some(to) } => AgentAction::Transfer { agent, to },
            AgentCommand::Transfer { to: None } => return Err(CommandError::MissingTarget),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_or_without_a_slash_in_any_case() {
        assert_eq!(parse("claim"), Some(AgentCommand::Claim));
        assert_eq!(parse("/CLOSE"), Some(AgentCommand::Close));
        assert_eq!(
            parse("release case-d-number"),
            Some(AgentCommand::Release {
                node: Some("case-d-number".into())
            })
        );
        assert_eq!(
            parse("/release"),
            Some(AgentCommand::Release { node: None })
        );
        assert_eq!(
            parse("transfer aad-2 山田 花子"),
            Some(AgentCommand::Transfer {
                to: Some(AgentRef {
                    id: "aad-2".into(),
                    name: "山田 花子".into()
                })
            })
        );
        assert_eq!(
            parse("transfer aad-2"),
            Some(AgentCommand::Transfer {
                to: Some(AgentRef {
                    id: "aad-2".into(),
                    name: "aad-2".into()
                })
            })
        );
    }

    #[test]
    fn anything_else_is_a_message() {
        for text in [
            "",
            "こんにちは",
            "claimed it",
            "please close the app",
            "番号を確認します",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn transfer_without_a_target_says_so() {
        let agent = AgentRef {
            id: "a".into(),
            name: "A".into(),
        };
        let error = parse("/transfer")
            .expect("a command")
            .into_action(agent)
            .expect_err("needs a target");
        assert_eq!(error, CommandError::MissingTarget);
        assert_eq!(error.message_id(), registry::AGENT_COMMAND_NEEDS_TARGET);
    }
}
