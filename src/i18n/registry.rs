//! The one registry of message ids the program sends outside the flows:
//! each id is a constant here, with the variables it is given and the part
//! of the program that says it. Code names a message through its constant,
//! so a message the code sends cannot be missing from this list, and
//! `madoguchi check` verifies every entry against every locale.
//!
//! Flow messages are not listed: `check` reads them from the flow files.
//! Validator messages stay with their validators (`diagnose::validators`),
//! which name the message each one answers with.

/// One registered message: id, variables it is given, who says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageUse {
    pub id: &'static str,
    pub variables: &'static [&'static str],
    pub used_by: &'static str,
}

macro_rules! registry {
    ($($name:ident = $id:literal [$($var:literal),*] by $used_by:literal;)*) => {
        $(#[doc = concat!("`", $id, "` (", $used_by, ")")] pub const $name: &str = $id;)*
        /// Every registered message.
        pub const ALL: &[MessageUse] = &[
            $(MessageUse { id: $id, variables: &[$($var),*], used_by: $used_by },)*
        ];
    };
}

registry! {
    // The terminal.
    CONSOLE_INPUT_HINT = "console-input-hint" [] by "terminal";
    CONSOLE_SUMMARY_TITLE = "console-summary-title" [] by "terminal";
    CONSOLE_BYE = "console-bye" ["conversation"] by "terminal";
    CONSOLE_BYE_UNSAVED = "console-bye-unsaved" [] by "terminal";
    CONSOLE_STATUS_QUEUED = "console-status-queued" [] by "terminal";
    JSONL_INVALID_JSON = "jsonl-invalid-json" [] by "terminal";
    JSONL_INVALID_INPUT = "jsonl-invalid-input" [] by "terminal";

    // The desk, for every channel.
    DESK_TRY_AGAIN = "desk-try-again" [] by "desk";
    HANDOFF_QUEUE_POSITION = "handoff-queue-position" ["position"] by "desk";
    HANDOFF_AFTER_HOURS = "handoff-after-hours" ["opens_at"] by "desk";
    HANDOFF_RECENT_TITLE = "handoff-recent-title" [] by "desk";
    HANDOFF_TRANSCRIPT_TITLE = "handoff-transcript-title" ["ticket"] by "desk";
    HANDOFF_THREAD_NAME = "handoff-thread-name" ["ticket"] by "desk";
    HANDOFF_CLAIM_BUTTON = "handoff-claim-button" [] by "desk";
    HANDOFF_CLOSE_BUTTON = "handoff-close-button" [] by "desk";
    AGENT_COMMAND_NEEDS_TARGET = "agent-command-needs-target" [] by "agent commands";

    // The engine's agent state machine. Person-facing ones go to the
    // person, `agent-*` ones to the agents' side.
    HANDOFF_CLAIMED = "handoff-claimed" ["agent"] by "agent handoff";
    HANDOFF_TRANSFERRED = "handoff-transferred" ["agent"] by "agent handoff";
    HANDOFF_RELEASED = "handoff-released" [] by "agent handoff";
    AGENT_MESSAGE = "agent-message" ["agent", "text"] by "agent handoff";
    AGENT_NOTE_CLAIMED = "agent-note-claimed" ["agent"] by "agent handoff";
    AGENT_NOTE_RELEASED = "agent-note-released" ["agent", "node"] by "agent handoff";
    AGENT_NOTE_TRANSFERRED = "agent-note-transferred" ["agent", "to"] by "agent handoff";
    AGENT_NOTE_CLOSED = "agent-note-closed" ["agent"] by "agent handoff";
    AGENT_NOTE_NOT_QUEUED = "agent-note-not-queued" ["status"] by "agent handoff";
    AGENT_NOTE_NOT_HOLDER = "agent-note-not-holder" ["holder"] by "agent handoff";
    AGENT_NOTE_UNKNOWN_NODE = "agent-note-unknown-node" ["node"] by "agent handoff";
    AGENT_NOTE_FROM_PERSON = "agent-note-from-person" ["text"] by "agent handoff";

    // The summary agents read first.
    SUMMARY_HEADER = "summary-header" ["ticket", "reason"] by "agent summary";
    SUMMARY_METHOD_RESET = "summary-method-reset" ["masked"] by "agent summary";
    SUMMARY_SIGNIN_ERRORS = "summary-signin-errors" ["codes"] by "agent summary";
    SUMMARY_FINDING = "summary-finding" ["case", "verdict", "answer"] by "agent summary";
    SUMMARY_NO_FINDINGS = "summary-no-findings" [] by "agent summary";
    SUMMARY_ANSWER_AUTO = "summary-answer-auto" [] by "agent summary";
    SUMMARY_PHONE = "summary-phone" ["masked", "line_type"] by "agent summary";
    SUMMARY_PHONE_PROBLEM = "summary-phone-problem" ["problem"] by "agent summary";
    SUMMARY_ATTEMPTS = "summary-attempts" ["attempts"] by "agent summary";
    SUMMARY_LOCKOUT = "summary-lockout" ["last_attempt", "retry_at"] by "agent summary";
    SUMMARY_CURRENT_NODE = "summary-current-node" ["node"] by "agent summary";

    // Discord's own words (commands, threads, ephemeral answers).
    DISCORD_COMMAND_MFA = "discord-command-mfa-description" [] by "Discord channel";
    DISCORD_COMMAND_CLAIM = "discord-command-claim-description" [] by "Discord channel";
    DISCORD_COMMAND_RELEASE = "discord-command-release-description" [] by "Discord channel";
    DISCORD_COMMAND_RELEASE_STEP = "discord-command-release-step-description" [] by "Discord channel";
    DISCORD_COMMAND_TRANSFER = "discord-command-transfer-description" [] by "Discord channel";
    DISCORD_COMMAND_TRANSFER_AGENT = "discord-command-transfer-agent-description" [] by "Discord channel";
    DISCORD_COMMAND_CLOSE = "discord-command-close-description" [] by "Discord channel";
    DISCORD_THREAD_NAME = "discord-thread-name" [] by "Discord channel";
    DISCORD_THREAD_OPENED = "discord-thread-opened" ["thread"] by "Discord channel";
    DISCORD_MFA_STARTED = "discord-mfa-started" [] by "Discord channel";
    DISCORD_AGENT_ONLY = "discord-agent-only" [] by "Discord channel";
    DISCORD_NOT_A_TICKET_THREAD = "discord-not-a-ticket-thread" [] by "Discord channel";
    DISCORD_AGENT_ACK = "discord-agent-ack" [] by "Discord channel";
    DISCORD_UNKNOWN_CONVERSATION = "discord-unknown-conversation" [] by "Discord channel";
    DISCORD_UNKNOWN_COMMAND = "discord-unknown-command" [] by "Discord channel";
    DISCORD_MFA_NOT_HERE = "discord-mfa-not-here" [] by "Discord channel";
    DISCORD_MFA_NO_PERMISSION = "discord-mfa-no-permission" [] by "Discord channel";
    DISCORD_DM_FALLBACK_INTRO = "discord-dm-fallback-intro" [] by "Discord channel";
    DISCORD_DM_UNDELIVERABLE_NOTE = "discord-dm-undeliverable-note" [] by "Discord channel";

    // Teams' own words.
    TEAMS_AGENT_ONLY = "teams-agent-only" [] by "Teams channel";
    TEAMS_NOT_A_TICKET = "teams-not-a-ticket" [] by "Teams channel";

    // Web chat: the page's words (sent to the page as JSON) and its notes.
    WEB_TITLE = "web-title" [] by "web chat";
    WEB_INPUT_LABEL = "web-input-label" [] by "web chat";
    WEB_SEND = "web-send" [] by "web chat";
    WEB_STATUS_ONLINE = "web-status-online" [] by "web chat";
    WEB_STATUS_CONNECTING = "web-status-connecting" [] by "web chat";
    WEB_STATUS_OFFLINE = "web-status-offline" [] by "web chat";
    WEB_TYPING = "web-typing" [] by "web chat";
    WEB_RESUME_LINK = "web-resume-link" [] by "web chat";
    WEB_RESUME_COPIED = "web-resume-copied" [] by "web chat";
    WEB_RESUME_INVALID = "web-resume-invalid" [] by "web chat";
    WEB_SLOW_DOWN = "web-slow-down" [] by "web chat";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.id), "{} registered twice", m.id);
            assert!(
                m.id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                m.id
            );
        }
    }
}
