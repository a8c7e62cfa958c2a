//! Rendered replies as Discord messages: text split under Discord's 2,000
//! character limit where a Japanese reader expects a break, choices as buttons (a select menu when
//! there are more than five), and `allowed_mentions` empty on every message
//! so nothing a person typed can ever ping `@everyone`, a role or a user.
//!
//! Pure functions over serenity's builders: tested without a network.

use serenity::builder::{
    CreateActionRow, CreateAllowedMentions, CreateButton, CreateMessage, CreateSelectMenu,
    CreateSelectMenuKind, CreateSelectMenuOption,
};
use serenity::model::application::ButtonStyle;

use unicode_segmentation::UnicodeSegmentation;

use crate::desk::RenderedChoice;

/// Discord's limit for a message's content, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;
/// Buttons shown as buttons; more become one select menu.
pub const MAX_BUTTONS: usize = 5;
/// Custom id prefix of madoguchi's components: `mg:<choice id>`.
pub const CHOICE_PREFIX: &str = "mg:";
/// Custom id of the select menu (the chosen value is the choice id).
pub const SELECT_ID: &str = "mg-select";

/// Splits `text` into pieces of at most `max` characters for Discord.
///
/// Breaks where a Japanese reader expects one: after a line break, else
/// after a sentence end (「。」「！」「？」, with a closing bracket that
/// follows it), else after a full-width or ASCII space, else after 「、」.
/// A piece is cut between two characters only when no such place lies in
/// the second half of the window. Never inside a grapheme cluster (a ZWJ
/// emoji, a base letter and its combining marks), a mention (`<@123>`,
/// `<#123>`, `<:emoji:123>`…), a URL or a number (a phone number such as
/// `+81 90-1234-5678` or `０９０ー１２３４`): such a run is cut only when it is
/// itself longer than `max`.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    if text.chars().count() <= max {
        let piece = text.trim_end();
        return if piece.is_empty() {
            Vec::new()
        } else {
            vec![piece.to_string()]
        };
    }
    let graphemes: Vec<(usize, &str)> = text.grapheme_indices(true).collect();
    let atoms = unbreakable_runs(text);
    // Boundary `i` lies before grapheme `i` (and `graphemes.len()` at the end).
    let byte_at = |i: usize| graphemes.get(i).map_or(text.len(), |(b, _)| *b);
    let allowed = |i: usize| {
        let b = byte_at(i);
        !atoms.iter().any(|&(start, end)| start < b && b < end)
    };
    let priority = |i: usize| -> u8 {
        let before = graphemes.get(i.wrapping_sub(1)).map_or("", |g| g.1);
        let after = graphemes.get(i).map_or("", |g| g.1);
        let before_that = i
            .checked_sub(2)
            .and_then(|j| graphemes.get(j))
            .map_or("", |g| g.1);
        if before.ends_with('\n') {
            5
        } else if (is_sentence_end(before) && !is_closing(after))
            || (is_closing(before) && is_sentence_end(before_that))
        {
            4
        } else if before == "\u{3000}" {
            3
        } else if before == " " {
            2
        } else if before == "、" {
            1
        } else {
            0
        }
    };
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < graphemes.len() {
        // The last boundary that keeps the piece within `max` characters.
        let mut fit = pos;
        let mut chars = 0;
        let mut half = None;
        while fit < graphemes.len() {
            let len = graphemes[fit].1.chars().count();
            if chars + len > max {
                break;
            }
            chars += len;
            fit += 1;
            if half.is_none() && chars >= max / 2 {
                half = Some(fit);
            }
        }
        let cut = if fit == graphemes.len() {
            fit
        } else if fit == pos {
            // One grapheme longer than `max` (never in practice): take it.
            pos + 1
        } else {
            let best_in = |from: usize| {
                (from..=fit)
                    .filter(|&i| i > pos && allowed(i))
                    .max_by_key(|&i| (priority(i), i))
            };
            // A natural break in the second half; else the best anywhere
            // (a short piece reads better than a cut sentence); else the
            // last place outside a mention, URL or number; else `fit`.
            half.and_then(best_in)
                .filter(|&i| priority(i) > 0)
                .or_else(|| best_in(pos + 1))
                .unwrap_or(fit)
        };
        let piece = text[byte_at(pos)..byte_at(cut)]
            .trim_start_matches(['\n', '\r'])
            .trim_end();
        if !piece.is_empty() {
            pieces.push(piece.to_string());
        }
        pos = cut;
    }
    pieces
}

fn is_sentence_end(g: &str) -> bool {
    matches!(g, "。" | "！" | "？" | "!" | "?")
}

fn is_closing(g: &str) -> bool {
    matches!(g, "」" | "』" | "）" | "】" | "〉" | "》" | ")")
}

/// Byte ranges a split must not fall inside: mentions, URLs, numbers.
fn unbreakable_runs(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let rest = &text[chars[i].0..];
        let c = chars[i].1;
        // <@123> <@!123> <@&123> <#123> <:name:123> <a:name:123> <t:123:R> </cmd:123>
        if c == '<' {
            let kind_ok = rest[1..].starts_with(['@', '#', ':', '/'])
                || rest[1..].starts_with("a:")
                || rest[1..].starts_with("t:");
            if let Some(close) = rest.find('>').filter(|&e| e <= 120) {
                if kind_ok && !rest[..close].contains('\n') {
                    let end = chars[i].0 + close + 1;
                    runs.push((chars[i].0, end));
                    while i < chars.len() && chars[i].0 < end {
                        i += 1;
                    }
                    continue;
                }
            }
        }
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let start = i;
            while i < chars.len()
                && chars[i].1.is_ascii()
                && !chars[i].1.is_ascii_whitespace()
                && !matches!(chars[i].1, '<' | '>')
            {
                i += 1;
            }
            runs.push((byte_at(start), byte_at(i)));
            continue;
        }
        let starts_number = is_digit(c)
            || (matches!(c, '+' | '＋') && chars.get(i + 1).is_some_and(|n| is_digit(n.1)));
        if starts_number {
            let start = i;
            let mut last_digit = i;
            i += 1;
            while i < chars.len() && (is_digit(chars[i].1) || is_number_separator(chars[i].1)) {
                if is_digit(chars[i].1) {
                    last_digit = i;
                }
                i += 1;
            }
            if last_digit > start {
                runs.push((byte_at(start), byte_at(last_digit + 1)));
            }
            i = last_digit + 1;
            continue;
        }
        i += 1;
    }
    runs
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// What people put between the digits of a phone number (ASCII and
/// full-width hyphens, the long vowel mark, dashes, brackets, spaces).
fn is_number_separator(c: char) -> bool {
    matches!(
        c,
        '-' | 'ー' | '－' | '‐' | '—' | '–' | '(' | ')' | '（' | '）' | ' ' | '\u{3000}' | '.'
    )
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

    /// Every piece within `max`, nothing lost but the whitespace at a cut.
    fn check_pieces(text: &str, max: usize) -> Vec<String> {
        let pieces = split_text(text, max);
        for piece in &pieces {
            assert!(piece.chars().count() <= max, "{piece:?} is over {max}");
        }
        let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        assert_eq!(strip(&pieces.concat()), strip(text), "content kept");
        pieces
    }

    #[test]
    fn japanese_is_split_after_a_sentence_end() {
        let sentence = format!("{}。", "あ".repeat(29));
        let text = sentence.repeat(5);
        let pieces = check_pieces(&text, 100);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.ends_with('。')), "{pieces:?}");
        // The closing bracket stays with its sentence.
        let quoted = format!("{}「はい。」{}", "い".repeat(40), "う".repeat(40));
        let pieces = check_pieces(&quoted, 60);
        assert!(pieces[0].ends_with("「はい。」"), "{pieces:?}");
    }

    #[test]
    fn a_line_break_wins_over_a_sentence_end_then_the_full_width_space() {
        let text = format!(
            "{}。{}\n{}",
            "あ".repeat(30),
            "い".repeat(30),
            "う".repeat(30)
        );
        let pieces = check_pieces(&text, 80);
        assert!(pieces[0].ends_with('い'), "{pieces:?}");
        let spaced = format!("{}\u{3000}{}", "え".repeat(40), "お".repeat(40));
        let pieces = check_pieces(&spaced, 60);
        assert_eq!(pieces[0], "え".repeat(40));
    }

    #[test]
    fn never_inside_a_zwj_emoji() {
        // 👩‍💻 is three code points (woman, ZWJ, laptop): one grapheme.
        let emoji = "👩\u{200D}💻";
        let text = format!("{}{emoji}{}", "あ".repeat(48), "い".repeat(10));
        let pieces = check_pieces(&text, 50);
        assert!(pieces.iter().any(|p| p.contains(emoji)), "{pieces:?}");
        assert!(pieces
            .iter()
            .all(|p| !p.ends_with('\u{200D}') && !p.starts_with('\u{200D}')));
        // A flag (two regional indicators) is one grapheme too.
        let flag = "🇯🇵";
        let text = format!("{}{flag}{}", "あ".repeat(49), "い".repeat(10));
        let pieces = check_pieces(&text, 50);
        assert!(pieces.iter().any(|p| p.contains(flag)), "{pieces:?}");
    }

    #[test]
    fn never_inside_a_mention_a_url_or_a_phone_number() {
        let keeps_whole = |needle: &str| {
            for filler in 30..50 {
                let text = format!("{}{needle}{}", "あ".repeat(filler), "い".repeat(30));
                let pieces = check_pieces(&text, 50);
                assert!(
                    pieces.iter().any(|p| p.contains(needle)),
                    "{needle} cut at {filler}: {pieces:?}"
                );
            }
        };
        keeps_whole("<@123456789012345678>");
        keeps_whole("<#123456789012345678>");
        keeps_whole("https://aka.ms/mfasetup");
        keeps_whole("+81 90-1234-5678");
        keeps_whole("０９０ー１２３４ー５６７８");
    }

    #[test]
    fn a_run_longer_than_the_limit_is_still_cut() {
        let url = format!("https://example.com/{}", "a".repeat(120));
        let pieces = check_pieces(&url, 50);
        assert_eq!(pieces.len(), 3);
    }

    #[test]
    fn reply_messages_split_and_keep_choices_on_the_last_piece() {
        let text = format!("{}。", "あ".repeat(1500)).repeat(2);
        let choices = [RenderedChoice {
            id: "c".into(),
            label: "L".into(),
        }];
        let messages = reply_messages(&text, &choices);
        assert_eq!(messages.len(), 2);
        let json = |m: &CreateMessage| serde_json::to_value(m).expect("json");
        assert!(json(&messages[0])["components"]
            .as_array()
            .is_none_or(Vec::is_empty));
        assert_eq!(
            json(&messages[1])["components"][0]["components"][0]["custom_id"],
            "mg:c"
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
