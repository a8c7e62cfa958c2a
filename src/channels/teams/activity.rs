//! Bot Framework activities: the inbound shape madoguchi reads, the
//! conversation reference it stores for proactive messages, and rendered
//! replies as outbound activities: suggested actions in personal chats for
//! up to three choices; an Adaptive Card with `Action.Submit` buttons for
//! more choices (Teams shows only the first three suggested actions) and in
//! channels and group chats (where suggested actions do not show).
//!
//! Adaptive Card TextBlocks render Markdown, so every text put in a card
//! is escaped line by line and the lines are joined by a blank line
//! ([`card_markdown`]); plain messages are sent with `textFormat: plain`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::desk::RenderedReply;

/// Key of an `Action.Submit` button's data: the choice id.
pub const CHOICE_KEY: &str = "madoguchi_choice";
/// Key of an agent action in a handoff card's button data.
pub const AGENT_ACTION_KEY: &str = "madoguchi_agent";

/// Teams shows at most this many suggested actions: "The bot can parse up
/// to three actions. Even if you include more than three actions, Teams
/// displays only the first three."
/// <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/conversations/suggested-actions>
pub const MAX_SUGGESTED_ACTIONS: usize = 3;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAccount {
    pub id: String,
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

/// `channelData.tenant`: the tenant in which the message was sent, which
/// Teams puts in the channel data of activities in every scope
/// (`conversation.tenantId` is missing in some).
/// <https://learn.microsoft.com/en-us/dotnet/api/microsoft.bot.schema.teams.teamschanneldata>
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TenantInfo {
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChannelData {
    #[serde(default)]
    pub tenant: Option<TenantInfo>,
}

/// An entity of an activity; madoguchi reads mentions only.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Entity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub mentioned: Option<ChannelAccount>,
    /// The mention's text as it appears in the activity's text
    /// (`<at>madoguchi</at>`).
    #[serde(default)]
    pub text: Option<String>,
}

/// The parts of an inbound activity madoguchi uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    /// `msteams` for Teams; the signing key must be endorsed for it.
    #[serde(default)]
    pub channel_id: String,
    pub service_url: String,
    #[serde(default)]
    pub from: ChannelAccount,
    pub conversation: ConversationAccount,
    #[serde(default)]
    pub recipient: ChannelAccount,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub members_added: Vec<ChannelAccount>,
    #[serde(default)]
    pub reply_to_id: Option<String>,
    #[serde(default)]
    pub channel_data: Option<ChannelData>,
    #[serde(default)]
    pub entities: Vec<Entity>,
}

/// Everything needed to message a conversation later (proactively).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConversationReference {
    pub service_url: String,
    pub conversation_id: String,
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub bot: ChannelAccount,
    pub user: ChannelAccount,
}

impl ConversationReference {
    pub fn from_activity(activity: &Activity) -> ConversationReference {
        ConversationReference {
            service_url: activity.service_url.clone(),
            conversation_id: activity.conversation.id.clone(),
            conversation_type: activity.conversation.conversation_type.clone(),
            tenant_id: activity.tenant(),
            bot: activity.recipient.clone(),
            user: activity.from.clone(),
        }
    }

    /// Personal (1:1) chats show suggested actions; others need cards.
    pub fn is_personal(&self) -> bool {
        self.conversation_type
            .as_deref()
            .is_none_or(|t| t == "personal")
    }
}

impl Activity {
    /// The choice id of an `Action.Submit` press (`value` with empty text).
    pub fn choice(&self) -> Option<String> {
        self.value
            .as_ref()?
            .get(CHOICE_KEY)?
            .as_str()
            .map(str::to_string)
    }

    /// The tenant the activity belongs to: `channelData.tenant.id` (present
    /// in all contexts), else `conversation.tenantId`; empty counts as none.
    pub fn tenant(&self) -> Option<String> {
        self.channel_data
            .as_ref()
            .and_then(|d| d.tenant.as_ref())
            .and_then(|t| t.id.clone())
            .or_else(|| self.conversation.tenant_id.clone())
            .filter(|t| !t.trim().is_empty())
    }

    /// Every tenant the activity names (`channelData.tenant.id`,
    /// `conversation.tenantId`), empty ones left out.
    pub fn tenants(&self) -> Vec<String> {
        let data = self
            .channel_data
            .as_ref()
            .and_then(|d| d.tenant.as_ref())
            .and_then(|t| t.id.clone());
        [data, self.conversation.tenant_id.clone()]
            .into_iter()
            .flatten()
            .filter(|t| !t.trim().is_empty())
            .collect()
    }

    /// The conversation's scope (`personal`, `groupChat`, `channel`).
    pub fn scope(&self) -> &str {
        self.conversation
            .conversation_type
            .as_deref()
            .unwrap_or("personal")
    }

    /// Whether the activity @mentions the bot (a `mention` entity naming
    /// the recipient).
    pub fn mentions_bot(&self) -> bool {
        self.entities.iter().any(|e| {
            e.kind == "mention"
                && e.mentioned
                    .as_ref()
                    .is_some_and(|m| !m.id.is_empty() && m.id == self.recipient.id)
        })
    }

    /// The typed text without the bot's `<at>…</at>` mention (channels:
    /// the text of its mention entity, or its name); other people's
    /// mentions keep their name.
    pub fn clean_text(&self) -> String {
        let mut text = self.text.clone().unwrap_or_default();
        for entity in &self.entities {
            let is_bot = entity
                .mentioned
                .as_ref()
                .is_some_and(|m| m.id == self.recipient.id);
            if let (true, "mention", Some(mention)) = (is_bot, entity.kind.as_str(), &entity.text) {
                if !mention.is_empty() {
                    text = text.replace(mention.as_str(), " ");
                }
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("<at>") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 4..];
            match after.find("</at>") {
                Some(end) => {
                    // The bot by its name (a mention without an entity);
                    // anyone else keeps their name.
                    let name = &after[..end];
                    if self.recipient.name.as_deref() != Some(name) {
                        out.push_str(name);
                    }
                    rest = &after[end + 5..];
                }
                None => rest = after,
            }
        }
        out.push_str(rest);
        out.trim().to_string()
    }

    /// Whether this conversationUpdate adds the bot itself.
    pub fn adds_bot(&self) -> bool {
        self.kind == "conversationUpdate"
            && self.members_added.iter().any(|m| m.id == self.recipient.id)
    }
}

fn base(reference: &ConversationReference) -> Value {
    json!({
        "type": "message",
        "from": reference.bot,
        "recipient": reference.user,
        "conversation": {
            "id": reference.conversation_id,
            "conversationType": reference.conversation_type,
            "tenantId": reference.tenant_id,
        },
    })
}

/// The activity for one rendered reply.
pub fn reply_activity(reference: &ConversationReference, reply: &RenderedReply) -> Value {
    let mut activity = base(reference);
    if reply.choices.is_empty() {
        activity["text"] = json!(reply.text);
        activity["textFormat"] = json!("plain");
        return activity;
    }
    if reference.is_personal() && reply.choices.len() <= MAX_SUGGESTED_ACTIONS {
        activity["text"] = json!(reply.text);
        activity["textFormat"] = json!("plain");
        // imBack sends the label back as text; the flow treats every label
        // as an example of its choice.
        let actions: Vec<Value> = reply
            .choices
            .iter()
            .map(|c| json!({ "type": "imBack", "title": c.label, "value": c.label }))
            .collect();
        activity["suggestedActions"] = json!({ "to": [reference.user.id], "actions": actions });
        return activity;
    }
    let actions: Vec<Value> = reply
        .choices
        .iter()
        .map(|c| json!({ "type": "Action.Submit", "title": c.label, "data": { CHOICE_KEY: c.id } }))
        .collect();
    activity["attachments"] = json!([adaptive_card(&reply.text, actions)]);
    activity
}

/// An Adaptive Card attachment with `text` (plain text, escaped here) and
/// buttons.
pub fn adaptive_card(text: &str, actions: Vec<Value>) -> Value {
    json!({
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [{ "type": "TextBlock", "text": card_markdown(text), "wrap": true }],
            "actions": actions,
        }
    })
}

/// Plain text as Adaptive Card Markdown that shows exactly that text:
/// each line escaped ([`escape_markdown_line`]) and lines joined by a
/// blank line, since "a single \n collapses" and Teams asks for `\n\n`
/// ("If you need a line break elsewhere in the TextBlock, use \n\n.",
/// <https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-format>).
pub fn card_markdown(text: &str) -> String {
    text.lines()
        .map(escape_markdown_line)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// One line of plain text as Markdown that renders it literally: every
/// Markdown punctuation character is backslash-escaped (so a person's
/// `[text](url)` is no live link and `*`/`_` make no emphasis), a leading
/// list marker (`-`, `+`, `1.`) is escaped, and leading spaces become
/// no-break spaces (four spaces would start a code block).
pub fn escape_markdown_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let trimmed = line.trim_start_matches(' ');
    for _ in 0..line.len() - trimmed.len() {
        out.push('\u{00A0}');
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in trimmed.chars().enumerate() {
        let leading_marker =
            (i == 0 && matches!(c, '-' | '+')) || (i == digits && digits > 0 && c == '.');
        if leading_marker
            || matches!(
                c,
                '\\' | '['
                    | ']'
                    | '('
                    | ')'
                    | '*'
                    | '_'
                    | '#'
                    | '>'
                    | '<'
                    | '`'
                    | '~'
                    | '|'
                    | '!'
                    | '&'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A typing indicator for the conversation.
pub fn typing_activity(reference: &ConversationReference) -> Value {
    let mut activity = base(reference);
    activity["type"] = json!("typing");
    activity
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::RenderedChoice;

    fn reference(kind: &str) -> ConversationReference {
        ConversationReference {
            service_url: "http://x".into(),
            conversation_id: "a:1".into(),
            conversation_type: Some(kind.into()),
            tenant_id: Some("t".into()),
            bot: ChannelAccount {
                id: "28:bot".into(),
                ..Default::default()
            },
            user: ChannelAccount {
                id: "29:user".into(),
                ..Default::default()
            },
        }
    }

    fn reply() -> RenderedReply {
        RenderedReply {
            message_id: "q".into(),
            text: "どれですか".into(),
            choices: vec![RenderedChoice {
                id: "c-yes".into(),
                label: "はい".into(),
            }],
        }
    }

    #[test]
    fn personal_chats_get_suggested_actions_and_channels_get_cards() {
        let personal = reply_activity(&reference("personal"), &reply());
        assert_eq!(personal["suggestedActions"]["actions"][0]["value"], "はい");
        assert!(personal.get("attachments").is_none());
        let channel = reply_activity(&reference("channel"), &reply());
        let card = &channel["attachments"][0]["content"];
        assert_eq!(card["actions"][0]["type"], "Action.Submit");
        assert_eq!(card["actions"][0]["data"][CHOICE_KEY], "c-yes");
        assert_eq!(card["body"][0]["text"], "どれですか");
        assert_eq!(
            personal["suggestedActions"]["actions"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn mentions_are_removed_from_channel_text() {
        let activity: Activity = serde_json::from_value(json!({
            "type": "message", "serviceUrl": "http://x", "conversation": {"id": "c"},
            "recipient": {"id": "28:bot", "name": "madoguchi"},
            "text": "<at>madoguchi</at> 担当者と話したい"
        }))
        .expect("activity");
        assert_eq!(activity.clean_text(), "担当者と話したい");
        assert!(!activity.mentions_bot(), "no mention entity");
    }

    #[test]
    fn the_bot_mention_is_an_entity_and_other_mentions_keep_their_name() {
        let activity: Activity = serde_json::from_value(json!({
            "type": "message", "serviceUrl": "http://x",
            "conversation": {"id": "c", "conversationType": "channel"},
            "recipient": {"id": "28:bot"},
            "text": "<at>窓口</at> transfer aad-2 <at>鈴木</at>",
            "entities": [
                {"type": "mention", "mentioned": {"id": "28:bot", "name": "窓口"}, "text": "<at>窓口</at>"},
                {"type": "mention", "mentioned": {"id": "29:suzuki", "name": "鈴木"}, "text": "<at>鈴木</at>"},
                {"type": "clientInfo", "locale": "ja-JP"}
            ]
        }))
        .expect("activity");
        assert!(activity.mentions_bot());
        assert_eq!(activity.clean_text(), "transfer aad-2 鈴木");
    }

    #[test]
    fn the_tenant_comes_from_channel_data_first() {
        let activity: Activity = serde_json::from_value(json!({
            "type": "message", "serviceUrl": "http://x",
            "conversation": {"id": "c", "tenantId": "conv-tenant"},
            "channelData": {"tenant": {"id": "data-tenant"}}
        }))
        .expect("activity");
        assert_eq!(activity.tenant().as_deref(), Some("data-tenant"));
        let activity: Activity = serde_json::from_value(json!({
            "type": "message", "serviceUrl": "http://x",
            "conversation": {"id": "c", "tenantId": ""}
        }))
        .expect("activity");
        assert_eq!(activity.tenant(), None);
    }

    #[test]
    fn more_than_three_choices_are_a_card_in_personal_chats_too() {
        let mut many = reply();
        many.choices = (0..4)
            .map(|i| RenderedChoice {
                id: format!("c-{i}"),
                label: format!("{i}"),
            })
            .collect();
        let personal = reply_activity(&reference("personal"), &many);
        assert!(personal.get("suggestedActions").is_none());
        let actions = &personal["attachments"][0]["content"]["actions"];
        assert_eq!(actions.as_array().map(Vec::len), Some(4));
        assert_eq!(actions[3]["data"][CHOICE_KEY], "c-3");
    }

    #[test]
    fn card_text_is_escaped_markdown_with_kept_lines() {
        assert_eq!(
            card_markdown("[click](http://evil) *a* _b_\n- item\n12. x\n    code\n#1 > q `c` \\ & <u>"),
            "\\[click\\]\\(http://evil\\) \\*a\\* \\_b\\_\n\n\\- item\n\n12\\. x\n\n\u{a0}\u{a0}\u{a0}\u{a0}code\n\n\\#1 \\> q \\`c\\` \\\\ \\& \\<u\\>"
        );
        assert_eq!(card_markdown("一行目\n二行目"), "一行目\n\n二行目");
    }
}
