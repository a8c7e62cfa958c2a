//! Pacing of posts per Teams thread, before Teams answers 429.
//!
//! Teams limits each bot per thread (a personal chat, a group chat, or a
//! channel with all its reply threads): 7 operations per 1 s, 8 per 2 s,
//! 60 per 30 s, 1800 per hour
//! (<https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit>,
//! "Per bot per thread limit"). The agents' channel is one thread however
//! many handoff cards it has, so its notes are paced together.
//!
//! Every post to a thread goes through [`Pacer::run`]: it takes the
//! thread's turn (one operation at a time per thread, so a typing
//! indicator never races a reply into a 412), waits until one more post
//! fits every window, runs the post and records when it **finished**.
//! Spacing is measured from finishes, so however slow the network, Teams
//! never sees two posts closer than the windows allow (each post reached
//! Teams before it finished). Waiting is an awaited timer, never a poll.
//!
//! [`Pacer::unlimited`] (emulator mode: no Teams service, no Teams limits)
//! keeps the one-at-a-time turn per thread and waits for no window.
//!
//! The turn is an async mutex held across the post on purpose: it is the
//! serialisation. Threads are independent; the map of threads is behind a
//! blocking mutex held only to look up, insert or prune.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// (window, operations allowed in it) per thread, from the page above.
pub const THREAD_LIMITS: [(Duration, usize); 4] = [
    (Duration::from_secs(1), 7),
    (Duration::from_secs(2), 8),
    (Duration::from_secs(30), 60),
    (Duration::from_secs(3600), 1800),
];

/// Longest window: finishes older than this no longer matter.
const LONGEST: Duration = Duration::from_secs(3600);

/// Threads remembered before idle ones are pruned.
const PRUNE_AT: usize = 4096;

/// The thread a conversation belongs to: a channel's reply threads
/// (`19:…@thread.tacv2;messageid=…`) all count as the channel.
pub fn thread_of(conversation: &str) -> &str {
    conversation
        .split(";messageid=")
        .next()
        .unwrap_or(conversation)
}

/// Finish times of a thread's recent posts, oldest first.
#[derive(Default)]
struct Window {
    finished: VecDeque<Instant>,
}

impl Window {
    /// The earliest instant from `now` at which one more post keeps every
    /// window of `limits` under its limit.
    fn next_slot(&mut self, now: Instant, limits: &[(Duration, usize)]) -> Instant {
        while self
            .finished
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= LONGEST)
        {
            self.finished.pop_front();
        }
        let mut slot = now;
        loop {
            let mut moved = false;
            for &(window, limit) in limits {
                let inside: Vec<&Instant> = self
                    .finished
                    .iter()
                    .filter(|t| slot.saturating_duration_since(**t) < window)
                    .collect();
                if inside.len() >= limit {
                    // The oldest post that must leave the window first.
                    let leaving = *inside[inside.len() - limit];
                    let at = leaving + window;
                    if at > slot {
                        slot = at;
                        moved = true;
                    }
                }
            }
            if !moved {
                return slot;
            }
        }
    }
}

/// Paces posts per thread; cheap to share.
pub struct Pacer {
    threads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Window>>>>,
    /// [`THREAD_LIMITS`], or none (emulator mode).
    limits: &'static [(Duration, usize)],
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

impl Pacer {
    /// A pacer under Teams' per-thread limits.
    pub fn new() -> Pacer {
        Pacer {
            threads: Mutex::new(HashMap::new()),
            limits: &THREAD_LIMITS,
        }
    }

    /// One post at a time per thread, without rate limits (emulator mode).
    pub fn unlimited() -> Pacer {
        Pacer {
            threads: Mutex::new(HashMap::new()),
            limits: &[],
        }
    }

    /// Records a finished post (only needed while there are limits).
    fn finished(&self, window: &mut Window) {
        if !self.limits.is_empty() {
            window.finished.push_back(Instant::now());
        }
    }

    fn window(&self, thread: &str) -> Arc<tokio::sync::Mutex<Window>> {
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if threads.len() >= PRUNE_AT {
            // Idle threads (no one holds their turn) with nothing in the
            // last hour are forgotten.
            let now = Instant::now();
            threads.retain(|_, window| match window.try_lock() {
                Ok(w) => w
                    .finished
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < LONGEST),
                Err(_) => true,
            });
        }
        threads
            .entry(thread_of(thread).to_string())
            .or_default()
            .clone()
    }

    /// Runs `post` (one operation on `conversation`'s thread) in its turn
    /// and within the thread's rate limit.
    pub async fn run<T>(&self, conversation: &str, post: impl Future<Output = T>) -> T {
        let window = self.window(conversation);
        let mut window = window.lock().await;
        let slot = window.next_slot(Instant::now(), self.limits);
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
        let result = post.await;
        self.finished(&mut window);
        result
    }

    /// Runs `post` only if the thread is free and has room right now
    /// (best-effort posts such as typing indicators); `None` if skipped.
    pub async fn run_if_free<T>(
        &self,
        conversation: &str,
        post: impl Future<Output = T>,
    ) -> Option<T> {
        let window = self.window(conversation);
        let mut window = window.try_lock().ok()?;
        let now = Instant::now();
        if window.next_slot(now, self.limits) > now {
            return None;
        }
        let result = post.await;
        self.finished(&mut window);
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `n` instant posts in one thread; returns when each ran,
    /// relative to the start (tokio's paused clock: virtual time).
    async fn run_burst(pacer: &Pacer, thread: &str, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            at.push(pacer.run(thread, async { start.elapsed() }).await);
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_keeps_every_window_of_the_thread_limit() {
        let pacer = Pacer::new();
        let at = run_burst(&pacer, "a:1", 70).await;
        for (window, limit) in THREAD_LIMITS {
            for (i, start) in at.iter().enumerate() {
                let inside = at[i..].iter().filter(|t| **t - *start < window).count();
                assert!(
                    inside <= limit,
                    "{inside} posts within {window:?} from {start:?}"
                );
            }
        }
        // Seven at once, the eighth after a second, the ninth after two.
        assert_eq!(at[6], Duration::ZERO);
        assert_eq!(at[7], Duration::from_secs(1));
        assert_eq!(at[8], Duration::from_secs(2));
        // The 61st waits for the 30-second window.
        assert!(at[60] >= Duration::from_secs(30), "{:?}", at[60]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_channel_and_its_reply_threads_share_one_limit_and_others_do_not() {
        let pacer = Pacer::new();
        for i in 0..8 {
            pacer
                .run(&format!("19:c@thread.tacv2;messageid={i}"), async {})
                .await;
        }
        let start = Instant::now();
        pacer.run("19:c@thread.tacv2", async {}).await;
        assert!(start.elapsed() >= Duration::from_millis(1000));
        let start = Instant::now();
        pacer.run("a:other", async {}).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlimited_pacer_never_waits_and_keeps_no_history() {
        let pacer = Pacer::unlimited();
        let at = run_burst(&pacer, "a:1", 100).await;
        assert!(at.iter().all(|t| *t == Duration::ZERO), "{at:?}");
        let window = pacer.window("a:1");
        assert!(window.lock().await.finished.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn best_effort_posts_are_skipped_when_the_thread_is_full() {
        let pacer = Pacer::new();
        run_burst(&pacer, "a:1", 7).await;
        assert_eq!(pacer.run_if_free("a:1", async { 1 }).await, None);
        assert_eq!(pacer.run_if_free("a:2", async { 2 }).await, Some(2));
    }
}
