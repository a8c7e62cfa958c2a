//! A store that makes the first `gate` lookups of "the conversation at
//! an address" wait for each other (a barrier) before answering: two first
//! messages of one person then both see no conversation before either is
//! opened — the race between two instances (or two tasks), made certain.
//! Everything else is the wrapped store's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use madoguchi::conversation::store::*;
use serde_json::Value;
use tokio::sync::Barrier;

pub struct GatedStore {
    pub inner: Arc<dyn Store>,
    pub barrier: Arc<Barrier>,
    /// Lookups still to hold at the barrier (shared by every store of a
    /// test, so two instances' lookups meet).
    pub gate: Arc<AtomicUsize>,
}

#[async_trait]
impl Store for GatedStore {
    async fn conversation_at(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        let found = self.inner.conversation_at(channel, address).await;
        let gated = self
            .gate
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if gated {
            self.barrier.wait().await;
        }
        found
    }

    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        self.inner.load(id).await
    }

    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.inner.latest_for_user(channel, user_key).await
    }

    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>> {
        self.inner.conversations_of_user(channel, user_key).await
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        self.inner.commit(commit).await
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        self.inner.due_timers(now, conversation).await
    }

    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.inner.next_timer_due(conversation).await
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        self.inner.pending_conversations(channel, limit).await
    }

    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.inner
            .pending_outbox(channel, conversation, limit)
            .await
    }

    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        self.inner.enqueue(conversation, channel, payload, at).await
    }

    async fn enqueue_once(
        &self,
        conversation: &str,
        channel: &str,
        key: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        self.inner
            .enqueue_once(conversation, channel, key, payload, at)
            .await
    }

    async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.mark_sent(ids, at).await
    }

    async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.inner.rows_after(conversation, after, limit).await
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        self.inner.transcript(conversation).await
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        self.inner.handoffs(conversation).await
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        self.inner.handoff(ticket).await
    }

    async fn queue_length(&self) -> StoreResult<i64> {
        self.inner.queue_length().await
    }

    async fn queue_position(&self, ticket: &str) -> StoreResult<i64> {
        self.inner.queue_position(ticket).await
    }

    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.inner.find_by_address(channel, address).await
    }

    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>> {
        self.inner.address_of(conversation).await
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        self.inner.set_handoff_address(ticket, address).await
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        self.inner.find_handoff_by_address(address).await
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        self.inner.reference(channel, address).await
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        self.inner.failed_reason(id).await
    }

    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.mark_failed(id, reason, at).await
    }

    async fn hold_conversation(&self, conversation: &str) -> StoreResult<ConversationHold> {
        self.inner.hold_conversation(conversation).await
    }

    fn shared_poll_interval(&self) -> Option<std::time::Duration> {
        self.inner.shared_poll_interval()
    }

    async fn claimable_conversations(
        &self,
        channel: &str,
        holder: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        self.inner
            .claimable_conversations(channel, holder, now, limit)
            .await
    }

    async fn claim_outbox(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.inner
            .claim_outbox(channel, conversation, holder, now, lease_until, limit)
            .await
    }

    async fn renew_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner
            .renew_outbox_lease(channel, conversation, holder, lease_until)
            .await
    }

    async fn release_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
    ) -> StoreResult<()> {
        self.inner
            .release_outbox_lease(channel, conversation, holder)
            .await
    }

    async fn mark_sent_with_receipt(
        &self,
        id: i64,
        platform_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.mark_sent_with_receipt(id, platform_id, at).await
    }

    async fn platform_id(&self, id: i64) -> StoreResult<Option<String>> {
        self.inner.platform_id(id).await
    }

    async fn record_sent_parts(&self, id: i64, parts: &[Option<String>]) -> StoreResult<()> {
        self.inner.record_sent_parts(id, parts).await
    }

    async fn announce(&self, topic: &str, payload: &str) -> StoreResult<()> {
        self.inner.announce(topic, payload).await
    }

    async fn listen(
        &self,
        topic: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Heard>>> {
        self.inner.listen(topic).await
    }

    async fn try_lead(&self, role: &str) -> StoreResult<Option<Leadership>> {
        self.inner.try_lead(role).await
    }

    async fn sent_parts(&self, id: i64) -> StoreResult<Vec<Option<String>>> {
        self.inner.sent_parts(id).await
    }
}
