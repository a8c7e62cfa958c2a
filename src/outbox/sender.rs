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
//! it is delivered again on restart (at least once; never lost). Backoff
//! without a `Retry-After` is jittered, so conversations failing together
//! do not retry together.
//!
//! An outage of the channel itself ([`DeliveryError::Outage`], e.g. Teams'
//! token endpoint refusing the bot) is nobody's row's fault: every worker
//! waits, the attempt is not counted, and rows stay pending however long it
//! lasts. A sender told to stop during an outage leaves them pending for
//! the next start instead of waiting forever.
//!
//! The sender wakes on every commit that wrote rows (a watch channel, so no
//! wake-up is lost) and, when told to stop, returns once nothing is pending.
//!
//! Several instances on one store (PostgreSQL): a worker *claims* its
//! conversation's rows with a lease ([`Store::claim_outbox`]) under the
//! sender's own holder id, renews the lease every third of it while it
//! works, and releases it when it stops early; rows of one conversation
//! have one holder at a time, so they stay in order, and a dead instance's
//! rows are claimed by another once the lease ran out. Since other
//! instances' commits wake nobody here, the sender also looks every
//! [`Store::shared_poll_interval`]; and when told to stop it makes one last
//! pass over what it can claim instead of helping the others forever. On a
//! store only this process writes the claim is the plain pending read.

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

    /// [`Deliver::deliver`], returning the platform's id(s) of what it
    /// posted (a JSON list when a row became several messages, as
    /// [`Store::record_sent_parts`] keeps them), which the sender records
    /// on the row. Default: no id is reported.
    async fn deliver_with_receipt(
        &self,
        item: &OutboxItem,
    ) -> Result<Option<String>, DeliveryError> {
        self.deliver(item).await.map(|()| None)
    }
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
    /// The platform asks this conversation to slow down (an HTTP 429 for
    /// one thread): it waits `after` (or a back-off) and the attempt does
    /// not count — a throttled message is late, never given up.
    #[error("throttled: {reason}")]
    Throttled {
        reason: String,
        after: Option<Duration>,
    },
    /// The platform throttles the whole bot: every conversation waits.
    #[error("rate limited for the whole bot: {reason}")]
    PauseAll { reason: String, after: Duration },
    /// The channel cannot send anything right now (its credentials are
    /// refused, its token endpoint is down): every conversation waits, the
    /// attempt does not count, the row stays pending.
    #[error("channel unavailable: {reason}")]
    Outage {
        reason: String,
        after: Option<Duration>,
    },
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
    /// How long a claim on a conversation's rows lasts without renewal
    /// (renewed every third of it while the worker lives): how long a dead
    /// instance's rows wait before another instance sends them.
    pub lease: Duration,
}

/// The default [`SenderSettings::lease`].
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            retry_base: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_attempts: 8,
            max_in_flight: 32,
            lease: DEFAULT_LEASE,
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
            lease: DEFAULT_LEASE,
        }
    }
}

/// The outbox as the sender sees it: pending rows and commit wake-ups.
/// Made by [`crate::desk::Desk::outbox_queue`].
#[derive(Clone)]
pub struct OutboxQueue {
    store: Arc<dyn Store>,
    committed: watch::Receiver<u64>,
    /// The conversations that got rows since the sender last looked; `None`:
    /// every wake-up scans the outbox.
    changed: Option<Changed>,
}

impl OutboxQueue {
    #[cfg(test)]
    pub(crate) fn new(store: Arc<dyn Store>, committed: watch::Receiver<u64>) -> OutboxQueue {
        OutboxQueue {
            store,
            committed,
            changed: None,
        }
    }

    /// A queue told which conversations got rows (the desk adds them before
    /// it wakes the sender), so a wake-up looks at those instead of
    /// scanning every pending conversation: with a thousand conversations
    /// in flight the scan after every commit was most of the CPU.
    pub(crate) fn with_changes(
        store: Arc<dyn Store>,
        committed: watch::Receiver<u64>,
        changed: Changed,
    ) -> OutboxQueue {
        OutboxQueue {
            store,
            committed,
            changed: Some(changed),
        }
    }
}

/// Conversations that got outbox rows since their sender last looked.
#[derive(Clone, Default)]
pub struct Changed(Arc<Mutex<HashSet<String>>>);

impl Changed {
    /// Notes that `conversation` got rows (call before waking the sender).
    pub fn add(&self, conversation: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conversation.to_string());
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
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
    /// Consecutive outage answers (0: the channel works).
    outage: std::sync::atomic::AtomicU32,
    /// Turns true when the sender is told to stop.
    stopping: watch::Receiver<bool>,
    /// Who this sender is in outbox leases (unique per run).
    holder: String,
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
    let poll = queue.store.shared_poll_interval();
    let holder = format!(
        "{channel}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let shared = Arc::new(Shared {
        holder,
        permits: Semaphore::new(settings.max_in_flight.max(1)),
        queue,
        deliver,
        settings,
        clock,
        paused_until: Mutex::new(None),
        outage: std::sync::atomic::AtomicU32::new(0),
        stopping: shutdown.clone(),
    });
    let (done_sender, mut done) = mpsc::unbounded_channel::<String>();
    let mut active: HashSet<String> = HashSet::new();
    // Conversations told about while their worker was busy: looked at again
    // when it reports back (its last look may have come before the rows).
    let mut recheck: HashSet<String> = HashSet::new();
    // A full scan at start, after a failed read and on every shared poll;
    // otherwise only the conversations the desk said changed.
    let mut full_scan = true;
    let changed = shared.queue.changed.clone();
    let mut stop_dropped = false;
    // Shared store: scans made since the sender was told to stop.
    let mut stopping_scans = 0u32;
    loop {
        let stopping = stop_dropped || *shutdown.borrow();
        // Stopping during an outage: nothing can go out, so no new worker;
        // the rows stay pending for the next start. On a shared store, one
        // last scan: other instances deliver what they commit.
        let outage_stop = stopping && shared.in_outage();
        let final_pass_done = stopping && poll.is_some() && stopping_scans > 0;
        let scan = !outage_stop && !final_pass_done;
        if stopping && scan {
            stopping_scans += 1;
        }
        let told = match &changed {
            Some(changed) if scan && !full_scan && !stopping => Some(changed.take()),
            _ => None,
        };
        let pending = match told {
            Some(told) => Ok(told.into_iter().collect()),
            None if scan => {
                full_scan = false;
                if let Some(changed) = &changed {
                    changed.take();
                }
                shared
                    .queue
                    .store
                    .claimable_conversations(
                        &channel,
                        &shared.holder,
                        shared.clock.now(),
                        SCAN_LIMIT,
                    )
                    .await
            }
            None => Ok(Vec::new()),
        };
        match pending {
            Ok(conversations) => {
                for conversation in conversations {
                    if active.contains(&conversation) {
                        recheck.insert(conversation);
                    } else {
                        active.insert(conversation.clone());
                        tokio::spawn(worker(shared.clone(), conversation, done_sender.clone()));
                    }
                }
            }
            Err(e) => {
                full_scan = true;
                tracing::error!(channel, error = %e, "sender: cannot read the outbox");
            }
        }
        if stopping && active.is_empty() && outage_stop {
            tracing::warn!(
                channel,
                "sender: stopping during an outage; unsent messages stay queued for the next start"
            );
            return;
        }
        if stopping && active.is_empty() {
            tracing::info!(channel, "sender: outbox flushed, stopping");
            return;
        }
        tokio::select! {
            Some(conversation) = done.recv() => {
                if recheck.remove(&conversation) {
                    tokio::spawn(worker(shared.clone(), conversation, done_sender.clone()));
                } else {
                    active.remove(&conversation);
                }
            }
            _ = committed.changed() => {}
            changed = shutdown.changed(), if !stopping => {
                stop_dropped = changed.is_err();
            }
            _ = tokio::time::sleep(poll.unwrap_or_default()), if poll.is_some() && !stopping => {
                full_scan = true;
            }
        }
    }
}

/// Delivers one conversation's pending rows in order, then reports back.
async fn worker(shared: Arc<Shared>, conversation: String, done: mpsc::UnboundedSender<String>) {
    let channel = shared.deliver.channel().to_string();
    let store = &shared.queue.store;
    let mut go_on = true;
    loop {
        let now = shared.clock.now();
        let rows = match store
            .claim_outbox(
                &channel,
                &conversation,
                &shared.holder,
                now,
                now + shared.lease(),
                BATCH,
            )
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
        go_on = deliver_renewing_lease(&shared, &channel, &conversation, rows).await;
        // A short batch was everything pending when read; rows committed
        // since then wake the dispatcher, which starts a worker again.
        if !full_batch || !go_on {
            break;
        }
    }
    if !go_on {
        // Stopping during an outage: let another instance take them now.
        if let Err(e) = store
            .release_outbox_lease(&channel, &conversation, &shared.holder)
            .await
        {
            tracing::warn!(channel, conversation = %conversation, error = %e, "sender: could not release the outbox lease (it runs out by itself)");
        }
    }
    // The dispatcher is gone only when the sender stopped.
    let _ignored = done.send(conversation);
}

/// Delivers claimed rows in order, renewing the lease on them every third
/// of it meanwhile. False: the channel is out and the sender stops.
async fn deliver_renewing_lease(
    shared: &Shared,
    channel: &str,
    conversation: &str,
    rows: Vec<OutboxMessage>,
) -> bool {
    if rows.is_empty() {
        return true;
    }
    let deliveries = async {
        for row in rows {
            if !deliver_with_retry(shared, row).await {
                return false;
            }
        }
        true
    };
    tokio::pin!(deliveries);
    let every = (shared.settings.lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            go_on = &mut deliveries => return go_on,
            _ = tokio::time::sleep(every) => {
                let until = shared.clock.now() + shared.lease();
                if let Err(e) = shared
                    .queue
                    .store
                    .renew_outbox_lease(channel, conversation, &shared.holder, until)
                    .await
                {
                    tracing::warn!(channel, conversation = %conversation, error = %e, "sender: could not renew the outbox lease (another instance may send these rows too)");
                }
            }
        }
    }
}

/// Delivers one row (or gives up on it). False: the channel is out and
/// the sender stops; the row stays pending.
async fn deliver_with_retry(shared: &Shared, message: OutboxMessage) -> bool {
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
            return true;
        }
    };
    let item = OutboxItem {
        id: message.id,
        conversation_id: message.conversation_id.clone(),
        row,
    };
    let kind = item.row.kind();
    let mut attempt = 0u32;
    let mut throttled = 0u32;
    loop {
        attempt += 1;
        shared.wait_while_paused().await;
        let result = {
            let _permit = shared.permits.acquire().await;
            shared.deliver.deliver_with_receipt(&item).await
        };
        let last = attempt >= shared.settings.max_attempts;
        if !matches!(result, Err(DeliveryError::Outage { .. })) {
            shared.outage.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(platform_id) => {
                if let Err(e) = shared
                    .queue
                    .store
                    .mark_sent_with_receipt(item.id, platform_id.as_deref(), shared.clock.now())
                    .await
                {
                    tracing::error!(channel, row = item.id, conversation = %item.conversation_id, error = %e, "sender: delivered but could not mark the row sent (it may be sent again)");
                }
                return true;
            }
            Err(DeliveryError::Outage { reason, after }) => {
                // Not the row's fault: the attempt does not count.
                attempt -= 1;
                let streak = shared
                    .outage
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .saturating_add(1);
                if *shared.stopping.borrow() {
                    return false;
                }
                let delay = after
                    .unwrap_or_else(|| shared.backoff(streak))
                    .min(shared.settings.max_delay);
                tracing::warn!(channel, row = item.id, kind, %reason, delay_ms = delay.as_millis() as u64, "sender: channel unavailable, every conversation waits (the message stays queued)");
                shared.pause_for(delay);
            }
            Err(DeliveryError::Throttled { reason, after }) => {
                // Told to slow down, not failing: the attempt does not count.
                attempt -= 1;
                throttled = throttled.saturating_add(1);
                if *shared.stopping.borrow() {
                    return false;
                }
                let delay = after
                    .unwrap_or_else(|| shared.backoff(throttled))
                    .min(shared.settings.max_delay);
                tracing::warn!(channel, row = item.id, conversation = %item.conversation_id, kind, throttled, %reason, delay_ms = delay.as_millis() as u64, "sender: throttled by the platform, this conversation waits");
                tokio::time::sleep(delay).await;
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
                return true;
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

/// A random duration between zero and `max` (retry jitter; no
/// cryptographic quality needed: the standard library's randomly keyed
/// hasher suffices).
pub fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    max.mul_f64(hasher.finish() as f64 / u64::MAX as f64)
}

impl Shared {
    /// Exponential backoff with "equal jitter": between half and all of
    /// `retry_base * 2^(attempt-1)` (Teams: "use an exponential backoff
    /// with a random jitter", <https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit>).
    fn backoff(&self, attempt: u32) -> Duration {
        let full =
            self.settings.retry_base * 2u32.saturating_pow(attempt.saturating_sub(1)).min(64);
        full / 2 + jitter(full / 2)
    }

    /// The lease as a chrono duration (for times written to the store).
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(10))
    }

    fn in_outage(&self) -> bool {
        self.outage.load(std::sync::atomic::Ordering::Relaxed) > 0
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

    /// Waits out a pause; during an outage a stopping sender stops waiting
    /// (a rate-limit pause is still waited out, then the outbox flushed).
    async fn wait_while_paused(&self) {
        let mut stopping = self.stopping.clone();
        loop {
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match until {
                Some(until) if until > Instant::now() => {
                    if *stopping.borrow() && self.in_outage() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        changed = stopping.changed() => {
                            if changed.is_err() {
                                tokio::time::sleep_until(until).await;
                            }
                        }
                    }
                }
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
        delivered: Notify,
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
                None => {
                    self.delivered.notify_one();
                    Ok(())
                }
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
            delivered: Notify::new(),
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
                lease: DEFAULT_LEASE,
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
        let (a_failed, b_sent) = b_after_a_fails(DeliveryError::Throttled {
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

    /// Runs the sender on one row of "A" whose deliveries answer `script`
    /// first; stops once the row is sent, or right after the first
    /// failure when `stop_early`. Returns the store and the attempts made.
    async fn outage_run(
        script: Vec<DeliveryError>,
        stop_early: bool,
    ) -> (Arc<dyn Store>, i64, usize) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .expect("time");
        let (_committed, committed_rx) = watch::channel(0u64);
        let deliver = Arc::new(Scripted {
            script: Mutex::new(HashMap::from([("A".to_string(), script)])),
            attempts: Mutex::new(Vec::new()),
            first_failure: Notify::new(),
            delivered: Notify::new(),
        });
        let id = store.enqueue("A", "test", row(), at).await.expect("A");
        let (stop, stopping) = watch::channel(false);
        let sender = tokio::spawn(run(
            OutboxQueue::new(store.clone(), committed_rx),
            deliver.clone(),
            SenderSettings {
                retry_base: Duration::from_secs(1),
                max_delay: Duration::from_secs(600),
                max_attempts: 3,
                max_in_flight: 4,
                lease: DEFAULT_LEASE,
            },
            Arc::new(ManualClock::new(at)),
            stopping,
        ));
        if stop_early {
            deliver.first_failure.notified().await;
        } else {
            deliver.delivered.notified().await;
        }
        stop.send(true).expect("stop");
        sender.await.expect("sender");
        let attempts = deliver.attempts.lock().expect("attempts").len();
        (store, id, attempts)
    }

    fn outage() -> DeliveryError {
        DeliveryError::Outage {
            reason: "token endpoint refuses the app".into(),
            after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_does_not_use_up_attempts_and_the_row_goes_out_after_it() {
        let (store, id, attempts) = outage_run(vec![outage(); 10], false).await;
        assert_eq!(attempts, 11, "ten outages, then the delivery");
        assert!(store
            .pending_conversations("test", 10)
            .await
            .expect("pending")
            .is_empty());
        assert_eq!(store.failed_reason(id).await.expect("reason"), None);
    }

    /// With a queue told which conversations changed, a row committed
    /// while the conversation's worker is busy (here: waiting after a
    /// failure) is still delivered once the worker reports back; a
    /// conversation the sender was told about after start-up is found
    /// without a scan.
    #[tokio::test(start_paused = true)]
    async fn rows_told_about_while_a_worker_is_busy_are_delivered() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 1, 0, 0)
            .single()
            .expect("time");
        let (committed, committed_rx) = watch::channel(0u64);
        let changed = Changed::default();
        let deliver = Arc::new(Scripted {
            script: Mutex::new(HashMap::from([(
                "A".to_string(),
                vec![DeliveryError::Retry {
                    reason: "500".into(),
                    after: Some(Duration::from_secs(5)),
                }],
            )])),
            attempts: Mutex::new(Vec::new()),
            first_failure: Notify::new(),
            delivered: Notify::new(),
        });
        let (stop, stopping) = watch::channel(false);
        let sender = tokio::spawn(run(
            OutboxQueue::with_changes(store.clone(), committed_rx, changed.clone()),
            deliver.clone(),
            SenderSettings {
                retry_base: Duration::from_secs(1),
                max_delay: Duration::from_secs(600),
                max_attempts: 5,
                max_in_flight: 4,
                lease: DEFAULT_LEASE,
            },
            Arc::new(ManualClock::new(at)),
            stopping,
        ));
        let tell = |conversation: &str| {
            changed.add(conversation);
            committed.send_modify(|n| *n += 1);
        };
        store.enqueue("A", "test", row(), at).await.expect("A1");
        tell("A");
        deliver.first_failure.notified().await;
        // A's worker waits 5 s before its retry; a second row comes.
        store.enqueue("A", "test", row(), at).await.expect("A2");
        tell("A");
        store.enqueue("B", "test", row(), at).await.expect("B");
        tell("B");
        // Without a stop (which would scan): the sender must find A2 and B
        // from what it was told. Each success notifies after it is counted.
        let delivered_all = async {
            loop {
                deliver.delivered.notified().await;
                if deliver.attempts.lock().expect("attempts").len() == 4 {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(3600), delivered_all)
            .await
            .expect("A2 and B delivered without a scan");
        stop.send(true).expect("stop");
        sender.await.expect("sender");
        let attempts = deliver.attempts.lock().expect("attempts").len();
        assert_eq!(attempts, 4, "A1 failed once, then A1, A2 and B");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_row_is_late_not_given_up() {
        // More 429s than max_attempts (3): the row still goes out.
        let throttled = DeliveryError::Throttled {
            reason: "connector answered HTTP 429".into(),
            after: Some(Duration::from_secs(2)),
        };
        let (store, id, attempts) = outage_run(vec![throttled; 10], false).await;
        assert_eq!(attempts, 11, "ten throttles, then the delivery");
        assert!(store
            .pending_conversations("test", 10)
            .await
            .expect("pending")
            .is_empty());
        assert_eq!(store.failed_reason(id).await.expect("reason"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_during_an_outage_leaves_the_row_pending() {
        let (store, id, _) = outage_run(vec![outage(); 1000], true).await;
        assert_eq!(
            store
                .pending_conversations("test", 10)
                .await
                .expect("pending"),
            ["A"]
        );
        assert_eq!(store.failed_reason(id).await.expect("reason"), None);
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
