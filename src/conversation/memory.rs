//! In-memory [`Store`] for unit tests and throw-away terminal sessions.
//!
//! Same semantics as the SQLite store (duplicate keys, optimistic versions,
//! atomic commits) behind one `std::sync::Mutex`: every operation is short
//! and never awaits while holding it, so a blocking lock is the simple and
//! correct choice. No group commit here (the SQLite store's batching):
//! there is nothing to flush, and a commit is a few map inserts done in
//! the caller's own poll, so there is no hand-over to save either.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::*;

#[derive(Default)]
struct Inner {
    conversations: BTreeMap<String, ConversationRecord>,
    seen: HashSet<(String, String)>,
    transcript: BTreeMap<String, Vec<TranscriptEntry>>,
    outbox: Vec<(OutboxMessage, bool)>,
    timers: BTreeMap<String, (TimerRow, bool)>,
    handoffs: Vec<HandoffRecord>,
    addresses: BTreeMap<String, String>,
    references: BTreeMap<(String, String), String>,
    failed: BTreeMap<i64, String>,
    /// Row id → the parts the platform accepted ([`Store::record_sent_parts`]).
    sent_parts: BTreeMap<i64, Vec<Option<String>>>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        Ok(self.lock()?.conversations.get(id).cloned())
    }

    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        Ok(self
            .lock()?
            .conversations
            .values()
            .filter(|c| c.channel == channel && c.user_key == user_key)
            .max_by_key(|c| c.updated_at)
            .cloned())
    }

    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>> {
        let mut found: Vec<ConversationRecord> = self
            .lock()?
            .conversations
            .values()
            .filter(|c| c.channel == channel && c.user_key == user_key)
            .cloned()
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
        Ok(found)
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        let mut inner = self.lock()?;
        let id = commit.conversation.id.clone();
        if let Some(key) = &commit.inbound_key {
            if inner.seen.contains(&(id.clone(), key.clone())) {
                return Ok(CommitOutcome::Duplicate);
            }
        }
        let current = inner.conversations.get(&id).map(|c| c.version);
        let version = match (commit.expected_version, current) {
            (None, None) => 1,
            (Some(expected), Some(current)) if expected == current => current + 1,
            _ => return Ok(CommitOutcome::Conflict),
        };
        if let Some(key) = commit.inbound_key {
            inner.seen.insert((id.clone(), key));
        }
        let mut record = commit.conversation;
        record.version = version;
        if let Some(existing) = inner.conversations.get(&id) {
            record.created_at = existing.created_at;
        } else if let Some(address) = &record.address {
            inner.addresses.insert(id.clone(), address.clone());
        }
        inner.conversations.insert(id.clone(), record);
        inner
            .transcript
            .entry(id.clone())
            .or_default()
            .extend(commit.transcript);
        let mut outbox_ids = Vec::new();
        for (channel, payload) in commit.outbox {
            let row_id = inner.outbox.len() as i64 + 1;
            outbox_ids.push(row_id);
            inner.outbox.push((
                OutboxMessage {
                    id: row_id,
                    conversation_id: id.clone(),
                    channel,
                    payload,
                    created_at: Utc::now(),
                    attempts: 0,
                },
                false,
            ));
        }
        for (timer, done) in inner.timers.values_mut() {
            if timer.conversation_id == id && commit.cancel_timer_kinds.contains(&timer.kind) {
                *done = true;
            }
        }
        if let Some(fired) = &commit.fired_timer {
            if let Some((_, done)) = inner.timers.get_mut(fired) {
                *done = true;
            }
        }
        for timer in commit.new_timers {
            inner.timers.insert(timer.id.clone(), (timer, false));
        }
        if let Some(reference) = commit.reference {
            inner
                .references
                .insert((reference.channel, reference.address), reference.reference);
        }
        if let Some(handoff) = commit.open_handoff {
            inner.handoffs.push(handoff);
        }
        if let Some((ticket, status)) = commit.handoff_status {
            for handoff in inner.handoffs.iter_mut().filter(|h| h.ticket == ticket) {
                handoff.status = status.clone();
            }
        }
        Ok(CommitOutcome::Committed {
            version,
            outbox_ids,
        })
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        let inner = self.lock()?;
        let mut due: Vec<TimerRow> = inner
            .timers
            .values()
            .filter(|(t, done)| {
                !done && t.due_at <= now && conversation.is_none_or(|c| c == t.conversation_id)
            })
            .map(|(t, _)| t.clone())
            .collect();
        due.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.id.cmp(&b.id)));
        Ok(due)
    }

    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let inner = self.lock()?;
        Ok(inner
            .timers
            .values()
            .filter(|(t, done)| !done && conversation.is_none_or(|c| c == t.conversation_id))
            .map(|(t, _)| t.due_at)
            .min())
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        let inner = self.lock()?;
        let mut conversations: Vec<String> = Vec::new();
        for (m, sent) in &inner.outbox {
            if !sent && m.channel == channel && !conversations.contains(&m.conversation_id) {
                conversations.push(m.conversation_id.clone());
            }
        }
        conversations.truncate(limit.max(0) as usize);
        Ok(conversations)
    }

    async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let inner = self.lock()?;
        Ok(inner
            .outbox
            .iter()
            .filter(|(m, _)| m.conversation_id == conversation && m.id > after)
            .take(limit.max(0) as usize)
            .map(|(m, _)| m.clone())
            .collect())
    }

    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let inner = self.lock()?;
        Ok(inner
            .outbox
            .iter()
            .filter(|(m, sent)| !sent && m.channel == channel && m.conversation_id == conversation)
            .take(limit.max(0) as usize)
            .map(|(m, _)| m.clone())
            .collect())
    }

    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut inner = self.lock()?;
        let id = inner.outbox.len() as i64 + 1;
        inner.outbox.push((
            OutboxMessage {
                id,
                conversation_id: conversation.to_string(),
                channel: channel.to_string(),
                payload,
                created_at: at,
                attempts: 0,
            },
            false,
        ));
        Ok(id)
    }

    async fn enqueue_once(
        &self,
        conversation: &str,
        channel: &str,
        key: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        {
            let mut inner = self.lock()?;
            if !inner
                .seen
                .insert((conversation.to_string(), key.to_string()))
            {
                return Ok(None);
            }
        }
        self.enqueue(conversation, channel, payload, at)
            .await
            .map(Some)
    }

    async fn mark_sent(&self, ids: &[i64], _at: DateTime<Utc>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        for (message, sent) in inner.outbox.iter_mut() {
            if ids.contains(&message.id) {
                *sent = true;
            }
        }
        Ok(())
    }

    async fn record_sent_parts(&self, id: i64, parts: &[Option<String>]) -> StoreResult<()> {
        let mut inner = self.lock()?;
        let unsent = inner
            .outbox
            .iter()
            .any(|(message, sent)| message.id == id && !sent);
        if unsent {
            inner.sent_parts.insert(id, parts.to_vec());
        }
        Ok(())
    }

    async fn sent_parts(&self, id: i64) -> StoreResult<Vec<Option<String>>> {
        let inner = self.lock()?;
        let unsent = inner
            .outbox
            .iter()
            .any(|(message, sent)| message.id == id && !sent);
        Ok(match inner.sent_parts.get(&id) {
            Some(parts) if unsent => parts.clone(),
            _ => Vec::new(),
        })
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        Ok(self
            .lock()?
            .transcript
            .get(conversation)
            .cloned()
            .unwrap_or_default())
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        Ok(self
            .lock()?
            .handoffs
            .iter()
            .find(|h| h.ticket == ticket)
            .cloned())
    }

    async fn queue_length(&self) -> StoreResult<i64> {
        Ok(self
            .lock()?
            .handoffs
            .iter()
            .filter(|h| h.status == "queued")
            .count() as i64)
    }

    async fn queue_position(&self, ticket: &str) -> StoreResult<i64> {
        let inner = self.lock()?;
        let Some(this) = inner.handoffs.iter().find(|h| h.ticket == ticket) else {
            return Ok(0);
        };
        Ok(inner
            .handoffs
            .iter()
            .filter(|h| h.status == "queued" && h.created_at <= this.created_at)
            .count() as i64)
    }

    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        let inner = self.lock()?;
        Ok(inner
            .conversations
            .values()
            .filter(|c| c.channel == channel)
            .filter(|c| inner.addresses.get(&c.id).is_some_and(|a| a == address))
            .max_by_key(|c| c.updated_at)
            .cloned())
    }

    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>> {
        Ok(self.lock()?.addresses.get(conversation).cloned())
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        for handoff in self
            .lock()?
            .handoffs
            .iter_mut()
            .filter(|h| h.ticket == ticket)
        {
            handoff.agent_address = Some(address.to_string());
        }
        Ok(())
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        Ok(self
            .lock()?
            .handoffs
            .iter()
            .rev()
            .find(|h| h.agent_address.as_deref() == Some(address))
            .cloned())
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        Ok(self
            .lock()?
            .references
            .get(&(channel.to_string(), address.to_string()))
            .cloned())
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        Ok(self.lock()?.failed.get(&id).cloned())
    }

    async fn mark_failed(&self, id: i64, reason: &str, _at: DateTime<Utc>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        for (message, sent) in inner.outbox.iter_mut() {
            if message.id == id {
                *sent = true;
            }
        }
        inner.failed.insert(id, reason.to_string());
        Ok(())
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        Ok(self
            .lock()?
            .handoffs
            .iter()
            .filter(|h| h.conversation_id == conversation)
            .cloned()
            .collect())
    }
}
