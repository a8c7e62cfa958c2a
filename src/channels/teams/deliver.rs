//! Outbox rows → Bot Framework activities; the generic sender
//! ([`crate::outbox::sender`]) does the rest (order, concurrency, retries
//! honouring `Retry-After`, marking rows sent or failed).
//!
//! - `Replies`: to the person's conversation, proactively from the stored
//!   conversation reference (reminders and agent messages work the same way),
//!   as a reply to the activity stored with the reference
//!   (`POST …/activities/{replyToId}` with `replyToId` in the body, as the
//!   Bot Framework SDKs send a reply).
//! - `Handoff`: an Adaptive Card with the summary, the recent messages and
//!   Claim/Close buttons in the agents' channel; the card's id is recorded
//!   as the ticket's agents' address (a retry after a crash posts no second
//!   card).
//! - `Relay`, `AgentNote`, `Transcript`: into that card's reply thread.
//! - `AgentsNotice`: back into the agents' thread it answers (a refusal).
//!
//! Teams' rules applied here:
//!
//! - **Pacing**: every post waits for its turn in [`super::pacing`] (the
//!   per-thread rate limit; the agents' channel is one thread).
//! - **Size**: a text whose activity would exceed
//!   [`MAX_ACTIVITY_BYTES`] is split into several activities, at line
//!   breaks where possible, never inside a grapheme cluster (so never
//!   inside a character or a ZWJ emoji). A handoff card too large drops its
//!   oldest recent lines (the transcript at close has them all).
//! - **Progress**: a row that becomes several activities records, after
//!   each activity Teams accepted, the ids accepted so far on the row
//!   ([`crate::conversation::store::Store::record_sent_parts`]), and keeps
//!   them in memory too; a retry after a later one failed, or a redelivery
//!   after a crash on any instance, sends only the rest (at most once per
//!   activity; only an activity accepted just before a `kill -9`, before
//!   its id was recorded, is sent again). Stores that do not keep parts
//!   (test wrappers) have the memory only. The map is cleared when a row
//!   is done and pruned if rows are abandoned. The row's receipt is the
//!   activity's id, or the JSON list of them when there were several.
//! - **Agents' channel**: a post it refuses for good (403/404: a private
//!   channel, a wrong id, the bot not in the team) is an operator problem:
//!   logged as an error naming `teams.agents_conversation_id` and shown on
//!   `/healthz` until a post there succeeds. Bots cannot post in private
//!   channels and the Bot Framework offers bots no way to ask whether a
//!   channel is private, so this is found at the first card, not at
//!   start-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{json, Value};
use unicode_segmentation::UnicodeSegmentation;

use super::activity::{adaptive_card, reply_activity, ConversationReference, AGENT_ACTION_KEY};
use super::connector::{activity_size, MAX_ACTIVITY_BYTES};
use super::{TeamsContext, CHANNEL};
use crate::conversation::store::sent_parts_to_text;
use crate::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow, RenderedReply};

/// Rows whose progress is remembered before the oldest are forgotten.
const PROGRESS_LIMIT: usize = 1024;

/// Room left in every activity for what the size estimate does not see.
const SIZE_MARGIN: usize = 512;

/// One activity to post.
#[derive(Debug, Clone)]
struct Post {
    service_url: String,
    conversation: String,
    /// The activity this post answers (`replyToActivity`), if any.
    reply_to: Option<String>,
    activity: Value,
}

/// Delivers Teams rows through the connector.
pub struct TeamsDeliver {
    pub ctx: Arc<TeamsContext>,
    /// Row id → ids of its activities Teams accepted so far, in order.
    progress: Mutex<HashMap<i64, Vec<Option<String>>>>,
}

fn bad_reference(e: serde_json::Error) -> DeliveryError {
    DeliveryError::Permanent(format!("bad stored reference: {e}"))
}

/// What the operator must fix when the agents' channel refuses the bot.
fn agents_channel_problem(reason: &str) -> String {
    format!(
        "teams: the agents' channel refused the bot ({reason}); teams.agents_conversation_id must be a standard channel (bots cannot post in private channels) of a team where the app is installed, and teams.agents_service_url that team's service URL"
    )
}

impl TeamsDeliver {
    pub fn new(ctx: Arc<TeamsContext>) -> TeamsDeliver {
        TeamsDeliver {
            ctx,
            progress: Mutex::new(HashMap::new()),
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Option<String>>>> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn agents_configured(&self) -> Result<(), DeliveryError> {
        let config = &self.ctx.config;
        if config.agents_conversation_id.is_empty() || config.agents_service_url.is_empty() {
            return Err(DeliveryError::Permanent(
                "no agents' channel: set teams.agents_conversation_id and teams.agents_service_url"
                    .into(),
            ));
        }
        Ok(())
    }

    fn is_agents_channel(&self, conversation: &str) -> bool {
        let agents = &self.ctx.config.agents_conversation_id;
        !agents.is_empty() && super::pacing::thread_of(conversation) == agents
    }

    /// The person's stored conversation reference, and the id of the
    /// activity it was stored with (what replies answer).
    async fn person_reference(
        &self,
        conversation: &str,
    ) -> Result<(ConversationReference, Option<String>), DeliveryError> {
        let reference = self
            .ctx
            .desk
            .person_reference(CHANNEL, conversation)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| DeliveryError::Permanent("no stored conversation reference".into()))?;
        let value: Value = serde_json::from_str(&reference).map_err(bad_reference)?;
        let reply_to = value
            .get(super::inbound::REPLY_TO_KEY)
            .and_then(Value::as_str)
            .map(str::to_string);
        let reference = serde_json::from_value(value).map_err(bad_reference)?;
        Ok((reference, reply_to))
    }

    /// The reply thread of `ticket`'s card in the agents' channel.
    async fn ticket_thread(&self, ticket: &str) -> Result<String, DeliveryError> {
        self.agents_configured()?;
        let card = self
            .ctx
            .desk
            .ticket(ticket)
            .await
            .map_err(DeliveryError::retry)?
            .ok_or_else(|| DeliveryError::Permanent(format!("unknown ticket {ticket}")))?
            .agent_address
            .ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "ticket {ticket} has no card in the agents' channel"
                ))
            })?;
        Ok(format!(
            "{};messageid={card}",
            self.ctx.config.agents_conversation_id
        ))
    }

    /// Posts `posts` in order, skipping those of row `row` Teams already
    /// accepted; returns the ids of all of them.
    async fn send_all(
        &self,
        row: i64,
        posts: &[Post],
    ) -> Result<Vec<Option<String>>, DeliveryError> {
        let remembered = self.progress().get(&row).cloned();
        let mut accepted = match remembered {
            Some(accepted) => accepted,
            // A redelivery (after a crash, or by another instance): the
            // parts recorded on the row went out already.
            None if posts.len() > 1 => self
                .ctx
                .desk
                .sent_parts(row)
                .await
                .map_err(DeliveryError::retry)?,
            None => Vec::new(),
        };
        if !accepted.is_empty() && accepted.len() < posts.len() {
            tracing::info!(
                row,
                sent = accepted.len(),
                parts = posts.len(),
                "Teams: resuming a row after the parts already accepted"
            );
        }
        for post in posts.iter().skip(accepted.len()) {
            let size = activity_size(&post.activity);
            if size > MAX_ACTIVITY_BYTES {
                return Err(DeliveryError::Permanent(format!(
                    "an activity of {size} bytes (UTF-16) is over the {MAX_ACTIVITY_BYTES}-byte limit"
                )));
            }
            let sent = self
                .ctx
                .pacer
                .run(
                    &post.conversation,
                    self.ctx.connector.send(
                        &post.service_url,
                        &post.conversation,
                        post.reply_to.as_deref(),
                        &post.activity,
                    ),
                )
                .await;
            let agents = self.is_agents_channel(&post.conversation);
            match sent {
                Ok(id) => {
                    if agents {
                        self.ctx.health.agents_channel_ok();
                    }
                    accepted.push(id);
                    self.remember(row, accepted.clone());
                    // The last part is recorded by marking the row sent.
                    if posts.len() > 1 && accepted.len() < posts.len() {
                        if let Err(e) = self.ctx.desk.record_sent_parts(row, &accepted).await {
                            tracing::warn!(row, error = %e, "Teams: could not record the parts sent (after a crash they would be sent again)");
                        }
                    }
                }
                Err(DeliveryError::Permanent(reason)) if agents => {
                    let problem = agents_channel_problem(&reason);
                    tracing::error!(%problem, "Teams: a post to the agents' channel failed for good");
                    self.ctx.health.agents_channel_failed(&problem);
                    return Err(DeliveryError::Permanent(problem));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(accepted)
    }

    fn remember(&self, row: i64, accepted: Vec<Option<String>>) {
        let mut progress = self.progress();
        progress.insert(row, accepted);
        if progress.len() > PROGRESS_LIMIT {
            // Rows given up by the sender after a retryable failure are
            // never cleared here; the oldest ids go first.
            let mut ids: Vec<i64> = progress.keys().copied().collect();
            ids.sort_unstable();
            for id in ids.into_iter().take(PROGRESS_LIMIT / 2) {
                progress.remove(&id);
            }
        }
    }

    /// The activities of one row.
    async fn posts(&self, item: &OutboxItem) -> Result<Vec<Post>, DeliveryError> {
        let config = &self.ctx.config;
        match &item.row {
            OutboxRow::Replies { replies } => {
                let (reference, reply_to) = self.person_reference(&item.conversation_id).await?;
                Ok(replies
                    .iter()
                    .flat_map(|reply| split_reply(&reference, reply))
                    .map(|mut activity| {
                        if let Some(id) = &reply_to {
                            activity["replyToId"] = json!(id);
                        }
                        Post {
                            service_url: reference.service_url.clone(),
                            conversation: reference.conversation_id.clone(),
                            reply_to: reply_to.clone(),
                            activity,
                        }
                    })
                    .collect())
            }
            OutboxRow::Handoff {
                ticket,
                summary,
                recent_title,
                recent,
                actions,
                ..
            } => {
                self.agents_configured()?;
                let buttons: Vec<Value> = actions
                    .iter()
                    .map(|a| json!({ "type": "Action.Submit", "title": a.label, "data": { AGENT_ACTION_KEY: a.id, "ticket": ticket } }))
                    .collect();
                Ok(vec![Post {
                    service_url: config.agents_service_url.clone(),
                    conversation: config.agents_conversation_id.clone(),
                    reply_to: None,
                    activity: handoff_card(summary, recent_title, recent, buttons),
                }])
            }
            OutboxRow::Relay { ticket, text }
            | OutboxRow::AgentNote { ticket, text }
            | OutboxRow::Transcript { ticket, text } => {
                let thread = self.ticket_thread(ticket).await?;
                let envelope = plain_activity("");
                Ok(split_text(text, budget(&envelope))
                    .into_iter()
                    .map(|part| Post {
                        service_url: config.agents_service_url.clone(),
                        conversation: thread.clone(),
                        reply_to: None,
                        activity: plain_activity(&part),
                    })
                    .collect())
            }
            OutboxRow::AgentsNotice { address, text } => {
                let reference: ConversationReference =
                    serde_json::from_str(address).map_err(bad_reference)?;
                let reply = RenderedReply {
                    message_id: String::new(),
                    text: text.clone(),
                    choices: Vec::new(),
                };
                Ok(split_reply(&reference, &reply)
                    .into_iter()
                    .map(|activity| Post {
                        service_url: reference.service_url.clone(),
                        conversation: reference.conversation_id.clone(),
                        reply_to: None,
                        activity,
                    })
                    .collect())
            }
        }
    }

    async fn deliver_row(&self, item: &OutboxItem) -> Result<Vec<Option<String>>, DeliveryError> {
        if let OutboxRow::Handoff { ticket, .. } = &item.row {
            let existing = self
                .ctx
                .desk
                .ticket(ticket)
                .await
                .map_err(DeliveryError::retry)?
                .and_then(|t| t.agent_address);
            if let Some(card) = existing {
                return Ok(vec![Some(card)]); // posted before a crash
            }
        }
        let posts = self.posts(item).await?;
        let ids = self.send_all(item.id, &posts).await?;
        if let OutboxRow::Handoff { ticket, .. } = &item.row {
            let id = ids.first().cloned().flatten().ok_or_else(|| {
                DeliveryError::Permanent("the connector did not return the card's id".into())
            })?;
            // Remembered in `progress` until this succeeds: a retry sets
            // the address without posting a second card.
            self.ctx
                .desk
                .set_agent_address(ticket, &id)
                .await
                .map_err(DeliveryError::retry)?;
        }
        Ok(ids)
    }
}

#[async_trait]
impl Deliver for TeamsDeliver {
    fn channel(&self) -> &str {
        CHANNEL
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
        self.deliver_with_receipt(item).await.map(|_| ())
    }

    async fn deliver_with_receipt(
        &self,
        item: &OutboxItem,
    ) -> Result<Option<String>, DeliveryError> {
        let result = self.deliver_row(item).await;
        // Done with the row (sent, or given up for good): forget its
        // progress. A temporary failure keeps it for the retry.
        if matches!(result, Ok(_) | Err(DeliveryError::Permanent(_))) {
            self.progress().remove(&item.id);
        }
        result.map(|ids| match ids.as_slice() {
            [] => None,
            [one] => one.clone(),
            several => Some(sent_parts_to_text(several)),
        })
    }
}

/// A plain-text message (no Markdown).
fn plain_activity(text: &str) -> Value {
    json!({ "type": "message", "text": text, "textFormat": "plain" })
}

/// Bytes (UTF-16) left for the text in an activity shaped like `envelope`
/// (whose text is empty).
fn budget(envelope: &Value) -> usize {
    MAX_ACTIVITY_BYTES.saturating_sub(activity_size(envelope) + SIZE_MARGIN)
}

/// A reply as one or more activities: the text split to fit, the choices
/// (suggested actions or a card) on the last part.
fn split_reply(reference: &ConversationReference, reply: &RenderedReply) -> Vec<Value> {
    // Nearly every reply is far under the limit: one activity, built once.
    let whole = reply_activity(reference, reply);
    if activity_size(&whole) + SIZE_MARGIN <= MAX_ACTIVITY_BYTES / 2 {
        return vec![whole];
    }
    let plain = RenderedReply {
        message_id: reply.message_id.clone(),
        text: String::new(),
        choices: Vec::new(),
    };
    let envelope = reply_activity(reference, &plain);
    // The card or suggested actions of the last part take room too.
    let with_choices = reply_activity(
        reference,
        &RenderedReply {
            text: String::new(),
            ..reply.clone()
        },
    );
    let room = budget(&envelope).min(budget(&with_choices));
    let parts = split_text(&reply.text, room);
    let last = parts.len().saturating_sub(1);
    parts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let part = RenderedReply {
                message_id: reply.message_id.clone(),
                text,
                choices: if i == last {
                    reply.choices.clone()
                } else {
                    Vec::new()
                },
            };
            reply_activity(reference, &part)
        })
        .collect()
}

/// The handoff card, with as many of the recent lines (newest kept) as
/// fit under the size limit.
fn handoff_card(
    summary: &str,
    recent_title: &str,
    recent: &[String],
    buttons: Vec<Value>,
) -> Value {
    let mut skip = 0;
    loop {
        let shown = &recent[skip.min(recent.len())..];
        let mut text = summary.to_string();
        if !shown.is_empty() {
            text.push_str(&format!("\n\n{recent_title}\n{}", shown.join("\n")));
        }
        let card =
            json!({ "type": "message", "attachments": [adaptive_card(&text, buttons.clone())] });
        if activity_size(&card) + SIZE_MARGIN <= MAX_ACTIVITY_BYTES || shown.is_empty() {
            return card;
        }
        skip += 1;
    }
}

/// Bytes a character takes inside a JSON string, encoded as UTF-16.
fn json_utf16_bytes(c: char) -> usize {
    let units = match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf16(),
    };
    units * 2
}

fn cost(text: &str) -> usize {
    text.chars().map(json_utf16_bytes).sum()
}

/// Splits `text` into parts that each cost at most `budget` bytes in an
/// activity's JSON (UTF-16): whole lines where they fit; a longer line at
/// its last `。`, `、` or space within the budget, else between grapheme
/// clusters. Every part is non-empty; an empty text is one empty part.
pub fn split_text(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(64);
    if cost(text) <= budget {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_cost = 0;
    for line in text.split('\n') {
        let line_cost = cost(line);
        let joiner = if current.is_empty() { 0 } else { 2 };
        if current_cost + joiner + line_cost <= budget {
            if joiner > 0 {
                current.push('\n');
            }
            current.push_str(line);
            current_cost += joiner + line_cost;
            continue;
        }
        if !current.is_empty() {
            parts.push(std::mem::take(&mut current));
            current_cost = 0;
        }
        if line_cost <= budget {
            current.push_str(line);
            current_cost = line_cost;
            continue;
        }
        let mut pieces = split_line(line, budget);
        if let Some(last) = pieces.pop() {
            parts.extend(pieces);
            current_cost = cost(&last);
            current = last;
        }
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

/// Splits one line longer than `budget` between grapheme clusters,
/// preferring the last sentence or word break of each part.
fn split_line(line: &str, budget: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut current_cost = 0;
    // Byte offset in `current` just after its last good break.
    let mut last_break: Option<usize> = None;
    for grapheme in line.graphemes(true) {
        let grapheme_cost = cost(grapheme);
        if current_cost + grapheme_cost > budget && !current.is_empty() {
            let cut = last_break
                .filter(|at| *at > current.len() / 2)
                .unwrap_or(current.len());
            let rest = current.split_off(cut);
            parts.push(std::mem::replace(&mut current, rest));
            current_cost = cost(&current);
            last_break = None;
        }
        current.push_str(grapheme);
        current_cost += grapheme_cost;
        if matches!(
            grapheme,
            "。" | "、" | " " | "　" | "." | "," | "!" | "?" | "！" | "？"
        ) {
            last_break = Some(current.len());
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_stay_whole_and_long_ones_split_at_lines() {
        assert_eq!(split_text("短い", 1000), vec!["短い"]);
        assert_eq!(split_text("", 1000), vec![""]);
        let line = "あ".repeat(40); // 80 bytes
        let text = [line.as_str(); 5].join("\n");
        let parts = split_text(&text, 200);
        assert_eq!(
            parts,
            vec![
                format!("{line}\n{line}"),
                format!("{line}\n{line}"),
                line.clone()
            ]
        );
        assert!(parts.iter().all(|p| cost(p) <= 200));
    }

    #[test]
    fn a_long_line_splits_at_a_sentence_end_and_never_inside_a_grapheme() {
        let sentence = format!("{}。", "い".repeat(30));
        let text = sentence.repeat(4);
        let parts = split_text(&text, 150);
        assert!(parts.iter().all(|p| p.ends_with('。')), "{parts:?}");
        assert_eq!(parts.concat(), text);
        // Family emoji (ZWJ sequences) and skin tones stay whole.
        let emoji = "👨‍👩‍👧👍🏽".repeat(30);
        let parts = split_text(&emoji, 100);
        assert_eq!(parts.concat(), emoji);
        for part in &parts {
            assert!(cost(part) <= 100, "{} bytes", cost(part));
            assert!(part.starts_with('👨') || part.starts_with('👍'), "{part}");
            assert!(!part.starts_with('\u{1F3FD}') && !part.starts_with('\u{200D}'));
        }
    }

    #[test]
    fn escaped_characters_count_as_they_are_sent() {
        assert_eq!(cost("a\"\\\n\u{1}"), 2 + 4 + 4 + 4 + 12);
        assert_eq!(cost("😀"), 4);
        let text = "\"".repeat(100);
        let parts = split_text(&text, 64);
        assert!(parts.iter().all(|p| cost(p) <= 64));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn a_large_handoff_card_drops_its_oldest_recent_lines() {
        let recent: Vec<String> = (0..20)
            .map(|i| format!("{i:02} {}", "あ".repeat(1000)))
            .collect();
        let card = handoff_card("要約", "最近", &recent, Vec::new());
        assert!(activity_size(&card) <= MAX_ACTIVITY_BYTES);
        let text = card["attachments"][0]["content"]["body"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(text.contains("19 "), "the newest line is kept");
        assert!(!text.contains("00 "), "the oldest line is dropped");
    }
}
