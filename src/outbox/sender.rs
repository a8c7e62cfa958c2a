//! The one outbox sender, for every channel.
//!
//! Concurrent across conversations, in order within one: a dispatcher finds
//! the conversations with pending rows of its channel and starts one worker
//! per conversation; the worker delivers that conversation's rows one after
//! another, then ends. At most `max_in_flight` deliveries run at once.
//!
//! A temporary failure is retried with exponential backoff, or after the
//! platform's `Retry-After` when it gave one; the wait holds back only the
//! conversation it happened in. A global rate limit (Discord's
//! `global: true`) pauses every worker of the channel. A row that keeps
//! failing, or fails for good, is marked failed with the reason and logged,
//! and the rows behind it go on. A crash before a row is marked sent means
//! it is delivered again on restart (at least once; never lost).
//!
//! The sender wakes on every commit that wrote rows (a watch channel, so no
//! wake-up is lost) and, when told to stop, returns once nothing is pending.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use super::{OutboxItem, OutboxRow};
use crate::clock::Clock;
use crate::conversation::store::{OutboxMessage, Store};

/// How one channel delivers one row. Implementations translate the row
/// into platform messages and classify failures; nothing else.
#[async_trait]
pub trait Deliver: Send + Sync + 'static {
    /// The channel whose rows this delivers (`discord`, `teams`…).
    fn channel(&self) -> &str;

    async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError>;
}

/// Why a row was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (rate limit, server error, network), after `after`
    /// when the platform said how long.
    #[error("temporary: {reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The platform throttles the whole bot: every conversation waits.
    #[error("rate limited for the whole bot: {reason}")]
    PauseAll { reason: String, after: Duration },
    /// Retrying will not help (missing permission, unknown channel, bad row).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl DeliveryError {
    pub fn retry(reason: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Retry {
            reason: reason.to_string(),
            after: None,
        }
    }
}

/// How hard the sender tries.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// First retry delay, doubled per attempt.
    pub retry_base: Duration,
    /// Longest wait between two attempts.
    pub max_delay: Duration,
    /// Attempts before a row is given up.
    pub max_attempts: u32,
    /// Deliveries running at once, across conversations.
    pub max_in_flight: usize,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            retry_base: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
            max_in_flight: 32,
        }
    }
}

impl SenderSettings {
    /// From a channel's `[section]`: retry base in milliseconds, attempts,
    /// deliveries at once (each at least 1), longest wait between attempts.
    pub fn from_config(
        retry_base_ms: u64,
        max_attempts: u32,
        max_in_flight: usize,
        max_delay: Duration,
    ) -> SenderSettings {
        SenderSettings {
            retry_base: Duration::from_millis(retry_base_ms.max(1)),
            max_delay,
            max_attempts: max_attempts.max(1),
            max_in_flight: max_in_flight.max(1),
        }
    }
}

/// The outbox as the sender sees it: pending rows and commit wake-ups.
/// Made by [`crate::desk::Desk::outbox_queue`].
#[derive(Clone)]
pub struct OutboxQueue {
    store: Arc<dyn Store>,
    committed: watch::Receiver<u64>,
}

impl OutboxQueue {
    pub(crate) fn new(store: Arc<dyn Store>, committed: watch::Receiver<u64>) -> OutboxQueue {
        OutboxQueue { store, committed }
    }
}

/// Conversations looked at per scan of the outbox.
const SCAN_LIMIT: i64 = 1000;
/// Rows a worker reads at a time.
const BATCH: i64 = 50;

struct Shared {
    queue: OutboxQueue,
    deliver: Arc<dyn Deliver>,
    settings: SenderSettings,
    clock: Arc<dyn Clock>,
    permits: Semaphore,
    /// Until when every worker waits (a global rate limit). A blocking
    /// mutex: held only to read or set the instant, never across an await.
    paused_until: Mutex<Option<Instant>>,
}

/// Delivers the channel's rows until `shutdown` turns true and nothing is
/// pending any more.
pub async fn run(
    queue: OutboxQueue,
    deliver: Arc<dyn Deliver>,
    settings: SenderSettings,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    let channel = deliver.channel().to_string();
    let mut committed = queue.committed.clone();
    let shared = Arc::new(Shared {
        permits: Semaphore::new(settings.max_in_flight.max(1)),
        queue,
        deliver,
        settings,
        clock,
        paused_until: Mutex::new(None),
    });
    let (done_sender, mut done) = mpsc::unbounded_channel::<String>();
    let mut active: HashSet<String> = HashSet::new();
    let mut stop_dropped = false;
    loop {
        let stopping = stop_dropped || *shutdown.borrow();
        match shared
            .queue
            .store
            .pending_conversations(&channel, SCAN_LIMIT)
            .await
        {
            Ok(conversations) => {
                for conversation in conversations {
                    if active.insert(conversation.clone()) {
                        tokio::spawn(worker(shared.clone(), conversation, done_sender.clone()));
                    }
                }
            }
            Err(e) => tracing::error!(channel, error = %e, "sender: cannot read the outbox"),
        }
        if stopping && active.is_empty() {
            tracing::info!(channel, "sender: outbox flushed, stopping");
            return;
        }
        tokio::select! {
            Some(conversation) = done.recv() => {
                active.remove(&conversation);
            }
            _ = committed.changed() => {}
            changed = shutdown.changed(), if !stopping => {
                stop_dropped = changed.is_err();
            }
        }
    }
}

/// Delivers one conversation's pending rows in order, then reports back.
async fn worker(shared: Arc<Shared>, conversation: String, done: mpsc::UnboundedSender<String>) {
    let channel = shared.deliver.channel().to_string();
    loop {
        let rows = match shared
            .queue
            .store
            .pending_outbox(&channel, &conversation, BATCH)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(channel, conversation = %conversation, error = %e, "sender: cannot read the conversation's messages; will look again");
                // The dispatcher starts a new worker on its next scan; a
                // short pause keeps a failing database from being hammered.
                tokio::time::sleep(shared.settings.retry_base).await;
                break;
            }
        };
        let full_batch = rows.len() as i64 == BATCH;
        for row in rows {
            deliver_with_retry(&shared, row).await;
        }
        // A short batch was everything pending when read; rows committed
        // since then wake the dispatcher, which starts a worker again.
        if !full_batch {
            break;
        }
    }
    // The dispatcher is gone only when the sender stopped.
    let _ignored = done.send(conversation);
}

async fn deliver_with_retry(shared: &Shared, message: OutboxMessage) {
    let channel = shared.deliver.channel();
    let row: OutboxRow = match serde_json::from_value(message.payload.clone()) {
        Ok(row) => row,
        Err(e) => {
            give_up(
                shared,
                &message,
                "?",
                &format!("unreadable outbox row: {e}"),
            )
            .await;
            return;
        }
    };
    let item = OutboxItem {
        id: message.id,
        conversation_id: message.conversation_id.clone(),
        row,
    };
    let kind = item.row.kind();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        shared.wait_while_paused().await;
        let result = {
            let _permit = shared.permits.acquire().await;
            shared.deliver.deliver(&item).await
        };
        let last = attempt >= shared.settings.max_attempts;
        match result {
            Ok(()) => {
                if let Err(e) = shared
                    .queue
                    .store
                    .mark_sent(&[item.id], shared.clock.now())
                    .await
                {
                    tracing::error!(channel, row = item.id, conversation = %item.conversation_id, error = %e, "sender: delivered but could not mark the row sent (it may be sent again)");
                }
                return;
            }
            Err(DeliveryError::Retry { reason, after }) if !last => {
                let delay = after
                    .unwrap_or_else(|| shared.backoff(attempt))
                    .min(shared.settings.max_delay);
                tracing::warn!(channel, row = item.id, conversation = %item.conversation_id, kind, attempt, %reason, delay_ms = delay.as_millis() as u64, "sender: will retry");
                tokio::time::sleep(delay).await;
            }
            Err(DeliveryError::PauseAll { reason, after }) if !last => {
                let delay = after.min(shared.settings.max_delay);
                tracing::warn!(channel, row = item.id, kind, attempt, %reason, delay_ms = delay.as_millis() as u64, "sender: global rate limit, every conversation waits");
                shared.pause_for(delay);
            }
            Err(error) => {
                give_up(shared, &message, kind, &error.to_string()).await;
                return;
            }
        }
    }
}

async fn give_up(shared: &Shared, message: &OutboxMessage, kind: &str, reason: &str) {
    let channel = shared.deliver.channel();
    tracing::error!(channel, row = message.id, conversation = %message.conversation_id, kind, reason, "sender: giving up on a message");
    if let Err(e) = shared
        .queue
        .store
        .mark_failed(message.id, reason, shared.clock.now())
        .await
    {
        tracing::error!(channel, row = message.id, conversation = %message.conversation_id, error = %e, "sender: could not mark the row failed (it will be tried again)");
    }
}

impl Shared {
    fn backoff(&self, attempt: u32) -> Duration {
        self.settings.retry_base * 2u32.saturating_pow(attempt.saturating_sub(1)).min(64)
    }

    fn pause_for(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    async fn wait_while_paused(&self) {
        loop {
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The sender's own rules with a scripted channel and tokio's paused
    //! clock (virtual, deterministic time): a per-conversation back-off
    //! holds back only that conversation; a global pause holds back all.

    use std::collections::HashMap;

    use chrono::TimeZone;
    use tokio::sync::Notify;

    use super::*;
    use crate::clock::ManualClock;
    use crate::conversation::memory::MemoryStore;

    /// Answers each conversation's calls from a script (then `Ok`), and
    /// records when each delivery was attempted.
    struct Scripted {
        script: Mutex<HashMap<String, Vec<DeliveryError>>>,
        attempts: Mutex<Vec<(String, Instant)>>,
        first_failure: Notify,
    }

    #[async_trait]
    impl Deliver for Scripted {
        fn channel(&self) -> &str {
            "test"
        }

        async fn deliver(&self, item: &OutboxItem) -> Result<(), DeliveryError> {
            self.attempts
                .lock()
                .expect("attempts")
                .push((item.conversation_id.clone(), Instant::now()));
            let next = self
                .script
                .lock()
                .expect("script")
                .get_mut(&item.conversation_id)
                .and_then(|s| (!s.is_empty()).then(|| s.remove(0)));
            match next {
                Some(error) => {
                    self.first_failure.notify_one();
                    Err(error)
                }
                None => Ok(()),
            }
        }
    }

    fn row() -> serde_json::Value {
        OutboxRow::Relay {
            ticket: "t".into(),
            text: "x".into(),
        }
        .to_payload()
    }

    /// Runs the sender; A's first delivery answers `failure`; B's row is
    /// written only after that. Returns (when A failed, when B went out).
    async fn b_after_a_fails(failure: DeliveryError) -> (Instant, Instant) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .expect("time");
        let (committed, committed_rx) = watch::channel(0u64);
        let deliver = Arc::new(Scripted {
            script: Mutex::new(HashMap::from([("A".to_string(), vec![failure])])),
            attempts: Mutex::new(Vec::new()),
            first_failure: Notify::new(),
        });
        store.enqueue("A", "test", row(), at).await.expect("A");
        let (stop, stopping) = watch::channel(false);
        let sender = tokio::spawn(run(
            OutboxQueue::new(store.clone(), committed_rx),
            deliver.clone(),
            SenderSettings {
                retry_base: Duration::from_secs(1),
                max_delay: Duration::from_secs(600),
                max_attempts: 5,
                max_in_flight: 4,
            },
            Arc::new(ManualClock::new(at)),
            stopping,
        ));
        deliver.first_failure.notified().await;
        store.enqueue("B", "test", row(), at).await.expect("B");
        committed.send_modify(|n| *n += 1);
        stop.send(true).expect("stop");
        sender.await.expect("sender");
        let attempts = deliver.attempts.lock().expect("attempts").clone();
        let a_failed = attempts.iter().find(|(c, _)| c == "A").expect("A").1;
        let b_sent = attempts.iter().find(|(c, _)| c == "B").expect("B").1;
        assert!(store
            .pending_conversations("test", 10)
            .await
            .expect("pending")
            .is_empty());
        (a_failed, b_sent)
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_conversation_does_not_hold_back_another() {
        let (a_failed, b_sent) = b_after_a_fails(DeliveryError::Retry {
            reason: "429".into(),
            after: Some(Duration::from_secs(60)),
        })
        .await;
        assert!(
            b_sent - a_failed < Duration::from_secs(60),
            "B waited {:?}",
            b_sent - a_failed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_rate_limit_pauses_every_conversation() {
        let (a_failed, b_sent) = b_after_a_fails(DeliveryError::PauseAll {
            reason: "global 429".into(),
            after: Duration::from_secs(60),
        })
        .await;
        assert!(
            b_sent - a_failed >= Duration::from_secs(60),
            "B went out after {:?}",
            b_sent - a_failed
        );
    }
}
