//! The one wait-until helper: re-checks a condition each time a watch
//! channel says something changed, and fails the test after a bound.
//! Tests await events this way; none sleeps.

use std::time::Duration;

use tokio::sync::watch;

/// How long a test waits for something that should happen at once.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Awaits until `check` returns `Some`, re-checking on every change of
/// `changes`; `Err(())` after [`TIMEOUT`].
pub async fn wait_until<T, R>(
    changes: &mut watch::Receiver<T>,
    mut check: impl FnMut() -> Option<R>,
) -> Result<R, ()> {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(found) = check() {
                return found;
            }
            if changes.changed().await.is_err() {
                // The sender is gone: nothing will change any more.
                std::future::pending::<()>().await;
            }
        }
    })
    .await
    .map_err(|_| ())
}
