//! A store that runs a test's [`Hook`] before and after every call (named
//! by its method), the call itself made by the wrapped store: for tests
//! that must hold or order store calls — a slow database, two lookups that
//! meet — without sleeping.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use madoguchi::conversation::store::*;
use serde_json::Value;

/// What a test does around the store's calls (nothing by default).
#[async_trait]
pub trait Hook: Send + Sync {
    async fn before(&self, _method: &'static str) {}
    async fn after(&self, _method: &'static str) {}
}

pub struct HookedStore<H> {
    pub inner: Arc<dyn Store>,
    pub hook: H,
}

#[async_trait]
impl<H: Hook> Store for HookedStore<H> {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        self.hook.before("load").await;
        let result = self.inner.load(id).await;
        self.hook.after("load").await;
        result
    }

    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.hook.before("latest_for_user").await;
        let result = self.inner.latest_for_user(channel, user_key).await;
        self.hook.after("latest_for_user").await;
        result
    }

    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>> {
        self.hook.before("conversations_of_user").await;
        let result = self.inner.conversations_of_user(channel, user_key).await;
        self.hook.after("conversations_of_user").await;
        result
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        self.hook.before("commit").await;
        let result = self.inner.commit(commit).await;
        self.hook.after("commit").await;
        result
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        self.hook.before("due_timers").await;
        let result = self.inner.due_timers(now, conversation).await;
        self.hook.after("due_timers").await;
        result
    }

    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.hook.before("next_timer_due").await;
        let result = self.inner.next_timer_due(conversation).await;
        self.hook.after("next_timer_due").await;
        result
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        self.hook.before("pending_conversations").await;
        let result = self.inner.pending_conversations(channel, limit).await;
        self.hook.after("pending_conversations").await;
        result
    }

    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.hook.before("pending_outbox").await;
        let result = self
            .inner
            .pending_outbox(channel, conversation, limit)
            .await;
        self.hook.after("pending_outbox").await;
        result
    }

    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        self.hook.before("enqueue").await;
        let result = self.inner.enqueue(conversation, channel, payload, at).await;
        self.hook.after("enqueue").await;
        result
    }

    async fn enqueue_once(
        &self,
        conversation: &str,
        channel: &str,
        key: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        self.hook.before("enqueue_once").await;
        let result = self
            .inner
            .enqueue_once(conversation, channel, key, payload, at)
            .await;
        self.hook.after("enqueue_once").await;
        result
    }

    async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        self.hook.before("mark_sent").await;
        let result = self.inner.mark_sent(ids, at).await;
        self.hook.after("mark_sent").await;
        result
    }

    async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.hook.before("rows_after").await;
        let result = self.inner.rows_after(conversation, after, limit).await;
        self.hook.after("rows_after").await;
        result
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        self.hook.before("transcript").await;
        let result = self.inner.transcript(conversation).await;
        self.hook.after("transcript").await;
        result
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        self.hook.before("handoffs").await;
        let result = self.inner.handoffs(conversation).await;
        self.hook.after("handoffs").await;
        result
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        self.hook.before("handoff").await;
        let result = self.inner.handoff(ticket).await;
        self.hook.after("handoff").await;
        result
    }

    async fn queue_length(&self) -> StoreResult<i64> {
        self.hook.before("queue_length").await;
        let result = self.inner.queue_length().await;
        self.hook.after("queue_length").await;
        result
    }

    async fn queue_position(&self, ticket: &str) -> StoreResult<i64> {
        self.hook.before("queue_position").await;
        let result = self.inner.queue_position(ticket).await;
        self.hook.after("queue_position").await;
        result
    }

    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.hook.before("find_by_address").await;
        let result = self.inner.find_by_address(channel, address).await;
        self.hook.after("find_by_address").await;
        result
    }

    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>> {
        self.hook.before("address_of").await;
        let result = self.inner.address_of(conversation).await;
        self.hook.after("address_of").await;
        result
    }

    async fn conversation_at(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        self.hook.before("conversation_at").await;
        let result = self.inner.conversation_at(channel, address).await;
        self.hook.after("conversation_at").await;
        result
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        self.hook.before("set_handoff_address").await;
        let result = self.inner.set_handoff_address(ticket, address).await;
        self.hook.after("set_handoff_address").await;
        result
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        self.hook.before("find_handoff_by_address").await;
        let result = self.inner.find_handoff_by_address(address).await;
        self.hook.after("find_handoff_by_address").await;
        result
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        self.hook.before("reference").await;
        let result = self.inner.reference(channel, address).await;
        self.hook.after("reference").await;
        result
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        self.hook.before("failed_reason").await;
        let result = self.inner.failed_reason(id).await;
        self.hook.after("failed_reason").await;
        result
    }

    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.hook.before("mark_failed").await;
        let result = self.inner.mark_failed(id, reason, at).await;
        self.hook.after("mark_failed").await;
        result
    }

    async fn hold_conversation(&self, conversation: &str) -> StoreResult<ConversationHold> {
        self.hook.before("hold_conversation").await;
        let result = self.inner.hold_conversation(conversation).await;
        self.hook.after("hold_conversation").await;
        result
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
        self.hook.before("claimable_conversations").await;
        let result = self
            .inner
            .claimable_conversations(channel, holder, now, limit)
            .await;
        self.hook.after("claimable_conversations").await;
        result
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
        self.hook.before("claim_outbox").await;
        let result = self
            .inner
            .claim_outbox(channel, conversation, holder, now, lease_until, limit)
            .await;
        self.hook.after("claim_outbox").await;
        result
    }

    async fn renew_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.hook.before("renew_outbox_lease").await;
        let result = self
            .inner
            .renew_outbox_lease(channel, conversation, holder, lease_until)
            .await;
        self.hook.after("renew_outbox_lease").await;
        result
    }

    async fn release_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
    ) -> StoreResult<()> {
        self.hook.before("release_outbox_lease").await;
        let result = self
            .inner
            .release_outbox_lease(channel, conversation, holder)
            .await;
        self.hook.after("release_outbox_lease").await;
        result
    }

    async fn mark_sent_with_receipt(
        &self,
        id: i64,
        platform_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.hook.before("mark_sent_with_receipt").await;
        let result = self.inner.mark_sent_with_receipt(id, platform_id, at).await;
        self.hook.after("mark_sent_with_receipt").await;
        result
    }

    async fn platform_id(&self, id: i64) -> StoreResult<Option<String>> {
        self.hook.before("platform_id").await;
        let result = self.inner.platform_id(id).await;
        self.hook.after("platform_id").await;
        result
    }

    async fn record_sent_parts(&self, id: i64, parts: &[Option<String>]) -> StoreResult<()> {
        self.hook.before("record_sent_parts").await;
        let result = self.inner.record_sent_parts(id, parts).await;
        self.hook.after("record_sent_parts").await;
        result
    }

    async fn announce(&self, topic: &str, payload: &str) -> StoreResult<()> {
        self.hook.before("announce").await;
        let result = self.inner.announce(topic, payload).await;
        self.hook.after("announce").await;
        result
    }

    async fn listen(
        &self,
        topic: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Heard>>> {
        self.hook.before("listen").await;
        let result = self.inner.listen(topic).await;
        self.hook.after("listen").await;
        result
    }

    async fn try_lead(&self, role: &str) -> StoreResult<Option<Leadership>> {
        self.hook.before("try_lead").await;
        let result = self.inner.try_lead(role).await;
        self.hook.after("try_lead").await;
        result
    }

    async fn sent_parts(&self, id: i64) -> StoreResult<Vec<Option<String>>> {
        self.hook.before("sent_parts").await;
        let result = self.inner.sent_parts(id).await;
        self.hook.after("sent_parts").await;
        result
    }
}
