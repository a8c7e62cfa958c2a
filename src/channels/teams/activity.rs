//! Bot Framework activities: the inbound shape madoguchi reads, the
//! conversation reference it stores for proactive messages, and rendered
//! replies as outbound activities (suggested actions in personal chats, an
//! Adaptive Card with `Action.Submit` buttons in channels and group chats,
//! where suggested actions do not show).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::desk::RenderedReply;

/// Key of an `Action.Submit` button's data: the choice id.
pub const CHOICE_KEY: &str = "madoguchi_choice";
/// Key of an agent action in a handoff card's button data.
pub const AGENT_ACTION_KEY: &str = "madoguchi_agent";

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

/// The parts of an inbound activity madoguchi uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
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
            tenant_id: activity.conversation.tenant_id.clone(),
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

    /// The typed text without the bot's `<at>…</at>` mention (channels).
    pub fn clean_text(&self) -> String {
        let text = self.text.clone().unwrap_or_default();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("<at>") {
            out.push_str(&rest[..start]);
            match rest[start..].find("</at>") {
                Some(end) => rest = &rest[start + end + 5..],
                None => {
                    rest = "";
                }
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
    if reference.is_personal() {
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

/// An Adaptive Card attachment with a text block and buttons.
pub fn adaptive_card(text: &str, actions: Vec<Value>) -> Value {
    json!({
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [{ "type": "TextBlock", "text": text, "wrap": true }],
            "actions": actions,
        }
    })
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
    }

    #[test]
    fn mentions_are_removed_from_channel_text() {
        let activity: Activity = serde_json::from_value(json!({
            "type": "message", "serviceUrl": "http://x", "conversation": {"id": "c"},
            "text": "<at>madoguchi</at> 担当者と話したい"
        }))
        .expect("activity");
        assert_eq!(activity.clean_text(), "担当者と話したい");
    }
}
