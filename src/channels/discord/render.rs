//! Rendered replies as Discord messages: text split under Discord's 2,000
//! character limit on line boundaries, choices as buttons (a select menu when
//! there are more than five), and `allowed_mentions` empty on every message
//! so nothing a person typed can ever ping `@everyone`, a role or a user.
//!
//! Pure functions over serenity's builders: tested without a network.

use serenity::builder::{
    CreateActionRow, CreateAllowedMentions, CreateButton, CreateMessage, CreateSelectMenu,
    CreateSelectMenuKind, CreateSelectMenuOption,
};
use serenity::model::application::ButtonStyle;

use crate::desk::RenderedChoice;

/// Discord's limit for a message's content, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;
/// Buttons shown as buttons; more become one select menu.
pub const MAX_BUTTONS: usize = 5;
/// Custom id prefix of madoguchi's components: `mg:<choice id>`.
pub const CHOICE_PREFIX: &str = "mg:";
/// Custom id of the select menu (the chosen value is the choice id).
pub const SELECT_ID: &str = "mg-select";

/// Splits `text` into pieces of at most `max` characters, preferring line
/// breaks, then spaces, and cutting inside a line only when it must.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let line_len = line.chars().count();
        if current_len + line_len <= max {
            current.push_str(line);
            current_len += line_len;
            continue;
        }
        if !current.trim().is_empty() {
            pieces.push(current.trim_end().to_string());
        }
        // A single line longer than the limit: cut it at spaces or anywhere.
        let mut rest: Vec<char> = line.chars().collect();
        while rest.len() > max {
            let window: String = rest[..max].iter().collect();
            let cut = window
                .rfind(' ')
                .map(|byte| window[..byte].chars().count())
                .filter(|&c| c > max / 2)
                .unwrap_or(max);
            pieces.push(
                rest[..cut]
                    .iter()
                    .collect::<String>()
                    .trim_end()
                    .to_string(),
            );
            rest.drain(..cut);
        }
        current = rest.iter().collect();
        current_len = rest.len();
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim_end().to_string());
    }
    pieces
}

fn truncate(text: &str, max: usize) -> String {
    crate::text::truncate_chars(text, max).to_string()
}

/// The components for a set of choices (none for no choices).
pub fn choice_components(choices: &[RenderedChoice]) -> Vec<CreateActionRow> {
    if choices.is_empty() {
        return Vec::new();
    }
    if choices.len() <= MAX_BUTTONS {
        let buttons = choices
            .iter()
            .map(|c| {
                CreateButton::new(format!("{CHOICE_PREFIX}{}", c.id))
                    .label(truncate(&c.label, 80))
                    .style(ButtonStyle::Primary)
            })
            .collect();
        return vec![CreateActionRow::Buttons(buttons)];
    }
    let options = choices
        .iter()
        .take(25)
        .map(|c| CreateSelectMenuOption::new(truncate(&c.label, 100), c.id.clone()))
        .collect();
    vec![CreateActionRow::SelectMenu(CreateSelectMenu::new(
        SELECT_ID,
        CreateSelectMenuKind::String { options },
    ))]
}

/// The messages for one reply: its text split, the choices on the last piece.
pub fn reply_messages(text: &str, choices: &[RenderedChoice]) -> Vec<CreateMessage> {
    let mut pieces = split_text(text, MAX_CONTENT_CHARS);
    if pieces.is_empty() {
        pieces.push("…".to_string());
    }
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| {
            let message = plain(piece);
            if index == last {
                message.components(choice_components(choices))
            } else {
                message
            }
        })
        .collect()
}

/// A message with no mentions allowed.
pub fn plain(content: String) -> CreateMessage {
    CreateMessage::new()
        .content(content)
        .allowed_mentions(CreateAllowedMentions::new())
}

/// The choice id a component custom id or select value stands for.
pub fn choice_from_component(custom_id: &str, values: &[String]) -> Option<String> {
    if custom_id == SELECT_ID {
        return values.first().cloned();
    }
    custom_id.strip_prefix(CHOICE_PREFIX).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_long_text_on_line_boundaries_under_the_limit() {
        let line = "あ".repeat(900);
        let text = format!("{line}\n{line}\n{line}");
        let pieces = split_text(&text, MAX_CONTENT_CHARS);
        assert_eq!(pieces.len(), 2);
        assert!(pieces
            .iter()
            .all(|p| p.chars().count() <= MAX_CONTENT_CHARS));
        assert_eq!(pieces.concat().replace('\n', ""), text.replace('\n', ""));
    }

    #[test]
    fn cuts_a_single_huge_line() {
        let text = "x".repeat(4500);
        let pieces = split_text(&text, MAX_CONTENT_CHARS);
        assert_eq!(
            pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [2000, 2000, 500]
        );
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_text("こんにちは", MAX_CONTENT_CHARS), ["こんにちは"]);
        assert!(split_text("", MAX_CONTENT_CHARS).is_empty());
    }

    #[test]
    fn choices_become_buttons_or_a_select_menu() {
        let choices = |n: usize| -> Vec<RenderedChoice> {
            (0..n)
                .map(|i| RenderedChoice {
                    id: format!("c{i}"),
                    label: format!("L{i}"),
                })
                .collect()
        };
        let json = |rows: Vec<CreateActionRow>| serde_json::to_value(rows).expect("json");
        let buttons = json(choice_components(&choices(5)));
        assert_eq!(buttons[0]["components"].as_array().map(Vec::len), Some(5));
        assert_eq!(buttons[0]["components"][0]["custom_id"], "mg:c0");
        let select = json(choice_components(&choices(7)));
        assert_eq!(select[0]["components"][0]["custom_id"], SELECT_ID);
        assert_eq!(
            select[0]["components"][0]["options"]
                .as_array()
                .map(Vec::len),
            Some(7)
        );
        assert!(choice_components(&[]).is_empty());
    }

    #[test]
    fn component_ids_map_back_to_choices() {
        assert_eq!(choice_from_component("mg:c-yes", &[]), Some("c-yes".into()));
        assert_eq!(
            choice_from_component(SELECT_ID, &["f-works".into()]),
            Some("f-works".into())
        );
        assert_eq!(choice_from_component("other", &[]), None);
    }
}
