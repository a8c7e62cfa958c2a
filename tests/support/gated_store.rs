//! A store whose first `gate` lookups of "the conversation at an address"
//! wait for each other (a barrier) after they have their answer: two first
//! messages of one person then both see no conversation before either is
//! opened — the race between two instances (or two tasks), made certain.
//! Everything else is the wrapped store's ([`HookedStore`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use madoguchi::conversation::store::Store;
use tokio::sync::Barrier;

use super::hooked_store::{Hook, HookedStore};

/// The hook: after a `conversation_at`, wait at the barrier while `gate`
/// lasts.
pub struct MeetAtLookup {
    barrier: Arc<Barrier>,
    /// Lookups still to hold at the barrier (shared by every store of a
    /// test, so two instances' lookups meet).
    gate: Arc<AtomicUsize>,
}

#[async_trait]
impl Hook for MeetAtLookup {
    async fn after(&self, method: &'static str) {
        if method != "conversation_at" {
            return;
        }
        let gated = self
            .gate
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if gated {
            self.barrier.wait().await;
        }
    }
}

/// `inner` behind a gate shared with other stores: the first `gate.0`
/// lookups of all of them meet at `gate.1`.
pub fn gated(inner: Arc<dyn Store>, gate: &(Arc<AtomicUsize>, Arc<Barrier>)) -> Arc<dyn Store> {
    Arc::new(HookedStore {
        inner,
        hook: MeetAtLookup {
            gate: gate.0.clone(),
            barrier: gate.1.clone(),
        },
    })
}

/// A gate for `n` lookups that meet.
pub fn gate(n: usize) -> (Arc<AtomicUsize>, Arc<Barrier>) {
    (Arc::new(AtomicUsize::new(n)), Arc::new(Barrier::new(n)))
}
